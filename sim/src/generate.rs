//! The input log: generated (documents of chunks, keyed and partitioned by document, event times
//! spread over the span, with bounded disorder, late records, duplicate deliveries, far-future
//! timestamps and malformed values) or read from a recorded stream (kcat `-J` envelopes).

use crate::log::{CHUNKS, DOCUMENTS, EMBEDDINGS, Log, Rec, Stream};
use crate::outcome::DeadLetter;
use crate::scenario::{Generate, InputTopic, Malformed, Recorded, Scenario, ms};
use anyhow::Context as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Where generated documents are stored: the broker driver puts each object there, in a directory
/// of its own that replaces this prefix.
pub const OBJECTS: &str = "file:///sim-objects";

fn value(
    topic: InputTopic,
    chunk: &str,
    document: &str,
    company: &str,
    malformed: Option<Malformed>,
) -> Option<Vec<u8>> {
    let good = if topic == InputTopic::DocumentsRaw {
        format!(
            r#"{{"document_id":"{document}","company_id":"{company}","s3_path":"{OBJECTS}/{company}/{document}/document.txt","doc_type":"txt"}}"#
        )
    } else if topic == InputTopic::ChunksProcessed {
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
        Some(Malformed::Truncated) => good[..good.len() / 2].to_owned(),
        Some(Malformed::SpansLines) => format!("chunk {chunk}\nof {document}"),
        Some(Malformed::Tombstone) => return None,
        Some(Malformed::NotAUuid) => good.replace(document, "doc-7"),
        Some(Malformed::NoCompany) => {
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&good).expect("generated JSON");
            v.remove("company_id");
            serde_json::Value::Object(v).to_string()
        }
    };
    Some(text.into_bytes())
}

/// The input log of `scenario` for `seed` (a recorded stream is the same for every seed).
pub fn input(scenario: &Scenario, seed: u64) -> anyhow::Result<Log> {
    match (&scenario.generate, &scenario.input) {
        (Some(g), _) => generate(g, seed),
        (None, Some(r)) => recorded(r),
        (None, None) => anyhow::bail!("the scenario has no input"),
    }
}

/// The log the jobs see — the scenario's input, and what docproc and the embedding stage make of
/// it if they run — and the records those services refuse.
pub fn full_log(scenario: &Scenario, seed: u64) -> anyhow::Result<(Log, Vec<DeadLetter>)> {
    let mut log = input(scenario, seed)?;
    let mut letters = Vec::new();
    if scenario.chunks() {
        let per_document = scenario
            .generate
            .as_ref()
            .map_or(1, |g| g.chunks_per_document);
        let (chunked, refused) = with_chunks(&log, per_document)?;
        log = chunked;
        letters.extend(refused);
    }
    if scenario.embeds() {
        let (embedded, refused) = with_embeddings(&log)?;
        log = embedded;
        letters.extend(refused);
    }
    Ok((log, letters))
}

/// The generated log: one topic, `embeddings.ready`.
pub fn generate(g: &Generate, seed: u64) -> anyhow::Result<Log> {
    // Ranges were checked when the scenario was loaded.
    let start = g.start.timestamp_millis();
    let span = ms(g.span).max(1);
    let disorder = ms(g.disorder);
    let late_depth = ms(g.late_depth);
    let future_skew = ms(g.future_skew);
    let grid = ms(g.grid).max(1);
    let on_grid = |t: i64| t - t.rem_euclid(grid);
    let kinds: &[Malformed] = if g.malformed_kinds.is_empty() {
        &Malformed::ALL
    } else {
        &g.malformed_kinds
    };
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
            let records = if g.topic == InputTopic::DocumentsRaw {
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
                let (arrival, ts) = (on_grid(arrival), on_grid(ts));
                let bad = (g.malformed > 0.0 && rng.random_bool(g.malformed.min(1.0))).then(|| {
                    malformed += 1;
                    kinds[(malformed - 1) % kinds.len()]
                });
                let chunk = format!("{document}_{k}");
                let v = value(g.topic, &chunk, &document, &format!("c{c}"), bad);
                if rng.random_bool(g.duplicates.clamp(0.0, 1.0)) {
                    let again = on_grid(arrival + rng.random_range(1_000..60_000));
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
                topic: g.topic.name().to_owned(),
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
    let lag = ms(r.lag);
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
pub type Refused = Vec<DeadLetter>;

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
                letters.push(DeadLetter {
                    stage: service.into(),
                    topic: from.into(),
                    partition: r.partition,
                    offset: r.offset,
                    reason,
                    to: atenex_contracts::topics::dlq_topic(from),
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
/// service reads it (a refused one is a dead letter), becomes the `embeddings.ready` value the
/// service writes. The model's vector is a stand-in; the broker driver's are the mock's.
pub fn with_embeddings(input: &Log) -> anyhow::Result<(Log, Refused)> {
    use atenex_embedding::service::{embedding_value, parse_chunk};
    let stand_in = serde_json::value::RawValue::from_string("[0.5]".to_owned())?;
    derive(input, CHUNKS, EMBEDDINGS, "embedding", |r| {
        let c = match parse_chunk(r.value.as_deref()) {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        let value = serde_json::to_vec(&embedding_value(&c, &stand_in))?;
        Ok(Ok((c.document_id.to_string(), vec![value])))
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
    use atenex_docproc::service::chunk_value;
    derive(input, DOCUMENTS, CHUNKS, "docproc", |r| {
        let (event, format) = match atenex_docproc::service::parse_event(r.value.as_deref()) {
            Ok(parsed) => parsed,
            Err(reason) => return Ok(Err(reason)),
        };
        let text = document_text(event.document_id.as_str(), chunks_per_document);
        let pages = extract(format, text.as_bytes(), &Limits::default())?;
        let values = chunk(&pages, &ChunkerConfig::default(), None)
            .into_iter()
            .map(|c| {
                let index = u32::try_from(c.index)?;
                let value = chunk_value(&event, index, c.text, c.page);
                anyhow::Ok(serde_json::to_vec(&value)?)
            })
            .collect::<Result<_, _>>()?;
        Ok(Ok((event.document_id.to_string(), values)))
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
