//! Arbitrary text into the connector's properties parser and configuration, arbitrary patterns
//! into `path.format`, arbitrary record values into the timestamp extractor and arbitrary names
//! into the recovery's file-name parser: no panic, and every pattern accepted formats paths that
//! stay under the topic directory, whatever the instant (issue 15).

use atenex_landing::config::{LandingConfig, TimestampExtractor};
use atenex_landing::path_format::PathFormat;
use atenex_landing::recovery::parse_committed;
use atenex_landing::sink::extract_timestamp;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

const ATENEX: &str = include_str!("../../../fixtures/config/hdfs-sink-connector.properties");

/// Properties text with the keys that matter and values that go wrong.
fn properties_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "topics",
        "topics.regex",
        "hdfs.url",
        "topics.dir",
        "logs.dir",
        "path.format",
        "partition.duration.ms",
        "flush.size",
        "rotate.interval.ms",
        "rotate.schedule.interval.ms",
        "timezone",
        "locale",
        "timestamp.extractor",
        "timestamp.field",
        "partitioner.class",
        "errors.tolerance",
        "filename.offset.zero.pad.width",
    ]);
    let value = prop_oneof![
        "-?[0-9]{1,22}",
        "'?[a-zA-Z=/.'\\\\ ]{0,20}",
        Just("..".to_owned()),
        Just("'..'/YYYY".to_owned()),
        Just("Europe/Madrid".to_owned()),
        Just("RecordField".to_owned()),
        "\\PC{0,12}",
    ];
    prop::collection::vec(
        (key, value, prop::sample::select(vec!["=", ":", " "])),
        0..12,
    )
    .prop_map(|lines| {
        let mut text = String::from(ATENEX);
        for (k, v, sep) in lines {
            text.push_str(&format!("\n{k}{sep}{v}"));
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_properties_text_is_parsed_or_refused(text in "\\PC{0,400}") {
        let _ = atenex_landing::properties::parse(&text);
        let _ = LandingConfig::from_properties(&text, vec![]);
    }

    #[test]
    fn connector_like_files_are_checked_without_a_panic(text in properties_like()) {
        let _ = LandingConfig::from_properties(&text, vec![("CONNECT_FLUSH_SIZE".into(), "0".into())]);
    }

    #[test]
    fn an_accepted_path_format_never_leaves_its_directory(
        pattern in "[yYxwMdDeEaHkKhmsSZ'./=a-z-]{0,24}",
        ms in -62_135_596_800_000i64..=253_402_300_799_999,
    ) {
        if let Ok(f) = PathFormat::parse(&pattern) {
            let path = f.format(&Utc.timestamp_millis_opt(ms).unwrap().with_timezone(&chrono_tz::Europe::Madrid));
            prop_assert!(!path.starts_with('/'), "{pattern}: {path}");
            prop_assert!(!path.split('/').any(|s| s == "." || s == ".."), "{pattern}: {path}");
        }
    }

    #[test]
    fn any_record_value_gives_a_timestamp_or_a_reason(
        value in prop::collection::vec(any::<u8>(), 0..200),
        record_ts in prop::option::of(any::<i64>()),
        field in "[a-z.]{0,8}",
        now in any::<i64>(),
    ) {
        for extractor in [TimestampExtractor::Wallclock, TimestampExtractor::Record, TimestampExtractor::RecordField(field.clone())] {
            let _ = extract_timestamp(&extractor, record_ts, &value, now);
        }
    }

    #[test]
    fn any_file_name_is_a_committed_file_or_not(path in "\\PC{0,80}", topic in "[a-z.]{0,10}") {
        let _ = parse_committed(&path, &topic);
    }
}
