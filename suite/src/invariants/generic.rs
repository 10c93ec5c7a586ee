//! Invariants of every iptables rule set: what `iptables-restore` or the
//! kernel would refuse, or silently get wrong.

use std::collections::BTreeMap;

use super::{Context, Report};
use kpconform_iptables::model::{ChainName, Rule, Table, TableName, Target};

/// The kernel's chain name limit: `XT_EXTENSION_MAXNAMELEN` is 29 bytes
/// including the terminating NUL.
const MAX_CHAIN_NAME: usize = 28;

/// `jump-target-declared`
pub(super) fn jump_target_declared(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in &cx.tables {
        let table = t.table.name;
        for (ci, chain) in t.table.chains.iter().enumerate() {
            for (ri, rule) in chain.rules.iter().enumerate() {
                let Some(target) = rule.jump_target() else {
                    continue;
                };
                let verb = verb(rule);
                match target {
                    // Built-in chains are entered only from their hook;
                    // iptables refuses `-j INPUT` outright.
                    ChainName::Builtin(b) => r.in_chain(
                        table,
                        chain,
                        rule.span,
                        format!(
                            "{}: {verb} built-in chain {b}; expected a user-defined chain \
                             (iptables does not allow jumps to built-in chains)",
                            chain.name,
                            b = b.as_str()
                        ),
                    ),
                    ChainName::User(name) if t.jump(ci, ri).is_none() => r.in_chain(
                        table,
                        chain,
                        rule.span,
                        format!(
                            "{}: {verb} {name}, which is not declared in table {table}; \
                             expected a `:{name} - [0:0]` declaration",
                            chain.name
                        ),
                    ),
                    ChainName::User(_) => {}
                }
            }
        }
    }
}

fn verb(rule: &Rule) -> &'static str {
    match rule.target {
        Some(Target::Goto(_)) => "goes to",
        _ => "jumps to",
    }
}

/// Where a chain stands in the depth-first search for loops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    /// On the current path, at this depth of the stack (a table's chains
    /// are counted in `u32`: one entry per chain, at lint's peak).
    OnPath(u32),
    Done,
}

/// `no-jump-loop`: one depth-first search per table over chains (merged by
/// name), reporting each back edge at the rule that makes it. Iterative, so a
/// long chain of jumps in hostile input cannot overflow the stack.
pub(super) fn no_jump_loop(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in &cx.tables {
        let chains = &t.table.chains;
        let n = chains.len();
        // A chain's edges are the jumps of its rules, in rule order, and of
        // the rules of its later duplicate declarations (a name is one
        // node); undeclared targets are `jump-target-declared`'s business.
        // The declarations of each node, in order, as one flat list: a
        // 10k-Service dump has 90k chains, and a list of edges per chain
        // was a tenth of lint's peak memory.
        let mut group_start = vec![0u32; n + 1];
        for &f in &t.first {
            group_start[f as usize + 1] += 1;
        }
        for i in 0..n {
            group_start[i + 1] += group_start[i];
        }
        let mut fill = group_start.clone();
        let mut members = vec![0u32; n];
        for (ci, &f) in t.first.iter().enumerate() {
            let f = f as usize;
            members[fill[f] as usize] = ci as u32;
            fill[f] += 1;
        }
        drop(fill);
        // The next edge of `node` from where `at` stands (a place in its
        // declarations, a rule there), moving `at` past it.
        let next_edge = |node: usize, at: &mut (u32, u32)| -> Option<(usize, usize, usize)> {
            while at.0 < group_start[node + 1] {
                let ci = members[at.0 as usize] as usize;
                while (at.1 as usize) < chains[ci].rules.len() {
                    let ri = at.1 as usize;
                    at.1 += 1;
                    if let Some(to) = t.jump(ci, ri) {
                        return Some((to, ci, ri));
                    }
                }
                *at = (at.0 + 1, 0);
            }
            None
        };

        let mut visit = vec![Visit::New; n];
        // (chain, where its next edge is looked for)
        let mut stack: Vec<(usize, (u32, u32))> = Vec::new();
        // Built-in chains first, so that the rule reported is the one that
        // jumps back when following packets from their hook.
        let builtin = (0..n).filter(|&i| chains[i].name.is_builtin());
        let user = (0..n).filter(|&i| !chains[i].name.is_builtin());
        for root in builtin.chain(user) {
            if visit[root] != Visit::New {
                continue;
            }
            visit[root] = Visit::OnPath(0);
            stack.push((root, (group_start[root], 0)));
            while let Some((node, at)) = stack.last_mut() {
                let node = *node;
                let Some((to, ci, ri)) = next_edge(node, at) else {
                    visit[node] = Visit::Done;
                    stack.pop();
                    continue;
                };
                match visit[to] {
                    Visit::New => {
                        visit[to] = Visit::OnPath(stack.len() as u32);
                        stack.push((to, (group_start[to], 0)));
                    }
                    Visit::OnPath(depth) => {
                        let (chain, rule) = (&chains[ci], &chains[ci].rules[ri]);
                        let cycle: Vec<&str> = stack[depth as usize..]
                            .iter()
                            .map(|&(c, _)| chains[c].name.as_str())
                            .chain([chains[to].name.as_str()])
                            .collect();
                        let cycle = elide(&cycle);
                        r.in_chain(
                            t.table.name,
                            chain,
                            rule.span,
                            format!(
                                "{}: {} {} closes the jump loop {}; expected no loops \
                                 (the kernel refuses the table)",
                                chain.name,
                                verb(rule),
                                chains[to].name,
                                cycle
                            ),
                        );
                    }
                    Visit::Done => {}
                }
            }
        }
    }
}

/// `A -> B -> A`, with the middle of a long loop elided so a message stays one line.
fn elide(cycle: &[&str]) -> String {
    const KEEP: usize = 4;
    if cycle.len() <= 2 * KEEP + 1 {
        return cycle.join(" -> ");
    }
    format!(
        "{} -> ... ({} more) -> {}",
        cycle[..KEEP].join(" -> "),
        cycle.len() - 2 * KEEP,
        cycle[cycle.len() - KEEP..].join(" -> ")
    )
}

/// `unique-chain`
pub(super) fn unique_chain(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in &cx.tables {
        for (i, chain) in t.table.chains.iter().enumerate() {
            let first = t.first[i] as usize;
            if first != i {
                r.in_chain(
                    t.table.name,
                    chain,
                    chain.span,
                    format!(
                        "{}: declared again in table {} (first at line {}); expected one declaration",
                        chain.name,
                        t.table.name,
                        t.table.chains[first].span.line
                    ),
                );
            }
        }
    }
}

/// `unique-table`
pub(super) fn unique_table(cx: &Context<'_>, r: &mut Report<'_>) {
    let mut first: BTreeMap<TableName, &Table> = BTreeMap::new();
    for t in &cx.rules.tables {
        if let Some(first) = first.get(&t.name) {
            r.violation(
                t.name,
                None,
                t.span,
                format!(
                    "table {} appears again (first `*{}` at line {}); expected one block per table \
                     (iptables-restore would replace the first block with this one)",
                    t.name, t.name, first.span.line
                ),
            );
        } else {
            first.insert(t.name, t);
        }
    }
}

/// `chain-name-length`
pub(super) fn chain_name_length(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in &cx.tables {
        for chain in &t.table.chains {
            let len = chain.name.as_str().len();
            if len > MAX_CHAIN_NAME {
                r.in_chain(
                    t.table.name,
                    chain,
                    chain.span,
                    format!(
                        "{}: chain name is {len} characters long; expected at most {MAX_CHAIN_NAME}",
                        chain.name
                    ),
                );
            }
        }
    }
}

/// `table-committed`
pub(super) fn table_committed(cx: &Context<'_>, r: &mut Report<'_>) {
    for table in &cx.rules.tables {
        if !table.committed {
            r.violation(
                table.name,
                None,
                table.span,
                format!(
                    "table {}: block does not end with COMMIT; expected COMMIT \
                     (iptables-restore discards an uncommitted table)",
                    table.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{only_line, run};

    const OK: &str = concat!(
        "*filter\n",
        ":INPUT ACCEPT [0:0]\n",
        ":FORWARD ACCEPT [0:0]\n",
        ":A - [0:0]\n",
        ":B - [0:0]\n",
        "-A INPUT -j A\n",
        "-A FORWARD -j A\n",
        "-A A -j B\n",
        "-A A -g B\n",
        "-A B -j RETURN\n",
        "COMMIT\n",
    );

    #[test]
    fn jump_target_declared() {
        assert!(run("jump-target-declared", OK).is_empty());
        let dangling = OK.replace("-A A -g B", "-A A -g C");
        let v = run("jump-target-declared", &dangling);
        assert_eq!(only_line(&v), 9);
        assert!(
            v[0].message
                .contains("A: goes to C, which is not declared in table filter"),
            "{}",
            v[0].message
        );
        assert_eq!(v[0].chain.as_ref().map(|c| c.as_str()), Some("A"));
    }

    #[test]
    fn jump_to_builtin_chain_is_refused() {
        let to_builtin = OK.replace("-A B -j RETURN", "-A B -j FORWARD");
        let v = run("jump-target-declared", &to_builtin);
        assert_eq!(only_line(&v), 10);
        assert!(
            v[0].message.contains("built-in chain FORWARD"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn chains_of_another_table_do_not_count() {
        let text =
            "*nat\n:X - [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j X\nCOMMIT\n";
        assert_eq!(only_line(&run("jump-target-declared", text)), 6);
    }

    #[test]
    fn no_jump_loop() {
        assert!(run("no-jump-loop", OK).is_empty());
        let looped = OK.replace("-A B -j RETURN", "-A B -j A");
        let v = run("no-jump-loop", &looped);
        assert_eq!(only_line(&v), 10);
        assert!(
            v[0].message.contains("closes the jump loop A -> B -> A"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn loop_is_reported_where_traffic_from_a_hook_turns_back() {
        // B is declared first, but INPUT enters the loop at A, so the rule
        // that closes it is B's jump back to A.
        let text = "*filter\n:B - [0:0]\n:A - [0:0]\n:INPUT ACCEPT [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n";
        let v = run("no-jump-loop", text);
        assert_eq!(only_line(&v), 7);
        assert!(
            v[0].message.contains("loop A -> B -> A"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn self_loop_and_diamond() {
        // A diamond (two paths to one chain) is not a loop.
        let diamond = concat!(
            "*filter\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n:D - [0:0]\n",
            "-A A -j B\n-A A -j C\n-A B -j D\n-A C -j D\nCOMMIT\n",
        );
        assert!(run("no-jump-loop", diamond).is_empty());
        let selfloop = diamond.replace("-A C -j D", "-A C -j C");
        let v = run("no-jump-loop", &selfloop);
        assert_eq!(only_line(&v), 9);
        assert!(v[0].message.contains("loop C -> C"), "{}", v[0].message);
    }

    #[test]
    fn deep_jump_chain_does_not_overflow() {
        let mut text = String::from("*filter\n");
        for i in 0..20_000 {
            text.push_str(&format!(":C{i} - [0:0]\n"));
        }
        for i in 1..20_000 {
            text.push_str(&format!("-A C{} -j C{i}\n", i - 1));
        }
        text.push_str("-A C19999 -j C0\nCOMMIT\n");
        let v = run("no-jump-loop", &text);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains(
                "C0 -> C1 -> C2 -> C3 -> ... (19993 more) -> C19997 -> C19998 -> C19999 -> C0"
            ),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn unique_chain() {
        assert!(run("unique-chain", OK).is_empty());
        let twice = OK.replace(":B - [0:0]\n", ":B - [0:0]\n:A - [0:0]\n");
        let v = run("unique-chain", &twice);
        assert_eq!(only_line(&v), 6);
        assert!(v[0].message.contains("first at line 4"), "{}", v[0].message);
    }

    #[test]
    fn unique_table() {
        assert!(run("unique-table", OK).is_empty());
        let twice = format!("{OK}*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n{OK}");
        let v = run("unique-table", &twice);
        assert_eq!(only_line(&v), 15);
        assert!(v[0]
            .message
            .contains("table filter appears again (first `*filter` at line 1)"));
    }

    #[test]
    fn chain_name_length() {
        let snippet = |name: &str| {
            format!("*filter\n:INPUT ACCEPT [0:0]\n:{name} - [0:0]\n-A INPUT -j {name}\nCOMMIT\n")
        };
        let name28 = "KUBE-SEP-ABCDEFGHIJKLMNOPQRS";
        assert_eq!(name28.len(), 28);
        assert!(run("chain-name-length", &snippet(name28)).is_empty());
        let v = run("chain-name-length", &snippet(&format!("{name28}T")));
        assert_eq!(only_line(&v), 3);
        assert!(v[0]
            .message
            .contains("29 characters long; expected at most 28"));
    }

    #[test]
    fn table_committed() {
        assert!(run("table-committed", OK).is_empty());
        let open = format!(
            "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n{}",
            OK.replace("COMMIT\n", "")
        );
        let v = run("table-committed", &open);
        assert_eq!(only_line(&v), 4);
    }
}
