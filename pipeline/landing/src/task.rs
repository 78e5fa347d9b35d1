//! The landing job as a task: every decision `atenex landing` makes between consuming a record
//! and the filesystem — recovery on assignment, the record's placement (timestamp and line),
//! `errors.tolerance` (dead letter or stop), processing-time ticks (rotations and idle commits
//! that are due), revocation, the final flush — over a [`Fs`] it is given. No Kafka and no clock:
//! the live adapter ([`crate::live`]) consumes, reads the clock and routes dead letters; the
//! simulator's model driver hands over recorded records at virtual times and gives an in-memory
//! filesystem that can crash after any effect. Both drive this one type.
//!
//! - [`LandingTask::assign`]: a partition is recovered from the files (complete commit-log blocks
//!   replayed, temp files deleted) and consumption must start at its last committed end + 1 — the
//!   files, not the group offsets, are the truth.
//! - [`LandingTask::record`]: processing time first (what is due by it is committed before the
//!   record is placed), then the record is landed; a record that cannot be placed (no timestamp
//!   for the extractor, a multi-line value that is not JSON, ...) is a dead letter under
//!   `errors.tolerance=all` and stops the job under `none`.
//! - [`LandingTask::revoke`]: the partition's open temp files are discarded (its next owner redoes
//!   them).
//! - A failed filesystem effect stops the task ([`Stop::Fs`]): what is on disk is then whatever
//!   recovery makes sense of, and a new task is assigned the partitions again.

use crate::config::{ErrorTolerance, LandingConfig};
use crate::fs::Fs;
use crate::sink::{Sink, place};
use atenex_contracts::topics::{DLQ_SUFFIX, dlq_topic};
use std::io;

/// One consumed record, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LandingRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record timestamp, epoch ms.
    pub timestamp: Option<i64>,
    /// The value; a null value is landed as the line `null`.
    pub value: Option<&'a [u8]>,
}

/// What became of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Written to its partition's open file.
    Landed,
    /// Not landable: to be sent to `topic` (the dead-letter topic) with `reason`.
    DeadLetter { topic: String, reason: String },
}

/// Why the task stopped.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// A filesystem effect failed: the job must stop; a restart recovers from the files.
    #[error(transparent)]
    Fs(#[from] io::Error),
    /// A record that cannot be landed, under `errors.tolerance=none`.
    #[error(
        "{topic}[{partition}]@{offset}: {reason} (errors.tolerance=all sends such records to the dead-letter topic)"
    )]
    Refused {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
}

/// The landing job over a filesystem. See the module documentation.
pub struct LandingTask<F: Fs> {
    sink: Sink<F>,
    config: LandingConfig,
}

impl<F: Fs> LandingTask<F> {
    /// A live task: rotations and idle commits by processing time.
    pub fn new(fs: F, config: LandingConfig) -> Self {
        Self {
            sink: Sink::new(fs, config.clone(), false),
            config,
        }
    }

    /// Names this instance in its temp files (see [`Sink::owned_by`]).
    pub fn owned_by(mut self, owner: &str) -> Self {
        self.sink = self.sink.owned_by(owner);
        self
    }

    pub fn fs(&self) -> &F {
        &self.sink.fs
    }

    pub fn fs_mut(&mut self) -> &mut F {
        &mut self.sink.fs
    }

    /// The filesystem, for a successor after a crash.
    pub fn into_fs(self) -> F {
        self.sink.fs
    }

    /// `topic`/`partition` was assigned: recovers it from the files; returns the first offset to
    /// consume (`None`: nothing landed yet, start at the group's position).
    pub fn assign(&mut self, topic: &str, partition: i32) -> io::Result<Option<i64>> {
        self.sink.open(topic, partition)
    }

    /// `topic`/`partition` was revoked: its open temp files are discarded.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> io::Result<()> {
        self.sink.revoke(topic, partition)
    }

    /// Processing time moved to `now`: commits what is due (scheduled rotations, idle files).
    pub fn tick(&mut self, now: i64) -> io::Result<()> {
        self.sink.tick(now)
    }

    /// One consumed record at processing time `now`.
    pub fn record(&mut self, r: &LandingRecord<'_>, now: i64) -> Result<Handled, Stop> {
        let value = r.value.unwrap_or(b"null");
        match place(&self.config.timestamp_extractor, r.timestamp, value, now) {
            Ok((ts, line)) => {
                // Rotations due by processing time happen before this record is placed.
                self.sink.tick(now)?;
                self.sink
                    .write(r.topic, r.partition, r.offset, ts, &line, now)?;
                Ok(Handled::Landed)
            }
            Err(reason) => match &self.config.errors {
                ErrorTolerance::All { dlq_topic: named } => Ok(Handled::DeadLetter {
                    topic: dead_letter_topic(named.as_deref(), r.topic),
                    reason,
                }),
                ErrorTolerance::None => Err(Stop::Refused {
                    topic: r.topic.to_owned(),
                    partition: r.partition,
                    offset: r.offset,
                    reason,
                }),
            },
        }
    }

    /// Commits everything open (end of input, shutdown); returns once it is durable.
    pub fn flush_all(&mut self) -> io::Result<()> {
        self.sink.flush_all()
    }

    /// For each assigned partition whose records are all committed: the next offset to consume
    /// (what the group offsets show, for lag).
    pub fn committed_positions(&self) -> Vec<(String, i32, i64)> {
        self.sink.committed_positions()
    }
}

/// The dead-letter topic of a record of `topic`: the configured one
/// (`errors.deadletterqueue.topic.name`, with `.dlq` added when it lacks it), else `<topic>.dlq`.
pub fn dead_letter_topic(configured: Option<&str>, topic: &str) -> String {
    match configured {
        Some(t) if t.ends_with(DLQ_SUFFIX) => t.to_owned(),
        Some(t) => dlq_topic(t),
        None => dlq_topic(topic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    fn config(tolerance: &str) -> LandingConfig {
        let text = format!(
            "name=t\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\n\
             format.class=io.confluent.connect.hdfs3.format.json.JsonFormat\ntopics=a\nhdfs.url=file:///t\ntopics.dir=/land\nlogs.dir=/logs\nflush.size=2\n\
             partitioner.class=io.confluent.connect.storage.partitioner.TimeBasedPartitioner\n\
             partition.duration.ms=3600000\npath.format='hour'=HH\nlocale=en_US\ntimezone=UTC\n\
             timestamp.extractor=Record\n{tolerance}"
        );
        LandingConfig::from_properties(&text, Vec::new()).unwrap()
    }

    fn rec(offset: i64, timestamp: Option<i64>) -> LandingRecord<'static> {
        LandingRecord {
            topic: "a",
            partition: 0,
            offset,
            timestamp,
            value: Some(br#"{"x":1}"#),
        }
    }

    #[test]
    fn records_land_and_commit_at_flush_size() {
        let mut t = LandingTask::new(MemFs::new(), config(""));
        assert_eq!(t.assign("a", 0).unwrap(), None);
        assert_eq!(t.record(&rec(0, Some(1)), 0).unwrap(), Handled::Landed);
        assert_eq!(t.record(&rec(1, Some(2)), 0).unwrap(), Handled::Landed);
        assert_eq!(t.record(&rec(2, Some(3)), 0).unwrap(), Handled::Landed);
        let files = t.fs().list("/land/a").unwrap();
        assert_eq!(
            files,
            vec!["/land/a/hour=00/a+0+0000000000+0000000001.json".to_owned()]
        );
        // A new task over the same files resumes after the committed end.
        let mut again = LandingTask::new(t.into_fs(), config(""));
        assert_eq!(again.assign("a", 0).unwrap(), Some(2));
    }

    #[test]
    fn unlandable_records_stop_or_go_to_the_dead_letter_topic() {
        let mut strict = LandingTask::new(MemFs::new(), config(""));
        strict.assign("a", 0).unwrap();
        let err = strict.record(&rec(7, None), 0).unwrap_err();
        assert!(matches!(err, Stop::Refused { offset: 7, .. }), "{err}");
        assert!(err.to_string().contains("a[0]@7"), "{err}");

        let mut tolerant = LandingTask::new(MemFs::new(), config("errors.tolerance=all\n"));
        tolerant.assign("a", 0).unwrap();
        match tolerant.record(&rec(7, None), 0).unwrap() {
            Handled::DeadLetter { topic, reason } => {
                assert_eq!(topic, "a.dlq");
                assert!(reason.contains("no timestamp"), "{reason}");
            }
            h => panic!("{h:?}"),
        }
        let mut named = LandingTask::new(
            MemFs::new(),
            config("errors.tolerance=all\nerrors.deadletterqueue.topic.name=landing-errors\n"),
        );
        named.assign("a", 0).unwrap();
        assert!(matches!(
            named.record(&rec(7, None), 0).unwrap(),
            Handled::DeadLetter { topic, .. } if topic == "landing-errors.dlq"
        ));
        assert_eq!(dead_letter_topic(Some("x.dlq"), "a"), "x.dlq");
    }

    #[test]
    fn a_failed_effect_stops_the_task() {
        let mut t = LandingTask::new(MemFs::new(), config(""));
        t.assign("a", 0).unwrap();
        t.fs_mut().crash_after(0);
        // The second record reaches flush.size: its commit's first effect fails.
        assert_eq!(t.record(&rec(0, Some(1)), 0).unwrap(), Handled::Landed);
        let err = t.record(&rec(1, Some(2)), 0).unwrap_err();
        assert!(matches!(err, Stop::Fs(_)), "{err}");
    }
}
