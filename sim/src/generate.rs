//! The generated stream: documents of chunks, keyed (and partitioned) by document, event times
//! spread over the span, with bounded disorder, late records and duplicate deliveries.

use crate::scenario::{Generate, duration_ms};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    /// Event time (the record timestamp), epoch ms.
    pub ts: i64,
    /// When it reaches the jobs (processing time), epoch ms.
    pub arrival: i64,
    pub company: String,
    pub document: String,
    pub chunk: String,
}

impl Rec {
    /// The `embeddings.ready` value. Its 4-float vector, which no job reads, carries the record's
    /// partition and offset, so that the checker can tell which offsets a landed file holds.
    pub fn value(&self) -> Vec<u8> {
        format!(
            r#"{{"chunk_id":"{}","document_id":"{}","company_id":"{}","vector":[{},{},0.5,-0.5]}}"#,
            self.chunk, self.document, self.company, self.partition, self.offset
        )
        .into_bytes()
    }
}

/// The log: per partition, in offset order.
pub fn generate(g: &Generate, seed: u64) -> anyhow::Result<Vec<Vec<Rec>>> {
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
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Every chunk with its arrival time; sorted by arrival they form the log.
    #[allow(clippy::type_complexity)]
    let mut arrivals: Vec<(i64, i64, String, String, String, String)> = Vec::new();
    for c in 0..g.companies {
        for d in 0..g.documents {
            // A UUID, as the contract requires, that still reads as company and document.
            let document = format!("{c:08x}-0000-4000-8000-{d:012x}");
            let label = format!("c{c}-d{d}");
            let base = start + rng.random_range(0..span);
            for k in 0..g.chunks_per_document {
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
                let chunk = format!("{document}_{k}");
                arrivals.push((
                    arrival,
                    ts,
                    format!("c{c}"),
                    document.clone(),
                    label.clone(),
                    chunk.clone(),
                ));
                if rng.random_bool(g.duplicates.clamp(0.0, 1.0)) {
                    let again = arrival + rng.random_range(1_000..60_000);
                    arrivals.push((
                        again,
                        ts,
                        format!("c{c}"),
                        document.clone(),
                        label.clone(),
                        chunk,
                    ));
                }
            }
        }
    }
    arrivals.sort();
    let mut log: Vec<Vec<Rec>> = vec![Vec::new(); g.partitions as usize];
    for (arrival, ts, company, document, label, chunk) in arrivals {
        // Keyed by document, as the services produce (hashing the short label keeps the streams
        // of earlier scenario versions).
        let busy = (g.partitions - g.idle_partitions) as u64;
        let partition = (fnv(label.as_bytes()) % busy) as i32;
        let p = &mut log[partition as usize];
        p.push(Rec {
            partition,
            offset: p.len() as i64,
            ts,
            arrival,
            company,
            document,
            chunk,
        });
    }
    Ok(log)
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
