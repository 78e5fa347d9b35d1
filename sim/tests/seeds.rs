//! Every scenario over 20 seeds from its own, in the model driver: what
//! `atenex sim run scenarios/ --seeds 20` runs, through the same runner. Each seed is checked
//! against the invariants and the independent references (`atenex_sim::reference`), and the
//! scenario's own seed against its reviewed snapshot. `ci/mutants` judges its sampled mutants of
//! the jobs by this test alone (docs/simulation.md, "What the seeds catch").

use atenex_sim::runner::{self, Driver};
use std::path::Path;

/// As many seeds as the measure uses.
const SEEDS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_holds_over_twenty_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenarios = runner::load_all(&runner::expand(&[dir]).unwrap()).unwrap();
    assert!(scenarios.len() >= 20, "{} scenarios", scenarios.len());
    let mut failures = Vec::new();
    for (file, scenario) in &scenarios {
        let seeds = runner::seeds_from(scenario.seed(), SEEDS);
        let r = runner::run_file(file, scenario, &seeds, &Driver::Model)
            .await
            .unwrap();
        assert_eq!(r.seeds, SEEDS);
        if let Some((seed, problems)) = r.failure {
            failures.push(format!(
                "{} seed {seed}:\n  {}",
                file.display(),
                problems.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
