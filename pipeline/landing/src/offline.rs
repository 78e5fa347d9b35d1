//! `atenex landing --config FILE --input STREAM.jsonl`: lands a recorded stream (kcat `-J`
//! envelopes) as if it had been consumed — offsets and timestamps from the envelopes — rotating as
//! Connect would (no wall-clock or idle commits offline) and committing what is open at the end.
//! Partitions already landed resume after their last committed offset, so a second run over the
//! same stream adds nothing. With `timestamp.extractor=Record` the tree is the same on every run.
//!
//! Bad records (no timestamp for the extractor, a value with a line break that is not JSON): with
//! `errors.tolerance=none` the run stops naming topic, partition, offset and reason; with `all` they
//! are skipped and listed in the summary (there is no Kafka to dead-letter them to offline).

use crate::config::{LandingConfig, Topics};
use crate::fs::Fs;
use crate::sink::{Sink, place};
use atenex_contracts::Envelope;
use atenex_contracts::raw_envelope::{RawEnvelope, unescape_into};
use std::collections::BTreeMap;
use std::io::BufRead;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineSummary {
    pub records: u64,
    pub bytes: u64,
    /// Records of topics the configuration does not select.
    pub other_topics: u64,
    /// Records below a partition's committed offset (landed by an earlier run).
    pub already_landed: u64,
    pub bad: u64,
    pub first_bad: Vec<String>,
}

/// Which topics the configuration selects.
pub struct TopicFilter(TopicsMatcher);

enum TopicsMatcher {
    List(Vec<String>),
    Regex(regex_lite::Regex),
}

impl TopicFilter {
    pub fn new(topics: &Topics) -> Result<Self, String> {
        Ok(Self(match topics {
            Topics::List(l) => TopicsMatcher::List(l.clone()),
            Topics::Regex(r) => TopicsMatcher::Regex(
                regex_lite::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| format!("topics.regex {r:?} is not a regular expression: {e}"))?,
            ),
        }))
    }

    pub fn matches(&self, topic: &str) -> bool {
        match &self.0 {
            TopicsMatcher::List(l) => l.iter().any(|t| t == topic),
            TopicsMatcher::Regex(r) => r.is_match(topic),
        }
    }
}

pub fn run<F: Fs>(
    sink: &mut Sink<F>,
    config: &LandingConfig,
    mut input: impl BufRead,
    now: i64,
) -> anyhow::Result<OfflineSummary> {
    let filter = TopicFilter::new(&config.topics).map_err(anyhow::Error::msg)?;
    let tolerate = matches!(config.errors, crate::config::ErrorTolerance::All { .. });
    let mut resume: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
    let mut s = OfflineSummary::default();
    let (mut line, mut value) = (Vec::new(), Vec::new());
    let mut line_no = 0u64;
    loop {
        line.clear();
        let read = atenex_contracts::lines::read_line_bounded(
            &mut input,
            &mut line,
            atenex_contracts::lines::MAX_LINE_BYTES,
        )
        .map_err(|e| anyhow::anyhow!("line {}: {e}", line_no + 1))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let text = std::str::from_utf8(&line)
            .map_err(|e| anyhow::anyhow!("line {line_no}: not UTF-8: {e}"))?;
        if text.trim().is_empty() {
            continue;
        }
        // The fast scan, or serde (which also says what is wrong with a line).
        value.clear();
        let (topic, partition, offset, ts, null) = match RawEnvelope::scan(&line) {
            Some(raw) => {
                if let Some(p) = raw.payload {
                    unescape_into(p, &mut value)
                        .map_err(|r| anyhow::anyhow!("line {line_no}: {r}"))?;
                }
                (
                    raw.topic.to_owned(),
                    raw.partition,
                    raw.offset,
                    raw.ts,
                    raw.payload.is_none(),
                )
            }
            None => {
                let e = Envelope::parse(text.trim())
                    .map_err(|r| anyhow::anyhow!("line {line_no}: {r}"))?;
                if let Some(p) = &e.payload {
                    value.extend_from_slice(p.as_bytes());
                }
                (e.topic, e.partition, e.offset, e.ts, e.payload.is_none())
            }
        };
        if null {
            value.extend_from_slice(b"null");
        }
        if !filter.matches(&topic) {
            s.other_topics += 1;
            continue;
        }
        let from = match resume.get(&(topic.clone(), partition)) {
            Some(r) => *r,
            None => {
                let r = sink.open(&topic, partition)?;
                resume.insert((topic.clone(), partition), r);
                r
            }
        };
        if from.is_some_and(|f| offset < f) {
            s.already_landed += 1;
            continue;
        }
        match place(&config.timestamp_extractor, ts, &value, now) {
            Ok((ts, v)) => {
                sink.write(&topic, partition, offset, ts, &v, now)?;
                s.records += 1;
                s.bytes += v.len() as u64 + 1;
            }
            Err(reason) => {
                let what = format!("{topic}[{partition}]@{offset}: {reason}");
                if !tolerate {
                    anyhow::bail!("{what} (errors.tolerance=all skips such records)");
                }
                s.bad += 1;
                if s.first_bad.len() < 10 {
                    s.first_bad.push(what);
                }
            }
        }
    }
    sink.flush_all()?;
    Ok(s)
}
