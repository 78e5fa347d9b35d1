//! `atenex landing`: the Kafka Connect HDFS sink's tree from the same properties file.

use crate::limits::ShutdownArgs;
use crate::{KafkaArgs, Observability};
use anyhow::Context as _;
use atenex_hdfs::Hdfs;
use atenex_landing::config::{LandingConfig, Store};
use atenex_landing::fs::hdfs::HdfsFs;
use atenex_landing::fs::pipelined::Pipelined;
use atenex_landing::fs::{Fs, LocalFs};
use atenex_landing::offline;
use atenex_landing::sink::Sink;
use clap::Args;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct LandingArgs {
    /// The connector's properties file (e.g. hdfs-sink-connector.properties); any key can be
    /// overridden by ATENEX_LANDING_<KEY> (upper case, `.` → `_`). See docs/landing.md.
    #[arg(long, value_name = "FILE", env = "ATENEX_LANDING_CONFIG")]
    config: PathBuf,

    /// Offline: a recorded stream (kcat -J envelopes; `-` for stdin) to land as if it had been
    /// consumed: offsets and timestamps from the envelopes, no wall-clock or idle commits,
    /// everything open committed at the end. Without it the job consumes the configured topics
    /// live, in the consumer group `connect-<name>`.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    observability: Observability,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

pub async fn run(args: LandingArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let text = atenex_contracts::lines::read_small_text(
        &args.config,
        atenex_contracts::lines::MAX_CONFIG_BYTES,
    )
    .with_context(|| format!("--config {}: cannot read", args.config.display()))?;
    let config = LandingConfig::from_properties(&text, std::env::vars())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    if !config.unknown_keys.is_empty() {
        eprintln!(
            "warning: {}: keys not used by atenex landing (ignored): {}",
            args.config.display(),
            config.unknown_keys.join(", ")
        );
    }
    let (root, fs) = open_store(&config.store)?;
    let data_dir = format!(
        "{}/{}",
        root.trim_end_matches('/'),
        config.topics_dir.trim_start_matches('/')
    );
    let Some(input_path) = &args.input else {
        let shutdown = args.shutdown.signals();
        let health = args.observability.start(&shutdown).await?;
        health.set_ready(true);
        let landed = atenex_landing::live::run(&args.kafka.config(), &config, fs, shutdown).await?;
        eprintln!("landing: {landed} records landed under {data_dir}");
        return Ok(());
    };
    let input: Box<dyn std::io::BufRead> = if input_path.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(input_path)
            .with_context(|| format!("--input {}: cannot open", input_path.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    let now = atenex_kafka::Clock::System.now_ms();
    // Offline, parsing and the disk overlap: effects run on their own thread, in order.
    let mut sink = Sink::new(Pipelined::new(fs), config.clone(), true);
    let s = offline::run(&mut sink, &config, input, now)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "landing: {} records ({:.1} MB) landed under {} in {secs:.2}s; {} already landed, {} of other topics, {} bad skipped",
        s.records,
        s.bytes as f64 / 1e6,
        data_dir,
        s.already_landed,
        s.other_topics,
        s.bad
    );
    for b in &s.first_bad {
        eprintln!("  skipped {b}");
    }
    Ok(())
}

/// The filesystem of `hdfs.url`, and how to name its root in messages.
fn open_store(store: &Store) -> anyhow::Result<(String, Box<dyn Fs + Send>)> {
    Ok(match store {
        Store::Local { root } => (root.clone(), Box::new(LocalFs::new(root))),
        Store::Hdfs { url } => {
            let hdfs = tokio::task::block_in_place(|| Hdfs::connect(url))
                .with_context(|| format!("hdfs.url={url}"))?;
            (url.to_string(), Box::new(HdfsFs::new(hdfs)))
        }
    })
}
