//! The JSON values of the pipeline's topics (docs/contracts.md, Topics), decoded with [`decode`] and checked
//! with [`Payload::validate`]. Unknown fields are ignored (producers may add fields, never remove).

use crate::error::{ContractError, WHOLE_VALUE};
use crate::ids::{ChunkId, DocumentId};
use crate::topics::Topic;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// A topic's value type.
pub trait Payload: Serialize + DeserializeOwned {
    /// The topic this value travels on.
    const TOPIC: Topic;

    /// Checks what the types alone cannot (non-empty ids, chunk id belongs to the document, ...).
    fn validate(&self) -> Result<(), ContractError>;

    /// The record key this value is produced with (docs/contracts.md, Topics).
    fn key(&self) -> &str;
}

/// `documents.raw`: a stored upload, ready for text extraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRaw {
    pub document_id: DocumentId,
    pub company_id: String,
    /// Where the object is stored (`s3://bucket/{company_id}/{document_id}/{filename}`, or a local
    /// object-store URL).
    pub s3_path: String,
    /// The type ingest checked (`pdf`, `docx`, `doc`, `txt`, `md`, `html`): a client may declare a
    /// Content-Type that the file name's extension contradicts. Absent from older producers
    /// (then the name's extension tells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<String>,
}

/// `chunks.processed`: one chunk of a document's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkProcessed {
    pub chunk_id: ChunkId,
    pub document_id: DocumentId,
    pub company_id: String,
    pub text: String,
    /// 1-based page number, or null for formats without pages.
    pub page: Option<u32>,
}

/// `embeddings.ready`: one embedded chunk. The vector's type is a parameter: consumers that use
/// the numbers read `Vec<f32>` (the default); the embedding service writes the JSON array OpenAI
/// answered as it is (`Box<RawValue>`), without turning 1,536 numbers into floats and back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingReady<V = Vec<f32>> {
    pub chunk_id: ChunkId,
    pub document_id: DocumentId,
    pub company_id: String,
    pub vector: V,
}

/// The identifying fields of a `chunks.processed` or `embeddings.ready` value, decoded without
/// the text or the vector: serde skips those values without building strings or floats, and the
/// ids are borrowed from the input unless they contain escapes. This is what the hot paths
/// (analytics, landing, report) decode.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChunkKeys<'a> {
    #[serde(borrow)]
    pub chunk_id: Cow<'a, str>,
    #[serde(borrow)]
    pub document_id: Cow<'a, str>,
    #[serde(borrow)]
    pub company_id: Cow<'a, str>,
}

/// `analytics.flink`: chunks counted for one company in one event-time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsWindow {
    /// Inclusive start, RFC 3339 UTC with `Z`.
    #[serde(with = "rfc3339_utc")]
    pub window_start: DateTime<Utc>,
    /// Exclusive end, RFC 3339 UTC with `Z`.
    #[serde(with = "rfc3339_utc")]
    pub window_end: DateTime<Utc>,
    pub company_id: String,
    pub chunk_count: u64,
}

fn non_empty(topic: Topic, field: &str, value: &str) -> Result<(), ContractError> {
    if value.trim().is_empty() {
        return Err(ContractError::new(topic.name(), field, "must not be empty"));
    }
    Ok(())
}

fn chunk_of_document(
    topic: Topic,
    chunk_id: &ChunkId,
    document_id: &DocumentId,
) -> Result<(), ContractError> {
    if chunk_id.document_part() != document_id.as_str() {
        return Err(chunk_mismatch(
            topic,
            chunk_id.as_str(),
            document_id.as_str(),
        ));
    }
    Ok(())
}

fn chunk_mismatch(topic: Topic, chunk_id: &str, document_id: &str) -> ContractError {
    ContractError::new(
        topic.name(),
        "chunk_id",
        format!(
            "must start with the document_id {document_id} (\"{{document_id}}_{{index}}\"), got {chunk_id}"
        ),
    )
}

impl Payload for DocumentRaw {
    const TOPIC: Topic = Topic::DocumentsRaw;
    fn validate(&self) -> Result<(), ContractError> {
        non_empty(Self::TOPIC, "company_id", &self.company_id)?;
        non_empty(Self::TOPIC, "s3_path", &self.s3_path)
    }
    fn key(&self) -> &str {
        self.document_id.as_str()
    }
}

impl Payload for ChunkProcessed {
    const TOPIC: Topic = Topic::ChunksProcessed;
    fn validate(&self) -> Result<(), ContractError> {
        chunk_of_document(Self::TOPIC, &self.chunk_id, &self.document_id)?;
        non_empty(Self::TOPIC, "company_id", &self.company_id)?;
        if self.text.trim().is_empty() {
            return Err(ContractError::new(
                Self::TOPIC.name(),
                "text",
                "must contain non-whitespace text (embedding APIs reject empty inputs)",
            ));
        }
        if self.page == Some(0) {
            return Err(ContractError::new(
                Self::TOPIC.name(),
                "page",
                "is 1-based: must be ≥ 1 or null",
            ));
        }
        Ok(())
    }
    fn key(&self) -> &str {
        self.document_id.as_str()
    }
}

impl Payload for EmbeddingReady {
    const TOPIC: Topic = Topic::EmbeddingsReady;
    fn validate(&self) -> Result<(), ContractError> {
        chunk_of_document(Self::TOPIC, &self.chunk_id, &self.document_id)?;
        non_empty(Self::TOPIC, "company_id", &self.company_id)?;
        if self.vector.is_empty() {
            return Err(ContractError::new(
                Self::TOPIC.name(),
                "vector",
                "must not be empty",
            ));
        }
        if let Some(i) = self.vector.iter().position(|x| !x.is_finite()) {
            return Err(ContractError::new(
                Self::TOPIC.name(),
                format!("vector[{i}]"),
                "must be a finite number",
            ));
        }
        Ok(())
    }
    fn key(&self) -> &str {
        self.document_id.as_str()
    }
}

impl<'a> ChunkKeys<'a> {
    /// Decodes and validates the identifying fields of a `chunks.processed` or
    /// `embeddings.ready` value; `topic` names it in errors.
    pub fn decode(topic: Topic, value: &'a [u8]) -> Result<Self, ContractError> {
        let keys: ChunkKeys<'a> = decode_as(topic, value)?;
        keys.validate(topic)?;
        Ok(keys)
    }

    /// The same checks as the typed payloads make on these fields.
    pub fn validate(&self, topic: Topic) -> Result<(), ContractError> {
        let t = topic.name();
        DocumentId::check(&self.document_id)
            .map_err(|e| ContractError::new(t, "document_id", e))?;
        // The common case: the chunk id is the document id, `_` and an index; the document part
        // is then known to be a valid UUID without parsing it again.
        let quick = self
            .chunk_id
            .strip_prefix(&*self.document_id)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|index| ChunkId::check_index(index).is_ok());
        if !quick {
            let doc =
                ChunkId::check(&self.chunk_id).map_err(|e| ContractError::new(t, "chunk_id", e))?;
            if doc != self.document_id {
                return Err(chunk_mismatch(topic, &self.chunk_id, &self.document_id));
            }
        }
        non_empty(topic, "company_id", &self.company_id)
    }
}

impl Payload for AnalyticsWindow {
    const TOPIC: Topic = Topic::AnalyticsFlink;
    fn validate(&self) -> Result<(), ContractError> {
        non_empty(Self::TOPIC, "company_id", &self.company_id)?;
        if self.window_end <= self.window_start {
            return Err(ContractError::new(
                Self::TOPIC.name(),
                "window_end",
                "must be after window_start",
            ));
        }
        if self.chunk_count == 0 {
            return Err(ContractError::new(
                Self::TOPIC.name(),
                "chunk_count",
                "must be ≥ 1 (empty windows are not emitted)",
            ));
        }
        Ok(())
    }
    fn key(&self) -> &str {
        &self.company_id
    }
}

/// Decodes a record value of `T::TOPIC` and validates it.
pub fn decode<T: Payload>(value: &[u8]) -> Result<T, ContractError> {
    let v: T = decode_as(T::TOPIC, value)?;
    v.validate()?;
    Ok(v)
}

/// Decodes JSON into `T`, turning serde's errors into [`ContractError`]s that name the field.
fn decode_as<'de, T: Deserialize<'de>>(topic: Topic, value: &'de [u8]) -> Result<T, ContractError> {
    let topic = topic.name();
    if value.iter().all(u8::is_ascii_whitespace) {
        return Err(ContractError::value(topic, "is empty"));
    }
    let first = value.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // serde would also take a struct from an array; the contract says object.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(value) {
                Ok(_) => ContractError::value(topic, "must be a JSON object"),
                Err(e) => ContractError::value(
                    topic,
                    format!("is not valid JSON: {}", without_position(&e)),
                ),
            },
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(value);
    let (path, inner) = match serde_path_to_error::deserialize(&mut *de) {
        // Trailing characters after the object are an error too.
        Ok(v) => match de.end() {
            Ok(()) => return Ok(v),
            Err(e) => (".".to_owned(), e),
        },
        Err(e) => (e.path().to_string(), e.into_inner()),
    };
    let message = without_position(&inner);
    if inner.is_syntax() || inner.is_eof() {
        return Err(ContractError::value(
            topic,
            format!("is not valid JSON: {message}"),
        ));
    }
    if path == "." {
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            return Err(ContractError::new(topic, field, "is missing"));
        }
        return Err(ContractError::new(topic, WHOLE_VALUE, message));
    }
    Err(ContractError::new(topic, path, message))
}

/// serde_json's message without its " at line L column C" suffix.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.line() == 0 {
        return text;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// RFC 3339 in UTC with `Z`, seconds precision unless there are sub-seconds
/// (`2026-11-27T23:01:00Z`). Reading accepts any offset and converts to UTC.
mod rfc3339_utc {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "must be RFC 3339 (e.g. 2026-11-27T23:01:00Z): {e}"
                ))
            })
    }
}

#[cfg(test)]
mod tests;
