//! The broker driver agrees with the model driver: every scenario, run through a real Kafka broker
//! with the real analytics and landing jobs, the real embedding service and the real report job,
//! renders exactly the model's reviewed snapshot, and its invariants hold. Test doubles, as the
//! name says: the landing writes to the in-memory filesystem (crashes must strike at the same
//! effect in both drivers; the HDFS adapter is tested against a MiniDFSCluster elsewhere) and
//! OpenAI is the mock (the real API cannot be called here, nor made to storm).
//!
//! With `ATENEX_KAFKA=testcontainers` (and the `atenex-kafka/testcontainers` feature) every broker
//! is a container built here, the one a restart scenario restarts included (docs/testing.md).

use atenex_sim::scenario::Scenario;
use atenex_sim::{broker, check, model, render, runner};
use std::path::{Path, PathBuf};

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    runner::expand(&[dir]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_through_kafka_with_the_in_memory_landing_disk_and_mock_openai_gives_the_models_snapshot()
 {
    let kafka = atenex_kafka::testing::config();
    let only = std::env::var("SIM_SCENARIO").ok();
    let files: Vec<PathBuf> = scenarios()
        .into_iter()
        .filter(|f| {
            only.as_deref()
                .is_none_or(|o| f.to_string_lossy().contains(o))
        })
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let scenario = Scenario::load(&file).unwrap();
        let seed = scenario.seed();
        let started = std::time::Instant::now();
        let outcome = broker::run(&scenario, seed, &kafka)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
        if scenario.openai.rate_limit_burst.is_some() || scenario.openai.error_burst.is_some() {
            let (requests, limited, errors) = outcome.openai.expect("the embedding stage ran");
            assert!(
                limited + errors > 0,
                "{}: the mock answered {requests} requests without a fault",
                file.display()
            );
            eprintln!("  OpenAI: {requests} requests, {limited} × 429, {errors} × 500");
        }
        if outcome.broker_restarts > 0 {
            // With ATENEX_KAFKA=testcontainers the restarted broker is a container.
            let kind = if atenex_kafka::testing::containers() {
                "container"
            } else {
                "jvm"
            };
            assert_eq!(outcome.restarted_broker, Some(kind), "{}", file.display());
            eprintln!(
                "  restarted its own broker ({kind}) {} times",
                outcome.broker_restarts
            );
        }
        let problems = check::check(&outcome);
        assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
        let got = render::render(&outcome);
        let model = model::run(&scenario, seed).unwrap();
        // The jobs batch as in production: each crash lost the same open transaction in both.
        assert_eq!(
            outcome.analytics_lost,
            model.analytics_lost,
            "{}: records in the open transaction at each analytics crash",
            file.display()
        );
        if !model.analytics_lost.is_empty() {
            eprintln!(
                "  open transactions lost at the analytics crashes: {:?} records",
                model.analytics_lost
            );
        }
        let expected = render::render(&model);
        assert!(
            got == expected,
            "{}: the broker driver differs from the model driver:\n{}",
            file.display(),
            runner::diff(&expected, &got)
        );
        let reviewed = runner::snapshot_of(&file).expect("every scenario has a snapshot");
        assert_eq!(got.trim_end(), reviewed.trim_end(), "{}", file.display());
        eprintln!(
            "{}: broker driver = model driver = snapshot ({:.1} s)",
            file.display(),
            started.elapsed().as_secs_f64()
        );
    }
}
