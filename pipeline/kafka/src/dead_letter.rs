//! Dead-letter routing: a record that cannot be processed goes to `<topic>.dlq` with its key,
//! value, timestamp and headers, plus headers that say why and where it came from
//! (`atenex_contracts::topics::dlq_headers`). Never dropped, never a crash.

use crate::consumer::Record;
use crate::observe::names;
use crate::producer::{OutRecord, Producer};
use atenex_contracts::topics::{dlq_headers, dlq_topic};

#[derive(Clone)]
pub struct DeadLetters {
    producer: Producer,
    stage: String,
}

impl DeadLetters {
    /// `stage` names the component that rejects records (`docproc`, `analytics`, ...).
    pub fn new(producer: Producer, stage: impl Into<String>) -> Self {
        Self {
            producer,
            stage: stage.into(),
        }
    }

    /// Produces `record` to its dead-letter topic and waits for the acknowledgement, so that the
    /// caller may then commit past it.
    pub async fn route(&self, record: &Record, reason: &str) -> anyhow::Result<()> {
        let topic = dlq_topic(&record.topic);
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let timestamp = record.timestamp.map(|t| t.to_string());
        let mut headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        headers.extend([
            (dlq_headers::REASON, Some(reason.as_bytes())),
            (dlq_headers::STAGE, Some(self.stage.as_bytes())),
            (dlq_headers::TOPIC, Some(record.topic.as_bytes())),
            (dlq_headers::PARTITION, Some(partition.as_bytes())),
            (dlq_headers::OFFSET, Some(offset.as_bytes())),
        ]);
        if let Some(t) = &timestamp {
            headers.push((dlq_headers::TIMESTAMP, Some(t.as_bytes())));
        }
        let out = OutRecord {
            topic: &topic,
            partition: None,
            key: record.key.as_deref(),
            payload: record.payload.as_deref(),
            timestamp: record.timestamp,
            headers: &headers,
        };
        self.producer.send(out).await?;
        metrics::counter!(names::DLQ_RECORDS, "topic" => record.topic.clone()).increment(1);
        tracing::warn!(
            topic = %record.topic, partition = record.partition, offset = record.offset,
            dlq = %topic, reason, "record sent to the dead-letter topic"
        );
        Ok(())
    }
}
