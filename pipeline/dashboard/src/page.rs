//! The pages, rendered on the server: every value from Kafka or a report goes through [`escape`]
//! (text) or [`json_in_script`] (the page's data), so a `company_id` such as
//! `<img src=x onerror=alert(1)>` shows as text and creates no element. The script then keeps the
//! page up to date with `textContent` only.

use crate::history::View;
use crate::reports::DayReport;
use std::fmt::Write as _;

/// Text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that can sit inside `<script type="application/json">`: `<`, `>` and `&` as `\u` escapes,
/// so no value can close the script element.
pub fn json_in_script<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("views serialize");
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Epoch ms as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A duration in words: `4 s`, `3 min 20 s`, `2 h 5 min`.
pub fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title>\
         <link rel=\"stylesheet\" href=\"/assets/uPlot.min.css\">\
         <link rel=\"stylesheet\" href=\"/assets/dashboard.css\"></head><body>",
        escape(title)
    );
}

/// `/`: the live chart, the latest windows, late records and errors.
pub fn index(v: &View) -> String {
    let mut o = String::with_capacity(16 * 1024);
    head(&mut o, "Atenex — chunks per company per minute");
    let _ = write!(
        o,
        "<header><h1>Chunks per company per minute</h1>\
         <span class=\"state\">updates: <b id=\"connection\">connecting…</b></span>\
         <nav><a href=\"/\">live</a> · <a href=\"/reports\">daily reports</a></nav></header>\
         <p class=\"explain\">Each point is a <b>window</b>: one minute of <i>event time</i> (when the \
         chunk was embedded), counted per company by the analytics job and shown once its watermark \
         has passed the window's end — about 5 s after the minute ends, later for a partition that \
         is behind. The current minute is not shown until then. Only results the analytics job \
         committed are shown.</p>\
         <section><h2>Chunks per minute</h2><div id=\"chart\"></div>\
         <p class=\"facts\">Newest window ended <b id=\"behind\">{behind}</b> ago · \
         <span id=\"windows\">{windows}</span> windows of <span id=\"companies\">{companies}</span> \
         companies in the history (the top {top} drawn, the rest summed as others).</p></section>",
        behind = v.behind_ms.map_or("—".to_owned(), ago),
        windows = v.windows,
        companies = v.companies_in_history,
        top = v.companies.len(),
    );
    o.push_str(
        "<section><h2>Latest windows</h2><table id=\"latest\"><thead><tr><th>company</th>\
         <th>window start (UTC)</th><th>window end (UTC)</th><th>chunks</th></tr></thead><tbody>",
    );
    for w in &v.latest {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&w.company_id),
            utc(w.start),
            utc(w.end),
            w.count
        );
    }
    o.push_str("</tbody></table></section>");
    let late_total: u64 = v.late_by_reason.values().sum();
    let _ = write!(
        o,
        "<section><h2>Late records: <span id=\"late-total\">{late_total}</span></h2>\
         <p class=\"explain\">Records the analytics job did not count: <i>late</i> (their window had \
         already been shown) or <i>future_timestamp</i> (an event time too far ahead of the clock).\
         </p><ul id=\"late-reasons\">"
    );
    for (reason, n) in &v.late_by_reason {
        let _ = write!(o, "<li>{}: {n}</li>", escape(reason));
    }
    o.push_str(
        "</ul><table id=\"latest-late\"><thead><tr><th>reason</th><th>company</th><th>chunk</th>\
         <th>event time (UTC)</th></tr></thead><tbody>",
    );
    for l in &v.latest_late {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&l.reason),
            escape(&l.company_id),
            escape(&l.chunk_id),
            utc(l.ts)
        );
    }
    let _ = write!(
        o,
        "</tbody></table></section><section><h2>Errors: <span id=\"malformed\">{}</span> malformed \
         records</h2><ul id=\"latest-malformed\">",
        v.malformed
    );
    for m in &v.latest_malformed {
        let _ = write!(
            o,
            "<li>{}[{}]@{}: {}</li>",
            if m.position.topic == 'w' {
                "analytics.flink"
            } else {
                "analytics.late"
            },
            m.position.partition,
            m.position.offset,
            escape(&m.reason)
        );
    }
    let _ = write!(
        o,
        "</ul></section><pre id=\"chart-data\" hidden></pre>\
         <script type=\"application/json\" id=\"initial\">{}</script>\
         <script src=\"/assets/uPlot.iife.min.js\"></script>\
         <script src=\"/assets/dashboard.js\"></script></body></html>",
        json_in_script(v)
    );
    o
}

/// `/reports`: the dates with a report, newest first.
pub fn report_dates(dates: &[String], problem: Option<&str>) -> String {
    let mut o = String::new();
    head(&mut o, "Atenex — daily reports");
    o.push_str(
        "<header><h1>Daily reports</h1><nav><a href=\"/\">live</a> · \
         <a href=\"/reports\">daily reports</a></nav></header>\
         <p class=\"explain\">Chunks per company and document for each UTC day, as the daily report \
         job (<code>atenex report</code>) wrote them from the landed files.</p>",
    );
    if let Some(p) = problem {
        let _ = write!(o, "<p class=\"error\">{}</p>", escape(p));
    }
    if dates.is_empty() && problem.is_none() {
        o.push_str("<p>No report yet.</p>");
    }
    o.push_str("<ul id=\"dates\">");
    for d in dates {
        let d = escape(d);
        let _ = write!(o, "<li><a href=\"/reports/{d}\">{d}</a></li>");
    }
    o.push_str("</ul></body></html>");
    o
}

/// `/reports/{date}`: the totals per company as bars, the rows, the Parquet file.
pub fn report_day(r: &DayReport) -> String {
    let mut o = String::new();
    let date = escape(&r.date);
    head(&mut o, &format!("Atenex — report {}", r.date));
    let _ = write!(
        o,
        "<header><h1>Report {date}</h1><nav><a href=\"/\">live</a> · \
         <a href=\"/reports\">daily reports</a></nav></header>\
         <p><a id=\"download\" href=\"/api/reports/{date}/parquet\" download=\"daily_chunk_count-{date}.parquet\">\
         Download the Parquet file</a> · <a href=\"/api/reports/{date}\">as JSON</a></p>\
         <section><h2>Chunks per company</h2><table id=\"bars\" class=\"bars\"><tbody>"
    );
    let most = r
        .companies
        .values()
        .map(|c| c.total_chunks)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut companies: Vec<_> = r.companies.iter().collect();
    companies.sort_by(|a, b| b.1.total_chunks.cmp(&a.1.total_chunks).then(a.0.cmp(b.0)));
    for (company, t) in companies {
        let width = (t.total_chunks.max(0) as f64 / most as f64 * 100.0).max(0.5);
        let _ = write!(
            o,
            "<tr><th>{}</th><td><div class=\"bar\" style=\"width:{width:.1}%\"></div></td>\
             <td>{} chunks ({} unique) in {} documents</td></tr>",
            escape(company),
            t.total_chunks,
            t.unique_chunks,
            t.documents
        );
    }
    o.push_str(
        "</tbody></table></section><section><h2>Rows</h2><table id=\"rows\"><thead><tr>\
         <th>company_id</th><th>document_id</th><th>total_chunks</th><th>unique_chunks</th></tr>\
         </thead><tbody>",
    );
    for row in &r.rows {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row.company_id),
            escape(&row.document_id),
            row.total_chunks,
            row.unique_chunks
        );
    }
    o.push_str("</tbody></table></section></body></html>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_become_markup() {
        let evil = "<img src=x onerror=alert(1)>\"'&";
        assert_eq!(
            escape(evil),
            "&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"
        );
        let j = json_in_script(&serde_json::json!({"c": "</script><img src=x>"}));
        assert!(!j.contains('<') && !j.contains('>'), "{j}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&j).unwrap()["c"],
            "</script><img src=x>"
        );
        assert_eq!(ago(200_000), "3 min 20 s");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
    }
}
