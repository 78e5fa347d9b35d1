//! Independent references: what the jobs must produce, computed from the rules they implement
//! (docs/semantics.md) and not from their code, so that every seed checks the semantics and not
//! only the scenario's reviewed snapshot.
//!
//! - [`windows`]: Flink's event-time windows over the analytics input delivered without a
//!   crash — per-partition bounded-out-of-orderness watermarks, their minimum over partitions
//!   that are not idle, a window firing when the watermark reaches its end − 1, lateness judged
//!   against the watermark as it is when the record arrives, the future-skew cap, and every open
//!   window firing at the end of input.
//! - [`landing_files`]: the committed files of the Kafka Connect HDFS sink — which records go into
//!   which file and its name — replaying the model driver's landing steps under the connector's
//!   rotation rules (`flush.size` per Kafka partition across its open files, `rotate.interval.ms`,
//!   `rotate.schedule.interval.ms`, the idle commit), with each crash's recovery taken from what
//!   the run's recovery reported and checked against it, and each partition's owner following the
//!   rebalances of several instances (a revoked partition's open files are never committed; its
//!   new owner must resume where the committed files end; processing-time rules apply to the
//!   partitions of the instance that is handed a record).
//!
//! Written for clarity, not speed: plain maps, one step at a time, nothing cached. The only
//! production code used is what is not a job decision: the payload decoder (its refusals are the
//! job's dead letters), the record placement (extractor and line) and the partitioner's bucket
//! name.

use crate::faults::Crash;
use crate::log::{EMBEDDINGS, Log};
use crate::outcome::LandingStep;
use atenex_analytics::core::{
    LateReason, LateRecord, Output, Settings, WatermarkMode, WindowResult,
};
use atenex_analytics::decode::decode_record;
use atenex_landing::config::{LandingConfig, Partitioner, TimestampExtractor};
use chrono::{TimeZone, Utc};
use std::collections::BTreeMap;

/// What the rules give for the analytics input: the window results and the records not counted,
/// in the order they are emitted (a window when the watermark reaches its end − 1, a record not
/// counted when it arrives), and the watermark after the last record.
pub struct Windows {
    pub outputs: Vec<Output>,
    pub watermark: Option<i64>,
}

/// The windows and late records of the analytics input (`embeddings.ready`) delivered in arrival
/// order without a crash, every partition assigned when the run's first record arrives, and the
/// watermark after the last record (before the end of input fires every window).
pub fn windows(log: &Log, s: &Settings) -> Windows {
    let streams: Vec<usize> = (0..log.streams.len())
        .filter(|i| log.streams[*i].topic == EMBEDDINGS)
        .collect();
    let order = log.delivery();
    let Some(&(s0, o0)) = order.first() else {
        return Windows {
            outputs: Vec::new(),
            watermark: None,
        };
    };
    let started = log.get(s0, o0).arrival;

    struct Part {
        max_ts: Option<i64>,
        last_active: i64,
    }
    let global = s.mode == WatermarkMode::Global;
    let mut parts: BTreeMap<i32, Part> = streams
        .iter()
        .map(|i| {
            let p = Part {
                max_ts: None,
                last_active: started,
            };
            (log.streams[*i].partition, p)
        })
        .collect();
    /// The watermark, the open windows' counts, and what was emitted, in order.
    #[derive(Default)]
    struct State {
        watermark: Option<i64>,
        open: BTreeMap<(i64, String), u64>,
        outputs: Vec<Output>,
    }
    let mut st = State::default();
    let size = s.window_ms;
    let start_of = |ts: i64| ts - ts.rem_euclid(size);

    // The watermark at `now`: the minimum of max − out-of-orderness − 1 over the partitions that
    // are not idle (one of them without a record yet: none); it never goes back. Windows whose
    // last millisecond it reaches fire, oldest first, companies in byte order.
    let advance = |parts: &BTreeMap<i32, Part>, st: &mut State, now: i64| {
        let active: Vec<&Part> = parts
            .values()
            .filter(|p| now - p.last_active < s.idle_timeout_ms)
            .collect();
        let candidate = if global {
            // One watermark over all records, idleness aside.
            parts
                .values()
                .filter_map(|p| p.max_ts)
                .max()
                .map(|m| m - s.out_of_orderness_ms - 1)
        } else if active.is_empty() || active.iter().any(|p| p.max_ts.is_none()) {
            None
        } else {
            active
                .iter()
                .map(|p| p.max_ts.unwrap() - s.out_of_orderness_ms - 1)
                .min()
        };
        if let Some(c) = candidate
            && st.watermark.is_none_or(|w| c > w)
        {
            st.watermark = Some(c);
            let due: Vec<(i64, String)> = st
                .open
                .keys()
                .filter(|(start, _)| start + size - 1 <= c)
                .cloned()
                .collect();
            for key in due {
                let count = st.open.remove(&key).unwrap();
                st.outputs.push(Output::Window(WindowResult {
                    start: key.0,
                    end: key.0 + size,
                    company_id: key.1,
                    count,
                }));
            }
        }
    };

    let mut now = started;
    for (stream, offset) in order {
        if !streams.contains(&stream) {
            continue;
        }
        let r = log.get(stream, offset);
        let partition = log.streams[stream].partition;
        now = now.max(r.arrival);
        // Processing time first: partitions may have gone idle since the last record.
        advance(&parts, &mut st, now);
        let part = parts.get_mut(&partition).expect("assigned");
        part.last_active = now;
        let Ok((keys, ts)) = decode_record(r.value.as_deref(), Some(r.ts)) else {
            continue; // a dead letter: it only shows the partition is alive
        };
        let start = start_of(ts);
        let not_counted = |reason| LateRecord {
            chunk_id: keys.chunk_id.to_string(),
            document_id: keys.document_id.to_string(),
            company_id: keys.company_id.to_string(),
            partition,
            offset,
            ts,
            window_start: start,
            watermark: st.watermark,
            reason,
        };
        if ts > now.saturating_add(s.max_future_skew_ms) {
            // Too far ahead of the clock: not counted, and it does not move the watermark.
            st.outputs
                .push(Output::Late(not_counted(LateReason::FutureTimestamp)));
            continue;
        }
        if st.watermark.is_some_and(|w| start + size - 1 <= w) {
            st.outputs.push(Output::Late(not_counted(LateReason::Late)));
        } else {
            *st.open
                .entry((start, keys.company_id.to_string()))
                .or_default() += 1;
        }
        // Late records move the watermark too (the watermark generator sees every record).
        part.max_ts = Some(part.max_ts.map_or(ts, |m| m.max(ts)));
        advance(&parts, &mut st, now);
    }
    // End of input: every open window fires.
    for ((start, company_id), count) in std::mem::take(&mut st.open) {
        st.outputs.push(Output::Window(WindowResult {
            start,
            end: start + size,
            company_id,
            count,
        }));
    }
    Windows {
        outputs: st.outputs,
        watermark: st.watermark,
    }
}

/// A committed file of the reference: the (stream, offset) of each record in it, in order.
pub type RefFiles = BTreeMap<String, Vec<(usize, i64)>>;

/// A file the reference committed.
struct RefCommitted {
    path: String,
    first: i64,
    last: i64,
    offsets: Vec<i64>,
    /// The step whose handling committed it.
    step: usize,
}

/// One Kafka partition's files as the connector's rules keep them.
#[derive(Default)]
struct RefPartition {
    /// Open files by their directory: (first offset, last offset, offsets).
    open: BTreeMap<String, (i64, i64, Vec<i64>)>,
    /// Records in the open files.
    count: u64,
    /// Rotation time of the first record since the last commit.
    base: Option<i64>,
    /// The next scheduled rotation (set when the first file opens).
    scheduled: Option<i64>,
    /// Processing time of the last record written.
    last_write: i64,
    /// Offsets below it are landed already (redelivered ones are skipped).
    next: Option<i64>,
}

/// The files the landing must have committed, from the model driver's steps; every way the run's
/// recovery disagrees with the rules is a problem.
pub fn landing_files(
    log: &Log,
    config: &LandingConfig,
    trace: &[LandingStep],
    crashes: &[Crash],
) -> Result<RefFiles, Vec<String>> {
    let c = config;
    let tz = match &c.partitioner {
        Partitioner::TimeBased { timezone, .. } => *timezone,
        Partitioner::Default => chrono_tz::UTC,
    };
    let wallclock = c.timestamp_extractor == TimestampExtractor::Wallclock;
    let pad = c.offset_pad_width;
    let mut parts: Vec<RefPartition> = log.streams.iter().map(|_| Default::default()).collect();
    // Committed files per stream.
    let mut committed: Vec<Vec<RefCommitted>> = log.streams.iter().map(|_| Vec::new()).collect();
    let mut problems = Vec::new();

    // The first schedule boundary after `now`: midnight in the time zone plus whole intervals.
    let boundary = |now: i64, every: i64| -> i64 {
        let local = Utc.timestamp_millis_opt(now).unwrap().with_timezone(&tz);
        let midnight = tz
            .from_local_datetime(&local.date_naive().and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .map_or(now, |m| m.timestamp_millis());
        let mut b = midnight;
        while b <= now {
            b += every;
        }
        b
    };
    let commit =
        |stream: usize, p: &mut RefPartition, committed: &mut [Vec<RefCommitted>], step: usize| {
            let s = &log.streams[stream];
            for (dir, (first, last, offsets)) in std::mem::take(&mut p.open) {
                let path = format!(
                    "{}/{}/{dir}/{}+{}+{first:0pad$}+{last:0pad$}.json",
                    c.topics_dir, s.topic, s.topic, s.partition
                );
                committed[stream].push(RefCommitted {
                    path,
                    first,
                    last,
                    offsets,
                    step,
                });
            }
            p.count = 0;
            p.base = None;
            p.scheduled = None;
        };

    // Per stream, the instance its partition is assigned to.
    let mut owner: Vec<Option<usize>> = vec![None; log.streams.len()];
    for (step, st) in trace.iter().enumerate() {
        match *st {
            LandingStep::Record {
                stream,
                offset,
                now,
                instance,
            } => {
                if owner[stream] != Some(instance) {
                    problems.push(format!(
                        "step {step}: {}[{}]@{offset} was handed to instance {instance}, its partition is assigned to {:?}",
                        log.streams[stream].topic, log.streams[stream].partition, owner[stream]
                    ));
                }
                let r = log.get(stream, offset);
                let value = r.value.as_deref().unwrap_or(b"null");
                let Ok((ts, _)) =
                    atenex_landing::sink::place(&c.timestamp_extractor, Some(r.ts), value, now)
                else {
                    continue; // refused: a dead letter, nothing is written or committed
                };
                // What processing time makes due is committed before the record is written, in
                // every partition of the instance.
                for (i, p) in parts.iter_mut().enumerate() {
                    if p.open.is_empty() || owner[i] != Some(instance) {
                        continue;
                    }
                    let interval = wallclock
                        && c.rotate_interval_ms
                            .zip(p.base)
                            .is_some_and(|(every, base)| now - base >= every);
                    let scheduled = p.scheduled.is_some_and(|t| now >= t);
                    let idle = now - p.last_write >= c.idle_commit_ms;
                    if interval || scheduled || idle {
                        commit(i, p, &mut committed, step);
                    }
                }
                let p = &mut parts[stream];
                if p.next.is_some_and(|n| offset < n) {
                    continue;
                }
                let rotation_time = if wallclock { now } else { ts };
                if !p.open.is_empty() {
                    let interval = c
                        .rotate_interval_ms
                        .zip(p.base)
                        .is_some_and(|(every, base)| rotation_time - base >= every);
                    let scheduled = p.scheduled.is_some_and(|t| now >= t);
                    if interval || scheduled {
                        commit(stream, p, &mut committed, step);
                    }
                }
                if p.open.is_empty() {
                    p.base = Some(rotation_time);
                    p.scheduled = c.rotate_schedule_interval_ms.map(|e| boundary(now, e));
                }
                let dir = atenex_landing::partitioner::encode(
                    &c.partitioner,
                    log.streams[stream].partition,
                    ts,
                );
                let file = p.open.entry(dir).or_insert((offset, offset, Vec::new()));
                file.1 = offset;
                file.2.push(offset);
                p.count += 1;
                p.next = Some(offset + 1);
                p.last_write = now;
                if p.count >= c.flush_size {
                    commit(stream, p, &mut committed, step);
                }
            }
            LandingStep::Flush { instance } => {
                for (i, p) in parts.iter_mut().enumerate() {
                    if owner[i] == Some(instance) {
                        commit(i, p, &mut committed, step);
                    }
                }
            }
            LandingStep::Revoke { stream } => {
                // Its open files are discarded; its next owner resumes after what is committed.
                owner[stream] = None;
                parts[stream] = RefPartition::default();
            }
            LandingStep::Assign {
                stream,
                instance,
                resume,
            } => {
                let s = &log.streams[stream];
                let kept = committed[stream].iter().map(|f| f.last + 1).max();
                if kept != resume {
                    problems.push(format!(
                        "step {step}: instance {instance} was assigned {}[{}] and resumed at {resume:?}; by the connector's rules the committed files end at {kept:?}",
                        s.topic, s.partition
                    ));
                }
                owner[stream] = Some(instance);
                parts[stream] = RefPartition {
                    next: resume,
                    ..Default::default()
                };
            }
            LandingStep::Crash { n, instance } => {
                // The step before failed. Per partition of the instance that died, its commits
                // either completed (recovery finished them) or not (their records come again);
                // earlier commits must stand.
                let failed = step.saturating_sub(1);
                let crash = &crashes[n];
                for (i, s) in log.streams.iter().enumerate() {
                    let Some(&resume) = crash.resume.get(&(s.topic.clone(), s.partition)) else {
                        continue;
                    };
                    owner[i] = Some(instance);
                    let below = resume.unwrap_or(0);
                    committed[i].retain(|f| {
                        let path = &f.path;
                        if f.last < below {
                            return true;
                        }
                        if f.first < below {
                            problems.push(format!(
                                "crash at step {}: recovery resumed {}[{}] at {below}, inside {path}",
                                crash.step, s.topic, s.partition
                            ));
                        } else if f.step != failed {
                            problems.push(format!(
                                "crash at step {}: {path}, committed before it, is gone",
                                crash.step
                            ));
                        }
                        false
                    });
                    let kept = committed[i].iter().map(|f| f.last + 1).max();
                    if kept != resume {
                        problems.push(format!(
                            "crash at step {}: recovery resumed {}[{}] at {resume:?}; by the connector's rules the committed files end at {kept:?}",
                            crash.step, s.topic, s.partition
                        ));
                    }
                    parts[i] = RefPartition {
                        next: resume,
                        ..Default::default()
                    };
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(committed
        .into_iter()
        .enumerate()
        .flat_map(|(stream, files)| {
            files.into_iter().map(move |f| {
                let records = f.offsets.into_iter().map(|o| (stream, o)).collect();
                (f.path, records)
            })
        })
        .collect())
}
