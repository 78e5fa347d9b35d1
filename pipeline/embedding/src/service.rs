//! The service loop: a batch of `chunks.processed` records in, their vectors out on
//! `embeddings.ready` (keyed by `document_id`, in the batch's order), refusals on
//! `chunks.processed.dlq`; the batch's offsets are committed only after all of that is
//! acknowledged. Requests are packed across documents ([`crate::batcher`]), run with bounded
//! concurrency, and retried by [`crate::retry`]; a request that still fails after its last attempt
//! fails the batch (nothing committed: it is consumed again after a restart).
//!
//! Batches are pipelined ([`Embedding::run`]): the next batch is consumed and its requests sent
//! while earlier batches' requests are in flight (`concurrency` requests at most, whichever
//! batch they belong to), and batches are produced and committed in the order they were
//! consumed. The output is the same as handling batch after batch; only the waiting overlaps.
//!
//! A 400 for a request of several inputs is split in halves and retried, so one bad input goes
//! to the dead letters alone instead of taking its neighbours with it.
//!
//! Only a failure the input caused dead-letters ([`Failure::Permanent`]). When the endpoint or
//! the configuration is at fault ([`Failure::Endpoint`]: a wrong URL, key or model, no quota,
//! an answer that is not OpenAI's) every input would fail alike: the service pauses — the
//! request is tried again with backoff for as long as it takes, health says why, nothing is
//! dead-lettered or committed — so one misconfiguration never discards a backlog.

use crate::batcher::{self, token_bound};
use crate::client::{Client, Failure};
use crate::retry::RetryPolicy;
use atenex_contracts::{ChunkProcessed, EmbeddingReady, Topic};
use atenex_kafka::consumer::{Abandoned, GroupConsumer, Record, RunSummary};
use atenex_kafka::dead_letter::DeadLetters;
use atenex_kafka::observe::Health;
use atenex_kafka::producer::Pipeline;
use atenex_kafka::{Clock, OutRecord, Producer};
use futures::{StreamExt, stream};
use serde_json::value::RawValue;
use std::future::Future;
use std::pin::Pin;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct EmbeddingConfig {
    pub limits: batcher::Limits,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Where embedded chunks go (`embeddings.ready`).
    pub output_topic: String,
    /// Stamps each output record's timestamp (its event time downstream): when it was embedded.
    pub clock: Clock,
    /// Says why consumption is paused (an endpoint failure), and that it is working again.
    pub health: Health,
    /// Cancelled at shutdown: requests in flight, retry waits and pauses stop at once and the
    /// batch is [`Abandoned`] (nothing of it produced, nothing committed).
    pub shutdown: CancellationToken,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            limits: batcher::Limits::default(),
            concurrency: 8,
            retry: RetryPolicy::default(),
            output_topic: Topic::EmbeddingsReady.name().to_owned(),
            clock: Clock::System,
            health: Health::default(),
            shutdown: CancellationToken::new(),
        }
    }
}

pub struct Embedding {
    client: Client,
    producer: Producer,
    dead_letters: DeadLetters,
    bpe: tiktoken_rs::CoreBPE,
    /// `concurrency` permits: a request holds one while it is sent and answered, whichever
    /// batch it belongs to (batches overlap in [`Embedding::run`]).
    permits: tokio::sync::Semaphore,
    config: EmbeddingConfig,
}

/// A batch's requests done ([`Embedding::embed`]): each record's chunk (or why it is refused)
/// and each sent chunk's vector (or why OpenAI refused it), to be produced by
/// [`Embedding::publish`].
pub struct Embedded {
    parsed: Vec<Result<(ChunkProcessed, usize), String>>,
    outcomes: Vec<Outcome>,
    requests: usize,
    retries: usize,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub embedded: usize,
    pub dead_lettered: usize,
    pub requests: usize,
    pub retries: usize,
}

/// A `chunks.processed` value as the service reads it — the contract's payload, validated (ids
/// well-formed and of one document, a company, non-empty text: OpenAI refuses empty inputs) — or
/// the reason it goes to the dead-letter topic without a request (the token limit is checked
/// after, with the tokenizer).
pub fn parse_chunk(payload: Option<&[u8]>) -> Result<ChunkProcessed, String> {
    let payload = payload.ok_or_else(|| "no value (tombstone)".to_owned())?;
    atenex_contracts::decode(payload).map_err(|e| e.to_string())
}

/// The `embeddings.ready` value of an embedded chunk: its ids and the vector as OpenAI wrote it.
pub fn embedding_value<'v>(
    c: &ChunkProcessed,
    vector: &'v RawValue,
) -> EmbeddingReady<&'v RawValue> {
    EmbeddingReady {
        chunk_id: c.chunk_id.clone(),
        document_id: c.document_id.clone(),
        company_id: c.company_id.clone(),
        vector,
    }
}

/// Consumed batches whose chunks may be in flight at once in [`Embedding::run`]: the next one's
/// requests start while the previous one's are answered.
pub const BATCHES_IN_FLIGHT: usize = 2;

type Outcome = Result<Box<RawValue>, String>;
type Boxed<'a> =
    Pin<Box<dyn Future<Output = anyhow::Result<(Vec<Outcome>, usize, usize)>> + Send + 'a>>;

impl Embedding {
    pub fn new(
        client: Client,
        producer: Producer,
        config: EmbeddingConfig,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (1..=2048).contains(&config.limits.max_inputs),
            "ATENEX_EMBEDDING_MAX_BATCH must be between 1 and 2048 (OpenAI's limit), not {}",
            config.limits.max_inputs
        );
        anyhow::ensure!(
            config.concurrency >= 1,
            "ATENEX_EMBEDDING_CONCURRENCY must be at least 1"
        );
        Ok(Self {
            dead_letters: DeadLetters::new(producer.clone(), "embedding"),
            client,
            producer,
            bpe: tiktoken_rs::cl100k_base()?,
            permits: tokio::sync::Semaphore::new(config.concurrency),
            config,
        })
    }

    /// The service on `consumer` until `shutdown` or a failure: each consumed batch's requests
    /// start at once, while earlier batches' requests are still in flight (all of them bounded by
    /// `concurrency`, and at most [`BATCHES_IN_FLIGHT`] consumed batches' worth of chunks consumed
    /// and not produced);
    /// batches are produced and committed in the order they were consumed, so the output is
    /// the same as batch after batch and a crash redoes only batches not committed.
    pub async fn run(
        self: std::sync::Arc<Self>,
        consumer: &GroupConsumer,
        shutdown: CancellationToken,
    ) -> anyhow::Result<RunSummary> {
        self.run_observed(consumer, shutdown, |_| {}, |_, _| {})
            .await
    }

    /// [`run`](Self::run), telling `started` of each batch as its requests start and `finished`
    /// of each batch and its report once it is produced (before its commit): for benchmarks and
    /// tests.
    pub async fn run_observed(
        self: std::sync::Arc<Self>,
        consumer: &GroupConsumer,
        shutdown: CancellationToken,
        mut started: impl FnMut(&[Record]),
        mut finished: impl FnMut(&[Record], &BatchReport),
    ) -> anyhow::Result<RunSummary> {
        let this = self.clone();
        consumer
            .run_pipelined(
                shutdown,
                consumer.max_batch().saturating_mul(BATCHES_IN_FLIGHT),
                move |batch| {
                    started(&batch);
                    let this = this.clone();
                    tokio::spawn(async move { this.embed(&batch).await })
                },
                async |batch, embedded| {
                    let report = self.publish(batch, embedded).await?;
                    finished(batch, &report);
                    Ok(())
                },
            )
            .await
    }

    /// A batch: its requests ([`embed`](Self::embed)), then its outputs
    /// ([`publish`](Self::publish)).
    pub async fn handle(&self, batch: &[Record]) -> anyhow::Result<BatchReport> {
        let embedded = self.embed(batch).await?;
        self.publish(batch, embedded).await
    }

    /// A batch's chunks read, checked and embedded: the requests, with their retries. Nothing
    /// is produced.
    pub async fn embed(&self, batch: &[Record]) -> anyhow::Result<Embedded> {
        let max_input = self.config.limits.max_input_tokens;
        // Each record: its chunk and token count, or why it is refused.
        let mut parsed: Vec<Result<(ChunkProcessed, usize), String>> =
            Vec::with_capacity(batch.len());
        for r in batch {
            let chunk = parse_chunk(r.payload.as_deref());
            parsed.push(chunk.and_then(|c| {
                let bound = token_bound(&c.text);
                let tokens = if bound <= max_input {
                    bound
                } else {
                    self.bpe.encode_ordinary(&c.text).len()
                };
                if tokens > max_input {
                    Err(format!(
                        "text too long: {tokens} tokens, OpenAI's limit is {max_input} per input"
                    ))
                } else {
                    Ok((c, tokens))
                }
            }));
        }
        let sendable: Vec<usize> = (0..parsed.len()).filter(|&i| parsed[i].is_ok()).collect();
        let texts: Vec<&str> = sendable
            .iter()
            .map(|&i| {
                parsed[i]
                    .as_ref()
                    .map(|(c, _)| c.text.as_str())
                    .unwrap_or_default()
            })
            .collect();
        let mut tokens: Vec<usize> = sendable
            .iter()
            .map(|&i| parsed[i].as_ref().map(|(_, t)| *t).unwrap_or_default())
            .collect();
        // Byte bounds pack too few inputs when they exceed the request limit: count exactly.
        if tokens.iter().sum::<usize>() > self.config.limits.max_request_tokens {
            for (t, text) in tokens.iter_mut().zip(&texts) {
                if *t == text.len() {
                    *t = self.bpe.encode_ordinary(text).len();
                }
            }
        }
        let plan = batcher::plan(&tokens, &self.config.limits);
        let results: Vec<anyhow::Result<(Vec<Outcome>, usize, usize)>> = stream::iter(plan)
            .map(|range| self.request(&texts[range]))
            .buffered(self.config.concurrency)
            .collect()
            .await;
        let mut outcomes = Vec::with_capacity(texts.len());
        let (mut requests, mut retries) = (0, 0);
        for r in results {
            let (o, n, t) = r?;
            outcomes.extend(o);
            requests += n;
            retries += t;
        }
        Ok(Embedded {
            parsed,
            outcomes,
            requests,
            retries,
        })
    }

    /// A batch's outputs: its vectors on `embeddings.ready` in the batch's order, then its
    /// refusals on the dead-letter topic, all acknowledged when it returns.
    pub async fn publish(
        &self,
        batch: &[Record],
        embedded: Embedded,
    ) -> anyhow::Result<BatchReport> {
        let Embedded {
            parsed,
            outcomes,
            requests,
            retries,
        } = embedded;
        let mut report = BatchReport {
            requests,
            retries,
            ..BatchReport::default()
        };
        // Produce in the batch's order; dead letters as they come.
        let mut outcomes = outcomes.into_iter();
        let mut pipeline = Pipeline::new(&self.producer, 1024);
        let mut letters = Vec::new();
        let now = self.config.clock.now_ms();
        for (record, chunk) in batch.iter().zip(&parsed) {
            let verdict = match chunk {
                Err(reason) => Err(reason.clone()),
                Ok((c, _)) => outcomes
                    .next()
                    .expect("one outcome per sent chunk")
                    .map(|vector| (c, vector)),
            };
            match verdict {
                Ok((c, vector)) => {
                    let value = serde_json::to_vec(&embedding_value(c, &vector))?;
                    pipeline
                        .push(OutRecord {
                            timestamp: Some(now),
                            ..OutRecord::new(
                                &self.config.output_topic,
                                Some(c.document_id.as_str().as_bytes()),
                                Some(&value),
                            )
                        })
                        .await?;
                    report.embedded += 1;
                }
                Err(reason) => letters.push((record, reason)),
            }
        }
        pipeline.finish().await?;
        for (record, reason) in letters {
            self.dead_letters.route(record, &reason).await?;
            report.dead_lettered += 1;
        }
        metrics::counter!("embedding_chunks_total", "outcome" => "embedded")
            .increment(report.embedded as u64);
        metrics::counter!("embedding_chunks_total", "outcome" => "dead_lettered")
            .increment(report.dead_lettered as u64);
        Ok(report)
    }

    /// Sleeps `wait`, unless shutdown comes first ([`Abandoned`]).
    async fn wait(&self, wait: std::time::Duration) -> anyhow::Result<()> {
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = self.config.shutdown.cancelled() => Err(Abandoned.into()),
        }
    }

    /// One planned request with its retries (and halving on 400): an outcome per input, the
    /// requests made and the retries among them.
    fn request<'a>(&'a self, texts: &'a [&'a str]) -> Boxed<'a> {
        Box::pin(async move {
            let mut attempt = 1;
            let mut retries = 0;
            let mut pauses = 0;
            loop {
                let answer = tokio::select! {
                    answer = async {
                        let _permit = self.permits.acquire().await.expect("never closed");
                        metrics::counter!("embedding_requests_total").increment(1);
                        self.client.embed(texts).await
                    } => answer,
                    () = self.config.shutdown.cancelled() => return Err(Abandoned.into()),
                };
                if pauses > 0 && !matches!(answer, Err(Failure::Endpoint { .. })) {
                    tracing::info!("the endpoint answers again: resuming");
                    self.config.health.set_paused(None);
                    metrics::gauge!("embedding_paused").set(0.0);
                }
                match answer {
                    Ok(vectors) => {
                        return Ok((vectors.into_iter().map(Ok).collect(), attempt, retries));
                    }
                    Err(Failure::Endpoint { reason, .. }) => {
                        pauses += 1;
                        let wait = self.config.retry.backoff(pauses, rand::random::<f64>());
                        tracing::error!(%reason, wait_ms = wait.as_millis() as u64, "paused: the endpoint or the configuration fails every input; nothing is dead-lettered or committed");
                        self.config.health.set_paused(Some(reason));
                        metrics::gauge!("embedding_paused").set(1.0);
                        self.wait(wait).await?;
                        retries += 1;
                    }
                    Err(Failure::Permanent { status: 400, .. }) if texts.len() > 1 => {
                        let (a, b) = texts.split_at(texts.len() / 2);
                        let (mut left, r1, t1) = self.request(a).await?;
                        let (right, r2, t2) = self.request(b).await?;
                        left.extend(right);
                        return Ok((left, attempt + r1 + r2, retries + t1 + t2));
                    }
                    Err(Failure::Permanent { reason, .. }) => {
                        tracing::warn!(inputs = texts.len(), %reason, "embedding refused");
                        return Ok((vec![Err(reason); texts.len()], attempt, retries));
                    }
                    Err(Failure::Retryable { reason, hints }) => {
                        let Some(wait) =
                            self.config
                                .retry
                                .wait(attempt as u32, &hints, rand::random::<f64>())
                        else {
                            anyhow::bail!(
                                "OpenAI failed {attempt} times for a request of {} inputs, last: {reason}",
                                texts.len()
                            );
                        };
                        tracing::info!(attempt, wait_ms = wait.as_millis() as u64, %reason, "retrying an embedding request");
                        metrics::counter!("embedding_retries_total").increment(1);
                        self.wait(wait).await?;
                        attempt += 1;
                        retries += 1;
                    }
                }
            }
        })
    }
}
