//! The parser against real input: every kube-proxy recording, and the dumps
//! and hand-typed commands of the tutorials the project grew from.

use std::fs;
use std::path::PathBuf;

use kpconform_iptables::model::{ChainName, Family, MarkOp, Match, Statistic, TableName, Target};
use kpconform_iptables::{parse, parse_str, parse_with, print, Mode, Options};

fn recordings_dir() -> PathBuf {
    kpconform_golden::recordings()
}

fn recordings() -> Vec<(String, String)> {
    let dir = recordings_dir().join("kube-proxy-v1.30/outputs");
    let mut out: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 44, "expected the 44 kube-proxy v1.30 recordings");
    out
}

#[test]
fn every_recording_parses_strictly_and_prints_back_byte_for_byte() {
    for (name, text) in recordings() {
        let rules = parse_str(&text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let expected: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(print(&rules), expected, "{name}: printing changed the text");
        let again = parse_str(&print(&rules)).unwrap();
        assert_eq!(again, rules, "{name}: parse(print(x)) != x");
        assert_eq!(
            rules.tables.iter().map(|t| t.name).collect::<Vec<_>>(),
            [TableName::Mangle, TableName::Filter, TableName::Nat],
            "{name}"
        );
        assert!(rules.tables.iter().all(|t| t.committed), "{name}");
    }
}

#[test]
fn every_ipv6_and_dual_stack_recording_parses_and_prints_back_byte_for_byte() {
    let dir = recordings_dir().join("kube-proxy-v1.30-ipv6");
    let mut seen = 0;
    for entry in fs::read_dir(dir.join("outputs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap();
        let rules = parse_str(&text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(print(&rules), text, "{name}: printing changed the text");
        assert_eq!(parse_str(&print(&rules)).unwrap(), rules, "{name}");
        // The input says which proxier (family) wrote the rules.
        let input =
            fs::read_to_string(dir.join("inputs").join(name.replace(".rules", ".yaml"))).unwrap();
        let family = if input.contains("family: IPv6") {
            Family::Ipv6
        } else {
            Family::Ipv4
        };
        assert_eq!(rules.family(), Some(family), "{name}");
        seen += 1;
    }
    assert_eq!(seen, 37, "the 37 IPv6 and dual-stack recordings");
}

#[test]
fn a_rule_set_mixing_the_families_is_refused() {
    let text = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.96.0.1/32 -j ACCEPT\n\
                -A PREROUTING -d fd00::1/128 -j ACCEPT\nCOMMIT\n";
    let errors = parse_str(text).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].span.line, 4);
    assert!(
        errors[0]
            .message
            .contains("an IPv6 address in a rule set whose addresses are IPv4 (line 3)"),
        "{}",
        errors[0].message
    );
}

#[test]
fn recorded_rules_have_the_expected_shape() {
    let text = fs::read_to_string(
        recordings_dir().join("kube-proxy-v1.30/outputs/clusterip-3-endpoints.rules"),
    )
    .unwrap();
    let rules = parse_str(&text).unwrap();
    let nat = rules.table(TableName::Nat).unwrap();
    let mark = nat.chain_by_name("KUBE-MARK-MASQ").unwrap();
    assert_eq!(
        mark.rules[0].target,
        Some(Target::Mark(MarkOp {
            value: 0x4000,
            mask: 0x4000
        }))
    );
    let svc = nat
        .chains
        .iter()
        .find(|c| c.name.as_str().starts_with("KUBE-SVC-"))
        .unwrap();
    let probs: Vec<String> = svc
        .rules
        .iter()
        .filter_map(|r| r.probability())
        .map(|p| p.text().to_string())
        .collect();
    assert_eq!(probs, ["0.33333333349", "0.50000000000"]);
    let first = svc.rules.iter().find_map(|r| r.probability()).unwrap();
    assert_eq!(first.kernel_units(), 715_827_883);
    // Rules remember their line for walks and violations.
    let line = text
        .lines()
        .position(|l| l.contains("0.33333333349"))
        .unwrap()
        + 1;
    let rule = svc
        .rules
        .iter()
        .find(|r| r.probability().is_some())
        .unwrap();
    assert_eq!(rule.span.line as usize, line);
}

#[test]
fn kube_proxy_restore_spelling_parses_to_the_recorded_model() {
    // What kube-proxy writes to iptables-restore versus what iptables-save prints back.
    let written = "*nat\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-SVC-X - [0:0]\n:KUBE-SEP-A - [0:0]\n:KUBE-SEP-B - [0:0]\n\
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n\
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
-A KUBE-SVC-X -m comment --comment \"ns/svc:p -> 10.64.0.1:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-A\n\
-A KUBE-SVC-X -m comment --comment \"ns/svc:p -> 10.64.0.2:80\" -j KUBE-SEP-B\n\
-A KUBE-SEP-A -p tcp -m comment --comment \"ns/svc:p\" -m tcp -j DNAT --to-destination 10.64.0.1:80\nCOMMIT\n";
    let saved = "*nat\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-SVC-X - [0:0]\n:KUBE-SEP-A - [0:0]\n:KUBE-SEP-B - [0:0]\n\
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n\
-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN\n\
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n\
-A KUBE-SVC-X -m comment --comment \"ns/svc:p -> 10.64.0.1:80\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A\n\
-A KUBE-SVC-X -m comment --comment \"ns/svc:p -> 10.64.0.2:80\" -j KUBE-SEP-B\n\
-A KUBE-SEP-A -p tcp -m comment --comment \"ns/svc:p\" -m tcp -j DNAT --to-destination 10.64.0.1:80\nCOMMIT\n";
    assert_eq!(parse_str(written).unwrap(), parse_str(saved).unwrap());
}

#[test]
fn tutorial_commands_replay_into_a_rule_set() {
    // From the "how Kubernetes services direct traffic to pods" tutorial, in order.
    let script = r#"
sudo iptables --table filter --append FORWARD --in-interface bridge_home --jump ACCEPT
sudo iptables --table filter --append FORWARD --out-interface bridge_home --jump ACCEPT
sudo iptables --table nat --append POSTROUTING --source 10.0.0.0/24 --jump MASQUERADE
sudo iptables --table nat --new DUSTIN-SERVICES
sudo iptables \
  --table nat \
  --append PREROUTING \
  --jump DUSTIN-SERVICES
sudo iptables \
  --table nat \
  --append OUTPUT \
  --jump DUSTIN-SERVICES
sudo iptables \
  --table nat \
  --append DUSTIN-SERVICES \
  --destination 10.100.100.100 \
  --protocol tcp \
  --match tcp \
  --dport 8080 \
  --jump DNAT \
  --to-destination 10.0.0.11:8080
sudo iptables \
  --table nat \
  --new DUSTIN-SVC-HTTP
sudo iptables \
  --table nat \
  --append DUSTIN-SVC-HTTP \
  --protocol tcp \
  --match tcp \
  --jump DNAT \
  --to-destination 10.0.0.11:8080
sudo iptables \
  --table nat \
  --delete DUSTIN-SERVICES \
  --destination 10.100.100.100 \
  --protocol tcp \
  --match tcp \
  --dport 8080 \
  --jump DNAT \
  --to-destination 10.0.0.11:8080
sudo iptables \
  --table nat \
  --append DUSTIN-SERVICES \
  --destination 10.100.100.100 \
  --protocol tcp \
  --match tcp \
  --dport 8080 \
  --jump DUSTIN-SVC-HTTP
sudo iptables \
  --table nat \
  --new DUSTIN-SEP-HTTP1
sudo iptables \
  --table nat \
  --append DUSTIN-SEP-HTTP1 \
  --protocol tcp \
  --match tcp \
  --jump DNAT \
  --to-destination 10.0.0.11:8080
sudo iptables \
  --table nat \
  --delete DUSTIN-SVC-HTTP \
  --protocol tcp \
  --match tcp \
  --jump DNAT \
  --to-destination 10.0.0.11:8080

sudo iptables \
  --table nat \
  --append DUSTIN-SVC-HTTP \
  --jump DUSTIN-SEP-HTTP1
sudo iptables \
  --table nat \
  --new DUSTIN-SEP-HTTP2

sudo iptables \
  --table nat \
  --append DUSTIN-SEP-HTTP2 \
  --protocol tcp \
  --match tcp \
  --jump DNAT \
  --to-destination 10.0.0.21:8080
sudo iptables \
  --table nat \
  --insert DUSTIN-SVC-HTTP 1 \
  --match statistic \
  --mode random \
  --probability 0.5 \
  --jump DUSTIN-SEP-HTTP2
"#;
    let rules = parse_str(script).unwrap_or_else(|e| panic!("{e:?}"));
    let nat = rules.table(TableName::Nat).unwrap();
    let services = nat.chain_by_name("DUSTIN-SERVICES").unwrap();
    assert_eq!(
        services.rules.len(),
        1,
        "the DNAT rule was deleted and replaced by a jump"
    );
    assert_eq!(
        services.rules[0].target,
        Some(Target::Jump(ChainName::new("DUSTIN-SVC-HTTP")))
    );
    let svc = nat.chain_by_name("DUSTIN-SVC-HTTP").unwrap();
    assert_eq!(svc.rules.len(), 2);
    assert!(matches!(
        &svc.rules[0].matches[0],
        Match::Statistic(s) if matches!(&s.value, Statistic::Random(p) if p.text() == "0.5")
    ));
    assert_eq!(
        svc.rules[1].target,
        Some(Target::Jump(ChainName::new("DUSTIN-SEP-HTTP1")))
    );
    let filter = rules.table(TableName::Filter).unwrap();
    assert_eq!(filter.chain_by_name("FORWARD").unwrap().rules.len(), 2);
    // The replayed set prints as a dump that parses back to itself.
    assert_eq!(parse_str(&print(&rules)).unwrap(), rules);
}

#[test]
fn short_option_commands_from_the_tutorials() {
    let script = r#"iptables -A INPUT -p tcp -m tcp --dport 80 -m limit --limit 10/minute --limit-burst 20 -j ACCEPT
iptables -A INPUT -p tcp -m tcp --dport 80 -j DROP
iptables -t nat -A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-port 9090
iptables -A INPUT -j LOG --log-prefix "iptables input: " --log-level 4
iptables -L -v -n
"#;
    let rules = parse_str(script).unwrap_or_else(|e| panic!("{e:?}"));
    let input = rules
        .table(TableName::Filter)
        .unwrap()
        .chain_by_name("INPUT")
        .unwrap();
    assert_eq!(input.rules.len(), 3);
    let nat = rules.table(TableName::Nat).unwrap();
    let pre = &nat.chain_by_name("PREROUTING").unwrap().rules[0];
    assert!(matches!(pre.target, Some(Target::Redirect { to_ports: Some(p) }) if p.first == 9090));
    assert!(
        matches!(&pre.matches[0], Match::Ports { dport: Some(d), .. } if d.value.first == 8080)
    );
}

#[test]
fn quoted_dump_fragments_need_a_default_table() {
    // `iptables-save | grep` output quoted in a tutorial: no *table header.
    let fragment = "    -A KUBE-SVC-2CMXP7HKUVJN7L6M -m comment --comment \"default/nginx -> 10.64.2.4:80\" -j KUBE-SEP-YVT6EXXEKT4LDXBC\n    -A KUBE-SEP-YVT6EXXEKT4LDXBC -p tcp -m comment --comment \"default/nginx\" -m tcp -j DNAT --to-destination 10.64.2.4:80\n";
    let errors = parse_str(fragment).unwrap_err();
    assert!(
        errors[0].message.contains("outside a `*table`"),
        "{errors:?}"
    );
    assert_eq!(errors[0].span.line, 1);
    let parsed = parse_with(
        fragment,
        Options {
            mode: Mode::Strict,
            default_table: Some(TableName::Nat),
        },
    )
    .unwrap();
    let nat = parsed.rules.table(TableName::Nat).unwrap();
    assert_eq!(nat.chains.len(), 2);
}

#[test]
fn seed_dumps_parse() {
    // Every `-A` line quoted in the seed tutorials parses as a nat fragment.
    let mut lines = String::new();
    let mut tutorials = 0;
    for entry in fs::read_dir(kpconform_golden::tutorials()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "txt") {
            continue; // the folder's README
        }
        tutorials += 1;
        let text = fs::read_to_string(path).unwrap();
        for l in text.lines() {
            let t = l.trim_start();
            if t.starts_with("-A ") {
                lines.push_str(t);
                lines.push('\n');
            }
        }
    }
    assert_eq!(tutorials, 5, "the five tutorials in golden/tutorials");
    assert!(lines.lines().count() >= 20);
    let parsed = parse_with(
        &lines,
        Options {
            mode: Mode::Strict,
            default_table: Some(TableName::Nat),
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(parsed.rules.table(TableName::Nat).unwrap().chains.len() > 5);
}

#[test]
fn lax_mode_keeps_unknown_matches_and_reports_them() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set blocked src -j DROP\n-A INPUT -p tcp -j CT --notrack\nCOMMIT\n";
    let strict = parse(text, Mode::Strict).unwrap_err();
    assert_eq!(strict.len(), 2);
    assert_eq!(strict[0].span.line, 3);
    let lax = parse(text, Mode::Lax).unwrap();
    assert_eq!(lax.warnings.len(), 2);
    let input = lax
        .rules
        .table(TableName::Filter)
        .unwrap()
        .chain_by_name("INPUT")
        .unwrap();
    assert!(
        matches!(&input.rules[0].matches[0], Match::Unknown { module, args } if &**module == "set" && args.len() == 3)
    );
    assert_eq!(input.rules[0].target, Some(Target::Drop));
    assert!(
        matches!(&input.rules[1].target, Some(Target::Unknown { name, .. }) if &**name == "CT")
    );
}

/// A terminal session as operators paste it into bug reports: a prompt,
/// the dump, another command and its output, and the prompt left waiting.
fn transcript(dump: &str) -> String {
    format!(
        "user@node-a:~$ sudo iptables-save\n\
         {dump}\
         user@node-a:~$ kubectl get svc -n shop -o wide\n\
         NAME   TYPE       CLUSTER-IP     EXTERNAL-IP   PORT(S)        AGE   SELECTOR\n\
         web    NodePort   10.96.100.10   <none>        80:30080/TCP   5m    app=web\n\
         \n\
         user@node-a:~$ kubectl get endpointslices -n shop\n\
         NAME        ADDRESSTYPE   PORTS   ENDPOINTS               AGE\n\
         web-x7k2p   IPv4          8080    10.64.0.5,10.64.1.5     5m\n\
         user@node-a:~$ \n"
    )
}

#[test]
fn a_pasted_terminal_session_parses_to_the_bare_recording() {
    let bare = fs::read_to_string(
        recordings_dir().join("kube-proxy-v1.30/outputs/nodeport-etp-local-local-endpoint.rules"),
    )
    .unwrap();
    let pasted = transcript(&bare);
    let expected = parse(&bare, Mode::Strict).unwrap();
    let parsed = parse(&pasted, Mode::Strict).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(parsed.rules, expected.rules);
    assert_eq!(print(&parsed.rules), print(&expected.rules));
    // Spans point into the pasted text, one line further down.
    let rules = |p: &kpconform_iptables::Parsed| {
        p.rules
            .tables
            .iter()
            .flat_map(|t| t.chains.iter().flat_map(|c| c.rules.iter().map(|r| r.span)))
            .collect::<Vec<_>>()
    };
    for (a, b) in rules(&expected).into_iter().zip(rules(&parsed)) {
        assert_eq!(b.line, a.line + 1);
        assert_eq!(
            &pasted[b.start as usize..b.end as usize],
            &bare[a.start as usize..a.end as usize]
        );
    }
    // One warning per skipped command, at the command, naming its output.
    let dump_lines = bare.lines().count() as u32;
    let first = dump_lines + 2;
    let got: Vec<(u32, &str)> = parsed
        .warnings
        .iter()
        .map(|w| (w.span.line, w.message.as_str()))
        .collect();
    let (a, b) = (
        format!(
            "skipped the output of `kubectl get svc -n shop -o wide` (lines {}-{})",
            first + 1,
            first + 2
        ),
        format!(
            "skipped the output of `kubectl get endpointslices -n shop` (lines {}-{})",
            first + 5,
            first + 6
        ),
    );
    assert_eq!(got, [(first, a.as_str()), (first + 4, b.as_str())]);
    assert!(parsed
        .warnings
        .iter()
        .all(|w| w.kind == kpconform_iptables::ParseErrorKind::Skipped));
    // Lax mode reads it the same way.
    assert_eq!(parse(&pasted, Mode::Lax).unwrap().rules, expected.rules);
}

#[test]
fn errors_in_a_pasted_session_keep_their_line_and_column() {
    let bare = fs::read_to_string(
        recordings_dir().join("kube-proxy-v1.30/outputs/clusterip-3-endpoints.rules"),
    )
    .unwrap();
    // A bad address, and a stray line inside the nat block.
    let broken = bare
        .replacen("-j KUBE-MARK-MASQ", "-j KUBE-MARK-MASQ -d 10.0.0.300", 1)
        .replacen(
            ":KUBE-SERVICES - [0:0]\n",
            ":KUBE-SERVICES - [0:0]\nNAME TYPE\n",
            1,
        );
    let pasted = transcript(&broken);
    let errors = parse_str(&pasted).unwrap_err();
    let src = kpconform_iptables::SourceFile::new("t", pasted.as_str());
    let at = |needle: &str| {
        let offset = pasted.find(needle).unwrap();
        src.line_col(offset)
    };
    let got: Vec<(usize, usize)> = errors
        .iter()
        .map(|e| src.line_col(e.span.start as usize))
        .collect();
    let mut expected = vec![at("10.0.0.300"), at("NAME TYPE\n")];
    expected.sort();
    assert_eq!(got, expected, "{errors:?}");
    assert!(expected.iter().all(|&(line, _)| line > 1));
}

#[test]
fn a_pasted_listing_is_still_named_as_a_listing() {
    let text = "[root@node-a ~]# iptables -t nat -L KUBE-SERVICES -n\n\
                Chain KUBE-SERVICES (2 references)\n\
                target     prot opt source               destination\n\
                KUBE-SVC-X  tcp  --  0.0.0.0/0  10.96.0.1  /* default/kubernetes:https */\n\
                [root@node-a ~]# \n";
    let errors = parse_str(text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].span.line, 2);
    assert!(errors[0].message.contains("`iptables -L` output"));
}
