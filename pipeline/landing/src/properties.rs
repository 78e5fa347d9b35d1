//! Java `.properties` files, as `java.util.Properties.load` reads them: `#` and `!` comments,
//! `key=value`, `key: value` and `key value`, backslash escapes (`\t \n \r \f \uXXXX`, and `\x` for
//! any other `x`, e.g. `\=` `\:` `\ `), and logical lines continued with a trailing backslash (the
//! next line's leading blanks dropped). A later duplicate key wins.

use std::fmt;

/// One `key = value` entry and the (1-based) line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PropertiesError {
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Parses a whole file; entries in file order (duplicates kept: the caller takes the last).
pub fn parse(text: &str) -> Result<Vec<Entry>, PropertiesError> {
    let mut entries = Vec::new();
    let natural = natural_lines(text);
    let mut i = 0;
    while i < natural.len() {
        let start_line = i + 1;
        let first = natural[i].trim_start_matches(is_blank);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes continues the line.
        let mut logical = String::from(first);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match natural.get(i) {
                Some(next) => {
                    logical.push_str(next.trim_start_matches(is_blank));
                    i += 1;
                }
                None => break,
            }
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        entries.push(Entry {
            key: unescape(raw_key).map_err(|problem| PropertiesError {
                line: start_line,
                problem,
            })?,
            value: unescape(raw_value).map_err(|problem| PropertiesError {
                line: start_line,
                problem,
            })?,
            line: start_line,
        });
    }
    Ok(entries)
}

/// Natural lines, each ended by `\n`, `\r` or `\r\n`.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(&text[start..]);
    lines
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or blank; blanks and one separator are skipped.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut end = line.len();
    for (at, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            end = at;
            break;
        }
    }
    let key = &line[..end];
    let mut rest = line[end..].trim_start_matches(is_blank);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches(is_blank);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .ok_or_else(|| format!("malformed \\uxxxx escape: \\u{hex}"))?;
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn separators_comments_and_blanks() {
        let text = "# comment\n! also\n\n  a=1\nb: 2\nc 3\nd\t=\t 4 \ne=\nf\n  path.format='year'=YYYY/'month'=MM\n";
        assert_eq!(
            kv(text),
            pairs(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4 "),
                ("e", ""),
                ("f", ""),
                ("path.format", "'year'=YYYY/'month'=MM")
            ])
        );
    }

    #[test]
    fn escapes_and_continuations() {
        let text = "key\\ with\\:colon = a\\tb\\u00e9\\\\ \nlong = one, \\\n    two, \\\n\tthree\nodd = x\\\\\nnext = y\n";
        assert_eq!(
            kv(text),
            pairs(&[
                ("key with:colon", "a\tbé\\ "),
                ("long", "one, two, three"),
                ("odd", "x\\"),
                ("next", "y")
            ])
        );
        assert_eq!(
            kv("a=1\r\nb=2\rc=3"),
            pairs(&[("a", "1"), ("b", "2"), ("c", "3")])
        );
    }

    #[test]
    fn line_numbers_and_errors() {
        let entries = parse("# c\na=1\n\nb=\\\n  2\nc=3\n").unwrap();
        assert_eq!(
            entries.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![2, 4, 6]
        );
        let e = parse("a=1\nb=\\u12\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("malformed \\uxxxx"), "{e}");
    }

    #[test]
    fn the_atenex_file_parses() {
        let text = include_str!("../../../fixtures/config/hdfs-sink-connector.properties");
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 14);
        let get = |k: &str| {
            entries
                .iter()
                .find(|e| e.key == k)
                .map(|e| e.value.as_str())
        };
        assert_eq!(
            get("path.format"),
            Some("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH")
        );
        assert_eq!(get("flush.size"), Some("1000"));
        assert_eq!(get("partition.duration.ms"), None);
    }
}
