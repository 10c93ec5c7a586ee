//! Properties of the tracer, normalizer, parser and printer over random valid
//! cluster states (`kpconform_selftest::arbitrary`) rendered by the reference
//! generator, with a fixed case count and seed so that CI is repeatable.
//!
//! Cases are drawn from bytes, as the fuzz targets draw them, so proptest
//! shrinks a failure towards fewer bytes, which means a smaller cluster;
//! the failure then prints the case as a scenario file (`{:?}`).

use kpconform_harness::FnGenerator;
use kpconform_selftest::arbitrary::{properties, Case, Seeded};
use kpconform_suite::scenario::GeneratorInput;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

#[path = "properties/model.rs"]
mod model;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x6b70_636f_6e66),
        // The seed is fixed: a failure reproduces without a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn reference() -> FnGenerator<
    impl Fn(&GeneratorInput) -> Result<String, kpconform_harness::GeneratorError> + Send + Sync,
> {
    FnGenerator::new("reference", |input: &GeneratorInput| {
        Ok(kpconform_reference::generate(input))
    })
}

fn case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(any::<u8>(), 0..1536).prop_map(|bytes| Case::from_bytes(&bytes))
}

/// Iptables-looking lines: real options and values in random order, so that
/// most lines get deep into the parser before they go wrong.
fn rules_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("*nat"),
        Just("*filter"),
        Just("COMMIT"),
        Just(":KUBE-SERVICES - [0:0]"),
        Just(":PREROUTING ACCEPT [0:0]"),
        Just("-A"),
        Just("-I"),
        Just("-N"),
        Just("-D"),
        Just("PREROUTING"),
        Just("KUBE-SERVICES"),
        Just("KUBE-SVC-X"),
        Just("-j"),
        Just("-g"),
        Just("-m"),
        Just("statistic"),
        Just("--mode"),
        Just("random"),
        Just("nth"),
        Just("--probability"),
        Just("0.3333333333"),
        Just("1e-3"),
        Just("-p"),
        Just("tcp"),
        Just("udp"),
        Just("--dport"),
        Just("80:90"),
        Just("-d"),
        Just("10.96.0.1/32"),
        Just("!"),
        Just("DNAT"),
        Just("--to-destination"),
        Just("10.64.0.1:80"),
        Just("comment"),
        Just("--comment"),
        Just("\"a b\""),
        Just("'x"),
        Just("MARK"),
        Just("--set-xmark"),
        Just("0x4000/0x4000"),
        Just("recent"),
        Just("--rcheck"),
        Just("--seconds"),
        Just("10800"),
        Just("addrtype"),
        Just("--dst-type"),
        Just("LOCAL"),
        Just("\\"),
        Just("\n"),
        Just("\n"),
        Just("iptables"),
        Just("-t"),
        Just("MASQUERADE"),
        Just("REJECT"),
        Just("[1:2]"),
    ];
    proptest::collection::vec(word, 0..60).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(config(64))]

    /// Every probe's distribution sums to exactly 1, with kernel-quantized
    /// and with written probabilities, and quantization never changes which
    /// outcomes are reachable.
    #[test]
    fn distributions_sum_to_one_and_quantization_keeps_reachability(case in case()) {
        properties::distributions(&case, &reference()).map_err(|f| TestCaseError::fail(f.to_string()))?;
    }

    /// normalize(normalize(x)) == normalize(x), and shuffling the order-free
    /// chains changes neither the normalized text nor any probe's trace.
    #[test]
    fn normalizer_is_idempotent_and_order_free_shuffles_change_nothing(case in case(), seed in any::<u64>()) {
        properties::normalize_roundtrip(&case, &reference(), &mut Seeded::new(seed))
            .map_err(|f| TestCaseError::fail(f.to_string()))?;
    }

    /// parse_str(print(rs)) == rs, and print(parse_str(text)) == text for
    /// the reference generator's text.
    #[test]
    fn printed_rules_parse_back_to_the_same_rule_set(case in case()) {
        properties::print_roundtrip(&case, &reference()).map_err(|f| TestCaseError::fail(f.to_string()))?;
    }

    /// The reference generator's rules keep every kube-proxy invariant.
    #[test]
    fn reference_rules_keep_every_invariant(case in case()) {
        properties::invariants(&case, &reference()).map_err(|f| TestCaseError::fail(f.to_string()))?;
    }

    /// trace(reference(state)) is what the oracle says Kubernetes requires.
    #[test]
    fn reference_agrees_with_the_oracle(case in case()) {
        properties::semantic_diff(&case, &reference()).map_err(|f| TestCaseError::fail(f.to_string()))?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// The parser, printer, normalizer, invariants and tracer survive
    /// iptables-looking garbage, and every error points inside the text.
    #[test]
    fn parser_survives_token_soup(text in rules_text()) {
        properties::parse_rules(&text).map_err(|f| TestCaseError::fail(f.to_string()))?;
    }

    /// Random rule sets built from the model print to text that parses back
    /// to the same model.
    #[test]
    fn model_rule_sets_print_and_parse_back(rules in model::rule_set()) {
        let printed = kpconform_iptables::print(&rules);
        let parsed = kpconform_iptables::parse_str(&printed)
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{printed}")))?;
        prop_assert_eq!(&parsed, &rules, "{}", printed);
    }
}

/// The properties are not vacuous: known-bad edits of the reference
/// generator's output (from kube-proxy's bug history) are caught on some of
/// the first few dozen seeds.
mod mutants {
    use kpconform_harness::{FnGenerator, Generator};
    use kpconform_selftest::arbitrary::{properties, Case};
    use kpconform_suite::scenario::GeneratorInput;

    type Property = fn(&Case, &dyn Generator) -> Result<(), properties::Finding>;

    fn caught(property: Property, edit: fn(&str) -> String) -> properties::Finding {
        let mutant = FnGenerator::new("mutant", move |input: &GeneratorInput| {
            Ok(edit(&kpconform_reference::generate(input)))
        });
        (0..200)
            .find_map(|seed| property(&Case::from_seed(seed), &mutant).err())
            .expect("some seed catches the mutant")
    }

    /// Every endpoint written with the same probability (the first bug
    /// class kube-proxy's 1/(n-i) dispatch avoids).
    #[test]
    fn equal_probabilities_break_dispatch_even() {
        let f = caught(properties::invariants, |text| {
            text.lines()
                .map(|l| match l.find("--probability ") {
                    Some(i) => format!("{}--probability 0.5000000000{}\n", &l[..i], &l[i + 25..]),
                    None => format!("{l}\n"),
                })
                .collect()
        });
        assert!(f.message.contains("dispatch-even"), "{f}");
    }

    /// No KUBE-MARK-MASQ jumps: traffic that must be masqueraded is not.
    #[test]
    fn missing_masquerade_marks_disagree_with_the_oracle() {
        let f = caught(properties::semantic_diff, |text| {
            text.lines()
                .filter(|l| !l.contains("-j KUBE-MARK-MASQ") || l.starts_with("-A KUBE-SEP-"))
                .map(|l| format!("{l}\n"))
                .collect()
        });
        assert!(f.message.contains("masquerade"), "{f}");
    }

    /// Every DNAT to the wrong port.
    #[test]
    fn wrong_dnat_port_disagrees_with_the_oracle() {
        let f = caught(properties::semantic_diff, |text| {
            text.lines()
                .map(|l| match l.find("--to-destination ") {
                    Some(i) => {
                        format!("{}:1\n", &l[..l[i..].rfind(':').map_or(l.len(), |j| i + j)])
                    }
                    None => format!("{l}\n"),
                })
                .collect()
        });
        assert_eq!(f.property, "semantic_diff", "{f}");
    }
}

/// Findings of the fuzzers and of the properties above, replayed as plain
/// tests through the same functions, each named after what it pins.
mod regressions {
    use kpconform_iptables::normalize;
    use kpconform_selftest::arbitrary::properties;

    fn idempotent(text: &str) {
        let once = normalize(text);
        assert_eq!(normalize(&once), once, "{text:?}");
        properties::parse_rules(text).unwrap_or_else(|f| panic!("{f}"));
    }

    /// `[1:2] :CHAIN - [0:0]` was kept as an unknown line with its
    /// declaration, which the second pass then read as a declaration.
    #[test]
    fn normalize_drops_counters_before_a_declaration() {
        idempotent("*nat \n [1:2] :KUBE-SERVICES - [0:0]");
        idempotent("*nat\n[1:2] COMMIT\n-A X -j Y\n");
        idempotent("[0:0] *filter\n[3:4] # comment\n");
    }

    /// A quote opened on the second line of a word continued with `\`
    /// was reported on the word's first line. Found by fuzz target parse_rules.
    #[test]
    fn unterminated_quote_is_reported_on_its_own_line() {
        for text in ["\"\\\n\"\"", "-A X -j \"a\\\nb\"'c", "x\"\\\n\n\"\"\n"] {
            properties::parse_rules(text).unwrap_or_else(|f| panic!("{text:?}: {f}"));
        }
        let errors = kpconform_iptables::parse_str("\"\\\n\"\"").expect_err("unterminated");
        assert!(
            errors
                .iter()
                .any(|e| e.span.line == 2 && e.message.contains("unterminated")),
            "{errors:?}"
        );
    }

    /// An escaped space made a chain named ` `, which printed as a line that
    /// no longer parses. Found by fuzz target parse_rules.
    #[test]
    fn chain_names_that_cannot_be_printed_are_refused() {
        use kpconform_iptables::parse_str;
        for text in [
            "*nat\n:\\  -",
            "*nat\n:A - [0:0]\n-A A -j \"B C\"\nCOMMIT\n",
            "*nat\n:A - [0:0]\n-A A -g \"B'C\"\nCOMMIT\n",
            "iptables -t nat -N '-X'\n",
        ] {
            properties::parse_rules(text).unwrap_or_else(|f| panic!("{text:?}: {f}"));
            let errors = parse_str(text).expect_err(text);
            assert!(
                errors
                    .iter()
                    .any(|e| e.message.contains("not a valid chain name")),
                "{text:?}: {errors:?}"
            );
        }
        parse_str(
            "*nat\n:KUBE-SVC-X - [0:0]\n-A KUBE-SVC-X -j KUBE-SEP-Y\n:KUBE-SEP-Y - [0:0]\nCOMMIT\n",
        )
        .expect("ordinary names");
    }

    /// `:P [0:0] :` kept `[0:0]` as the policy, which the second pass then
    /// dropped as counters. Found by fuzz target parse_rules.
    #[test]
    fn normalize_never_takes_counters_for_a_policy() {
        idempotent("*\n:P [0:0] :");
        idempotent("*nat\n:KUBE-X [1:2] [3:4]\n");
    }
}
