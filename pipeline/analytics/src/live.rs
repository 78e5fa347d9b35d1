//! `atenex analytics` against Kafka: consumes `embeddings.ready`, produces window results to
//! `analytics.flink` (key `company_id`) and late records to `analytics.late`, exactly once.
//!
//! Exactly once, with Kafka transactions (KIP-98/447). Each batch is one transaction holding
//! the batch's outputs (window results, late records, dead letters) and the consumer offsets,
//! committed together or not at all. Every decision — restoring from the committed offsets and
//! their metadata, processing time before each record, which records are dead letters (and not
//! again after a restart), what is committed as each partition's offset — is the sans-IO
//! [`AnalyticsTask`](crate::task::AnalyticsTask)'s; this adapter consumes, hands records and the
//! clock to it, and carries out the transactions it returns: begin, produce, send the offsets with
//! the consumer's group metadata, commit (or abort). Transactions of a crashed instance are
//! aborted when the next one with the same `transactional.id` starts.
//!
//! Outputs are visible to `read_committed` consumers (librdkafka's and kcat's default).

use crate::core::{Output, Settings};
use crate::output::{late_value, window_value};
use crate::task::{AnalyticsTask, CommittedOffset, Transaction};
use anyhow::Context as _;
use atenex_kafka::consumer::committed_offset;
use atenex_kafka::dead_letter::DeadLetter;
use atenex_kafka::observe::Health;
use atenex_kafka::producer::Pipeline;
use atenex_kafka::{Clock, KafkaConfig, OutRecord, Producer, Progress, Record};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
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
    /// Where positions are published as the job goes (the simulator's broker driver waits on
    /// them to pace its records).
    pub progress: Option<JobProgress>,
}

/// Positions a job publishes: `received` once a record is in the open transaction (or, for the
/// record that fills a batch, once that transaction is committed), `committed` once its
/// transaction is committed.
#[derive(Debug, Clone, Default)]
pub struct JobProgress {
    pub received: Progress,
    pub committed: Progress,
}

impl JobProgress {
    fn both(&self, topic: &str, partition: i32, next: i64) {
        self.received.handled(topic, partition, next);
        self.committed.handled(topic, partition, next);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveSummary {
    pub records: u64,
    pub windows: u64,
    pub late: u64,
    pub dead_letters: u64,
    pub transactions: u64,
}

const STAGE: &str = "analytics";

/// What the rebalance callback saw, for the job loop to apply before the next record.
enum RebalanceEvent {
    Revoked,
    Assigned(Vec<CommittedOffset>),
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
                        .map(|e| CommittedOffset {
                            partition: e.partition(),
                            offset: committed_offset(e.offset()),
                            metadata: e.metadata().to_owned(),
                        })
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

struct Job<'a> {
    opts: &'a LiveOptions,
    consumer: StreamConsumer<JobContext>,
    producer: Producer,
    task: AnalyticsTask,
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
        task: AnalyticsTask::new(opts.settings, opts.max_batch),
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
            // The batch's records are already in the task's open transaction.
            let batch = self.collect(shutdown, health).await?;
            let drained = self.opts.drain && self.task.drained(&self.at_end);
            let now = self.opts.clock.now_ms();
            if let Some(tx) = self.task.end_batch(!batch.is_empty(), drained, now) {
                self.transaction(&batch, tx).await?;
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
                    self.task.revoke();
                    self.at_end.clear();
                }
                RebalanceEvent::Assigned(committed) => {
                    // The task starts afresh from the committed offsets: nothing is open.
                    batch.clear();
                    self.task.assign(&committed, self.opts.clock.now_ms())?;
                    // What is below the committed offset was handled by an earlier instance.
                    if let Some(progress) = &self.opts.progress {
                        for c in &committed {
                            if let Some(o) = c.offset {
                                progress.both(&self.opts.input_topic, c.partition, o);
                            }
                        }
                    }
                    tracing::info!(partitions = ?self.task.assigned(), watermark = ?self.task.watermark(), "assigned; state restored from the committed offsets");
                }
            }
        }
        Ok(())
    }

    /// A batch: waits for a first record (or a 1 s tick, or shutdown), then fills for `max_wait`.
    /// Each record is handed to the task as it is received, at the processing time it arrives.
    async fn collect(
        &mut self,
        shutdown: &CancellationToken,
        health: &Health,
    ) -> anyhow::Result<Vec<Record>> {
        let mut batch = Vec::new();
        let tick = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(tick);
        let mut deadline: Option<tokio::time::Instant> = None;
        while !self.task.is_full() {
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
            if !self.task.assigned().is_empty() {
                health.set_ready(true);
            }
            match received {
                Ok(r) => {
                    self.at_end.remove(&r.partition);
                    self.task.record(&input(&r), self.opts.clock.now_ms());
                    // The record that fills the batch counts as received once its transaction
                    // is committed (a caller pacing records sees the commit before moving on).
                    if let Some(progress) = &self.opts.progress
                        && !self.task.is_full()
                    {
                        progress
                            .received
                            .handled(&r.topic, r.partition, r.offset + 1);
                    }
                    batch.push(r);
                    deadline
                        .get_or_insert_with(|| tokio::time::Instant::now() + self.opts.max_wait);
                }
                Err(KafkaError::PartitionEOF(p)) => {
                    self.at_end.insert(p);
                    if self.opts.drain && self.task.drained(&self.at_end) {
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

    /// Carries out one transaction the task returned for `batch`: its dead letters, outputs and
    /// offsets with metadata, committed together.
    async fn transaction(&mut self, batch: &[Record], tx: Transaction) -> anyhow::Result<()> {
        let letters: Vec<DeadLetter> = tx
            .dead_letters
            .iter()
            .map(|d| DeadLetter::new(&batch[d.index], &d.reason, STAGE))
            .collect();
        self.producer.begin()?;
        let result = self.fill_transaction(batch, &tx, &letters).await;
        if let Err(e) = result {
            if let Err(abort) = self.producer.abort() {
                tracing::error!(error = %abort, "cannot abort the transaction");
            }
            return Err(e);
        }
        self.producer.commit()?;
        // Counted and logged once committed: an aborted transaction wrote nothing.
        self.summary.transactions += 1;
        self.summary.records += (tx.records - tx.dead_letters.len()) as u64;
        for o in &tx.outputs {
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
        self.summary.dead_letters += tx.dead_letters.len() as u64;
        for (d, letter) in tx.dead_letters.iter().zip(&letters) {
            letter.log(&batch[d.index]);
        }
        if let Some(progress) = &self.opts.progress {
            for r in batch {
                progress.both(&r.topic, r.partition, r.offset + 1);
            }
        }
        if let Some(w) = self.task.watermark() {
            metrics::gauge!("atenex_analytics_watermark_ms").set(w as f64);
        }
        Ok(())
    }

    async fn fill_transaction(
        &mut self,
        batch: &[Record],
        tx: &Transaction,
        letters: &[DeadLetter],
    ) -> anyhow::Result<()> {
        let mut pipeline = Pipeline::new(&self.producer, 10_000);
        for (d, letter) in tx.dead_letters.iter().zip(letters) {
            let headers = letter.header_refs();
            pipeline
                .push(letter.out_record(&batch[d.index], &headers))
                .await?;
        }
        let mut value = Vec::with_capacity(128);
        for o in &tx.outputs {
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
        if !tx.offsets.is_empty() {
            let mut offsets = TopicPartitionList::new();
            for o in &tx.offsets {
                let mut e = offsets.add_partition(&self.opts.input_topic, o.partition);
                e.set_offset(Offset::Offset(o.offset))?;
                e.set_metadata(o.metadata.as_str());
            }
            let group = self
                .consumer
                .group_metadata()
                .context("the consumer has no group metadata (not in a group yet)")?;
            self.producer.send_offsets(&offsets, &group)?;
        }
        pipeline.finish().await?;
        Ok(())
    }
}

/// A consumed record as the task reads it.
fn input(r: &Record) -> crate::task::InputRecord<'_> {
    crate::task::InputRecord {
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        value: r.payload.as_deref(),
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
