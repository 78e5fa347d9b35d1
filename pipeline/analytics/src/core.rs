//! The window core: chunks per company in tumbling event-time windows with bounded-out-of-orderness
//! watermarks — Flink's semantics (docs/semantics.md, Flink event-time windows) as a pure, deterministic state machine.
//!
//! Inputs are [`Event`]s with the current processing time `now` (epoch ms) as an argument; outputs
//! are [`Output`]s pushed to a caller's vector. No clock, no I/O.
//!
//! - Window of `ts`: `start = ts - ts mod size` (floor, also for negative `ts`), `[start, start+size)`.
//! - Watermark of a partition: `W_p = maxTs_p - out_of_orderness - 1`. Operator watermark
//!   (per-partition mode): the minimum over assigned, non-idle partitions; a partition that has not
//!   had a record yet holds it back (`None`). Global mode: one watermark over all records. The
//!   watermark never goes back, and it advances after every record (the record is checked first).
//! - A window fires when `W >= end - 1`: one result per company, in window-start order, companies
//!   in byte order.
//! - A record is late iff its window has fired (`end - 1 <= W` when it arrives): not counted, sent
//!   to the late output. A record older than `W` whose window is still open counts.
//! - A partition with no record for `idle_timeout` of processing time stops holding the watermark
//!   back; it rejoins with its next record (the watermark does not go back for it).
//! - A record more than `max_future_skew` ahead of `now` is not counted and does not move the
//!   watermark: it goes to the late output with reason `future_timestamp`.
//! - [`WindowCore::finish`] fires every open window (end of input).
//!
//! For exactly-once restarts, the core also tracks, per partition, the oldest offset still needed by
//! an open window ([`WindowCore::checkpoint`]) and can be restored from a checkpoint
//! ([`WindowCore::restore`]): records below the restored position rebuild open windows and emit
//! nothing.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// How the operator watermark is derived (deserialized as `--watermark` spells it:
/// `per-partition`, `global`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatermarkMode {
    /// Per Kafka partition, combined by minimum over non-idle partitions (Flink with a Kafka source).
    #[default]
    PerPartition,
    /// One watermark over all records, whatever their partition (the seed job's behaviour).
    Global,
}

/// Core settings; durations in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub window_ms: i64,
    pub out_of_orderness_ms: i64,
    pub mode: WatermarkMode,
    pub idle_timeout_ms: i64,
    pub max_future_skew_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            out_of_orderness_ms: 5_000,
            mode: WatermarkMode::PerPartition,
            idle_timeout_ms: 60_000,
            max_future_skew_ms: 3_600_000,
        }
    }
}

/// One `embeddings.ready` record, reduced to what the job needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    pub partition: i32,
    pub offset: i64,
    /// Event time, epoch ms.
    pub ts: i64,
    pub chunk_id: &'a str,
    pub document_id: &'a str,
    pub company_id: &'a str,
}

/// A fired window's count for one company.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WindowResult {
    pub start: i64,
    pub end: i64,
    pub company_id: String,
    pub count: u64,
}

/// Why a record was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LateReason {
    /// Its window had already fired.
    Late,
    /// Its timestamp was more than `max_future_skew` ahead of processing time.
    FutureTimestamp,
}

impl LateReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LateReason::Late => "late",
            LateReason::FutureTimestamp => "future_timestamp",
        }
    }
}

/// A record that was not counted, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LateRecord {
    pub chunk_id: String,
    pub document_id: String,
    pub company_id: String,
    pub partition: i32,
    pub offset: i64,
    pub ts: i64,
    pub window_start: i64,
    /// The operator watermark when it arrived (`None`: no watermark yet).
    pub watermark: Option<i64>,
    pub reason: LateReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Window(WindowResult),
    Late(LateRecord),
}

#[derive(Debug, Clone, Default)]
struct Partition {
    max_ts: Option<i64>,
    /// Processing time of the last record (or of the assignment).
    last_active: i64,
    /// Offset after the last record handled.
    next_offset: Option<i64>,
    /// After a restore: records below this offset were handled before the restart.
    replay_below: i64,
    /// After a restore, until the partition is back at `replay_below`: its records up to there
    /// are not all counted again yet, so it must not let the watermark pass the restored one.
    catching_up: bool,
}

impl Partition {
    fn advance_to(&mut self, next: i64) {
        self.next_offset = Some(self.next_offset.map_or(next, |n| n.max(next)));
        if next >= self.replay_below {
            self.catching_up = false;
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Window {
    /// Counts by company; sorted when the window fires.
    counts: FxHashMap<Box<str>, u64>,
    /// Per partition, the offset of the window's first record from it (few partitions: a list).
    first_offset: Vec<(i32, i64)>,
}

/// Per-partition state saved with the input offsets (see [`WindowCore::checkpoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCheckpoint {
    pub partition: i32,
    /// Where consumption must resume: the oldest offset an open window still needs, else the
    /// position after the last record handled.
    pub resume_offset: i64,
    /// The position after the last record handled: below it, outputs were already emitted.
    pub handled_offset: i64,
    pub max_ts: Option<i64>,
}

/// What must survive a restart, besides the input offsets themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub watermark: Option<i64>,
    pub partitions: Vec<PartitionCheckpoint>,
}

#[derive(Debug, Clone)]
pub struct WindowCore {
    settings: Settings,
    partitions: BTreeMap<i32, Partition>,
    global_max_ts: Option<i64>,
    watermark: Option<i64>,
    windows: BTreeMap<i64, Window>,
    /// The watermark a restore started from (the cap while partitions catch up).
    restored_watermark: Option<i64>,
}

/// `ts - ts mod size`, flooring for negative timestamps as Flink's `TimeWindow.getWindowStartWithOffset`.
pub fn window_start(ts: i64, size: i64) -> i64 {
    ts - ts.rem_euclid(size)
}

impl WindowCore {
    pub fn new(settings: Settings) -> Self {
        assert!(settings.window_ms > 0, "window size must be positive");
        Self {
            settings,
            partitions: BTreeMap::new(),
            global_max_ts: None,
            watermark: None,
            windows: BTreeMap::new(),
            restored_watermark: None,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The operator watermark (`None` until there is one).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// A partition was assigned at `now`: it holds the watermark back until it has a record or
    /// goes idle. (Partitions are also assigned implicitly by their first record.)
    pub fn assign(&mut self, partition: i32, now: i64) {
        self.partitions.entry(partition).or_insert(Partition {
            last_active: now,
            ..Partition::default()
        });
    }

    /// Handles one record at processing time `now`.
    pub fn handle(&mut self, ev: &Event<'_>, now: i64, out: &mut Vec<Output>) {
        let size = self.settings.window_ms;
        let p = self.partitions.entry(ev.partition).or_default();
        p.last_active = now;
        let replay = ev.offset < p.replay_below;
        p.advance_to(ev.offset + 1);
        // Replayed records were accepted before the restart iff they are within the restored
        // maximum (accepted records are what moved it); the others were future-skewed.
        let replayed_future = replay && p.max_ts.is_none_or(|m| ev.ts > m);
        let start = window_start(ev.ts, size);
        let reason =
            if replayed_future || ev.ts > now.saturating_add(self.settings.max_future_skew_ms) {
                Some(LateReason::FutureTimestamp)
            } else if self
                .watermark
                .is_some_and(|w| start.saturating_add(size - 1) <= w)
            {
                Some(LateReason::Late)
            } else {
                None
            };
        match reason {
            Some(reason) => {
                // Before a restart these were already reported: rebuild state only.
                if !replay {
                    out.push(Output::Late(LateRecord {
                        chunk_id: ev.chunk_id.to_owned(),
                        document_id: ev.document_id.to_owned(),
                        company_id: ev.company_id.to_owned(),
                        partition: ev.partition,
                        offset: ev.offset,
                        ts: ev.ts,
                        window_start: start,
                        watermark: self.watermark,
                        reason,
                    }));
                }
                if reason == LateReason::FutureTimestamp {
                    self.advance(now, out);
                    return;
                }
            }
            None => {
                let w = self.windows.entry(start).or_default();
                match w.counts.get_mut(ev.company_id) {
                    Some(c) => *c += 1,
                    None => {
                        w.counts.insert(ev.company_id.into(), 1);
                    }
                }
                if !w.first_offset.iter().any(|(p, _)| *p == ev.partition) {
                    w.first_offset.push((ev.partition, ev.offset));
                }
            }
        }
        let p = self
            .partitions
            .get_mut(&ev.partition)
            .expect("inserted above");
        p.max_ts = Some(p.max_ts.map_or(ev.ts, |m| m.max(ev.ts)));
        self.global_max_ts = Some(self.global_max_ts.map_or(ev.ts, |m| m.max(ev.ts)));
        self.advance(now, out);
    }

    /// Whether a record at this position was handled before the restart this core was restored
    /// from (its outputs are already committed).
    pub fn replays(&self, partition: i32, offset: i64) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|p| offset < p.replay_below)
    }

    /// A record that could not be decoded (it went to a dead-letter topic): it moves the
    /// partition's position and activity, nothing else (if that ends the partition's catching up
    /// after a restore, the next tick or record moves the watermark).
    pub fn skip(&mut self, partition: i32, offset: i64, now: i64) {
        let p = self.partitions.entry(partition).or_default();
        p.last_active = now;
        p.advance_to(offset + 1);
    }

    /// Processing time passed: partitions may have gone idle.
    pub fn on_tick(&mut self, now: i64, out: &mut Vec<Output>) {
        self.advance(now, out);
    }

    /// End of input: fires every open window.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        self.fire_until(i64::MAX, out);
    }

    fn candidate(&self, now: i64) -> Option<i64> {
        let ooo = self.settings.out_of_orderness_ms;
        let idle = |p: &Partition| now - p.last_active >= self.settings.idle_timeout_ms;
        let candidate = match self.settings.mode {
            WatermarkMode::Global => self.global_max_ts.map(|m| m.saturating_sub(ooo + 1)),
            WatermarkMode::PerPartition => {
                let mut min: Option<i64> = None;
                for p in self.partitions.values().filter(|p| !idle(p)) {
                    // An active partition without data holds the watermark back.
                    let w = p.max_ts?.saturating_sub(ooo + 1);
                    min = Some(min.map_or(w, |m: i64| m.min(w)));
                }
                min
            }
        };
        // After a restore, partitions still re-reading what they had handled hold the watermark
        // at the restored one: windows must not fire before their records are counted again.
        let catching_up = self
            .partitions
            .values()
            .any(|p| p.catching_up && (self.settings.mode == WatermarkMode::Global || !idle(p)));
        if catching_up {
            return candidate.min(self.restored_watermark);
        }
        candidate
    }

    /// The watermark becomes the candidate if that is higher (it never goes back; `None` is
    /// below any value), and every window it reaches fires.
    fn advance(&mut self, now: i64, out: &mut Vec<Output>) {
        self.watermark = self.watermark.max(self.candidate(now));
        if let Some(w) = self.watermark {
            self.fire_until(w, out);
        }
    }

    /// Fires every window with `end - 1 <= w`, oldest first.
    fn fire_until(&mut self, w: i64, out: &mut Vec<Output>) {
        let size = self.settings.window_ms;
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            if start.saturating_add(size - 1) > w {
                break;
            }
            let window = entry.remove();
            let mut counts: Vec<(Box<str>, u64)> = window.counts.into_iter().collect();
            counts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            out.extend(counts.into_iter().map(|(company, count)| {
                Output::Window(WindowResult {
                    start,
                    end: start.saturating_add(size),
                    company_id: company.into(),
                    count,
                })
            }));
        }
    }

    /// What to commit with the input offsets so that a restart loses and repeats nothing.
    pub fn checkpoint(&self) -> Checkpoint {
        let partitions = self
            .partitions
            .iter()
            .filter_map(|(&partition, p)| {
                // While catching up after a restore, what was handled before still counts: a
                // checkpoint taken now must not make those records look new to the next restore.
                let handled = p.next_offset?.max(p.replay_below);
                let oldest_open = self
                    .windows
                    .values()
                    .filter_map(|w| {
                        w.first_offset
                            .iter()
                            .find(|(p, _)| *p == partition)
                            .map(|(_, o)| *o)
                    })
                    .min();
                Some(PartitionCheckpoint {
                    partition,
                    resume_offset: oldest_open.map_or(handled, |o| o.min(handled)),
                    handled_offset: handled,
                    max_ts: p.max_ts,
                })
            })
            .collect();
        Checkpoint {
            watermark: self.watermark,
            partitions,
        }
    }

    /// Restores what [`checkpoint`](Self::checkpoint) saved, at processing time `now`, before
    /// the records from `resume_offset` on are handled again.
    pub fn restore(&mut self, checkpoint: &Checkpoint, now: i64) {
        self.watermark = checkpoint.watermark;
        self.restored_watermark = checkpoint.watermark;
        for c in &checkpoint.partitions {
            let p = self.partitions.entry(c.partition).or_default();
            p.last_active = now;
            p.max_ts = c.max_ts;
            p.replay_below = c.handled_offset;
            p.catching_up = c.resume_offset < c.handled_offset;
            if let Some(m) = c.max_ts {
                self.global_max_ts = Some(self.global_max_ts.map_or(m, |g| g.max(m)));
            }
        }
    }
}

#[cfg(test)]
mod tests;
