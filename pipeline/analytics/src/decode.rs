//! From input bytes to [`Event`](crate::core::Event) fields, reading only what the job needs.
//!
//! - [`decode_value`]: a Kafka value (plain JSON) → [`ChunkKeys`], serde with the vector skipped
//!   (never turned into numbers) and the ids borrowed.
//! - [`decode_line`]: a recorded-stream line (kcat `-J` envelope, the value escaped inside
//!   `"payload"`) → partition, offset, timestamp and keys. A fast scanner handles the common shape
//!   without unescaping or copying the payload: it walks the envelope, finds the three ids inside
//!   the escaped value and skips the vector with a byte-class loop. Anything unusual (escapes in
//!   ids, nested objects, strings in arrays, duplicate keys, missing fields) falls back to the full
//!   serde path, which also produces the error messages. Both paths give the same result on every
//!   input the fast one accepts; the fast path checks that a (flat) array holds only number
//!   characters (digits, `.`, `+`, `-`, `e`, `E`, `,`, blanks) and no empty element
//!   (`numeric_list`), but not each number's grammar.

use atenex_contracts::{ChunkKeys, ContractError, Envelope, Topic};
use memchr::memchr2;
use std::borrow::Cow;

/// Decodes and validates the ids of an `embeddings.ready` value.
pub fn decode_value(value: &[u8]) -> Result<ChunkKeys<'_>, ContractError> {
    ChunkKeys::decode(Topic::EmbeddingsReady, value)
}

/// What the job makes of one Kafka record: its ids and event time, or the reason it goes to the
/// dead-letter topic.
pub fn decode_record(
    value: Option<&[u8]>,
    timestamp: Option<i64>,
) -> Result<(ChunkKeys<'_>, i64), String> {
    match (value, timestamp) {
        (None, _) => Err("embeddings.ready record with a null value".to_owned()),
        (_, None) => Err("record without a timestamp: its event time is unknown".to_owned()),
        (Some(_), Some(ts)) if !crate::output::event_time_in_range(ts) => {
            Err(format!("timestamp {ts} is out of range"))
        }
        (Some(v), Some(ts)) => decode_value(v).map(|k| (k, ts)).map_err(|e| e.to_string()),
    }
}

/// A recorded record of the analysed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    pub ts: i64,
    pub keys: ChunkKeys<'a>,
}

/// What a recorded-stream line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// A record of another topic: ignored.
    OtherTopic,
    Record(LineRecord<'a>),
}

/// Decodes one line (without its `\n`) of a recorded stream; `topic` is the analysed topic.
/// Errors are reasons, without the line number.
pub fn decode_line<'a>(line: &'a [u8], topic: &str) -> Result<Line<'a>, String> {
    if let Some(line) = fast::kcat_line(line, topic) {
        return line;
    }
    if let Some(fast) = fast::line(line, topic) {
        return fast;
    }
    slow_line(line, topic)
}

/// The reference path: serde all the way (the value is unescaped into a string).
pub fn slow_line<'a>(line: &[u8], topic: &str) -> Result<Line<'a>, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
    let envelope = Envelope::parse(text.trim())?;
    if envelope.topic != topic {
        return Ok(Line::OtherTopic);
    }
    record(
        &envelope.topic,
        envelope.partition,
        envelope.offset,
        envelope.ts,
        envelope.payload.as_deref().map(str::as_bytes),
    )
    .map(|r| {
        Line::Record(LineRecord {
            keys: ChunkKeys {
                chunk_id: Cow::Owned(r.keys.chunk_id.into_owned()),
                document_id: Cow::Owned(r.keys.document_id.into_owned()),
                company_id: Cow::Owned(r.keys.company_id.into_owned()),
            },
            ..r
        })
    })
}

fn record<'a>(
    topic: &str,
    partition: i32,
    offset: i64,
    ts: Option<i64>,
    payload: Option<&'a [u8]>,
) -> Result<LineRecord<'a>, String> {
    let ts = ts.ok_or_else(|| {
        format!("{topic} record without a timestamp (no `ts`): its event time is unknown")
    })?;
    let payload = payload.ok_or_else(|| format!("{topic} record with a null value"))?;
    let keys = decode_value(payload).map_err(|e| e.to_string())?;
    Ok(LineRecord {
        partition,
        offset,
        ts,
        keys,
    })
}

mod fast {
    use super::*;
    use atenex_contracts::raw_envelope::{RawEnvelope, Scan};

    fn validated(
        partition: i32,
        offset: i64,
        ts: i64,
        keys: ChunkKeys<'_>,
    ) -> Result<Line<'_>, String> {
        keys.validate(Topic::EmbeddingsReady)
            .map_err(|e| e.to_string())?;
        Ok(Line::Record(LineRecord {
            partition,
            offset,
            ts,
            keys,
        }))
    }

    /// The exact shape kcat and our recorder write, fields in their order and the value as our
    /// producers write it (`chunk_id`, `document_id`, `company_id`, `vector`):
    /// `{"topic":..,"partition":..,"offset":..,"tstype":..,"ts":..,"broker":..,"key":..,"payload":"{\"chunk_id\":..}"}`.
    /// Matched with literal comparisons and memchr; `None` for anything else (other topics too).
    pub fn kcat_line<'a>(b: &'a [u8], topic: &str) -> Option<Result<Line<'a>, String>> {
        let mut c = Scan::new(b);
        c.literal(b"{\"topic\":\"")?;
        if c.plain_bytes_open()? != topic.as_bytes() {
            return None;
        }
        c.literal(b",\"partition\":")?;
        let partition = i32::try_from(c.int()?).ok().filter(|p| *p >= 0)?;
        c.literal(b",\"offset\":")?;
        let offset = c.int()?;
        c.literal(b",\"tstype\":\"")?;
        c.plain_bytes_open()?;
        c.literal(b",\"ts\":")?;
        let ts = c.int()?;
        c.literal(b",\"broker\":")?;
        c.int()?;
        c.literal(b",\"key\":")?;
        if c.literal(b"null").is_none() {
            c.literal(b"\"")?;
            c.plain_bytes_open()?;
        }
        c.literal(b",\"payload\":\"{\\\"chunk_id\\\":\\\"")?;
        let chunk_id = c.until_backslash()?;
        c.literal(b"\\\",\\\"document_id\\\":\\\"")?;
        let document_id = c.until_backslash()?;
        c.literal(b"\\\",\\\"company_id\\\":\\\"")?;
        let company_id = c.until_backslash()?;
        c.literal(b"\\\",\\\"vector\\\":")?;
        if c.peek()? != b'[' {
            return None;
        }
        c.skip_escaped_value()?;
        c.literal(b"}\"}")?;
        if !c.at_end() {
            return None;
        }
        let keys = ChunkKeys {
            chunk_id: Cow::Borrowed(std::str::from_utf8(chunk_id).ok()?),
            document_id: Cow::Borrowed(std::str::from_utf8(document_id).ok()?),
            company_id: Cow::Borrowed(std::str::from_utf8(company_id).ok()?),
        };
        Some(validated(partition, offset, ts, keys))
    }

    /// Any field order, headers and extra fields: the envelope found by the shared
    /// [`RawEnvelope`] scanner, the ids read from the escaped value. `None`: use the slow path.
    pub fn line<'a>(b: &'a [u8], topic: &str) -> Option<Result<Line<'a>, String>> {
        let raw = RawEnvelope::scan(b)?;
        if raw.topic != topic {
            return Some(Ok(Line::OtherTopic));
        }
        let (Some(payload), Some(ts)) = (raw.payload, raw.ts) else {
            return Some(
                record(raw.topic, raw.partition, raw.offset, raw.ts, None::<&[u8]>)
                    .map(Line::Record),
            );
        };
        let mut inner = Scan::new(payload);
        let keys = escaped_keys(&mut inner)?;
        inner.ws();
        if !inner.at_end() {
            return None;
        }
        Some(validated(raw.partition, raw.offset, ts, keys))
    }

    /// The three ids from the value as it stands escaped inside the envelope's string, from the
    /// scanner's position to the end of the value's object.
    fn escaped_keys<'a>(s: &mut Scan<'a>) -> Option<ChunkKeys<'a>> {
        let (mut chunk_id, mut document_id, mut company_id) = (None, None, None);
        s.ws();
        s.eat(b'{')?;
        s.ws();
        if s.peek()? == b'}' {
            return None;
        }
        loop {
            s.ws();
            let key = s.escaped_plain_bytes()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let slot = match key {
                b"chunk_id" => Some(&mut chunk_id),
                b"document_id" => Some(&mut document_id),
                b"company_id" => Some(&mut company_id),
                _ => None,
            };
            match slot {
                Some(slot) => {
                    if slot.is_some() {
                        return None; // duplicate key: let serde say so
                    }
                    *slot = Some(s.escaped_plain_str()?);
                }
                None => s.skip_escaped_value()?,
            }
            s.ws();
            if s.eat(b',').is_none() {
                s.eat(b'}')?;
                break;
            }
        }
        Some(ChunkKeys {
            chunk_id: Cow::Borrowed(chunk_id?),
            document_id: Cow::Borrowed(document_id?),
            company_id: Cow::Borrowed(company_id?),
        })
    }

    /// The steps of the analytics scanners on top of the shared [`Scan`].
    trait Steps<'a> {
        fn plain_bytes_open(&mut self) -> Option<&'a [u8]>;
        fn until_backslash(&mut self) -> Option<&'a [u8]>;
        fn escaped_plain_bytes(&mut self) -> Option<&'a [u8]>;
        fn escaped_plain_str(&mut self) -> Option<&'a str>;
        fn skip_escaped_value(&mut self) -> Option<()>;
    }

    impl<'a> Steps<'a> for Scan<'a> {
        fn plain_bytes_open(&mut self) -> Option<&'a [u8]> {
            let rest = &self.b[self.i..];
            let end = memchr2(b'"', b'\\', rest)?;
            if rest[end] != b'"' {
                return None;
            }
            self.i += end + 1;
            Some(&rest[..end])
        }

        fn until_backslash(&mut self) -> Option<&'a [u8]> {
            let rest = &self.b[self.i..];
            let end = memchr::memchr(b'\\', rest)?;
            self.i += end;
            Some(&rest[..end])
        }

        fn escaped_plain_bytes(&mut self) -> Option<&'a [u8]> {
            self.eat(b'\\')?;
            self.eat(b'"')?;
            let rest = &self.b[self.i..];
            let end = rest.iter().position(|&c| c == b'\\')?;
            if rest.get(end + 1) != Some(&b'"') {
                return None;
            }
            self.i += end + 2;
            Some(&rest[..end])
        }

        fn escaped_plain_str(&mut self) -> Option<&'a str> {
            std::str::from_utf8(self.escaped_plain_bytes()?).ok()
        }

        fn skip_escaped_value(&mut self) -> Option<()> {
            match self.peek()? {
                b'\\' => self.escaped_plain_bytes().map(drop),
                b'[' => {
                    // A flat array: the bytes up to its `]` checked in bulk (no empty element);
                    // a nested array or a string inside goes to the slow path.
                    let rest = &self.b[self.i + 1..];
                    let end = memchr::memchr3(b'[', b']', b'\\', rest)?;
                    if rest[end] != b']'
                        || !atenex_contracts::raw_envelope::numeric_list(&rest[..end])
                    {
                        return None;
                    }
                    self.i += end + 2;
                    Some(())
                }
                b'{' => None,
                _ => {
                    let start = self.i;
                    while self.peek().is_some_and(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+')
                    }) {
                        self.i += 1;
                    }
                    (self.i > start).then_some(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
