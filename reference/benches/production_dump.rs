//! How the suite copes with a production-sized node: 10,000 ClusterIP
//! services with 10 endpoints each (about 440k lines / 34 MB of
//! iptables-save text, what the reference generator writes for that state).
//!
//! Every step is timed as the median of several runs and reported as a ratio
//! to a baseline measured in the same run on the same text: one memchr pass
//! counting its lines, i.e. the cost of merely reading the dump once. Ratios
//! survive a noisy 2-core machine far better than absolute times.
//!
//! `cargo bench -p kpconform-reference --bench production_dump [-- SERVICES ENDPOINTS]`

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use kpconform_iptables::model::Protocol;
use kpconform_iptables::normalize;
use kpconform_iptables::parse_str;
use kpconform_iptables::SourceFile;
use kpconform_iptables::{Packet, Tracer};
use kpconform_suite::invariants::{self, Profile};
use kpconform_suite::scenario::{FlowSource, GeneratorInput};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let services = args.first().copied().unwrap_or(10_000);
    let endpoints = args.get(1).copied().unwrap_or(10);

    let input = cluster(services, endpoints);
    let (text, generate) = timed(3, || kpconform_reference::generate(&input));
    let lines = text.lines().count();
    println!(
        "node: {services} services x {endpoints} endpoints -> {lines} lines, {:.1} MB",
        text.len() as f64 / 1e6
    );

    let (_, baseline) = timed(9, || memchr::memchr_iter(b'\n', text.as_bytes()).count());
    let (rules, parse) = timed(5, || parse_str(&text).expect("the reference output parses"));
    let (violations, check) = timed(5, || invariants::check(&rules, Profile::KubeProxy));
    assert!(
        violations.is_empty(),
        "{:?}",
        &violations[..violations.len().min(3)]
    );
    let tracer = Tracer::new(&rules, &["192.168.0.10/32".parse().unwrap()]);
    let last = services - 1;
    let packet = Packet::new(
        FlowSource::Ip("10.64.0.99".parse().unwrap()),
        format!("10.96.{}.{}:80", last / 250, last % 250 + 1)
            .parse()
            .unwrap(),
        Protocol::Tcp,
    );
    let (dist, trace) = timed(9, || tracer.trace(&packet).expect("traces"));
    assert_eq!(dist.outcomes.len(), endpoints);
    let (_, norm) = timed(3, || normalize(&text));

    println!("{:<28} {:>12} {:>10}", "step", "median", "x baseline");
    for (name, t) in [
        ("baseline: count lines", baseline),
        ("generate (reference)", generate),
        ("parse (strict)", parse),
        ("invariants (kube-proxy)", check),
        ("parse + invariants", parse + check),
        ("trace one flow (last svc)", trace),
        ("normalize", norm),
    ] {
        println!(
            "{name:<28} {:>10.1}ms {:>10.1}",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}

/// Runs `f` `n` times; returns the last result and the median time.
fn timed<T>(n: usize, mut f: impl FnMut() -> T) -> (T, Duration) {
    let mut times = Vec::with_capacity(n);
    let mut out = None;
    for _ in 0..n {
        let start = Instant::now();
        let r = black_box(f());
        times.push(start.elapsed());
        out = Some(r);
    }
    times.sort();
    (out.expect("n > 0"), times[n / 2])
}

/// A cluster of `services` ClusterIP services with `endpoints` ready endpoints each.
fn cluster(services: usize, endpoints: usize) -> GeneratorInput {
    let mut y = String::from(
        "node:\n  name: node-a\n  addresses: [192.168.0.10]\n  clusterCIDR: 10.64.0.0/16\n  masqueradeAll: false\n  masqueradeBit: 14\n  nodePortAddresses: []\nobjects:\n",
    );
    for s in 0..services {
        let ip = format!("10.96.{}.{}", s / 250, s % 250 + 1);
        let _ = write!(
            y,
            "- apiVersion: v1\n  kind: Service\n  metadata: {{name: svc{s}, namespace: ns}}\n  spec:\n    type: ClusterIP\n    clusterIP: {ip}\n    clusterIPs: [{ip}]\n    ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]\n"
        );
        let _ = write!(
            y,
            "- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  metadata:\n    name: svc{s}-abc\n    namespace: ns\n    labels: {{kubernetes.io/service-name: svc{s}}}\n  addressType: IPv4\n  ports: [{{name: http, port: 8080, protocol: TCP}}]\n  endpoints:\n"
        );
        for e in 0..endpoints {
            let _ = write!(
                y,
                "  - addresses: [10.64.{}.{}]\n    conditions: {{ready: true, serving: true, terminating: false}}\n    nodeName: node-{}\n",
                (s * endpoints + e) / 250 % 256,
                (s * endpoints + e) % 250 + 1,
                e % 3
            );
        }
    }
    GeneratorInput::from_yaml(&SourceFile::new("bench", y)).expect("valid cluster")
}
