//! The report end to end over generated landing trees: totals against an independent recount,
//! the Parquet schema read back, every error path, and the atomic replace under injected crashes.

use atenex_report::generate::{DaySpec, write_day};
use atenex_report::store::{LocalStore, Store};
use atenex_report::{Location, Options, ReportError, run};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type Rows = Vec<(String, String, i64, i64)>;

fn local(path: &Path) -> Location {
    Location::open(path.to_str().unwrap()).unwrap()
}

fn options(landing: Location, reports: Location, date: NaiveDate) -> Options {
    Options {
        threads: 2,
        ..Options::new(date, landing, reports)
    }
}

/// The report's rows, read back from its Parquet file, after checking the schema.
fn read_report(dir: &Path) -> Rows {
    assert!(
        dir.join("_SUCCESS").exists(),
        "{} has _SUCCESS",
        dir.display()
    );
    let bytes = bytes::Bytes::from(std::fs::read(dir.join("part-00000.parquet")).unwrap());
    rows_of(bytes)
}

fn rows_of(bytes: bytes::Bytes) -> Rows {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let schema = builder.schema().clone();
    let fields: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("company_id", &DataType::Utf8),
            ("document_id", &DataType::Utf8),
            ("total_chunks", &DataType::Int64),
            ("unique_chunks", &DataType::Int64),
        ],
        "exact column names and types"
    );
    let mut rows = Vec::new();
    for b in builder.build().unwrap() {
        let b: RecordBatch = b.unwrap();
        let s = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let n = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        let (c, d, t, u) = (s(0), s(1), n(2), n(3));
        for i in 0..b.num_rows() {
            rows.push((c.value(i).into(), d.value(i).into(), t.value(i), u.value(i)));
        }
    }
    rows
}

/// Counted independently: every line of every file under the day's directory, parsed whole.
fn recount(landing: &Path, date: NaiveDate) -> Rows {
    let day = landing.join(format!(
        "embeddings.ready/year={}/month={}/day={}",
        date.format("%Y"),
        date.format("%m"),
        date.format("%d")
    ));
    let mut groups: BTreeMap<(String, String), (i64, BTreeSet<String>)> = BTreeMap::new();
    for hour in std::fs::read_dir(&day).unwrap() {
        for file in std::fs::read_dir(hour.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let g = groups
                    .entry((
                        v["company_id"].as_str().unwrap().to_owned(),
                        v["document_id"].as_str().unwrap().to_owned(),
                    ))
                    .or_default();
                g.0 += 1;
                g.1.insert(v["chunk_id"].as_str().unwrap().to_owned());
            }
        }
    }
    groups
        .into_iter()
        .map(|((c, d), (t, u))| (c, d, t, u.len() as i64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_equal_an_independent_recount() {
    for seed in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let landing = dir.path().join("landing");
        let spec = DaySpec {
            seed,
            duplicates: 0.05,
            ..DaySpec::default()
        };
        let written = write_day(
            &LocalStore,
            landing.to_str().unwrap(),
            "embeddings.ready",
            &spec,
        )
        .unwrap();
        let reports = dir.path().join("reports");
        let s = run(&options(local(&landing), local(&reports), spec.date))
            .await
            .unwrap();
        let rows = read_report(&reports.join("daily_chunk_count/date=2026-11-27"));
        let expected = recount(&landing, spec.date);
        assert_eq!(rows, expected, "seed {seed}");
        assert_eq!(
            (s.files, s.bytes, s.records),
            (written.files, written.bytes, written.records)
        );
        let totals: i64 = rows.iter().map(|r| r.2).sum();
        let uniques: i64 = rows.iter().map(|r| r.3).sum();
        assert_eq!(s.records as i64, totals);
        assert_eq!(s.duplicates as i64, totals - uniques);
        assert!(s.duplicates > 0, "the generator made duplicates");
        assert_eq!(s.documents as usize, rows.len());
        assert_eq!(s.companies, 5);
        assert_eq!(
            rows.len(),
            40,
            "5 companies x 8 documents; neighbouring days excluded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_has_its_exit_code_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    let reports = dir.path().join("reports");
    let date = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let hour = landing.join("embeddings.ready/year=2026/month=11/day=27/hour=05");

    // No data: the path looked at; --allow-empty writes an empty report.
    let e = run(&options(local(&landing), local(&reports), date))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 3);
    assert!(
        e.to_string().contains(&format!(
            "{}/embeddings.ready/year=2026/month=11/day=27",
            landing.display()
        )),
        "{e}"
    );
    let mut o = options(local(&landing), local(&reports), date);
    o.allow_empty = true;
    let s = run(&o).await.unwrap();
    assert_eq!((s.files, s.records, s.documents), (0, 0, 0));
    assert_eq!(
        read_report(&reports.join("daily_chunk_count/date=2026-11-27")),
        vec![]
    );

    // A record without ids: the file, the line and the fields found.
    std::fs::create_dir_all(&hour).unwrap();
    let file = hour.join("embeddings.ready+0+0000000000+0000000001.json");
    std::fs::write(&file, "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"d_0\"}\n{\"company_id\":\"c\",\"chunk_id\":\"d_1\",\"vector\":[1]}\n").unwrap();
    let e = run(&options(local(&landing), local(&reports), date))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 4);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: record without document_id; fields found: chunk_id, company_id, vector",
            file.display()
        )
    );

    // A malformed line: file and line; --skip-bad-records counts it.
    std::fs::write(&file, "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"d_0\"}\n{\"company_id\":\"c\",\"docu\n").unwrap();
    let e = run(&options(local(&landing), local(&reports), date))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 5);
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2: malformed record: ", file.display())),
        "{e}"
    );
    let mut o = options(local(&landing), local(&reports), date);
    o.skip_bad_records = true;
    let s = run(&o).await.unwrap();
    assert_eq!((s.records, s.bad_skipped), (1, 1));
    assert_eq!(
        read_report(&reports.join("daily_chunk_count/date=2026-11-27")),
        vec![("c".into(), "d".into(), 1, 1)]
    );

    // An unreadable filesystem: the landing "directory" is a file.
    let not_a_dir = dir.path().join("plain-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let e = run(&options(local(&not_a_dir), local(&reports), date))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 6, "{e}");
    assert!(e.to_string().starts_with("listing "), "{e}");
    assert!(matches!(e, ReportError::Storage { .. }));
}

/// The local store, failing every effect after the first `budget` (a crash), optionally without
/// the atomic directory exchange (as on HDFS).
struct Crashing {
    budget: AtomicUsize,
    exchange: bool,
}

impl Crashing {
    fn effect(&self) -> io::Result<()> {
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
            .map(drop)
            .map_err(|_| io::Error::other("injected crash"))
    }
}

impl Store for Crashing {
    fn describe(&self, path: &str) -> String {
        path.to_owned()
    }
    fn url(&self, path: &str) -> String {
        LocalStore.url(path)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<(String, u64)>> {
        LocalStore.list(dir)
    }
    fn subdirs(&self, dir: &str) -> io::Result<Vec<String>> {
        LocalStore.subdirs(dir)
    }
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        LocalStore.read(path, limit)
    }
    fn lock(&self, path: &str) -> io::Result<Box<dyn std::any::Any + Send>> {
        LocalStore.lock(path)
    }
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.effect()?;
        LocalStore.write(path, data)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        LocalStore.exists(path)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.effect()?;
        LocalStore.rename(from, to)
    }
    fn replace_file(&self, from: &str, to: &str) -> io::Result<()> {
        self.effect()?;
        LocalStore.replace_file(from, to)
    }
    fn exchange(&self, a: &str, b: &str) -> io::Result<bool> {
        if !self.exchange {
            return Ok(false);
        }
        self.effect()?;
        LocalStore.exchange(a, b)
    }
    fn remove_all(&self, path: &str) -> io::Result<()> {
        self.effect()?;
        LocalStore.remove_all(path)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_point_of_a_replace_leaves_the_old_report_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    let spec = DaySpec::default();
    write_day(
        &LocalStore,
        landing.to_str().unwrap(),
        "embeddings.ready",
        &spec,
    )
    .unwrap();
    let new_rows = recount(&landing, spec.date);
    let old_rows: Rows = vec![("old".into(), "report".into(), 1, 1)];

    // Local disk (exchange) and HDFS (none); an old report of ours, or one Spark wrote.
    for (exchange, spark_layout) in [(true, false), (true, true), (false, false), (false, true)] {
        for budget in 0..10 {
            let reports = dir
                .path()
                .join(format!("reports-{exchange}-{spark_layout}-{budget}"));
            let target = reports.join("daily_chunk_count/date=2026-11-27");
            // The old report (a Spark-like directory with a differently named part file).
            std::fs::create_dir_all(&target).unwrap();
            let old = atenex_report::report::to_parquet(&{
                let schema = atenex_report::report::schema();
                RecordBatch::try_new(
                    schema,
                    vec![
                        Arc::new(StringArray::from(vec!["old"])),
                        Arc::new(StringArray::from(vec!["report"])),
                        Arc::new(Int64Array::from(vec![1])),
                        Arc::new(Int64Array::from(vec![1])),
                    ],
                )
                .unwrap()
            })
            .unwrap();
            let old_name = if spark_layout {
                "part-00000-7d3c0e9a-51b6-4a8e-9a57-0b1c2d3e4f50-c000.snappy.parquet"
            } else {
                "part-00000.parquet"
            };
            std::fs::write(target.join(old_name), &old).unwrap();
            std::fs::write(target.join("_SUCCESS"), "").unwrap();

            let crashing = Location {
                store: Arc::new(Crashing {
                    budget: AtomicUsize::new(budget),
                    exchange,
                }),
                path: reports.to_str().unwrap().to_owned(),
            };
            let outcome = run(&options(local(&landing), crashing, spec.date)).await;
            let at_crash = read_dir_rows(&target);
            // Only replacing a Spark-made report on HDFS has a moment without a report (repaired
            // by the next run, below).
            if exchange || !spark_layout {
                assert!(
                    at_crash == Some(old_rows.clone()) || at_crash == Some(new_rows.clone()),
                    "exchange={exchange} spark_layout={spark_layout}, crash after {budget} effects: never neither, never a mix: {at_crash:?} {outcome:?}"
                );
            }
            if outcome.is_ok() {
                assert_eq!(at_crash, Some(new_rows.clone()));
            }
            // The next run repairs first (and then replaces again).
            let s = run(&options(local(&landing), local(&reports), spec.date))
                .await
                .unwrap();
            assert_eq!(
                read_report(&target),
                new_rows,
                "exchange={exchange} budget={budget}"
            );
            let leftovers: Vec<String> = std::fs::read_dir(reports.join("daily_chunk_count"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                leftovers,
                vec!["date=2026-11-27".to_owned()],
                "{:?}",
                s.repaired
            );
            if !exchange && at_crash.is_none() {
                assert!(
                    s.repaired.iter().any(|r| r.starts_with("restored")),
                    "{:?}",
                    s.repaired
                );
            }
        }
    }
}

/// The rows of a report directory, or `None` if it is not a complete report.
fn read_dir_rows(dir: &Path) -> Option<Rows> {
    if !dir.join("_SUCCESS").exists() {
        return None;
    }
    let files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one part file in {}: {files:?}",
        dir.display()
    );
    Some(rows_of(bytes::Bytes::from(
        std::fs::read(dir.join(&files[0])).ok()?,
    )))
}
