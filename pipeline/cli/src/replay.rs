//! `atenex replay`.

use crate::limits::ShutdownArgs;
use crate::{KafkaArgs, Observability};
use anyhow::{Context as _, bail};
use atenex_contracts::{Envelope, EnvelopeReader};
use atenex_kafka::replay::{Order, ReplayOptions, replay};
use chrono::DateTime;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    kafka: KafkaArgs,

    /// Recorded stream; `-` for stdin.
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

/// Reads every envelope; bad lines are listed (up to 10) and stop the replay before anything is sent.
fn read_input(path: &PathBuf) -> anyhow::Result<Vec<Envelope>> {
    let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(path)
            .with_context(|| format!("--input {}: cannot open", path.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for r in EnvelopeReader::new(input) {
        match r {
            Ok(e) => records.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(10).map(String::as_str).collect();
        bail!(
            "{}: {} bad line(s), nothing was sent:\n  {}{}",
            path.display(),
            errors.len(),
            shown.join("\n  "),
            if errors.len() > 10 { "\n  ..." } else { "" }
        );
    }
    Ok(records)
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
    let records = read_input(&args.input)?;
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
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(records.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    health.set_ready(true);
    let summary = replay(&args.kafka.config(), &records, &opts, shutdown, |n| {
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
