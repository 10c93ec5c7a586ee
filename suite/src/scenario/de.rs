//! A serde `Deserializer` over the YAML tree, for Kubernetes objects.
//!
//! k8s-openapi's `Deserialize` impls skip unknown fields with `IgnoredAny`,
//! so a typo like `externalTraficPolicy` would silently vanish. This
//! deserializer notices every mapping value deserialized as ignored — the
//! same trick serde_ignored uses — and, because it walks our tree, knows the
//! key's span and path, and the struct's field names for a suggestion.
//! Errors raised by visitors get the span and path of the innermost node.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::error::{did_you_mean, index_path, key_path, ErrorKind, Problem};
use super::yaml::{parse_int, Node, Resolved, Value};
use kpconform_iptables::Span;

/// Deserializes `T` from `node`, refusing keys that `T` does not know.
pub(crate) fn from_node<T: de::DeserializeOwned>(
    node: &Node<'_>,
    path: &str,
) -> Result<T, Problem> {
    let unknown = RefCell::new(None);
    let root = Path::Root(path);
    let de = NodeDe {
        node,
        path: &root,
        key: None,
        unknown: &unknown,
    };
    let result = T::deserialize(de);
    // An unknown key is reported even if a later type error aborted the
    // walk: it comes first in the file and is the likelier root cause.
    if let Some(problem) = unknown.into_inner() {
        return Err(problem);
    }
    result.map_err(|e| {
        Problem::invalid(
            e.span.unwrap_or(node.span),
            e.path.as_deref().unwrap_or(path),
            e.message,
        )
    })
}

/// A visitor's complaint, with the innermost node it was raised at.
#[derive(Debug)]
pub(crate) struct Error {
    message: String,
    span: Option<Span>,
    path: Option<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            message: msg.to_string(),
            span: None,
            path: None,
        }
    }
}

/// The key a value was found under, and the fields its struct knows.
#[derive(Clone, Copy)]
struct Key<'de> {
    node: &'de Node<'de>,
    known: &'static [&'static str],
}

/// Where a node is, as a chain of steps from the root. Spelled out as text
/// only for an error: building the text for every node read was most of
/// the cost of reading a large input.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root(&'p str),
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    /// `a.b[3].c`, as [`key_path`] and [`index_path`] spell it.
    fn render(&self) -> String {
        match self {
            Path::Root(root) => root.to_string(),
            Path::Key(parent, key) => key_path(&parent.render(), key),
            Path::Index(parent, i) => index_path(&parent.render(), *i),
        }
    }
}

struct NodeDe<'p, 'de> {
    node: &'de Node<'de>,
    path: &'p Path<'p>,
    key: Option<Key<'de>>,
    unknown: &'de RefCell<Option<Problem>>,
}

impl<'p, 'de> NodeDe<'p, 'de> {
    fn child<'c>(
        &self,
        node: &'de Node<'de>,
        path: &'c Path<'c>,
        key: Option<Key<'de>>,
    ) -> NodeDe<'c, 'de> {
        NodeDe {
            node,
            path,
            key,
            unknown: self.unknown,
        }
    }

    /// Attaches this node's position to an error that has none yet.
    fn locate<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|mut e| {
            if e.span.is_none() {
                e.span = Some(self.node.span);
                e.path = Some(self.path.render());
            }
            e
        })
    }

    fn any<V: Visitor<'de>>(
        self,
        visitor: V,
        fields: &'static [&'static str],
    ) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int => match parse_int(&s.text) {
                    Some(i) if i >= 0 => match u64::try_from(i) {
                        Ok(u) => visitor.visit_u64(u),
                        Err(_) => visitor.visit_str(&s.text),
                    },
                    Some(i) => match i64::try_from(i) {
                        Ok(n) => visitor.visit_i64(n),
                        Err(_) => visitor.visit_str(&s.text),
                    },
                    None => visitor.visit_str(&s.text),
                },
                // Floats only reach untyped JSON inside objects (managedFields);
                // nothing the suite decides on is read through this path.
                Resolved::Float => match parse_float(&s.text) {
                    Some(f) => visitor.visit_f64(f),
                    None => visitor.visit_str(&s.text),
                },
                Resolved::Str => visitor.visit_str(&s.text),
            },
            Value::Seq(items) => visitor.visit_seq(SeqAccess {
                de: &self,
                items: items.iter().enumerate(),
            }),
            Value::Map(entries) => visitor.visit_map(MapAccess {
                de: &self,
                entries: entries.iter(),
                value: None,
                fields,
            }),
        };
        self.locate(result)
    }
}

fn parse_float(t: &str) -> Option<f64> {
    match t
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .as_str()
    {
        ".inf" if t.starts_with('-') => Some(f64::NEG_INFINITY),
        ".inf" => Some(f64::INFINITY),
        ".nan" => Some(f64::NAN),
        _ => t.parse().ok(),
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.any(visitor, &[])
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            let result = visitor.visit_none();
            self.locate(result)
        } else {
            visitor.visit_some(self)
        }
    }

    // Kubernetes strings are often written unquoted (`name: 8080`,
    // `version: 1.30`); like the API server's YAML decoding into a string
    // field, take the text as written.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.scalar() {
            Some(s) if !s.is_null() => {
                let result = visitor.visit_str(&s.text);
                self.locate(result)
            }
            _ => self.any(visitor, &[]),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.any(visitor, fields)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match self.node.scalar() {
            Some(s) => visitor.visit_enum((&*s.text).into_deserializer()),
            None => Err(de::Error::custom(format!(
                "expected an enum variant name, found {}",
                self.node.describe()
            ))),
        };
        self.locate(result)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Some(key) = self.key {
            let mut slot = self.unknown.borrow_mut();
            if slot.is_none() {
                let name = key.node.scalar().map(|s| &*s.text).unwrap_or("");
                let mut message =
                    format!("unknown field `{name}` (not in the Kubernetes v1.33 API)");
                if let Some(s) = did_you_mean(name, key.known.iter().copied()) {
                    message.push_str(&format!("; did you mean `{s}`?"));
                }
                *slot = Some(Problem::new(
                    ErrorKind::UnknownKey,
                    key.node.span,
                    &self.path.render(),
                    message,
                ));
            }
        }
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple tuple_struct map
    }
}

struct SeqAccess<'d, 'p, 'de, I> {
    de: &'d NodeDe<'p, 'de>,
    items: I,
}

impl<'de, I: Iterator<Item = (usize, &'de Node<'de>)>> de::SeqAccess<'de>
    for SeqAccess<'_, '_, 'de, I>
{
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some((i, node)) => {
                let path = Path::Index(self.de.path, i);
                let child = self.de.child(node, &path, None);
                seed.deserialize(child).map(Some)
            }
            None => Ok(None),
        }
    }
}

struct MapAccess<'d, 'p, 'de, I> {
    de: &'d NodeDe<'p, 'de>,
    entries: I,
    value: Option<(&'de Node<'de>, &'de Node<'de>)>,
    fields: &'static [&'static str],
}

impl<'de, I: Iterator<Item = &'de (Node<'de>, Node<'de>)>> de::MapAccess<'de>
    for MapAccess<'_, '_, 'de, I>
{
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        let name = key.scalar().map(|s| &*s.text).unwrap_or("");
        let path = Path::Key(self.de.path, name);
        let child = self.de.child(key, &path, None);
        seed.deserialize(child).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        let name = key.scalar().map(|s| &*s.text).unwrap_or("");
        let known = Key {
            node: key,
            known: self.fields,
        };
        let path = Path::Key(self.de.path, name);
        let child = self.de.child(value, &path, Some(known));
        seed.deserialize(child)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::yaml::parse_documents;
    use k8s_openapi::api::core::v1::Service;

    fn service(text: &str) -> Result<Service, Problem> {
        let node = parse_documents(text).expect("yaml").remove(0);
        from_node(&node, "objects[0]")
    }

    #[test]
    fn reads_a_service_with_unquoted_strings() {
        let svc = service(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default, resourceVersion: 122722}\n\
             spec:\n  clusterIP: 10.96.0.50\n  ports: [{name: http, port: 80, targetPort: 8080}]\n",
        )
        .expect("service");
        assert_eq!(svc.metadata.resource_version.as_deref(), Some("122722"));
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.50"));
        let port = &spec.ports.expect("ports")[0];
        assert_eq!(port.port, 80);
        assert_eq!(
            port.target_port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
        );
    }

    #[test]
    fn unknown_field_inside_spec_is_located() {
        let err = service("apiVersion: v1\nkind: Service\nspec:\n  type: NodePort\n  externalTraficPolicy: Local\n")
            .expect_err("typo");
        assert_eq!(err.kind, ErrorKind::UnknownKey);
        assert_eq!(err.path, "objects[0].spec.externalTraficPolicy");
        assert_eq!(err.span.line, 5);
        assert!(
            err.message
                .contains("did you mean `externalTrafficPolicy`?"),
            "{}",
            err.message
        );
    }

    #[test]
    fn type_errors_point_at_the_innermost_node() {
        let err = service("apiVersion: v1\nkind: Service\nspec:\n  ports:\n  - port: eighty\n")
            .expect_err("bad port");
        assert_eq!(err.path, "objects[0].spec.ports[0].port");
        assert_eq!(err.span.line, 5);
    }
}
