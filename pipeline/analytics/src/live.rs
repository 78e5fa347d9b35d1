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
//! the consumer's group metadata, commit (or abort).
//!
//! Several instances of a group run as one active and standbys ([`crate::role`]): the holder of
//! the group's lease ([`crate::lease`]) fences the previous active instance by starting the
//! group's transactional producer, reads the committed offsets of every input partition and
//! consumes them all (assigned by hand: the data consumer never joins a group); the others wait
//! for the lease. An instance fenced by a newer one steps down.
//!
//! Outputs are visible to `read_committed` consumers (librdkafka's and kcat's default).

use crate::core::{Output, Settings};
use crate::lease::Lease;
use crate::output::{late_value, window_value};
use crate::role::{Role, RoleChange, RoleEvent};
use crate::task::{AnalyticsTask, CommittedOffset, Transaction};
use anyhow::Context as _;
use atenex_kafka::consumer::committed_offset;
use atenex_kafka::dead_letter::DeadLetter;
use atenex_kafka::observe::Health;
use atenex_kafka::producer::Pipeline;
use atenex_kafka::progress::{frozen, thawed};
use atenex_kafka::{Clock, KafkaConfig, OutRecord, Producer, Progress, Record};
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub settings: Settings,
    pub input_topic: String,
    pub output_topic: String,
    pub late_topic: String,
    pub group: String,
    /// The group's transactional id: the same on every instance of the group, so that the one
    /// that becomes active fences the one before it.
    pub transactional_id: String,
    /// The one-partition topic whose lease group elects the active instance.
    pub lease_topic: String,
    /// The lease group's session timeout: how long an instance that stopped answering (killed,
    /// frozen, cut off) keeps the lease.
    pub session_timeout: Duration,
    /// How often the active instance looks for partitions added to the input (Flink's
    /// `partition.discovery.interval.ms`).
    pub partition_discovery: Duration,
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
    /// The simulator's broker driver freezes an instance with it: while it says `true` the
    /// instance's job loop does nothing — its open transaction stays in hand — and it is out of
    /// the lease group, as a process stopped past its session timeout.
    pub pause: Option<tokio::sync::watch::Receiver<bool>>,
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
    /// Times this instance became active.
    pub activations: u64,
    /// Times it was fenced by a newer active instance and stepped down.
    pub fenced: u64,
}

const STAGE: &str = "analytics";

struct JobContext;

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

impl ConsumerContext for JobContext {}

/// Whether `e` says another producer with this transactional id started after ours (or our
/// producer can no longer be used): the instance must step down.
pub fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|c| match c.downcast_ref::<KafkaError>() {
        Some(KafkaError::Transaction(t)) if t.is_fatal() => true,
        Some(k) => matches!(
            k.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::Fenced
            )
        ),
        None => false,
    })
}

struct Job<'a> {
    opts: &'a LiveOptions,
    config: &'a KafkaConfig,
    /// Assigned by hand (never subscribed): the active instance consumes every partition.
    consumer: StreamConsumer<JobContext>,
    /// The group's transactional producer, while active.
    producer: Option<Producer>,
    task: AnalyticsTask,
    role: Role,
    lease: Lease,
    /// Lease events seen while a batch was being filled.
    pending: VecDeque<RoleEvent>,
    partitions: usize,
    partitions_checked: Instant,
    at_end: BTreeSet<i32>,
    summary: LiveSummary,
    pause: Option<tokio::sync::watch::Receiver<bool>>,
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
        .create_with_context(JobContext)
        .map_err(|e| consumer_config.explain(e))?;
    let lease = Lease::join(
        config,
        &opts.group,
        &opts.lease_topic,
        opts.session_timeout,
        opts.pause.clone(),
    )
    .await?;
    tracing::info!(group = %opts.group, transactional_id = %opts.transactional_id, input = %opts.input_topic, lease = %opts.lease_topic, "analytics instance started: standby until it holds the lease");
    let mut job = Job {
        opts,
        config,
        consumer,
        producer: None,
        task: AnalyticsTask::new(opts.settings, opts.max_batch),
        role: Role::default(),
        lease,
        pending: VecDeque::new(),
        partitions: 0,
        partitions_checked: Instant::now(),
        at_end: BTreeSet::new(),
        summary: LiveSummary::default(),
        pause: opts.pause.clone(),
    };
    // A standby is healthy: ready to take over.
    job.show_role(&health);
    health.set_ready(true);
    let result = job.run(&shutdown, &health).await;
    job.consumer.unassign().ok();
    result.map(|()| job.summary)
}

impl Job<'_> {
    async fn run(&mut self, shutdown: &CancellationToken, health: &Health) -> anyhow::Result<()> {
        loop {
            while let Some(event) = self.pending.pop_front() {
                self.role_event(event, health)?;
            }
            if !self.role.is_active() {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        tracing::info!("stopped (standby)");
                        return Ok(());
                    }
                    event = self.lease.events.recv() => {
                        let event = event.context("the lease consumer stopped")?;
                        self.pending.push_back(event);
                    }
                }
                continue;
            }
            // The batch's records are already in the task's open transaction.
            let batch = self.collect(shutdown).await?;
            let drained = self.opts.drain && self.task.drained(&self.at_end);
            let now = self.opts.clock.now_ms();
            if let Some(tx) = self.task.end_batch(!batch.is_empty(), drained, now) {
                match self.transaction(&batch, tx).await {
                    Ok(()) => {}
                    Err(e) if is_fenced(&e) => {
                        tracing::warn!(error = %format!("{e:#}"), "fenced: another instance of the group is active; stepping down (nothing of this transaction is visible)");
                        self.summary.fenced += 1;
                        metrics::counter!("atenex_analytics_fenced_total").increment(1);
                        self.pending.push_front(RoleEvent::Fenced);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if drained {
                tracing::info!("drained: every partition reached its end; every open window fired");
                return Ok(());
            }
            if shutdown.is_cancelled() {
                tracing::info!("stopped: what was handled is committed");
                return Ok(());
            }
            if self.partitions_checked.elapsed() >= self.opts.partition_discovery {
                self.check_partitions(health)?;
            }
        }
    }

    fn show_role(&self, health: &Health) {
        health.set_role(self.role.name());
        metrics::gauge!("atenex_analytics_active").set(if self.role.is_active() {
            1.0
        } else {
            0.0
        });
    }

    /// Applies a lease event or a fencing: activation, or stepping down.
    fn role_event(&mut self, event: RoleEvent, health: &Health) -> anyhow::Result<()> {
        match self.role.on(event) {
            Some(RoleChange::Activate) => {
                health.set_ready(false);
                self.show_role(health);
                let started = Instant::now();
                if let Err(e) = self.activate() {
                    // Whatever failed, another instance may take the lease.
                    self.role.on(RoleEvent::Fenced);
                    self.step_down(true, health)?;
                    return Err(e.context("cannot become the active instance"));
                }
                let took = started.elapsed();
                self.summary.activations += 1;
                metrics::counter!("atenex_analytics_activations_total").increment(1);
                metrics::gauge!("atenex_analytics_activation_seconds").set(took.as_secs_f64());
                health.set_ready(true);
                tracing::info!(partitions = ?self.task.assigned(), watermark = ?self.task.watermark(), took_ms = took.as_millis() as u64, "active: the previous instance is fenced; state restored from the committed offsets");
            }
            Some(RoleChange::StepDown { rejoin }) => {
                self.step_down(rejoin, health)?;
                tracing::info!(rejoin, "standby: stepped down");
            }
            None => {}
        }
        Ok(())
    }

    /// Fences the previous active instance (the group's transactional producer, started: its
    /// open transaction is aborted, later ones of it fail), then restores from the committed
    /// offsets of every input partition.
    fn activate(&mut self) -> anyhow::Result<()> {
        self.producer = None;
        self.producer = Some(Producer::transactional(
            self.config,
            &self.opts.transactional_id,
        )?);
        self.restore()
    }

    /// Every partition of the input, from the committed offsets (stable: no transaction of the
    /// group is pending once the producer is started) and their metadata.
    fn restore(&mut self) -> anyhow::Result<()> {
        let topic = self.opts.input_topic.as_str();
        let partitions = self.input_partitions()?;
        anyhow::ensure!(
            !partitions.is_empty(),
            "the input topic {topic} does not exist (create it, e.g. with `atenex topics create`)"
        );
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = atenex_kafka::blocking(|| {
            self.consumer
                .committed_offsets(tpl, Duration::from_secs(30))
        })
        .with_context(|| format!("cannot read the offsets of {} on {topic}", self.opts.group))?;
        let committed: Vec<CommittedOffset> = committed
            .elements()
            .iter()
            .map(|e| CommittedOffset {
                partition: e.partition(),
                offset: committed_offset(e.offset()),
                metadata: e.metadata().to_owned(),
            })
            .collect();
        self.task.assign(&committed, self.opts.clock.now_ms())?;
        let mut assignment = TopicPartitionList::new();
        for c in &committed {
            let offset = c.offset.map_or(Offset::Stored, Offset::Offset);
            assignment.add_partition_offset(topic, c.partition, offset)?;
        }
        self.consumer.assign(&assignment)?;
        self.at_end.clear();
        self.partitions = partitions.len();
        self.partitions_checked = Instant::now();
        // What is below the committed offset was handled by an earlier instance.
        if let Some(progress) = &self.opts.progress {
            for c in &committed {
                if let Some(o) = c.offset {
                    progress.both(topic, c.partition, o);
                }
            }
        }
        Ok(())
    }

    /// The partitions of the input topic, from the cluster's metadata.
    fn input_partitions(&self) -> anyhow::Result<Vec<i32>> {
        let topic = self.opts.input_topic.as_str();
        let metadata = atenex_kafka::blocking(|| {
            self.consumer
                .fetch_metadata(Some(topic), Duration::from_secs(30))
        })
        .with_context(|| format!("cannot read the partitions of {topic}"))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect())
    }

    /// Partitions added to the input are counted from the next batch: the active instance
    /// restores every partition again from the committed offsets (nothing is open between
    /// batches).
    fn check_partitions(&mut self, health: &Health) -> anyhow::Result<()> {
        self.partitions_checked = Instant::now();
        let n = self.input_partitions()?.len();
        if n > 0 && n != self.partitions {
            tracing::info!(
                before = self.partitions,
                now = n,
                "the input's partitions changed; restoring all of them"
            );
            health.set_ready(false);
            self.restore()?;
            health.set_ready(true);
        }
        Ok(())
    }

    /// Stops counting: the open state is dropped (the next active instance starts from what was
    /// committed), the producer closed, the partitions unassigned.
    fn step_down(&mut self, rejoin: bool, health: &Health) -> anyhow::Result<()> {
        self.producer = None;
        self.consumer.unassign().ok();
        self.task.revoke();
        self.at_end.clear();
        self.show_role(health);
        health.set_ready(true);
        if rejoin {
            self.lease.rejoin()?;
        }
        Ok(())
    }

    /// A batch: waits for a first record (or a 1 s tick, a lease event, or shutdown), then fills
    /// for `max_wait`. Each record is handed to the task as it is received, at the processing
    /// time it arrives.
    async fn collect(&mut self, shutdown: &CancellationToken) -> anyhow::Result<Vec<Record>> {
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
                _ = frozen(&mut self.pause) => {
                    thawed(&mut self.pause).await;
                    continue;
                }
                _ = &mut tick, if deadline.is_none() => break,
                _ = fill => break,
                event = self.lease.events.recv() => {
                    self.pending.push_back(event.context("the lease consumer stopped")?);
                    break;
                }
                r = self.consumer.recv() => r,
            };
            match received.map(|m| Record::from_message(&m)) {
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
        let producer = self
            .producer
            .as_ref()
            .context("a transaction without the producer (not active)")?;
        producer.begin()?;
        let result = self.fill_transaction(producer, batch, &tx, &letters).await;
        if let Err(e) = result {
            if !is_fenced(&e)
                && let Err(abort) = producer.abort()
            {
                tracing::error!(error = %abort, "cannot abort the transaction");
            }
            return Err(e);
        }
        producer.commit()?;
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
        &self,
        producer: &Producer,
        batch: &[Record],
        tx: &Transaction,
        letters: &[DeadLetter],
    ) -> anyhow::Result<()> {
        let mut pipeline = Pipeline::new(producer, 10_000);
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
            producer.send_offsets(&offsets, &group)?;
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

/// Default transactional id: one per group, the same on every instance, so that the instance
/// that becomes active fences the one before it and aborts its open transaction.
pub fn default_transactional_id(group: &str) -> String {
    format!("atenex-analytics-{group}")
}
