//! The consumer-group loop: fetches a batch, hands it to the caller, and commits the batch's
//! offsets only after the caller says its effects are durable (returns `Ok`). If the caller fails,
//! nothing is committed and the loop stops: the batch is delivered again after a restart
//! (at-least-once; consumers make their effects idempotent or transactional).
//!
//! On shutdown (the token is cancelled) it stops fetching, hands over what it already fetched,
//! commits, leaves the group and returns.

use crate::config::KafkaConfig;
use crate::observe::names;
use anyhow::Context as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message, Timestamp};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A committed offset as a number: `None` when nothing is committed (`Offset::Invalid`, whose raw
/// value -1001 is not an offset).
pub fn committed_offset(offset: rdkafka::Offset) -> Option<i64> {
    match offset {
        rdkafka::Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// A batch handler's answer to shutdown in the middle of a batch: it stopped before producing
/// anything of it, so the batch is not committed (it is consumed again on restart) and the run
/// ends cleanly.
#[derive(Debug, thiserror::Error)]
#[error(
    "shutting down: the batch in flight was abandoned uncommitted; it is consumed again on restart"
)]
pub struct Abandoned;

/// A consumed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Epoch milliseconds, if the record has a timestamp.
    pub timestamp: Option<i64>,
    /// True when the timestamp was set by the broker (LogAppendTime), not the producer.
    pub log_append_time: bool,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        let (timestamp, log_append_time) = match m.timestamp() {
            Timestamp::NotAvailable => (None, false),
            Timestamp::CreateTime(t) => (Some(t), false),
            Timestamp::LogAppendTime(t) => (Some(t), true),
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Record {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp,
            log_append_time,
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Where a group with no committed offsets starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// From the oldest retained record: nothing is missed (the default for pipeline jobs).
    #[default]
    Earliest,
    /// Only records produced from now on.
    Latest,
}

#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub group_id: String,
    pub topics: Vec<String>,
    /// Most records handed over at once.
    pub max_batch: usize,
    /// How long to wait to fill a batch after its first record.
    pub max_wait: Duration,
    pub start: StartFrom,
}

impl GroupSettings {
    pub fn new(group_id: impl Into<String>, topics: &[&str]) -> Self {
        Self {
            group_id: group_id.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            max_batch: 500,
            max_wait: Duration::from_millis(100),
            start: StartFrom::Earliest,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub batches: u64,
    pub records: u64,
    pub commits: u64,
}

/// Logs rebalances and publishes consumer lag from librdkafka's statistics.
pub struct GroupContext {
    group: String,
}

impl ClientContext for GroupContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in stats.topics {
            for (partition, p) in t.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!(names::CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(group = %self.group, partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(group = %self.group, partitions = %describe(tpl), "partitions revoked")
            }
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "rebalance error")
            }
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    let parts: Vec<String> = tpl
        .elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect();
    parts.join(",")
}

/// A batch being consumed ([`GroupConsumer::fill`]).
#[derive(Default)]
struct Filling {
    batch: Vec<Record>,
    deadline: Option<tokio::time::Instant>,
}

impl Filling {
    fn take(&mut self) -> Vec<Record> {
        self.deadline = None;
        std::mem::take(&mut self.batch)
    }
}

fn count_in(batch: &[Record]) {
    for r in batch {
        metrics::counter!(names::RECORDS_IN, "topic" => r.topic.clone()).increment(1);
    }
}

pub struct GroupConsumer {
    consumer: StreamConsumer<GroupContext>,
    settings: GroupSettings,
}

impl GroupConsumer {
    /// Joins `settings.group_id` and subscribes to `settings.topics`. Auto-commit is always off.
    pub fn new(config: &KafkaConfig, settings: GroupSettings) -> anyhow::Result<Self> {
        let reset = match settings.start {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        };
        let config = config
            .clone()
            .with("group.id", &settings.group_id)
            .with("enable.auto.commit", "false")
            .with("enable.auto.offset.store", "false")
            .with_default("auto.offset.reset", reset)
            .with_default("statistics.interval.ms", "5000");
        let consumer: StreamConsumer<GroupContext> = config
            .client_config()
            .create_with_context(GroupContext {
                group: settings.group_id.clone(),
            })
            .map_err(|e| config.explain(e))?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .with_context(|| format!("cannot subscribe to {topics:?}"))?;
        Ok(Self { consumer, settings })
    }

    /// Most records in one batch ([`GroupSettings::max_batch`]).
    pub fn max_batch(&self) -> usize {
        self.settings.max_batch
    }

    /// Runs until `shutdown` is cancelled or `handler` fails. `handler` gets each batch; when it
    /// returns `Ok`, the batch's offsets are committed. A handler that returns [`Abandoned`] ends
    /// the run cleanly without committing that batch.
    pub async fn run<H>(
        &self,
        shutdown: CancellationToken,
        mut handler: H,
    ) -> anyhow::Result<RunSummary>
    where
        H: AsyncFnMut(&[Record]) -> anyhow::Result<()>,
    {
        let mut summary = RunSummary::default();
        let result = self
            .run_batches(&shutdown, &mut handler, &mut summary)
            .await;
        // Leave the group whether we stop cleanly or on an error, so that the partitions are
        // reassigned at once instead of after the session timeout.
        self.consumer.unsubscribe();
        result.map(|()| summary)
    }

    async fn run_batches<H>(
        &self,
        shutdown: &CancellationToken,
        handler: &mut H,
        summary: &mut RunSummary,
    ) -> anyhow::Result<()>
    where
        H: AsyncFnMut(&[Record]) -> anyhow::Result<()>,
    {
        let mut filling = Filling::default();
        loop {
            self.fill(&mut filling, shutdown, self.settings.max_batch)
                .await;
            let batch = filling.take();
            if !batch.is_empty() {
                count_in(&batch);
                let done = handler(&batch).await;
                if !self.completed(&batch, done, summary)? {
                    return Ok(());
                }
            }
            if shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Runs until `shutdown` is cancelled or a batch fails, with batches started while earlier
    /// ones are in flight. `start` begins a batch's work as a task (it runs while the next
    /// batches are consumed: e.g. its requests to a remote service) and returns its handle; when
    /// the oldest batch's task is done, `finish` completes it (e.g. produces its results), then
    /// its offsets are committed — batches finish and commit in the order they were consumed, so
    /// the committed offsets never pass a record whose effects are not durable. At most
    /// `max_records_in_flight` records are consumed and not finished: a batch is consumed only
    /// while there is room, and no larger than the room left.
    /// [`Abandoned`] from a task or from `finish` ends the run cleanly without committing that
    /// batch; at the end every task still in flight is aborted (nothing of it committed).
    pub async fn run_pipelined<T, S, F>(
        &self,
        shutdown: CancellationToken,
        max_records_in_flight: usize,
        mut start: S,
        mut finish: F,
    ) -> anyhow::Result<RunSummary>
    where
        T: Send + 'static,
        S: FnMut(std::sync::Arc<[Record]>) -> tokio::task::JoinHandle<anyhow::Result<T>>,
        F: AsyncFnMut(&[Record], T) -> anyhow::Result<()>,
    {
        type InFlight<T> = std::collections::VecDeque<(
            std::sync::Arc<[Record]>,
            tokio::task::JoinHandle<anyhow::Result<T>>,
        )>;
        let mut summary = RunSummary::default();
        let mut in_flight: InFlight<T> = Default::default();
        let mut filling = Filling::default();
        let limit = max_records_in_flight.max(1);
        let result = async {
            let mut records = 0;
            loop {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                tokio::select! {
                    biased;
                    done = async { (&mut in_flight.front_mut().expect("not empty").1).await },
                        if !in_flight.is_empty() =>
                    {
                        let (batch, _) = in_flight.pop_front().expect("not empty");
                        records -= batch.len();
                        let done = match done {
                            Ok(Ok(t)) => finish(&batch, t).await,
                            Ok(Err(e)) => Err(e),
                            Err(e) => Err(anyhow::anyhow!("the batch's task failed: {e}")),
                        };
                        if !self.completed(&batch, done, &mut summary)? {
                            return Ok(());
                        }
                    }
                    () = self.fill(&mut filling, &shutdown, self.settings.max_batch.min(limit - records)),
                        if records < limit =>
                    {
                        let batch = filling.take();
                        if !batch.is_empty() {
                            count_in(&batch);
                            let batch: std::sync::Arc<[Record]> = batch.into();
                            records += batch.len();
                            let task = start(batch.clone());
                            in_flight.push_back((batch, task));
                        }
                    }
                    () = shutdown.cancelled() => {}
                }
            }
        }
        .await;
        for (_, task) in in_flight {
            task.abort();
        }
        self.consumer.unsubscribe();
        result.map(|()| summary)
    }

    /// A batch's handling is over with `done`: on success its offsets are committed (`true`:
    /// go on); [`Abandoned`] stops the run cleanly without committing it (`false`); any other
    /// failure is the run's error.
    fn completed(
        &self,
        batch: &[Record],
        done: anyhow::Result<()>,
        summary: &mut RunSummary,
    ) -> anyhow::Result<bool> {
        match done {
            Err(e) if e.is::<Abandoned>() => {
                tracing::info!(group = %self.settings.group_id, records = batch.len(), "{e}");
                return Ok(false);
            }
            other => other.with_context(|| {
                format!(
                    "group {}: processing a batch of {} records failed; its offsets were not committed",
                    self.settings.group_id,
                    batch.len()
                )
            })?,
        }
        self.commit(batch)?;
        summary.batches += 1;
        summary.records += batch.len() as u64;
        summary.commits += 1;
        Ok(true)
    }

    /// Fills `f` until it holds a batch: `max` records, or `max_wait` after its first
    /// record, or a consumer error with records in hand; returns at once on shutdown.
    /// Cancel-safe: a record received is in `f`, and the next call goes on filling.
    async fn fill(&self, f: &mut Filling, shutdown: &CancellationToken, max: usize) {
        while f.batch.len() < max.max(1) {
            let received = match f.deadline {
                None => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.consumer.recv() => r,
                },
                Some(d) => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(d) => return,
                    r = self.consumer.recv() => r,
                },
            };
            match received {
                Ok(m) => {
                    f.batch.push(Record::from_message(&m));
                    f.deadline.get_or_insert_with(|| {
                        tokio::time::Instant::now() + self.settings.max_wait
                    });
                }
                Err(e) => {
                    tracing::warn!(group = %self.settings.group_id, error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if !f.batch.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// Commits the offset after the last record of each partition in `batch`.
    fn commit(&self, batch: &[Record]) -> anyhow::Result<()> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in batch {
            let e = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
        let mut tpl = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        let started = Instant::now();
        let result = crate::blocking(|| self.consumer.commit(&tpl, CommitMode::Sync));
        metrics::histogram!(names::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        result.with_context(|| {
            format!(
                "group {}: committing offsets {} failed",
                self.settings.group_id,
                describe(&tpl)
            )
        })
    }
}
