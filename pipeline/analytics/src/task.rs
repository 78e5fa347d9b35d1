//! The analytics job as a sans-IO task: every decision `atenex analytics` makes between consuming
//! records and committing a transaction, with no Kafka, no clock and no I/O. The live adapter
//! ([`crate::live`]) and the simulator's model driver both drive this type; only what they do
//! with its answers differs (Kafka transactions, or an in-memory log).
//!
//! The job's life, as the task sees it:
//!
//! - **Assignment** ([`AnalyticsTask::assign`]): the partitions the group gave this instance, with
//!   the committed offsets and their metadata exactly as Kafka returns them. The window core is
//!   restored from that metadata ([`OffsetMetadata`], parsed and written only here): the operator
//!   watermark, each partition's maximum event time and its real position (`handled`). Consumption
//!   resumes at the committed offset, which is the oldest offset an open window still needs; the
//!   records between it and `handled` rebuild the open windows and emit nothing again.
//! - **Revocation** ([`AnalyticsTask::revoke`]): the state and the open transaction are dropped;
//!   the partitions' next owner redoes the uncommitted work from the committed offsets.
//! - **Records and processing time** ([`AnalyticsTask::record`], [`AnalyticsTask::tick`]): before
//!   each record, processing time moves (partitions may have gone idle, so a record's lateness is
//!   judged against the watermark as it is when it arrives); then the record is decoded (a
//!   malformed one is a dead letter with the reason, unless it was handled before a restart: its
//!   dead letter was committed then) and handled by the window core.
//! - **Commit** ([`AnalyticsTask::commit`]): closes the open transaction and says what it holds:
//!   window results, late records, dead letters, and the checkpoint as offsets with metadata for
//!   the assigned partitions. With `drain`, every open window fires first (end of input).
//!
//! A crash is the task dropped: the open transaction is lost with it, and a new task is assigned
//! the committed offsets.

use crate::core::{Checkpoint, Event, Output, PartitionCheckpoint, Settings, WindowCore};
use crate::decode::decode_record;
use anyhow::Context as _;
use atenex_contracts::ChunkKeys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Offset metadata saved with each input partition's committed offset (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetMetadata {
    /// Format version.
    pub v: u32,
    /// Operator watermark, epoch ms.
    pub wm: Option<i64>,
    pub max_ts: Option<i64>,
    /// The partition's position: records below it were handled (outputs committed).
    pub handled: i64,
}

/// A partition's committed offset as Kafka returns it: `offset` is `None` when nothing was
/// committed, `metadata` empty when none was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub partition: i32,
    pub offset: Option<i64>,
    pub metadata: String,
}

/// An offset to commit with a transaction, with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetToCommit {
    pub partition: i32,
    pub offset: i64,
    pub metadata: String,
}

impl From<OffsetToCommit> for CommittedOffset {
    fn from(o: OffsetToCommit) -> Self {
        Self {
            partition: o.partition,
            offset: Some(o.offset),
            metadata: o.metadata,
        }
    }
}

/// One consumed `embeddings.ready` record, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    /// The record timestamp (event time), epoch ms.
    pub timestamp: Option<i64>,
    pub value: Option<&'a [u8]>,
}

/// A record the job refuses: it goes to the dead-letter topic with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its place among the records given to the transaction (0 = the first).
    pub index: usize,
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
}

/// What one transaction carries: all of it is committed together, or none of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// Window results (`analytics.flink`) and late records (`analytics.late`), in order.
    pub outputs: Vec<Output>,
    /// Records for the dead-letter topic.
    pub dead_letters: Vec<Refused>,
    /// The checkpoint: per assigned partition, the offset to resume from and its metadata.
    pub offsets: Vec<OffsetToCommit>,
    /// Records given to the transaction.
    pub records: usize,
}

/// The analytics job, sans-IO. See the module documentation.
#[derive(Debug, Clone)]
pub struct AnalyticsTask {
    settings: Settings,
    /// Most records per transaction (`--max-batch`).
    max_batch: usize,
    core: WindowCore,
    assigned: BTreeSet<i32>,
    open: Transaction,
}

impl AnalyticsTask {
    /// A task whose transactions hold at most `max_batch` records (at least one).
    pub fn new(settings: Settings, max_batch: usize) -> Self {
        Self {
            settings,
            max_batch: max_batch.max(1),
            core: WindowCore::new(settings),
            assigned: BTreeSet::new(),
            open: Transaction::default(),
        }
    }

    /// The partitions assigned to this instance.
    pub fn assigned(&self) -> &BTreeSet<i32> {
        &self.assigned
    }

    /// The operator watermark.
    pub fn watermark(&self) -> Option<i64> {
        self.core.watermark()
    }

    /// The group assigned `committed`'s partitions (with their committed offsets and metadata, as
    /// Kafka returns them) at processing time `now`: the state is restored from them; anything
    /// open before is dropped. Fails when a partition's metadata is not this job's.
    pub fn assign(&mut self, committed: &[CommittedOffset], now: i64) -> anyhow::Result<()> {
        let checkpoint = checkpoint_from(committed)?;
        self.core = WindowCore::new(self.settings);
        self.core.restore(&checkpoint, now);
        self.assigned.clear();
        self.open = Transaction::default();
        for c in committed {
            self.core.assign(c.partition, now);
            self.assigned.insert(c.partition);
        }
        Ok(())
    }

    /// Every partition was revoked (eager rebalancing): what is open is dropped, to be redone by
    /// the partitions' next owner from the committed offsets.
    pub fn revoke(&mut self) {
        self.core = WindowCore::new(self.settings);
        self.assigned.clear();
        self.open = Transaction::default();
    }

    /// Processing time moved to `now`: partitions may have gone idle and windows fired.
    pub fn tick(&mut self, now: i64) {
        self.core.on_tick(now, &mut self.open.outputs);
    }

    /// One consumed record at processing time `now`, into the open transaction.
    pub fn record(&mut self, r: &InputRecord<'_>, now: i64) {
        let decoded = decode_record(r.value, r.timestamp);
        self.decoded(r.partition, r.offset, &decoded, now);
    }

    /// [`record`](Self::record) for a record already decoded with
    /// [`decode_record`](crate::decode::decode_record) — its ids and event time, or the reason it
    /// is refused — so that a driver handing the same records to several tasks decodes them once.
    pub fn decoded(
        &mut self,
        partition: i32,
        offset: i64,
        decoded: &Result<(ChunkKeys<'_>, i64), String>,
        now: i64,
    ) {
        // Processing time first: the record's lateness is judged against the watermark as it is
        // when it arrives (partitions may have gone idle since the last record).
        self.tick(now);
        let index = self.open.records;
        self.open.records += 1;
        match decoded {
            Ok((keys, ts)) => {
                let ev = Event {
                    partition,
                    offset,
                    ts: *ts,
                    chunk_id: &keys.chunk_id,
                    document_id: &keys.document_id,
                    company_id: &keys.company_id,
                };
                self.core.handle(&ev, now, &mut self.open.outputs);
            }
            Err(reason) => {
                // A record handled before a restart had its dead letter committed then.
                let again = self.core.replays(partition, offset);
                self.core.skip(partition, offset, now);
                if !again {
                    self.open.dead_letters.push(Refused {
                        index,
                        partition,
                        offset,
                        reason: reason.clone(),
                    });
                }
            }
        }
    }

    /// Records in the open transaction (lost with it if the process dies now).
    pub fn open_records(&self) -> usize {
        self.open.records
    }

    /// Whether the open transaction holds `max_batch` records: it must be committed before the
    /// next record.
    pub fn is_full(&self) -> bool {
        self.open.records >= self.max_batch
    }

    /// Whether the open transaction holds anything to commit (records or outputs).
    pub fn has_open_work(&self) -> bool {
        self.open.records > 0 || !self.open.outputs.is_empty()
    }

    /// Whether the input is drained: partitions are assigned and every one is in `at_end` (the
    /// partitions whose end the consumer reached since their last record).
    pub fn drained(&self, at_end: &BTreeSet<i32>) -> bool {
        !self.assigned.is_empty() && self.assigned.is_subset(at_end)
    }

    /// The end of a batch at processing time `now`: `received` says whether the batch brought
    /// records (if not, processing time alone may fire windows: idleness), `drained` whether the
    /// input is drained (see [`drained`](Self::drained)). The transaction to carry out, when there
    /// is anything to commit (records, outputs, or the drain's last windows).
    pub fn end_batch(&mut self, received: bool, drained: bool, now: i64) -> Option<Transaction> {
        if !received {
            self.tick(now);
        }
        (self.has_open_work() || drained).then(|| self.commit(drained))
    }

    /// Closes the open transaction: with `drain`, every open window fires first (end of input);
    /// the checkpoint of the assigned partitions goes with it as offsets and metadata.
    pub fn commit(&mut self, drain: bool) -> Transaction {
        if drain {
            self.core.finish(&mut self.open.outputs);
        }
        let mut tx = std::mem::take(&mut self.open);
        tx.offsets = self.offsets();
        tx
    }

    /// The checkpoint as offsets with metadata, for the partitions assigned.
    fn offsets(&self) -> Vec<OffsetToCommit> {
        let cp = self.core.checkpoint();
        cp.partitions
            .iter()
            .filter(|p| self.assigned.contains(&p.partition))
            .map(|p| OffsetToCommit {
                partition: p.partition,
                offset: p.resume_offset,
                metadata: serde_json::to_string(&OffsetMetadata {
                    v: 1,
                    wm: cp.watermark,
                    max_ts: p.max_ts,
                    handled: p.handled_offset,
                })
                .expect("offset metadata serializes"),
            })
            .collect()
    }
}

/// The core's checkpoint restored from committed offsets and metadata; partitions without
/// metadata start fresh.
pub fn checkpoint_from(committed: &[CommittedOffset]) -> anyhow::Result<Checkpoint> {
    let mut watermark: Option<i64> = None;
    let mut partitions = Vec::new();
    for c in committed {
        if c.metadata.is_empty() {
            continue;
        }
        let m: OffsetMetadata = serde_json::from_str(&c.metadata).with_context(|| {
            format!(
                "partition {}: committed offset metadata {:?} is not ours; reset the group's offsets or use another --group",
                c.partition, c.metadata
            )
        })?;
        watermark = watermark.max(m.wm);
        partitions.push(PartitionCheckpoint {
            partition: c.partition,
            resume_offset: c.offset.unwrap_or(m.handled),
            handled_offset: m.handled,
            max_ts: m.max_ts,
        });
    }
    Ok(Checkpoint {
        watermark,
        partitions,
    })
}

#[cfg(test)]
mod tests;
