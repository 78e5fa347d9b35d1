//! The invariants of DESIGN §5, checked on every run; each violation is a sentence.

use crate::model::Outcome;
use atenex_analytics::core::window_start;
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs as _, MemFs};
use std::collections::{BTreeMap, BTreeSet};

/// Report rows: (company, document) → (total chunks, unique chunk ids).
pub type ReportRows = BTreeMap<(String, String), (u64, u64)>;

/// Committed landing files: path → the records' (partition, offset, company, document, chunk).
pub fn landed(o: &Outcome) -> BTreeMap<String, Vec<serde_json::Value>> {
    landed_in(&o.fs, &o.config, &o.topic)
}

fn landed_in(
    fs: &MemFs,
    config: &LandingConfig,
    topic: &str,
) -> BTreeMap<String, Vec<serde_json::Value>> {
    let dir = format!("{}/{topic}", config.topics_dir);
    fs.list(&dir)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let text = fs.read(&path).ok().flatten().unwrap_or_default();
            let lines = String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            (path, lines)
        })
        .collect()
}

/// The day (YYYY-MM-DD) of a landing path, from its `year=`, `month=` and `day=` directories.
pub fn day_of(path: &str) -> Option<String> {
    let part = |name: &str| {
        path.split('/')
            .find_map(|seg| seg.strip_prefix(name)?.strip_prefix('='))
    };
    Some(format!(
        "{}-{}-{}",
        part("year")?,
        part("month")?,
        part("day")?
    ))
}

/// The daily report of every day the landing tree has and of `extra` days, recounted from the
/// committed files (the model driver's report; the broker driver runs the real job).
pub fn daily_reports(
    fs: &MemFs,
    config: &LandingConfig,
    topic: &str,
    extra: &[String],
) -> BTreeMap<String, ReportRows> {
    let mut days: BTreeMap<String, BTreeMap<String, Vec<serde_json::Value>>> =
        extra.iter().map(|d| (d.clone(), BTreeMap::new())).collect();
    for (path, lines) in landed_in(fs, config, topic) {
        if atenex_landing::recovery::parse_committed(&path, topic).is_none() {
            continue;
        }
        if let Some(day) = day_of(&path) {
            days.entry(day).or_default().insert(path, lines);
        }
    }
    days.into_iter()
        .map(|(day, files)| (day, report_rows(&files)))
        .collect()
}

/// The report's rows recounted from the landing files.
pub fn report_rows(landed: &BTreeMap<String, Vec<serde_json::Value>>) -> ReportRows {
    let mut seen: BTreeMap<(String, String), (u64, BTreeSet<String>)> = BTreeMap::new();
    for v in landed.values().flatten() {
        let key = (
            v["company_id"].as_str().unwrap_or_default().to_owned(),
            v["document_id"].as_str().unwrap_or_default().to_owned(),
        );
        let e = seen.entry(key).or_default();
        e.0 += 1;
        e.1.insert(v["chunk_id"].as_str().unwrap_or_default().to_owned());
    }
    seen.into_iter()
        .map(|(k, (total, ids))| (k, (total, ids.len() as u64)))
        .collect()
}

pub fn check(o: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    let input: Vec<_> = o.log.iter().flatten().collect();

    // Every input offset appears in exactly one committed landing file.
    let landed = landed(o);
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (path, lines) in &landed {
        let Some((p, start, end)) = atenex_landing::recovery::parse_committed(path, &o.topic)
        else {
            problems.push(format!("not a committed file: {path}"));
            continue;
        };
        let offsets: Vec<i64> = lines
            .iter()
            .map(|v| v["vector"][1].as_f64().unwrap_or(-1.0) as i64)
            .collect();
        if offsets.first() != Some(&start) || offsets.last() != Some(&end) {
            problems.push(format!(
                "{path}: holds offsets {:?}..{:?}",
                offsets.first(),
                offsets.last()
            ));
        }
        for (v, off) in lines.iter().zip(&offsets) {
            if v["vector"][0].as_f64() != Some(f64::from(p)) {
                problems.push(format!("{path}: a record of another partition"));
            }
            *seen.entry((p, *off)).or_default() += 1;
        }
    }
    for r in &input {
        match seen.remove(&(r.partition, r.offset)) {
            Some(1) => {}
            Some(n) => problems.push(format!(
                "offset {}[{}] landed {n} times",
                r.partition, r.offset
            )),
            None => problems.push(format!("offset {}[{}] never landed", r.partition, r.offset)),
        }
    }
    for ((p, off), _) in seen {
        problems.push(format!("offset {p}[{off}] landed but not in the input"));
    }
    if !o.fs.list(&o.config.logs_dir).unwrap_or_default().is_empty() {
        problems.push("commit logs left behind".into());
    }

    // Recovery resumes at max committed end + 1.
    for c in &o.crashes {
        if c.resume != c.committed_end {
            problems.push(format!(
                "crash at step {}: resumed at {:?}, committed ends + 1 are {:?}",
                c.step, c.resume, c.committed_end
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

    // Accepted + late = input, and the windows equal a batch recount of the accepted records.
    let late: BTreeSet<(i32, i64)> = o.late.iter().map(|l| (l.partition, l.offset)).collect();
    let counted: u64 = o.windows.iter().map(|w| w.count).sum();
    if counted + late.len() as u64 != input.len() as u64 {
        problems.push(format!(
            "{counted} counted + {} late != {} input records",
            late.len(),
            input.len()
        ));
    }
    let window_ms = atenex_analytics::core::Settings::default().window_ms;
    let mut recount: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for r in input
        .iter()
        .filter(|r| !late.contains(&(r.partition, r.offset)))
    {
        *recount
            .entry((window_start(r.ts, window_ms), r.company.clone()))
            .or_default() += 1;
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

    // The report's totals equal a recount of the input (what was landed is what was produced).
    let mut from_input: BTreeMap<(String, String), (u64, BTreeSet<&str>)> = BTreeMap::new();
    for r in &input {
        let e = from_input
            .entry((r.company.clone(), r.document.clone()))
            .or_default();
        e.0 += 1;
        e.1.insert(&r.chunk);
    }
    let from_input: ReportRows = from_input
        .into_iter()
        .map(|(k, (t, ids))| (k, (t, ids.len() as u64)))
        .collect();
    // (Unique chunk ids are per day: a duplicate delivered after midnight is unique in both.)
    let mut reported: BTreeMap<(String, String), u64> = BTreeMap::new();
    for rows in o.reports.values() {
        for (k, (total, _)) in rows {
            *reported.entry(k.clone()).or_default() += total;
        }
    }
    let input_totals: BTreeMap<(String, String), u64> = from_input
        .iter()
        .map(|(k, (t, _))| (k.clone(), *t))
        .collect();
    if reported != input_totals {
        problems
            .push("the daily reports' totals, added up, differ from a recount of the input".into());
    }
    problems
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}
