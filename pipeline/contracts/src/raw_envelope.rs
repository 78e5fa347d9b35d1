//! A fast reader of recorded-stream lines for tools that copy values rather than interpret them
//! (the landing sink): it finds the envelope's fields without building an [`Envelope`](crate::Envelope)
//! and leaves the value escaped, to be unescaped straight into the caller's buffer
//! ([`unescape_into`]). Lines it does not recognise return `None`: use [`Envelope::parse`](crate::Envelope::parse),
//! which also explains what is wrong.

use memchr::memchr2;

/// The fields of one envelope line, borrowed. `key` and `payload` are the JSON string contents,
/// still escaped; `None` for `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEnvelope<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub ts: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// Bytes an array of numbers may hold between its brackets: digits, `.`, `+`, `-`, `e`, `E`, `,`
/// and blanks.
static NUMERIC: [bool; 256] = {
    let mut t = [false; 256];
    let ok = b"0123456789.+-eE, \t\r\n";
    let mut k = 0;
    while k < ok.len() {
        t[ok[k] as usize] = true;
        k += 1;
    }
    t
};

/// Whether `bytes` are all [`NUMERIC`]: a table lookup and an `&` per byte, no branch. Fast
/// scanners use it to skip vectors without parsing numbers (it checks the characters, not each
/// number's grammar).
pub fn numeric_run(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |all, &c| all & NUMERIC[c as usize])
}

/// The inside of a flat array of numbers, as far as fast scanners check it: [`numeric_run`], and
/// no empty element (`[1,,2]`, `[,1]`, `[1,]`), which serde refuses. Number grammar inside an
/// element (`1.2.3`, `01`) is not checked: an exact check costs ten times the scan (`cargo bench
/// --bench vector_scan`: 0.7 against 6.9 GB/s on a 1,536-float vector; docs/analytics.md).
pub fn numeric_list(bytes: &[u8]) -> bool {
    if !numeric_run(bytes) {
        return false;
    }
    let t = bytes.trim_ascii();
    if t.first() == Some(&b',') || t.last() == Some(&b',') {
        return false;
    }
    if memchr::memchr3(b' ', b'\t', b'\n', t).is_none() && memchr::memchr(b'\r', t).is_none() {
        return memchr::memmem::find(t, b",,").is_none();
    }
    // With blanks: no comma followed by blanks and another comma.
    let mut after_comma = false;
    for &c in t {
        match c {
            b',' if after_comma => return false,
            b',' => after_comma = true,
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => after_comma = false,
        }
    }
    true
}

/// A cursor over JSON bytes with the few steps fast scanners need. Every step returns `None`
/// when the input is not what it expects; callers then fall back to serde.
pub struct Scan<'a> {
    pub b: &'a [u8],
    pub i: usize,
}

impl<'a> Scan<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Self { b, i: 0 }
    }
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    pub fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.i += 1;
        }
    }
    pub fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    /// Exactly these bytes next.
    pub fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }
    /// Whether the whole input has been read.
    pub fn at_end(&self) -> bool {
        self.i == self.b.len()
    }
    /// A string's raw (escaped) contents.
    pub fn raw_str(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            let at = self.i + memchr2(b'"', b'\\', &self.b[self.i..])?;
            if self.b[at] == b'"' {
                self.i = at + 1;
                return Some(&self.b[start..at]);
            }
            self.i = at + 2;
        }
    }
    pub fn null_or_str(&mut self) -> Option<Option<&'a [u8]>> {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Some(None);
        }
        self.raw_str().map(Some)
    }
    /// A JSON integer (no leading zeros, fraction or exponent).
    pub fn int(&mut self) -> Option<i64> {
        let negative = self.eat(b'-').is_some();
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        if negative { Some(v) } else { v.checked_neg() }
    }
    /// A plain (unescaped JSON) string without backslashes, as UTF-8; `None` for anything else.
    pub fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let end = memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// Skips one plain JSON value of the shapes records have — a string without backslashes, a
    /// flat array of numbers (checked in bulk with [`numeric_list`]), a number or a literal —
    /// without building it. `None` for anything else (objects, nested or mixed arrays, escapes).
    pub fn skip_plain_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.plain_str().map(drop),
            b'[' => {
                let rest = &self.b[self.i + 1..];
                let end = memchr::memchr(b']', rest)?;
                if !numeric_list(&rest[..end]) {
                    return None;
                }
                self.i += end + 2;
                Some(())
            }
            b'{' => None,
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+'))
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }

    /// Skips one value (string, number, literal, array or object) up to the `,` or `}` after it.
    pub fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.raw_str()?;
                }
                b'[' | b'{' => {
                    depth += 1;
                    self.i += 1;
                }
                b']' | b'}' if depth > 0 => {
                    depth -= 1;
                    self.i += 1;
                }
                b',' | b']' | b'}' if depth == 0 => return Some(()),
                _ => self.i += 1,
            }
            if depth == 0 && matches!(self.peek(), Some(b',' | b'}')) {
                return Some(());
            }
        }
    }
}

impl<'a> RawEnvelope<'a> {
    /// Scans one line (without its newline). `None`: not recognised (use the serde path).
    pub fn scan(line: &'a [u8]) -> Option<Self> {
        let mut s = Scan::new(line);
        let (mut topic, mut partition, mut offset, mut ts, mut key, mut payload) =
            (None, None, None, None, None, None);
        s.ws();
        s.eat(b'{')?;
        loop {
            s.ws();
            let k = s.raw_str()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            match k {
                b"topic" => {
                    topic = Some(
                        std::str::from_utf8(s.raw_str()?)
                            .ok()
                            .filter(|t| crate::topics::check_topic_name(t).is_ok())?,
                    )
                }
                b"partition" => partition = Some(i32::try_from(s.int()?).ok().filter(|p| *p >= 0)?),
                b"offset" => offset = Some(s.int()?),
                b"ts" => ts = Some(s.int()?),
                b"key" => key = Some(s.null_or_str()?),
                b"payload" => payload = Some(s.null_or_str()?),
                _ => s.skip_value()?,
            }
            s.ws();
            if s.eat(b',').is_none() {
                s.eat(b'}')?;
                break;
            }
        }
        s.ws();
        s.at_end().then_some(())?;
        Some(RawEnvelope {
            topic: topic?,
            partition: partition?,
            offset: offset?,
            ts,
            key: key?,
            payload: payload?,
        })
    }
}

/// Appends the unescaped form of a JSON string's contents to `out` (chunks between escapes are
/// copied whole). Errors on a malformed escape.
pub fn unescape_into(escaped: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut rest = escaped;
    while let Some(at) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..at]);
        let code = *rest
            .get(at + 1)
            .ok_or("a string ends with a lone backslash")?;
        rest = &rest[at + 2..];
        match code {
            b'"' | b'\\' | b'/' => out.push(code),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut unit = hex4(rest)?;
                rest = &rest[4..];
                if (0xD800..0xDC00).contains(&unit) {
                    // A high surrogate must be followed by \u and a low surrogate.
                    if rest.len() >= 6 && rest[0] == b'\\' && rest[1] == b'u' {
                        let low = hex4(&rest[2..])?;
                        if (0xDC00..0xE000).contains(&low) {
                            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            rest = &rest[6..];
                        }
                    }
                }
                let c = char::from_u32(unit)
                    .ok_or_else(|| format!("\\u escape {unit:04x} is not a character"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    out.extend_from_slice(rest);
    Ok(())
}

fn hex4(b: &[u8]) -> Result<u32, String> {
    let digits = b.get(..4).ok_or("a \\u escape needs 4 hex digits")?;
    let text =
        std::str::from_utf8(digits).map_err(|_| "a \\u escape needs 4 hex digits".to_owned())?;
    u32::from_str_radix(text, 16).map_err(|_| format!("\\u{text} is not hexadecimal"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Envelope, EnvelopeWriter, Header, TimestampType};
    use proptest::prelude::*;

    fn envelope() -> impl Strategy<Value = Envelope> {
        (
            "[a-z][a-z.]{0,12}",
            0i32..8,
            0i64..1_000_000,
            proptest::option::of(any::<i64>()),
            proptest::collection::vec(("\\PC{0,6}", proptest::option::of(any::<String>())), 0..3),
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
        )
            .prop_map(
                |(topic, partition, offset, ts, headers, key, payload)| Envelope {
                    topic,
                    partition,
                    offset,
                    tstype: ts.map(|_| TimestampType::Create),
                    ts,
                    broker: 1,
                    headers: headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                    key,
                    payload,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// What the scanner reads is what serde reads.
        #[test]
        fn scan_and_unescape_agree_with_serde(e in envelope()) {
            let mut w = EnvelopeWriter::new(Vec::new());
            w.write(&e).unwrap();
            let mut line = w.into_inner();
            line.pop();
            let raw = RawEnvelope::scan(&line).expect("our own lines are recognised");
            prop_assert_eq!(raw.topic, e.topic.as_str());
            prop_assert_eq!((raw.partition, raw.offset, raw.ts), (e.partition, e.offset, e.ts));
            let text = |r: Option<&[u8]>| r.map(|b| { let mut v = Vec::new(); unescape_into(b, &mut v).unwrap(); String::from_utf8(v).unwrap() });
            prop_assert_eq!(text(raw.payload), e.payload);
            prop_assert_eq!(text(raw.key), e.key);
        }
    }

    #[test]
    fn an_empty_array_element_is_never_skipped_as_numbers() {
        for bad in [
            &b"1,,2"[..],
            b",1",
            b"1,",
            b" , ",
            b"1, ,2",
            b"1,\t,2",
            b"1,x",
        ] {
            assert!(!numeric_list(bad), "{}", String::from_utf8_lossy(bad));
        }
        for good in [&b""[..], b" ", b"1", b"1,2", b"1, 2", b" -1e-3 ,2.0E+2 "] {
            assert!(numeric_list(good), "{}", String::from_utf8_lossy(good));
        }
        let mut s = Scan::new(b"[1,,2]");
        assert_eq!(s.skip_plain_value(), None);
    }

    #[test]
    fn escapes_and_refusals() {
        let mut v = Vec::new();
        unescape_into(br#"a\"b\\c\/d\u00e9\ud83d\ude00\n"#, &mut v).unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "a\"b\\c/dé😀\n");
        assert!(unescape_into(br"\x", &mut Vec::new()).is_err());
        assert!(unescape_into(br"\u12", &mut Vec::new()).is_err());
        assert!(
            RawEnvelope::scan(b"{\"topic\":\"t\"}").is_none(),
            "missing fields"
        );
        assert!(RawEnvelope::scan(b"[]").is_none());
        assert!(
            RawEnvelope::scan(
                b"{\"topic\":\"t\",\"partition\":-1,\"offset\":0,\"key\":null,\"payload\":null}"
            )
            .is_none()
        );
    }
}
