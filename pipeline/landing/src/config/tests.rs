use super::*;

const ATENEX: &str = include_str!("../../../../fixtures/config/hdfs-sink-connector.properties");

fn env(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn the_atenex_file_as_given_is_refused_with_the_fix() {
    let err = LandingConfig::from_properties(ATENEX, vec![]).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    let p = &err.problems[0];
    assert_eq!(p.key, "partition.duration.ms");
    assert_eq!(p.value, None);
    let text = err.to_string();
    assert!(
        text.contains("Partition duration needs to be a positive."),
        "{text}"
    );
    assert!(text.contains("add partition.duration.ms=3600000"), "{text}");
}

#[test]
fn the_atenex_file_with_the_duration_added() {
    let text = format!("{ATENEX}\npartition.duration.ms=3600000\n");
    let c = LandingConfig::from_properties(&text, vec![]).unwrap();
    assert_eq!(c.name, "HdfsSinkAtenex");
    assert_eq!(c.tasks_max, 2);
    assert_eq!(
        c.topics,
        Topics::List(vec![
            "documents.raw".into(),
            "chunks.processed".into(),
            "embeddings.ready".into()
        ])
    );
    assert_eq!(
        c.store,
        Store::Hdfs {
            url: atenex_hdfs::HdfsUrl::parse("hdfs://localhost:8020").unwrap()
        }
    );
    assert_eq!(
        (c.topics_dir.as_str(), c.logs_dir.as_str()),
        ("/atenex/kafka-landing", "/atenex/kafka-connect/logs")
    );
    assert_eq!(c.flush_size, 1000);
    assert_eq!(c.rotate_interval_ms, Some(600_000));
    assert_eq!(c.rotate_schedule_interval_ms, None);
    assert_eq!(c.idle_commit_ms, 600_000, "defaults to rotate.interval.ms");
    assert_eq!(
        c.timestamp_extractor,
        TimestampExtractor::Wallclock,
        "Connect's default"
    );
    assert_eq!(c.offset_pad_width, 10);
    assert_eq!(c.errors, ErrorTolerance::None);
    assert!(c.unknown_keys.is_empty());
    let Partitioner::TimeBased {
        duration_ms,
        pattern,
        timezone,
        locale,
        ..
    } = &c.partitioner
    else {
        panic!("time based")
    };
    assert_eq!(
        (
            *duration_ms,
            pattern.as_str(),
            timezone.name(),
            locale.as_str()
        ),
        (
            3_600_000,
            "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH",
            "UTC",
            "en_US"
        )
    );
}

#[test]
fn environment_overrides_keys() {
    let c = LandingConfig::from_properties(
        ATENEX,
        env(&[
            ("ATENEX_LANDING_PARTITION_DURATION_MS", "3600000"),
            ("ATENEX_LANDING_FLUSH_SIZE", "5"),
            ("ATENEX_LANDING_HDFS_URL", "file:///tmp/landing"),
            ("ATENEX_LANDING_TIMESTAMP_EXTRACTOR", "Record"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(c.flush_size, 5);
    assert_eq!(
        c.store,
        Store::Local {
            root: "/tmp/landing".into()
        }
    );
    assert_eq!(c.timestamp_extractor, TimestampExtractor::Record);
}

#[test]
fn every_problem_is_reported_with_key_value_and_fix() {
    let text = "name=x\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics=a\nhdfs.url=s3://bucket\nformat.class=io.confluent.connect.hdfs3.format.avro.AvroFormat\npartitioner.class=io.confluent.connect.storage.partitioner.TimeBasedPartitioner\npartition.duration.ms=-5\npath.format=yyyy/GG\nlocale=en_US\ntimezone=Mars/Olympus\ntimestamp.extractor=RecordField\nflush.size=ten\nshiny.new.key=1\n";
    let err = LandingConfig::from_properties(text, vec![]).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "hdfs.url",
            "format.class",
            "flush.size",
            "partition.duration.ms",
            "timezone",
            "path.format",
            "timestamp.field"
        ]
    );
    let text = err.to_string();
    assert!(text.contains("`format.class` = \"io.confluent.connect.hdfs3.format.avro.AvroFormat\": unsupported: this sink writes JSON only. Fix: format.class=io.confluent.connect.hdfs3.format.json.JsonFormat"), "{text}");
    assert!(
        text.contains("`flush.size` = \"ten\": not a whole number"),
        "{text}"
    );
    assert!(
        text.contains("pattern letter 'G' is not supported"),
        "{text}"
    );
}

#[test]
fn a_path_format_that_leaves_the_topic_directory_is_refused_with_the_fix() {
    for pattern in ["'..'/'..'/'..'/'escaped'", "YYYY/'.'/HH", "'/etc'/YYYY"] {
        let text = format!("{ATENEX}\npartition.duration.ms=3600000\npath.format={pattern}\n");
        let err = LandingConfig::from_properties(&text, vec![]).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].key, "path.format");
        let text = err.to_string();
        assert!(
            text.contains("must stay under <topics.dir>/<topic>"),
            "{text}"
        );
        assert!(text.contains("no '.' or '..' segment"), "{text}");
    }
}

#[test]
fn defaults_and_other_partitioners() {
    let base = "name=x\nconnector.class=io.confluent.connect.hdfs.HdfsSinkConnector\ntopics.regex=emb.*\nhdfs.url=./data/hdfs\nformat.class=io.confluent.connect.hdfs.json.JsonFormat\nflush.size=3\n";
    let c = LandingConfig::from_properties(base, vec![]).unwrap();
    assert_eq!(c.partitioner, Partitioner::Default);
    assert_eq!(c.topics, Topics::Regex("emb.*".into()));
    assert_eq!(
        c.store,
        Store::Local {
            root: "./data/hdfs".into()
        }
    );
    assert_eq!(
        (c.topics_dir.as_str(), c.logs_dir.as_str()),
        ("topics", "logs")
    );
    assert_eq!((c.rotate_interval_ms, c.idle_commit_ms), (None, 600_000));

    let hourly = format!(
        "{base}partitioner.class=io.confluent.connect.storage.partitioner.HourlyPartitioner\nlocale=en_US\ntimezone=Europe/Madrid\nerrors.tolerance=all\n"
    );
    let c = LandingConfig::from_properties(&hourly, vec![]).unwrap();
    let Partitioner::TimeBased {
        duration_ms,
        pattern,
        ..
    } = &c.partitioner
    else {
        panic!()
    };
    assert_eq!(
        (*duration_ms, pattern.as_str()),
        (3_600_000, "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH")
    );
    assert_eq!(c.errors, ErrorTolerance::All { dlq_topic: None });

    let err = LandingConfig::from_properties(
        &format!("{base}topics=a\nlogs.dir=topics\nrotate.interval.ms=x\n"),
        vec![],
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["topics.regex", "logs.dir", "rotate.interval.ms"]);
}
