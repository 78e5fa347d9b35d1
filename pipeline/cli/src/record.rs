//! `atenex record`.

use crate::limits::ShutdownArgs;
use crate::{KafkaArgs, Observability};
use anyhow::Context as _;
use atenex_contracts::EnvelopeWriter;
use atenex_kafka::record::{RecordOptions, Stop, record};
use clap::Args;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    kafka: KafkaArgs,

    /// Topics to record, comma-separated.
    #[arg(long, value_name = "T1,T2", value_delimiter = ',', required = true)]
    topics: Vec<String>,

    /// Output file; `-` for stdout.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,

    /// Start at the oldest retained record (default: only records produced from now on).
    #[arg(long)]
    from_beginning: bool,

    /// Stop when every partition reached the end offset it had at start.
    #[arg(long, conflicts_with = "max_records")]
    until_end: bool,

    /// Stop after N records.
    #[arg(long, value_name = "N")]
    max_records: Option<u64>,

    #[command(flatten)]
    observability: Observability,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let shutdown = args.shutdown.signals();
    let health = args.observability.start(&shutdown).await?;
    let out: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let f = std::fs::File::create(&args.output)
            .with_context(|| format!("--output {}: cannot create", args.output.display()))?;
        Box::new(f)
    };
    let mut writer = EnvelopeWriter::new(BufWriter::with_capacity(1 << 20, out));
    let opts = RecordOptions {
        topics: args.topics,
        from_beginning: args.from_beginning,
        stop: match (args.until_end, args.max_records) {
            (true, _) => Stop::AtEnd,
            (false, Some(n)) => Stop::MaxRecords(n),
            (false, None) => Stop::Never,
        },
    };
    health.set_ready(true);
    let summary = record(&args.kafka.config(), &opts, &mut writer, shutdown).await?;
    eprintln!("recorded {} records", summary.records);
    for (topic, n) in &summary.per_topic {
        eprintln!("  {topic}: {n}");
    }
    if summary.lossy_utf8 > 0 {
        eprintln!(
            "warning: {} records had keys, values or headers that are not UTF-8; they were written with U+FFFD replacements",
            summary.lossy_utf8
        );
    }
    Ok(())
}
