//! `atenex analytics` against Kafka: consumes `embeddings.ready`, produces window results to
//! `analytics.flink` (key `company_id`) and late records to `analytics.late`, exactly once.
//!
//! Exactly once, with Kafka transactions (KIP-98/447). Each batch is one transaction holding
//! the batch's outputs (window results, late records, dead letters) and the consumer offsets,
//! committed together or not at all. The window state is not in Kafka, so what is committed as
//! the input offset of a partition is not its position but the oldest offset still needed by an
//! open window (the core's `resume_offset`); the offset metadata carries, as JSON, the operator
//! watermark, the partition's maximum event time and its real position (`handled`). After a crash
//! or a rebalance, the consumer resumes at the committed offsets, the core is restored from the
//! metadata, and the records between `resume` and `handled` are handled again only to rebuild the
//! open windows: windows that fired before (end − 1 ≤ restored watermark) are not emitted again,
//! and late records and dead letters of those offsets are not written again. Transactions of a
//! crashed instance are aborted when the next one with the same `transactional.id` starts.
//!
//! Outputs are visible to `read_committed` consumers (librdkafka's and kcat's default).

use crate::core::{Checkpoint, Event, Output, PartitionCheckpoint, Settings, WindowCore};
use crate::decode::decode_record;
use crate::output::{late_value, window_value};
use anyhow::Context as _;
use atenex_kafka::dead_letter::DeadLetter;
use atenex_kafka::observe::Health;
use atenex_kafka::producer::Pipeline;
use atenex_kafka::{Clock, KafkaConfig, OutRecord, Producer, Progress, Record};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub settings: Settings,
    pub input_topic: String,
    pub output_topic: String,
    pub late_topic: String,
    pub group: String,
    pub transactional_id: String,
    /// Most records per transaction.
    pub max_batch: usize,
    /// How long to fill a batch after its first record.
    pub max_wait: Duration,
    /// Stop at the end of the input (as it was when each partition was reached), firing every
    /// open window.
    pub drain: bool,
    /// Processing time (idleness, future skew): the system clock but in the simulator.
    pub clock: Clock,
    /// Where handled positions are published once committed (the simulator waits on them).
    pub progress: Option<Progress>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveSummary {
    pub records: u64,
    pub windows: u64,
    pub late: u64,
    pub dead_letters: u64,
    pub transactions: u64,
}

/// Offset metadata saved with each input partition's committed offset.
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

const STAGE: &str = "analytics";

/// What the rebalance callback saw, for the job loop to apply before the next record.
enum RebalanceEvent {
    Revoked,
    Assigned(Vec<(i32, Option<i64>, String)>),
}

struct JobContext {
    events: Mutex<Vec<RebalanceEvent>>,
}

impl ClientContext for JobContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // End of partition is how --drain knows it is done, not an error.
        if matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::debug!(reason, "end of partition");
        } else {
            tracing::error!(error = %error, reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for JobContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Revoke(_) => RebalanceEvent::Revoked,
            Rebalance::Assign(tpl) => {
                // Read the committed offsets and their metadata now, before any record of the
                // new assignment is handed out.
                let committed = consumer
                    .committed_offsets((*tpl).clone(), Duration::from_secs(30))
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "cannot read committed offsets; starting from the reset position");
                        (*tpl).clone()
                    });
                RebalanceEvent::Assigned(
                    committed
                        .elements()
                        .iter()
                        .map(|e| (e.partition(), e.offset().to_raw(), e.metadata().to_owned()))
                        .collect(),
                )
            }
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "rebalance error");
                return;
            }
        };
        self.events.lock().expect("not poisoned").push(event);
    }
}

/// The core's checkpoint restored from committed offsets and metadata; partitions without
/// metadata start fresh.
pub fn checkpoint_from(committed: &[(i32, Option<i64>, String)]) -> anyhow::Result<Checkpoint> {
    let mut watermark: Option<i64> = None;
    let mut partitions = Vec::new();
    for (partition, offset, metadata) in committed {
        if metadata.is_empty() {
            continue;
        }
        let m: OffsetMetadata = serde_json::from_str(metadata).with_context(|| {
            format!("partition {partition}: committed offset metadata {metadata:?} is not ours; reset the group's offsets or use another --group")
        })?;
        watermark = watermark.max(m.wm);
        partitions.push(PartitionCheckpoint {
            partition: *partition,
            resume_offset: offset.unwrap_or(m.handled),
            handled_offset: m.handled,
            max_ts: m.max_ts,
        });
    }
    Ok(Checkpoint {
        watermark,
        partitions,
    })
}

struct Job<'a> {
    opts: &'a LiveOptions,
    consumer: StreamConsumer<JobContext>,
    producer: Producer,
    core: WindowCore,
    assigned: BTreeSet<i32>,
    at_end: BTreeSet<i32>,
    summary: LiveSummary,
}

pub async fn run(
    config: &KafkaConfig,
    opts: &LiveOptions,
    shutdown: CancellationToken,
    health: Health,
) -> anyhow::Result<LiveSummary> {
    let consumer_config = config
        .clone()
        .with("group.id", &opts.group)
        .with("enable.auto.commit", "false")
        .with("enable.auto.offset.store", "false")
        .with("isolation.level", "read_committed")
        .with("enable.partition.eof", "true")
        .with_default("auto.offset.reset", "earliest");
    let consumer: StreamConsumer<JobContext> = consumer_config
        .client_config()
        .create_with_context(JobContext {
            events: Mutex::new(Vec::new()),
        })
        .map_err(|e| consumer_config.explain(e))?;
    consumer
        .subscribe(&[opts.input_topic.as_str()])
        .with_context(|| format!("cannot subscribe to {}", opts.input_topic))?;
    let producer = Producer::transactional(config, &opts.transactional_id)?;
    tracing::info!(group = %opts.group, transactional_id = %opts.transactional_id, input = %opts.input_topic, "analytics job started");
    let mut job = Job {
        opts,
        consumer,
        producer,
        core: WindowCore::new(opts.settings),
        assigned: BTreeSet::new(),
        at_end: BTreeSet::new(),
        summary: LiveSummary::default(),
    };
    let result = job.run(&shutdown, &health).await;
    job.consumer.unsubscribe();
    result.map(|()| job.summary)
}

impl Job<'_> {
    async fn run(&mut self, shutdown: &CancellationToken, health: &Health) -> anyhow::Result<()> {
        loop {
            let batch = self.collect(shutdown, health).await?;
            let drained = self.opts.drain
                && !self.assigned.is_empty()
                && self.assigned.is_subset(&self.at_end);
            let mut out = Vec::new();
            if batch.is_empty() {
                self.core.on_tick(self.opts.clock.now_ms(), &mut out);
            }
            if !batch.is_empty() || !out.is_empty() || drained {
                self.transaction(&batch, out, drained).await?;
            }
            if drained {
                tracing::info!("drained: every partition reached its end; every open window fired");
                return Ok(());
            }
            if shutdown.is_cancelled() {
                tracing::info!("stopped: what was handled is committed");
                return Ok(());
            }
        }
    }

    /// Applies rebalance events seen by the callback.
    fn apply_rebalance(&mut self, batch: &mut Vec<Record>) -> anyhow::Result<()> {
        let events: Vec<RebalanceEvent> =
            std::mem::take(&mut *self.consumer.context().events.lock().expect("not poisoned"));
        for event in events {
            match event {
                RebalanceEvent::Revoked => {
                    // Uncommitted work on revoked partitions is redone by their next owner.
                    batch.clear();
                    self.core = WindowCore::new(self.opts.settings);
                    self.assigned.clear();
                    self.at_end.clear();
                }
                RebalanceEvent::Assigned(committed) => {
                    let checkpoint = checkpoint_from(&committed)?;
                    let now = self.opts.clock.now_ms();
                    self.core = WindowCore::new(self.opts.settings);
                    self.core.restore(&checkpoint, now);
                    for (p, offset, _) in &committed {
                        self.core.assign(*p, now);
                        self.assigned.insert(*p);
                        // What is below the committed offset was handled by an earlier instance.
                        if let (Some(progress), Some(o)) = (&self.opts.progress, offset) {
                            progress.handled(&self.opts.input_topic, *p, *o);
                        }
                    }
                    tracing::info!(partitions = ?self.assigned, watermark = ?checkpoint.watermark, "assigned; state restored from the committed offsets");
                }
            }
        }
        Ok(())
    }

    /// A batch: waits for a first record (or a 1 s tick, or shutdown), then fills for `max_wait`.
    async fn collect(
        &mut self,
        shutdown: &CancellationToken,
        health: &Health,
    ) -> anyhow::Result<Vec<Record>> {
        let mut batch = Vec::new();
        let tick = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(tick);
        let mut deadline: Option<tokio::time::Instant> = None;
        while batch.len() < self.opts.max_batch {
            let fill = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut tick, if deadline.is_none() => break,
                _ = fill => break,
                r = self.consumer.recv() => r,
            };
            let received = received.map(|m| Record::from_message(&m));
            self.apply_rebalance(&mut batch)?;
            if !self.assigned.is_empty() {
                health.set_ready(true);
            }
            match received {
                Ok(r) => {
                    self.at_end.remove(&r.partition);
                    batch.push(r);
                    deadline
                        .get_or_insert_with(|| tokio::time::Instant::now() + self.opts.max_wait);
                }
                Err(KafkaError::PartitionEOF(p)) => {
                    self.at_end.insert(p);
                    if self.opts.drain && self.assigned.is_subset(&self.at_end) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Ok(batch)
    }

    /// One transaction: the batch's outputs and dead letters, and the checkpoint as offsets.
    async fn transaction(
        &mut self,
        batch: &[Record],
        mut out: Vec<Output>,
        drain: bool,
    ) -> anyhow::Result<()> {
        self.producer.begin()?;
        let result = self.fill_transaction(batch, &mut out, drain).await;
        match result {
            Ok(letters) => {
                self.producer.commit()?;
                // Counted and logged once committed: an aborted transaction wrote nothing.
                self.summary.transactions += 1;
                for o in &out {
                    match o {
                        Output::Window(_) => {
                            self.summary.windows += 1;
                            metrics::counter!("atenex_analytics_windows_total").increment(1);
                        }
                        Output::Late(l) => {
                            self.summary.late += 1;
                            metrics::counter!("atenex_analytics_late_total", "reason" => l.reason.as_str())
                                .increment(1);
                        }
                    }
                }
                self.summary.dead_letters += letters.len() as u64;
                for (i, letter) in &letters {
                    letter.log(&batch[*i]);
                }
                if let Some(progress) = &self.opts.progress {
                    for r in batch {
                        progress.handled(&r.topic, r.partition, r.offset + 1);
                    }
                }
                if let Some(w) = self.core.watermark() {
                    metrics::gauge!("atenex_analytics_watermark_ms").set(w as f64);
                }
                Ok(())
            }
            Err(e) => {
                if let Err(abort) = self.producer.abort() {
                    tracing::error!(error = %abort, "cannot abort the transaction");
                }
                Err(e)
            }
        }
    }

    async fn fill_transaction(
        &mut self,
        batch: &[Record],
        out: &mut Vec<Output>,
        drain: bool,
    ) -> anyhow::Result<Vec<(usize, DeadLetter)>> {
        let mut pipeline = Pipeline::new(&self.producer, 10_000);
        let now = self.opts.clock.now_ms();
        // Processing time moved on since the last batch: partitions may have gone idle before
        // these records arrived (their lateness is judged against that watermark).
        self.core.on_tick(now, out);
        let mut letters: Vec<(usize, DeadLetter)> = Vec::new();
        for (i, r) in batch.iter().enumerate() {
            match decode_record(r.payload.as_deref(), r.timestamp) {
                Ok((keys, ts)) => {
                    let ev = Event {
                        partition: r.partition,
                        offset: r.offset,
                        ts,
                        chunk_id: &keys.chunk_id,
                        document_id: &keys.document_id,
                        company_id: &keys.company_id,
                    };
                    self.core.handle(&ev, now, out);
                    self.summary.records += 1;
                }
                Err(reason) => {
                    // Dead letters of offsets handled before a restart were committed then.
                    let again = self.core.replays(r.partition, r.offset);
                    self.core.skip(r.partition, r.offset, now);
                    if !again {
                        letters.push((i, DeadLetter::new(r, &reason, STAGE)));
                    }
                }
            }
        }
        if drain {
            self.core.finish(out);
        }
        for (i, letter) in &letters {
            let headers = letter.header_refs();
            pipeline
                .push(letter.out_record(&batch[*i], &headers))
                .await?;
        }
        let mut value = Vec::with_capacity(128);
        for o in out.iter() {
            value.clear();
            let (topic, key) = match o {
                Output::Window(w) => {
                    serde_json::to_writer(&mut value, &window_value(w))?;
                    (&self.opts.output_topic, w.company_id.as_str())
                }
                Output::Late(l) => {
                    serde_json::to_writer(&mut value, &late_value(l))?;
                    (&self.opts.late_topic, l.company_id.as_str())
                }
            };
            pipeline
                .push(OutRecord::new(topic, Some(key.as_bytes()), Some(&value)))
                .await?;
        }
        let offsets = self.offsets()?;
        if offsets.count() > 0 {
            let group = self
                .consumer
                .group_metadata()
                .context("the consumer has no group metadata (not in a group yet)")?;
            self.producer.send_offsets(&offsets, &group)?;
        }
        pipeline.finish().await?;
        Ok(letters)
    }

    /// The checkpoint as offsets with metadata, for the partitions we own.
    fn offsets(&self) -> anyhow::Result<TopicPartitionList> {
        let cp = self.core.checkpoint();
        let mut tpl = TopicPartitionList::new();
        for p in cp
            .partitions
            .iter()
            .filter(|p| self.assigned.contains(&p.partition))
        {
            let metadata = serde_json::to_string(&OffsetMetadata {
                v: 1,
                wm: cp.watermark,
                max_ts: p.max_ts,
                handled: p.handled_offset,
            })?;
            let mut e = tpl.add_partition(&self.opts.input_topic, p.partition);
            e.set_offset(Offset::Offset(p.resume_offset))?;
            e.set_metadata(metadata);
        }
        Ok(tpl)
    }
}

/// Default transactional id: stable per group and host, so that a restarted instance fences the
/// crashed one and aborts its open transaction.
pub fn default_transactional_id(group: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("atenex-analytics-{group}-{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_through_offset_metadata() {
        let m = OffsetMetadata {
            v: 1,
            wm: Some(59_999),
            max_ts: Some(65_000),
            handled: 42,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"v":1,"wm":59999,"max_ts":65000,"handled":42}"#);
        let other = OffsetMetadata {
            v: 1,
            wm: Some(58_000),
            max_ts: None,
            handled: 7,
        };
        let cp = checkpoint_from(&[
            (0, Some(40), text),
            (1, Some(7), serde_json::to_string(&other).unwrap()),
            (2, None, String::new()),
        ])
        .unwrap();
        assert_eq!(cp.watermark, Some(59_999));
        assert_eq!(cp.partitions.len(), 2);
        assert_eq!(
            cp.partitions[0],
            PartitionCheckpoint {
                partition: 0,
                resume_offset: 40,
                handled_offset: 42,
                max_ts: Some(65_000)
            }
        );
        let err = checkpoint_from(&[(0, Some(1), "flink".into())]).unwrap_err();
        assert!(err.to_string().contains("not ours"), "{err}");
    }
}
