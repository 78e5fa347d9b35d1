//! Topic names of the pipeline (docs/contracts.md, Topics), their dead-letter topics and header names.

use std::fmt;

/// The four topics that carry the pipeline's data, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `documents.raw`: an uploaded document, keyed by `document_id`.
    DocumentsRaw,
    /// `chunks.processed`: one text chunk of a document, keyed by `document_id`.
    ChunksProcessed,
    /// `embeddings.ready`: one embedded chunk, keyed by `document_id`.
    EmbeddingsReady,
    /// `analytics.flink`: chunks per company per event-time window, keyed by `company_id`.
    AnalyticsFlink,
}

/// Records the analytics job found late (their window had already fired).
pub const ANALYTICS_LATE: &str = "analytics.late";

/// The analytics instances' lease: one partition, no records; its consumer group
/// (`<group>.lease`) elects the active instance (docs/analytics.md, Several instances).
pub const ANALYTICS_LEASE: &str = "analytics.lease";

/// Suffix of a dead-letter topic: malformed records of `T` go to `T.dlq`.
pub const DLQ_SUFFIX: &str = ".dlq";

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::DocumentsRaw,
        Topic::ChunksProcessed,
        Topic::EmbeddingsReady,
        Topic::AnalyticsFlink,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Topic::DocumentsRaw => "documents.raw",
            Topic::ChunksProcessed => "chunks.processed",
            Topic::EmbeddingsReady => "embeddings.ready",
            Topic::AnalyticsFlink => "analytics.flink",
        }
    }

    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The name of this topic's dead-letter topic.
    pub fn dlq(self) -> String {
        dlq_topic(self.name())
    }

    /// The payload field whose value is the record key.
    pub const fn key_field(self) -> &'static str {
        match self {
            Topic::AnalyticsFlink => "company_id",
            _ => "document_id",
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `<topic>.dlq`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// Kafka's rule for a topic name (`org.apache.kafka.common.internals.Topic.validate`): 1 to 249
/// characters of `[a-zA-Z0-9._-]`, and not `.` or `..`. A name that passes is also a safe single
/// directory name, which is why the landing's paths rely on it.
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name must not be empty".to_owned());
    }
    if name == "." || name == ".." {
        return Err(format!(
            "topic name {name:?} is not allowed (Kafka refuses `.` and `..`)"
        ));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters long (Kafka's limit: 249)",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} has {c:?}: Kafka allows only ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Every topic the pipeline creates: the four data topics, their dead-letter topics and
/// `analytics.late`.
pub fn all_pipeline_topics() -> Vec<String> {
    let mut out: Vec<String> = Topic::ALL.iter().map(|t| t.name().to_owned()).collect();
    out.extend(Topic::ALL.iter().map(|t| t.dlq()));
    out.push(ANALYTICS_LATE.to_owned());
    out
}

/// Header names on a dead-letter record. The record keeps its key, value, timestamp and original
/// headers; these are added.
pub mod dlq_headers {
    /// Why the record was rejected, in words (e.g. `chunks.processed: field \`page\`: must be ≥ 1`).
    pub const REASON: &str = "dlq.reason";
    /// The component that rejected it (`docproc`, `analytics`, `landing`, ...).
    pub const STAGE: &str = "dlq.stage";
    /// Source topic, partition and offset of the rejected record.
    pub const TOPIC: &str = "dlq.source.topic";
    pub const PARTITION: &str = "dlq.source.partition";
    pub const OFFSET: &str = "dlq.source.offset";
    /// Source record timestamp in epoch milliseconds, when it had one.
    pub const TIMESTAMP: &str = "dlq.source.timestamp";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_dlq_names() {
        for t in Topic::ALL {
            assert_eq!(Topic::from_name(t.name()), Some(t));
        }
        assert_eq!(Topic::from_name("documents.raw.dlq"), None);
        assert_eq!(Topic::EmbeddingsReady.dlq(), "embeddings.ready.dlq");
        let all = all_pipeline_topics();
        assert_eq!(all.len(), 9);
        assert!(all.contains(&"analytics.late".to_owned()));
        assert!(all.contains(&"analytics.flink.dlq".to_owned()));
        for t in &all {
            assert_eq!(check_topic_name(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn topic_names_follow_kafkas_rule() {
        for ok in ["a", "A-b_c.9", &"x".repeat(249), "..a", "a.."] {
            assert_eq!(check_topic_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "é",
            "a\\b",
            &"x".repeat(250),
        ] {
            assert!(check_topic_name(bad).is_err(), "{bad:?}");
        }
    }
}
