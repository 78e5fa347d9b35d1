//! The snapshot of a run: what a reviewer reads and accepts.

use crate::check::{landed, report_rows};
use crate::model::Outcome;
use std::fmt::Write as _;

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub fn render(o: &Outcome) -> String {
    let mut s = String::new();
    let records: usize = o.log.iter().map(Vec::len).sum();
    let per_partition: Vec<String> = o.log.iter().map(|p| p.len().to_string()).collect();
    let _ = writeln!(
        s,
        "input: {records} records, partitions [{}]",
        per_partition.join(", ")
    );
    let _ = writeln!(
        s,
        "crashes: landing {}, analytics {}",
        o.crashes.len(),
        o.analytics_crashes
    );
    let _ = writeln!(s, "\nwindows (start, company, chunks):");
    for w in &o.windows {
        let _ = writeln!(s, "  {} {} {}", time(w.start), w.company_id, w.count);
    }
    let _ = writeln!(s, "\nlate ({}):", o.late.len());
    for l in &o.late {
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
    let landed = landed(o);
    let _ = writeln!(s, "\nlanding (committed file, lines):");
    for (path, lines) in &landed {
        let _ = writeln!(
            s,
            "  {} {}",
            path.trim_start_matches(&o.config.topics_dir),
            lines.len()
        );
    }
    let _ = writeln!(s, "\nreport (company, document, total, unique):");
    for ((c, d), (t, u)) in report_rows(&landed) {
        let _ = writeln!(s, "  {c} {d} {t} {u}");
    }
    s
}
