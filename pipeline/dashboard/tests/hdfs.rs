//! The dashboard reads the daily reports from HDFS (`--reports hdfs://...`) with the report job's
//! own store: a real MiniDFSCluster from Maven Central, started by the test harness.

use atenex_dashboard::reports::Reports;
use atenex_report::arrow::array::{Int64Array, StringArray};
use atenex_report::arrow::record_batch::RecordBatch;
use std::sync::Arc;

#[test]
fn reports_on_hdfs_are_listed_and_read() {
    let url = format!(
        "{}{}",
        atenex_hdfs::testing::namenode(),
        atenex_hdfs::testing::unique_dir("dashboard-reports")
    );
    let location = atenex_report::Location::open(&url).unwrap();
    let batch = RecordBatch::try_new(
        atenex_report::report::schema(),
        vec![
            Arc::new(StringArray::from(vec!["acme", "globex"])),
            Arc::new(StringArray::from(vec!["doc-1", "doc-2"])),
            Arc::new(Int64Array::from(vec![5, 7])),
            Arc::new(Int64Array::from(vec![5, 6])),
        ],
    )
    .unwrap();
    let parquet = atenex_report::report::to_parquet(&batch).unwrap();
    let day = location.join("daily_chunk_count/date=2026-11-27");
    location
        .store
        .write(&format!("{day}/{}", atenex_report::report::PART), &parquet)
        .unwrap();
    location
        .store
        .write(&format!("{day}/_SUCCESS"), b"")
        .unwrap();
    // Written but not published: not listed.
    let unpublished = location.join("daily_chunk_count/date=2026-11-28");
    location
        .store
        .write(
            &format!("{unpublished}/{}", atenex_report::report::PART),
            &parquet,
        )
        .unwrap();

    let reports = Reports::open(&url).unwrap();
    assert_eq!(reports.dates().unwrap(), vec!["2026-11-27".to_owned()]);
    let r = reports.day_report("2026-11-27").unwrap().unwrap();
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.companies["globex"].total_chunks, 7);
    assert_eq!(r.companies["globex"].unique_chunks, 6);
    assert_eq!(reports.parquet("2026-11-27").unwrap().unwrap(), parquet);
    assert!(reports.day_report("2026-11-29").unwrap().is_none());
    assert!(reports.day_report("../x").unwrap().is_none());
}
