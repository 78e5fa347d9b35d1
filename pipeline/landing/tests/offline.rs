//! The Atenex properties file (with `partition.duration.ms` added) over a recorded stream that
//! crosses midnight: the documented layout, pinned by a reviewed snapshot of the tree.

use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs, LocalFs};
use atenex_landing::offline::run;
use atenex_landing::sink::Sink;
use std::io::BufReader;
use std::path::Path;

fn fixture(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(p)
}

fn config(root: &Path) -> LandingConfig {
    let text = std::fs::read_to_string(fixture("config/hdfs-sink-connector.properties")).unwrap();
    let env = vec![
        (
            "ATENEX_LANDING_PARTITION_DURATION_MS".to_owned(),
            "3600000".to_owned(),
        ),
        (
            "ATENEX_LANDING_HDFS_URL".to_owned(),
            format!("file://{}", root.display()),
        ),
        (
            "ATENEX_LANDING_TIMESTAMP_EXTRACTOR".to_owned(),
            "Record".to_owned(),
        ),
    ];
    LandingConfig::from_properties(&text, env).unwrap()
}

/// `path  lines` per committed file, relative to the store root.
fn listing(fs: &dyn Fs) -> String {
    let mut out = String::new();
    for dir in ["/atenex/kafka-landing", "/atenex/kafka-connect/logs"] {
        for f in fs.list(dir).unwrap() {
            let lines = fs
                .read(&f)
                .unwrap()
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            out.push_str(&format!("{f}  {lines}\n"));
        }
    }
    out
}

#[test]
fn the_atenex_file_lands_the_documented_tree() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let input = std::fs::File::open(fixture("streams/landing-hours.jsonl")).unwrap();
    let mut sink = Sink::new(LocalFs::new(dir.path()), config.clone(), true);
    let s = run(&mut sink, &config, BufReader::new(input), 0).unwrap();
    assert_eq!(
        (s.records, s.other_topics, s.bad, s.already_landed),
        (184, 0, 0, 0)
    );
    let tree = listing(&sink.fs);
    insta::assert_snapshot!(tree);

    // Same stream again: everything is already landed, nothing changes.
    let input = std::fs::File::open(fixture("streams/landing-hours.jsonl")).unwrap();
    let mut sink = Sink::new(LocalFs::new(dir.path()), config.clone(), true);
    let again = run(&mut sink, &config, BufReader::new(input), 0).unwrap();
    assert_eq!((again.records, again.already_landed), (0, 184));
    assert_eq!(listing(&sink.fs), tree);

    // And into a fresh tree, the same bytes (Record timestamps: deterministic).
    let other = tempfile::tempdir().unwrap();
    let config2 = self::config(other.path());
    let input = std::fs::File::open(fixture("streams/landing-hours.jsonl")).unwrap();
    let mut sink2 = Sink::new(LocalFs::new(other.path()), config2.clone(), true);
    run(&mut sink2, &config2, BufReader::new(input), 0).unwrap();
    assert_eq!(listing(&sink2.fs), tree);
}

#[test]
fn the_same_tree_lands_on_hdfs() {
    use atenex_hdfs::{Hdfs, HdfsUrl, testing};
    use atenex_landing::fs::hdfs::HdfsFs;
    let local = tempfile::tempdir().unwrap();
    let config_local = config(local.path());
    let input = std::fs::File::open(fixture("streams/landing-hours.jsonl")).unwrap();
    let mut sink = Sink::new(LocalFs::new(local.path()), config_local.clone(), true);
    run(&mut sink, &config_local, BufReader::new(input), 0).unwrap();

    let url = HdfsUrl::parse(&format!(
        "{}{}",
        testing::namenode(),
        testing::unique_dir("offline")
    ))
    .unwrap();
    let mut config_hdfs = config_local.clone();
    config_hdfs.store = atenex_landing::config::Store::Hdfs { url: url.clone() };
    let input = std::fs::File::open(fixture("streams/landing-hours.jsonl")).unwrap();
    let mut sink_hdfs = Sink::new(
        HdfsFs::new(Hdfs::connect(&url).unwrap()),
        config_hdfs.clone(),
        true,
    );
    let s = run(&mut sink_hdfs, &config_hdfs, BufReader::new(input), 0).unwrap();
    assert_eq!(s.records, 184);
    assert_eq!(listing(&sink_hdfs.fs), listing(&sink.fs));
    for f in sink.fs.list("/atenex/kafka-landing").unwrap() {
        assert_eq!(
            sink_hdfs.fs.read(&f).unwrap(),
            sink.fs.read(&f).unwrap(),
            "{f}: same bytes"
        );
    }
}
