//! Where a record's file goes: Connect's partitioners. The time-based one buckets the timestamp
//! as `TimeBasedPartitioner.getPartition` does (shift to local time, floor to the duration with Java's
//! truncating division, back to UTC) and names the bucket with `path.format` in the time zone.
//! When a local bucket start does not exist (a DST gap) the first instant after the gap is used; when
//! it exists twice (DST overlap), the earlier one.

use crate::config::Partitioner;
use chrono::{DateTime, LocalResult, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The directory (relative to `<topics.dir>/<topic>/`) of a record.
pub fn encode(partitioner: &Partitioner, kafka_partition: i32, timestamp_ms: i64) -> String {
    match partitioner {
        Partitioner::Default => format!("partition={kafka_partition}"),
        Partitioner::TimeBased {
            duration_ms,
            path_format,
            timezone,
            ..
        } => path_format.format(&bucket_start(timestamp_ms, *duration_ms, *timezone)),
    }
}

/// The start of the bucket holding `timestamp_ms`, in `tz`.
pub fn bucket_start(timestamp_ms: i64, duration_ms: i64, tz: Tz) -> DateTime<Tz> {
    let utc = Utc
        .timestamp_millis_opt(timestamp_ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let offset_ms = i64::from(
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    ) * 1000;
    let local = timestamp_ms.saturating_add(offset_ms);
    let floored = (local / duration_ms) * duration_ms; // Java's `/`: truncates toward zero
    let naive = Utc
        .timestamp_millis_opt(floored)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        .naive_utc();
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t,
        LocalResult::Ambiguous(earlier, _) => earlier,
        LocalResult::None => {
            // In a gap: step forward to the first local time that exists.
            let mut probe = naive;
            loop {
                probe += chrono::Duration::minutes(15);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path_format::PathFormat;

    fn hourly(tz: Tz) -> Partitioner {
        let pattern = "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH".to_owned();
        Partitioner::TimeBased {
            duration_ms: 3_600_000,
            path_format: PathFormat::parse(&pattern).unwrap(),
            pattern,
            timezone: tz,
            locale: "en_US".into(),
        }
    }

    const T: i64 = 1_795_823_999_999; // 2026-11-27T23:59:59.999Z

    #[test]
    fn default_and_hourly_in_utc() {
        assert_eq!(encode(&Partitioner::Default, 3, T), "partition=3");
        let p = hourly(chrono_tz::UTC);
        assert_eq!(encode(&p, 0, T), "year=2026/month=11/day=27/hour=23");
        assert_eq!(encode(&p, 0, T + 1), "year=2026/month=11/day=28/hour=00");
        assert_eq!(encode(&p, 0, 0), "year=1970/month=01/day=01/hour=00");
    }

    #[test]
    fn buckets_are_local_in_the_time_zone() {
        let p = hourly(chrono_tz::Europe::Madrid);
        assert_eq!(encode(&p, 0, T), "year=2026/month=11/day=28/hour=00");
        // Daily buckets start at local midnight: 2026-11-28T04:59Z is still the 27th in New York.
        let daily = Partitioner::TimeBased {
            duration_ms: 86_400_000,
            path_format: PathFormat::parse("'day'=YYYY-MM-dd").unwrap(),
            pattern: String::new(),
            timezone: chrono_tz::America::New_York,
            locale: "en_US".into(),
        };
        assert_eq!(
            encode(&daily, 0, T + 5 * 3_600_000 - 60_000),
            "day=2026-11-27"
        );
        assert_eq!(encode(&daily, 0, T + 5 * 3_600_000 + 1), "day=2026-11-28");
        // Java's truncating division: before 1970 (UTC) the bucket rounds toward zero, as Connect.
        let p = hourly(chrono_tz::UTC);
        assert_eq!(encode(&p, 0, -1), "year=1970/month=01/day=01/hour=00");
    }

    #[test]
    fn daylight_saving_changes() {
        let p = hourly(chrono_tz::Europe::Madrid);
        // 2026-03-29T01:30Z = 03:30 CEST (02:00–03:00 local does not exist).
        assert_eq!(
            encode(&p, 0, 1_774_747_800_000),
            "year=2026/month=03/day=29/hour=03"
        );
        // 2026-10-25T00:30Z = 02:30 CEST and 01:30Z = 02:30 CET: the same local hour directory.
        assert_eq!(
            encode(&p, 0, 1_792_888_200_000),
            "year=2026/month=10/day=25/hour=02"
        );
        assert_eq!(
            encode(&p, 0, 1_792_891_800_000),
            "year=2026/month=10/day=25/hour=02"
        );
    }
}
