//! Inputs of production size read fine: the YAML reader bounds what
//! aliases copy, not how big a document is (issue #12). 50,000 Services
//! with an EndpointSlice each, as a `kubectl get svc,endpointslices -o
//! yaml` dump (a `kind: List`) and as a generator input.

use std::fmt::Write as _;
use std::time::Instant;

use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::{parse_objects, GeneratorInput, Object};

const SERVICES: usize = 50_000;

/// One Service and its EndpointSlice, as kubectl prints them (indented
/// under a list at `indent`).
fn objects(out: &mut String, indent: &str) {
    for i in 0..SERVICES {
        let (a, b) = (i / 250, i % 250);
        let _ = write!(
            out,
            "{indent}- apiVersion: v1
{indent}  kind: Service
{indent}  metadata: {{name: svc-{i}, namespace: default, resourceVersion: \"{i}\"}}
{indent}  spec:
{indent}    type: ClusterIP
{indent}    clusterIP: 10.{x}.{y}.{z}
{indent}    clusterIPs: [10.{x}.{y}.{z}]
{indent}    ipFamilies: [IPv4]
{indent}    ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
{indent}- apiVersion: discovery.k8s.io/v1
{indent}  kind: EndpointSlice
{indent}  metadata:
{indent}    name: svc-{i}-abcde
{indent}    namespace: default
{indent}    labels: {{kubernetes.io/service-name: svc-{i}}}
{indent}  addressType: IPv4
{indent}  ports: [{{name: http, port: 8080, protocol: TCP}}]
{indent}  endpoints:
{indent}  - addresses: [10.64.{c}.{d}]
{indent}    conditions: {{ready: true}}
{indent}    nodeName: node-a
",
            x = 96 + a / 250,
            y = a % 250,
            z = b + 1,
            c = a % 250,
            d = b + 1,
        );
    }
}

fn counts(objects: &[Object]) -> (usize, usize) {
    let services = objects
        .iter()
        .filter(|o| matches!(o, Object::Service(_)))
        .count();
    (services, objects.len() - services)
}

#[test]
fn a_kubectl_dump_of_50k_services_reads() {
    let mut text =
        String::from("apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n");
    objects(&mut text, "");
    let start = Instant::now();
    let read =
        parse_objects(&SourceFile::new("kubectl.yaml", text)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts(&read), (SERVICES, SERVICES));
    println!(
        "{SERVICES} Services and slices read in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn a_generator_input_of_50k_services_reads() {
    let mut text = String::from(
        "node:\n  name: node-a\n  addresses: [192.168.0.10]\n  clusterCIDR: 10.64.0.0/16\nobjects:\n",
    );
    objects(&mut text, "");
    let start = Instant::now();
    let input = GeneratorInput::from_yaml(&SourceFile::new("input.yaml", text))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts(&input.objects), (SERVICES, SERVICES));
    println!(
        "{SERVICES} Services and slices read in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
