//! The report over a landing tree in a real HDFS (a MiniDFSCluster from Maven Central, started by
//! atenex_hdfs::testing), writing its Parquet to HDFS: the same rows as on local disk, and a second
//! run replaces the first (HDFS has no atomic directory exchange: the two-rename path).

use atenex_hdfs::testing;
use atenex_report::generate::{DaySpec, write_day};
use atenex_report::store::LocalStore;
use atenex_report::{Location, Options, run};

fn options(landing: Location, reports: Location, spec: &DaySpec) -> Options {
    Options {
        date: spec.date,
        landing,
        reports,
        topic: "embeddings.ready".into(),
        allow_empty: false,
        skip_bad_records: false,
        threads: 2,
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
    let base = format!("{}{}", testing::namenode(), testing::unique_dir("report"));
    let landing = Location::open(&format!("{base}/atenex/kafka-landing")).unwrap();
    let written = tokio::task::block_in_place(|| {
        write_day(
            landing.store.as_ref(),
            &landing.path,
            "embeddings.ready",
            &spec,
        )
    })
    .unwrap();
    let reports = Location::open(&format!("{base}/atenex/reports")).unwrap();

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
        tokio::task::block_in_place(|| loc.store.read(&p)).unwrap()
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
