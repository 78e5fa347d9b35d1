//! `atenex report` as users run it: defaults from ATENEX_HDFS_ROOT, the summary, and each failure's
//! exit code and message.

mod common;
use atenex_report::generate::{DaySpec, write_day};
use atenex_report::store::LocalStore;
use common::*;
use std::path::Path;

fn report(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = atenex()
        .arg("report")
        .args(args)
        .env("ATENEX_HDFS_ROOT", root)
        .env_remove("ATENEX_REPORT_LANDING")
        .env_remove("ATENEX_REPORT_REPORTS")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn report_writes_parquet_and_a_summary() {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("atenex/kafka-landing");
    let spec = DaySpec {
        duplicates: 0.1,
        ..DaySpec::default()
    };
    let written = write_day(
        &LocalStore,
        landing.to_str().unwrap(),
        "embeddings.ready",
        &spec,
    )
    .unwrap();
    let (code, out, err) = report(root.path(), &["--date", "2026-11-27"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let target = root
        .path()
        .join("atenex/reports/daily_chunk_count/date=2026-11-27");
    assert!(target.join("part-00000.parquet").exists());
    assert!(target.join("_SUCCESS").exists());
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "report 2026-11-27: {} files, {:.1} MB read; {} records, 5 companies, 40 documents, ",
            written.files,
            written.bytes as f64 / 1e6,
            written.records
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "wrote {}/part-00000.parquet in ",
            target.display()
        )),
        "{out}"
    );
}

#[test]
fn each_failure_has_its_exit_code() {
    let root = tempfile::tempdir().unwrap();
    // Default date: yesterday in UTC; nothing landed → 3, naming the path looked at.
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let (code, _, err) = report(root.path(), &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "no landing data for {yesterday}: no *.json file under {}/atenex/kafka-landing/embeddings.ready/{}/hour=*/",
            root.path().display(),
            yesterday.format("year=%Y/month=%m/day=%d")
        )),
        "{err}"
    );
    let (code, out, err) = report(root.path(), &["--allow-empty"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0 files, 0.0 MB read; 0 records"), "{out}");

    let hour = root
        .path()
        .join("atenex/kafka-landing/embeddings.ready/year=2026/month=11/day=27/hour=00");
    std::fs::create_dir_all(&hour).unwrap();
    let file = hour.join("embeddings.ready+0+0000000000+0000000001.json");
    std::fs::write(&file, "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"d_0\"}\n{\"chunk_id\":\"d_1\"}\n").unwrap();
    let (code, _, err) = report(root.path(), &["--date", "2026-11-27"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "{}:2: record without company_id and document_id; fields found: chunk_id",
            file.display()
        )),
        "{err}"
    );

    std::fs::write(
        &file,
        "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"d_0\"}\n{oops\n",
    )
    .unwrap();
    let (code, _, err) = report(root.path(), &["--date", "2026-11-27"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains(&format!("{}:2: malformed record", file.display())),
        "{err}"
    );
    let (code, out, err) = report(root.path(), &["--date", "2026-11-27", "--skip-bad-records"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("1 records, 1 companies, 1 documents, 0 duplicates, 1 bad lines skipped"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  skipped {}:2: ", file.display())),
        "{out}"
    );

    // An HDFS name node that does not answer → 6, naming it.
    let out = atenex()
        .args([
            "report",
            "--date",
            "2026-11-27",
            "--landing",
            "hdfs://127.0.0.1:1/atenex/kafka-landing",
        ])
        .env("ATENEX_HDFS_ROOT", root.path())
        .env("ATENEX_HDFS_CONNECT_TIMEOUT", "1s")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("--landing hdfs://127.0.0.1:1/atenex/kafka-landing: cannot reach HDFS at hdfs://127.0.0.1:1"), "{err}");

    // A bad date is a usage error (2).
    let (code, _, _) = report(root.path(), &["--date", "27/11/2026"]);
    assert_eq!(code, Some(2));
}
