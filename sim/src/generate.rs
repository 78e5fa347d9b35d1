//! The input log: generated (documents of chunks, keyed and partitioned by document, event times
//! spread over the span, with bounded disorder, late records, duplicate deliveries, far-future
//! timestamps and malformed values) or read from a recorded stream (kcat `-J` envelopes).

use crate::scenario::{Generate, Recorded, duration_ms};
use anyhow::Context as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The topic analytics reads and generated streams are records of by default.
pub const EMBEDDINGS: &str = "embeddings.ready";
/// The embedding stage's input.
pub const CHUNKS: &str = "chunks.processed";
/// Docproc's input.
pub const DOCUMENTS: &str = "documents.raw";
/// Where generated documents are stored: the broker driver puts each object there, in a directory
/// of its own that replaces this prefix.
pub const OBJECTS: &str = "file:///sim-objects";

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    /// Event time (the record timestamp), epoch ms.
    pub ts: i64,
    /// When it reaches the jobs (processing time), epoch ms.
    pub arrival: i64,
    pub key: Option<String>,
    /// `None`: a tombstone (null value).
    pub value: Option<Vec<u8>>,
}

/// The records of one topic partition, in offset order (offsets 0, 1, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub topic: String,
    pub partition: i32,
    pub records: Vec<Rec>,
    /// 0: the input; n: produced by the n-th service stage from a record of stage n − 1 that
    /// arrived at the same time (delivered after it).
    pub stage: u8,
}

/// Every partition of every topic of the input; a topic's partitions are consecutive, in order,
/// and every partition of a topic is present (possibly empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    pub streams: Vec<Stream>,
}

impl Log {
    pub fn len(&self) -> usize {
        self.streams.iter().map(|s| s.records.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The topics, in order, with their partition counts.
    pub fn topics(&self) -> Vec<(String, i32)> {
        let mut out: Vec<(String, i32)> = Vec::new();
        for s in &self.streams {
            match out.last_mut() {
                Some((t, n)) if *t == s.topic => *n += 1,
                _ => out.push((s.topic.clone(), 1)),
            }
        }
        out
    }

    /// The streams of `topic`, indexed by partition.
    pub fn of(&self, topic: &str) -> Vec<&Stream> {
        self.streams.iter().filter(|s| s.topic == topic).collect()
    }

    /// The delivery order: (stream, offset), the record that arrived first going first (ties: the
    /// earlier stage, then the stream listed first), each stream in offset order.
    pub fn delivery(&self) -> Vec<(usize, i64)> {
        let mut all: Vec<(i64, u8, usize)> = self
            .streams
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.records.iter().map(move |r| (r.arrival, s.stage, i)))
            .collect();
        all.sort();
        // Arrival order may differ from offset order inside a stream only on ties; offsets win.
        let mut next = vec![0i64; self.streams.len()];
        all.iter()
            .map(|(_, _, s)| {
                let o = next[*s];
                next[*s] += 1;
                (*s, o)
            })
            .collect()
    }

    pub fn get(&self, stream: usize, offset: i64) -> &Rec {
        &self.streams[stream].records[offset as usize]
    }
}

/// The kinds of malformed values, in the order the generator cycles through them.
pub const MALFORMED: [&str; 5] = [
    "truncated",
    "spans-lines",
    "tombstone",
    "not-a-uuid",
    "no-company",
];

fn value(
    topic: &str,
    chunk: &str,
    document: &str,
    company: &str,
    malformed: Option<&str>,
) -> Option<Vec<u8>> {
    let good = if topic == DOCUMENTS {
        format!(
            r#"{{"document_id":"{document}","company_id":"{company}","s3_path":"{OBJECTS}/{company}/{document}/document.txt","doc_type":"txt"}}"#
        )
    } else if topic == CHUNKS {
        let k = chunk.rsplit('_').next().unwrap_or("0");
        format!(
            r#"{{"chunk_id":"{chunk}","document_id":"{document}","company_id":"{company}","text":"Chunk {k} of document {document}.","page":1}}"#
        )
    } else {
        format!(
            r#"{{"chunk_id":"{chunk}","document_id":"{document}","company_id":"{company}","vector":[0.25,0.5,-0.5,0.125]}}"#
        )
    };
    let text = match malformed {
        None => good,
        // JSON cut short: not JSON, on one line.
        Some("truncated") => good[..good.len() / 2].to_owned(),
        // Not JSON, over two lines.
        Some("spans-lines") => format!("chunk {chunk}\nof {document}"),
        Some("tombstone") => return None,
        Some("not-a-uuid") => good.replace(document, "doc-7"),
        // The same value without its company id.
        _ => {
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&good).expect("generated JSON");
            v.remove("company_id");
            serde_json::Value::Object(v).to_string()
        }
    };
    Some(text.into_bytes())
}

/// The generated log: one topic, `embeddings.ready`.
pub fn generate(g: &Generate, seed: u64) -> anyhow::Result<Log> {
    anyhow::ensure!(g.partitions >= 1, "generate.partitions must be at least 1");
    let start = chrono::DateTime::parse_from_rfc3339(&g.start)
        .map_err(|e| anyhow::anyhow!("generate.start = {:?}: {e}", g.start))?
        .timestamp_millis();
    let span = duration_ms("generate.span", &g.span)?.max(1);
    let disorder = duration_ms("generate.disorder", &g.disorder)?;
    let late_depth = duration_ms("generate.late_depth", &g.late_depth)?;
    let future_skew = duration_ms("generate.future_skew", &g.future_skew)?;
    anyhow::ensure!(
        (0..g.partitions).contains(&g.idle_partitions),
        "generate.idle_partitions must be smaller than generate.partitions"
    );
    let kinds: Vec<&str> = if g.malformed_kinds.is_empty() {
        MALFORMED.to_vec()
    } else {
        g.malformed_kinds.iter().map(String::as_str).collect()
    };
    if let Some(k) = kinds.iter().find(|k| !MALFORMED.contains(k)) {
        anyhow::bail!("generate.malformed_kinds: {k:?} is not one of {MALFORMED:?}");
    }
    anyhow::ensure!(
        [EMBEDDINGS, CHUNKS, DOCUMENTS].contains(&g.topic.as_str()),
        "generate.topic = {:?}: use {EMBEDDINGS:?}, {CHUNKS:?} or {DOCUMENTS:?}",
        g.topic
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Every chunk with its arrival time; sorted by arrival they form the log.
    struct Chunk {
        arrival: i64,
        ts: i64,
        label: String,
        document: String,
        value: Option<Vec<u8>>,
    }
    let mut arrivals: Vec<Chunk> = Vec::new();
    let mut malformed = 0usize;
    for c in 0..g.companies {
        for d in 0..g.documents {
            // A UUID, as the contract requires, that still reads as company and document.
            let document = format!("{c:08x}-0000-4000-8000-{d:012x}");
            let label = format!("c{c}-d{d}");
            let base = start + rng.random_range(0..span);
            // A document is one record (docproc makes its chunks).
            let records = if g.topic == DOCUMENTS {
                1
            } else {
                g.chunks_per_document
            };
            for k in 0..records {
                let arrival = base + k as i64 * 100 + rng.random_range(0..1000);
                let mut ts = arrival
                    - if disorder > 0 {
                        rng.random_range(0..=disorder)
                    } else {
                        0
                    };
                if rng.random_bool(g.late_fraction.clamp(0.0, 1.0)) {
                    ts = arrival - late_depth;
                } else if g.future_fraction > 0.0 && rng.random_bool(g.future_fraction.min(1.0)) {
                    ts = arrival + future_skew;
                }
                let bad = (g.malformed > 0.0 && rng.random_bool(g.malformed.min(1.0))).then(|| {
                    malformed += 1;
                    kinds[(malformed - 1) % kinds.len()]
                });
                let chunk = format!("{document}_{k}");
                let v = value(&g.topic, &chunk, &document, &format!("c{c}"), bad);
                if rng.random_bool(g.duplicates.clamp(0.0, 1.0)) {
                    let again = arrival + rng.random_range(1_000..60_000);
                    arrivals.push(Chunk {
                        arrival: again,
                        ts,
                        label: label.clone(),
                        document: document.clone(),
                        value: v.clone(),
                    });
                }
                arrivals.push(Chunk {
                    arrival,
                    ts,
                    label: label.clone(),
                    document: document.clone(),
                    value: v,
                });
            }
        }
    }
    arrivals.sort_by(|a, b| {
        (a.arrival, a.ts, &a.document, &a.value).cmp(&(b.arrival, b.ts, &b.document, &b.value))
    });
    let mut log = Log {
        streams: (0..g.partitions)
            .map(|partition| Stream {
                topic: g.topic.clone(),
                partition,
                records: Vec::new(),
                stage: 0,
            })
            .collect(),
    };
    for c in arrivals {
        // Keyed by document, as the services produce (hashing the short label keeps the streams
        // of earlier scenario versions).
        let busy = (g.partitions - g.idle_partitions) as u64;
        let partition = (fnv(c.label.as_bytes()) % busy) as i32;
        let p = &mut log.streams[partition as usize].records;
        p.push(Rec {
            partition,
            offset: p.len() as i64,
            ts: c.ts,
            arrival: c.arrival,
            key: Some(c.document),
            value: c.value,
        });
    }
    Ok(log)
}

/// A recorded stream: each partition's records in their recorded order, renumbered from offset 0
/// (the broker driver produces them to a new topic); each arrives `lag` after its event time, but
/// never before the record before it in its partition.
pub fn recorded(r: &Recorded) -> anyhow::Result<Log> {
    let path = &r.file;
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let lag = duration_ms("input.lag", &r.lag)?;
    let mut streams: std::collections::BTreeMap<(String, i32), Vec<Rec>> = Default::default();
    let reader = atenex_contracts::EnvelopeReader::new(std::io::BufReader::new(file));
    for (i, e) in reader.enumerate() {
        let e = e.with_context(|| format!("{}", path.display()))?;
        if !r.topics.is_empty() && !r.topics.contains(&e.topic) {
            continue;
        }
        let ts = e.ts.with_context(|| {
            format!(
                "{} record {}: no \"ts\"; the simulator needs every record's event time",
                path.display(),
                i + 1
            )
        })?;
        let records = streams.entry((e.topic.clone(), e.partition)).or_default();
        let arrival = records
            .last()
            .map_or(ts + lag, |prev| prev.arrival.max(ts + lag));
        records.push(Rec {
            partition: e.partition,
            offset: records.len() as i64,
            ts,
            arrival,
            key: e.key,
            value: e.payload.map(String::into_bytes),
        });
    }
    // Every partition of every topic, up to the highest one recorded.
    let mut topics: std::collections::BTreeMap<String, i32> = Default::default();
    for (t, p) in streams.keys() {
        let n = topics.entry(t.clone()).or_default();
        *n = (*n).max(p + 1);
    }
    let mut log = Log::default();
    for (topic, partitions) in topics {
        for partition in 0..partitions {
            let records = streams
                .remove(&(topic.clone(), partition))
                .unwrap_or_default();
            log.streams.push(Stream {
                topic: topic.clone(),
                partition,
                records,
                stage: 0,
            });
        }
    }
    anyhow::ensure!(
        !log.is_empty(),
        "{}: no records{}",
        path.display(),
        if r.topics.is_empty() {
            String::new()
        } else {
            format!(" of {:?}", r.topics)
        }
    );
    Ok(log)
}

/// Records the services refused: they go to their input's dead-letter topic.
pub type Refused = Vec<crate::model::DeadLetter>;

/// What a service makes of one record: the key and values of the records it produces, or the
/// reason it refuses it (`Err` outside: the scenario cannot run).
type Made = anyhow::Result<Result<(String, Vec<Vec<u8>>), String>>;

/// The log with a service stage's output: each record of `from`, in delivery order, becomes what
/// `make` says, keyed by its document, in the partition the producer's `murmur2_random`
/// partitioner picks (as many partitions as `from` has), stamped and arriving when its source
/// arrived (the broker driver holds the clock while the service works), delivered right after it.
fn derive(
    input: &Log,
    from: &str,
    to: &str,
    service: &str,
    mut make: impl FnMut(&Rec) -> Made,
) -> anyhow::Result<(Log, Refused)> {
    let sources = input.of(from);
    let partitions = sources.len().max(1);
    let stage = sources.iter().map(|s| s.stage).max().unwrap_or(0) + 1;
    let mut out: Vec<Stream> = (0..partitions as i32)
        .map(|partition| Stream {
            topic: to.to_owned(),
            partition,
            records: Vec::new(),
            stage,
        })
        .collect();
    let mut letters = Refused::new();
    for (s, o) in input.delivery() {
        if input.streams[s].topic != from {
            continue;
        }
        let r = input.get(s, o);
        let (key, values) = match make(r)? {
            Ok(made) => made,
            Err(reason) => {
                letters.push(crate::model::DeadLetter {
                    stage: service.into(),
                    topic: from.into(),
                    partition: r.partition,
                    offset: r.offset,
                    reason,
                });
                continue;
            }
        };
        let partition = murmur2_partition(key.as_bytes(), partitions);
        let stream = &mut out[partition];
        for value in values {
            stream.records.push(Rec {
                partition: partition as i32,
                offset: stream.records.len() as i64,
                ts: r.arrival,
                arrival: r.arrival,
                key: Some(key.clone()),
                value: Some(value),
            });
        }
    }
    let mut log = input.clone();
    log.streams.retain(|s| s.topic != to);
    log.streams.extend(out);
    log.streams
        .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok((log, letters))
}

/// The log with the embedding stage's output: each chunk of `chunks.processed`, read as the
/// service reads it (ids copied, not validated; a refused one is a dead letter), becomes an
/// `embeddings.ready` record. The model's vector is a stand-in; the broker driver's are the mock's.
pub fn with_embeddings(input: &Log) -> anyhow::Result<(Log, Refused)> {
    derive(input, CHUNKS, EMBEDDINGS, "embedding", |r| {
        Ok(
            atenex_embedding::service::parse_chunk(r.value.as_deref()).map(|c| {
                let value = format!(
                    r#"{{"chunk_id":"{}","document_id":"{}","company_id":"{}","vector":[0.5]}}"#,
                    c.chunk_id, c.document_id, c.company_id
                );
                (c.document_id, vec![value.into_bytes()])
            }),
        )
    })
}

/// The text of a generated document: words enough for `chunks` chunks of docproc's default
/// chunker (1,000 words, 200 overlapping), the same for the same document.
pub fn document_text(document: &str, chunks: usize) -> String {
    let words = 200 + 800 * chunks.max(1);
    let mut text = String::with_capacity(words * 12);
    for i in 0..words {
        if i > 0 {
            text.push(if i % 20 == 0 { '\n' } else { ' ' });
        }
        text.push_str(&format!("w{}-{i}", document.get(..8).unwrap_or(document)));
    }
    text
}

/// The log with docproc's output: each document of `documents.raw`, read as docproc reads it (a
/// refused one is a dead letter), its text (generated from its id) extracted and chunked with
/// docproc's extractor and chunker and their defaults, each chunk a `chunks.processed` record.
pub fn with_chunks(input: &Log, chunks_per_document: usize) -> anyhow::Result<(Log, Refused)> {
    use atenex_docproc::chunker::{ChunkerConfig, chunk};
    use atenex_docproc::extract::{Limits, extract};
    derive(input, DOCUMENTS, CHUNKS, "docproc", |r| {
        let (event, format) = match atenex_docproc::service::parse_event(r.value.as_deref()) {
            Ok(parsed) => parsed,
            Err(reason) => return Ok(Err(reason)),
        };
        let (document, company) = (event.document_id.as_str(), event.company_id.as_str());
        let text = document_text(document, chunks_per_document);
        let pages = extract(format, text.as_bytes(), &Limits::default())?;
        let values = chunk(&pages, &ChunkerConfig::default(), None)
            .into_iter()
            .map(|c| {
                serde_json::to_vec(&serde_json::json!({
                    "chunk_id": format!("{document}_{}", c.index),
                    "document_id": document,
                    "company_id": company,
                    "text": c.text,
                    "page": c.page,
                }))
            })
            .collect::<Result<_, _>>()?;
        Ok(Ok((event.document_id.clone(), values)))
    })
}

/// The partition of a key as the Java client and librdkafka's `murmur2_random` choose it.
pub fn murmur2_partition(key: &[u8], partitions: usize) -> usize {
    (murmur2(key) & 0x7fff_ffff) as usize % partitions
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if rest.len() >= 3 {
            h ^= u32::from(rest[2]) << 16;
        }
        if rest.len() >= 2 {
            h ^= u32::from(rest[1]) << 8;
        }
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_partitions_as_the_java_client() {
        // Kafka's own test vectors (UtilsTest.testMurmur2), as signed ints.
        let cases: [(&str, i32); 3] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()) as i32, expected, "{key}");
        }
    }
}
