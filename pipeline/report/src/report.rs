//! One report run. See docs/report.md for the semantics and the differences from the Spark job.

use crate::error::ReportError;
use crate::extract::{Columns, FileStats, scan_file};
use crate::replace::{SUCCESS, publish, repair, staging_dir};
use crate::store::{Location, Store};
use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
use datafusion::prelude::{SessionContext, col, lit};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The file name of the report's data (Spark writes `part-00000-<uuid>-c000.snappy.parquet`).
pub use crate::replace::PART;

#[derive(Debug, Clone)]
pub struct Options {
    pub date: NaiveDate,
    /// The landing tree's `topics.dir` (`.../atenex/kafka-landing`).
    pub landing: Location,
    /// The reports directory (`.../atenex/reports`).
    pub reports: Location,
    pub topic: String,
    /// No landing data: write an empty report instead of failing.
    pub allow_empty: bool,
    /// Skip and count malformed lines instead of failing.
    pub skip_bad_records: bool,
    /// Files scanned at once (default: the number of cores).
    pub threads: usize,
    /// A landing file larger than this stops the run (each file is read whole: memory is
    /// about `threads` × this at most).
    pub max_file_bytes: u64,
    /// A line longer than this is malformed (skipped with `skip_bad_records`).
    pub max_line_bytes: usize,
    /// Run the counting on Spark (`--engine spark`) instead of here with DataFusion.
    pub spark: Option<crate::spark::SparkOptions>,
}

/// 1 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;
/// 16 MiB (an `embeddings.ready` record with 3,072 floats is about 70 kB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

impl Options {
    /// The report of `date` for `embeddings.ready`, failing on missing data and bad lines, one
    /// thread per core.
    pub fn new(date: NaiveDate, landing: Location, reports: Location) -> Self {
        Self {
            date,
            landing,
            reports,
            topic: "embeddings.ready".to_owned(),
            allow_empty: false,
            skip_bad_records: false,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            spark: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub records: u64,
    pub companies: u64,
    pub documents: u64,
    /// Records whose `chunk_id` was already counted for their document.
    pub duplicates: u64,
    pub bad_skipped: u64,
    pub first_bad: Vec<String>,
    /// The report directory written.
    pub output: String,
    /// What recovery of an earlier crash did before this run.
    pub repaired: Vec<String>,
    pub elapsed: Duration,
}

/// The report's schema: the Spark job's columns (`total_chunks` = `count()`) plus `unique_chunks`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("company_id", DataType::Utf8, true),
        Field::new("document_id", DataType::Utf8, true),
        Field::new("total_chunks", DataType::Int64, true),
        Field::new("unique_chunks", DataType::Int64, true),
    ]))
}

fn ids_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("company_id", DataType::Utf8, false),
        Field::new("document_id", DataType::Utf8, false),
        Field::new("chunk_id", DataType::Utf8, true),
    ]))
}

/// `<topic>/year=YYYY/month=MM/day=DD` (the landing's Hourly layout, zero-padded).
pub fn day_dir(date: NaiveDate) -> String {
    format!(
        "year={:04}/month={:02}/day={:02}",
        date.year(),
        date.month(),
        date.day()
    )
}

/// The lock of `target`'s date: a hidden sibling, `.date=D.lock`.
fn lock_file(target: &str) -> String {
    match target.rsplit_once('/') {
        Some((parent, name)) => format!("{parent}/.{name}.lock"),
        None => format!(".{target}.lock"),
    }
}

/// The files of the day: `hour=*/<name>.json`, names not starting with `.` or `_` (hidden, as
/// Spark's reader has them), sorted.
fn day_files(listing: Vec<(String, u64)>, day: &str) -> Vec<(String, u64)> {
    listing
        .into_iter()
        .filter(|(p, _)| {
            let Some(rest) = p.strip_prefix(day).and_then(|r| r.strip_prefix('/')) else {
                return false;
            };
            let mut parts = rest.split('/');
            let (Some(hour), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
                return false;
            };
            hour.starts_with("hour=")
                && name.ends_with(".json")
                && !name.starts_with('.')
                && !name.starts_with('_')
        })
        .collect()
}

/// A listed file over `max` bytes: the run's error (exit 5), before anything is read.
fn too_large(store: &dyn Store, path: &str, len: u64, max: u64) -> Result<(), ReportError> {
    if len > max {
        return Err(ReportError::BadFile {
            file: store.describe(path),
            reason: format!("it is over {max} bytes (--max-file-bytes): {len} bytes"),
        });
    }
    Ok(())
}

/// A read that failed: the file's fault (not a regular file, grown over the bound; exit 5) or
/// the store's (exit 6).
fn read_error(store: &dyn Store, path: &str, e: std::io::Error) -> ReportError {
    match e.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::FileTooLarge => {
            ReportError::BadFile {
                file: store.describe(path),
                reason: e.to_string(),
            }
        }
        _ => ReportError::storage(format!("reading {}", store.describe(path)), e),
    }
}

/// Rows per record batch handed to DataFusion.
const BATCH_ROWS: usize = 64 * 1024;

struct Scanned {
    batches: Vec<RecordBatch>,
    stats: FileStats,
    without_chunk_id: u64,
}

fn finish(cols: &mut Columns) -> Result<RecordBatch, ReportError> {
    let company: ArrayRef = Arc::new(cols.company_id.finish());
    let document: ArrayRef = Arc::new(cols.document_id.finish());
    let chunk: ArrayRef = Arc::new(cols.chunk_id.finish());
    RecordBatch::try_new(ids_schema(), vec![company, document, chunk])
        .map_err(|e| ReportError::Other(format!("building a batch: {e}")))
}

/// Reads and scans `files` on `threads` threads. Deterministic errors: the first failing file in
/// path order is the one reported.
fn scan_all(opts: &Options, files: &[(String, u64)]) -> Result<Scanned, ReportError> {
    let next = AtomicUsize::new(0);
    // Index of the first failing file so far: files after it are not needed any more.
    let first_failure = AtomicUsize::new(usize::MAX);
    let errors: Mutex<Vec<(usize, ReportError)>> = Mutex::new(Vec::new());
    let results: Mutex<Vec<Scanned>> = Mutex::new(Vec::new());
    let store = &opts.landing.store;
    std::thread::scope(|s| {
        for _ in 0..opts.threads.clamp(1, files.len().max(1)) {
            s.spawn(|| {
                let mut cols = Columns::default();
                let mut mine = Scanned {
                    batches: Vec::new(),
                    stats: FileStats::default(),
                    without_chunk_id: 0,
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= files.len() || i > first_failure.load(Ordering::Relaxed) {
                        break;
                    }
                    let (path, listed) = &files[i];
                    // The listing's size first: a file over the bound is never read.
                    let outcome = too_large(store.as_ref(), path, *listed, opts.max_file_bytes)
                        .and_then(|()| {
                            store
                                .read(path, opts.max_file_bytes)
                                .map_err(|e| read_error(store.as_ref(), path, e))
                        })
                        .and_then(|bytes| {
                            scan_file(
                                &store.describe(path),
                                &bytes,
                                opts.skip_bad_records,
                                opts.max_line_bytes,
                                &mut cols,
                            )
                        });
                    match outcome {
                        Ok(st) => {
                            mine.stats.records += st.records;
                            mine.stats.bad += st.bad;
                            mine.stats.first_bad.extend(st.first_bad);
                            if cols.len() >= BATCH_ROWS {
                                match finish(&mut cols) {
                                    Ok(b) => mine.batches.push(b),
                                    Err(e) => errors.lock().expect("no panics").push((i, e)),
                                }
                            }
                        }
                        Err(e) => {
                            first_failure.fetch_min(i, Ordering::Relaxed);
                            errors.lock().expect("no panics").push((i, e));
                        }
                    }
                }
                if !cols.is_empty() {
                    match finish(&mut cols) {
                        Ok(b) => mine.batches.push(b),
                        Err(e) => errors.lock().expect("no panics").push((usize::MAX, e)),
                    }
                }
                mine.without_chunk_id = mine
                    .batches
                    .iter()
                    .map(|b| b.column(2).null_count() as u64)
                    .sum();
                results.lock().expect("no panics").push(mine);
            });
        }
    });
    let mut errors = errors.into_inner().expect("no panics");
    if !errors.is_empty() {
        errors.sort_by_key(|(i, _)| *i);
        return Err(errors.remove(0).1);
    }
    let mut all = Scanned {
        batches: Vec::new(),
        stats: FileStats::default(),
        without_chunk_id: 0,
    };
    for r in results.into_inner().expect("no panics") {
        all.batches.extend(r.batches);
        all.stats.records += r.stats.records;
        all.stats.bad += r.stats.bad;
        all.stats.first_bad.extend(r.stats.first_bad);
        all.without_chunk_id += r.without_chunk_id;
    }
    all.stats.first_bad.sort();
    all.stats.first_bad.truncate(5);
    Ok(all)
}

/// `GROUP BY company_id, document_id` with `count(*)` and `count(DISTINCT chunk_id)`, sorted.
async fn aggregate(batches: Vec<RecordBatch>) -> Result<RecordBatch, ReportError> {
    let df_err =
        |e: datafusion::error::DataFusionError| ReportError::Other(format!("DataFusion: {e}"));
    let ctx = SessionContext::new();
    let df = if batches.is_empty() {
        ctx.read_batch(RecordBatch::new_empty(ids_schema()))
    } else {
        ctx.read_batches(batches)
    }
    .map_err(df_err)?;
    let out = df
        .aggregate(
            vec![col("company_id"), col("document_id")],
            vec![
                count(lit(1)).alias("total_chunks"),
                count_distinct(col("chunk_id")).alias("unique_chunks"),
            ],
        )
        .map_err(df_err)?
        .sort(vec![
            col("company_id").sort(true, false),
            col("document_id").sort(true, false),
        ])
        .map_err(df_err)?
        .collect()
        .await
        .map_err(df_err)?;
    let schema = schema();
    let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); 4];
    for b in &out {
        for (i, f) in schema.fields().iter().enumerate() {
            let c = cast(b.column(i), f.data_type())
                .map_err(|e| ReportError::Other(format!("casting {}: {e}", f.name())))?;
            columns[i].push(c);
        }
    }
    let merged = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(parts, f)| {
            if parts.is_empty() {
                Ok(datafusion::arrow::array::new_empty_array(f.data_type()))
            } else {
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                datafusion::arrow::compute::concat(&refs)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ReportError::Other(format!("concatenating: {e}")))?;
    RecordBatch::try_new(schema, merged).map_err(|e| ReportError::Other(format!("result: {e}")))
}

/// The report as Parquet bytes (one row group, Snappy, as Spark's default codec).
pub fn to_parquet(batch: &RecordBatch) -> Result<Vec<u8>, ReportError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
        .map_err(|e| ReportError::Other(format!("Parquet: {e}")))?;
    w.write(batch)
        .map_err(|e| ReportError::Other(format!("Parquet: {e}")))?;
    w.close()
        .map_err(|e| ReportError::Other(format!("Parquet: {e}")))?;
    Ok(buf)
}

/// Runs the report for `opts.date`.
pub async fn run(opts: &Options) -> Result<Summary, ReportError> {
    let started = Instant::now();
    let day = opts
        .landing
        .join(&format!("{}/{}", opts.topic, day_dir(opts.date)));
    let landing = &opts.landing.store;
    let (files, scanned) = tokio::task::block_in_place(|| -> Result<_, ReportError> {
        let listing = landing
            .list(&day)
            .map_err(|e| ReportError::storage(format!("listing {}", landing.describe(&day)), e))?;
        let files = day_files(listing, &day);
        if files.is_empty() && !opts.allow_empty {
            return Err(ReportError::NoData {
                date: opts.date.to_string(),
                looked_at: landing.describe(&day),
            });
        }
        // Spark reads the files itself; an empty day is written here by either engine.
        let scanned = if opts.spark.is_some() && !files.is_empty() {
            None
        } else {
            Some(scan_all(opts, &files)?)
        };
        Ok((files, scanned))
    })?;
    let target = opts
        .reports
        .join(&format!("daily_chunk_count/date={}", opts.date));
    let reports = &opts.reports.store;
    // What goes into the staging directory: our Parquet, or what the Spark job writes there.
    let (counts, repaired) = match scanned {
        Some(scanned) => {
            let result = aggregate(scanned.batches).await?;
            let parquet = to_parquet(&result)?;
            let ((), repaired) = publish_with(opts, &target, |staging| {
                reports
                    .write(&format!("{staging}/{PART}"), &parquet)
                    .map_err(|e| {
                        ReportError::storage(
                            format!("writing the report for {}", reports.describe(&target)),
                            e,
                        )
                    })
            })?;
            let counts = Counts::of(&result, scanned.without_chunk_id, scanned.stats);
            (counts, repaired)
        }
        None => {
            let spark = opts.spark.as_ref().expect("scanned unless on Spark");
            let inputs: Vec<String> = files.iter().map(|(p, _)| landing.url(p)).collect();
            let (job, repaired) = publish_with(opts, &target, |staging| {
                crate::spark::stage(
                    reports.as_ref(),
                    staging,
                    &inputs,
                    spark,
                    opts.skip_bad_records,
                    opts.max_line_bytes,
                )
            })?;
            (Counts::from(job), repaired)
        }
    };
    Ok(Summary {
        files: files.len() as u64,
        bytes: files.iter().map(|(_, n)| n).sum(),
        records: counts.records,
        companies: counts.companies,
        documents: counts.documents,
        duplicates: counts.duplicates,
        bad_skipped: counts.bad_skipped,
        first_bad: counts.first_bad,
        output: reports.describe(&target),
        repaired,
        elapsed: started.elapsed(),
    })
}

/// What a run counted, whichever engine counted it.
struct Counts {
    records: u64,
    companies: u64,
    documents: u64,
    duplicates: u64,
    bad_skipped: u64,
    first_bad: Vec<String>,
}

impl Counts {
    /// From the aggregated report (sorted by company) and what the scan saw.
    fn of(result: &RecordBatch, without_chunk_id: u64, stats: FileStats) -> Self {
        let sum = |i: usize| {
            result
                .column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map_or(0, |a| a.iter().flatten().sum::<i64>()) as u64
        };
        let (totals, uniques) = (sum(2), sum(3));
        let companies = result
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .map_or(0, |a| {
                (0..a.len())
                    .filter(|&i| i == 0 || a.value(i) != a.value(i - 1))
                    .count()
            }) as u64;
        debug_assert_eq!(totals, stats.records);
        Self {
            records: stats.records,
            companies,
            documents: result.num_rows() as u64,
            duplicates: totals - uniques - without_chunk_id,
            bad_skipped: stats.bad,
            first_bad: stats.first_bad,
        }
    }
}

impl From<crate::spark::JobSummary> for Counts {
    fn from(job: crate::spark::JobSummary) -> Self {
        Self {
            records: job.records,
            companies: job.companies,
            documents: job.rows,
            duplicates: job.records - job.unique - job.without_chunk_id,
            bad_skipped: job.bad_skipped,
            first_bad: job.first_bad,
        }
    }
}

/// Under the date's lock, after repairing what a crashed run left: `stage` fills a new staging
/// directory with the report's data file, then `_SUCCESS` is written and the staging directory
/// swapped in. A failure removes the staging directory. Returns what `stage` returned and what
/// the repair did.
fn publish_with<T>(
    opts: &Options,
    target: &str,
    stage: impl FnOnce(&str) -> Result<T, ReportError>,
) -> Result<(T, Vec<String>), ReportError> {
    let reports = &opts.reports.store;
    tokio::task::block_in_place(|| {
        let storage = |what: &str| {
            let what = format!("{what} {}", reports.describe(target));
            move |e| ReportError::storage(what, e)
        };
        // One run per date at a time: a second one's repair would take the first one's staging
        // directory for a crash's leftover.
        let lock_path = lock_file(target);
        let _lock = reports.lock(&lock_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => ReportError::Busy {
                date: opts.date.to_string(),
                lock: reports.describe(&lock_path),
                why: e.to_string(),
            },
            _ => storage("locking the report for")(e),
        })?;
        let repaired = repair(reports.as_ref(), target).map_err(storage("repairing"))?;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let staging = staging_dir(target, &nonce);
        let written = stage(&staging).and_then(|staged| {
            reports
                .write(&format!("{staging}/{SUCCESS}"), b"")
                .map_err(storage("writing the report for"))
                .and_then(|()| {
                    publish(reports.as_ref(), &staging, target, &nonce)
                        .map_err(storage("publishing"))
                })
                .map(|()| staged)
        });
        if written.is_err() {
            // What a failed run staged is of no use to anyone (the next run would remove it).
            let _ = reports.remove_all(&staging);
        }
        Ok((written?, repaired))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hour_directories_and_visible_json_files_count() {
        let day = "/l/t/year=2026/month=11/day=27";
        let listing = vec![
            (format!("{day}/hour=00/t+0+1+2.json"), 10),
            (format!("{day}/hour=23/t+1+3+4.json"), 20),
            (format!("{day}/hour=23/_SUCCESS"), 0),
            (format!("{day}/hour=23/.t+1.json.crc"), 1),
            (format!("{day}/hour=23/x.txt"), 1),
            (format!("{day}/notes/t+0+1+2.json"), 1),
            (format!("{day}/hour=01/deeper/t.json"), 1),
            (format!("{day}/t.json"), 1),
        ];
        assert_eq!(
            day_files(listing, day),
            vec![
                (format!("{day}/hour=00/t+0+1+2.json"), 10),
                (format!("{day}/hour=23/t+1+3+4.json"), 20)
            ]
        );
        assert_eq!(
            day_dir(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()),
            "year=2026/month=01/day=05"
        );
    }
}
