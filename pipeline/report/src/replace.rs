//! Replacing a report directory so that a crash leaves the old report or the new one — never
//! neither, never a mix.
//!
//! The new report is written, complete with `_SUCCESS`, into a hidden sibling
//! `.date=D.staging-<nonce>` (Spark, Hive and we ignore names starting with `.`). Then:
//! - no report yet: one rename puts it in place;
//! - local disk: `renameat2(RENAME_EXCHANGE)` swaps the two directories atomically; the old one,
//!   now under the staging name, is removed;
//! - HDFS (no directory exchange), when the old report is ours (exactly `part-00000.parquet` and
//!   `_SUCCESS`): the new part file is renamed over the old one — one atomic name node rename with
//!   overwrite;
//! - HDFS, any other old layout (Spark's `part-*-<uuid>.snappy.parquet` files): the old directory
//!   is renamed to `.date=D.old-<nonce>`, the staging one into place, the old one removed. Between
//!   those two name node RPCs the path is empty; a crash there is repaired by [`repair`] at the start
//!   of the next `atenex report`: it rolls forward to the complete staged report (or, if there is
//!   none, back to the old one). This happens at most once per date: afterwards the report is ours.
//!
//! [`repair`] also removes leftover staging (unfinished writes) and old directories.

use crate::store::Store;
use std::io;

pub const SUCCESS: &str = "_SUCCESS";
/// The report's data file.
pub const PART: &str = "part-00000.parquet";

/// `dir/name` of the staging and old siblings of `target` (`.../date=D`).
fn sibling(target: &str, kind: &str, nonce: &str) -> String {
    let (parent, name) = split(target);
    format!("{parent}/.{name}.{kind}-{nonce}")
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Where the new report is written before [`publish`].
pub fn staging_dir(target: &str, nonce: &str) -> String {
    sibling(target, "staging", nonce)
}

/// Puts the complete report in `staging` at `target`, replacing what is there.
pub fn publish(store: &dyn Store, staging: &str, target: &str, nonce: &str) -> io::Result<()> {
    if !store.exists(target)? {
        return store.rename(staging, target);
    }
    if store.exchange(staging, target)? {
        // `staging` now holds the old report.
        return store.remove_all(staging);
    }
    let mut old_files: Vec<String> = store
        .list(target)?
        .into_iter()
        .map(|(p, _)| p[target.len()..].trim_start_matches('/').to_owned())
        .collect();
    old_files.sort();
    if old_files == [SUCCESS, PART] && store.subdirs(target)?.is_empty() {
        store.replace_file(&format!("{staging}/{PART}"), &format!("{target}/{PART}"))?;
        return store.remove_all(staging);
    }
    let old = sibling(target, "old", nonce);
    store.rename(target, &old)?;
    store.rename(staging, target)?;
    store.remove_all(&old)
}

/// Repairs what a crash during [`publish`] (or while writing the staging directory) left around
/// `target`, and removes leftovers. Returns what it did, for the log.
pub fn repair(store: &dyn Store, target: &str) -> io::Result<Vec<String>> {
    let (parent, name) = split(target);
    let staging_prefix = format!(".{name}.staging-");
    let old_prefix = format!(".{name}.old-");
    let dirs = store.subdirs(parent)?;
    let mut done = Vec::new();
    let mut leftovers: Vec<String> = dirs
        .iter()
        .filter(|d| d.starts_with(&staging_prefix) || d.starts_with(&old_prefix))
        .map(|d| format!("{parent}/{d}"))
        .collect();
    if !store.exists(target)? {
        let complete_staging = leftovers.iter().find(|d| {
            split(d).1.starts_with(&staging_prefix)
                && store.exists(&format!("{d}/{SUCCESS}")).unwrap_or(false)
        });
        let old = leftovers
            .iter()
            .find(|d| split(d).1.starts_with(&old_prefix));
        if let Some(from) = complete_staging.or(old).cloned() {
            store.rename(&from, target)?;
            done.push(format!("restored {target} from {from}"));
            leftovers.retain(|d| *d != from);
        }
    }
    for d in leftovers {
        store.remove_all(&d)?;
        done.push(format!("removed {d}"));
    }
    Ok(done)
}
