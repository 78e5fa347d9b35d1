//! Scenario files: TOML, every key documented here and in docs/simulation.md.

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line: what the scenario shows.
    pub description: String,
    /// The stream.
    pub generate: Generate,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub landing: Landing,
    #[serde(default)]
    pub report: Report,
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

/// A generated `embeddings.ready` stream; the same seed gives the same stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    pub seed: u64,
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
}

fn flush_size() -> u64 {
    50
}

impl Default for Landing {
    fn default() -> Self {
        Self {
            flush_size: flush_size(),
        }
    }
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

pub fn duration_ms(what: &str, value: &str) -> anyhow::Result<i64> {
    humantime::parse_duration(value)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| anyhow::anyhow!("{what} = {value:?}: {e} (e.g. \"5s\", \"20m\")"))
}
