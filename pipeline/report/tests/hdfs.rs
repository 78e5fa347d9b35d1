//! The report over a landing tree in a real HDFS (a MiniDFSCluster from Maven Central, started by
//! atenex_hdfs::testing), writing its Parquet to HDFS: the same rows as on local disk, and a second
//! run replaces the first (HDFS has no atomic directory exchange: the two-rename path).

use atenex_hdfs::testing;
use atenex_report::generate::{DaySpec, Written, write_day};
use atenex_report::store::LocalStore;
use atenex_report::{Location, Options, run};

/// `spec`'s day landed in a fresh HDFS directory named after `name`: that directory's URL, its
/// landing and reports locations, and what was written.
fn day_on_hdfs(name: &str, spec: &DaySpec) -> (String, Location, Location, Written) {
    let base = format!("{}{}", testing::namenode(), testing::unique_dir(name));
    let landing = Location::open(&format!("{base}/atenex/kafka-landing")).unwrap();
    let written = tokio::task::block_in_place(|| {
        write_day(
            landing.store.as_ref(),
            &landing.path,
            "embeddings.ready",
            spec,
        )
    })
    .unwrap();
    let reports = Location::open(&format!("{base}/atenex/reports")).unwrap();
    (base, landing, reports, written)
}

fn options(landing: Location, reports: Location, spec: &DaySpec) -> Options {
    Options {
        threads: 2,
        ..Options::new(spec.date, landing, reports)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_reads_and_writes_hdfs() {
    let spec = DaySpec {
        seed: 7,
        hours: 6,
        ..DaySpec::default()
    };
    // The same tree on local disk and in HDFS.
    let dir = tempfile::tempdir().unwrap();
    let local_landing = dir.path().join("landing");
    write_day(
        &LocalStore,
        local_landing.to_str().unwrap(),
        "embeddings.ready",
        &spec,
    )
    .unwrap();
    let (base, landing, reports, written) = day_on_hdfs("report", &spec);

    let on_local = run(&options(
        Location::open(local_landing.to_str().unwrap()).unwrap(),
        Location::open(dir.path().join("reports").to_str().unwrap()).unwrap(),
        &spec,
    ))
    .await
    .unwrap();
    let on_hdfs = run(&options(landing.clone(), reports.clone(), &spec))
        .await
        .unwrap();
    assert_eq!(
        (on_hdfs.files, on_hdfs.bytes, on_hdfs.records),
        (written.files, written.bytes, written.records)
    );
    assert_eq!(
        (
            on_hdfs.records,
            on_hdfs.companies,
            on_hdfs.documents,
            on_hdfs.duplicates
        ),
        (
            on_local.records,
            on_local.companies,
            on_local.documents,
            on_local.duplicates
        )
    );
    assert_eq!(
        on_hdfs.output,
        format!("{base}/atenex/reports/daily_chunk_count/date=2026-11-27")
    );
    let part = |loc: &Location| {
        let p = loc.join("daily_chunk_count/date=2026-11-27/part-00000.parquet");
        tokio::task::block_in_place(|| loc.store.read(&p, u64::MAX)).unwrap()
    };
    let local_reports = Location::open(dir.path().join("reports").to_str().unwrap()).unwrap();
    assert_eq!(
        part(&reports),
        part(&local_reports),
        "the same Parquet bytes"
    );

    // Again: the report is replaced (old renamed away, new renamed in, old removed).
    let again = run(&options(landing, reports.clone(), &spec))
        .await
        .unwrap();
    assert_eq!(again.records, on_hdfs.records);
    let names =
        tokio::task::block_in_place(|| reports.store.subdirs(&reports.join("daily_chunk_count")))
            .unwrap();
    assert_eq!(names, vec!["date=2026-11-27".to_owned()], "no leftovers");
    assert_eq!(part(&reports), part(&local_reports));
}

/// DataFusion itself queries the landing tree on HDFS through `HdfsObjectStore` (its JSON reader,
/// all fields inferred): its counts equal the report's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datafusion_queries_hdfs_through_the_object_store_and_agrees() {
    use atenex_hdfs::object_store::HdfsObjectStore;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::functions_aggregate::expr_fn::count;
    use datafusion::prelude::{JsonReadOptions, SessionContext, col, lit};
    use std::sync::Arc;

    let spec = DaySpec {
        seed: 11,
        hours: 4,
        dims: 4,
        ..DaySpec::default()
    };
    let (base, landing, reports, _) = day_on_hdfs("datafusion", &spec);
    let ours = run(&options(landing.clone(), reports, &spec))
        .await
        .unwrap();

    let hdfs = atenex_hdfs::Hdfs::connect(&atenex_hdfs::HdfsUrl::parse(&base).unwrap()).unwrap();
    let ctx = SessionContext::new();
    ctx.register_object_store(
        &url::Url::parse(testing::namenode()).unwrap(),
        Arc::new(HdfsObjectStore::new(&hdfs)),
    );
    let day = format!("{base}/atenex/kafka-landing/embeddings.ready/year=2026/month=11/day=27/");
    let batches = ctx
        .read_json(&day, JsonReadOptions::default().file_extension(".json"))
        .await
        .unwrap()
        .aggregate(
            vec![col("company_id"), col("document_id")],
            vec![count(lit(1)).alias("n")],
        )
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut theirs: Vec<(String, String, i64)> = Vec::new();
    for b in &batches {
        let c = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let d = datafusion::arrow::compute::cast(
            b.column(1),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let (c, d) = (
            c.as_any().downcast_ref::<StringArray>().unwrap(),
            d.as_any().downcast_ref::<StringArray>().unwrap(),
        );
        let n = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            theirs.push((c.value(i).into(), d.value(i).into(), n.value(i)));
        }
    }
    theirs.sort();
    assert_eq!(theirs.len() as u64, ours.documents);
    assert_eq!(theirs.iter().map(|r| r.2 as u64).sum::<u64>(), ours.records);
}

/// On HDFS a second run for the same date is refused while the first holds the date's lock (a
/// file the name node creates only if absent), with exit 7's error naming it; once the holder is
/// done, the lock file is gone and a run goes through (issue 15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_for_a_date_is_refused_on_hdfs_too() {
    let spec = DaySpec {
        seed: 3,
        hours: 1,
        ..DaySpec::default()
    };
    let (_, landing, reports, _) = day_on_hdfs("lock", &spec);
    let lock = reports.join(&format!("daily_chunk_count/.date={}.lock", spec.date));
    let held = tokio::task::block_in_place(|| reports.store.lock(&lock)).unwrap();
    let second = tokio::task::block_in_place(|| reports.store.lock(&lock));
    assert_eq!(
        second.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::WouldBlock)
    );
    let busy = run(&options(landing.clone(), reports.clone(), &spec))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), 7, "{busy}");
    assert!(busy.to_string().contains(".lock"), "{busy}");
    drop(held);
    assert!(!tokio::task::block_in_place(|| reports.store.exists(&lock)).unwrap());
    let done = run(&options(landing, reports.clone(), &spec))
        .await
        .unwrap();
    assert!(done.records > 0);
    assert!(!tokio::task::block_in_place(|| reports.store.exists(&lock)).unwrap());
}

/// `--engine spark` on HDFS: Spark 3.5 (PyPI's pyspark, local[2], its own Hadoop client) reads
/// the landing tree and writes its output into the staging directory on the MiniDFSCluster; the
/// published report has the rows the default engine gives on the same day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spark_engine_reads_and_writes_hdfs() {
    use atenex_report::read::rows_of;
    use atenex_report::spark::{SparkOptions, testing as spark};
    let spec = DaySpec {
        seed: 9,
        hours: 4,
        duplicates: 0.05,
        ..DaySpec::default()
    };
    let (_, landing, reports, written) = day_on_hdfs("spark", &spec);
    let default = run(&options(landing.clone(), reports.clone(), &spec))
        .await
        .unwrap();
    let read = |loc: &Location| {
        let p = loc.join("daily_chunk_count/date=2026-11-27/part-00000.parquet");
        let bytes = tokio::task::block_in_place(|| loc.store.read(&p, u64::MAX)).unwrap();
        rows_of(&p, bytes.into()).unwrap()
    };
    let expected = read(&reports);
    let on_spark = run(&Options {
        spark: Some(SparkOptions {
            submit: spark::local_submit(),
        }),
        ..options(landing, reports.clone(), &spec)
    })
    .await
    .unwrap();
    assert_eq!(on_spark.records, written.records);
    assert_eq!(
        (on_spark.documents, on_spark.duplicates),
        (default.documents, default.duplicates)
    );
    assert_eq!(read(&reports), expected);
    let dir = reports.join("daily_chunk_count/date=2026-11-27");
    let mut names: Vec<String> = tokio::task::block_in_place(|| reports.store.list(&dir))
        .unwrap()
        .into_iter()
        .map(|(p, _)| p.rsplit('/').next().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["_SUCCESS", "part-00000.parquet"]);
    let names =
        tokio::task::block_in_place(|| reports.store.subdirs(&reports.join("daily_chunk_count")))
            .unwrap();
    assert_eq!(names, vec!["date=2026-11-27".to_owned()], "no leftovers");
}
