//! Drives one [`PartitionWriter`] per Kafka partition over a [`Fs`]: recovery when a partition is
//! opened, then records, ticks and flushes, executing the writers' commands in order. Stops at the
//! first failed effect (a crash, for the in-memory filesystem): the state on disk is then whatever
//! recovery can make sense of.

use crate::config::{LandingConfig, Partitioner, TimestampExtractor};
use crate::fs::{Fs, execute, is_fenced};
use crate::recovery::{is_temp_of, parse_committed, recover};
use crate::writer::{Command, PartitionWriter, WriterSettings, log_path};
use std::collections::BTreeMap;
use std::io;

/// The owner name of a single instance (offline runs, the simulator).
pub const DEFAULT_OWNER: &str = "0";

pub struct Sink<F: Fs> {
    pub fs: F,
    config: LandingConfig,
    offline: bool,
    /// This instance's name in temp file names.
    owner: String,
    writers: BTreeMap<(String, i32), PartitionWriter>,
    commands: Vec<Command>,
}

impl<F: Fs> Sink<F> {
    /// `offline`: no wall-clock commits (idle commits need a clock).
    pub fn new(fs: F, config: LandingConfig, offline: bool) -> Self {
        Self {
            fs,
            config,
            offline,
            owner: DEFAULT_OWNER.to_owned(),
            writers: BTreeMap::new(),
            commands: Vec::new(),
        }
    }

    /// Names this instance in its temp files (letters, digits and `-`): instances writing one
    /// store must have different names, so that a fenced one never writes into its successor's
    /// files.
    pub fn owned_by(mut self, owner: &str) -> Self {
        self.owner = owner.to_owned();
        self
    }

    fn settings(&self, topic: &str, partition: i32) -> WriterSettings {
        let c = &self.config;
        WriterSettings {
            topic: topic.to_owned(),
            partition,
            topics_dir: c.topics_dir.clone(),
            logs_dir: c.logs_dir.clone(),
            flush_size: c.flush_size,
            rotate_interval_ms: c.rotate_interval_ms,
            rotate_schedule_interval_ms: c.rotate_schedule_interval_ms,
            idle_commit_ms: (!self.offline).then_some(c.idle_commit_ms),
            pad: c.offset_pad_width,
            partitioner: c.partitioner.clone(),
            wallclock: c.timestamp_extractor == TimestampExtractor::Wallclock,
            timezone: match &c.partitioner {
                Partitioner::TimeBased { timezone, .. } => *timezone,
                Partitioner::Default => chrono_tz::UTC,
            },
            owner: self.owner.clone(),
        }
    }

    /// Recovers `topic`/`partition` and starts writing it; returns the first offset to consume
    /// (`None`: nothing committed yet, use the consumer group's position). The partition's commit
    /// log is claimed first ([`Fs::claim`]): a previous owner still running is fenced before its
    /// state is read.
    pub fn open(&mut self, topic: &str, partition: i32) -> io::Result<Option<i64>> {
        let c = &self.config;
        let log = log_path(&c.logs_dir, topic, partition);
        let log_text = self
            .fs
            .claim(&log)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let temps: Vec<String> = self
            .fs
            .list(&format!("{}/+tmp/{topic}", c.topics_dir))?
            .into_iter()
            .filter(|p| is_temp_of(p, topic, partition))
            .collect();
        let committed: Vec<String> = self
            .fs
            .list(&format!("{}/{topic}", c.topics_dir))?
            .into_iter()
            .filter(|p| parse_committed(p, topic).is_some_and(|(q, _, _)| q == partition))
            .collect();
        let r = recover(
            topic,
            partition,
            &log,
            log_text.as_deref(),
            &temps,
            &committed,
        );
        for command in &r.commands {
            execute(&mut self.fs, command)?;
        }
        let writer = PartitionWriter::new(self.settings(topic, partition), r.resume);
        self.writers.insert((topic.to_owned(), partition), writer);
        Ok(r.resume)
    }

    fn writer(&mut self, topic: &str, partition: i32) -> io::Result<&mut PartitionWriter> {
        self.writers
            .get_mut(&(topic.to_owned(), partition))
            .ok_or_else(|| io::Error::other(format!("{topic}[{partition}] is not open")))
    }

    fn run(&mut self) -> io::Result<()> {
        let mut commands = std::mem::take(&mut self.commands);
        let mut pending = commands.drain(..);
        while let Some(c) = pending.next() {
            if let Err(e) = self.fs.apply(c) {
                if is_fenced(&e) {
                    self.fenced(pending);
                }
                return Err(e);
            }
        }
        drop(pending);
        self.commands = commands;
        Ok(())
    }

    /// Another instance took this one's partitions over (its session ended while it was frozen)
    /// and fenced it: its own temp files — the open ones and those of the commit that failed —
    /// are deleted, best effort (their names carry this instance's, so they are nobody else's,
    /// and the partitions' new owners redo their records), and it gives everything up. Without
    /// this a zombie's half-written temp file would stay in `+tmp` until the partition's next
    /// recovery.
    fn fenced(&mut self, rest: impl Iterator<Item = Command>) {
        let mut out: Vec<Command> = rest
            .filter_map(|c| match c {
                Command::Rename { from, .. } => Some(Command::Delete { path: from }),
                _ => None,
            })
            .collect();
        for (_, mut w) in std::mem::take(&mut self.writers) {
            w.revoke(&mut out);
            out.push(Command::Release { path: w.log_path() });
        }
        for c in &out {
            if let Err(error) = execute(&mut self.fs, c) {
                tracing::debug!(%error, "clean-up after being fenced");
            }
        }
    }

    /// One record; `timestamp` as the configured extractor gives it.
    pub fn write(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp: i64,
        value: &[u8],
        now: i64,
    ) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.commands);
        self.writer(topic, partition)?
            .write(offset, timestamp, value, now, &mut out);
        self.commands = out;
        self.run()
    }

    pub fn tick(&mut self, now: i64) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.commands);
        for w in self.writers.values_mut() {
            w.tick(now, &mut out);
        }
        self.commands = out;
        self.run()
    }

    /// Commits everything open (end of input, shutdown) and gives up the partitions' commit logs
    /// (nothing is written after it); returns once it has happened.
    pub fn flush_all(&mut self) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.commands);
        for w in self.writers.values_mut() {
            w.flush(&mut out);
            out.push(Command::Release { path: w.log_path() });
        }
        self.commands = out;
        self.run()?;
        self.fs.barrier()
    }

    /// For each open partition whose records are all committed: the next offset to consume.
    pub fn committed_positions(&self) -> Vec<(String, i32, i64)> {
        self.writers
            .iter()
            .filter(|(_, w)| w.pending() == 0)
            .filter_map(|((t, p), w)| w.next_offset().map(|o| (t.clone(), *p, o)))
            .collect()
    }

    pub fn revoke(&mut self, topic: &str, partition: i32) -> io::Result<()> {
        if let Some(mut w) = self.writers.remove(&(topic.to_owned(), partition)) {
            let mut out = Vec::new();
            w.revoke(&mut out);
            out.push(Command::Release { path: w.log_path() });
            for c in &out {
                execute(&mut self.fs, c)?;
            }
        }
        Ok(())
    }
}

/// A record value as one line: as it is, unless it spans lines (then re-serialized compactly).
fn one_line(value: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    if memchr::memchr2(b'\n', b'\r', value).is_none() {
        return Ok(std::borrow::Cow::Borrowed(value));
    }
    let v: serde_json::Value = serde_json::from_slice(value)
        .map_err(|e| format!("value spans lines and is not JSON: {e}"))?;
    Ok(std::borrow::Cow::Owned(
        serde_json::to_vec(&v).expect("a Value serializes"),
    ))
}

/// A record ready to land: its timestamp (from the extractor) and its value as one line; or why
/// it cannot be landed.
pub fn place<'v>(
    extractor: &TimestampExtractor,
    record_ts: Option<i64>,
    value: &'v [u8],
    now: i64,
) -> Result<(i64, std::borrow::Cow<'v, [u8]>), String> {
    let ts = extract_timestamp(extractor, record_ts, value, now)?;
    Ok((ts, one_line(value)?))
}

/// The first millisecond of year 1 and the last of year 9999 (UTC): the time buckets a path format
/// can name with a four-digit year.
pub const TIMESTAMP_RANGE: std::ops::RangeInclusive<i64> =
    -62_135_596_800_000..=253_402_300_799_999;

/// The timestamp the configured extractor gives for a record: the record's own (`Record`), the
/// wall clock (`Wallclock`), or a field of the value (`RecordField`: epoch ms, or RFC 3339 text;
/// dotted paths for nested objects). One outside [`TIMESTAMP_RANGE`] is refused: no time bucket
/// holds it.
pub fn extract_timestamp(
    extractor: &TimestampExtractor,
    record_ts: Option<i64>,
    value: &[u8],
    now: i64,
) -> Result<i64, String> {
    let ts = extractor_timestamp(extractor, record_ts, value, now)?;
    if !TIMESTAMP_RANGE.contains(&ts) {
        return Err(format!(
            "timestamp {ts} is outside years 1 to 9999 (UTC): no time bucket holds it"
        ));
    }
    Ok(ts)
}

fn extractor_timestamp(
    extractor: &TimestampExtractor,
    record_ts: Option<i64>,
    value: &[u8],
    now: i64,
) -> Result<i64, String> {
    match extractor {
        TimestampExtractor::Wallclock => Ok(now),
        TimestampExtractor::Record => record_ts
            .ok_or_else(|| "the record has no timestamp (timestamp.extractor=Record)".to_owned()),
        TimestampExtractor::RecordField(field) => {
            let v: serde_json::Value =
                serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
            let mut cur = &v;
            for part in field.split('.') {
                cur = cur
                    .get(part)
                    .ok_or_else(|| format!("timestamp.field `{field}` not found in the value"))?;
            }
            match cur {
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .ok_or_else(|| format!("timestamp.field `{field}` is not whole milliseconds")),
                serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.timestamp_millis())
                    .map_err(|e| format!("timestamp.field `{field}` = {s:?} is not ISO-8601: {e}")),
                _ => Err(format!(
                    "timestamp.field `{field}` is neither a number nor a string"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_by_extractor() {
        let v = br#"{"meta":{"at":"2026-11-27T23:00:00.5+01:00"},"ms":1764201600123,"bad":"x","f":1.5}"#;
        assert_eq!(
            extract_timestamp(&TimestampExtractor::Wallclock, Some(1), v, 42),
            Ok(42)
        );
        assert_eq!(
            extract_timestamp(&TimestampExtractor::Record, Some(7), v, 42),
            Ok(7)
        );
        assert!(
            extract_timestamp(&TimestampExtractor::Record, None, v, 42)
                .unwrap_err()
                .contains("no timestamp")
        );
        let field =
            |f: &str| extract_timestamp(&TimestampExtractor::RecordField(f.into()), None, v, 0);
        assert_eq!(field("ms"), Ok(1_764_201_600_123));
        assert_eq!(field("meta.at"), Ok(1_795_816_800_500));
        assert!(field("bad").unwrap_err().contains("not ISO-8601"));
        assert!(field("f").unwrap_err().contains("whole milliseconds"));
        assert!(field("meta.nope").unwrap_err().contains("not found"));
        assert!(
            extract_timestamp(&TimestampExtractor::RecordField("ms".into()), None, b"{", 0)
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn a_timestamp_no_time_bucket_holds_is_refused_and_the_range_ends_are_not() {
        let record = |ts| extract_timestamp(&TimestampExtractor::Record, Some(ts), b"{}", 0);
        for ts in [i64::MIN, -62_135_596_800_001, 253_402_300_800_000, i64::MAX] {
            assert!(
                record(ts).unwrap_err().contains("outside years 1 to 9999"),
                "{ts}"
            );
        }
        assert_eq!(record(-62_135_596_800_000), Ok(-62_135_596_800_000));
        assert_eq!(record(253_402_300_799_999), Ok(253_402_300_799_999));
        let field =
            |v: &[u8]| extract_timestamp(&TimestampExtractor::RecordField("at".into()), None, v, 0);
        assert!(field(br#"{"at":-9223372036854775808}"#).is_err());
        // The ends, as the partitioner names their buckets.
        let pattern = "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH".to_owned();
        let hourly = crate::config::Partitioner::TimeBased {
            duration_ms: 3_600_000,
            path_format: crate::path_format::PathFormat::parse(&pattern).unwrap(),
            pattern,
            timezone: chrono_tz::UTC,
            locale: "en_US".into(),
        };
        assert_eq!(
            crate::partitioner::encode(&hourly, 0, -62_135_596_800_000),
            "year=0001/month=01/day=01/hour=00"
        );
        assert_eq!(
            crate::partitioner::encode(&hourly, 0, 253_402_300_799_999),
            "year=9999/month=12/day=31/hour=23"
        );
    }
}
