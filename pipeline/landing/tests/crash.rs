//! Crash the in-memory filesystem after every single effect of a replay, recover, continue, and
//! check that every input offset lands in exactly one committed file, in the right directory, with
//! no temp file or commit log left behind, and that recovery resumed at max committed end + 1.

use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs, MemFs};
use atenex_landing::partitioner::encode;
use atenex_landing::recovery::parse_committed;
use atenex_landing::sink::Sink;
use std::collections::BTreeMap;

const CONFIG: &str = "name=crash\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics=a,b\nhdfs.url=file:///x\n\
topics.dir=/land\nlogs.dir=/logs\nformat.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size=5\n\
rotate.interval.ms=1200000\npartitioner.class=io.confluent.connect.storage.partitioner.TimeBasedPartitioner\n\
partition.duration.ms=3600000\npath.format='year'=YYYY/'month'=MM/'day'=dd/'hour'=HH\nlocale=en_US\ntimezone=UTC\n\
timestamp.extractor=Record\n";

#[derive(Clone)]
struct Rec {
    topic: &'static str,
    partition: i32,
    offset: i64,
    ts: i64,
}

/// 4 partitions × about 180 records over 9 hours (crossing midnight), some late for an older hour.
fn stream() -> Vec<Rec> {
    let base = 1_795_816_800_000i64; // 2026-11-27T22:00:00Z
    let mut seed = 7u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut offsets: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    let mut out = Vec::new();
    for i in 0..720i64 {
        let topic = if next() % 2 == 0 { "a" } else { "b" };
        let partition = (next() % 2) as i32;
        let o = offsets.entry((topic, partition)).or_default();
        let late = next() % 9 == 0;
        let ts = base + i * 45_000 - if late { 3_600_000 } else { 0 };
        out.push(Rec {
            topic,
            partition,
            offset: *o,
            ts,
        });
        *o += 1;
    }
    out
}

fn value(r: &Rec) -> Vec<u8> {
    format!(
        r#"{{"t":"{}","p":{},"o":{},"ts":{}}}"#,
        r.topic, r.partition, r.offset, r.ts
    )
    .into_bytes()
}

const PARTITIONS: [(&str, i32); 4] = [("a", 0), ("a", 1), ("b", 0), ("b", 1)];

/// Feeds `recs` (skipping what is below each partition's resume offset).
fn feed(
    sink: &mut Sink<MemFs>,
    recs: &[Rec],
    resume: &BTreeMap<(&str, i32), i64>,
) -> std::io::Result<()> {
    for r in recs {
        if resume
            .get(&(r.topic, r.partition))
            .is_some_and(|&from| r.offset < from)
        {
            continue;
        }
        sink.write(r.topic, r.partition, r.offset, r.ts, &value(r), 0)?;
    }
    sink.flush_all()
}

fn open_all(sink: &mut Sink<MemFs>) -> std::io::Result<BTreeMap<(&'static str, i32), i64>> {
    let mut resume = BTreeMap::new();
    for (t, p) in PARTITIONS {
        if let Some(r) = sink.open(t, p)? {
            resume.insert((t, p), r);
        }
    }
    Ok(resume)
}

fn check(fs: &MemFs, recs: &[Rec], config: &LandingConfig, context: &str) {
    assert!(
        fs.list("/land/+tmp").unwrap().is_empty(),
        "{context}: temp files left"
    );
    assert!(
        fs.list("/logs").unwrap().is_empty(),
        "{context}: commit logs left"
    );
    let mut seen: BTreeMap<(String, i64, i64), usize> = BTreeMap::new();
    for topic in ["a", "b"] {
        for path in fs.list(&format!("/land/{topic}")).unwrap() {
            let (partition, start, end) = parse_committed(&path, topic)
                .unwrap_or_else(|| panic!("{context}: odd file {path}"));
            let text = String::from_utf8(fs.read(&path).unwrap().unwrap()).unwrap();
            let offsets: Vec<i64> = text
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    assert_eq!(
                        (v["t"].as_str(), v["p"].as_i64()),
                        (Some(topic), Some(i64::from(partition))),
                        "{context}: {path}"
                    );
                    let dir = encode(&config.partitioner, partition, v["ts"].as_i64().unwrap());
                    assert!(
                        path.starts_with(&format!("/land/{topic}/{dir}/")),
                        "{context}: {path} holds a record of {dir}"
                    );
                    v["o"].as_i64().unwrap()
                })
                .collect();
            assert_eq!(
                (offsets.first(), offsets.last()),
                (Some(&start), Some(&end)),
                "{context}: {path} name and content"
            );
            for o in offsets {
                *seen
                    .entry((topic.to_owned(), i64::from(partition), o))
                    .or_default() += 1;
            }
        }
    }
    for r in recs {
        let n = seen
            .remove(&(r.topic.to_owned(), i64::from(r.partition), r.offset))
            .unwrap_or(0);
        assert_eq!(
            n, 1,
            "{context}: {}[{}]@{} is in {n} files",
            r.topic, r.partition, r.offset
        );
    }
    assert!(
        seen.is_empty(),
        "{context}: records that were never sent: {seen:?}"
    );
}

#[test]
fn a_crash_after_any_effect_loses_and_repeats_nothing() {
    let recs = stream();
    let config = LandingConfig::from_properties(CONFIG, vec![]).unwrap();

    let mut clean = Sink::new(MemFs::new(), config.clone(), true);
    open_all(&mut clean).unwrap();
    feed(&mut clean, &recs, &BTreeMap::new()).unwrap();
    check(&clean.fs, &recs, &config, "without a crash");
    let effects = clean.fs.effects();
    assert!(effects > 1_000, "thousands of crash points: {effects}");
    eprintln!("{effects} crash points");

    for k in 0..effects {
        let context = format!("crash after {k} effects");
        let mut fs = MemFs::new();
        fs.crash_after(k);
        let mut sink = Sink::new(fs, config.clone(), true);
        let crashed = open_all(&mut sink).and_then(|resume| feed(&mut sink, &recs, &resume));
        assert!(crashed.is_err(), "{context}: the crash happened");
        let mut fs = sink.fs;
        fs.crash();

        let mut sink = Sink::new(fs, config.clone(), true);
        let resume = open_all(&mut sink).unwrap();
        // Recovery resumes at max committed end + 1.
        for (t, p) in PARTITIONS {
            let max_end = sink
                .fs
                .list(&format!("/land/{t}"))
                .unwrap()
                .iter()
                .filter_map(|f| parse_committed(f, t))
                .filter(|(q, _, _)| *q == p)
                .map(|(_, _, e)| e + 1)
                .max();
            assert_eq!(
                resume.get(&(t, p)).copied(),
                max_end,
                "{context}: resume of {t}[{p}]"
            );
        }
        feed(&mut sink, &recs, &resume).unwrap();
        check(&sink.fs, &recs, &config, &context);
    }
}
