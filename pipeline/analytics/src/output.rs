//! What the job writes: `analytics.flink` values (contract `AnalyticsWindow`, RFC 3339 UTC with `Z`)
//! and late records (`analytics.late`).

use crate::core::{LateRecord, WindowResult};
use atenex_contracts::AnalyticsWindow;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Event times the outputs can represent (chrono's range, about ±262,000 years); records outside
/// it are malformed.
pub fn event_time_in_range(ts: i64) -> bool {
    DateTime::<Utc>::from_timestamp_millis(ts).is_some()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

pub fn window_value(w: &WindowResult) -> AnalyticsWindow {
    AnalyticsWindow {
        window_start: time(w.start),
        window_end: time(w.end),
        company_id: w.company_id.clone(),
        chunk_count: w.count,
    }
}

/// One line of the late output / one `analytics.late` value.
#[derive(Debug, Serialize)]
pub struct LateValue<'a> {
    pub chunk_id: &'a str,
    pub document_id: &'a str,
    pub company_id: &'a str,
    /// Event time, epoch ms (as in Kafka and the recorded-stream envelope).
    pub ts: i64,
    /// The window it belonged to, RFC 3339 UTC.
    pub window_start: String,
    /// The operator watermark when it arrived, RFC 3339 UTC; null before the first watermark.
    pub watermark: Option<String>,
    /// `late` (its window had fired) or `future_timestamp` (beyond the allowed future skew).
    pub reason: &'static str,
    pub partition: i32,
    pub offset: i64,
}

fn rfc3339(ms: i64) -> String {
    time(ms).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn late_value(l: &LateRecord) -> LateValue<'_> {
    LateValue {
        chunk_id: &l.chunk_id,
        document_id: &l.document_id,
        company_id: &l.company_id,
        ts: l.ts,
        window_start: rfc3339(l.window_start),
        watermark: l.watermark.map(rfc3339),
        reason: l.reason.as_str(),
        partition: l.partition,
        offset: l.offset,
    }
}
