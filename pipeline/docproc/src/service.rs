//! The service loop: a batch of `documents.raw` records in, their chunks out on
//! `chunks.processed` (keyed by `document_id`, in chunk order), refusals on `documents.raw.dlq`;
//! the batch's offsets are committed only when all of that is acknowledged. A store that fails
//! (not a missing object: an error) fails the batch, which is then delivered again: chunk ids are
//! deterministic, so a re-processed document yields the same chunks (at-least-once, duplicates
//! recognisable by `chunk_id`).

use crate::chunker::{self, ChunkerConfig, Cl100k, TokenCounter, Unit};
use crate::extract::{self, Format, Limits};
use atenex_contracts::{ChunkId, ChunkProcessed, DocumentRaw, Topic};
use atenex_ingest::storage::Storage;
use atenex_kafka::consumer::Record;
use atenex_kafka::dead_letter::DeadLetters;
use atenex_kafka::producer::Pipeline;
use atenex_kafka::{Clock, OutRecord, Producer};
use std::sync::Arc;

pub struct Docproc {
    pub storage: Storage,
    pub producer: Producer,
    pub dead_letters: DeadLetters,
    pub chunker: ChunkerConfig,
    pub limits: Limits,
    /// Where chunks go (`chunks.processed`).
    pub output_topic: String,
    /// Stamps each chunk's timestamp: when it was chunked (the system clock but in the
    /// simulator).
    pub clock: Clock,
    tokens: Option<Arc<Cl100k>>,
}

/// What became of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Chunked { chunks: usize },
    DeadLettered { reason: String },
}

/// A `documents.raw` value as docproc reads it — the contract's payload, validated (the document id
/// a UUID, the company and path present) — with the format it will extract, or the reason the
/// record goes to the dead-letter topic before its object is read.
pub fn parse_event(payload: Option<&[u8]>) -> Result<(DocumentRaw, Format), String> {
    let Some(payload) = payload else {
        return Err("no value (tombstone)".into());
    };
    let event: DocumentRaw = atenex_contracts::decode(payload).map_err(|e| e.to_string())?;
    // Ingest's checked type; events without one (older producers): the name's extension.
    let format = match event.doc_type.as_deref() {
        Some(t) => Format::from_name(t),
        None => event
            .s3_path
            .rsplit('/')
            .next()
            .and_then(Format::from_extension),
    };
    match format {
        Some(format) => Ok((event, format)),
        None => Err(format!(
            "unsupported document type: {} {} (pdf, docx, txt, md, html)",
            event.doc_type.as_deref().unwrap_or("(no doc_type)"),
            event.s3_path
        )),
    }
}

impl Docproc {
    pub fn new(
        storage: Storage,
        producer: Producer,
        chunker: ChunkerConfig,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        chunker.validate().map_err(|e| anyhow::anyhow!(e))?;
        let tokens = match chunker.unit {
            Unit::Tokens => Some(Arc::new(Cl100k::new()?)),
            Unit::Words => None,
        };
        Ok(Self {
            dead_letters: DeadLetters::new(producer.clone(), "docproc"),
            storage,
            producer,
            chunker,
            limits,
            output_topic: Topic::ChunksProcessed.name().to_owned(),
            clock: Clock::System,
            tokens,
        })
    }

    /// Processes a batch; `Ok` when every record is chunked and acknowledged or dead-lettered.
    pub async fn handle(&self, batch: &[Record]) -> anyhow::Result<Vec<Outcome>> {
        let mut out = Vec::with_capacity(batch.len());
        for record in batch {
            let outcome = match self.prepare(record).await? {
                Ok((event, chunks)) => {
                    let n = chunks.len();
                    self.produce(&event, chunks).await?;
                    tracing::info!(document_id = %event.document_id, chunks = n, "chunked");
                    Outcome::Chunked { chunks: n }
                }
                Err(reason) => {
                    self.dead_letters.route(record, &reason).await?;
                    Outcome::DeadLettered { reason }
                }
            };
            out.push(outcome);
        }
        Ok(out)
    }

    /// The record's chunks, or the reason it cannot have any (`Err` outside: retry the batch).
    async fn prepare(
        &self,
        record: &Record,
    ) -> anyhow::Result<Result<(DocumentRaw, Vec<chunker::Chunk>), String>> {
        let (event, format) = match parse_event(record.payload.as_deref()) {
            Ok(parsed) => parsed,
            Err(reason) => return Ok(Err(reason)),
        };
        if self.storage.key_of(&event.s3_path).is_none() {
            return Ok(Err(format!(
                "s3_path {} is outside the configured storage {} (docproc --storage): not read",
                event.s3_path,
                self.storage.base()
            )));
        }
        let bytes = match self.storage.get_url(&event.s3_path).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Ok(Err(format!(
                    "object not found in the configured storage: {}",
                    event.s3_path
                )));
            }
            Err(e) => anyhow::bail!("cannot read {}: {e}", event.s3_path),
        };
        let (limits, config, tokens) = (self.limits, self.chunker, self.tokens.clone());
        let chunks = tokio::task::spawn_blocking(move || {
            extract::extract(format, &bytes, &limits).map(|pages| {
                let counter = tokens.as_deref().map(|t| t as &dyn TokenCounter);
                chunker::chunk(&pages, &config, counter)
            })
        })
        .await?;
        Ok(chunks.map(|c| (event, c)).map_err(|e| e.to_string()))
    }

    async fn produce(
        &self,
        event: &DocumentRaw,
        chunks: Vec<chunker::Chunk>,
    ) -> anyhow::Result<()> {
        let mut pipeline = Pipeline::new(&self.producer, 256);
        let now = self.clock.now_ms();
        for c in chunks {
            let index = u32::try_from(c.index).map_err(|_| {
                anyhow::anyhow!("chunk index {} beyond the contract's u32", c.index)
            })?;
            let value = serde_json::to_vec(&chunk_value(event, index, c.text, c.page))?;
            pipeline
                .push(OutRecord {
                    timestamp: Some(now),
                    ..OutRecord::new(
                        &self.output_topic,
                        Some(event.document_id.as_str().as_bytes()),
                        Some(&value),
                    )
                })
                .await?;
        }
        pipeline.finish().await?;
        Ok(())
    }
}

/// The `chunks.processed` value of chunk `index` of a document.
pub fn chunk_value(
    event: &DocumentRaw,
    index: u32,
    text: String,
    page: Option<u32>,
) -> ChunkProcessed {
    ChunkProcessed {
        chunk_id: ChunkId::new(&event.document_id, index),
        document_id: event.document_id.clone(),
        company_id: event.company_id.clone(),
        text,
        page,
    }
}
