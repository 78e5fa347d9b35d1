//! The daily report (docs/report.md; docs/semantics.md, the Spark daily job): chunks per company and document for one day of the
//! `embeddings.ready` landing tree, as Parquet under `<reports>/daily_chunk_count/date=YYYY-MM-DD`.
//!
//! - [`extract`]: landing lines → id columns, without parsing vectors (pure).
//! - [`report`]: list the day's files, scan them in parallel, aggregate with DataFusion, write
//!   Parquet, replace the old report atomically ([`replace`]), summarize.
//! - [`store`]: local directories and HDFS.
//! - [`read`]: a local report's rows, read back.
//! - [`generate`]: landing trees for tests and the benchmark.

pub mod error;
pub mod extract;
pub mod generate;
pub mod read;
pub mod replace;
pub mod report;
pub mod spark;
pub mod store;

pub use datafusion::arrow;
pub use error::{EXIT_CODES, ReportError};
pub use report::{DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_LINE_BYTES, Options, Summary, run};
pub use store::Location;
