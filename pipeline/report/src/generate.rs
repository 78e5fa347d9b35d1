//! Landing trees for the tests and the benchmark: one day of `embeddings.ready` in the Hourly
//! layout (several hours and partitions, Connect file names), plus the neighbouring days that a
//! report must not read. Deterministic for a seed.

use crate::report::day_dir;
use crate::store::Store;
use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::io;

#[derive(Debug, Clone)]
pub struct DaySpec {
    pub date: NaiveDate,
    pub seed: u64,
    pub companies: usize,
    pub documents_per_company: usize,
    pub chunks_per_document: usize,
    /// Vector dimensions (1536 for text-embedding-3-small).
    pub dims: usize,
    pub partitions: i32,
    /// Hour directories used (the first `hours` of the day).
    pub hours: u32,
    /// Records per file at most (the landing's `flush.size`).
    pub records_per_file: usize,
    /// Fraction of records delivered twice (the copy lands in any file of the day).
    pub duplicates: f64,
    /// Also write files for the day before and after (which must not be read).
    pub neighbours: bool,
}

impl Default for DaySpec {
    fn default() -> Self {
        Self {
            date: NaiveDate::from_ymd_opt(2026, 11, 27).expect("valid"),
            seed: 1,
            companies: 5,
            documents_per_company: 8,
            chunks_per_document: 20,
            dims: 8,
            partitions: 3,
            hours: 24,
            records_per_file: 50,
            duplicates: 0.02,
            neighbours: true,
        }
    }
}

/// What was written for the day itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    pub files: u64,
    pub bytes: u64,
    pub records: u64,
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// Writes the day (and its neighbours) under `landing/<topic>/`; returns what the day holds.
pub fn write_day(
    store: &dyn Store,
    landing: &str,
    topic: &str,
    spec: &DaySpec,
) -> io::Result<Written> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    // A pool of formatted floats: generating a GB of vectors stays quick.
    let floats: Vec<String> = (0..997)
        .map(|_| format!("{:.8}", rng.random_range(-1.0f32..1.0)))
        .collect();
    let mut written = Written::default();
    let days: Vec<(NaiveDate, bool)> = if spec.neighbours {
        vec![
            (spec.date.pred_opt().expect("valid"), false),
            (spec.date, true),
            (spec.date.succ_opt().expect("valid"), false),
        ]
    } else {
        vec![(spec.date, true)]
    };
    for (date, counted) in days {
        // Records of this day: every chunk of every document, some twice.
        let mut lines: Vec<String> = Vec::new();
        let companies: Vec<String> = (0..spec.companies).map(|_| uuid(&mut rng)).collect();
        for company in &companies {
            for _ in 0..spec.documents_per_company {
                let doc = uuid(&mut rng);
                for i in 0..spec.chunks_per_document {
                    let mut l = String::with_capacity(160 + spec.dims * 12);
                    write!(
                        l,
                        "{{\"chunk_id\":\"{doc}_{i}\",\"document_id\":\"{doc}\",\"company_id\":\"{company}\",\"vector\":["
                    )
                    .expect("string");
                    for d in 0..spec.dims {
                        if d > 0 {
                            l.push(',');
                        }
                        l.push_str(&floats[rng.random_range(0..floats.len())]);
                    }
                    l.push_str("]}");
                    let dup = rng.random_bool(spec.duplicates);
                    lines.push(l.clone());
                    if dup {
                        lines.push(l);
                    }
                }
            }
        }
        // Spread over (hour, partition), in files of at most records_per_file, offsets running
        // per partition.
        let mut by_slot: Vec<Vec<String>> =
            vec![Vec::new(); (spec.hours as usize) * spec.partitions as usize];
        for l in lines {
            let slot = rng.random_range(0..by_slot.len());
            by_slot[slot].push(l);
        }
        // About one file in ten is late: written after the later hours' files, so its offsets are
        // higher than theirs (as the landing does with late records for an older hour).
        let mut files: Vec<(usize, &[String])> = Vec::new();
        let mut late: Vec<(usize, &[String])> = Vec::new();
        for (slot, recs) in by_slot.iter().enumerate() {
            for chunk in recs.chunks(spec.records_per_file.max(1)) {
                if rng.random_bool(0.1) {
                    late.push((slot, chunk));
                } else {
                    files.push((slot, chunk));
                }
            }
        }
        files.extend(late);
        let mut next_offset = vec![0i64; spec.partitions as usize];
        for (slot, chunk) in files {
            let hour = slot / spec.partitions as usize;
            let partition = slot % spec.partitions as usize;
            {
                let start = next_offset[partition];
                let end = start + chunk.len() as i64 - 1;
                next_offset[partition] = end + 1;
                let path = format!(
                    "{landing}/{topic}/{}/hour={hour:02}/{topic}+{partition}+{start:010}+{end:010}.json",
                    day_dir(date)
                );
                let mut body = chunk.join("\n");
                body.push('\n');
                store.write(&path, body.as_bytes())?;
                if counted {
                    written.files += 1;
                    written.bytes += body.len() as u64;
                    written.records += chunk.len() as u64;
                }
            }
        }
    }
    Ok(written)
}
