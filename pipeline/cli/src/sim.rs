//! `atenex sim`: the simulator's command line (docs/simulation.md).

use atenex_sim::runner::{self, Driver};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Run scenarios (in the model driver, or the broker driver): one line per scenario, then a summary.
    ///
    /// Each scenario runs with its own seed (and its snapshot, scenarios/snapshots/<name>.snap, is compared), or with --seeds N seeds from its own, or with --seed S. The invariants of every run are checked. On a failure: the first failing seed, what went wrong (a diff for a snapshot) and the command that reproduces it; the exit status is 1.
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files, or directories of them (their *.toml).
    #[arg(required = true, value_name = "SCENARIO")]
    scenarios: Vec<PathBuf>,

    /// Explore this many seeds, from the scenario's own.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "seed", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    seeds: u64,

    /// Run exactly this seed (to reproduce a failure).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,

    /// `model`: virtual time, the production cores in memory (fast: thousands of seeds a
    /// minute). `broker`: through a real Kafka broker — KAFKA_BOOTSTRAP_SERVERS, else one started
    /// for the run (a JDK is needed) — with the real jobs and services, each seed also compared
    /// with the model's outcome (seconds per seed).
    #[arg(long, value_enum, default_value_t = DriverArg::Model)]
    driver: DriverArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DriverArg {
    Model,
    Broker,
}

pub async fn run(cmd: SimCommand) -> anyhow::Result<()> {
    let SimCommand::Run(args) = cmd;
    // Every file is read and checked before the first one runs.
    let scenarios = runner::load_all(&runner::expand(&args.scenarios)?)?;
    let driver = match args.driver {
        DriverArg::Model => Driver::Model,
        // The broker tests use: the configured one, else a real Kafka for this process.
        DriverArg::Broker => {
            Driver::Broker(tokio::task::block_in_place(atenex_kafka::testing::config))
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for (file, scenario) in &scenarios {
        let own = scenario.seed();
        let seeds: Vec<u64> = match args.seed {
            Some(s) => vec![s],
            None => runner::seeds_from(own, args.seeds),
        };
        let r = runner::run_file(file, scenario, &seeds, &driver).await?;
        let name = file.display();
        match &r.failure {
            None => {
                passed += 1;
                println!(
                    "ok    {name}  ({} seed{}, {} records, {:.2} s)",
                    r.seeds,
                    if r.seeds == 1 { "" } else { "s" },
                    r.records,
                    r.seconds
                );
            }
            Some((seed, problems)) => {
                failed += 1;
                println!("FAIL  {name}  seed {seed}:");
                for p in problems {
                    for line in p.lines() {
                        println!("      {line}");
                    }
                }
                let with = match args.driver {
                    DriverArg::Model => "",
                    DriverArg::Broker => " --driver broker",
                };
                println!("      reproduce: atenex sim run {name} --seed {seed}{with}");
            }
        }
    }
    println!(
        "{} scenarios: {passed} passed, {failed} failed",
        scenarios.len()
    );
    anyhow::ensure!(failed == 0, "{failed} scenario(s) failed");
    Ok(())
}
