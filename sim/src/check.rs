//! The invariants (docs/semantics.md, what the simulator checks), checked on every run; each violation is a sentence.

use crate::log::EMBEDDINGS;
use crate::outcome::{DailyReport, Outcome};
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
    check_analytics(o, &mut problems);
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
    for (topic, _) in o.log.topics() {
        let streams = o.log.of(&topic);
        // Each record's line as the landing writes it, or None if it refuses it (once per record).
        let lines: Vec<Vec<Option<Vec<u8>>>> = streams
            .iter()
            .map(|s| {
                s.records
                    .iter()
                    .map(|r| landed_line(o, r.ts, r.value.as_deref()))
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
            let mut expected = Vec::new();
            let last = (end + 1).min(stream_lines.len() as i64);
            for offset in start.max(0)..last {
                if let Some(line) = &stream_lines[offset as usize] {
                    expected.extend_from_slice(line);
                    expected.push(b'\n');
                    *seen.entry((p, offset)).or_default() += 1;
                }
            }
            if bytes != expected {
                problems.push(format!(
                    "{path}: does not hold exactly the accepted records {start}..={end}, one per line"
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
    if !o.fs.list(&o.config.logs_dir).unwrap_or_default().is_empty() {
        problems.push("commit logs left behind".into());
    }
    for c in &o.crashes {
        if c.resume != c.committed_end {
            problems.push(format!(
                "crash at step {}: resumed at {:?}, committed ends + 1 are {:?}",
                c.step, c.resume, c.committed_end
            ));
        }
    }
}

fn check_analytics(o: &Outcome, problems: &mut Vec<String>) {
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
    let window_ms = atenex_analytics::core::Settings::default().window_ms;
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

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}
