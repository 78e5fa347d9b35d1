//! The log the jobs read: every partition of every topic of a scenario's input (and of what the
//! services make of it), each record with its event time and its arrival time, and the order in
//! which records are delivered. Both drivers and the checker speak of runs in these terms.

use atenex_contracts::Topic;

/// The topic analytics reads and generated streams are records of by default.
pub const EMBEDDINGS: &str = Topic::EmbeddingsReady.name();
/// The embedding stage's input.
pub const CHUNKS: &str = Topic::ChunksProcessed.name();
/// Docproc's input.
pub const DOCUMENTS: &str = Topic::DocumentsRaw.name();
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
