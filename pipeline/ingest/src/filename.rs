//! Client file names made safe to use in an object key: no path components, no control
//! characters, no invisible ones that reorder or hide what a reader sees (Unicode's bidirectional
//! controls, as in "Trojan Source", CVE-2021-42574, and zero-width characters), no leading dots,
//! and short enough (the extension kept). Pure.
//!
//! object_store percent-encodes every non-ASCII byte of a key (`ñ` is stored as `%C3%B1`), so the
//! length that matters is the encoded one: at most [`MAX_ENCODED`] bytes, under the 255 of most
//! filesystems' names.

/// The longest name kept, measured as object_store stores it.
pub const MAX_ENCODED: usize = 240;

/// The length of `s` once object_store has percent-encoded it (non-ASCII bytes take three).
pub fn encoded_len(s: &str) -> usize {
    s.bytes().map(|b| if b.is_ascii() { 1 } else { 3 }).sum()
}

/// Unicode's `Bidi_Control` characters (they make `cod\u{202E}fdp.exe` read as `codexe.pdf`) and
/// the invisible ones people use to make two names look alike (zero-width space, joiners, word
/// joiner, byte-order mark, soft hyphen).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{00AD}'
    )
}

/// The safe name, or why there is none left.
pub fn sanitize(raw: &str) -> Result<String, String> {
    // The last path component, for `/` and `\` alike (Windows browsers send full paths).
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .map(|c| match c {
            // Characters object stores, shells and URLs treat specially.
            ':' | '*' | '?' | '"' | '<' | '>' | '|' | '#' | '%' | '{' | '}' | '^' | '`' | '['
            | ']' | '~' => '_',
            c => c,
        })
        .collect();
    name = name.trim().trim_start_matches('.').trim().to_owned();
    if name.is_empty() {
        return Err(format!(
            "the file name {raw:?} has nothing left once path components and control characters are removed"
        ));
    }
    if encoded_len(&name) > MAX_ENCODED {
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() && e.len() <= 16 => (s.to_owned(), format!(".{e}")),
            _ => (name.clone(), String::new()),
        };
        let budget = MAX_ENCODED.saturating_sub(encoded_len(&ext));
        let mut kept = String::new();
        for c in stem.chars() {
            if encoded_len(&kept) + encoded_len(c.encode_utf8(&mut [0; 4])) > budget {
                break;
            }
            kept.push(c);
        }
        name = format!("{kept}{ext}");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names() {
        assert_eq!(sanitize("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(sanitize("/etc/shadow").unwrap(), "shadow");
        assert_eq!(sanitize("C:\\Users\\me\\report.pdf").unwrap(), "report.pdf");
        assert_eq!(sanitize("a\u{0}b\nc.txt").unwrap(), "abc.txt");
        assert_eq!(sanitize(".hidden.md").unwrap(), "hidden.md");
        assert_eq!(
            sanitize("informe año 2026 — ñ.pdf").unwrap(),
            "informe año 2026 — ñ.pdf"
        );
        assert_eq!(sanitize("what?.txt").unwrap(), "what_.txt");
        assert!(sanitize("../..").is_err());
        assert!(sanitize("/").is_err());
        assert!(sanitize("\u{1}\u{2}").is_err());
        // Bidirectional overrides and isolates, marks, zero-width characters: removed.
        assert_eq!(sanitize("cod\u{202E}fdp.exe").unwrap(), "codfdp.exe");
        assert_eq!(
            sanitize("\u{2066}a\u{2069}\u{200F}b\u{200B}c\u{FEFF}\u{00AD}.txt").unwrap(),
            "abc.txt"
        );
        assert!(sanitize("\u{202E}\u{200D}").is_err());
        // Letters of right-to-left scripts stay.
        assert_eq!(sanitize("تقرير.pdf").unwrap(), "تقرير.pdf");
        let long = format!("{}.pdf", "é".repeat(3000));
        let s = sanitize(&long).unwrap();
        assert!(
            encoded_len(&s) <= MAX_ENCODED && s.ends_with(".pdf"),
            "{}",
            s.len()
        );
        assert_eq!(sanitize(&"a".repeat(300)).unwrap().len(), MAX_ENCODED);
    }

    proptest::proptest! {
        #[test]
        fn never_a_path_a_control_or_too_long(raw in "(\\PC|\\p{Cc}|\\p{Cf}){0,300}") {
            if let Ok(s) = sanitize(&raw) {
                proptest::prop_assert!(!s.is_empty() && encoded_len(&s) <= MAX_ENCODED);
                proptest::prop_assert!(!s.contains('/') && !s.contains('\\') && !s.starts_with('.'));
                proptest::prop_assert!(!s.chars().any(char::is_control));
            }
        }

        #[test]
        fn any_declared_type_is_judged(content_type in proptest::option::of("\\PC{0,80}"), name in "\\PC{0,80}") {
            let _ = crate::file_type::DocType::declared(content_type.as_deref(), &name);
        }
    }
}
