//! From a landing file's bytes to id columns, reading only what the report needs: `company_id`,
//! `document_id` and `chunk_id` are borrowed from the line; every other field (the 1536-float
//! vector, the text) is skipped by serde without building a number or a string.
//!
//! Lines of the common shape — a flat object whose ids are plain strings and whose other values are
//! plain strings, numbers, literals or flat arrays of numbers (the vector) — are read by a scanner
//! that checks the vector's characters in bulk (it does not check each number's grammar); anything
//! else goes through serde, which also words the errors. Both give the same ids wherever the
//! scanner answers (proptest below).
//!
//! Semantics (Spark's JSON reader, where it is sound): blank lines are ignored; an id may be a
//! string or a number (a number counts as its decimal text, so `123` and `"123"` are one group, as
//! in Spark); `null` is missing. A record without `company_id` or `document_id` is an error naming
//! the file, the line and the fields it has (Spark put such records in a `(null, null)` group, or
//! printed a message and exited 0). A line that is not a JSON object, or an id that is an object, an
//! array or a boolean, is malformed: an error, or skipped and counted with `skip_bad`. A missing
//! `chunk_id` is allowed: the record counts in `total_chunks`, not in `unique_chunks`.

use crate::error::ReportError;
use atenex_contracts::raw_envelope::Scan;
use datafusion::arrow::array::{ArrayBuilder, StringBuilder};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, Visitor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// The three id columns of the records read so far.
#[derive(Debug, Default)]
pub struct Columns {
    pub company_id: StringBuilder,
    pub document_id: StringBuilder,
    /// Null where a record has no `chunk_id`.
    pub chunk_id: StringBuilder,
}

impl Columns {
    pub fn len(&self) -> usize {
        self.company_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one file held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileStats {
    pub records: u64,
    /// Malformed lines skipped (only with `skip_bad`).
    pub bad: u64,
    /// The first skipped lines, as `file:line: reason`.
    pub first_bad: Vec<String>,
}

struct Id<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Ids<'a> {
    #[serde(borrow, default)]
    company_id: Option<Id<'a>>,
    #[serde(borrow, default)]
    document_id: Option<Id<'a>>,
    #[serde(borrow, default)]
    chunk_id: Option<Id<'a>>,
}

/// The ids of a line of the common shape; `None`: use serde.
fn fast(line: &[u8]) -> Option<(&str, &str, Option<&str>)> {
    let mut s = Scan::new(line);
    s.ws();
    s.eat(b'{')?;
    let (mut company, mut document, mut chunk) = (None, None, None);
    s.ws();
    if s.eat(b'}').is_none() {
        loop {
            s.ws();
            let key = s.plain_str()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let slot = match key {
                "company_id" => Some(&mut company),
                "document_id" => Some(&mut document),
                "chunk_id" => Some(&mut chunk),
                _ => None,
            };
            match slot {
                // A duplicate key is serde's to report.
                Some(slot) if slot.is_some() => return None,
                Some(slot) => *slot = Some(s.plain_str()?),
                None => s.skip_plain_value()?,
            }
            s.ws();
            if s.eat(b',').is_none() {
                s.eat(b'}')?;
                break;
            }
        }
    }
    s.ws();
    if !s.at_end() {
        return None;
    }
    Some((company?, document?, chunk))
}

/// How many skipped lines are quoted in the summary.
const QUOTED_BAD: usize = 5;

/// Appends the ids of every record of `bytes` (the file `file`) to `out`.
/// A line over `max_line` bytes is malformed.
pub fn scan_file(
    file: &str,
    bytes: &[u8],
    skip_bad: bool,
    max_line: usize,
    out: &mut Columns,
) -> Result<FileStats, ReportError> {
    let mut stats = FileStats::default();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.len() > max_line {
            let reason = format!(
                "the line is {} bytes long, over --max-line-bytes ({max_line})",
                line.len()
            );
            malformed(file, i + 1, reason, skip_bad, &mut stats)?;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some((company, document, chunk)) = fast(line) {
            out.company_id.append_value(company);
            out.document_id.append_value(document);
            out.chunk_id.append_option(chunk);
            stats.records += 1;
            continue;
        }
        let n = i + 1;
        // serde would take `[a, b]` for a struct too: only objects are records.
        let parsed = if line.trim_ascii_start().first() == Some(&b'{') {
            serde_json::from_slice::<Ids<'_>>(line).map_err(|e| e.to_string())
        } else {
            Err("not a JSON object".to_owned())
        };
        match parsed {
            Ok(Ids {
                company_id: Some(company),
                document_id: Some(document),
                chunk_id,
            }) => {
                out.company_id.append_value(&*company.0);
                out.document_id.append_value(&*document.0);
                match chunk_id {
                    Some(c) => out.chunk_id.append_value(&*c.0),
                    None => out.chunk_id.append_null(),
                }
                stats.records += 1;
            }
            Ok(ids) => {
                let missing = match (&ids.company_id, &ids.document_id) {
                    (None, None) => "company_id and document_id",
                    (None, _) => "company_id",
                    _ => "document_id",
                };
                return Err(ReportError::MissingIds {
                    file: file.to_owned(),
                    line: n,
                    missing: missing.to_owned(),
                    found: fields(line),
                });
            }
            Err(reason) => malformed(file, n, reason, skip_bad, &mut stats)?,
        }
    }
    Ok(stats)
}

/// A malformed line: the run's error, or counted (and quoted, the first few) when skipping.
fn malformed(
    file: &str,
    line: usize,
    reason: String,
    skip_bad: bool,
    stats: &mut FileStats,
) -> Result<(), ReportError> {
    if !skip_bad {
        return Err(ReportError::Malformed {
            file: file.to_owned(),
            line,
            reason,
        });
    }
    stats.bad += 1;
    if stats.first_bad.len() < QUOTED_BAD {
        stats.first_bad.push(format!("{file}:{line}: {reason}"));
    }
    Ok(())
}

/// The top-level field names of a JSON object line (sorted), for messages.
fn fields(line: &[u8]) -> Vec<String> {
    serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(line)
        .map(|m| m.into_keys().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;

    type Row = (String, String, Option<String>);

    fn scan(text: &str, skip: bool) -> Result<(Vec<Row>, FileStats), ReportError> {
        let mut cols = Columns::default();
        let stats = scan_file("f.json", text.as_bytes(), skip, 1000, &mut cols)?;
        let (c, d, k) = (
            cols.company_id.finish(),
            cols.document_id.finish(),
            cols.chunk_id.finish(),
        );
        let rows = (0..c.len())
            .map(|i| {
                (
                    c.value(i).to_owned(),
                    d.value(i).to_owned(),
                    (!k.is_null(i)).then(|| k.value(i).to_owned()),
                )
            })
            .collect();
        Ok((rows, stats))
    }

    #[test]
    fn a_line_over_the_limit_is_malformed_with_its_line_number() {
        let ok = r#"{"company_id":"c","document_id":"d","chunk_id":"k"}"#;
        let long = format!(
            r#"{{"company_id":"c","document_id":"d","pad":"{}"}}"#,
            "x".repeat(1000)
        );
        let text = format!("{ok}\n{long}\n{ok}\n");
        match scan(&text, false) {
            Err(ReportError::Malformed {
                line: 2, reason, ..
            }) => {
                assert!(reason.contains("over --max-line-bytes (1000)"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let (rows, stats) = scan(&text, true).unwrap();
        assert_eq!((rows.len(), stats.bad), (2, 1));
        assert!(
            stats.first_bad[0].starts_with("f.json:2: the line is 1045 bytes"),
            "{:?}",
            stats.first_bad
        );
    }

    /// The ids as serde reads them (the reference path).
    fn slow(line: &str) -> Option<(String, String, Option<String>)> {
        if !line.trim_start().starts_with('{') {
            return None;
        }
        let ids: Ids<'_> = serde_json::from_str(line).ok()?;
        Some((
            ids.company_id?.0.into_owned(),
            ids.document_id?.0.into_owned(),
            ids.chunk_id.map(|c| c.0.into_owned()),
        ))
    }

    proptest::proptest! {
        #[test]
        fn the_scanner_agrees_with_serde_wherever_it_answers(
            company in "[a-z0-9-]{0,12}",
            document in "[a-zé0-9-]{1,12}",
            chunk in proptest::option::of("[a-z0-9_]{1,12}"),
            vector in proptest::collection::vec(-1e3f64..1e3, 0..20),
            extra in proptest::collection::vec(("[a-z_]{1,8}", 0u8..6), 0..4),
            order in 0usize..24,
            spaces in proptest::bool::ANY,
        ) {
            let sp = if spaces { " " } else { "" };
            let vec_text = vector.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(&format!(",{sp}"));
            let mut fields = vec![
                format!("\"company_id\":{sp}\"{company}\""),
                format!("\"document_id\":{sp}\"{document}\""),
                format!("\"vector\":{sp}[{vec_text}]"),
            ];
            if let Some(c) = &chunk {
                fields.push(format!("\"chunk_id\":{sp}\"{c}\""));
            }
            for (k, kind) in &extra {
                let v = match kind {
                    0 => "\"plain\"".to_owned(),
                    1 => "\"esc\\n\"".to_owned(),
                    2 => "12.5e-3".to_owned(),
                    3 => "null".to_owned(),
                    4 => "{\"a\":[1]}".to_owned(),
                    _ => "[[1],[2]]".to_owned(),
                };
                fields.push(format!("\"{k}\":{sp}{v}"));
            }
            let n = fields.len();
            fields.rotate_left(order % n);
            let line = format!("{sp}{{{}}}{sp}", fields.join(&format!(",{sp}")));
            if let Some((c, d, k)) = fast(line.as_bytes()) {
                proptest::prop_assert_eq!(
                    Some((c.to_owned(), d.to_owned(), k.map(str::to_owned))),
                    slow(&line),
                    "{}", line
                );
            }
            // The common shape (no unusual extra fields) always takes the fast path.
            if extra.iter().all(|(k, kind)| *kind == 0 && !["company_id", "document_id", "chunk_id"].contains(&k.as_str())) {
                proptest::prop_assert!(fast(line.as_bytes()).is_some(), "{}", line);
            }
        }
    }

    #[test]
    fn unusual_shapes_fall_back_to_serde() {
        for line in [
            r#"{"company_id":"c\u0031","document_id":"d"}"#,
            r#"{"company_id":1,"document_id":"d"}"#,
            r#"{"company_id":"c","document_id":"d","company_id":"e"}"#,
            r#"{"company_id":"c","document_id":"d","meta":{"a":1}}"#,
            r#"{"company_id":"c","document_id":"d","v":["x"]}"#,
            r#"{"company_id":"c","document_id":"d"} trailing"#,
            r#"{"company_id":"c"}"#,
            r#"[1]"#,
        ] {
            assert_eq!(fast(line.as_bytes()), None, "{line}");
        }
        assert_eq!(
            fast(
                br#" {"vector":[1e-3, -2], "company_id":"c","document_id":"d","chunk_id":"d_1"} "#
            ),
            Some(("c", "d", Some("d_1")))
        );
    }

    #[test]
    fn ids_are_read_and_everything_else_skipped() {
        let text = "{\"chunk_id\":\"d1_0\",\"document_id\":\"d1\",\"company_id\":\"c1\",\"vector\":[0.1,-2e-3,3]}\n\
                    \n   \n\
                    {\"company_id\":123,\"document_id\":\"d\\u0032\",\"text\":\"x\\ny\",\"nested\":{\"a\":[1,{}]}}\n";
        let (rows, stats) = scan(text, false).unwrap();
        assert_eq!(
            rows,
            vec![
                ("c1".into(), "d1".into(), Some("d1_0".into())),
                ("123".into(), "d2".into(), None),
            ]
        );
        assert_eq!(stats.records, 2);
    }

    #[test]
    fn missing_ids_name_the_file_line_and_fields() {
        let e = scan("{\"company_id\":\"c\",\"document_id\":\"d\"}\n{\"chunk_id\":\"x\",\"company_id\":null,\"vector\":[]}\n", false)
            .unwrap_err();
        assert_eq!(e.code(), 4);
        assert_eq!(
            e.to_string(),
            "f.json:2: record without company_id and document_id; fields found: chunk_id, company_id, vector"
        );
        // --skip-bad-records does not hide records without ids.
        assert_eq!(scan("{\"company_id\":\"c\"}", true).unwrap_err().code(), 4);
    }

    #[test]
    fn malformed_lines_fail_or_are_skipped_and_counted() {
        let text = "{\"company_id\":\"c\",\"document_id\":\"d\"}\nnot json\n{\"company_id\":{},\"document_id\":\"d\"}\n[1]\n";
        let e = scan(text, false).unwrap_err();
        assert_eq!(e.code(), 5);
        assert!(
            e.to_string().starts_with("f.json:2: malformed record: "),
            "{e}"
        );
        let (rows, stats) = scan(text, true).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(stats.bad, 3);
        assert!(
            stats.first_bad[1].starts_with("f.json:3: "),
            "{:?}",
            stats.first_bad
        );
        assert!(
            stats.first_bad[1].contains("a string or a number"),
            "{:?}",
            stats.first_bad
        );
    }
}
