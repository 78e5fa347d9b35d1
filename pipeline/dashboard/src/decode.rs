//! The values of `analytics.flink` (the contract's `AnalyticsWindow`) and `analytics.late` (the
//! analytics job's late record) as the dashboard keeps them; anything else is malformed, with the
//! reason.

use crate::history::{Late, Record, Window};
use atenex_contracts::AnalyticsWindow;
use serde::Deserialize;

/// The fields of an `analytics.late` value the dashboard shows.
#[derive(Deserialize)]
struct LateValue {
    chunk_id: String,
    company_id: String,
    ts: i64,
    reason: String,
}

/// An `analytics.flink` value.
pub fn window(value: Option<&[u8]>) -> Record {
    let Some(value) = value else {
        return malformed("no value (a tombstone)");
    };
    match atenex_contracts::decode::<AnalyticsWindow>(value) {
        Ok(w) => Record::Window(Window {
            start: w.window_start.timestamp_millis(),
            end: w.window_end.timestamp_millis(),
            company_id: w.company_id,
            count: w.chunk_count,
        }),
        Err(e) => malformed(&e.to_string()),
    }
}

/// An `analytics.late` value.
pub fn late(value: Option<&[u8]>) -> Record {
    let Some(value) = value else {
        return malformed("no value (a tombstone)");
    };
    match serde_json::from_slice::<LateValue>(value) {
        Ok(l) => Record::Late(Late {
            reason: l.reason,
            company_id: l.company_id,
            chunk_id: l.chunk_id,
            ts: l.ts,
        }),
        Err(e) => malformed(&format!("not an analytics.late record: {e}")),
    }
}

fn malformed(reason: &str) -> Record {
    Record::Malformed {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_or_say_why_not() {
        let w = window(Some(
            br#"{"window_start":"2026-11-27T10:00:00Z","window_end":"2026-11-27T10:01:00Z","company_id":"c","chunk_count":3}"#,
        ));
        assert!(
            matches!(w, Record::Window(Window { count: 3, .. })),
            "{w:?}"
        );
        for bad in [&b"{"[..], br#"{"window_start":"x"}"#, b"null"] {
            assert!(matches!(window(Some(bad)), Record::Malformed { .. }));
        }
        assert!(matches!(window(None), Record::Malformed { .. }));
        let l = late(Some(
            br#"{"chunk_id":"d_1","document_id":"d","company_id":"c","ts":5,"window_start":"x","watermark":null,"reason":"late","partition":0,"offset":1}"#,
        ));
        assert!(
            matches!(&l, Record::Late(Late { reason, .. }) if reason == "late"),
            "{l:?}"
        );
        assert!(matches!(late(Some(b"[]")), Record::Malformed { .. }));
    }
}
