//! The worked examples of Flink's window semantics (docs/semantics.md), one test each.

use super::*;

const S: i64 = 1_000;
const MIN: i64 = 60 * S;

fn core(mode: WatermarkMode) -> WindowCore {
    WindowCore::new(Settings {
        mode,
        ..Settings::default()
    })
}

fn ev(partition: i32, offset: i64, ts: i64, company: &str) -> Event<'static> {
    let company: &'static str = Box::leak(company.to_owned().into_boxed_str());
    Event {
        partition,
        offset,
        ts,
        chunk_id: "c",
        document_id: "d",
        company_id: company,
    }
}

fn windows(out: &[Output]) -> Vec<(i64, &str, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Window(w) => Some((w.start, w.company_id.as_str(), w.count)),
            _ => None,
        })
        .collect()
}

fn lates(out: &[Output]) -> Vec<(i64, LateReason, Option<i64>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Late(l) => Some((l.ts, l.reason, l.watermark)),
            _ => None,
        })
        .collect()
}

#[test]
fn window_start_floors_including_negative_timestamps() {
    assert_eq!(window_start(125 * S, MIN), 120 * S);
    assert_eq!(window_start(120 * S, MIN), 120 * S);
    assert_eq!(window_start(119_999, MIN), 60 * S);
    assert_eq!(window_start(-1, MIN), -MIN);
    assert_eq!(window_start(0, MIN), 0);
}

#[test]
fn watermark_is_max_ts_minus_delay_minus_one() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    assert_eq!(c.watermark(), None);
    c.handle(&ev(0, 0, 10 * S, "a"), 0, &mut out);
    assert_eq!(c.watermark(), Some(10 * S - 5 * S - 1));
    c.handle(&ev(0, 1, 8 * S, "a"), 0, &mut out);
    assert_eq!(
        c.watermark(),
        Some(4_999),
        "an older record does not move it back"
    );
}

#[test]
fn window_fires_when_watermark_reaches_end_minus_one() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.handle(&ev(0, 0, 30 * S, "a"), 0, &mut out);
    // maxTs 64_999 → W = 59_998 < 59_999: not yet.
    c.handle(&ev(0, 1, 64_999, "a"), 0, &mut out);
    assert!(windows(&out).is_empty());
    // maxTs 65_000 → W = 59_999 = end - 1: fires.
    c.handle(&ev(0, 2, 65_000, "b"), 0, &mut out);
    assert_eq!(windows(&out), vec![(0, "a", 1)]);
    c.finish(&mut out);
    assert_eq!(
        windows(&out),
        vec![(0, "a", 1), (60 * S, "a", 1), (60 * S, "b", 1)],
        "[60 s, 120 s) was still open"
    );
}

#[test]
fn late_iff_the_window_already_fired_and_older_than_watermark_still_counts() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.handle(&ev(0, 0, 62 * S, "a"), 0, &mut out); // W = 56_999
    // 58 s is older than W, but [0, 60 s) has not fired: it counts.
    c.handle(&ev(0, 1, 58 * S, "a"), 0, &mut out);
    c.handle(&ev(0, 2, 70 * S, "a"), 0, &mut out); // W = 64_999: [0,60) fires
    assert_eq!(windows(&out), vec![(0, "a", 1)]);
    // Now [0, 60 s) has fired: 59 s is late, reported with the watermark it met.
    c.handle(&ev(0, 3, 59 * S, "a"), 0, &mut out);
    assert_eq!(lates(&out), vec![(59 * S, LateReason::Late, Some(64_999))]);
    // 61 s is older than W too, but its window [60 s, 120 s) is open: it counts.
    c.handle(&ev(0, 4, 61 * S, "a"), 0, &mut out);
    c.finish(&mut out);
    assert_eq!(windows(&out), vec![(0, "a", 1), (60 * S, "a", 3)]);
}

#[test]
fn a_record_never_makes_itself_late() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.handle(&ev(0, 0, 200 * S, "a"), 0, &mut out);
    assert!(lates(&out).is_empty());
    c.finish(&mut out);
    assert_eq!(windows(&out), vec![(180 * S, "a", 1)]);
}

#[test]
fn operator_watermark_is_the_minimum_over_partitions() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.handle(&ev(0, 0, 100 * S, "a"), 0, &mut out);
    c.handle(&ev(1, 0, 20 * S, "b"), 0, &mut out);
    assert_eq!(
        c.watermark(),
        Some(95 * S - 1),
        "the first partition set it alone"
    );
    c.handle(&ev(0, 1, 130 * S, "a"), 0, &mut out);
    assert_eq!(
        c.watermark(),
        Some(95 * S - 1),
        "partition 1 (W_1 = 14 999) holds it back; it never goes back"
    );
    c.handle(&ev(1, 1, 140 * S, "b"), 0, &mut out);
    assert_eq!(c.watermark(), Some(125 * S - 1), "min(129 999, 134 999)");
}

#[test]
fn global_mode_keeps_one_watermark_over_all_records() {
    let mut c = core(WatermarkMode::Global);
    let mut out = vec![];
    c.handle(&ev(0, 0, 100 * S, "a"), 0, &mut out);
    c.handle(&ev(1, 0, 20 * S, "b"), 0, &mut out);
    assert_eq!(
        lates(&out),
        vec![(20 * S, LateReason::Late, Some(95 * S - 1))],
        "the seed job drops it"
    );
    assert_eq!(c.watermark(), Some(95 * S - 1));
}

#[test]
fn an_assigned_partition_without_data_holds_back_until_idle_then_rejoins() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.assign(0, 0);
    c.assign(1, 0);
    c.handle(&ev(0, 0, 100 * S, "a"), 1_000, &mut out);
    assert_eq!(c.watermark(), None, "partition 1 has no data yet");
    c.on_tick(59_999, &mut out);
    assert_eq!(c.watermark(), None);
    c.on_tick(60_000, &mut out);
    assert_eq!(
        c.watermark(),
        Some(95 * S - 1),
        "partition 1 is idle 60 s after its assignment, to the millisecond, and no longer holds back"
    );
    assert_eq!(windows(&out), vec![]);
    // Partition 1 rejoins. A record for [0, 60 s) is late now (W passed 59 999 while it was
    // idle); one for the open window [60 s, 120 s) counts. The operator watermark does not go
    // back, and partition 1 holds it back again while active.
    c.handle(&ev(1, 0, 30 * S, "b"), 61_000, &mut out);
    assert_eq!(
        lates(&out),
        vec![(30 * S, LateReason::Late, Some(95 * S - 1))]
    );
    c.handle(&ev(1, 1, 96 * S, "b"), 61_000, &mut out);
    assert_eq!(c.watermark(), Some(95 * S - 1));
    c.handle(&ev(0, 1, 200 * S, "a"), 62_000, &mut out);
    assert_eq!(
        c.watermark(),
        Some(95 * S - 1),
        "min(194 999, 90 999) is below it"
    );
    // All partitions idle: the watermark stays where it is.
    c.on_tick(1_000_000, &mut out);
    assert_eq!(c.watermark(), Some(95 * S - 1));
    c.finish(&mut out);
    assert_eq!(
        windows(&out),
        vec![(60 * S, "a", 1), (60 * S, "b", 1), (180 * S, "a", 1)]
    );
}

#[test]
fn a_partition_active_again_after_all_went_idle_goes_idle_on_a_tick_alone() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.assign(0, 0);
    c.assign(1, 0);
    c.handle(&ev(0, 0, 100 * S, "a"), 0, &mut out);
    c.handle(&ev(1, 0, 50 * S, "b"), 0, &mut out);
    assert_eq!(c.watermark(), Some(45 * S - 1));
    c.on_tick(60_000, &mut out);
    // Dead letters only: both partitions are active again, partition 1 until 130 s, partition 0
    // until 160 s.
    c.skip(1, 1, 70_000);
    c.skip(0, 1, 100_000);
    c.on_tick(129_999, &mut out);
    assert_eq!(c.watermark(), Some(45 * S - 1));
    assert_eq!(windows(&out), vec![]);
    c.on_tick(130_000, &mut out);
    assert_eq!(
        c.watermark(),
        Some(95 * S - 1),
        "partition 1 went idle at 130 s: partition 0 alone sets the watermark"
    );
    assert_eq!(windows(&out), vec![(0, "b", 1)]);
}

#[test]
fn a_far_future_timestamp_is_rejected_and_does_not_make_correct_data_late() {
    let mut c = core(WatermarkMode::Global);
    let mut out = vec![];
    let now = 1_764_201_600_000;
    c.handle(&ev(0, 0, now - 10 * S, "a"), now, &mut out);
    c.handle(&ev(0, 1, now + 2 * 3_600 * S, "a"), now, &mut out);
    assert_eq!(
        lates(&out),
        vec![(
            now + 7_200 * S,
            LateReason::FutureTimestamp,
            Some(now - 15 * S - 1)
        )]
    );
    assert_eq!(
        c.watermark(),
        Some(now - 15 * S - 1),
        "the watermark did not jump"
    );
    c.handle(&ev(0, 2, now - 9 * S, "a"), now, &mut out);
    assert_eq!(lates(&out).len(), 1, "correct data is not late");
    // At the skew exactly it is accepted.
    c.handle(&ev(0, 3, now + 3_600 * S, "a"), now, &mut out);
    assert_eq!(lates(&out).len(), 1, "the cap itself is within the skew");
    assert_eq!(c.watermark(), Some(now + 3_595 * S - 1));
}

#[test]
fn end_of_input_fires_every_open_window_in_order() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    for (i, (ts, company)) in [(61 * S, "a"), (122 * S, "b"), (62 * S, "a"), (121 * S, "c")]
        .iter()
        .enumerate()
    {
        c.handle(&ev(0, i as i64, *ts, company), 0, &mut out);
    }
    assert_eq!(c.watermark(), Some(117 * S - 1));
    assert!(out.is_empty(), "both windows still open");
    c.finish(&mut out);
    assert_eq!(
        windows(&out),
        vec![(60 * S, "a", 2), (120 * S, "b", 1), (120 * S, "c", 1)]
    );
    let mut again = vec![];
    c.finish(&mut again);
    assert!(again.is_empty(), "nothing is left open");
}

#[test]
fn empty_input_emits_nothing() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.on_tick(10_000_000, &mut out);
    c.finish(&mut out);
    assert!(out.is_empty());
    assert_eq!(
        c.checkpoint(),
        Checkpoint {
            watermark: None,
            partitions: vec![]
        }
    );
}

#[test]
fn duplicates_are_counted_twice_as_flink_does() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.handle(&ev(0, 0, S, "a"), 0, &mut out);
    c.handle(&ev(0, 1, S, "a"), 0, &mut out);
    c.finish(&mut out);
    assert_eq!(windows(&out), vec![(0, "a", 2)]);
}

#[test]
fn results_of_one_firing_are_ordered_by_window_start_then_company() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    for (i, (ts, company)) in [
        (61 * S, "b"),
        (S, "c"),
        (62 * S, "a"),
        (2 * S, "a"),
        (3 * S, "c"),
    ]
    .iter()
    .enumerate()
    {
        c.handle(&ev(0, i as i64, *ts, company), 0, &mut out);
    }
    c.handle(&ev(0, 9, 500 * S, "x"), 0, &mut out);
    assert_eq!(
        windows(&out),
        vec![(0, "a", 1), (0, "c", 2), (60 * S, "a", 1), (60 * S, "b", 1)]
    );
}

#[test]
fn checkpoint_resume_offset_is_the_oldest_record_of_an_open_window() {
    let mut c = core(WatermarkMode::PerPartition);
    let mut out = vec![];
    c.handle(&ev(0, 10, S, "a"), 0, &mut out);
    c.handle(&ev(0, 11, 70 * S, "a"), 0, &mut out); // fires [0,60)
    c.handle(&ev(1, 5, 71 * S, "a"), 0, &mut out);
    c.handle(&ev(0, 12, 72 * S, "a"), 0, &mut out);
    let cp = c.checkpoint();
    assert_eq!(cp.watermark, Some(66 * S - 1), "min(66 999, 65 999)");
    assert_eq!(
        cp.partitions,
        vec![
            PartitionCheckpoint {
                partition: 0,
                resume_offset: 11,
                handled_offset: 13,
                max_ts: Some(72 * S)
            },
            PartitionCheckpoint {
                partition: 1,
                resume_offset: 5,
                handled_offset: 6,
                max_ts: Some(71 * S)
            },
        ]
    );
}
