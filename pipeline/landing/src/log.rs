//! The commit log of one Kafka partition (`<logs.dir>/<topic>/<partition>/log`): a commit appends
//! one block and syncs it before any rename, so that a crash at any point leaves either no block
//! (the commit did not happen: its temp files are discarded) or a complete block (recovery redoes
//! the renames, which are idempotent).
//!
//! ```text
//! BEGIN
//! COMMIT <temp path> <final path>
//! ...
//! END
//! ```
//! A block cut short by a crash (no `END`) is ignored. Paths never contain spaces or newlines (they
//! are built from topic names, encoded partitions and offsets). Connect's own WAL is a Hadoop
//! SequenceFile; this text log is ours — the data tree, not the log, is the compatible part.

/// One committed file: where its data was written and where it must end up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    pub temp: String,
    pub final_path: String,
}

/// The text of one commit block.
pub fn block(entries: &[CommitEntry]) -> String {
    let mut s = String::from("BEGIN\n");
    for e in entries {
        s.push_str("COMMIT ");
        s.push_str(&e.temp);
        s.push(' ');
        s.push_str(&e.final_path);
        s.push('\n');
    }
    s.push_str("END\n");
    s
}

/// The entries of every complete block, in order; incomplete or garbled blocks are skipped.
pub fn complete_blocks(text: &str) -> Vec<Vec<CommitEntry>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<CommitEntry>> = None;
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break; // a torn last line
        };
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["BEGIN"] => current = Some(Vec::new()),
            ["COMMIT", temp, final_path] => {
                if let Some(c) = current.as_mut() {
                    c.push(CommitEntry {
                        temp: (*temp).to_owned(),
                        final_path: (*final_path).to_owned(),
                    });
                }
            }
            ["END"] => {
                if let Some(c) = current.take() {
                    blocks.push(c);
                }
            }
            _ => current = None,
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(t: &str, f: &str) -> CommitEntry {
        CommitEntry {
            temp: t.into(),
            final_path: f.into(),
        }
    }

    #[test]
    fn blocks_round_trip_and_torn_blocks_are_ignored() {
        let a = block(&[e("/t/1", "/f/1"), e("/t/2", "/f/2")]);
        let b = block(&[e("/t/3", "/f/3")]);
        let full = format!("{a}{b}");
        assert_eq!(
            complete_blocks(&full),
            vec![
                vec![e("/t/1", "/f/1"), e("/t/2", "/f/2")],
                vec![e("/t/3", "/f/3")]
            ]
        );
        for cut in 0..full.len() {
            let blocks = complete_blocks(&full[..cut]);
            let expected = if cut >= full.len() {
                2
            } else if cut >= a.len() {
                1
            } else {
                0
            };
            assert_eq!(blocks.len(), expected, "cut at {cut}");
        }
        assert_eq!(
            complete_blocks("BEGIN\nCOMMIT x\nEND\n"),
            Vec::<Vec<CommitEntry>>::new()
        );
    }
}
