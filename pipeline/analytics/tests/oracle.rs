//! The window core against a brute-force oracle written from the definitions (docs/semantics.md, Flink event-time windows), on
//! random streams with random disorder, partitions, idleness and far-future timestamps; and the
//! checkpoint/restore path against an uninterrupted run.

use atenex_analytics::core::{
    Checkpoint, Event, LateReason, Output, PartitionCheckpoint, Settings, WatermarkMode,
    WindowCore, window_start,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct Rec {
    partition: i32,
    offset: i64,
    ts: i64,
    company: String,
    now: i64,
}

/// Streams: per-partition base times advancing with bounded jitter, processing time advancing,
/// occasional long silences of a partition (idleness), occasional far-future timestamps.
fn stream() -> impl Strategy<Value = Vec<Rec>> {
    proptest::collection::vec(
        (0i32..4, 0i64..20, -15i64..15, 0usize..5, 0i64..4, 0u8..100),
        0..250,
    )
    .prop_map(|steps| {
        let mut offsets = [0i64; 4];
        let mut clock = 1_700_000_000_000i64;
        let mut out = Vec::new();
        for (partition, advance, jitter, company, tick, dice) in steps {
            // Partition 3 speaks rarely: it goes idle in between.
            if partition == 3 && dice > 15 {
                continue;
            }
            // Whole seconds, so that watermarks land exactly on window ends often.
            clock += (advance / 4 + tick) * 1_000;
            let ts = if dice == 0 {
                clock + 10 * 3_600_000
            } else {
                clock + jitter * 1_000
            };
            let p = partition as usize;
            out.push(Rec {
                partition,
                offset: offsets[p],
                ts,
                company: format!("c{company}"),
                now: clock + 500,
            });
            offsets[p] += 1;
        }
        out
    })
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        prop_oneof![Just(10_000i64), Just(60_000)],
        prop_oneof![Just(0i64), Just(5_000)],
        prop_oneof![
            Just(WatermarkMode::PerPartition),
            Just(WatermarkMode::Global)
        ],
        prop_oneof![Just(8_000i64), Just(60_000)],
    )
        .prop_map(
            |(window_ms, out_of_orderness_ms, mode, idle_timeout_ms)| Settings {
                window_ms,
                out_of_orderness_ms,
                mode,
                idle_timeout_ms,
                max_future_skew_ms: 3_600_000,
            },
        )
}

type Windows = Vec<(i64, String, u64)>;
type Lates = Vec<(usize, LateReason, Option<i64>)>;

/// Straight from the definitions, recomputing everything from the prefix at each step (index
/// loops on purpose: they read as the definitions do).
#[allow(clippy::needless_range_loop)]
fn oracle(s: &Settings, recs: &[Rec]) -> (Windows, Lates) {
    let mut w: Option<i64> = None;
    let mut lates = Vec::new();
    let mut accepted: Vec<usize> = Vec::new();
    for i in 0..recs.len() {
        let r = &recs[i];
        let start = window_start(r.ts, s.window_ms);
        if r.ts > r.now + s.max_future_skew_ms {
            lates.push((i, LateReason::FutureTimestamp, w));
        } else if w.is_some_and(|w| start + s.window_ms - 1 <= w) {
            lates.push((i, LateReason::Late, w));
        } else {
            accepted.push(i);
        }
        // Watermark after record i, from the prefix 0..=i.
        let not_future = |j: &usize| recs[*j].ts <= recs[*j].now + s.max_future_skew_ms;
        let candidate = match s.mode {
            WatermarkMode::Global => (0..=i)
                .filter(not_future)
                .map(|j| recs[j].ts)
                .max()
                .map(|m| m - s.out_of_orderness_ms - 1),
            WatermarkMode::PerPartition => {
                let mut parts: BTreeMap<i32, (i64, Option<i64>)> = BTreeMap::new();
                for j in 0..=i {
                    let e = parts.entry(recs[j].partition).or_insert((0, None));
                    e.0 = recs[j].now;
                    if not_future(&j) {
                        e.1 = Some(e.1.map_or(recs[j].ts, |m: i64| m.max(recs[j].ts)));
                    }
                }
                let active: Vec<Option<i64>> = parts
                    .values()
                    .filter(|(last, _)| r.now - last < s.idle_timeout_ms)
                    .map(|(_, m)| *m)
                    .collect();
                if active.is_empty() || active.iter().any(Option::is_none) {
                    None
                } else {
                    active
                        .iter()
                        .map(|m| m.unwrap() - s.out_of_orderness_ms - 1)
                        .min()
                }
            }
        };
        if let Some(c) = candidate {
            w = Some(w.map_or(c, |w| w.max(c)));
        }
    }
    let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for i in accepted {
        *counts
            .entry((
                window_start(recs[i].ts, s.window_ms),
                recs[i].company.clone(),
            ))
            .or_default() += 1;
    }
    (
        counts.into_iter().map(|((s, c), n)| (s, c, n)).collect(),
        lates,
    )
}

fn event(r: &Rec) -> Event<'_> {
    Event {
        partition: r.partition,
        offset: r.offset,
        ts: r.ts,
        chunk_id: "x",
        document_id: "d",
        company_id: &r.company,
    }
}

fn run(core: &mut WindowCore, recs: &[Rec], out: &mut Vec<Output>) {
    for r in recs {
        core.handle(&event(r), r.now, out);
    }
}

fn split(recs: &[Rec], out: &[Output]) -> (Windows, Lates) {
    let mut windows = Vec::new();
    let mut lates = Vec::new();
    for o in out {
        match o {
            Output::Window(w) => {
                assert_eq!(w.end, w.start + (w.end - w.start));
                windows.push((w.start, w.company_id.clone(), w.count));
            }
            Output::Late(l) => {
                let i = recs
                    .iter()
                    .position(|r| r.partition == l.partition && r.offset == l.offset)
                    .unwrap();
                assert_eq!(
                    (l.ts, l.company_id.as_str()),
                    (recs[i].ts, recs[i].company.as_str())
                );
                lates.push((i, l.reason, l.watermark));
            }
        }
    }
    (windows, lates)
}

/// Per-partition disorder below the watermark delay, no idleness, no future timestamps: no
/// record can be late, whatever the interleaving of partitions (as in the live crash test).
fn orderly_stream() -> impl Strategy<Value = Vec<Rec>> {
    proptest::collection::vec((0i32..3, 0i64..3, 0i64..3, 0usize..4), 0..200).prop_map(|steps| {
        let mut offsets = [0i64; 3];
        let mut clock = 1_700_000_000_000i64;
        steps
            .into_iter()
            .map(|(partition, advance, back, company)| {
                clock += advance * 1_000;
                let p = partition as usize;
                offsets[p] += 1;
                Rec {
                    partition,
                    offset: offsets[p] - 1,
                    ts: clock - back * 1_000,
                    company: format!("c{company}"),
                    now: clock,
                }
            })
            .collect()
    })
}

/// A random merge of `recs` that keeps each partition's order (a consumer's fetch order).
fn interleave(recs: Vec<Rec>, mut seed: u64) -> Vec<Rec> {
    let mut queues: BTreeMap<i32, std::collections::VecDeque<Rec>> = BTreeMap::new();
    for r in recs {
        queues.entry(r.partition).or_default().push_back(r);
    }
    let mut out = Vec::new();
    while queues.values().any(|q| !q.is_empty()) {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let live: Vec<i32> = queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, _)| *p)
            .collect();
        let p = live[(seed >> 33) as usize % live.len()];
        out.push(queues.get_mut(&p).unwrap().pop_front().unwrap());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// As the live job runs: every record is a committed transaction; at each crash point the
    /// state is lost and restored from what Kafka keeps — per partition, the last committed offset
    /// and metadata (a transaction commits only the partitions the process has handled) — and the
    /// consumer re-reads each partition from its committed offset, in any interleaving.
    /// Crashes may hit while partitions are still catching up from the previous one.
    #[test]
    fn restarts_with_any_fetch_interleaving_give_the_same_windows(
        recs in orderly_stream(),
        crashes in proptest::collection::vec(0usize..120, 0..4),
        seed in any::<u64>(),
    ) {
        let s = Settings { window_ms: 10_000, out_of_orderness_ms: 5_000, mode: WatermarkMode::PerPartition, idle_timeout_ms: i64::MAX / 4, max_future_skew_ms: 3_600_000 };
        // As live: every partition is assigned from the start (and holds the watermark back until
        // it has data), so a partition first seen late cannot find its windows fired.
        let assigned = |c: &mut WindowCore| (0..3).for_each(|p| c.assign(p, 0));
        let mut whole = Vec::new();
        let mut core = WindowCore::new(s);
        assigned(&mut core);
        run(&mut core, &recs, &mut whole);
        core.finish(&mut whole);
        prop_assert!(whole.iter().all(|o| matches!(o, Output::Window(_))), "no late records by construction");

        // What Kafka keeps per partition: (resume offset, metadata).
        let mut kept: BTreeMap<i32, PartitionCheckpoint> = BTreeMap::new();
        let mut kept_wm: BTreeMap<i32, Option<i64>> = BTreeMap::new();
        let mut committed = Vec::new();
        let mut core = WindowCore::new(s);
        assigned(&mut core);
        let mut seed = seed;
        let mut crashes = crashes.into_iter();
        let mut next_crash = crashes.next();
        loop {
            let from = |p: i32| kept.get(&p).map_or(0, |c| c.resume_offset);
            let pending: Vec<Rec> = recs.iter().filter(|r| r.offset >= from(r.partition)).cloned().collect();
            seed = seed.wrapping_add(1);
            let mut crashed = false;
            for r in interleave(pending, seed) {
                if next_crash == Some(0) {
                    crashed = true;
                    break;
                }
                core.handle(&event(&r), r.now, &mut committed);
                let cp = core.checkpoint();
                for p in cp.partitions {
                    kept_wm.insert(p.partition, cp.watermark);
                    kept.insert(p.partition, p);
                }
                next_crash = next_crash.map(|n| n - 1);
            }
            if !crashed {
                break;
            }
            next_crash = crashes.next();
            let restored = Checkpoint {
                watermark: kept_wm.values().copied().max().flatten(),
                partitions: kept.values().copied().collect(),
            };
            core = WindowCore::new(s);
            core.restore(&restored, 0);
            assigned(&mut core);
        }
        core.finish(&mut committed);
        prop_assert_eq!(committed, whole);
    }

    #[test]
    fn the_core_agrees_with_the_oracle(s in settings(), recs in stream()) {
        let mut core = WindowCore::new(s);
        let mut out = Vec::new();
        run(&mut core, &recs, &mut out);
        core.finish(&mut out);
        let (windows, lates) = split(&recs, &out);
        let (want_windows, want_lates) = oracle(&s, &recs);
        // Windows fire in start order, companies in order: exactly the sorted oracle list.
        prop_assert_eq!(windows, want_windows);
        prop_assert_eq!(lates, want_lates);
        // accepted + late = input
        let counted: u64 = out.iter().filter_map(|o| match o { Output::Window(w) => Some(w.count), _ => None }).sum();
        let rejected = out.iter().filter(|o| matches!(o, Output::Late(_))).count() as u64;
        prop_assert_eq!(counted + rejected, recs.len() as u64);
    }

    #[test]
    fn a_restart_from_a_checkpoint_repeats_and_loses_nothing(
        s in settings(), recs in stream(), crash in any::<prop::sample::Index>(),
    ) {
        // Idleness depends on processing time, which a restart cannot replay: take it out.
        let s = Settings { idle_timeout_ms: i64::MAX / 4, ..s };
        let mut whole = Vec::new();
        let mut core = WindowCore::new(s);
        run(&mut core, &recs, &mut whole);
        core.finish(&mut whole);

        let k = if recs.is_empty() { 0 } else { crash.index(recs.len() + 1) };
        let mut before = WindowCore::new(s);
        let mut committed = Vec::new();
        run(&mut before, &recs[..k], &mut committed);
        let cp = before.checkpoint();
        drop(before); // the crash: state lost, committed outputs and checkpoint kept

        let mut after = WindowCore::new(s);
        after.restore(&cp, recs.get(k).map_or(0, |r| r.now));
        let resume: BTreeMap<i32, i64> = cp.partitions.iter().map(|p| (p.partition, p.resume_offset)).collect();
        let replayed: Vec<Rec> = recs[..k]
            .iter()
            .filter(|r| resume.get(&r.partition).is_some_and(|&o| r.offset >= o))
            .chain(&recs[k..])
            .cloned()
            .collect();
        run(&mut after, &replayed, &mut committed);
        after.finish(&mut committed);
        prop_assert_eq!(committed, whole);
    }
}
