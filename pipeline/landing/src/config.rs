//! The landing configuration: Kafka Connect HDFS sink keys read from a properties file, with
//! environment overrides, checked all at once — every problem names the key, the value and the fix.
//!
//! Environment overrides: `ATENEX_LANDING_<KEY>` with the key upper-cased and `.` → `_`
//! (`ATENEX_LANDING_FLUSH_SIZE=500` overrides `flush.size`).

use crate::path_format::PathFormat;
use crate::properties::{self, Entry};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::fmt;

pub const ENV_PREFIX: &str = "ATENEX_LANDING_";

/// Connector classes we stand in for.
pub const CONNECTOR_CLASSES: [&str; 2] = [
    "io.confluent.connect.hdfs3.Hdfs3SinkConnector",
    "io.confluent.connect.hdfs.HdfsSinkConnector",
];
pub const JSON_FORMATS: [&str; 2] = [
    "io.confluent.connect.hdfs3.format.json.JsonFormat",
    "io.confluent.connect.hdfs.json.JsonFormat",
];

/// Every key we read; others are reported once as unknown (and ignored).
pub const KNOWN_KEYS: [&str; 23] = [
    "name",
    "connector.class",
    "tasks.max",
    "topics",
    "topics.regex",
    "hdfs.url",
    "store.url",
    "topics.dir",
    "logs.dir",
    "format.class",
    "flush.size",
    "rotate.interval.ms",
    "rotate.schedule.interval.ms",
    "partitioner.class",
    "partition.duration.ms",
    "path.format",
    "locale",
    "timezone",
    "timestamp.extractor",
    "timestamp.field",
    "filename.offset.zero.pad.width",
    "errors.tolerance",
    "errors.deadletterqueue.topic.name",
];
/// Ours: commit a partition's open files after this long without a record (ms), so that data
/// never waits in `+tmp` on a quiet partition. Default: `rotate.interval.ms` when set, else 10 min.
pub const IDLE_COMMIT_KEY: &str = "atenex.idle.commit.ms";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    List(Vec<String>),
    Regex(String),
}

/// Where the files go: `hdfs://host:port` or a local directory (`file:///path` or a plain path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Hdfs { url: atenex_hdfs::HdfsUrl },
    Local { root: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitioner {
    /// `partition=<kafka partition>`.
    Default,
    /// Time buckets of `duration_ms` in `timezone`, named by `path_format`.
    TimeBased {
        duration_ms: i64,
        path_format: PathFormat,
        pattern: String,
        timezone: Tz,
        locale: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampExtractor {
    /// Processing time (Connect's default).
    Wallclock,
    /// The Kafka record timestamp.
    Record,
    /// A field of the value: epoch ms or ISO-8601 text; dotted paths for nested fields.
    RecordField(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorTolerance {
    /// Stop at the first bad record.
    None,
    /// Send bad records to the dead-letter topic and go on.
    All { dlq_topic: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandingConfig {
    pub name: String,
    pub tasks_max: u32,
    pub topics: Topics,
    pub store: Store,
    pub topics_dir: String,
    pub logs_dir: String,
    pub flush_size: u64,
    /// `None` when disabled (≤ 0).
    pub rotate_interval_ms: Option<i64>,
    pub rotate_schedule_interval_ms: Option<i64>,
    pub idle_commit_ms: i64,
    pub partitioner: Partitioner,
    pub timestamp_extractor: TimestampExtractor,
    pub offset_pad_width: usize,
    pub errors: ErrorTolerance,
    /// Keys present but not ours, to warn about once.
    pub unknown_keys: Vec<String>,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub value: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(
                f,
                "`{}` = {v:?}: {}. Fix: {}",
                self.key, self.problem, self.fix
            ),
            None => write!(
                f,
                "`{}` is missing: {}. Fix: {}",
                self.key, self.problem, self.fix
            ),
        }
    }
}

/// Every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the landing configuration has {} problem(s):",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

struct Reader {
    values: BTreeMap<String, String>,
    problems: Vec<Problem>,
}

impl Reader {
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn problem(&mut self, key: &str, problem: impl Into<String>, fix: impl Into<String>) {
        let value = self.values.get(key).cloned();
        self.problems.push(Problem {
            key: key.to_owned(),
            value,
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn int(&mut self, key: &str, default: Option<i64>, fix: &str) -> Option<i64> {
        match self.get(key) {
            None => {
                if default.is_none() {
                    self.problem(key, "required", fix);
                }
                default
            }
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.problem(key, "not a whole number", fix);
                    None
                }
            },
        }
    }
}

impl LandingConfig {
    /// Reads `text` (a properties file) with overrides from `env` (`(name, value)` pairs).
    pub fn from_properties(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let entries = properties::parse(text).map_err(|e| ConfigError {
            problems: vec![Problem {
                key: format!("(line {})", e.line),
                value: None,
                problem: e.problem,
                fix: "write the line as key=value (see java.util.Properties)".to_owned(),
            }],
        })?;
        let mut values: BTreeMap<String, String> = entries
            .into_iter()
            .map(|Entry { key, value, .. }| (key, value))
            .collect();
        for (name, value) in env {
            if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
                values.insert(rest.to_ascii_lowercase().replace('_', "."), value);
            }
        }
        Self::from_map(values)
    }

    /// Parse (the keys as given), check each part (every problem is collected, so one run names
    /// them all), then build.
    fn from_map(values: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let unknown_keys: Vec<String> = values
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()) && k.as_str() != IDLE_COMMIT_KEY)
            .cloned()
            .collect();
        let mut r = Reader {
            values,
            problems: Vec::new(),
        };
        let (name, tasks_max) = connector(&mut r);
        let topics = topics(&mut r);
        let store = store(&mut r);
        let (topics_dir, logs_dir) = directories(&mut r);
        format(&mut r);
        let rotation = rotation(&mut r);
        let partitioner = partitioner(&mut r);
        let timestamp_extractor = timestamp_extractor(&mut r);
        let offset_pad_width = offset_pad_width(&mut r);
        let errors = errors(&mut r);
        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(LandingConfig {
            name,
            tasks_max,
            topics,
            store,
            topics_dir,
            logs_dir,
            flush_size: rotation.flush_size,
            rotate_interval_ms: rotation.rotate_interval_ms,
            rotate_schedule_interval_ms: rotation.rotate_schedule_interval_ms,
            idle_commit_ms: rotation.idle_commit_ms,
            partitioner,
            timestamp_extractor,
            offset_pad_width,
            errors,
            unknown_keys,
        })
    }
}

/// When files are committed.
struct Rotation {
    flush_size: u64,
    rotate_interval_ms: Option<i64>,
    rotate_schedule_interval_ms: Option<i64>,
    idle_commit_ms: i64,
}

/// `name`, `connector.class` and `tasks.max`.
fn connector(r: &mut Reader) -> (String, u32) {
    let name = r.get("name").unwrap_or_default().to_owned();
    if name.is_empty() {
        r.problem(
            "name",
            "required (it names the consumer group, `connect-<name>`)",
            "add name=HdfsSinkAtenex",
        );
    }
    match r.get("connector.class") {
        Some(c) if CONNECTOR_CLASSES.contains(&c) => {}
        Some(_) => r.problem(
            "connector.class",
            "not an HDFS sink connector we replace",
            format!("use {}", CONNECTOR_CLASSES[0]),
        ),
        None => r.problem(
            "connector.class",
            "required",
            format!("add connector.class={}", CONNECTOR_CLASSES[0]),
        ),
    }
    let tasks_max = r.int(
        "tasks.max",
        Some(1),
        "a number of tasks ≥ 1, e.g. tasks.max=2",
    );
    if tasks_max.is_some_and(|t| t < 1) {
        r.problem("tasks.max", "must be ≥ 1", "e.g. tasks.max=1");
    }
    (name, tasks_max.unwrap_or(1) as u32)
}

/// `topics` or `topics.regex`.
fn topics(r: &mut Reader) -> Topics {
    match (r.get("topics"), r.get("topics.regex")) {
        (Some(list), None) => {
            let list: Vec<String> = list
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
            Topics::List(list)
        }
        (None, Some(re)) => Topics::Regex(re.to_owned()),
        (Some(_), Some(_)) => {
            r.problem(
                "topics.regex",
                "set together with `topics`: Connect refuses both",
                "keep one of topics and topics.regex",
            );
            Topics::List(vec![])
        }
        (None, None) => {
            r.problem(
                "topics",
                "required (or topics.regex)",
                "e.g. topics=documents.raw,chunks.processed,embeddings.ready",
            );
            Topics::List(vec![])
        }
    }
}

/// `hdfs.url` (or `store.url`): HDFS or a local directory.
fn store(r: &mut Reader) -> Store {
    let url = r.get("hdfs.url").or(r.get("store.url")).map(str::to_owned);
    match url {
        None => {
            r.problem("hdfs.url", "required", "hdfs.url=hdfs://namenode:8020, or a local directory such as file:///var/atenex or ./data/hdfs");
            Store::Local {
                root: String::new(),
            }
        }
        Some(u) if u.starts_with("hdfs://") => match atenex_hdfs::HdfsUrl::parse(&u) {
            Ok(url) => Store::Hdfs { url },
            Err(problem) => {
                r.problem("hdfs.url", &problem, "e.g. hdfs.url=hdfs://namenode:8020");
                Store::Local {
                    root: String::new(),
                }
            }
        },
        Some(u) if u.starts_with("file://") => Store::Local {
            root: u["file://".len()..].to_owned(),
        },
        Some(u) if u.contains("://") => {
            r.problem(
                "hdfs.url",
                "unsupported scheme",
                "use hdfs://host:port, file:///path or a plain directory",
            );
            Store::Local {
                root: String::new(),
            }
        }
        Some(u) => Store::Local { root: u },
    }
}

/// `topics.dir` and `logs.dir`: under the store root, and apart.
fn directories(r: &mut Reader) -> (String, String) {
    let dir = |r: &Reader, key: &str, default: &str| -> String {
        r.get(key)
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
    };
    let topics_dir = dir(r, "topics.dir", "topics");
    let logs_dir = dir(r, "logs.dir", "logs");
    for (key, d) in [("topics.dir", &topics_dir), ("logs.dir", &logs_dir)] {
        if d.split('/').any(|part| part == "..") {
            r.problem(
                key,
                "must not leave the store root (`..`)",
                "use a path under hdfs.url",
            );
        }
    }
    if !topics_dir.is_empty() && topics_dir == logs_dir {
        r.problem(
            "logs.dir",
            "same as topics.dir: commit logs would land among the data files",
            "e.g. logs.dir=/atenex/kafka-connect/logs",
        );
    }
    (topics_dir, logs_dir)
}

/// `format.class`: JSON only.
fn format(r: &mut Reader) {
    match r.get("format.class") {
        Some(f) if JSON_FORMATS.contains(&f) => {}
        Some(_) => r.problem(
            "format.class",
            "unsupported: this sink writes JSON only",
            format!("format.class={}", JSON_FORMATS[0]),
        ),
        None => r.problem(
            "format.class",
            "required",
            format!("format.class={}", JSON_FORMATS[0]),
        ),
    }
}

/// `flush.size`, `rotate.interval.ms`, `rotate.schedule.interval.ms` and the idle commit.
fn rotation(r: &mut Reader) -> Rotation {
    let flush_size = r.int("flush.size", None, "records per file, e.g. flush.size=1000");
    if flush_size.is_some_and(|f| f < 1) {
        r.problem("flush.size", "must be ≥ 1", "e.g. flush.size=1000");
    }
    let enabled = |v: Option<i64>| v.filter(|&ms| ms > 0);
    let rotate_interval_ms = enabled(r.int(
        "rotate.interval.ms",
        Some(-1),
        "milliseconds, or -1 to disable",
    ));
    let rotate_schedule_interval_ms = enabled(r.int(
        "rotate.schedule.interval.ms",
        Some(-1),
        "milliseconds, or -1 to disable",
    ));
    let idle_commit_ms = r
        .int(
            IDLE_COMMIT_KEY,
            Some(rotate_interval_ms.unwrap_or(600_000)),
            "milliseconds, e.g. 600000",
        )
        .unwrap_or(600_000);
    if idle_commit_ms <= 0 {
        r.problem(
            IDLE_COMMIT_KEY,
            "must be > 0 (data must not wait in +tmp forever)",
            "e.g. atenex.idle.commit.ms=600000",
        );
    }
    Rotation {
        flush_size: flush_size.unwrap_or(1) as u64,
        rotate_interval_ms,
        rotate_schedule_interval_ms,
        idle_commit_ms,
    }
}

/// `timestamp.extractor` (and `timestamp.field`).
fn timestamp_extractor(r: &mut Reader) -> TimestampExtractor {
    match r.get("timestamp.extractor").unwrap_or("Wallclock") {
        "Wallclock" => TimestampExtractor::Wallclock,
        "Record" => TimestampExtractor::Record,
        "RecordField" => match r.get("timestamp.field") {
            Some(f) => TimestampExtractor::RecordField(f.to_owned()),
            None => {
                r.problem(
                    "timestamp.field",
                    "required with timestamp.extractor=RecordField",
                    "name the field, e.g. timestamp.field=created_at",
                );
                TimestampExtractor::Wallclock
            }
        },
        _ => {
            r.problem(
                "timestamp.extractor",
                "unknown extractor",
                "one of Wallclock, Record, RecordField",
            );
            TimestampExtractor::Wallclock
        }
    }
}

/// `filename.offset.zero.pad.width`.
fn offset_pad_width(r: &mut Reader) -> usize {
    let pad = r
        .int(
            "filename.offset.zero.pad.width",
            Some(10),
            "digits, e.g. 10",
        )
        .unwrap_or(10);
    if !(0..=19).contains(&pad) {
        r.problem(
            "filename.offset.zero.pad.width",
            "must be 0 to 19",
            "e.g. filename.offset.zero.pad.width=10",
        );
    }
    pad as usize
}

/// `errors.tolerance` (and `errors.deadletterqueue.topic.name`).
fn errors(r: &mut Reader) -> ErrorTolerance {
    match r.get("errors.tolerance").unwrap_or("none") {
        "none" => ErrorTolerance::None,
        "all" => ErrorTolerance::All {
            dlq_topic: r
                .get("errors.deadletterqueue.topic.name")
                .map(str::to_owned),
        },
        _ => {
            r.problem(
                "errors.tolerance",
                "unknown value",
                "none (stop at a bad record) or all (dead-letter it)",
            );
            ErrorTolerance::None
        }
    }
}

const TIME_BASED: [&str; 2] = [
    "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
    "io.confluent.connect.hdfs.partitioner.TimeBasedPartitioner",
];

fn partitioner(r: &mut Reader) -> Partitioner {
    let class = r
        .get("partitioner.class")
        .unwrap_or("io.confluent.connect.storage.partitioner.DefaultPartitioner")
        .to_owned();
    let short = class.rsplit('.').next().unwrap_or_default();
    let (duration, pattern) = match short {
        "DefaultPartitioner" => return Partitioner::Default,
        "HourlyPartitioner" => (
            Some(3_600_000),
            Some("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH".to_owned()),
        ),
        "DailyPartitioner" => (
            Some(86_400_000),
            Some("'year'=YYYY/'month'=MM/'day'=dd".to_owned()),
        ),
        "TimeBasedPartitioner" if TIME_BASED.contains(&class.as_str()) => {
            let duration = match r.get("partition.duration.ms") {
                None => {
                    r.problem(
                        "partition.duration.ms",
                        "the TimeBasedPartitioner needs a positive partition duration (Connect refuses to start: \"Partition duration needs to be a positive.\"); the Atenex file leaves it out",
                        "add partition.duration.ms=3600000 (one hour, the finest unit of path.format 'hour'=HH)",
                    );
                    None
                }
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(d) if d > 0 => Some(d),
                    _ => {
                        r.problem(
                            "partition.duration.ms",
                            "must be a positive number of milliseconds",
                            "e.g. partition.duration.ms=3600000",
                        );
                        None
                    }
                },
            };
            let pattern = r.get("path.format").map(str::to_owned);
            if pattern.is_none() {
                r.problem(
                    "path.format",
                    "required by the TimeBasedPartitioner",
                    "e.g. path.format='year'=YYYY/'month'=MM/'day'=dd/'hour'=HH",
                );
            }
            (duration, pattern)
        }
        _ => {
            r.problem(
                "partitioner.class",
                "not a partitioner we support",
                "one of io.confluent.connect.storage.partitioner.{DefaultPartitioner,HourlyPartitioner,DailyPartitioner,TimeBasedPartitioner}",
            );
            return Partitioner::Default;
        }
    };
    let locale = r.get("locale").map(str::to_owned);
    if locale.is_none() {
        r.problem(
            "locale",
            "required by time-based partitioners",
            "e.g. locale=en_US",
        );
    }
    let timezone = match r.get("timezone") {
        None => {
            r.problem(
                "timezone",
                "required by time-based partitioners",
                "e.g. timezone=UTC",
            );
            None
        }
        Some(z) => match z.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                r.problem(
                    "timezone",
                    "not an IANA time zone",
                    "e.g. timezone=UTC or timezone=Europe/Madrid",
                );
                None
            }
        },
    };
    let compiled = pattern.as_deref().map(PathFormat::parse);
    let path_format = match compiled {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            r.problem("path.format", e.to_string(), e.fix());
            None
        }
        None => None,
    };
    match (duration, path_format, pattern, timezone, locale) {
        (Some(duration_ms), Some(path_format), Some(pattern), Some(timezone), Some(locale)) => {
            Partitioner::TimeBased {
                duration_ms,
                path_format,
                pattern,
                timezone,
                locale,
            }
        }
        _ => Partitioner::Default,
    }
}

#[cfg(test)]
mod tests;
