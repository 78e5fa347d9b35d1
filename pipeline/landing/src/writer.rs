//! One Kafka partition's writer: Connect's `TopicPartitionWriter` as a pure state machine. It takes
//! records, ticks and flushes with the current time as arguments and returns filesystem commands
//! for an adapter to execute in order.
//!
//! - Each record goes to the open file of its encoded partition (time bucket or `partition=N`).
//! - `flush.size` counts the partition's records across all its open files; reaching it commits
//!   them all together.
//! - `rotate.interval.ms`: before a record is written, if its rotation time (record time, or the
//!   wall clock under `Wallclock`) is at least the interval past the first record since the last
//!   commit, the open files are committed first — the triggering record goes to the next file.
//! - `rotate.schedule.interval.ms`: commits at wall-clock boundaries aligned to midnight in the
//!   time zone (checked on records and ticks).
//! - Ours: an idle commit after `atenex.idle.commit.ms` without records (ticks only).
//! - A commit: write each file's buffered data to its temp file and sync it, append one block to the
//!   commit log and sync it, rename every temp file to its final name, empty the log. The log is
//!   claimed by the partition's owner ([`crate::fs::Fs::claim`]): a fenced owner's append to it
//!   fails, so it never renames. Temp file names carry the owner's name, so that a fenced owner
//!   never writes into its successor's files. See [`crate::log`] and [`crate::recovery`].

use crate::config::Partitioner;
use crate::log::{CommitEntry, block};
use crate::partitioner::encode;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// What the adapter does, in order. Paths are relative to the store root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Append to a file, creating it if needed (with its parent directories).
    Append {
        path: String,
        data: Vec<u8>,
    },
    /// Make a file's content durable.
    Sync {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Delete {
        path: String,
    },
    /// Empty a file this handle claimed ([`crate::fs::Fs::claim`]), keeping the claim.
    Truncate {
        path: String,
    },
    /// Give up a claim: the file is deleted if the claim still holds.
    Release {
        path: String,
    },
}

/// Buffered data goes to the temp file once a file holds this much (and at commit).
const APPEND_CHUNK: usize = 96 << 10;

#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub topic: String,
    pub partition: i32,
    pub topics_dir: String,
    pub logs_dir: String,
    pub flush_size: u64,
    pub rotate_interval_ms: Option<i64>,
    pub rotate_schedule_interval_ms: Option<i64>,
    /// `None` offline: no wall-clock commits.
    pub idle_commit_ms: Option<i64>,
    pub pad: usize,
    pub partitioner: Partitioner,
    /// Rotation uses the wall clock (timestamp.extractor=Wallclock).
    pub wallclock: bool,
    /// Time zone of scheduled rotation.
    pub timezone: Tz,
    /// This instance's name in temp file names (letters, digits and `-`).
    pub owner: String,
}

#[derive(Debug, Clone)]
struct OpenFile {
    temp: String,
    start: i64,
    end: i64,
    buffer: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct PartitionWriter {
    s: WriterSettings,
    files: BTreeMap<String, OpenFile>,
    records: u64,
    /// Rotation time of the first record since the last commit.
    base_time: Option<i64>,
    next_scheduled: Option<i64>,
    last_write_now: i64,
    /// Offsets below this are already written (or committed): skipped.
    next_offset: Option<i64>,
}

impl PartitionWriter {
    /// `resume`: the first offset not committed yet (from recovery), if known.
    pub fn new(s: WriterSettings, resume: Option<i64>) -> Self {
        Self {
            s,
            files: BTreeMap::new(),
            records: 0,
            base_time: None,
            next_scheduled: None,
            last_write_now: 0,
            next_offset: resume,
        }
    }

    pub fn settings(&self) -> &WriterSettings {
        &self.s
    }

    /// The first offset this writer has not taken.
    pub fn next_offset(&self) -> Option<i64> {
        self.next_offset
    }

    /// Records in open (uncommitted) files.
    pub fn pending(&self) -> u64 {
        self.records
    }

    /// One record. `timestamp` is what the extractor gives (it places the record in its time
    /// bucket and drives record-time rotation); `now` is the wall clock.
    pub fn write(
        &mut self,
        offset: i64,
        timestamp: i64,
        value: &[u8],
        now: i64,
        out: &mut Vec<Command>,
    ) {
        if self.next_offset.is_some_and(|n| offset < n) {
            return; // redelivered: already taken
        }
        let rotation_time = if self.s.wallclock { now } else { timestamp };
        if !self.files.is_empty() {
            let by_interval = matches!((self.s.rotate_interval_ms, self.base_time), (Some(i), Some(b)) if rotation_time - b >= i);
            let by_schedule = self.next_scheduled.is_some_and(|t| now >= t);
            if by_interval || by_schedule {
                self.commit(out);
            }
        }
        if self.files.is_empty() {
            self.base_time = Some(rotation_time);
            self.next_scheduled = self
                .s
                .rotate_schedule_interval_ms
                .map(|i| next_boundary(now, i, self.s.timezone));
        }
        let dir = encode(&self.s.partitioner, self.s.partition, timestamp);
        let (topics_dir, topic, partition, pad, owner) = (
            &self.s.topics_dir,
            &self.s.topic,
            self.s.partition,
            self.s.pad,
            &self.s.owner,
        );
        let file = self.files.entry(dir).or_insert_with_key(|dir| OpenFile {
            temp: format!(
                "{topics_dir}/+tmp/{topic}/{dir}/{topic}+{partition}+{offset:0pad$}+{owner}_tmp.json"
            ),
            start: offset,
            end: offset,
            buffer: Vec::new(),
        });
        file.end = offset;
        file.buffer.extend_from_slice(value);
        file.buffer.push(b'\n');
        if file.buffer.len() >= APPEND_CHUNK {
            out.push(Command::Append {
                path: file.temp.clone(),
                data: std::mem::take(&mut file.buffer),
            });
        }
        self.records += 1;
        self.next_offset = Some(offset + 1);
        self.last_write_now = now;
        if self.records >= self.s.flush_size {
            self.commit(out);
        }
    }

    /// Wall-clock time passed: rotation under Wallclock, scheduled rotation, idle commit.
    pub fn tick(&mut self, now: i64, out: &mut Vec<Command>) {
        if self.files.is_empty() {
            return;
        }
        let by_interval = self.s.wallclock
            && matches!((self.s.rotate_interval_ms, self.base_time), (Some(i), Some(b)) if now - b >= i);
        let by_schedule = self.next_scheduled.is_some_and(|t| now >= t);
        let idle = self
            .s
            .idle_commit_ms
            .is_some_and(|i| now - self.last_write_now >= i);
        if by_interval || by_schedule || idle {
            self.commit(out);
        }
    }

    /// Commits every open file (end of input, shutdown).
    pub fn flush(&mut self, out: &mut Vec<Command>) {
        if !self.files.is_empty() {
            self.commit(out);
        }
    }

    /// The partition was revoked: its open files are discarded (their records come again to the
    /// next owner, from the committed offset).
    pub fn revoke(&mut self, out: &mut Vec<Command>) {
        for (_, f) in std::mem::take(&mut self.files) {
            out.push(Command::Delete { path: f.temp });
        }
        self.records = 0;
    }

    pub fn log_path(&self) -> String {
        log_path(&self.s.logs_dir, &self.s.topic, self.s.partition)
    }

    fn commit(&mut self, out: &mut Vec<Command>) {
        let (topics_dir, topic, partition, pad) = (
            &self.s.topics_dir,
            &self.s.topic,
            self.s.partition,
            self.s.pad,
        );
        let mut entries = Vec::with_capacity(self.files.len());
        for (dir, f) in std::mem::take(&mut self.files) {
            if !f.buffer.is_empty() {
                out.push(Command::Append {
                    path: f.temp.clone(),
                    data: f.buffer,
                });
            }
            out.push(Command::Sync {
                path: f.temp.clone(),
            });
            entries.push(CommitEntry {
                final_path: format!(
                    "{topics_dir}/{topic}/{dir}/{topic}+{partition}+{:0pad$}+{:0pad$}.json",
                    f.start, f.end
                ),
                temp: f.temp,
            });
        }
        let log = self.log_path();
        out.push(Command::Append {
            path: log.clone(),
            data: block(&entries).into_bytes(),
        });
        out.push(Command::Sync { path: log.clone() });
        for e in entries {
            out.push(Command::Rename {
                from: e.temp,
                to: e.final_path,
            });
        }
        out.push(Command::Truncate { path: log });
        self.records = 0;
        self.base_time = None;
        self.next_scheduled = None;
    }
}

pub fn log_path(logs_dir: &str, topic: &str, partition: i32) -> String {
    format!("{logs_dir}/{topic}/{partition}/log")
}

/// The first boundary after `now` of a schedule of `interval_ms` aligned to midnight in `tz`.
pub fn next_boundary(now: i64, interval_ms: i64, tz: Tz) -> i64 {
    let t: DateTime<Tz> = Utc
        .timestamp_millis_opt(now)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        .with_timezone(&tz);
    let midnight = t
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| tz.from_local_datetime(&m).earliest())
        .map_or(now, |m| m.timestamp_millis());
    let since = now - midnight;
    midnight + (since / interval_ms + 1) * interval_ms
}

#[cfg(test)]
mod tests;
