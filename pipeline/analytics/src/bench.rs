//! Generated `embeddings.ready` streams for benchmarks and tests: kcat `-J` lines as a recorder
//! would write them, with vectors of `dims` floats printed as JSON numbers (about 13 bytes each,
//! so 1536 dimensions make a line of about 20 KB).

use atenex_contracts::{Envelope, EnvelopeWriter, TimestampType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub records: usize,
    pub dims: usize,
    pub companies: usize,
    pub partitions: i32,
    /// Event-time disorder, ms (within the watermark delay: nothing late).
    pub disorder_ms: i64,
    pub seed: u64,
}

impl Default for StreamSpec {
    fn default() -> Self {
        Self {
            records: 10_000,
            dims: 1536,
            companies: 20,
            partitions: 3,
            disorder_ms: 4_000,
            seed: 1,
        }
    }
}

/// The stream, one envelope per line.
pub fn generate(spec: &StreamSpec) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut w = EnvelopeWriter::new(Vec::new());
    let mut offsets = vec![0i64; spec.partitions.max(1) as usize];
    let base = 1_764_201_600_000i64;
    let mut value = String::new();
    for i in 0..spec.records {
        let doc = uuid_like(&mut rng);
        let company = format!("company-{:03}", rng.random_range(0..spec.companies.max(1)));
        value.clear();
        let _ = write!(
            value,
            r#"{{"chunk_id":"{doc}_{}","document_id":"{doc}","company_id":"{company}","vector":["#,
            i % 40
        );
        for d in 0..spec.dims {
            if d > 0 {
                value.push(',');
            }
            let _ = write!(value, "{:.9}", rng.random_range(-1.0f64..1.0));
        }
        value.push_str("]}");
        let partition = rng.random_range(0..spec.partitions.max(1));
        let p = partition as usize;
        let jitter = if spec.disorder_ms > 0 {
            rng.random_range(0..spec.disorder_ms)
        } else {
            0
        };
        let envelope = Envelope {
            topic: "embeddings.ready".into(),
            partition,
            offset: offsets[p],
            tstype: Some(TimestampType::Create),
            ts: Some(base + i as i64 * 20 - jitter),
            broker: 1,
            headers: vec![],
            key: Some(doc.clone()),
            payload: Some(value.clone()),
        };
        offsets[p] += 1;
        w.write(&envelope).expect("writing to memory");
    }
    w.into_inner()
}

fn uuid_like(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.random();
    uuid_from(b)
}

fn uuid_from(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
