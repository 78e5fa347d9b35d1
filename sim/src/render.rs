//! The snapshot of a run: what a reviewer reads and accepts. Both drivers render the same text for
//! the same run: outputs are sorted, and the broker driver's unique topic names are shown as the
//! scenario names them.

use crate::check::landing_files;
use crate::log::EMBEDDINGS;
use crate::outcome::{DailyReport, Outcome};
use std::fmt::Write as _;

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub fn render(o: &Outcome) -> String {
    let mut s = String::new();
    let topics = o.log.topics();
    let sizes = |topic: &str| {
        o.log
            .of(topic)
            .iter()
            .map(|p| p.records.len().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let [(only, _)] = topics.as_slice()
        && only == EMBEDDINGS
    {
        let _ = writeln!(
            s,
            "input: {} records, partitions [{}]",
            o.log.len(),
            sizes(only)
        );
    } else {
        let per_topic: Vec<String> = topics
            .iter()
            .map(|(t, _)| format!("{t} [{}]", sizes(t)))
            .collect();
        let _ = writeln!(
            s,
            "input: {} records; {}",
            o.log.len(),
            per_topic.join(", ")
        );
    }
    let _ = write!(
        s,
        "crashes: landing {}, analytics {}",
        o.crashes.len(),
        o.analytics_crashes
    );
    if o.broker_restarts > 0 {
        let _ = write!(s, "; broker restarts {}", o.broker_restarts);
    }
    if o.analytics_zombies > 0 {
        let _ = write!(
            s,
            "; analytics zombies fenced {} (frozen active instances, woken after a standby took over)",
            o.analytics_zombies
        );
    }
    if o.landing_zombies > 0 {
        let _ = write!(
            s,
            "; landing zombies fenced {} (frozen instances whose partitions were taken over, woken trying to commit)",
            o.landing_zombies
        );
    }
    let _ = writeln!(s);
    // Sorted: the broker driver reads them back from Kafka in another order.
    let mut windows: Vec<_> = o.windows.iter().collect();
    windows.sort_by(|a, b| (a.start, &a.company_id).cmp(&(b.start, &b.company_id)));
    let mut late: Vec<_> = o.late.iter().collect();
    late.sort_by_key(|l| (l.partition, l.offset));
    let _ = writeln!(s, "\nwindows (start, company, chunks):");
    for w in windows {
        let _ = writeln!(s, "  {} {} {}", time(w.start), w.company_id, w.count);
    }
    let _ = writeln!(s, "\nlate ({}):", o.late.len());
    for l in late {
        let _ = writeln!(
            s,
            "  {}[{}] {} ts {} window {} {}",
            l.partition,
            l.offset,
            l.chunk_id,
            time(l.ts),
            time(l.window_start),
            l.reason.as_str()
        );
    }
    if !o.dead_letters.is_empty() {
        let mut letters = o.dead_letters.clone();
        letters.sort();
        let _ = writeln!(
            s,
            "\ndead letters ({}; job, record, reason):",
            letters.len()
        );
        for d in letters {
            let _ = writeln!(
                s,
                "  {} {}[{}]@{}: {}",
                d.stage, d.topic, d.partition, d.offset, d.reason
            );
        }
    }
    let _ = writeln!(s, "\nlanding (committed file, lines):");
    let mut files: Vec<(String, usize)> = Vec::new();
    for (topic, _) in &topics {
        for (path, bytes) in landing_files(o, topic) {
            let mut shown = path.trim_start_matches(&o.config.topics_dir).to_owned();
            if !o.prefix.is_empty() {
                shown = shown.replace(&o.prefix, "");
            }
            files.push((shown, bytes.iter().filter(|b| **b == b'\n').count()));
        }
    }
    files.sort();
    for (path, lines) in files {
        let _ = writeln!(s, "  {path} {lines}");
    }
    for (day, report) in &o.reports {
        let _ = writeln!(s, "\nreport {day} (company, document, total, unique):");
        match report {
            DailyReport::Rows { rows, skipped } => {
                if rows.is_empty() {
                    let _ = writeln!(s, "  (no rows)");
                }
                for ((c, d), (t, u)) in rows {
                    let _ = writeln!(s, "  {c} {d} {t} {u}");
                }
                if *skipped > 0 {
                    let _ = writeln!(s, "  ({skipped} malformed lines skipped)");
                }
            }
            DailyReport::Failed { code, message } => {
                let _ = writeln!(s, "  fails with exit {code}: {message}");
            }
        }
    }
    s
}
