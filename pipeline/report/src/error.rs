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
    /// A data error the Spark job found, with its exit code (4 or 5, as above).
    #[error("{message}")]
    Engine { code: u8, message: String },
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

/// Every exit code `atenex report` ends with on failure, and when: `atenex report --help`
/// prints this list, and the deploy test checks the unit's comment against it.
pub const EXIT_CODES: [(u8, &str); 7] = [
    (1, "anything else (the error with its context)"),
    (2, "bad usage"),
    (
        3,
        "no landing data for the date (--allow-empty writes an empty report instead)",
    ),
    (4, "a record without company_id or document_id"),
    (
        5,
        "a malformed line, or a landing file that is not a regular file or is too large",
    ),
    (
        6,
        "the filesystem cannot be reached, listed, read or written",
    ),
    (7, "another run for the same date holds its lock"),
];

/// [`EXIT_CODES`] as `--help` prints it.
pub fn exit_codes_help() -> String {
    let mut help = String::from("Exit codes (0: the report is written):");
    for (code, when) in EXIT_CODES {
        help.push_str(&format!("\n  {code}  {when}"));
    }
    help
}

impl ReportError {
    pub fn code(&self) -> u8 {
        match self {
            ReportError::NoData { .. } => 3,
            ReportError::MissingIds { .. } => 4,
            ReportError::Malformed { .. } | ReportError::BadFile { .. } => 5,
            ReportError::Busy { .. } => 7,
            ReportError::Storage { .. } => 6,
            ReportError::Engine { code, .. } => *code,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each failure's code is one the list (and so `--help` and the unit) names, with a
    /// description of that failure.
    #[test]
    fn every_failure_has_its_code_listed() {
        let io = || std::io::Error::other("x");
        let cases = [
            (
                ReportError::NoData {
                    date: "d".into(),
                    looked_at: "p".into(),
                },
                "no landing data",
            ),
            (
                ReportError::MissingIds {
                    file: "f".into(),
                    line: 1,
                    missing: "company_id".into(),
                    found: vec![],
                },
                "without company_id",
            ),
            (
                ReportError::Malformed {
                    file: "f".into(),
                    line: 1,
                    reason: "r".into(),
                },
                "malformed line",
            ),
            (
                ReportError::BadFile {
                    file: "f".into(),
                    reason: "r".into(),
                },
                "not a regular file",
            ),
            (ReportError::storage("w", io()), "cannot be reached"),
            (
                ReportError::Busy {
                    date: "d".into(),
                    lock: "l".into(),
                    why: "held".into(),
                },
                "lock",
            ),
            (ReportError::Other("x".into()), "anything else"),
        ];
        for (error, words) in cases {
            let (_, when) = EXIT_CODES
                .iter()
                .find(|(code, _)| *code == error.code())
                .unwrap_or_else(|| panic!("{error:?}: code {} not listed", error.code()));
            assert!(when.contains(words), "{error:?}: {when}");
        }
        assert!(exit_codes_help().contains("\n  3  no landing data"));
    }
}
