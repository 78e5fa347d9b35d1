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
        let letter = DeadLetter::new(record, reason, &self.stage);
        let headers = letter.header_refs();
        self.producer
            .send(letter.out_record(record, &headers))
            .await?;
        letter.log(record);
        Ok(())
    }
}

/// The dead-letter form of a record: its `<topic>.dlq` topic and headers (the original ones plus
/// the reason and the source position). Also for producers that send it themselves, e.g. inside a
/// transaction.
pub struct DeadLetter {
    pub topic: String,
    headers: Vec<(String, Option<Vec<u8>>)>,
    reason: String,
}

impl DeadLetter {
    pub fn new(record: &Record, reason: &str, stage: &str) -> Self {
        let mut headers = record.headers.clone();
        let mut add = |k: &str, v: &str| headers.push((k.to_owned(), Some(v.as_bytes().to_vec())));
        add(dlq_headers::REASON, reason);
        add(dlq_headers::STAGE, stage);
        add(dlq_headers::TOPIC, &record.topic);
        add(dlq_headers::PARTITION, &record.partition.to_string());
        add(dlq_headers::OFFSET, &record.offset.to_string());
        if let Some(t) = record.timestamp {
            add(dlq_headers::TIMESTAMP, &t.to_string());
        }
        Self {
            topic: dlq_topic(&record.topic),
            headers,
            reason: reason.to_owned(),
        }
    }

    /// Header pairs for [`OutRecord::headers`].
    pub fn header_refs(&self) -> Vec<(&str, Option<&[u8]>)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect()
    }

    /// The record to produce: the original key, value and timestamp, with `headers` (from
    /// [`header_refs`](Self::header_refs)).
    pub fn out_record<'a>(
        &'a self,
        record: &'a Record,
        headers: &'a [(&'a str, Option<&'a [u8]>)],
    ) -> OutRecord<'a> {
        OutRecord {
            topic: &self.topic,
            partition: None,
            key: record.key.as_deref(),
            payload: record.payload.as_deref(),
            timestamp: record.timestamp,
            headers,
        }
    }

    /// Counts and logs a dead letter that was acknowledged.
    pub fn log(&self, record: &Record) {
        metrics::counter!(names::DLQ_RECORDS, "topic" => record.topic.clone()).increment(1);
        tracing::warn!(
            topic = %record.topic, partition = record.partition, offset = record.offset,
            dlq = %self.topic, reason = %self.reason, "record sent to the dead-letter topic"
        );
    }
}
