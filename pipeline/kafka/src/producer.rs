//! The idempotent producer: `enable.idempotence=true`, `acks=all`, ordered per partition even
//! across retries. Records are enqueued in call order; [`Producer::send`] waits for the broker's
//! acknowledgement, [`Pipeline`] keeps many in flight and acknowledges them in order.

use crate::config::KafkaConfig;
use crate::observe::names;
use anyhow::Context as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use std::collections::VecDeque;
use std::time::Duration;

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// A record to produce. `partition: None` lets the partitioner choose from the key;
/// `timestamp: None` lets the producer stamp the current time (CreateTime).
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

impl<'a> OutRecord<'a> {
    pub fn new(topic: &'a str, key: Option<&'a [u8]>, payload: Option<&'a [u8]>) -> Self {
        Self {
            topic,
            partition: None,
            key,
            payload,
            timestamp: None,
            headers: &[],
        }
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl Producer {
    /// An idempotent producer (`acks=all`) configured from `config`; `linger.ms` defaults to 5,
    /// `partitioner` to `murmur2_random` (the Java client's choice for keyed records).
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        let config = config
            .clone()
            // Static membership is the consumers' (KAFKA_GROUP_INSTANCE_ID in the units).
            .without("group.instance.id")
            .with("enable.idempotence", "true")
            .with("acks", "all")
            .with_default("linger.ms", "5")
            // Keys land on the partitions Java clients (Connect, Flink, Spark) would choose.
            .with_default("partitioner", "murmur2_random")
            .with_default("message.timeout.ms", "120000");
        let inner = config
            .client_config()
            .create()
            .map_err(|e| config.explain(e))?;
        Ok(Self { inner })
    }

    /// A transactional producer (`transactional.id`), transactions initialised: any earlier
    /// producer with the same id is fenced and its open transaction aborted.
    pub fn transactional(config: &KafkaConfig, transactional_id: &str) -> anyhow::Result<Self> {
        let config = config
            .clone()
            .with("transactional.id", transactional_id)
            .with_default("transaction.timeout.ms", "60000")
            // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
            .with_default("message.timeout.ms", "60000");
        let producer = Self::new(&config)?;
        crate::blocking(|| producer.inner.init_transactions(TXN_TIMEOUT))
            .with_context(|| format!("cannot initialise transactions for {transactional_id}"))?;
        Ok(producer)
    }

    pub fn begin(&self) -> anyhow::Result<()> {
        self.inner
            .begin_transaction()
            .context("cannot begin a transaction")
    }

    /// Adds consumer offsets (with their metadata) to the open transaction.
    pub fn send_offsets(
        &self,
        offsets: &rdkafka::TopicPartitionList,
        group: &rdkafka::consumer::ConsumerGroupMetadata,
    ) -> anyhow::Result<()> {
        crate::blocking(|| {
            self.inner
                .send_offsets_to_transaction(offsets, group, TXN_TIMEOUT)
        })
        .context("cannot add the consumer offsets to the transaction")
    }

    /// Commits the open transaction: its records and offsets become visible together.
    pub fn commit(&self) -> anyhow::Result<()> {
        crate::blocking(|| self.inner.commit_transaction(TXN_TIMEOUT))
            .context("cannot commit the transaction")
    }

    pub fn abort(&self) -> anyhow::Result<()> {
        crate::blocking(|| self.inner.abort_transaction(TXN_TIMEOUT))
            .context("cannot abort the transaction")
    }

    /// Enqueues `record` (waiting while the local queue is full) and returns the delivery
    /// future. Records are enqueued in call order.
    pub async fn enqueue(&self, record: OutRecord<'_>) -> anyhow::Result<Pending> {
        let headers = if record.headers.is_empty() {
            None
        } else {
            let mut h = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in record.headers {
                h = h.insert(Header { key, value: *value });
            }
            Some(h)
        };
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(record.topic);
        fr.partition = record.partition;
        fr.key = record.key;
        fr.payload = record.payload;
        fr.timestamp = record.timestamp;
        fr.headers = headers;
        loop {
            match self.inner.send_result(fr) {
                Ok(future) => {
                    return Ok(Pending {
                        future,
                        topic: record.topic.to_owned(),
                    });
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    fr = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot enqueue a record for {}", record.topic)));
                }
            }
        }
    }

    /// Produces `record` and waits for the broker's acknowledgement.
    pub async fn send(&self, record: OutRecord<'_>) -> anyhow::Result<Delivered> {
        self.enqueue(record).await?.acknowledged().await
    }

    /// Waits until every enqueued record is acknowledged or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> anyhow::Result<()> {
        self.inner
            .flush(timeout)
            .context("producer flush did not complete")
    }
}

/// A record handed to the producer, not yet acknowledged.
pub struct Pending {
    future: DeliveryFuture,
    topic: String,
}

impl Pending {
    pub async fn acknowledged(self) -> anyhow::Result<Delivered> {
        match self.future.await {
            Ok(Ok(d)) => {
                metrics::counter!(names::RECORDS_OUT, "topic" => self.topic).increment(1);
                Ok(Delivered {
                    partition: d.partition,
                    offset: d.offset,
                })
            }
            Ok(Err((e, _))) => {
                Err(anyhow::Error::new(e).context(format!("delivery to {} failed", self.topic)))
            }
            Err(_) => anyhow::bail!("producer closed before delivery to {}", self.topic),
        }
    }
}

/// Keeps up to `window` records in flight and acknowledges them in order.
pub struct Pipeline<'p> {
    producer: &'p Producer,
    in_flight: VecDeque<Pending>,
    window: usize,
    delivered: Vec<Delivered>,
    keep_deliveries: bool,
}

impl<'p> Pipeline<'p> {
    pub fn new(producer: &'p Producer, window: usize) -> Self {
        Self {
            producer,
            in_flight: VecDeque::new(),
            window: window.max(1),
            delivered: Vec::new(),
            keep_deliveries: false,
        }
    }

    /// Also return every [`Delivered`] from [`Pipeline::finish`], in enqueue order.
    pub fn keep_deliveries(mut self) -> Self {
        self.keep_deliveries = true;
        self
    }

    pub async fn push(&mut self, record: OutRecord<'_>) -> anyhow::Result<()> {
        while self.in_flight.len() >= self.window {
            self.ack_oldest().await?;
        }
        let p = self.producer.enqueue(record).await?;
        self.in_flight.push_back(p);
        Ok(())
    }

    async fn ack_oldest(&mut self) -> anyhow::Result<()> {
        if let Some(p) = self.in_flight.pop_front() {
            let d = p.acknowledged().await?;
            if self.keep_deliveries {
                self.delivered.push(d);
            }
        }
        Ok(())
    }

    /// Waits for every record in flight.
    pub async fn finish(mut self) -> anyhow::Result<Vec<Delivered>> {
        while !self.in_flight.is_empty() {
            self.ack_oldest().await?;
        }
        Ok(self.delivered)
    }
}
