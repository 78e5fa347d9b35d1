//! Every scenario in scenarios/: its invariants hold and its snapshot is the reviewed one; the
//! crash scenario also holds over many seeds.

use atenex_sim::scenario::Scenario;
use atenex_sim::{check, model, render};
use std::path::{Path, PathBuf};

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_holds_and_matches_its_snapshot() {
    let files = scenarios();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let scenario = Scenario::load(&file).unwrap();
        let outcome = model::run(&scenario, scenario.seed()).unwrap();
        let problems = check::check(&outcome);
        assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
        let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
        insta::with_settings!({
            snapshot_path => "../../scenarios/snapshots",
            prepend_module_to_snapshot => false,
            description => scenario.description.clone(),
        }, {
            insta::assert_snapshot!(name.clone(), render::render(&outcome));
        });
        // insta keeps a matching snapshot's header as it was: the description a reviewer reads
        // there must be the scenario's current one.
        let snap = std::fs::read_to_string(
            file.parent()
                .unwrap()
                .join(format!("snapshots/{name}.snap")),
        )
        .unwrap();
        assert!(
            snap.contains(&scenario.description),
            "{name}.snap: its description is not the scenario's; delete it and accept it again"
        );
    }
}

#[test]
fn crashes_hold_over_many_seeds() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/crashes-and-duplicates.toml");
    let scenario = Scenario::load(&file).unwrap();
    let mut crashes = 0;
    for seed in 0..200 {
        let outcome = model::run(&scenario, seed).unwrap();
        crashes += outcome.crashes.len();
        let problems = check::check(&outcome);
        assert!(problems.is_empty(), "seed {seed}: {problems:#?}");
    }
    assert!(crashes >= 500, "{crashes} crashes over 200 seeds");
}

/// Several landing instances with seeded crashes, freezes and joins: the invariants and the
/// connector's rules (the landing reference follows every rebalance) hold on every seed, and the
/// seeds do reach fenced zombies.
#[test]
fn landing_instances_hold_over_many_seeds() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/landing-instances.toml");
    let mut scenario = Scenario::load(&file).unwrap();
    let f = &mut scenario.faults;
    f.landing_crashes = 3;
    f.landing_freezes = 2;
    f.landing_joins = 1;
    let (mut crashes, mut zombies) = (0, 0);
    for seed in 0..200 {
        let outcome = model::run(&scenario, seed).unwrap();
        crashes += outcome.crashes.len();
        zombies += outcome.landing_zombies;
        let problems = check::check(&outcome);
        assert!(problems.is_empty(), "seed {seed}: {problems:#?}");
    }
    assert!(crashes >= 400, "{crashes} crashes over 200 seeds");
    assert!(zombies >= 100, "{zombies} fenced zombies over 200 seeds");
}
