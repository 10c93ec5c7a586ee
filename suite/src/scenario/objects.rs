//! Kubernetes objects: dispatch on apiVersion and kind, `kind: List`
//! flattening, and serialization back to YAML.

use serde::{Serialize, Serializer};

use super::de::from_node;
use super::error::{index_path, key_path, ErrorKind, Problem, ScenarioError};
use super::fields::{mapping, sequence, text, At, Fields};
use super::validate::validate;
use super::yaml::{parse_documents, Node, Value};
use super::Object;
use kpconform_iptables::{SourceFile, Span};

const ACCEPTED: &str =
    "objects may be v1 Service, discovery.k8s.io/v1 EndpointSlice, v1 Node, or a v1 List of them";

/// Reads every object of a YAML file: each document is one object or a
/// `kind: List` (what `kubectl get -o yaml` prints), flattened in order.
pub fn parse_objects(source: &SourceFile) -> Result<Vec<Object>, ScenarioError> {
    let documents = parse_documents(source.text()).map_err(|p| p.in_file(source))?;
    let mut objects = Vec::new();
    for document in &documents {
        let at = At {
            node: document,
            path: "",
        };
        read_object(at, &mut objects).map_err(|p| p.in_file(source))?;
    }
    Ok(objects.into_iter().map(|l| l.object).collect())
}

/// An object and where its `metadata.name` was written (the object itself
/// when it has none), for checks made after reading.
pub(crate) struct Located {
    pub(crate) object: Object,
    pub(crate) name_span: Span,
    pub(crate) name_path: String,
}

/// Reads a sequence of objects (each possibly a List).
pub(crate) fn read_objects(at: At<'_>) -> Result<Vec<Located>, Problem> {
    let mut objects = Vec::new();
    for item in sequence(at)? {
        read_object(item.at(), &mut objects)?;
    }
    Ok(objects)
}

/// Reads one object, or every item of a List, into `out`.
pub(crate) fn read_object(at: At<'_>, out: &mut Vec<Located>) -> Result<(), Problem> {
    let entries = mapping(at)?;
    let lookup = |key: &str| -> Result<(&Node<'_>, String), Problem> {
        entries
            .iter()
            .find(|(k, _)| k.scalar().is_some_and(|s| s.text == key))
            .map(|(_, v)| (v, key_path(at.path, key)))
            .ok_or_else(|| {
                Problem::new(
                    ErrorKind::MissingKey,
                    at.node.span,
                    at.path,
                    format!("object has no `{key}`; {ACCEPTED}"),
                )
            })
    };
    let (kind_node, kind_path) = lookup("kind")?;
    let kind = text(At {
        node: kind_node,
        path: &kind_path,
    })?;
    let (api_node, api_path) = lookup("apiVersion")?;
    let api_version = text(At {
        node: api_node,
        path: &api_path,
    })?;
    let object = match (api_version, kind) {
        ("v1", "Service") => Object::Service(Box::new(from_node(at.node, at.path)?)),
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            Object::EndpointSlice(Box::new(from_node(at.node, at.path)?))
        }
        ("v1", "Node") => Object::Node(Box::new(from_node(at.node, at.path)?)),
        ("v1", "List") => {
            let list = Fields::open(at, &["apiVersion", "kind", "metadata", "items"])?;
            if let Some(items) = list.get("items") {
                for (i, item) in sequence(items.at())?.iter().enumerate() {
                    let path = index_path(&items.path, i);
                    read_object(
                        At {
                            node: item.node,
                            path: &path,
                        },
                        out,
                    )?;
                }
            }
            return Ok(());
        }
        (_, "Service" | "Node" | "List" | "EndpointSlice") => {
            let expected = if kind == "EndpointSlice" {
                "discovery.k8s.io/v1"
            } else {
                "v1"
            };
            return Err(Problem::new(
                ErrorKind::UnsupportedKind,
                api_node.span,
                &api_path,
                format!("{kind} must have apiVersion `{expected}`, not `{api_version}`"),
            ));
        }
        (_, "Endpoints") => {
            return Err(Problem::new(
                ErrorKind::UnsupportedKind,
                kind_node.span,
                &kind_path,
                format!(
                    "kind `Endpoints` is not read (kube-proxy reads EndpointSlices); {ACCEPTED}"
                ),
            ))
        }
        _ => {
            return Err(Problem::new(
                ErrorKind::UnsupportedKind,
                kind_node.span,
                &kind_path,
                format!("unsupported kind `{kind}` (apiVersion `{api_version}`); {ACCEPTED}"),
            ))
        }
    };
    validate(at.node, at.path, &object)?;
    let name = entries
        .iter()
        .find(|(k, _)| k.scalar().is_some_and(|s| s.text == "metadata"))
        .and_then(|(_, meta)| match &meta.value {
            Value::Map(m) => m
                .iter()
                .find(|(k, _)| k.scalar().is_some_and(|s| s.text == "name")),
            _ => None,
        });
    let (name_span, name_path) = match name {
        Some((_, v)) => (v.span, key_path(at.path, "metadata.name")),
        None => (at.node.span, at.path.to_string()),
    };
    out.push(Located {
        object,
        name_span,
        name_path,
    });
    Ok(())
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Object::Service(o) => o.serialize(serializer),
            Object::EndpointSlice(o) => o.serialize(serializer),
            Object::Node(o) => o.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(text: &str) -> Result<Vec<Object>, ScenarioError> {
        parse_objects(&SourceFile::new("objs.yaml", text))
    }

    #[test]
    fn kubectl_list_with_server_fields_is_flattened() {
        let text = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: web
    namespace: shop
    uid: 9c6b3213-c22d-4c84-a4d2-484b9bf5b98b
    resourceVersion: "122722"
    annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
    managedFields:
    - apiVersion: v1
      fieldsType: FieldsV1
      fieldsV1: {f:spec: {f:ports: {.: {}}, f:weight: 1.5}}
      manager: kubectl-client-side-apply
      operation: Update
      time: "2024-05-14T09:12:33Z"
  spec: {clusterIP: 10.96.0.50, ports: [{port: 80, protocol: TCP}]}
  status: {loadBalancer: {}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: web-1
    namespace: shop
    ownerReferences: [{apiVersion: v1, kind: Service, name: web, uid: x, controller: true}]
  addressType: IPv4
  endpoints: [{addresses: [10.64.0.5], conditions: {ready: true}}]
metadata:
  resourceVersion: ""
"#;
        let objs = objects(text).expect("a kubectl list");
        assert_eq!(objs.len(), 2);
        let Object::Service(svc) = &objs[0] else {
            panic!("{:?}", objs[0])
        };
        assert_eq!(svc.metadata.name.as_deref(), Some("web"));
        assert_eq!(svc.metadata.managed_fields.as_ref().map(Vec::len), Some(1));
        assert!(matches!(objs[1], Object::EndpointSlice(_)));
    }

    #[test]
    fn unsupported_kind_names_the_kind_and_what_is_accepted() {
        let err = objects("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
            .expect_err("deployment");
        assert_eq!(err.kind(), ErrorKind::UnsupportedKind);
        assert_eq!((err.line(), err.column(), err.path()), (2, 7, "kind"));
        assert!(err.message().contains("`Deployment`"), "{}", err.message());
        assert!(err.message().contains("EndpointSlice"), "{}", err.message());
    }

    #[test]
    fn wrong_api_version_points_at_it() {
        let err = objects("apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\n")
            .expect_err("v1beta1");
        assert_eq!(
            (err.line(), err.column(), err.path()),
            (1, 13, "apiVersion")
        );
        let err =
            objects("kind: List\napiVersion: v1\nitems:\n- kind: Endpoints\n  apiVersion: v1\n")
                .expect_err("endpoints");
        assert_eq!(
            (err.line(), err.column(), err.path()),
            (4, 9, "items[0].kind")
        );
    }

    #[test]
    fn multiple_documents_are_all_read() {
        let objs = objects("apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n---\napiVersion: v1\nkind: Service\nspec: {clusterIP: 10.96.0.1, ports: [{port: 443}]}\n")
            .expect("two documents");
        assert_eq!(objs.len(), 2);
    }
}
