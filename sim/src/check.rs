//! The invariants (docs/semantics.md, what the simulator checks), checked on every run; each violation is a sentence.

use crate::log::EMBEDDINGS;
use crate::outcome::{DailyReport, Outcome, split_outputs};
use crate::reference;
use atenex_analytics::core::Settings;
use atenex_analytics::core::window_start;
use atenex_analytics::decode::decode_record;
use atenex_landing::config::ErrorTolerance;
use atenex_landing::fs::Fs as _;
use std::collections::{BTreeMap, BTreeSet};

/// Files under the landing tree of `topic` (scenario name): path → content.
pub fn landing_files(o: &Outcome, topic: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = format!("{}/{}{topic}", o.config.topics_dir, o.prefix);
    o.fs.list(&dir)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let bytes = o.fs.read(&path).ok().flatten().unwrap_or_default();
            (path, bytes)
        })
        .collect()
}

/// Where a record lands: the directory its own timestamp gives (`None`: processing time decides) and
/// its line.
type Landed = (Option<String>, Vec<u8>);

/// The line the landing writes for a record, or `None` if it refuses it.
fn landed_line(o: &Outcome, ts: i64, value: Option<&[u8]>) -> Option<Vec<u8>> {
    atenex_landing::sink::place(
        &o.config.timestamp_extractor,
        Some(ts),
        value.unwrap_or(b"null"),
        0,
    )
    .ok()
    .map(|(_, v)| v.into_owned())
}

pub fn check(o: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    check_landing(o, &mut problems);
    check_landing_reference(o, &mut problems);
    check_analytics(o, &mut problems);
    check_analytics_reference(o, &mut problems);
    check_report(o, &mut problems);
    problems
}

/// Every record the landing accepts is in exactly one committed file, at its offset, as one line;
/// every one it refuses went to the dead-letter topic; recovery resumes at max committed end + 1.
fn check_landing(o: &Outcome, problems: &mut Vec<String>) {
    let tolerate = matches!(o.config.errors, ErrorTolerance::All { .. });
    let refused: BTreeSet<(&str, i32, i64)> = o
        .dead_letters
        .iter()
        .filter(|d| d.stage == "landing")
        .map(|d| (d.topic.as_str(), d.partition, d.offset))
        .collect();
    // Connect's rule for the dead-letter topic: errors.deadletterqueue.topic.name (with `.dlq`
    // appended when it lacks it: docs/landing.md), else `<topic>.dlq`.
    let named = match &o.config.errors {
        ErrorTolerance::All { dlq_topic } => dlq_topic.as_deref(),
        ErrorTolerance::None => None,
    };
    for d in o.dead_letters.iter().filter(|d| d.stage == "landing") {
        let want = match named.map(|n| n.strip_prefix(o.prefix.as_str()).unwrap_or(n)) {
            Some(n) if n.ends_with(".dlq") => n.to_owned(),
            Some(n) => format!("{n}.dlq"),
            None => format!("{}.dlq", d.topic),
        };
        if d.to != want {
            problems.push(format!(
                "landing dead letter {} {}[{}] went to {}, not {want}",
                d.topic, d.partition, d.offset, d.to
            ));
        }
    }
    for (topic, _) in o.log.topics() {
        let streams = o.log.of(&topic);
        // Each record's line as the landing writes it, or None if it refuses it (once per record),
        // with the directory its own timestamp puts it in when the extractor reads the record
        // (`Record`, `RecordField`); under `Wallclock` the directory is the processing time's.
        let by_record_time = !matches!(
            o.config.timestamp_extractor,
            atenex_landing::config::TimestampExtractor::Wallclock
        );
        let lines: Vec<Vec<Option<Landed>>> = streams
            .iter()
            .map(|s| {
                s.records
                    .iter()
                    .map(|r| {
                        let line = landed_line(o, r.ts, r.value.as_deref())?;
                        let dir = by_record_time.then(|| {
                            let ts = atenex_landing::sink::extract_timestamp(
                                &o.config.timestamp_extractor,
                                Some(r.ts),
                                r.value.as_deref().unwrap_or(b"null"),
                                0,
                            )
                            .unwrap_or_default();
                            atenex_landing::partitioner::encode(
                                &o.config.partitioner,
                                s.partition,
                                ts,
                            )
                        });
                        Some((dir, line))
                    })
                    .collect()
            })
            .collect();
        let prefixed = format!("{}{topic}", o.prefix);
        let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        for (path, bytes) in landing_files(o, &topic) {
            let Some((p, start, end)) = atenex_landing::recovery::parse_committed(&path, &prefixed)
            else {
                problems.push(format!("not a committed file: {path}"));
                continue;
            };
            let Some(stream_lines) = lines.get(p as usize) else {
                problems.push(format!("{path}: a partition the input does not have"));
                continue;
            };
            let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
            // The accepted records of start..=end that belong in this file's directory, in offset
            // order: a file's range can have gaps, whose records are in a sibling directory's file
            // (DESIGN §4.2), but its first and last offsets are its own.
            let mut expected = Vec::new();
            let mut held = Vec::new();
            let last = (end + 1).min(stream_lines.len() as i64);
            for offset in start.max(0)..last {
                if let Some((dir, line)) = &stream_lines[offset as usize] {
                    if dir
                        .as_ref()
                        .is_some_and(|d| !parent.ends_with(&format!("/{d}")))
                    {
                        continue;
                    }
                    expected.extend_from_slice(line);
                    expected.push(b'\n');
                    held.push(offset);
                }
            }
            for offset in &held {
                *seen.entry((p, *offset)).or_default() += 1;
            }
            if bytes != expected || held.first() != Some(&start) || held.last() != Some(&end) {
                problems.push(format!(
                    "{path}: does not hold exactly the accepted records of {start}..={end} in its directory, one per line, first {start} and last {end}"
                ));
            }
        }
        for (s, stream_lines) in streams.iter().zip(&lines) {
            for (r, line) in s.records.iter().zip(stream_lines) {
                let accepted = line.is_some();
                let at = (s.partition, r.offset);
                match (accepted, seen.get(&at)) {
                    (true, Some(1)) => {}
                    (true, Some(n)) => {
                        problems.push(format!("{topic} {}[{}] landed {n} times", at.0, at.1))
                    }
                    (true, None) => {
                        problems.push(format!("{topic} {}[{}] never landed", at.0, at.1))
                    }
                    (false, _) if !tolerate => problems.push(format!(
                        "{topic} {}[{}] cannot be landed, yet the landing went on",
                        at.0, at.1
                    )),
                    (false, _) => {
                        if !refused.contains(&(topic.as_str(), at.0, at.1)) {
                            problems.push(format!(
                                "{topic} {}[{}] was refused but is not in the dead-letter topic",
                                at.0, at.1
                            ));
                        }
                    }
                }
            }
        }
    }
    // Nothing but committed files is left: no temp file, no commit log, nothing elsewhere.
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for path in o.fs.paths() {
        let committed = o.log.topics().into_iter().find_map(|(topic, _)| {
            let prefixed = format!("{}{topic}", o.prefix);
            path.starts_with(&format!("{}/{prefixed}/", o.config.topics_dir))
                .then(|| atenex_landing::recovery::parse_committed(&path, &prefixed))
                .flatten()
                .map(|(p, _, end)| (topic, p, end))
        });
        match committed {
            Some((topic, p, end)) => {
                let e = ends.entry((topic, p)).or_insert(end);
                *e = (*e).max(end);
            }
            None => problems.push(format!("left behind: {path:?}")),
        }
    }
    // The positions the task reports (lag) are each partition's committed end + 1.
    if let Some(positions) = &o.landing_positions {
        let mut got: Vec<(String, i32, i64)> = positions
            .iter()
            .map(|(t, p, next)| {
                (
                    t.strip_prefix(o.prefix.as_str()).unwrap_or(t).to_owned(),
                    *p,
                    *next,
                )
            })
            .collect();
        got.sort();
        let want: Vec<(String, i32, i64)> = ends
            .into_iter()
            .map(|((t, p), end)| (t, p, end + 1))
            .collect();
        if got != want {
            problems.push(format!(
                "the landing reports committed positions {got:?}, the files say {want:?}"
            ));
        }
    }
    for c in &o.crashes {
        for path in &c.strays {
            problems.push(format!(
                "crash at step {}: {path:?} is none of Connect's files (committed, temp, or <logs.dir>/<topic>/<partition>/log)",
                c.step
            ));
        }
        for (topic, p, next) in &c.reported {
            let resumed = c.resume.get(&(topic.clone(), *p)).copied().flatten();
            if resumed.is_none_or(|r| r < *next) {
                problems.push(format!(
                    "crash at step {}: {topic}[{p}] was reported committed up to {next} before it, recovery resumed at {resumed:?}",
                    c.step
                ));
            }
        }
        if c.resume != c.committed_end {
            problems.push(format!(
                "crash at step {}: resumed at {:?}, committed ends + 1 are {:?}",
                c.step, c.resume, c.committed_end
            ));
        }
    }
}

fn check_analytics(o: &Outcome, problems: &mut Vec<String>) {
    // Transactions: each committed one holds `--max-batch` records (the model ends a batch only
    // when it is full), but the drain's last, which holds at most that; every record handed to a
    // task is in a committed transaction or in one a crash lost.
    if let Some(t) = &o.analytics_transactions {
        let (last, full) = t
            .committed
            .split_last()
            .map_or((0, &[][..]), |(l, f)| (*l, f));
        if let Some(n) = full.iter().find(|n| **n != t.max_batch) {
            problems.push(format!(
                "an analytics transaction committed {n} records, not --max-batch {}",
                t.max_batch
            ));
        }
        if last > t.max_batch {
            problems.push(format!(
                "the last analytics transaction committed {last} records, more than --max-batch {}",
                t.max_batch
            ));
        }
        let accounted = t.committed.iter().sum::<usize>() + o.analytics_lost.iter().sum::<usize>();
        if accounted != t.handed {
            problems.push(format!(
                "{} records handed to the analytics tasks, {accounted} committed or lost with a crash",
                t.handed
            ));
        }
    }
    // Crashes of the analytics job change nothing where event time alone decides (partition
    // idleness off): the crashed run's committed outputs equal a run without crashes.
    if let Some(((windows, late), (ref_windows, ref_late))) = &o.reference {
        if sorted(windows.clone()) != sorted(ref_windows.clone()) {
            problems.push(format!(
                "after {} analytics crashes the windows differ from a run without crashes",
                o.analytics_crashes
            ));
        }
        if sorted(late.clone()) != sorted(ref_late.clone()) {
            problems.push(format!(
                "after {} analytics crashes the late records differ from a run without crashes",
                o.analytics_crashes
            ));
        }
    }

    // Every input record is counted, late, or a dead letter (once); the windows equal a batch
    // recount of the counted records.
    let late: BTreeSet<(i32, i64)> = o.late.iter().map(|l| (l.partition, l.offset)).collect();
    let mut letters: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for d in o.dead_letters.iter().filter(|d| d.stage == "analytics") {
        *letters.entry((d.partition, d.offset)).or_default() += 1;
    }
    if let Some(((p, off), n)) = letters.iter().find(|(_, n)| **n > 1) {
        problems.push(format!(
            "analytics dead letter {p}[{off}] written {n} times"
        ));
    }
    let window_ms = o.analytics_settings.window_ms;
    let mut recount: BTreeMap<(i64, String), u64> = BTreeMap::new();
    let mut input = 0u64;
    for s in o.log.of(EMBEDDINGS) {
        for r in &s.records {
            input += 1;
            let at = (r.partition, r.offset);
            match decode_record(r.value.as_deref(), Some(r.ts)) {
                Ok(_) if late.contains(&at) => {}
                Ok((keys, ts)) => {
                    *recount
                        .entry((window_start(ts, window_ms), keys.company_id.into_owned()))
                        .or_default() += 1;
                }
                Err(_) => {
                    if !letters.contains_key(&at) {
                        problems.push(format!(
                            "malformed {EMBEDDINGS} {}[{}] is not in the dead-letter topic",
                            at.0, at.1
                        ));
                    }
                }
            }
        }
    }
    let counted: u64 = o.windows.iter().map(|w| w.count).sum();
    if counted + late.len() as u64 + letters.len() as u64 != input {
        problems.push(format!(
            "{counted} counted + {} late + {} dead letters != {input} input records",
            late.len(),
            letters.len()
        ));
    }
    let fired: BTreeMap<(i64, String), u64> = o
        .windows
        .iter()
        .map(|w| ((w.start, w.company_id.clone()), w.count))
        .collect();
    if fired != recount {
        problems.push(format!(
            "windows differ from a recount of the accepted records: fired {} windows, recount {}",
            fired.len(),
            recount.len()
        ));
    }
}

/// The daily reports' totals, added up, equal a recount of the landed `embeddings.ready` records
/// that name a company and a document (when no day's report failed).
fn check_report(o: &Outcome, problems: &mut Vec<String>) {
    let mut reported: BTreeMap<(String, String), u64> = BTreeMap::new();
    for report in o.reports.values() {
        match report {
            DailyReport::Rows { rows, .. } => {
                for (k, (total, _)) in rows {
                    *reported.entry(k.clone()).or_default() += total;
                }
            }
            DailyReport::Failed { .. } => return,
        }
    }
    let mut recount: BTreeMap<(String, String), u64> = BTreeMap::new();
    for s in o.log.of(EMBEDDINGS) {
        for r in &s.records {
            let Some(line) = landed_line(o, r.ts, r.value.as_deref()) else {
                continue;
            };
            // The ids only (the vector is skipped, not parsed).
            #[derive(serde::Deserialize)]
            struct Ids<'a> {
                #[serde(borrow)]
                company_id: Option<std::borrow::Cow<'a, str>>,
                #[serde(borrow)]
                document_id: Option<std::borrow::Cow<'a, str>>,
            }
            if let Ok(Ids {
                company_id: Some(c),
                document_id: Some(d),
            }) = serde_json::from_slice::<Ids<'_>>(&line)
            {
                *recount.entry((c.into_owned(), d.into_owned())).or_default() += 1;
            }
        }
    }
    if reported != recount {
        problems.push(
            "the daily reports' totals, added up, differ from a recount of the landed records"
                .into(),
        );
    }
}

/// The committed landing files are the ones the connector's rules give for the steps the model
/// driver took ([`reference::landing_files`]): the same names, the same records in each.
fn check_landing_reference(o: &Outcome, problems: &mut Vec<String>) {
    let Some(trace) = &o.landing_trace else {
        return; // the broker driver: its deliveries are Kafka's (it must render as the model)
    };
    let expected = match reference::landing_files(&o.log, &o.config, trace, &o.crashes) {
        Ok(files) => files,
        Err(mut found) => {
            problems.append(&mut found);
            return;
        }
    };
    let mut actual = BTreeMap::new();
    for (topic, _) in o.log.topics() {
        actual.append(&mut landing_files(o, &topic));
    }
    let mut differences = Vec::new();
    for (path, records) in &expected {
        let mut content = Vec::new();
        for (s, offset) in records {
            let r = o.log.get(*s, *offset);
            if let Some(line) = landed_line(o, r.ts, r.value.as_deref()) {
                content.extend_from_slice(&line);
                content.push(b'\n');
            }
        }
        match actual.get(path) {
            None => differences.push(format!(
                "by the connector's rules {path} holds {} records; the landing did not commit it",
                records.len()
            )),
            Some(bytes) if *bytes != content => differences.push(format!(
                "{path}: not the {} records the connector's rules put there",
                records.len()
            )),
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        differences.push(format!(
            "{path}: committed, but the connector's rules give no such file"
        ));
    }
    if differences.len() > 5 {
        let more = differences.len() - 5;
        differences.truncate(5);
        differences.push(format!(
            "... and {more} more differences from the landing reference"
        ));
    }
    problems.extend(differences);
}

/// The committed windows and late records are the ones Flink's rules give
/// ([`reference::windows`]) for a run without crashes: the committed run itself when there was
/// none; else the model's run without crashes with idleness off (which must equal the crashed
/// one, see [`check_analytics`]).
fn check_analytics_reference(o: &Outcome, problems: &mut Vec<String>) {
    let settings = o.analytics_settings;
    let (windows, late, settings) = match &o.reference {
        Some((_, (windows, late))) => (windows, late, no_idleness(settings)),
        None if o.analytics_crashes == 0 => (&o.windows, &o.late, settings),
        None => return, // the broker driver after crashes: rendered as the model's
    };
    let reference::Windows {
        outputs: ref_order,
        watermark: ref_watermark,
    } = reference::windows(&o.log, &settings);
    let (ref_windows, ref_late) = split_outputs(&ref_order);
    // Each window is emitted when the watermark first reaches its end − 1, each late record
    // when it arrives: the order of the two is the rules' (a window fired a record too late or
    // too early shows here even when the counts agree).
    if let Some(order) = &o.analytics_order
        && order != &ref_order
    {
        let at = order
            .iter()
            .zip(&ref_order)
            .position(|(a, b)| a != b)
            .unwrap_or(order.len().min(ref_order.len()));
        problems.push(format!(
            "the analytics outputs were emitted in another order than the rules': at output #{at}, {:?} where the rules emit {:?}",
            order.get(at),
            ref_order.get(at)
        ));
    }
    // The watermark the job reports (metrics, logs) at the end of the input is Flink's.
    if o.reference.is_none()
        && let Some(watermark) = o.analytics_watermark
        && watermark != ref_watermark
    {
        problems.push(format!(
            "the analytics watermark at the end of input is {watermark:?}, by the rules {ref_watermark:?}"
        ));
    }
    compare(
        problems,
        "windows differ from Flink's rules: fired",
        sorted(windows.clone()),
        sorted(ref_windows),
    );
    compare(
        problems,
        "late records differ from Flink's rules: late",
        sorted(late.clone()),
        sorted(ref_late),
    );
}

/// A problem `what <got> vs <want>, first difference` when the two sorted lists differ.
fn compare<T: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    what: &str,
    got: Vec<T>,
    want: Vec<T>,
) {
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .find(|(g, w)| g != w)
            .map(|(g, w)| format!("; first difference: {g:?}, by the rules {w:?}"))
            .unwrap_or_default();
        problems.push(format!(
            "{what} {}, by the rules {}{first}",
            got.len(),
            want.len()
        ));
    }
}

/// `settings` with partition idleness switched off.
pub fn no_idleness(settings: Settings) -> Settings {
    Settings {
        idle_timeout_ms: i64::MAX / 4,
        ..settings
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}
