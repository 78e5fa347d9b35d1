use super::*;
use crate::path_format::PathFormat;

const H: i64 = 3_600_000;
/// 2026-11-27T22:00:00Z
const T0: i64 = 1_795_816_800_000;

fn hourly(tz: Tz) -> Partitioner {
    let pattern = "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH".to_owned();
    Partitioner::TimeBased {
        duration_ms: H,
        path_format: PathFormat::parse(&pattern).unwrap(),
        pattern,
        timezone: tz,
        locale: "en_US".into(),
    }
}

fn settings(flush: u64) -> WriterSettings {
    WriterSettings {
        topic: "t".into(),
        partition: 0,
        topics_dir: "/l".into(),
        logs_dir: "/logs".into(),
        flush_size: flush,
        rotate_interval_ms: None,
        rotate_schedule_interval_ms: None,
        idle_commit_ms: None,
        pad: 3,
        partitioner: hourly(chrono_tz::UTC),
        wallclock: false,
        timezone: chrono_tz::UTC,
        owner: "w1".into(),
    }
}

/// The final paths of the commits in `out`, each commit as one list.
fn commits(out: &[Command]) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut current = Vec::new();
    for c in out {
        match c {
            Command::Rename { to, .. } => current.push(to.clone()),
            Command::Truncate { path } if path.ends_with("/log") => {
                all.push(std::mem::take(&mut current))
            }
            _ => {}
        }
    }
    all
}

#[test]
fn flush_size_counts_across_open_files_and_commits_them_together() {
    let mut w = PartitionWriter::new(settings(4), None);
    let mut out = vec![];
    for (o, ts) in [
        (0, T0),
        (1, T0 + H),
        (2, T0 + 10),
        (3, T0 + H + 10),
        (4, T0 + 20),
    ] {
        w.write(o, ts, b"{}", 0, &mut out);
    }
    assert_eq!(
        commits(&out),
        vec![vec![
            "/l/t/year=2026/month=11/day=27/hour=22/t+0+000+002.json".to_owned(),
            "/l/t/year=2026/month=11/day=27/hour=23/t+0+001+003.json".to_owned(),
        ]],
        "offset ranges have gaps: the missing offsets are in the sibling hour"
    );
    assert_eq!(w.pending(), 1);
    // The commit's order of effects: data synced, log block synced, renames, log emptied.
    let kinds: Vec<&str> = out
        .iter()
        .map(|c| match c {
            Command::Append { path, .. } if path.ends_with("/log") => "log",
            Command::Append { .. } => "append",
            Command::Sync { path } if path.ends_with("/log") => "sync-log",
            Command::Sync { .. } => "sync",
            Command::Rename { .. } => "rename",
            Command::Truncate { .. } => "empty-log",
            Command::Delete { .. } | Command::Release { .. } => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "append",
            "sync",
            "append",
            "sync",
            "log",
            "sync-log",
            "rename",
            "rename",
            "empty-log"
        ]
    );
}

#[test]
fn record_time_rotation_sends_the_triggering_record_to_the_next_file() {
    let mut s = settings(100);
    s.rotate_interval_ms = Some(10 * 60_000);
    let mut w = PartitionWriter::new(s, None);
    let mut out = vec![];
    w.write(0, T0, b"{}", 0, &mut out);
    w.write(1, T0 + 9 * 60_000, b"{}", 0, &mut out);
    assert!(commits(&out).is_empty());
    w.write(2, T0 + 10 * 60_000, b"{}", 0, &mut out);
    assert_eq!(
        commits(&out),
        vec![vec![
            "/l/t/year=2026/month=11/day=27/hour=22/t+0+000+001.json".to_owned()
        ]]
    );
    assert_eq!(w.pending(), 1, "offset 2 opened the next file");
    // Ticks do not rotate on record time.
    w.tick(i64::MAX / 2, &mut out);
    assert_eq!(commits(&out).len(), 1);
}

#[test]
fn a_late_record_opens_a_new_file_in_its_own_hour() {
    let mut w = PartitionWriter::new(settings(2), None);
    let mut out = vec![];
    w.write(0, T0 + H, b"{}", 0, &mut out);
    w.write(1, T0 + H + 1, b"{}", 0, &mut out); // commits hour 23
    w.write(2, T0 + 5, b"{}", 0, &mut out); // late: hour 22
    w.flush(&mut out);
    assert_eq!(
        commits(&out),
        vec![
            vec!["/l/t/year=2026/month=11/day=27/hour=23/t+0+000+001.json".to_owned()],
            vec!["/l/t/year=2026/month=11/day=27/hour=22/t+0+002+002.json".to_owned()],
        ]
    );
}

#[test]
fn wallclock_rotation_idle_commit_and_redeliveries() {
    let mut s = settings(100);
    s.wallclock = true;
    s.rotate_interval_ms = Some(60_000);
    s.idle_commit_ms = Some(300_000);
    let mut w = PartitionWriter::new(s, Some(5));
    let mut out = vec![];
    w.write(4, T0, b"{}", 1_000, &mut out);
    assert_eq!(w.pending(), 0, "below the resume offset: already committed");
    w.write(5, T0, b"{}", 1_000, &mut out);
    w.write(5, T0, b"{}", 2_000, &mut out);
    assert_eq!(w.pending(), 1, "a redelivery is skipped");
    w.tick(60_999, &mut out);
    assert!(commits(&out).is_empty());
    w.tick(61_000, &mut out);
    assert_eq!(
        commits(&out).len(),
        1,
        "wall-clock interval from the first record"
    );
    let mut s = settings(100);
    s.idle_commit_ms = Some(300_000);
    let mut w = PartitionWriter::new(s, None);
    w.write(0, T0, b"{}", 1_000, &mut out);
    w.tick(300_999, &mut out);
    assert_eq!(commits(&out).len(), 1);
    w.tick(301_000, &mut out);
    assert_eq!(
        commits(&out).len(),
        2,
        "idle: nothing waits in +tmp on a quiet partition"
    );
}

#[test]
fn scheduled_rotation_is_aligned_to_midnight_in_the_time_zone() {
    let madrid = chrono_tz::Europe::Madrid;
    // 2026-11-27T22:30Z = 23:30 in Madrid; 6-hour schedule: next boundary local 00:00 = 23:00Z.
    assert_eq!(next_boundary(T0 + 30 * 60_000, 6 * H, madrid), T0 + H);
    assert_eq!(
        next_boundary(T0 + H, 6 * H, madrid),
        T0 + 7 * H,
        "a boundary itself: the next one"
    );
    let mut s = settings(100);
    s.rotate_schedule_interval_ms = Some(6 * H);
    s.timezone = madrid;
    s.partitioner = hourly(madrid);
    let mut w = PartitionWriter::new(s, None);
    let mut out = vec![];
    w.write(0, T0 + 30 * 60_000, b"{}", T0 + 30 * 60_000, &mut out);
    w.tick(T0 + H - 1, &mut out);
    assert!(commits(&out).is_empty());
    w.tick(T0 + H, &mut out);
    assert_eq!(
        commits(&out),
        vec![vec![
            "/l/t/year=2026/month=11/day=27/hour=23/t+0+000+000.json".to_owned()
        ]]
    );
    // A record after the boundary also commits first (checked on records too).
    w.write(1, T0 + H + 1, b"{}", T0 + H + 1, &mut out);
    w.write(2, T0 + 7 * H, b"{}", T0 + 7 * H, &mut out);
    assert_eq!(commits(&out).len(), 2);
}

#[test]
fn revoke_discards_open_files() {
    let mut w = PartitionWriter::new(settings(100), None);
    let mut out = vec![];
    w.write(0, T0, &[b'x'; APPEND_CHUNK], 0, &mut out);
    assert!(
        matches!(out.as_slice(), [Command::Append { .. }]),
        "large buffers go to the temp file early"
    );
    out.clear();
    w.revoke(&mut out);
    assert_eq!(
        out,
        vec![Command::Delete {
            path: "/l/+tmp/t/year=2026/month=11/day=27/hour=22/t+0+000+w1_tmp.json".into()
        }]
    );
    assert_eq!(w.pending(), 0);
}
