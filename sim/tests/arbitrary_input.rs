//! Arbitrary text as a scenario file, and scenario-shaped files with values that go wrong (NaN,
//! huge sizes, negative durations): a scenario or an error naming the key — never a panic, never
//! an allocation the machine cannot make (issue 15).

use atenex_sim::scenario::Scenario;
use proptest::prelude::*;
use std::path::Path;

fn scenario_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "seed",
        "companies",
        "documents",
        "chunks_per_document",
        "start",
        "span",
        "partitions",
        "duplicates",
        "max_disorder",
        "grid",
    ]);
    let value = prop_oneof![
        "-?[0-9]{1,22}",
        "-?[0-9]{1,5}\\.[0-9]{1,4}(e[+-]?[0-9]{1,3})?",
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("1e8".to_owned()),
        "\"-?[0-9]{1,12}(ns|ms|s|m|h|d|y)\"",
        "\"[0-9T:Z-]{0,24}\"",
        Just("true".to_owned()),
        Just("[]".to_owned()),
    ];
    prop::collection::vec((key, value), 0..10).prop_map(|fields| {
        let mut text = String::from("description = \"fuzz\"\n[generate]\n");
        for (k, v) in fields {
            text.push_str(&format!("{k} = {v}\n"));
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_text_is_a_scenario_or_an_error(text in "\\PC{0,300}") {
        let _ = Scenario::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn scenario_shaped_files_are_checked_without_a_panic(text in scenario_like()) {
        let _ = Scenario::parse(&text, Path::new("fuzz.toml"));
    }
}
