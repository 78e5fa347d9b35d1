//! The report on Spark (`atenex report --engine spark`): the PySpark job in
//! `pipeline/report/spark/daily_chunk_count.py`, embedded here, run through a configurable
//! spark-submit command into the report's staging directory. What decides the rows is the job;
//! what is published, and how, is ours: the staging output is checked (its schema, the row count
//! the job reported), renamed to the default engine's layout (`part-00000.parquet` + `_SUCCESS`)
//! and swapped in by the same atomic replace (`replace.rs`).
//!
//! The job and `atenex` talk through the staging directory only (the job's module doc lists the
//! files), so that the job can run anywhere spark-submit sends it, YARN cluster mode included.

use crate::error::ReportError;
use crate::read::rows_of;
use crate::store::Store;
use std::process::Command;

/// The PySpark job.
pub const JOB: &str = include_str!("../spark/daily_chunk_count.py");

/// What the job counted (its `_summary.json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct JobSummary {
    pub rows: u64,
    pub records: u64,
    pub unique: u64,
    pub companies: u64,
    pub without_chunk_id: u64,
    pub bad_skipped: u64,
    pub first_bad: Vec<String>,
}

#[derive(serde::Deserialize)]
struct JobError {
    code: u8,
    message: String,
}

/// How the job is run.
#[derive(Debug, Clone)]
pub struct SparkOptions {
    /// The submit command and its options, split into words (`spark-submit --master yarn ...`);
    /// the job's file and arguments are appended.
    pub submit: Vec<String>,
}

/// How many lines of Spark's own output a failure shows.
const SHOWN_LINES: usize = 20;

/// Runs the job over `inputs` (the day's files, as the store's URLs) into `staging` (a path of
/// `store`, which the job reaches as `store.url(staging)`), then leaves `staging` as the default
/// engine would: the checked `part-00000.parquet` and `_SUCCESS`, nothing else.
pub fn stage(
    store: &dyn Store,
    staging: &str,
    inputs: &[String],
    spark: &SparkOptions,
    skip_bad_records: bool,
    max_line_bytes: usize,
) -> Result<JobSummary, ReportError> {
    let storage = |what: &str| {
        let what = format!("{what} {}", store.describe(staging));
        move |e| ReportError::storage(what, e)
    };
    let mut listing = inputs.join("\n");
    listing.push('\n');
    store
        .write(&format!("{staging}/_inputs"), listing.as_bytes())
        .map_err(storage("writing the Spark job's inputs to"))?;
    let job = tempfile::Builder::new()
        .prefix("atenex-daily-chunk-count-")
        .suffix(".py")
        .tempfile()
        .map_err(|e| ReportError::Other(format!("cannot write the Spark job: {e}")))?;
    std::fs::write(job.path(), JOB)
        .map_err(|e| ReportError::Other(format!("cannot write the Spark job: {e}")))?;
    let (program, options) = spark
        .submit
        .split_first()
        .ok_or_else(|| ReportError::Other("--spark-submit is empty".into()))?;
    let mut command = Command::new(program);
    command
        .args(options)
        .arg(job.path())
        .arg("--staging")
        .arg(store.url(staging))
        .arg("--max-line-bytes")
        .arg(max_line_bytes.to_string());
    if skip_bad_records {
        command.arg("--skip-bad-records");
    }
    tracing::info!(?command, "running the report on Spark");
    let out = command.output().map_err(|e| {
        ReportError::Other(format!(
            "cannot run `{program}`: {e} (install Spark 3.5, e.g. `pip install pyspark==3.5.7`, \
             or name the command with --spark-submit)"
        ))
    })?;
    if !out.status.success() {
        // A data error the job found: its code and message.
        let error = format!("{staging}/_error.json");
        if let Ok(bytes) = store.read(&error, 1 << 20)
            && let Ok(e) = serde_json::from_slice::<JobError>(&bytes)
        {
            return Err(ReportError::Engine {
                code: e.code,
                message: e.message,
            });
        }
        return Err(ReportError::Other(format!(
            "the Spark job failed ({}); the end of its output:\n{}",
            out.status,
            shortened(&String::from_utf8_lossy(&out.stderr))
        )));
    }
    let summary: JobSummary = store
        .read(&format!("{staging}/_summary.json"), 1 << 20)
        .map_err(storage("reading the Spark job's summary in"))
        .and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| {
                ReportError::Other(format!("the Spark job's summary is not readable: {e}"))
            })
        })?;

    // Exactly one data file, with the report's columns and the rows the job counted.
    let written = format!("{staging}/_spark");
    let parts: Vec<(String, u64)> = store
        .list(&written)
        .map_err(storage("listing the Spark output in"))?
        .into_iter()
        .filter(|(path, _)| {
            let name = path.rsplit('/').next().unwrap_or_default();
            name.ends_with(".parquet") && !name.starts_with(['.', '_'])
        })
        .collect();
    let [(part, len)] = parts.as_slice() else {
        return Err(ReportError::Other(format!(
            "the Spark job wrote {} Parquet files to {}, not one",
            parts.len(),
            store.describe(&written)
        )));
    };
    let bytes = store
        .read(part, (*len).max(1))
        .map_err(storage("reading the Spark output in"))?;
    let rows = rows_of(&store.describe(part), bytes.into())
        .map_err(|e| ReportError::Other(format!("the Spark output is not the report's: {e:#}")))?;
    if rows.len() as u64 != summary.rows {
        return Err(ReportError::Other(format!(
            "the Spark output has {} rows, the job counted {}",
            rows.len(),
            summary.rows
        )));
    }
    let total: i64 = rows.iter().map(|r| r.total_chunks).sum();
    if total as u64 != summary.records {
        return Err(ReportError::Other(format!(
            "the Spark output counts {total} records, the job read {}",
            summary.records
        )));
    }
    store
        .rename(part, &format!("{staging}/{}", crate::replace::PART))
        .map_err(storage("renaming the Spark output in"))?;
    // Everything else the job and Hadoop left (`_spark/`, `_inputs`, `_summary.json`, `.crc`).
    for (path, _) in store
        .list(staging)
        .map_err(storage("listing the Spark output in"))?
    {
        if !path.ends_with(&format!("/{}", crate::replace::PART)) {
            store
                .remove_all(&path)
                .map_err(storage("cleaning the Spark output in"))?;
        }
    }
    store
        .remove_all(&written)
        .map_err(storage("cleaning the Spark output in"))?;
    Ok(summary)
}

/// The last lines of Spark's output that are neither its INFO/WARN logging nor Java stack
/// frames (all of them if that leaves nothing).
fn shortened(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains(" INFO ") && !l.contains(" WARN "))
        .filter(|l| {
            let t = l.trim();
            let frame = t.starts_with("at ") || (t.starts_with("...") && t.ends_with("more"));
            !(t.is_empty() || frame)
        })
        .collect();
    let lines = if lines.is_empty() {
        stderr.lines().collect()
    } else {
        lines
    };
    lines[lines.len().saturating_sub(SHOWN_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_failures_show_their_last_lines_without_the_logging() {
        let stderr = "26/12/05 11:41:01 INFO SparkContext: Running Spark version 3.5.7\n\
                      Traceback (most recent call last):\n  File \"job.py\", line 3\n\
                      26/12/05 11:41:02 WARN Utils: something\n\
                      py4j.protocol.Py4JJavaError: An error occurred\n\
                      \tat org.apache.spark.Foo.bar(Foo.scala:1)\n\t... 12 more\n";
        assert_eq!(
            shortened(stderr),
            "Traceback (most recent call last):\n  File \"job.py\", line 3\n\
             py4j.protocol.Py4JJavaError: An error occurred"
        );
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert!(shortened(&many).starts_with("line 80\n"));
    }
}

/// Spark for tests and benchmarks on this machine: PyPI's `pyspark` at [`testing::PYSPARK_VERSION`]
/// in a virtualenv under the cache directory (installed by the test command, `ci/test`), run in
/// `local[2]` with everything on loopback.
pub mod testing {
    use std::path::PathBuf;

    /// The version EMR 7 ships the 3.5 line of.
    pub const PYSPARK_VERSION: &str = "3.5.7";

    /// The virtualenv (`$ATENEX_CACHE_DIR/pyspark-<version>`); panics, saying how to install
    /// it, when it is missing.
    pub fn venv() -> PathBuf {
        let venv =
            atenex_jvm::maven::default_cache_dir().join(format!("pyspark-{PYSPARK_VERSION}"));
        assert!(
            venv.join(".installed").exists(),
            "no pyspark {PYSPARK_VERSION} in {}: run the test command (ci/test), which installs it",
            venv.display()
        );
        venv
    }

    /// The submit command: this machine's Spark, `local[2]`, on loopback, without its web UI.
    pub fn local_submit() -> Vec<String> {
        let venv = venv();
        let site = std::fs::read_dir(venv.join("lib"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("site-packages/pyspark"))
            .expect("a python directory in the virtualenv");
        let mut words = vec![
            "env".to_owned(),
            format!("SPARK_HOME={}", site.display()),
            format!("PYSPARK_PYTHON={}", venv.join("bin/python").display()),
            "SPARK_LOCAL_IP=127.0.0.1".to_owned(),
            venv.join("bin/spark-submit").display().to_string(),
        ];
        for option in [
            "--master",
            "local[2]",
            "--driver-memory",
            "1g",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.driver.host=127.0.0.1",
            "--conf",
            "spark.driver.bindAddress=127.0.0.1",
            "--conf",
            "spark.sql.shuffle.partitions=4",
        ] {
            words.push(option.to_owned());
        }
        words
    }
}
