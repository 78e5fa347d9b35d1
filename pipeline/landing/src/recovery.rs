//! Recovery of one Kafka partition, on start and on assignment (Connect's
//! `TopicPartitionWriter.recover`): redo the renames of every complete commit-log block (idempotent:
//! a temp file that is gone was renamed already), delete every other temp file (uncommitted data,
//! which Kafka delivers again), empty the log (claimed by the new owner), and resume at the largest
//! committed end offset + 1.

use crate::log::complete_blocks;
use crate::writer::Command;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub commands: Vec<Command>,
    /// The first offset not committed; `None` when nothing of this partition is committed (start
    /// from the consumer group's offset).
    pub resume: Option<i64>,
}

/// `(partition, start, end)` from a committed file name `<topic>+<partition>+<start>+<end>.json`.
pub fn parse_committed(path: &str, topic: &str) -> Option<(i32, i64, i64)> {
    let name = path.rsplit('/').next()?;
    let rest = name
        .strip_prefix(topic)?
        .strip_prefix('+')?
        .strip_suffix(".json")?;
    let mut parts = rest.split('+');
    let partition = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    let end = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((partition, start, end))
}

/// Whether `path` is a temp file of `topic`'s `partition` (`<topic>+<partition>+<start>_tmp.json`).
pub fn is_temp_of(path: &str, topic: &str, partition: i32) -> bool {
    path.rsplit('/')
        .next()
        .and_then(|n| n.strip_prefix(&format!("{topic}+{partition}+")))
        .is_some_and(|rest| rest.ends_with("_tmp.json"))
}

/// `log`: the partition's commit log, if it exists; `temps`: its temp files; `committed`: its
/// committed files (any directory). Pure: the adapter lists, this decides.
pub fn recover(
    topic: &str,
    partition: i32,
    log_path: &str,
    log: Option<&str>,
    temps: &[String],
    committed: &[String],
) -> Recovery {
    let mut commands = Vec::new();
    let existing_temps: BTreeSet<&str> = temps.iter().map(String::as_str).collect();
    let mut finals: BTreeSet<String> = committed.iter().cloned().collect();
    let mut renamed: BTreeSet<&str> = BTreeSet::new();
    for block in complete_blocks(log.unwrap_or_default()) {
        for e in block {
            if let Some(&temp) = existing_temps.get(e.temp.as_str())
                && !finals.contains(&e.final_path)
            {
                commands.push(Command::Rename {
                    from: e.temp.clone(),
                    to: e.final_path.clone(),
                });
                renamed.insert(temp);
                finals.insert(e.final_path);
            }
        }
    }
    for t in temps.iter().filter(|t| !renamed.contains(t.as_str())) {
        commands.push(Command::Delete { path: t.clone() });
    }
    // The log is claimed: emptied, not deleted (the claim keeps fencing the previous owner).
    if log.is_some_and(|l| !l.is_empty()) {
        commands.push(Command::Truncate {
            path: log_path.to_owned(),
        });
    }
    let resume = finals
        .iter()
        .filter_map(|f| parse_committed(f, topic))
        .filter(|(p, _, _)| *p == partition)
        .map(|(_, _, end)| end + 1)
        .max();
    Recovery { commands, resume }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{CommitEntry, block};

    #[test]
    fn names() {
        assert_eq!(
            parse_committed(
                "/l/embeddings.ready/year=2026/embeddings.ready+3+0000001000+0000001999.json",
                "embeddings.ready"
            ),
            Some((3, 1000, 1999))
        );
        assert_eq!(parse_committed("/l/t/t+3+1+2.json.tmp", "t"), None);
        assert_eq!(parse_committed("/l/tt/tt+3+1+2.json", "t"), None);
        assert!(is_temp_of("/l/+tmp/t/x/t+3+0000000005_tmp.json", "t", 3));
        assert!(!is_temp_of("/l/+tmp/t/x/t+31+0000000005_tmp.json", "t", 3));
    }

    #[test]
    fn complete_blocks_are_redone_and_the_rest_discarded() {
        let e = |t: &str, f: &str| CommitEntry {
            temp: t.into(),
            final_path: f.into(),
        };
        // Block 1 fully renamed already; block 2 half renamed; block 3 torn (no END).
        let log = format!(
            "{}{}BEGIN\nCOMMIT /tmp/t+0+9_tmp.json /d/t+0+9+9.json\n",
            block(&[e("/tmp/t+0+0_tmp.json", "/d/t+0+0+3.json")]),
            block(&[
                e("/tmp/t+0+4_tmp.json", "/d/a/t+0+4+6.json"),
                e("/tmp/t+0+5_tmp.json", "/d/b/t+0+5+8.json")
            ]),
        );
        let temps = vec![
            "/tmp/t+0+5_tmp.json".to_owned(),
            "/tmp/t+0+9_tmp.json".to_owned(),
        ];
        let committed = vec![
            "/d/t+0+0+3.json".to_owned(),
            "/d/a/t+0+4+6.json".to_owned(),
            "/d/t+1+0+50.json".to_owned(),
        ];
        let r = recover("t", 0, "/logs/t/0/log", Some(&log), &temps, &committed);
        assert_eq!(
            r.commands,
            vec![
                Command::Rename {
                    from: "/tmp/t+0+5_tmp.json".into(),
                    to: "/d/b/t+0+5+8.json".into()
                },
                Command::Delete {
                    path: "/tmp/t+0+9_tmp.json".into()
                },
                Command::Truncate {
                    path: "/logs/t/0/log".into()
                },
            ]
        );
        assert_eq!(
            r.resume,
            Some(9),
            "max committed end + 1, this partition only"
        );
        let fresh = recover("t", 2, "/logs/t/2/log", None, &[], &committed);
        assert_eq!(
            fresh,
            Recovery {
                commands: vec![],
                resume: None
            }
        );
    }
}
