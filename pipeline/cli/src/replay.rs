//! `atenex replay`.

use crate::limits::ShutdownArgs;
use crate::{KafkaArgs, Observability};
use anyhow::{Context as _, bail};
use atenex_kafka::replay::{Order, Recording, ReplayOptions};
use chrono::DateTime;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufReader, IsTerminal, Write as _};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    kafka: KafkaArgs,

    /// Recorded stream; `-` for stdin (copied to a temporary file first). Read twice, never held
    /// in memory: once to check every line (nothing is sent if one is bad), once to send.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,

    /// `recorded`: line order. `shuffle`: event-time order with bounded disorder (see --max-disorder).
    #[arg(long, value_enum, default_value = "recorded")]
    order: OrderArg,

    /// Seed for --order shuffle and --duplicates.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,

    /// With --order shuffle: each record is delayed by a random event-time amount below this, so
    /// no record arrives after one that is this much younger.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::parse::duration::<0, 31_536_000>)]
    max_disorder: Duration,

    /// Probability (0 to 1) that a record is delivered a second time, 0 to 10 records later.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    duplicates: f64,

    /// Records per second (e.g. `500/s` or `500`); default: as fast as possible.
    #[arg(long, value_name = "N/s", value_parser = rate)]
    rate: Option<f64>,

    #[command(flatten)]
    observability: Observability,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OrderArg {
    Recorded,
    Shuffle,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!(
            "{p} is not a probability: use a number from 0 to 1, e.g. 0.01"
        ));
    }
    Ok(p)
}

fn rate(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate: use records per second, e.g. 500/s"
        )),
    }
}

/// The recording, checked: bad lines are listed (up to 10) and stop the replay before anything
/// is sent. Standard input is first copied to an unnamed temporary file (it is read twice).
fn read_input(path: &PathBuf, opts: &ReplayOptions) -> anyhow::Result<Recording> {
    let file = if path.as_os_str() == "-" {
        let mut spool =
            tempfile::tempfile().context("--input -: cannot create a temporary file")?;
        let mut stdin = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut spool);
        let mut line = Vec::new();
        // Line by line, each bounded: an endless line is an error, not all the disk.
        while atenex_contracts::lines::read_line_bounded(
            &mut stdin,
            &mut line,
            atenex_contracts::lines::MAX_LINE_BYTES,
        )
        .context("--input -")?
            > 0
        {
            out.write_all(&line)?;
            line.clear();
        }
        out.flush()?;
        drop(out);
        spool
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("--input {}: cannot open", path.display()))?
    };
    match Recording::check(file, opts).with_context(|| format!("--input {}", path.display()))? {
        Ok(recording) => Ok(recording),
        Err(bad) => bail!(
            "{}: {} bad line(s), nothing was sent:\n  {}{}",
            path.display(),
            bad.count,
            bad.first.join("\n  "),
            if bad.count > bad.first.len() as u64 {
                "\n  ..."
            } else {
                ""
            }
        ),
    }
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::from_timestamp_millis).map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let shutdown = args.shutdown.signals();
    let health = args.observability.start(&shutdown).await?;
    let opts = ReplayOptions {
        order: match args.order {
            OrderArg::Recorded => Order::Recorded,
            OrderArg::Shuffle => Order::Shuffle,
        },
        seed: args.seed,
        max_disorder: args.max_disorder,
        duplicates: args.duplicates,
        rate: args.rate,
    };
    let recording = read_input(&args.input, &opts)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(recording.records());
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    health.set_ready(true);
    let summary = recording
        .replay(&args.kafka.config(), shutdown, |n| {
            if n % 256 == 0 {
                bar.set_position(n);
            }
        })
        .await?;
    bar.finish_and_clear();
    eprintln!(
        "replayed {} records ({} duplicates) in {:.2}s{}",
        summary.sent,
        summary.duplicates,
        summary.elapsed.as_secs_f64(),
        if summary.complete {
            ""
        } else {
            " (interrupted)"
        }
    );
    for (topic, t) in &summary.per_topic {
        eprintln!(
            "  {topic}: {} records, timestamps {} .. {}",
            t.records,
            time(t.first_ts),
            time(t.last_ts)
        );
    }
    Ok(())
}
