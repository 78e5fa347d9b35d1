//! The core over a recorded stream: `atenex analytics --input STREAM.jsonl --output WINDOWS.jsonl`.
//!
//! Processing time offline: a recording has no clock of its own, so each record's "now" is the
//! median event time of the 101 records of the analysed topic centred on it (clipped at the ends),
//! never going back. It is what a live job's clock reads when records arrive with ordinary delay,
//! a single far-future timestamp cannot move it, and a legitimate jump in time (a quiet night)
//! moves it as soon as the records after the jump are the majority around a record. Idleness and
//! the future-skew limit are measured against it.
//!
//! The input is read whole into memory and decoded first (so a bad line stops the run before any
//! output is written), then the core runs; the output is the same bytes for the same input.

use crate::core::{Event, LateReason, Output, Settings, WindowCore};
use crate::decode::{Line, LineRecord, decode_line};
use crate::output::{event_time_in_range, late_value, window_value};
use memchr::memchr;
use std::io::Write;

/// Records on each side of a record whose median event time is its processing time.
pub const CLOCK_HALF_WINDOW: usize = 50;

#[derive(Debug, Clone)]
pub struct OfflineOptions {
    pub settings: Settings,
    /// The analysed topic; records of other topics are ignored.
    pub topic: String,
    /// Skip malformed lines (counted) instead of stopping.
    pub skip_bad_records: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineSummary {
    pub lines: u64,
    pub records: u64,
    pub other_topics: u64,
    /// Malformed lines skipped, and the first ten (line number, reason).
    pub bad: u64,
    pub first_bad: Vec<(u64, String)>,
    pub windows: u64,
    pub counted: u64,
    pub late: u64,
    pub future: u64,
}

/// A malformed line (without `--skip-bad-records`).
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct BadLine {
    pub line: u64,
    pub reason: String,
}

/// Processing time per record: the running maximum of the centred median of event times.
pub fn clock(ts: &[i64]) -> Vec<i64> {
    let h = CLOCK_HALF_WINDOW;
    let mut sorted: Vec<i64> = Vec::with_capacity(2 * h + 1);
    let mut out = Vec::with_capacity(ts.len());
    // The window of record i is [i - h, i + h]; start with [0, h - 1] and slide.
    for &t in ts.iter().take(h) {
        let at = sorted.partition_point(|&x| x < t);
        sorted.insert(at, t);
    }
    let mut now = i64::MIN;
    for i in 0..ts.len() {
        let incoming = ts.get(i + h).copied();
        let outgoing = (i > h).then(|| ts[i - h - 1]);
        match (incoming, outgoing) {
            // The window slides: one value leaves and one enters; shift only what lies between.
            (Some(t), Some(old)) => {
                let out_at = sorted.partition_point(|&x| x < old);
                let in_at = sorted.partition_point(|&x| x < t);
                if in_at > out_at {
                    sorted.copy_within(out_at + 1..in_at, out_at);
                    sorted[in_at - 1] = t;
                } else {
                    sorted.copy_within(in_at..out_at, in_at + 1);
                    sorted[in_at] = t;
                }
            }
            (Some(t), None) => {
                let at = sorted.partition_point(|&x| x < t);
                sorted.insert(at, t);
            }
            (None, Some(old)) => {
                let at = sorted.partition_point(|&x| x < old);
                sorted.remove(at);
            }
            (None, None) => {}
        }
        now = now.max(sorted[sorted.len() / 2]);
        out.push(now);
    }
    out
}

/// Decodes `input`, runs the core, writes window values to `windows` and late records to `late`.
pub fn run(
    input: &[u8],
    opts: &OfflineOptions,
    windows: &mut dyn Write,
    mut late: Option<&mut dyn Write>,
) -> anyhow::Result<OfflineSummary> {
    let mut summary = OfflineSummary::default();
    let mut records: Vec<LineRecord<'_>> =
        Vec::with_capacity(memchr::memchr_iter(b'\n', input).count() + 1);
    let mut rest = input;
    while !rest.is_empty() {
        let (line, next) = match memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        summary.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let decoded = decode_line(line, &opts.topic).and_then(|l| match l {
            Line::Record(r) if !event_time_in_range(r.ts) => {
                Err(format!("timestamp {} is out of range", r.ts))
            }
            other => Ok(other),
        });
        match decoded {
            Ok(Line::OtherTopic) => summary.other_topics += 1,
            Ok(Line::Record(r)) => records.push(r),
            Err(reason) if opts.skip_bad_records => {
                summary.bad += 1;
                if summary.first_bad.len() < 10 {
                    summary.first_bad.push((summary.lines, reason));
                }
            }
            Err(reason) => {
                return Err(BadLine {
                    line: summary.lines,
                    reason,
                }
                .into());
            }
        }
    }
    summary.records = records.len() as u64;

    let ts: Vec<i64> = records.iter().map(|r| r.ts).collect();
    let now = clock(&ts);
    let mut core = WindowCore::new(opts.settings);
    let mut out = Vec::new();
    let mut write = |out: &mut Vec<Output>, summary: &mut OfflineSummary| -> anyhow::Result<()> {
        for o in out.drain(..) {
            match o {
                Output::Window(w) => {
                    summary.windows += 1;
                    summary.counted += w.count;
                    serde_json::to_writer(&mut *windows, &window_value(&w))?;
                    windows.write_all(b"\n")?;
                }
                Output::Late(l) => {
                    match l.reason {
                        LateReason::Late => summary.late += 1,
                        LateReason::FutureTimestamp => summary.future += 1,
                    }
                    if let Some(late) = late.as_deref_mut() {
                        serde_json::to_writer(&mut *late, &late_value(&l))?;
                        late.write_all(b"\n")?;
                    }
                }
            }
        }
        Ok(())
    };
    for (r, &now) in records.iter().zip(&now) {
        let ev = Event {
            partition: r.partition,
            offset: r.offset,
            ts: r.ts,
            chunk_id: &r.keys.chunk_id,
            document_id: &r.keys.document_id,
            company_id: &r.keys.company_id,
        };
        core.handle(&ev, now, &mut out);
        if !out.is_empty() {
            write(&mut out, &mut summary)?;
        }
    }
    core.finish(&mut out);
    write(&mut out, &mut summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_sliding_clock_equals_a_naive_median(ts in proptest::collection::vec(-1_000i64..1_000, 0..400)) {
            let h = CLOCK_HALF_WINDOW;
            let mut now = i64::MIN;
            let naive: Vec<i64> = (0..ts.len())
                .map(|i| {
                    let mut w = ts[i.saturating_sub(h)..(i + h + 1).min(ts.len())].to_vec();
                    w.sort_unstable();
                    now = now.max(w[w.len() / 2]);
                    now
                })
                .collect();
            prop_assert_eq!(clock(&ts), naive);
        }
    }

    #[test]
    fn clock_is_a_monotonic_centred_median_robust_to_outliers() {
        assert_eq!(clock(&[]), Vec::<i64>::new());
        assert_eq!(clock(&[5]), vec![5]);
        // A steady stream: the clock trails in the middle of its neighbours.
        let ts: Vec<i64> = (0..300).map(|i| i * 1_000).collect();
        let c = clock(&ts);
        assert_eq!(c[150], 150_000);
        assert_eq!(c[0], 25_000, "median of the first 51");
        assert!(c.windows(2).all(|w| w[0] <= w[1]));
        // One far-future outlier does not move it.
        let mut with_outlier = ts.clone();
        with_outlier[100] = 1 << 50;
        // (the median of its neighbours shifts by one record, not to the outlier)
        assert_eq!(clock(&with_outlier)[100], 101_000);
        assert_eq!(clock(&with_outlier)[200], 200_000);
        // A jump in time (a quiet night): the records after it are on the new time at once.
        let night: Vec<i64> = (0..200)
            .map(|i| if i < 100 { i } else { 10_000_000 + i })
            .collect();
        let c = clock(&night);
        assert!(c[100] >= 10_000_000, "{}", c[100]);
        assert!(c[99] < 10_000_000, "{}", c[99]);
    }
}
