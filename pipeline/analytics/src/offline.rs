//! The core over a recorded stream: `atenex analytics --input STREAM.jsonl --output WINDOWS.jsonl`.
//!
//! Processing time offline: a recording has no clock of its own, so each record's "now" is the
//! median event time of the 101 records of the analysed topic centred on it (clipped at the ends),
//! never going back. It is what a live job's clock reads when records arrive with ordinary delay,
//! a single far-future timestamp cannot move it, and a legitimate jump in time (a quiet night)
//! moves it as soon as the records after the jump are the majority around a record. Idleness and
//! the future-skew limit are measured against it.
//!
//! The input is read as a stream: a line is decoded where it lies in the reader's buffer, and a
//! record waits only for the [`CLOCK_HALF_WINDOW`] records after it that its clock needs (their
//! ids copied into reused slots), so memory does not grow with the input. Outputs are written as
//! windows fire; a bad line stops the run with [`BadLine`] after some output may have been
//! written, so callers stage the outputs and publish them only on success (the CLI writes
//! temporary files and renames them). The output is the same bytes for the same input.

use crate::core::{Event, LateReason, Output, Settings, WindowCore};
use crate::decode::{Line, LineRecord, decode_line};
use crate::output::{event_time_in_range, late_value, window_value};
use memchr::memchr;
use std::collections::VecDeque;
use std::io::{BufRead, Write};

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

/// The input could not be read (an I/O error, or a line longer than the bound).
#[derive(Debug, thiserror::Error)]
#[error("cannot read: {0}")]
pub struct ReadError(#[source] pub std::io::Error);

/// Processing time as records arrive: the running maximum of the centred median of event times
/// (see the module documentation). [`push`](Self::push) each record's event time; a record's
/// clock is known once the [`CLOCK_HALF_WINDOW`] records after it have come (or at the end:
/// [`finish`](Self::finish)), and clocks come out in the records' order. Holds at most
/// `2 * CLOCK_HALF_WINDOW + 1` event times.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Event times from the start of the next record's window to the last one received.
    times: VecDeque<i64>,
    /// The next record's window, sorted.
    sorted: Vec<i64>,
    /// The next record whose clock is due.
    next: usize,
    received: usize,
    now: Option<i64>,
}

impl Clock {
    /// The event time of the next record; the clock of the record `CLOCK_HALF_WINDOW` before it,
    /// once known.
    pub fn push(&mut self, ts: i64) -> Option<i64> {
        let index = self.received;
        self.received += 1;
        self.times.push_back(ts);
        // At most CLOCK_HALF_WINDOW records wait, so this one lies in the next record's window.
        let at = self.sorted.partition_point(|&x| x < ts);
        self.sorted.insert(at, ts);
        (index == self.next + CLOCK_HALF_WINDOW).then(|| self.emit())
    }

    /// The end of the input: the clock of the next record still waiting, if any (call until
    /// `None`).
    pub fn finish(&mut self) -> Option<i64> {
        (self.next < self.received).then(|| self.emit())
    }

    fn emit(&mut self) -> i64 {
        let median = self.sorted[self.sorted.len() / 2];
        let now = self.now.map_or(median, |n| n.max(median));
        self.now = Some(now);
        // The next record's window starts one later: the oldest time leaves it.
        if self.next >= CLOCK_HALF_WINDOW {
            let old = self.times.pop_front().expect("the window holds it");
            let at = self.sorted.partition_point(|&x| x < old);
            self.sorted.remove(at);
        }
        self.next += 1;
        now
    }
}

/// Processing time per record of a whole stream of event times ([`Clock`] over a slice).
pub fn clock(ts: &[i64]) -> Vec<i64> {
    let mut c = Clock::default();
    let mut out: Vec<i64> = ts.iter().filter_map(|&t| c.push(t)).collect();
    out.extend(std::iter::from_fn(|| c.finish()));
    out
}

/// A record waiting for its clock, its ids in buffers reused from record to record.
#[derive(Debug, Default)]
struct Waiting {
    partition: i32,
    offset: i64,
    ts: i64,
    chunk_id: String,
    document_id: String,
    company_id: String,
}

impl Waiting {
    fn set(&mut self, r: &LineRecord<'_>) {
        self.partition = r.partition;
        self.offset = r.offset;
        self.ts = r.ts;
        for (to, from) in [
            (&mut self.chunk_id, &r.keys.chunk_id),
            (&mut self.document_id, &r.keys.document_id),
            (&mut self.company_id, &r.keys.company_id),
        ] {
            to.clear();
            to.push_str(from);
        }
    }
}

/// The job over one input: lines in, window results and late records out.
struct Job<'o, 'w> {
    opts: &'o OfflineOptions,
    summary: OfflineSummary,
    clock: Clock,
    /// Records whose clock is not known yet, oldest first; `free` keeps the slots of records
    /// handled, for their buffers.
    waiting: VecDeque<Waiting>,
    free: Vec<Waiting>,
    core: WindowCore,
    out: Vec<Output>,
    windows: &'w mut dyn Write,
    late: Option<&'w mut dyn Write>,
}

impl Job<'_, '_> {
    fn line(&mut self, line: &[u8]) -> anyhow::Result<()> {
        self.summary.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let decoded = decode_line(line, &self.opts.topic).and_then(|l| match l {
            Line::Record(r) if !event_time_in_range(r.ts) => {
                Err(format!("timestamp {} is out of range", r.ts))
            }
            other => Ok(other),
        });
        match decoded {
            Ok(Line::OtherTopic) => self.summary.other_topics += 1,
            Ok(Line::Record(r)) => {
                self.summary.records += 1;
                let mut slot = self.free.pop().unwrap_or_default();
                slot.set(&r);
                self.waiting.push_back(slot);
                if let Some(now) = self.clock.push(r.ts) {
                    self.handle_oldest(now)?;
                }
            }
            Err(reason) if self.opts.skip_bad_records => {
                self.summary.bad += 1;
                if self.summary.first_bad.len() < 10 {
                    self.summary.first_bad.push((self.summary.lines, reason));
                }
            }
            Err(reason) => {
                return Err(BadLine {
                    line: self.summary.lines,
                    reason,
                }
                .into());
            }
        }
        Ok(())
    }

    /// The oldest waiting record, its clock now known, through the core.
    fn handle_oldest(&mut self, now: i64) -> anyhow::Result<()> {
        let r = self
            .waiting
            .pop_front()
            .expect("a clock per waiting record");
        let ev = Event {
            partition: r.partition,
            offset: r.offset,
            ts: r.ts,
            chunk_id: &r.chunk_id,
            document_id: &r.document_id,
            company_id: &r.company_id,
        };
        self.core.handle(&ev, now, &mut self.out);
        self.free.push(r);
        self.write()
    }

    fn write(&mut self) -> anyhow::Result<()> {
        for o in self.out.drain(..) {
            match o {
                Output::Window(w) => {
                    self.summary.windows += 1;
                    self.summary.counted += w.count;
                    serde_json::to_writer(&mut *self.windows, &window_value(&w))?;
                    self.windows.write_all(b"\n")?;
                }
                Output::Late(l) => {
                    match l.reason {
                        LateReason::Late => self.summary.late += 1,
                        LateReason::FutureTimestamp => self.summary.future += 1,
                    }
                    if let Some(late) = self.late.as_deref_mut() {
                        serde_json::to_writer(&mut *late, &late_value(&l))?;
                        late.write_all(b"\n")?;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<OfflineSummary> {
        while let Some(now) = self.clock.finish() {
            self.handle_oldest(now)?;
        }
        self.core.finish(&mut self.out);
        self.write()?;
        Ok(self.summary)
    }
}

/// Reads `input` line by line (each at most `max_line` bytes), runs the core, writes window
/// values to `windows` and late records to `late`. Stops at the first malformed line with
/// [`BadLine`] (unless skipped) and at a read error with [`ReadError`]; what was written by then
/// is not the result (see the module documentation).
pub fn run<'w>(
    input: &mut dyn BufRead,
    max_line: usize,
    opts: &OfflineOptions,
    windows: &'w mut dyn Write,
    late: Option<&'w mut dyn Write>,
) -> anyhow::Result<OfflineSummary> {
    let mut job = Job {
        opts,
        summary: OfflineSummary::default(),
        clock: Clock::default(),
        waiting: VecDeque::with_capacity(CLOCK_HALF_WINDOW + 1),
        free: Vec::with_capacity(CLOCK_HALF_WINDOW + 1),
        core: WindowCore::new(opts.settings),
        out: Vec::new(),
        windows,
        late,
    };
    let too_long = || {
        ReadError(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {max_line} bytes (no newline where one was due)"),
        ))
    };
    // The start of a line the buffer ended in the middle of.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError(e).into()),
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        let mut rest = buf;
        if !partial.is_empty() {
            let Some(i) = memchr(b'\n', rest) else {
                if partial.len() + n > max_line {
                    return Err(too_long().into());
                }
                partial.extend_from_slice(rest);
                input.consume(n);
                continue;
            };
            if partial.len() + i > max_line {
                return Err(too_long().into());
            }
            partial.extend_from_slice(&rest[..i]);
            job.line(&partial)?;
            partial.clear();
            rest = &rest[i + 1..];
        }
        // The lines whole in the buffer, decoded where they lie.
        while let Some(i) = memchr(b'\n', rest) {
            if i > max_line {
                return Err(too_long().into());
            }
            job.line(&rest[..i])?;
            rest = &rest[i + 1..];
        }
        if rest.len() > max_line {
            return Err(too_long().into());
        }
        partial.extend_from_slice(rest);
        input.consume(n);
    }
    if !partial.is_empty() {
        job.line(&partial)?;
    }
    job.finish()
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

    fn run_all(
        input: &mut dyn BufRead,
        max_line: usize,
        skip: bool,
    ) -> (anyhow::Result<OfflineSummary>, Vec<u8>, Vec<u8>) {
        let opts = OfflineOptions {
            settings: Settings::default(),
            topic: "embeddings.ready".into(),
            skip_bad_records: skip,
        };
        let (mut windows, mut late) = (Vec::new(), Vec::new());
        let s = run(input, max_line, &opts, &mut windows, Some(&mut late));
        (s, windows, late)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Wherever the reader's buffer cuts the lines, the run is the same: every output byte,
        /// the summary, and a bad line's number.
        #[test]
        fn the_buffer_size_changes_nothing(
            capacity in 1usize..400,
            seed in any::<u64>(),
            bad_at in proptest::option::of(0usize..300),
            skip in any::<bool>(),
        ) {
            let mut stream = crate::bench::generate(&crate::bench::StreamSpec {
                records: 300,
                dims: 3,
                disorder_ms: 90_000,
                seed,
                ..Default::default()
            });
            if let Some(at) = bad_at {
                let cut = stream.iter().enumerate().filter(|&(_, &c)| c == b'\n').nth(at).map_or(0, |(i, _)| i + 1);
                stream.splice(cut..cut, b"  \nnot json\n".iter().copied());
            }
            let whole = run_all(&mut &stream[..], usize::MAX, skip);
            let mut reader = std::io::BufReader::with_capacity(capacity, &stream[..]);
            let cut = run_all(&mut reader, usize::MAX, skip);
            prop_assert_eq!(whole.0.as_ref().ok(), cut.0.as_ref().ok());
            prop_assert_eq!(
                whole.0.as_ref().err().map(|e| e.to_string()),
                cut.0.as_ref().err().map(|e| e.to_string())
            );
            if whole.0.is_ok() {
                prop_assert!(whole.1.len() > 10, "windows were written");
                prop_assert_eq!(whole.1, cut.1);
                prop_assert_eq!(whole.2, cut.2);
            }
        }
    }

    /// The run as it was before it streamed: every line decoded first, the clock over all the
    /// event times, then the core; the outputs as the same values.
    fn whole_input_run(input: &[u8], opts: &OfflineOptions) -> (Vec<u8>, Vec<u8>) {
        let records: Vec<LineRecord<'_>> = input
            .split(|&c| c == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .filter_map(|l| match decode_line(l, &opts.topic) {
                Ok(Line::Record(r)) if event_time_in_range(r.ts) => Some(r),
                _ => None,
            })
            .collect();
        let ts: Vec<i64> = records.iter().map(|r| r.ts).collect();
        let mut core = WindowCore::new(opts.settings);
        let mut out = Vec::new();
        for (r, now) in records.iter().zip(clock(&ts)) {
            let ev = Event {
                partition: r.partition,
                offset: r.offset,
                ts: r.ts,
                chunk_id: &r.keys.chunk_id,
                document_id: &r.keys.document_id,
                company_id: &r.keys.company_id,
            };
            core.handle(&ev, now, &mut out);
        }
        core.finish(&mut out);
        let (mut windows, mut late) = (Vec::new(), Vec::new());
        for o in out {
            match o {
                Output::Window(w) => {
                    serde_json::to_writer(&mut windows, &window_value(&w)).unwrap();
                    windows.push(b'\n');
                }
                Output::Late(l) => {
                    serde_json::to_writer(&mut late, &late_value(&l)).unwrap();
                    late.push(b'\n');
                }
            }
        }
        (windows, late)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Streamed, the run writes the bytes the whole-input run wrote: windows, late and
        /// future-skewed records alike, with other topics' lines and skipped bad lines among them.
        #[test]
        fn streaming_writes_what_the_whole_input_run_wrote(
            seed in any::<u64>(),
            records in 1usize..600,
            disorder_ms in prop_oneof![Just(0i64), 1i64..4_000, 4_000i64..200_000],
            noise in proptest::collection::vec((0usize..600, 0usize..3), 0..8),
        ) {
            let mut stream = crate::bench::generate(&crate::bench::StreamSpec {
                records,
                dims: 2,
                companies: 7,
                disorder_ms,
                seed,
                ..Default::default()
            });
            for (at, kind) in noise {
                let cut = stream.iter().enumerate().filter(|&(_, &c)| c == b'\n').nth(at).map_or(stream.len(), |(i, _)| i + 1);
                let line: &[u8] = match kind {
                    0 => b"{\"topic\":\"chunks.processed\",\"partition\":0,\"offset\":1,\"ts\":5,\"key\":null,\"payload\":\"{}\"}\n",
                    1 => b"not json\n",
                    // Far in the future: skewed, not counted.
                    _ => b"{\"topic\":\"embeddings.ready\",\"partition\":0,\"offset\":99999,\"ts\":1864201600000,\"key\":null,\"payload\":\"{\\\"chunk_id\\\":\\\"d_1\\\",\\\"document_id\\\":\\\"d\\\",\\\"company_id\\\":\\\"c\\\",\\\"vector\\\":[1]}\"}\n",
                };
                stream.splice(cut..cut, line.iter().copied());
            }
            let opts = OfflineOptions {
                settings: Settings::default(),
                topic: "embeddings.ready".into(),
                skip_bad_records: true,
            };
            let (windows, late) = whole_input_run(&stream, &opts);
            let mut streamed = (Vec::new(), Vec::new());
            let mut reader = std::io::BufReader::with_capacity(97, &stream[..]);
            run(&mut reader, usize::MAX, &opts, &mut streamed.0, Some(&mut streamed.1)).unwrap();
            prop_assert!(!windows.is_empty());
            prop_assert_eq!(String::from_utf8(streamed.0).unwrap(), String::from_utf8(windows).unwrap());
            prop_assert_eq!(String::from_utf8(streamed.1).unwrap(), String::from_utf8(late).unwrap());
        }
    }

    #[test]
    fn a_line_past_the_bound_stops_the_run_wherever_the_buffer_cuts_it() {
        let stream = crate::bench::generate(&crate::bench::StreamSpec {
            records: 20,
            dims: 3,
            ..Default::default()
        });
        let longest = stream
            .split(|&c| c == b'\n')
            .map(<[u8]>::len)
            .max()
            .unwrap();
        for capacity in [1, 7, 64, 1 << 20] {
            let mut r = std::io::BufReader::with_capacity(capacity, &stream[..]);
            let (s, ..) = run_all(&mut r, longest, false);
            assert_eq!(
                s.unwrap().records,
                20,
                "{capacity}: a line of the bound is taken"
            );
            let mut r = std::io::BufReader::with_capacity(capacity, &stream[..]);
            let (s, ..) = run_all(&mut r, longest - 1, false);
            let e = s.unwrap_err();
            assert!(e.is::<ReadError>(), "{capacity}: {e}");
            assert!(e.to_string().contains("a line longer than"), "{e}");
        }
        // Without a newline: the bound, not all the memory.
        let mut zero = std::io::BufReader::new(std::io::repeat(b'x'));
        let (s, ..) = run_all(&mut zero, 1 << 16, false);
        assert!(s.unwrap_err().is::<ReadError>());
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
