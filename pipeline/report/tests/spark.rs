//! `--engine spark` against the default engine: the embedded PySpark job, run by a real Spark 3.5
//! (PyPI's `pyspark`, `local[2]`, installed by the test command), gives the same rows (read back
//! with the project's reader) and the same counts on generated days and on a day of edge cases;
//! fails with the same exit codes naming the file; an empty day never starts Spark; a Spark run
//! that dies leaves the old report in place and nothing staged. (HDFS: tests/hdfs.rs.)

use atenex_report::generate::{DaySpec, write_day};
use atenex_report::read::{Row, read_rows};
use atenex_report::spark::{SparkOptions, testing};
use atenex_report::store::LocalStore;
use atenex_report::{Location, Options, ReportError, Summary, run};
use chrono::NaiveDate;
use std::path::Path;

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

fn local(path: &Path) -> Location {
    Location::open(path.to_str().unwrap()).unwrap()
}

fn options(landing: &Path, reports: &Path, spark: Option<Vec<String>>) -> Options {
    Options {
        threads: 2,
        spark: spark.map(|submit| SparkOptions { submit }),
        ..Options::new(date(), local(landing), local(reports))
    }
}

fn report_dir(reports: &Path) -> std::path::PathBuf {
    reports.join("daily_chunk_count/date=2026-11-27")
}

/// Both engines over `landing`: their summaries and rows, after checking that the Spark report
/// has exactly the default engine's layout.
async fn both(landing: &Path, skip_bad: bool) -> ((Summary, Vec<Row>), (Summary, Vec<Row>)) {
    let out = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (name, spark) in [
        ("datafusion", None),
        ("spark", Some(testing::local_submit())),
    ] {
        let reports = out.path().join(name);
        let opts = Options {
            skip_bad_records: skip_bad,
            ..options(landing, &reports, spark)
        };
        let summary = run(&opts).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let dir = report_dir(&reports);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["_SUCCESS", "part-00000.parquet"], "{name}");
        assert_eq!(staged(&reports), [""; 0], "{name}");
        results.push((summary, read_rows(&dir).unwrap()));
    }
    let spark = results.pop().unwrap();
    (results.pop().unwrap(), spark)
}

/// The hidden entries beside the published reports (a staging or old directory left behind).
fn staged(reports: &Path) -> Vec<String> {
    std::fs::read_dir(reports.join("daily_chunk_count"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

fn same_counts(a: &Summary, b: &Summary) {
    let counts = |s: &Summary| {
        (
            s.files,
            s.records,
            s.companies,
            s.documents,
            s.duplicates,
            s.bad_skipped,
        )
    };
    assert_eq!(counts(a), counts(b));
}

/// `spec`'s day, generated into `dir/landing`: that landing directory.
fn generated_day(dir: &Path, spec: &DaySpec) -> std::path::PathBuf {
    let landing = dir.join("landing");
    write_day(
        &LocalStore,
        landing.to_str().unwrap(),
        "embeddings.ready",
        spec,
    )
    .unwrap();
    landing
}

/// Writes `text` as one landing file of the test day.
fn landed(landing: &Path, hour: u32, name: &str, text: &str) {
    let dir = landing.join(format!(
        "embeddings.ready/year=2026/month=11/day=27/hour={hour:02}"
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_give_the_same_rows_on_a_generated_day() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generated_day(
        dir.path(),
        &DaySpec {
            seed: 11,
            hours: 6,
            duplicates: 0.05,
            ..DaySpec::default()
        },
    );
    let ((a, rows_a), (b, rows_b)) = both(&landing, false).await;
    assert_eq!(rows_a.len(), 40);
    assert!(a.duplicates > 0, "the generator made duplicates");
    assert_eq!(rows_a, rows_b);
    same_counts(&a, &b);
}

/// Integer ids (one group with the same id as text), records without chunk_id, blank lines,
/// CRLF line ends, ids in other scripts, a duplicate delivery; then the same day with malformed
/// lines of every kind, skipped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_agree_on_edge_cases_and_skipped_lines() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    landed(
        &landing,
        0,
        "embeddings.ready+0+0+5.json",
        "{\"company_id\":123,\"document_id\":\"d1\",\"chunk_id\":\"k1\",\"vector\":[0.5,-1e-3]}\n\
         {\"company_id\":\"123\",\"document_id\":\"d1\",\"chunk_id\":\"k2\"}\n\
         \n   \n\
         {\"company_id\":\"c\",\"document_id\":\"d2\"}\r\n\
         {\"company_id\":\"c\",\"document_id\":\"d2\",\"chunk_id\":\"k\"}\r\n\
         {\"company_id\":\"c\",\"document_id\":\"d2\",\"chunk_id\":\"k\"}\n",
    );
    landed(
        &landing,
        13,
        "embeddings.ready+1+7+9.json",
        "{\"vector\":[1,2],\"chunk_id\":\"ü_1\",\"document_id\":\"документ\",\"company_id\":\"会社\",\"text\":\"a \\\"quoted\\\" {text}\"}\n\
         {\"company_id\":\"c\",\"document_id\":\"d3\",\"chunk_id\":null}\n",
    );
    let ((a, rows_a), (b, rows_b)) = both(&landing, false).await;
    assert_eq!(rows_a.len(), 4, "{rows_a:?}");
    assert_eq!(rows_a, rows_b);
    same_counts(&a, &b);

    landed(
        &landing,
        14,
        "embeddings.ready+2+0+6.json",
        "{\"company_id\":\"c\",\"document_id\":\"d4\",\"chunk_id\":\"k\"}\n\
         {not json\n\
         [\"an\",\"array\"]\n\
         42\n\
         {\"company_id\":{\"nested\":1},\"document_id\":\"d4\"}\n\
         {\"company_id\":\"c\",\"document_id\":true}\n\
         {\"company_id\":\"c\",\"document_id\":\"d4\",\"chunk_id\":[\"k\"]}\n\
         {\"company_id\":\"true\",\"document_id\":\"{x}\",\"chunk_id\":\"[y]\"}\n",
    );
    let ((a, rows_a), (b, rows_b)) = both(&landing, true).await;
    assert_eq!(a.bad_skipped, 6, "{:?}", a.first_bad);
    assert_eq!(rows_a, rows_b);
    same_counts(&a, &b);
    assert!(
        b.first_bad
            .iter()
            .all(|l| l.contains("embeddings.ready+2+0+6.json")),
        "{:?}",
        b.first_bad
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_fails_with_the_default_engines_codes_naming_the_file() {
    let good = "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"k\"}\n";
    for (bad, code, words) in [
        (
            "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"k\"\n",
            5,
            "malformed record",
        ),
        (
            "{\"document_id\":\"d\",\"chunk_id\":\"k\"}\n",
            4,
            "record without company_id",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let landing = dir.path().join("landing");
        landed(&landing, 1, "embeddings.ready+0+0+1.json", good);
        landed(
            &landing,
            2,
            "embeddings.ready+0+2+3.json",
            &format!("{good}{bad}"),
        );
        for spark in [None, Some(testing::local_submit())] {
            let engine = if spark.is_some() {
                "spark"
            } else {
                "datafusion"
            };
            let reports = dir.path().join(engine);
            let e = run(&options(&landing, &reports, spark)).await.unwrap_err();
            assert_eq!(e.code(), code, "{engine}: {e}");
            let message = e.to_string();
            assert!(
                message.contains("hour=02/embeddings.ready+0+2+3.json") && message.contains(words),
                "{engine}: {message}"
            );
            assert!(
                !report_dir(&reports).exists(),
                "{engine}: nothing published"
            );
        }
    }
}

/// An empty day is decided before any engine runs: the submit command here would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_day_never_starts_spark() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let never = Some(vec!["false".to_owned()]);
    let reports = dir.path().join("reports");
    let e = run(&options(&landing, &reports, never.clone()))
        .await
        .unwrap_err();
    assert!(matches!(e, ReportError::NoData { .. }), "{e}");
    let opts = Options {
        allow_empty: true,
        ..options(&landing, &reports, never)
    };
    run(&opts).await.unwrap();
    assert_eq!(read_rows(&report_dir(&reports)).unwrap(), []);
}

/// A Spark run that dies (here: a submit command that leaves a partial output and is killed)
/// fails the report with Spark's words, and the old report stays, with nothing staged left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spark_run_that_dies_leaves_the_old_report() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    landed(
        &landing,
        1,
        "embeddings.ready+0+0+1.json",
        "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"k\"}\n",
    );
    let reports = dir.path().join("reports");
    run(&options(&landing, &reports, None)).await.unwrap();
    let before = read_rows(&report_dir(&reports)).unwrap();
    landed(
        &landing,
        2,
        "embeddings.ready+0+1+1.json",
        "{\"company_id\":\"c\",\"document_id\":\"e\",\"chunk_id\":\"k\"}\n",
    );
    // $1 is the job's file, $3 the staging directory's URL.
    let dies = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "d=\"${3#file://}\"; mkdir -p \"$d/_spark\"; echo partial > \"$d/_spark/part-00000-x.snappy.parquet\"; \
         echo 'java.lang.OutOfMemoryError: Java heap space' >&2; kill -9 $$"
            .to_owned(),
        "spark-submit".to_owned(),
    ];
    let e = run(&options(&landing, &reports, Some(dies)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 1, "{e}");
    assert!(e.to_string().contains("OutOfMemoryError"), "{e}");
    assert_eq!(read_rows(&report_dir(&reports)).unwrap(), before);
    assert_eq!(staged(&reports), [""; 0], "nothing staged left");
}

/// A real Spark run killed (SIGKILL to its JVM) once it has begun writing its output: the report
/// fails, the old report stays, nothing staged is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spark_run_killed_while_writing_leaves_the_old_report() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generated_day(
        dir.path(),
        &DaySpec {
            seed: 5,
            hours: 2,
            ..DaySpec::default()
        },
    );
    let reports = dir.path().join("reports");
    let old = "{\"company_id\":\"old\",\"document_id\":\"report\",\"chunk_id\":\"k\"}\n";
    let old_landing = dir.path().join("old");
    landed(&old_landing, 3, "embeddings.ready+0+0+0.json", old);
    run(&options(&old_landing, &reports, None)).await.unwrap();
    let before = read_rows(&report_dir(&reports)).unwrap();
    // spark-submit execs its JVM: $! is the JVM. Killed as soon as the job's output directory
    // appears (Spark creates it when the write begins).
    let mut submit = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "\"$@\" & pid=$!; \
         prev=; for a in \"$@\"; do [ \"$prev\" = --staging ] && d=\"${a#file://}\"; prev=\"$a\"; done; \
         while [ ! -d \"$d/_spark\" ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done; \
         if kill -9 $pid 2>/dev/null; then echo 'killed while writing' >&2; \
         else echo 'Spark ended before it was killed' >&2; fi; exit 137"
            .to_owned(),
        "sh".to_owned(),
    ];
    submit.extend(testing::local_submit());
    let e = run(&options(&landing, &reports, Some(submit)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 1, "{e}");
    assert!(e.to_string().contains("killed while writing"), "{e}");
    assert_eq!(read_rows(&report_dir(&reports)).unwrap(), before);
    assert_eq!(staged(&reports), [""; 0], "nothing staged left");
}
