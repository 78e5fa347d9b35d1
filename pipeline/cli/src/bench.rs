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
    /// The offline landing path (envelopes → Connect tree on local disk, fsync at every commit)
    /// beside `cat` copying the same payload bytes to the same disk (then fsync), in one run.
    Landing(LandingBench),
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
    let b = match cmd {
        BenchCommand::Analytics(b) => b,
        BenchCommand::Landing(b) => return landing(b),
    };
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

#[derive(Args, Debug)]
pub struct LandingBench {
    /// Records in the generated embeddings.ready stream.
    #[arg(long, default_value_t = 20_000)]
    records: usize,
    /// Vector dimensions (1536: about 20 KB per record).
    #[arg(long, default_value_t = 1536)]
    dims: usize,
    /// Directory on the disk to measure (a temporary directory is made inside it).
    #[arg(long, default_value = ".")]
    dir: std::path::PathBuf,
    /// Runs of each (cat, landing), alternating; the best of each is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Lands a generated stream offline to local disk and compares with `cat` copying the same payload
/// bytes (then fsync), in the same run.
pub fn landing(b: LandingBench) -> anyhow::Result<()> {
    use atenex_contracts::EnvelopeReader;
    use atenex_landing::config::LandingConfig;
    use atenex_landing::fs::LocalFs;
    use atenex_landing::fs::pipelined::Pipelined;
    use atenex_landing::sink::Sink;
    use std::io::Write;

    let data = generate(&StreamSpec {
        records: b.records,
        dims: b.dims,
        partitions: 3,
        ..StreamSpec::default()
    });
    let tmp = tempfile::tempdir_in(&b.dir)?;
    // The payload bytes, one value per line: what the landing writes.
    let payload_path = tmp.path().join("payloads.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&payload_path)?);
        for e in EnvelopeReader::new(&data[..]) {
            f.write_all(e?.payload.unwrap_or_default().as_bytes())?;
            f.write_all(b"\n")?;
        }
    }
    let payload_bytes = std::fs::metadata(&payload_path)?.len() as f64;
    let (mut cat_secs, mut land_secs) = (f64::MAX, f64::MAX);
    for run in 0..b.runs.max(1) {
        let copy = tmp.path().join("copy.jsonl");
        let started = Instant::now();
        let status = std::process::Command::new("cat")
            .arg(&payload_path)
            .stdout(std::fs::File::create(&copy)?)
            .status()?;
        anyhow::ensure!(status.success(), "cat failed");
        std::fs::File::open(&copy)?.sync_all()?;
        cat_secs = cat_secs.min(started.elapsed().as_secs_f64());
        std::fs::remove_file(&copy)?;

        let root = tmp.path().join(format!("landing-{run}"));
        let config = LandingConfig::from_properties(
            &format!(
                "name=bench\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics=embeddings.ready\nhdfs.url={}\n\
                 topics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/logs\nformat.class=io.confluent.connect.hdfs3.format.json.JsonFormat\n\
                 flush.size=1000\npartitioner.class=io.confluent.connect.storage.partitioner.HourlyPartitioner\nlocale=en_US\ntimezone=UTC\n\
                 timestamp.extractor=Record\n",
                root.display()
            ),
            Vec::new(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let started = Instant::now();
        // As `atenex landing --input` does it: effects on their own thread.
        let mut sink = Sink::new(Pipelined::new(LocalFs::new(&root)), config.clone(), true);
        let s = atenex_landing::offline::run(&mut sink, &config, &data[..], 0)?;
        land_secs = land_secs.min(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            s.records == b.records as u64,
            "landed {} of {}",
            s.records,
            b.records
        );
        drop(sink);
        std::fs::remove_dir_all(&root)?;
    }
    let mb = payload_bytes / 1e6;
    println!(
        "landing offline: {} records x {} dims, {mb:.1} MB of payload, best of {}: landing {land_secs:.3}s = {:.0} MB/s; cat + fsync {cat_secs:.3}s = {:.0} MB/s; ratio {:.0}%",
        b.records,
        b.dims,
        b.runs,
        mb / land_secs,
        mb / cat_secs,
        100.0 * cat_secs / land_secs
    );
    Ok(())
}
