//! Scenario files: TOML, every key documented here and in docs/simulation.md.
//!
//! Typed when read: durations ("5s", "20m"), dates, enums and topic names are parsed and every
//! number range-checked by [`Scenario::load`], so a typo fails with the file, the key and the
//! fix before anything runs — never in the middle of a run inside a driver.

use crate::log::Log;
use atenex_contracts::Topic;
use atenex_landing::config::LandingConfig;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    #[serde(default)]
    pub analytics: Analytics,
}

/// The analytics job's settings that a scenario may change (the others are the job's defaults).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analytics {
    /// Its `--watermark`: `per-partition` (the default) or `global` (the seed job's one watermark
    /// over all records).
    #[serde(default)]
    pub watermark: atenex_analytics::core::WatermarkMode,
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
    #[serde(default, deserialize_with = "some_duration")]
    pub retry_after: Option<Duration>,
    /// Every answer waits this long (a slow API).
    #[serde(default, deserialize_with = "some_duration")]
    pub latency: Option<Duration>,
}

/// The daily report: run for every day the landing tree has, and for these days too.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Extra days (YYYY-MM-DD), e.g. one without data: its report is empty (the job runs with
    /// `--allow-empty`).
    #[serde(default)]
    pub days: Vec<NaiveDate>,
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
    #[serde(default, deserialize_with = "duration")]
    pub lag: Duration,
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
    #[serde(default)]
    pub topic: InputTopic,
    pub companies: usize,
    /// Documents per company.
    pub documents: usize,
    pub chunks_per_document: usize,
    /// First event time, RFC 3339.
    pub start: DateTime<Utc>,
    /// Event times are spread over this span (e.g. "20m").
    #[serde(deserialize_with = "duration")]
    pub span: Duration,
    pub partitions: i32,
    /// Event time runs up to this much behind arrival order (e.g. "4s": within the watermark).
    #[serde(default, deserialize_with = "duration")]
    pub disorder: Duration,
    /// Arrival and event times are rounded down to a whole multiple of this (e.g. "5s"; by
    /// default, to the millisecond): records then fall exactly on window ends, watermarks and
    /// idle timeouts, where `<` and `<=` differ.
    #[serde(default, deserialize_with = "duration")]
    pub grid: Duration,
    /// Fraction of records that arrive `late_depth` after their event time.
    #[serde(default)]
    pub late_fraction: f64,
    #[serde(default, deserialize_with = "duration")]
    pub late_depth: Duration,
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
    #[serde(default, deserialize_with = "duration")]
    pub future_skew: Duration,
    /// Fraction of records with a malformed value, cycling through: JSON cut short, text over
    /// two lines, a null value (tombstone), a document id that is not a UUID, no company id.
    #[serde(default)]
    pub malformed: f64,
    /// Only these kinds of malformed values (default: all five): `truncated`, `spans-lines`,
    /// `tombstone`, `not-a-uuid`, `no-company`.
    #[serde(default)]
    pub malformed_kinds: Vec<Malformed>,
}

/// The topic a generated stream is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum InputTopic {
    #[default]
    #[serde(rename = "embeddings.ready")]
    EmbeddingsReady,
    #[serde(rename = "chunks.processed")]
    ChunksProcessed,
    #[serde(rename = "documents.raw")]
    DocumentsRaw,
}

impl InputTopic {
    pub fn topic(self) -> Topic {
        match self {
            InputTopic::EmbeddingsReady => Topic::EmbeddingsReady,
            InputTopic::ChunksProcessed => Topic::ChunksProcessed,
            InputTopic::DocumentsRaw => Topic::DocumentsRaw,
        }
    }

    pub fn name(self) -> &'static str {
        self.topic().name()
    }
}

/// A kind of malformed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Malformed {
    /// JSON cut short: not JSON, on one line.
    Truncated,
    /// Not JSON, over two lines.
    SpansLines,
    /// A null value.
    Tombstone,
    /// A document id that is not a UUID.
    NotAUuid,
    /// The value without its company id.
    NoCompany,
}

impl Malformed {
    /// Every kind, in the order the generator cycles through them.
    pub const ALL: [Malformed; 5] = [
        Malformed::Truncated,
        Malformed::SpansLines,
        Malformed::Tombstone,
        Malformed::NotAUuid,
        Malformed::NoCompany,
    ];
}

/// A duration as people write it: "5s", "20m", "1h 30m", "250ms".
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration: {e} (write e.g. \"5s\", \"20m\", \"250ms\")"
        ))
    })
}

fn some_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Milliseconds of a duration (scenario durations are far below `i64::MAX` ms).
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
    #[serde(default, deserialize_with = "duration")]
    pub disk_latency: Duration,
    /// Records per analytics transaction (its --max-batch).
    #[serde(default = "analytics_batch")]
    pub analytics_batch: usize,
    /// Instances of the analytics job in one group, one active and the others standing by
    /// (1–5). With more than one, an analytics crash kills the active instance and a standby
    /// takes over; the killed one comes back as a standby.
    #[serde(default = "one")]
    pub analytics_instances: usize,
    /// Freeze the active analytics instance this many times (seeded steps), and before these
    /// records, past its session timeout: a standby takes over, and the frozen one wakes
    /// `analytics_freeze_records` records later, its open transaction in hand — a zombie, which
    /// must be fenced and step down. Needs `analytics_instances` ≥ 2.
    #[serde(default)]
    pub analytics_freezes: usize,
    #[serde(default)]
    pub analytics_freeze_at: Vec<usize>,
    #[serde(default = "freeze_records")]
    pub analytics_freeze_records: usize,
    /// Start one more analytics instance this many times (seeded steps), and before these
    /// records: it joins the group as a standby (the lease stays where it is).
    #[serde(default)]
    pub analytics_joins: usize,
    #[serde(default)]
    pub analytics_join_at: Vec<usize>,
    /// Landing instances (Connect tasks) of one group (1–5): the partitions are split among them
    /// (sticky and balanced); a landing crash kills the instance that owns the record's
    /// partition, which comes back with the same partitions (static membership) and recovers them.
    #[serde(default = "one")]
    pub landing_instances: usize,
    /// Freeze the landing instance that owns the record's partition this many times (seeded
    /// steps), and before these records, past its session timeout: its partitions go to the
    /// others, which recover them (and fence it), and it wakes `landing_freeze_records` records
    /// later and tries to commit everything it has open — a zombie, which must be fenced. Needs
    /// `landing_instances` ≥ 2.
    #[serde(default)]
    pub landing_freezes: usize,
    #[serde(default)]
    pub landing_freeze_at: Vec<usize>,
    #[serde(default = "freeze_records")]
    pub landing_freeze_records: usize,
    /// Start one more landing instance this many times (seeded steps), and before these records:
    /// it joins the group and partitions move to it (revoked from their owners, recovered by it).
    #[serde(default)]
    pub landing_joins: usize,
    #[serde(default)]
    pub landing_join_at: Vec<usize>,
}

fn analytics_batch() -> usize {
    20
}

fn one() -> usize {
    1
}

fn freeze_records() -> usize {
    5
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
            disk_latency: Duration::ZERO,
            analytics_batch: analytics_batch(),
            analytics_instances: 1,
            analytics_freezes: 0,
            analytics_freeze_at: Vec::new(),
            analytics_freeze_records: freeze_records(),
            analytics_joins: 0,
            analytics_join_at: Vec::new(),
            landing_instances: 1,
            landing_freezes: 0,
            landing_freeze_at: Vec::new(),
            landing_freeze_records: freeze_records(),
            landing_joins: 0,
            landing_join_at: Vec::new(),
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
    #[serde(default)]
    pub errors_tolerance: Tolerance,
    /// errors.deadletterqueue.topic.name of the connector (`.dlq` is added when it lacks it; by
    /// default each record goes to `<its topic>.dlq`).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// timestamp.extractor of the connector: `Wallclock` (the default, processing time: the
    /// driver's clock at each record's arrival) or `Record` (the Kafka record timestamp, which
    /// puts late records in their own hour's directory and rotates on record time).
    #[serde(default)]
    pub timestamp_extractor: Extractor,
    /// rotate.interval.ms of the connector (on the extractor's time).
    #[serde(default = "rotate_interval", deserialize_with = "duration")]
    pub rotate_interval: Duration,
    /// rotate.schedule.interval.ms: commits at processing-time boundaries aligned to midnight
    /// UTC (none by default).
    #[serde(default, deserialize_with = "some_duration")]
    pub rotate_schedule_interval: Option<Duration>,
    /// atenex.idle.commit.ms: files without a new record for this long of processing time are
    /// committed (the connector's default: rotate_interval).
    #[serde(default, deserialize_with = "some_duration")]
    pub idle_commit: Option<Duration>,
}

/// `timestamp.extractor` of the connector, spelled as in its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Extractor {
    #[default]
    Wallclock,
    Record,
}

impl Extractor {
    pub fn as_str(self) -> &'static str {
        match self {
            Extractor::Wallclock => "Wallclock",
            Extractor::Record => "Record",
        }
    }
}

/// `errors.tolerance` of the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tolerance {
    #[default]
    None,
    All,
}

impl Tolerance {
    pub fn as_str(self) -> &'static str {
        match self {
            Tolerance::None => "none",
            Tolerance::All => "all",
        }
    }
}

fn flush_size() -> u64 {
    50
}

fn rotate_interval() -> Duration {
    Duration::from_secs(600)
}

impl Default for Landing {
    fn default() -> Self {
        Self {
            flush_size: flush_size(),
            errors_tolerance: Tolerance::None,
            dead_letter_topic: None,
            timestamp_extractor: Extractor::Wallclock,
            rotate_interval: rotate_interval(),
            rotate_schedule_interval: None,
            idle_commit: None,
        }
    }
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = atenex_contracts::lines::read_small_text(
            path,
            atenex_contracts::lines::MAX_CONFIG_BYTES,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// A scenario from the text of the file `path` (which names it in errors and anchors a
    /// recorded input's relative path): typed and range-checked, or an error naming the key.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Self> {
        let mut s: Scenario =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(
            s.generate.is_some() != s.input.is_some(),
            "{}: give either [generate] or [input], not both and not neither",
            path.display()
        );
        if let Some(r) = &mut s.input {
            r.file = path.parent().unwrap_or(Path::new(".")).join(&r.file);
        }
        s.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if s.embeds() {
            let f = &s.faults;
            anyhow::ensure!(
                f.landing_crashes
                    + f.analytics_crashes
                    + f.broker_restarts
                    + f.landing_crash_at.len()
                    + f.analytics_crash_at.len()
                    + f.broker_restart_at.len()
                    + f.analytics_freezes
                    + f.analytics_freeze_at.len()
                    + f.analytics_joins
                    + f.analytics_join_at.len()
                    + f.landing_freezes
                    + f.landing_freeze_at.len()
                    + f.landing_joins
                    + f.landing_join_at.len()
                    == 0,
                "{}: a scenario of chunks.processed or documents.raw takes OpenAI faults only (crashes and restarts strike between records the driver produces; embeddings are produced by the service)",
                path.display()
            );
        }
        Ok(s)
    }

    /// Range checks of what the types alone do not bound: the key, the value and the fix.
    fn validate(&self) -> anyhow::Result<()> {
        /// Most records a generated stream may have (the model keeps the log in memory).
        const MAX_RECORDS: u128 = 10_000_000;
        let f = &self.faults;
        anyhow::ensure!(
            f.analytics_batch >= 1,
            "faults.analytics_batch = 0: a transaction holds at least one record (the default is 20)"
        );
        anyhow::ensure!(
            (1..=5).contains(&f.analytics_instances),
            "faults.analytics_instances = {}: use 1 to 5 (the default is 1)",
            f.analytics_instances
        );
        anyhow::ensure!(
            f.analytics_freezes + f.analytics_freeze_at.len() == 0 || f.analytics_instances >= 2,
            "faults.analytics_freezes / analytics_freeze_at need a standby to take over: set analytics_instances = 2 or more"
        );
        anyhow::ensure!(
            f.analytics_freeze_records >= 1,
            "faults.analytics_freeze_records = 0: a frozen instance sleeps through at least one record (the default is 5)"
        );
        anyhow::ensure!(
            (1..=5).contains(&f.landing_instances),
            "faults.landing_instances = {}: use 1 to 5 (the default is 1)",
            f.landing_instances
        );
        anyhow::ensure!(
            f.landing_freezes + f.landing_freeze_at.len() == 0 || f.landing_instances >= 2,
            "faults.landing_freezes / landing_freeze_at need another instance to take the partitions over: set landing_instances = 2 or more"
        );
        anyhow::ensure!(
            f.landing_freeze_records >= 1,
            "faults.landing_freeze_records = 0: a frozen instance sleeps through at least one record (the default is 5)"
        );
        anyhow::ensure!(
            self.landing.flush_size >= 1,
            "landing.flush_size = 0: flush.size must be at least 1 (the default is 50)"
        );
        for (key, value) in [
            ("rotate_interval", Some(self.landing.rotate_interval)),
            (
                "rotate_schedule_interval",
                self.landing.rotate_schedule_interval,
            ),
            ("idle_commit", self.landing.idle_commit),
        ] {
            anyhow::ensure!(
                value.is_none_or(|d| d.as_millis() >= 1),
                "landing.{key} = 0s: at least a millisecond (e.g. \"30s\"); leave it out for the default"
            );
        }
        if let Some(g) = &self.generate {
            for (key, value) in [
                ("late_fraction", g.late_fraction),
                ("duplicates", g.duplicates),
                ("future_fraction", g.future_fraction),
                ("malformed", g.malformed),
            ] {
                anyhow::ensure!(
                    (0.0..=1.0).contains(&value),
                    "generate.{key} = {value}: a fraction between 0 and 1 (e.g. 0.05)"
                );
            }
            anyhow::ensure!(
                (1..=1024).contains(&g.partitions),
                "generate.partitions = {}: between 1 and 1024",
                g.partitions
            );
            anyhow::ensure!(
                (0..g.partitions).contains(&g.idle_partitions),
                "generate.idle_partitions = {}: from 0 to generate.partitions - 1 ({})",
                g.idle_partitions,
                g.partitions - 1
            );
            anyhow::ensure!(
                g.chunks_per_document >= 1,
                "generate.chunks_per_document = 0: at least 1"
            );
            let records = g.companies as u128 * g.documents as u128 * g.chunks_per_document as u128;
            anyhow::ensure!(
                records <= MAX_RECORDS,
                "generate: companies × documents × chunks_per_document = {records} records; at most {MAX_RECORDS}"
            );
            anyhow::ensure!(
                !g.span.is_zero(),
                "generate.span = 0s: event times need a span (e.g. \"3m\")"
            );
        }
        Ok(())
    }

    /// Whether the embedding stage runs (the input is `chunks.processed` or `documents.raw`).
    pub fn embeds(&self) -> bool {
        self.generate.as_ref().is_some_and(|g| {
            matches!(
                g.topic,
                InputTopic::ChunksProcessed | InputTopic::DocumentsRaw
            )
        })
    }

    /// The analytics job's settings in this scenario: its defaults, with the scenario's
    /// `[analytics]` keys.
    pub fn analytics_settings(&self) -> atenex_analytics::core::Settings {
        atenex_analytics::core::Settings {
            mode: self.analytics.watermark,
            ..Default::default()
        }
    }

    /// Whether docproc runs (the input is `documents.raw`).
    pub fn chunks(&self) -> bool {
        self.generate
            .as_ref()
            .is_some_and(|g| g.topic == InputTopic::DocumentsRaw)
    }

    /// The scenario's own seed.
    pub fn seed(&self) -> u64 {
        match (&self.generate, &self.input) {
            (Some(g), _) => g.seed,
            (None, Some(r)) => r.seed,
            (None, None) => 0,
        }
    }
}

/// The connector file the scenario's landing runs with; `prefix` goes before each topic name.
pub fn landing_config(
    scenario: &Scenario,
    log: &Log,
    prefix: &str,
) -> anyhow::Result<LandingConfig> {
    let topics: Vec<String> = log
        .topics()
        .into_iter()
        .map(|(t, _)| format!("{prefix}{t}"))
        .collect();
    let l = &scenario.landing;
    let mut text = format!(
        "name=sim\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics={}\n\
         hdfs.url=file:///sim\ntopics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/kafka-connect/logs\n\
         format.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size={}\nrotate.interval.ms={}\n\
         partitioner.class=io.confluent.connect.storage.partitioner.TimeBasedPartitioner\npartition.duration.ms=3600000\n\
         path.format='year'=YYYY/'month'=MM/'day'=dd/'hour'=HH\nlocale=en_US\ntimezone=UTC\nerrors.tolerance={}\ntimestamp.extractor={}\n",
        topics.join(","),
        l.flush_size,
        l.rotate_interval.as_millis(),
        l.errors_tolerance.as_str(),
        l.timestamp_extractor.as_str(),
    );
    if let Some(every) = l.rotate_schedule_interval {
        text.push_str(&format!(
            "rotate.schedule.interval.ms={}\n",
            every.as_millis()
        ));
    }
    if let Some(name) = &l.dead_letter_topic {
        text.push_str(&format!(
            "errors.deadletterqueue.topic.name={prefix}{name}\n"
        ));
    }
    if let Some(idle) = l.idle_commit {
        text.push_str(&format!("atenex.idle.commit.ms={}\n", idle.as_millis()));
    }
    LandingConfig::from_properties(&text, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"description = "d"
[generate]
seed = 1
companies = 1
documents = 1
chunks_per_document = 2
start = "2026-11-27T22:58:00Z"
span = "3m"
partitions = 2
"#;

    /// Loads `GOOD` with `extra` added to `[generate]` (or after it, for another table); a
    /// `key = value` line whose key `GOOD` has replaces that key's line instead.
    fn load_with(extra: &str) -> anyhow::Result<Scenario> {
        let key = extra.split(" = ").next().unwrap_or_default();
        let text = match GOOD.lines().find(|l| l.starts_with(&format!("{key} = "))) {
            Some(line) if !key.is_empty() => GOOD.replace(line, extra),
            _ => format!("{GOOD}{extra}\n"),
        };
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, text)?;
        Scenario::load(&path)
    }

    fn error(extra: &str) -> String {
        format!("{:#}", load_with(extra).unwrap_err())
    }

    #[test]
    fn a_good_file_is_typed_when_read() {
        let s = load_with("disorder = \"4s\"\n[landing]\nerrors_tolerance = \"all\"\n[report]\ndays = [\"2026-11-28\"]").unwrap();
        let g = s.generate.as_ref().unwrap();
        assert_eq!(g.span, Duration::from_secs(180));
        assert_eq!(g.disorder, Duration::from_secs(4));
        assert_eq!(g.topic, InputTopic::EmbeddingsReady);
        assert_eq!(g.start.timestamp_millis(), 1_795_820_280_000);
        assert_eq!(s.landing.errors_tolerance, Tolerance::All);
        assert_eq!(s.report.days[0].to_string(), "2026-11-28");
    }

    #[test]
    fn typos_fail_at_load_with_the_file_the_key_and_the_fix() {
        for (extra, needles) in [
            (
                "disorder = \"4 secs ago\"",
                vec!["typo.toml", "disorder", "e.g. \"5s\""],
            ),
            (
                "topic = \"embedings.ready\"",
                vec!["typo.toml", "topic", "embeddings.ready", "chunks.processed"],
            ),
            (
                "malformed_kinds = [\"truncate\"]",
                vec!["malformed_kinds", "truncated"],
            ),
            (
                "duplicates = nan",
                vec!["generate.duplicates", "between 0 and 1"],
            ),
            ("late_fraction = 1.5", vec!["generate.late_fraction"]),
            (
                "idle_partitions = 2",
                vec!["generate.idle_partitions", "from 0 to"],
            ),
            ("documents = 100000000", vec!["at most"]),
            (
                "[landing]\nerrors_tolerance = \"some\"",
                vec!["errors_tolerance", "all"],
            ),
            (
                "[landing]\ntimestamp_extractor = \"record\"",
                vec!["timestamp_extractor", "Wallclock", "Record"],
            ),
            ("[report]\ndays = [\"2026-13-01\"]", vec!["days"]),
            (
                "[faults]\nanalytics_batch = 0",
                vec!["faults.analytics_batch", "at least one"],
            ),
            (
                "[faults]\nanalytics_instances = 6",
                vec!["faults.analytics_instances", "use 1 to 5"],
            ),
            (
                "[faults]\nanalytics_freeze_at = [3]",
                vec!["analytics_freeze_at", "analytics_instances = 2"],
            ),
            (
                "[faults]\nanalytics_instances = 2\nanalytics_freeze_records = 0",
                vec!["faults.analytics_freeze_records", "at least one record"],
            ),
            (
                "[faults]\nlanding_instances = 0",
                vec!["faults.landing_instances", "use 1 to 5"],
            ),
            (
                "[faults]\nlanding_freeze_at = [3]",
                vec!["landing_freeze_at", "landing_instances = 2"],
            ),
            (
                "[faults]\nlanding_instances = 2\nlanding_freeze_records = 0",
                vec!["faults.landing_freeze_records", "at least one record"],
            ),
            (
                "[faults]\ndisk_latency = \"slow\"",
                vec!["disk_latency", "not a duration"],
            ),
        ] {
            let e = error(extra);
            for n in needles {
                assert!(e.contains(n), "{extra}: {n:?} not in: {e}");
            }
        }
    }
}
