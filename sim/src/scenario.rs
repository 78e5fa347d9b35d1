//! Scenario files: TOML, every key documented here and in docs/simulation.md.

use crate::generate::Log;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line: what the scenario shows.
    pub description: String,
    /// The stream: generated, or
    #[serde(default)]
    pub generate: Option<Generate>,
    /// recorded (exactly one of the two).
    #[serde(default)]
    pub input: Option<Recorded>,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub landing: Landing,
    #[serde(default)]
    pub report: Report,
    /// The OpenAI API the embedding stage calls (scenarios of `chunks.processed`).
    #[serde(default)]
    pub openai: OpenAi,
}

/// Faults of the mock OpenAI, counted in requests (each chunk is one request in the broker
/// driver, plus its retries).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAi {
    /// Requests `[from, to)` answered 429 `rate_limit_exceeded` (a storm).
    #[serde(default)]
    pub rate_limit_burst: Option<[u64; 2]>,
    /// Requests `[from, to)` answered 500.
    #[serde(default)]
    pub error_burst: Option<[u64; 2]>,
    /// The wait a 429 announces (`retry-after-ms`).
    #[serde(default)]
    pub retry_after: Option<String>,
    /// Every answer waits this long (a slow API).
    #[serde(default)]
    pub latency: Option<String>,
}

/// The daily report: run for every day the landing tree has, and for these days too.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Extra days (YYYY-MM-DD), e.g. one without data: its report is empty (the job runs with
    /// `--allow-empty`).
    #[serde(default)]
    pub days: Vec<String>,
}

/// A recorded stream (kcat `-J` envelopes, as `atenex record` and `kcat -C -J` write them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The file, relative to the scenario file.
    pub file: PathBuf,
    /// Only these topics (default: every topic in the file).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Each record arrives this long after its event time (never before the record before it in
    /// its partition).
    #[serde(default = "zero")]
    pub lag: String,
    /// The seed of the faults.
    #[serde(default)]
    pub seed: u64,
}

/// A generated stream; the same seed gives the same stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    pub seed: u64,
    /// `embeddings.ready` (default), or `chunks.processed`: then the embedding stage (the real
    /// service and the mock OpenAI in the broker driver) turns each chunk into an embedding,
    /// stamped with the time it was embedded and keyed by document; or `documents.raw`: then
    /// docproc (the real service in the broker driver) first chunks each generated text document
    /// (`chunks_per_document` chunks of its default chunker).
    #[serde(default = "embeddings")]
    pub topic: String,
    pub companies: usize,
    /// Documents per company.
    pub documents: usize,
    pub chunks_per_document: usize,
    /// First event time, RFC 3339.
    pub start: String,
    /// Event times are spread over this span (e.g. "20m").
    pub span: String,
    pub partitions: i32,
    /// Event time runs up to this much behind arrival order (e.g. "4s": within the watermark).
    #[serde(default = "zero")]
    pub disorder: String,
    /// Fraction of records that arrive `late_depth` after their event time.
    #[serde(default)]
    pub late_fraction: f64,
    #[serde(default = "zero")]
    pub late_depth: String,
    /// Fraction of records delivered twice (the second time later, at a new offset).
    #[serde(default)]
    pub duplicates: f64,
    /// Partitions that never get a record (the last ones): the watermark must not wait for them
    /// forever.
    #[serde(default)]
    pub idle_partitions: i32,
    /// Fraction of records whose event time is `future_skew` ahead of their arrival (a producer
    /// with a wrong clock).
    #[serde(default)]
    pub future_fraction: f64,
    #[serde(default = "zero")]
    pub future_skew: String,
    /// Fraction of records with a malformed value, cycling through: JSON cut short, text over
    /// two lines, a null value (tombstone), a document id that is not a UUID, no company id.
    #[serde(default)]
    pub malformed: f64,
    /// Only these kinds of malformed values (default: all five): `truncated`, `spans-lines`,
    /// `tombstone`, `not-a-uuid`, `no-company`.
    #[serde(default)]
    pub malformed_kinds: Vec<String>,
}

fn embeddings() -> String {
    crate::generate::EMBEDDINGS.into()
}

fn zero() -> String {
    "0s".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Crash the landing job this many times, at seeded random steps: the unsynced bytes of the
    /// in-memory filesystem are lost, a new sink recovers from what is there, and consumption
    /// resumes where recovery says.
    #[serde(default)]
    pub landing_crashes: usize,
    /// Crash the analytics job this many times, at seeded random steps: the open transaction is
    /// lost, the restarted job restores its state from the last committed checkpoint.
    #[serde(default)]
    pub analytics_crashes: usize,
    /// Restart the Kafka broker this many times, at seeded random steps (broker driver: the
    /// run gets its own broker, stopped and started again on the same data and port while the
    /// jobs run; the model has no broker, so the outcome must be the same as without).
    #[serde(default)]
    pub broker_restarts: usize,
    /// Crash the landing job, the analytics job, or restart the broker before these records too
    /// (indices in delivery order, from 0), besides the seeded ones.
    #[serde(default)]
    pub landing_crash_at: Vec<usize>,
    #[serde(default)]
    pub analytics_crash_at: Vec<usize>,
    #[serde(default)]
    pub broker_restart_at: Vec<usize>,
    /// A slow disk: every landing filesystem effect (append, sync, rename, delete) takes this
    /// long (broker driver: the job waits in real time; the model's time does not move, so the
    /// outcome must not change).
    #[serde(default = "zero")]
    pub disk_latency: String,
    /// Records per analytics transaction (its --max-batch).
    #[serde(default = "analytics_batch")]
    pub analytics_batch: usize,
}

fn analytics_batch() -> usize {
    20
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            landing_crashes: 0,
            analytics_crashes: 0,
            broker_restarts: 0,
            landing_crash_at: Vec::new(),
            analytics_crash_at: Vec::new(),
            broker_restart_at: Vec::new(),
            disk_latency: zero(),
            analytics_batch: analytics_batch(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Landing {
    /// flush.size of the connector.
    #[serde(default = "flush_size")]
    pub flush_size: u64,
    /// errors.tolerance of the connector: `none` (a record that cannot be landed stops the job,
    /// Connect's default) or `all` (it goes to `<topic>.dlq`).
    #[serde(default = "tolerance")]
    pub errors_tolerance: String,
}

fn tolerance() -> String {
    "none".into()
}

fn flush_size() -> u64 {
    50
}

impl Default for Landing {
    fn default() -> Self {
        Self {
            flush_size: flush_size(),
            errors_tolerance: tolerance(),
        }
    }
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut s: Scenario =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(
            s.generate.is_some() != s.input.is_some(),
            "{}: give either [generate] or [input], not both and not neither",
            path.display()
        );
        if let Some(r) = &mut s.input {
            r.file = path.parent().unwrap_or(Path::new(".")).join(&r.file);
        }
        if s.embeds() {
            let f = &s.faults;
            anyhow::ensure!(
                f.landing_crashes
                    + f.analytics_crashes
                    + f.broker_restarts
                    + f.landing_crash_at.len()
                    + f.analytics_crash_at.len()
                    + f.broker_restart_at.len()
                    == 0,
                "{}: a scenario of chunks.processed or documents.raw takes OpenAI faults only (crashes and restarts strike between records the driver produces; embeddings are produced by the service)",
                path.display()
            );
        }
        Ok(s)
    }

    /// Whether the embedding stage runs (the input is `chunks.processed` or `documents.raw`).
    pub fn embeds(&self) -> bool {
        self.generate.as_ref().is_some_and(|g| {
            g.topic == crate::generate::CHUNKS || g.topic == crate::generate::DOCUMENTS
        })
    }

    /// Whether docproc runs (the input is `documents.raw`).
    pub fn chunks(&self) -> bool {
        self.generate
            .as_ref()
            .is_some_and(|g| g.topic == crate::generate::DOCUMENTS)
    }

    /// The scenario's own seed.
    pub fn seed(&self) -> u64 {
        match (&self.generate, &self.input) {
            (Some(g), _) => g.seed,
            (None, Some(r)) => r.seed,
            (None, None) => 0,
        }
    }

    /// The input log for `seed` (a recorded stream is the same for every seed).
    pub fn log(&self, seed: u64) -> anyhow::Result<Log> {
        match (&self.generate, &self.input) {
            (Some(g), _) => crate::generate::generate(g, seed),
            (None, Some(r)) => crate::generate::recorded(r),
            (None, None) => anyhow::bail!("the scenario has no input"),
        }
    }
}

pub fn duration_ms(what: &str, value: &str) -> anyhow::Result<i64> {
    humantime::parse_duration(value)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| anyhow::anyhow!("{what} = {value:?}: {e} (e.g. \"5s\", \"20m\")"))
}
