//! `atenex bench`: throughput of the pipeline's hot paths on generated data, on one core.

use atenex_analytics::bench::{StreamSpec, generate};
use atenex_analytics::core::Settings;
use atenex_analytics::offline::{self, OfflineOptions};
use clap::{Args, Subcommand};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The offline analytics path (decode + window core + output) over a generated
    /// embeddings.ready stream held in memory; prints records/s and input MB/s. Build with
    /// --release for meaningful numbers.
    Analytics(AnalyticsBench),
}

#[derive(Args, Debug)]
pub struct AnalyticsBench {
    /// Records in the generated stream.
    #[arg(long, default_value_t = 50_000)]
    records: usize,
    /// Vector dimensions (1536 for text-embedding-3-small: about 20 KB per record).
    #[arg(long, default_value_t = 1536)]
    dims: usize,
    /// Runs over the same data; the best is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Analytics(b) = cmd;
    let data = generate(&StreamSpec {
        records: b.records,
        dims: b.dims,
        ..StreamSpec::default()
    });
    let opts = OfflineOptions {
        settings: Settings::default(),
        topic: "embeddings.ready".into(),
        skip_bad_records: false,
    };
    let mut best = f64::MAX;
    let mut counted = 0;
    for _ in 0..b.runs.max(1) {
        let started = Instant::now();
        let s = offline::run(
            &data,
            &opts,
            &mut std::io::sink(),
            Some(&mut std::io::sink()),
        )?;
        best = best.min(started.elapsed().as_secs_f64());
        counted = s.counted;
    }
    anyhow::ensure!(
        counted == b.records as u64,
        "counted {counted} of {} records",
        b.records
    );
    println!(
        "analytics offline: {} records x {} dims, {:.1} MB, best of {}: {:.3}s = {:.0} records/s, {:.0} MB/s (one core)",
        b.records,
        b.dims,
        data.len() as f64 / 1e6,
        b.runs,
        best,
        b.records as f64 / best,
        data.len() as f64 / 1e6 / best
    );
    Ok(())
}
