//! `atenex analytics`: offline over a recorded stream (`--input`), or live against Kafka.

use crate::limits::ShutdownArgs;
use crate::{KafkaArgs, Observability};
use anyhow::Context as _;
use atenex_analytics::core::{Settings, WatermarkMode};
use atenex_analytics::live::{LiveOptions, default_transactional_id};
use atenex_analytics::offline::{self, OfflineOptions};
use clap::{Args, ValueEnum};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct AnalyticsArgs {
    /// Tumbling window size.
    #[arg(long, value_name = "DURATION", env = "ATENEX_ANALYTICS_WINDOW", default_value = "60s", value_parser = window_size)]
    window: Duration,

    /// Bounded out-of-orderness of the watermark: W = max event time − this − 1 ms.
    #[arg(long, value_name = "DURATION", env = "ATENEX_ANALYTICS_MAX_OUT_OF_ORDERNESS", default_value = "5s", value_parser = humantime::parse_duration)]
    max_out_of_orderness: Duration,

    /// `per-partition`: one watermark per Kafka partition, the minimum of the active ones wins
    /// (Flink with a Kafka source). `global`: one watermark over all records (the seed job).
    #[arg(
        long,
        value_enum,
        env = "ATENEX_ANALYTICS_WATERMARK",
        default_value = "per-partition"
    )]
    watermark: WatermarkArg,

    /// A partition without records for this long (processing time) stops holding the watermark back.
    #[arg(long, value_name = "DURATION", env = "ATENEX_ANALYTICS_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,

    /// Records more than this ahead of processing time are not counted and do not move the
    /// watermark; they go to the late output with reason `future_timestamp`.
    #[arg(long, value_name = "DURATION", env = "ATENEX_ANALYTICS_MAX_FUTURE_SKEW", default_value = "1h", value_parser = humantime::parse_duration)]
    max_future_skew: Duration,

    /// The topic whose records are counted (other topics of a recorded stream are ignored).
    #[arg(
        long,
        value_name = "TOPIC",
        env = "ATENEX_ANALYTICS_TOPIC",
        default_value = "embeddings.ready"
    )]
    topic: String,

    /// Offline: a recorded stream (kcat -J envelopes; `-` for stdin), read as a stream: memory
    /// does not grow with its size. Without it, the job runs live.
    #[arg(long, value_name = "FILE", requires = "output")]
    input: Option<PathBuf>,

    /// Offline: where the window results go, one analytics.flink value per line (`-` for stdout).
    /// Written atomically: the results go to a temporary file, renamed into place (or copied to
    /// stdout) only once the whole input was read; a malformed line that stops the run, or any
    /// other error, leaves nothing.
    #[arg(long, value_name = "FILE", requires = "input")]
    output: Option<PathBuf>,

    /// Offline: where late and future-skewed records go, one JSON object per line (written
    /// atomically, as --output).
    #[arg(long, value_name = "FILE", requires = "input")]
    late_output: Option<PathBuf>,

    /// Offline: skip malformed lines (counted in the summary) instead of stopping at the first.
    #[arg(long, requires = "input")]
    skip_bad_records: bool,

    /// Live: consumer group.
    #[arg(
        long,
        value_name = "GROUP",
        env = "ATENEX_ANALYTICS_GROUP",
        default_value = "flink_analytics_consumer"
    )]
    group: String,

    /// Live: topic for window results.
    #[arg(
        long,
        value_name = "TOPIC",
        env = "ATENEX_ANALYTICS_OUTPUT_TOPIC",
        default_value = "analytics.flink"
    )]
    output_topic: String,

    /// Live: topic for late and future-skewed records.
    #[arg(
        long,
        value_name = "TOPIC",
        env = "ATENEX_ANALYTICS_LATE_TOPIC",
        default_value = "analytics.late"
    )]
    late_topic: String,

    /// Live: Kafka transactional.id, the same on every instance of the group: the instance that
    /// becomes active fences the one before it (its open transaction is aborted, later ones fail)
    /// [default: atenex-analytics-<group>].
    #[arg(long, value_name = "ID", env = "ATENEX_ANALYTICS_TRANSACTIONAL_ID")]
    transactional_id: Option<String>,

    /// Live: one-partition topic whose consumer group (`<group>.lease`) elects the one active
    /// instance of the group; the others stand by. Created if missing; refused with more than one
    /// partition.
    #[arg(
        long,
        value_name = "TOPIC",
        env = "ATENEX_ANALYTICS_LEASE_TOPIC",
        default_value = atenex_contracts::topics::ANALYTICS_LEASE
    )]
    lease_topic: String,

    /// Live: the lease's session timeout. An active instance that stops answering (killed,
    /// frozen, cut off) is replaced by a standby after this long plus the restore; the broker
    /// accepts group.min.session.timeout.ms to group.max.session.timeout.ms (6s to 30m by
    /// default).
    #[arg(long, value_name = "DURATION", env = "ATENEX_ANALYTICS_SESSION_TIMEOUT", default_value = "10s", value_parser = crate::parse::duration::<1, 3600>)]
    session_timeout: Duration,

    /// Live: most records per transaction.
    #[arg(
        long,
        value_name = "N",
        env = "ATENEX_ANALYTICS_MAX_BATCH",
        default_value_t = 2000
    )]
    max_batch: usize,

    /// Live: how often the active instance looks for partitions added to the input topic; new
    /// ones are counted from their first record (Flink's partition.discovery.interval.ms).
    #[arg(long, value_name = "DURATION", env = "ATENEX_ANALYTICS_PARTITION_DISCOVERY_INTERVAL", default_value = "30s", value_parser = crate::parse::duration::<1, 86400>)]
    partition_discovery_interval: Duration,

    /// Live: how long a transaction stays open after its first record (or until --max-batch
    /// records): longer gives fewer, larger transactions; results become visible that much later.
    #[arg(long, value_name = "DURATION", env = "ATENEX_ANALYTICS_MAX_WAIT", default_value = "100ms", value_parser = max_wait)]
    max_wait: Duration,

    /// Live: stop once every partition reached its end, firing every open window. Like any
    /// instance it counts only once it holds the group's lease (while another instance of the
    /// group is active, it stands by).
    #[arg(long)]
    drain: bool,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    observability: Observability,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum WatermarkArg {
    PerPartition,
    Global,
}

/// A window size: whole milliseconds (event times are milliseconds), at least one.
fn window_size(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.as_millis() == 0 || d.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "{s:?}: a window is a whole number of milliseconds, at least 1ms (e.g. 60s)"
        ));
    }
    Ok(d)
}

/// How long a transaction stays open: 1 ms to 1 hour.
fn max_wait(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 100ms, 1s)"))?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
        return Err(format!("{s:?} is out of range: use 1ms to 1h"));
    }
    Ok(d)
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128 / 4) as i64
}

impl AnalyticsArgs {
    fn settings(&self) -> Settings {
        Settings {
            window_ms: ms(self.window),
            out_of_orderness_ms: ms(self.max_out_of_orderness),
            mode: match self.watermark {
                WatermarkArg::PerPartition => WatermarkMode::PerPartition,
                WatermarkArg::Global => WatermarkMode::Global,
            },
            idle_timeout_ms: ms(self.idle_timeout),
            max_future_skew_ms: ms(self.max_future_skew),
        }
    }
}

pub async fn run(args: AnalyticsArgs) -> anyhow::Result<()> {
    match (&args.input, &args.output) {
        (Some(input), Some(output)) => run_offline(&args, input, output),
        _ => run_live(args).await,
    }
}

/// An output written in full but not yet visible: a temporary file beside its path, renamed into
/// place by [`publish`](Staged::publish); for `-` (stdout) an unnamed temporary file, copied to
/// stdout then. A run that fails publishes nothing.
enum Staged {
    File(tempfile::NamedTempFile),
    Stdout(std::fs::File),
}

impl Staged {
    fn publish(self, path: &Path) -> anyhow::Result<()> {
        match self {
            Staged::File(t) => {
                t.persist(path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Staged::Stdout(mut f) => {
                use std::io::Seek as _;
                f.rewind()?;
                let mut out = std::io::stdout().lock();
                std::io::copy(&mut f, &mut out).context("cannot write to stdout")?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

/// Writes `path` (`-`: stdout) in full through a [`Staged`] file.
fn write_staged(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<Staged> {
    let (staged, file) = if path.as_os_str() == "-" {
        let file = tempfile::tempfile().context("cannot create a temporary file for stdout")?;
        (Staged::Stdout(file.try_clone()?), file)
    } else {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        let file = tmp.as_file().try_clone()?;
        (Staged::File(tmp), file)
    };
    let mut out = BufWriter::with_capacity(1 << 20, file);
    f(&mut out)?;
    out.flush()?;
    Ok(staged)
}

/// Whether two paths name one existing file (the same device and inode: hard links and symlinks
/// included).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// The results replace their files whole: none of them may be the input, nor each other.
fn check_distinct(input: &Path, output: &Path, late: Option<&Path>) -> anyhow::Result<()> {
    for (flag, path) in [("--output", Some(output)), ("--late-output", late)] {
        if let Some(path) = path
            && input.as_os_str() != "-"
            && same_file(input, path)
        {
            anyhow::bail!(
                "{flag} {}: that is the --input file, which the results would replace; write them elsewhere",
                path.display()
            );
        }
    }
    if let Some(late) = late
        && (late == output || same_file(late, output))
    {
        anyhow::bail!(
            "--late-output {}: the same file as --output; give each its own",
            late.display()
        );
    }
    Ok(())
}

fn run_offline(args: &AnalyticsArgs, input: &Path, output: &Path) -> anyhow::Result<()> {
    check_distinct(input, output, args.late_output.as_deref())?;
    let started = Instant::now();
    // Read as a stream, every line bounded (a file without newlines, such as /dev/zero, is an
    // error, not all the memory).
    let max_line = atenex_contracts::lines::MAX_LINE_BYTES;
    let mut stdin;
    let mut file;
    let reader: &mut dyn std::io::BufRead = if input.as_os_str() == "-" {
        stdin = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
        &mut stdin
    } else {
        file = std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(input)
                .with_context(|| format!("--input {}: cannot open", input.display()))?,
        );
        &mut file
    };
    let opts = OfflineOptions {
        settings: args.settings(),
        topic: args.topic.clone(),
        skip_bad_records: args.skip_bad_records,
    };
    let mut late_staged = None;
    let mut summary = None;
    let windows_staged = write_staged(output, |windows| {
        match &args.late_output {
            Some(late_path) => {
                late_staged = Some(write_staged(late_path, |late| {
                    summary = Some(offline::run(reader, max_line, &opts, windows, Some(late))?);
                    Ok(())
                })?);
            }
            None => summary = Some(offline::run(reader, max_line, &opts, windows, None)?),
        }
        Ok(())
    })
    .map_err(|e| {
        if e.is::<offline::BadLine>() {
            e.context(format!("{}: malformed record; nothing was written (--skip-bad-records skips and counts them)", input.display()))
        } else if e.is::<offline::ReadError>() {
            e.context(format!("--input {}; nothing was written", input.display()))
        } else {
            e
        }
    })?;
    windows_staged.publish(output)?;
    if let (Some(t), Some(p)) = (late_staged, &args.late_output) {
        t.publish(p)?;
    }
    let s = summary.expect("set on success");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "analytics: {} lines, {} {} records ({} of other topics, {} bad skipped) in {secs:.2}s; {} window results ({} chunks counted), {} late, {} future-skewed",
        s.lines,
        s.records,
        args.topic,
        s.other_topics,
        s.bad,
        s.windows,
        s.counted,
        s.late,
        s.future
    );
    for (line, reason) in &s.first_bad {
        eprintln!("  skipped line {line}: {reason}");
    }
    Ok(())
}

async fn run_live(args: AnalyticsArgs) -> anyhow::Result<()> {
    let shutdown = args.shutdown.signals();
    let health = args.observability.start(&shutdown).await?;
    let opts = LiveOptions {
        settings: args.settings(),
        input_topic: args.topic.clone(),
        output_topic: args.output_topic.clone(),
        late_topic: args.late_topic.clone(),
        transactional_id: args
            .transactional_id
            .clone()
            .unwrap_or_else(|| default_transactional_id(&args.group)),
        group: args.group.clone(),
        lease_topic: args.lease_topic.clone(),
        session_timeout: args.session_timeout,
        max_batch: args.max_batch.max(1),
        max_wait: args.max_wait,
        partition_discovery: args.partition_discovery_interval,
        drain: args.drain,
        clock: atenex_kafka::Clock::System,
        progress: None,
        pause: None,
    };
    let s = atenex_analytics::live::run(&args.kafka.config(), &opts, shutdown, health).await?;
    eprintln!(
        "analytics: {} records in {} transactions; {} window results, {} late, {} dead letters; active {} times, fenced {} times",
        s.records, s.transactions, s.windows, s.late, s.dead_letters, s.activations, s.fenced
    );
    Ok(())
}
