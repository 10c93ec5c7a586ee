//! One service with many endpoints (issue #12, item 3): the cost of
//! `kpconform check` on a flow into it, and the size of `kpconform trace`'s
//! output, as the endpoints grow.
//!
//! kube-proxy dispatches `n` endpoints with `n - 1` statistic rules, so
//! path `i` has a mass that is a product of `i` kernel probabilities (`31·i`
//! bits) and a walk through `i - 1` rules not taken. With exact masses kept
//! as `n / 2^a` and walks sharing their common prefix, checking the flow is
//! dominated by its fixed costs up to thousands of endpoints; the trace
//! output, one line per run of rules not taken, grows linearly (`--full`
//! lists each rule, which is quadratic by nature).
//!
//! Keeping every path's exact mass is `Θ(n²)` bits (~46 MiB at 5,000), so
//! `kpconform check` judges a passing flow while it is traced and keeps
//! nothing ([`Keep::Failing`], the `check` column); keeping the whole
//! distribution, as kernel mode must, is the `(keep all)` column.
//!
//! Times are medians of several runs, and the result is a ratio measured in
//! this run: the big service against the small one.
//!
//! `cargo bench -p kpconform-reference --bench big_service [-- SMALL BIG]`
//! (default 100 and 5000 endpoints).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kpconform_iptables::model::Protocol;
use kpconform_iptables::{parse_str, Distribution, SourceFile, Tracer};
use kpconform_suite::check::{check_flow, check_flow_keeping, Keep};
use kpconform_suite::exact::BigRational;
use kpconform_suite::scenario::{Destination, Expect, Flow, FlowSource, GeneratorInput};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let small = args.first().copied().unwrap_or(100);
    let big = args.get(1).copied().unwrap_or(5_000);

    let mut rows = Vec::new();
    for n in [small, big] {
        rows.push(measure(n));
    }
    println!(
        "{:>10} {:>12} {:>14} {:>10} {:>16} {:>16}",
        "endpoints", "check", "(keep all)", "paths", "trace bytes", "trace --full"
    );
    for r in &rows {
        println!(
            "{:>10} {:>10.2}ms {:>12.2}ms {:>10} {:>16} {:>16}",
            r.endpoints,
            r.check.as_secs_f64() * 1e3,
            r.check_all.as_secs_f64() * 1e3,
            r.paths,
            r.brief_bytes,
            r.full_bytes
        );
    }
    let (s, b) = (&rows[0], &rows[1]);
    let size = b.endpoints as f64 / s.endpoints as f64;
    println!(
        "check {big}/{small} endpoints: {:.1}x (goal <= 50x; {size:.0}x the endpoints); \
         keeping every distribution: {:.1}x",
        b.check.as_secs_f64() / s.check.as_secs_f64(),
        b.check_all.as_secs_f64() / s.check_all.as_secs_f64()
    );
    println!(
        "trace output {big}/{small}: {:.1}x ({:.1}x with --full)",
        b.brief_bytes as f64 / s.brief_bytes as f64,
        b.full_bytes as f64 / s.full_bytes as f64
    );
}

struct Row {
    endpoints: usize,
    /// As `kpconform check` does it: only a failing flow's distribution
    /// is kept.
    check: Duration,
    /// Keeping the distribution (what kernel mode needs).
    check_all: Duration,
    paths: usize,
    brief_bytes: usize,
    full_bytes: usize,
}

fn measure(n: usize) -> Row {
    let input = cluster(n);
    let text = kpconform_reference::generate(&input);
    let source = SourceFile::new("big.rules", text.clone());
    let rules = parse_str(&text).expect("the reference output parses");
    let tracer = Tracer::new(&rules, &["192.168.0.10/32".parse().unwrap()]);
    let share = BigRational::new(1.into(), (n as u64).into());
    let endpoints: BTreeMap<SocketAddr, BigRational> =
        (0..n).map(|e| (endpoint(e), share.clone())).collect();
    let flow = Flow {
        name: format!("{n} endpoints"),
        node: "node-a".to_string(),
        from: FlowSource::Ip("10.64.255.200".parse().unwrap()),
        to: Destination {
            addr: "10.96.0.50:80".parse().unwrap(),
            protocol: Protocol::Tcp,
        },
        expect: Expect {
            endpoints: Some(endpoints),
            masquerade: Some(false),
            ..Expect::default()
        },
        tolerance: "0.000001".parse().expect("a decimal"),
        span: Default::default(),
    };
    let runs = if n > 1_000 { 5 } else { 9 };
    let (report, check) = timed(runs, || check_flow_keeping(&tracer, &flow, Keep::Failing));
    assert!(report.passed(), "{}", report.render(None));
    assert!(report.distribution.is_none());
    let (report, check_all) = timed(runs, || check_flow(&tracer, &flow));
    assert!(report.passed(), "{}", report.render(None));
    let dist = report.distribution.expect("traced");
    Row {
        endpoints: n,
        check,
        check_all,
        paths: dist.outcomes.len(),
        brief_bytes: trace_bytes(&dist, &source, false),
        full_bytes: trace_bytes(&dist, &source, true),
    }
}

/// What `kpconform trace` prints for the paths (header and walk of each).
fn trace_bytes(dist: &Distribution, source: &SourceFile, full: bool) -> usize {
    let mut bytes = 0;
    for (i, o) in dist.outcomes.iter().enumerate() {
        bytes += format!("\npath {}:  {o}\n", i + 1).len();
        let lines = if full {
            o.explain(Some(source))
        } else {
            o.explain_brief(Some(source))
        };
        bytes += lines.iter().map(|l| l.len() + 3).sum::<usize>();
    }
    bytes
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

fn endpoint(e: usize) -> SocketAddr {
    SocketAddr::new(
        format!("10.64.{}.{}", e / 250, e % 250 + 1)
            .parse()
            .expect("an address"),
        8080,
    )
}

/// One ClusterIP service with `endpoints` ready endpoints on this node.
fn cluster(endpoints: usize) -> GeneratorInput {
    let mut y = String::from(
        "node:\n  name: node-a\n  addresses: [192.168.0.10]\n  clusterCIDR: 10.64.0.0/16\n  masqueradeAll: false\n  masqueradeBit: 14\n  nodePortAddresses: []\nobjects:\n\
         - apiVersion: v1\n  kind: Service\n  metadata: {name: big, namespace: ns}\n  spec:\n    type: ClusterIP\n    clusterIP: 10.96.0.50\n    clusterIPs: [10.96.0.50]\n    ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]\n\
         - apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  metadata:\n    name: big-abc\n    namespace: ns\n    labels: {kubernetes.io/service-name: big}\n  addressType: IPv4\n  ports: [{name: http, port: 8080, protocol: TCP}]\n  endpoints:\n",
    );
    for e in 0..endpoints {
        let _ = write!(
            y,
            "  - addresses: [{}]\n    conditions: {{ready: true, serving: true, terminating: false}}\n    nodeName: node-a\n",
            endpoint(e).ip()
        );
    }
    GeneratorInput::from_yaml(&SourceFile::new("big-service", y)).expect("valid cluster")
}
