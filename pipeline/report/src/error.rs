//! What can go wrong, each with its own exit code (docs/report.md lists them).

use std::fmt;

/// A failed report. `code()` is the process exit code `atenex report` ends with.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No landing file for the date (exit 3).
    #[error(
        "no landing data for {date}: no *.json file under {looked_at}/hour=*/ (use --allow-empty to write an empty report)"
    )]
    NoData { date: String, looked_at: String },
    /// A record without `company_id` or `document_id` (exit 4).
    #[error(
        "{file}:{line}: record without {missing}; fields found: {}",
        found_list(found)
    )]
    MissingIds {
        file: String,
        line: usize,
        missing: String,
        found: Vec<String>,
    },
    /// A line that is not a JSON object with usable ids (exit 5).
    #[error(
        "{file}:{line}: malformed record: {reason} (use --skip-bad-records to skip and count such lines)"
    )]
    Malformed {
        file: String,
        line: usize,
        reason: String,
    },
    /// A file of the day that cannot be landing output: not a regular file, or over
    /// `--max-file-bytes` (exit 5, as a malformed line).
    #[error("{file}: {reason}")]
    BadFile { file: String, reason: String },
    /// Another run for the same date holds its lock (exit 7).
    #[error("another atenex report for {date} is running: {lock} is {why}")]
    Busy {
        date: String,
        lock: String,
        /// The store's word on the lock (held; or, on HDFS, left by a crashed run perhaps).
        why: String,
    },
    /// The filesystem cannot be reached, read or written (exit 6).
    #[error("{what}: {source}")]
    Storage {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else (exit 1): a bug or a resource problem, with its context.
    #[error("{0}")]
    Other(String),
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "none".to_owned()
    } else {
        found.join(", ")
    }
}

impl ReportError {
    pub fn code(&self) -> u8 {
        match self {
            ReportError::NoData { .. } => 3,
            ReportError::MissingIds { .. } => 4,
            ReportError::Malformed { .. } | ReportError::BadFile { .. } => 5,
            ReportError::Busy { .. } => 7,
            ReportError::Storage { .. } => 6,
            ReportError::Other(_) => 1,
        }
    }

    pub fn storage(what: impl fmt::Display, source: std::io::Error) -> Self {
        ReportError::Storage {
            what: what.to_string(),
            source,
        }
    }
}
