//! Reading our own (non-Kubernetes) fields from the YAML tree: strict key
//! sets with "did you mean", and typed scalars with the path of every value.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::error::{did_you_mean, index_path, key_path, ErrorKind, Problem};
use super::yaml::{Node, Resolved, Value};

/// A node together with its path in the document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) node: &'a Node<'a>,
    pub(crate) path: &'a str,
}

/// A mapping whose keys are checked against a fixed set when it is opened.
pub(crate) struct Fields<'a> {
    at: At<'a>,
    entries: &'a [(Node<'a>, Node<'a>)],
    paths: Vec<String>,
}

/// A value read from a [`Fields`]: the node and its own path.
pub(crate) struct Field<'a> {
    pub(crate) node: &'a Node<'a>,
    pub(crate) path: String,
}

impl<'a> Field<'a> {
    pub(crate) fn at(&self) -> At<'_> {
        At {
            node: self.node,
            path: &self.path,
        }
    }
}

impl<'a> Fields<'a> {
    /// Opens a mapping; the first key not in `allowed` (in file order) is an error.
    pub(crate) fn open(at: At<'a>, allowed: &[&str]) -> Result<Fields<'a>, Problem> {
        let entries = mapping(at)?;
        let mut paths = Vec::with_capacity(entries.len());
        for (key, _) in entries {
            let name = key.scalar().map(|s| &*s.text).unwrap_or("");
            let path = key_path(at.path, name);
            if !allowed.contains(&name) {
                let mut message = format!("unknown key `{name}`");
                match did_you_mean(name, allowed.iter().copied()) {
                    Some(s) => message.push_str(&format!("; did you mean `{s}`?")),
                    None => message.push_str(&format!("; expected one of: {}", allowed.join(", "))),
                }
                return Err(Problem::new(
                    ErrorKind::UnknownKey,
                    key.span,
                    &path,
                    message,
                ));
            }
            paths.push(path);
        }
        Ok(Fields { at, entries, paths })
    }

    /// The value under `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<Field<'a>> {
        self.entries
            .iter()
            .zip(&self.paths)
            .find(|((k, _), _)| k.scalar().is_some_and(|s| s.text == key))
            .map(|((_, v), path)| Field {
                node: v,
                path: path.clone(),
            })
    }

    /// The value under `key`, or an error at the mapping.
    pub(crate) fn required(&self, key: &str) -> Result<Field<'a>, Problem> {
        self.get(key).ok_or_else(|| {
            Problem::new(
                ErrorKind::MissingKey,
                self.at.node.span,
                self.at.path,
                format!("missing required key `{key}`"),
            )
        })
    }

    /// The value under `key` unless absent or null.
    pub(crate) fn optional(&self, key: &str) -> Option<Field<'a>> {
        self.get(key).filter(|f| !f.node.is_null())
    }
}

/// The entries of a mapping node.
pub(crate) fn mapping<'a>(at: At<'a>) -> Result<&'a [(Node<'a>, Node<'a>)], Problem> {
    match &at.node.value {
        Value::Map(entries) => Ok(entries),
        _ => Err(expected(at, "a mapping")),
    }
}

/// The items of a sequence node; null counts as empty.
pub(crate) fn sequence<'a>(at: At<'a>) -> Result<Vec<Field<'a>>, Problem> {
    match &at.node.value {
        Value::Seq(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, node)| Field {
                node,
                path: index_path(at.path, i),
            })
            .collect()),
        _ if at.node.is_null() => Ok(Vec::new()),
        _ => Err(expected(at, "a sequence")),
    }
}

/// The text of a non-null scalar. Plain numbers and booleans are taken as
/// written: a name like `8080` is still a name.
pub(crate) fn text<'a>(at: At<'a>) -> Result<&'a str, Problem> {
    match at.node.scalar() {
        Some(s) if s.resolve() != Resolved::Null => Ok(&s.text),
        _ => Err(expected(at, "a string")),
    }
}

/// A YAML boolean (plain `true` or `false`).
pub(crate) fn boolean(at: At<'_>) -> Result<bool, Problem> {
    match at.node.scalar().map(|s| s.resolve()) {
        Some(Resolved::Bool(b)) => Ok(b),
        _ => Err(expected(at, "`true` or `false`")),
    }
}

/// A plain integer in `min..=max`.
pub(crate) fn integer(at: At<'_>, min: i128, max: i128) -> Result<i128, Problem> {
    let value = at
        .node
        .scalar()
        .filter(|s| s.resolve() == Resolved::Int)
        .and_then(|s| super::yaml::parse_int(&s.text))
        .ok_or_else(|| expected(at, "an integer"))?;
    if !(min..=max).contains(&value) {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            format!("{value} is out of range {min}..={max}"),
        ));
    }
    Ok(value)
}

/// An IPv4 or IPv6 address, without brackets or prefix.
pub(crate) fn ip(at: At<'_>) -> Result<IpAddr, Problem> {
    let t = text(at)?;
    IpAddr::from_str(t).map_err(|_| {
        Problem::invalid(
            at.node.span,
            at.path,
            format!("`{t}` is not an IP address (like 203.0.113.7 or 2001:db8::7)"),
        )
    })
}

/// An address with an optional prefix length; a bare address is a /32
/// (IPv4) or /128 (IPv6).
pub(crate) fn address(at: At<'_>) -> Result<IpNet, Problem> {
    let t = text(at)?;
    if let Ok(ip) = IpAddr::from_str(t) {
        return Ok(IpNet::from(ip));
    }
    IpNet::from_str(t).map_err(|_| {
        Problem::invalid(
            at.node.span,
            at.path,
            format!(
                "`{t}` is not an address (like 192.168.0.10, 192.168.0.10/24 or fd00:192:168::10/64)"
            ),
        )
    })
}

/// A CIDR with an explicit prefix length, as kube-proxy's flags take them.
pub(crate) fn cidr(at: At<'_>) -> Result<IpNet, Problem> {
    let t = text(at)?;
    IpNet::from_str(t).map_err(|_| {
        Problem::invalid(
            at.node.span,
            at.path,
            format!("`{t}` is not a CIDR (like 10.64.0.0/16 or fd00:10:64::/48)"),
        )
    })
}

/// kube-proxy's `--cluster-cidr`: one CIDR, or a comma-separated CIDR of
/// each family (`10.64.0.0/16,fd00:10:64::/48`).
pub(crate) fn cidrs(at: At<'_>) -> Result<Vec<IpNet>, Problem> {
    let t = text(at)?;
    let nets = t
        .split(',')
        .map(|c| IpNet::from_str(c.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            Problem::invalid(
                at.node.span,
                at.path,
                format!(
                    "`{t}` is not a CIDR or two comma-separated ones, one per family \
                     (like 10.64.0.0/16 or 10.64.0.0/16,fd00:10:64::/48)"
                ),
            )
        })?;
    let v4 = nets.iter().filter(|n| matches!(n, IpNet::V4(_))).count();
    if v4 > 1 || nets.len() - v4 > 1 {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            format!("`{t}` has two CIDRs of one family; kube-proxy takes at most one per family"),
        ));
    }
    Ok(nets)
}

/// A list of `item`s.
pub(crate) fn list<T>(
    at: At<'_>,
    item: impl Fn(At<'_>) -> Result<T, Problem>,
) -> Result<Vec<T>, Problem> {
    sequence(at)?.iter().map(|f| item(f.at())).collect()
}

/// "expected X, found Y" at a node.
pub(crate) fn expected(at: At<'_>, what: &str) -> Problem {
    Problem::invalid(
        at.node.span,
        at.path,
        format!("expected {what}, found {}", at.node.describe()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::yaml::parse_documents;

    fn root(text: &str) -> Node<'_> {
        parse_documents(text).expect("yaml").remove(0)
    }

    #[test]
    fn unknown_keys_name_path_and_suggestion() {
        let node = root("name: a\nadresses: []\n");
        let at = At {
            node: &node,
            path: "nodes[1]",
        };
        let err = Fields::open(at, &["name", "addresses"])
            .err()
            .expect("unknown key");
        assert_eq!(err.kind, ErrorKind::UnknownKey);
        assert_eq!(err.path, "nodes[1].adresses");
        assert_eq!(err.span.line, 2);
        assert!(
            err.message.contains("did you mean `addresses`?"),
            "{}",
            err.message
        );
    }

    #[test]
    fn typed_scalars() {
        let node =
            root("a: 192.168.0.10\nb: 192.168.0.10/24\nc: 10.0.0.0\nd: 32\ne: 'true'\nf: ~\n");
        let fields = Fields::open(
            At {
                node: &node,
                path: "",
            },
            &["a", "b", "c", "d", "e", "f"],
        )
        .expect("fields");
        let get = |k: &str| fields.get(k).expect(k);
        assert_eq!(address(get("a").at()).map(|n| n.prefix_len()), Ok(32));
        assert_eq!(
            address(get("b").at()).map(|n| n.to_string()),
            Ok("192.168.0.10/24".into())
        );
        assert_eq!(
            cidr(get("c").at()).map_err(|e| e.path),
            Err("c".to_string())
        );
        assert_eq!(
            integer(get("d").at(), 0, 31).map_err(|e| e.kind),
            Err(ErrorKind::InvalidValue)
        );
        assert!(
            boolean(get("e").at()).is_err(),
            "a quoted 'true' is a string"
        );
        assert!(fields.optional("f").is_none());
        assert_eq!(
            list(get("f").at(), |a| text(a).map(str::to_string)).map(|v| v.len()),
            Ok(0)
        );
    }
}
