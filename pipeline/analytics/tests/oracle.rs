//! The window core against a brute-force oracle written from the definitions (DESIGN §4.1), on
//! random streams with random disorder, partitions, idleness and far-future timestamps; and the
//! checkpoint/restore path against an uninterrupted run.

use atenex_analytics::core::{
    Event, LateReason, Output, Settings, WatermarkMode, WindowCore, window_start,
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

/// Straight from the definitions, recomputing everything from the prefix at each step.
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

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
        let (late, future) = core.rejected();
        prop_assert_eq!(counted + late + future, recs.len() as u64);
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
