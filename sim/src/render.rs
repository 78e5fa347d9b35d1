//! The snapshot of a run: what a reviewer reads and accepts.

use crate::check::landed;
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
    let landed = landed(o);
    let _ = writeln!(s, "\nlanding (committed file, lines):");
    for (path, lines) in &landed {
        let _ = writeln!(
            s,
            "  {} {}",
            // The broker driver's topic has a unique name; files are shown under the real one.
            path.trim_start_matches(&o.config.topics_dir)
                .replace(&o.topic, crate::model::TOPIC),
            lines.len()
        );
    }
    for (day, rows) in &o.reports {
        let _ = writeln!(s, "\nreport {day} (company, document, total, unique):");
        if rows.is_empty() {
            let _ = writeln!(s, "  (no rows)");
        }
        for ((c, d), (t, u)) in rows {
            let _ = writeln!(s, "  {c} {d} {t} {u}");
        }
    }
    s
}
