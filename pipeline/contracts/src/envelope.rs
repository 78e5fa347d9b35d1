//! Recorded streams (docs/contracts.md, Recorded streams): one JSON object per line in kcat's `-J` envelope, so that
//! `kcat -C -J -b BROKER -t TOPIC > f.jsonl` records a stream our tools replay, and what our
//! recorder writes is readable by kcat users and by [`EnvelopeReader`].
//!
//! ```text
//! {"topic":"embeddings.ready","partition":0,"offset":42,"tstype":"create","ts":1764201600123,"broker":0,"headers":["h","v"],"key":"<document_id>","payload":"<the JSON value as a string>"}
//! ```
//!
//! As kcat does, `tstype`/`ts` are left out when the record has no timestamp and `headers` when it
//! has none; `key` and `payload` are `null` for a null key or value. Line order is arrival order.

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Write};

/// One recorded Kafka record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tstype: Option<TimestampType>,
    /// The record timestamp in epoch milliseconds (event time for `create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Broker id the record was fetched from; -1 when unknown.
    #[serde(default = "unknown_broker")]
    pub broker: i32,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ser_headers",
        deserialize_with = "de_headers"
    )]
    pub headers: Vec<Header>,
    pub key: Option<String>,
    pub payload: Option<String>,
}

fn unknown_broker() -> i32 {
    -1
}

/// kcat's names of Kafka's timestamp types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampType {
    /// Set by the producer (CreateTime): event time.
    Create,
    /// Set by the broker when appended (LogAppendTime).
    Logappend,
    Unknown,
}

/// A record header; a header may have a null value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Option<String>,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

impl Envelope {
    /// The header's first value, if the record has that header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.value.as_deref())
    }
}

// kcat writes headers as a flat array ["name","value","name2",null,...]; with --json-map-headers
// (hdr JSON map) it writes {"name":["v1","v2"]}. We write the first and read both.
fn ser_headers<S: Serializer>(headers: &[Header], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(headers.len() * 2))?;
    for h in headers {
        seq.serialize_element(&h.name)?;
        seq.serialize_element(&h.value)?;
    }
    seq.end()
}

fn de_headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Header>, D::Error> {
    struct HeadersVisitor;
    impl<'de> Visitor<'de> for HeadersVisitor {
        type Value = Vec<Header>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a flat array [name, value, ...] or an object {name: [values]}")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                let Some(value) = seq.next_element::<Option<String>>()? else {
                    return Err(de::Error::custom(format!(
                        "header `{name}` has no value: the array must hold name, value pairs"
                    )));
                };
                out.push(Header { name, value });
            }
            Ok(out)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((name, values)) = map.next_entry::<String, Vec<Option<String>>>()? {
                out.extend(values.into_iter().map(|value| Header {
                    name: name.clone(),
                    value,
                }));
            }
            Ok(out)
        }
    }
    d.deserialize_any(HeadersVisitor)
}

/// What a record carries apart from where Kafka put it (offset, broker): what must survive a
/// replay into another cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordContent {
    pub ts: Option<i64>,
    pub headers: Vec<Header>,
    pub key: Option<String>,
    pub payload: Option<String>,
}

/// The records' contents per `(topic, partition)`, in stream order: two streams with equal
/// results carry the same records in the same order within every partition (Kafka's guarantee).
pub fn by_partition(records: &[Envelope]) -> BTreeMap<(String, i32), Vec<RecordContent>> {
    let mut out: BTreeMap<(String, i32), Vec<RecordContent>> = BTreeMap::new();
    for r in records {
        out.entry((r.topic.clone(), r.partition))
            .or_default()
            .push(RecordContent {
                ts: r.ts,
                headers: r.headers.clone(),
                key: r.key.clone(),
                payload: r.payload.clone(),
            });
    }
    out
}

/// A line of a recorded stream that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("line {line}: {reason}")]
    BadLine { line: u64, reason: String },
    #[error("line {line}: {source}")]
    Io { line: u64, source: io::Error },
}

impl ReadError {
    /// The 1-based line number.
    pub fn line(&self) -> u64 {
        match self {
            ReadError::BadLine { line, .. } | ReadError::Io { line, .. } => *line,
        }
    }
}

/// Reads envelopes one line at a time; blank lines are skipped. A bad line yields an error with
/// its line number and reason, and reading can go on with the next line.
pub struct EnvelopeReader<R> {
    input: R,
    line: u64,
    /// Bytes read, and where the line last returned starts.
    pos: u64,
    start: u64,
    buf: Vec<u8>,
    failed_io: bool,
}

impl<R: BufRead> EnvelopeReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: 0,
            pos: 0,
            start: 0,
            buf: Vec::new(),
            failed_io: false,
        }
    }

    /// The number of lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line
    }

    /// The byte offset (from where the reader started) of the line last returned: seek there
    /// and read one envelope to read it again.
    pub fn line_start(&self) -> u64 {
        self.start
    }
}

impl<R: BufRead> Iterator for EnvelopeReader<R> {
    type Item = Result<Envelope, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed_io {
            return None;
        }
        loop {
            self.buf.clear();
            self.line += 1;
            self.start = self.pos;
            let read = crate::lines::read_line_bounded(
                &mut self.input,
                &mut self.buf,
                crate::lines::MAX_LINE_BYTES,
            )
            .and_then(|n| {
                self.pos += n as u64;
                std::str::from_utf8(&self.buf)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            });
            let text = match read {
                Ok("") => return None,
                Ok(text) => text.trim(),
                Err(source) => {
                    // An I/O error, invalid UTF-8 or a line without end ends the stream: we
                    // cannot tell where the next line starts.
                    self.failed_io = true;
                    return Some(Err(ReadError::Io {
                        line: self.line,
                        source,
                    }));
                }
            };
            if text.is_empty() {
                continue;
            }
            return Some(Envelope::parse(text).map_err(|reason| ReadError::BadLine {
                line: self.line,
                reason,
            }));
        }
    }
}

impl Envelope {
    /// Parses one line (without its newline); the error is the reason, without a line number.
    pub fn parse(text: &str) -> Result<Envelope, String> {
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
            let mut reason = e.to_string();
            if e.is_syntax() || e.is_eof() {
                reason = format!("not a JSON object: {reason}");
            }
            reason
        })?;
        crate::topics::check_topic_name(&envelope.topic).map_err(|e| format!("`topic`: {e}"))?;
        if envelope.partition < 0 {
            return Err(format!(
                "`partition` must be ≥ 0, got {}",
                envelope.partition
            ));
        }
        Ok(envelope)
    }
}

/// Writes envelopes, one compact JSON object and `\n` per record, fields in kcat's order.
pub struct EnvelopeWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> EnvelopeWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out, written: 0 }
    }

    pub fn write(&mut self, envelope: &Envelope) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, envelope)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Lines exactly as kcat 1.7 printed them against Apache Kafka 4.4 (see docs/contracts.md).
    const KCAT: &str = r#"{"topic":"t1","partition":0,"offset":0,"tstype":"create","ts":1795850766557,"broker":1,"headers":["h1","v1","h2",""],"key":"k1","payload":"{\"a\":1}"}
{"topic":"t1","partition":0,"offset":2,"tstype":"create","ts":1795850767651,"broker":1,"key":null,"payload":"nokey"}
"#;

    fn read_all(text: &str) -> Vec<Result<Envelope, ReadError>> {
        EnvelopeReader::new(text.as_bytes()).collect()
    }

    #[test]
    fn reads_kcat_lines_and_writes_them_back_byte_for_byte() {
        let records: Vec<Envelope> = read_all(KCAT).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            records[0].headers,
            vec![Header::new("h1", "v1"), Header::new("h2", "")]
        );
        assert_eq!(records[0].header("h1"), Some("v1"));
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].tstype, Some(TimestampType::Create));
        let mut w = EnvelopeWriter::new(Vec::new());
        for r in &records {
            w.write(r).unwrap();
        }
        assert_eq!(w.written(), 2);
        assert_eq!(String::from_utf8(w.into_inner()).unwrap(), KCAT);
    }

    #[test]
    fn reads_optional_fields_and_header_map() {
        let r = read_all(
            r#"{"topic":"t","partition":3,"offset":1,"headers":{"a":["1",null]},"key":"k","payload":null}"#,
        );
        let e = r[0].as_ref().unwrap();
        assert_eq!((e.ts, e.tstype, e.broker), (None, None, -1));
        assert_eq!(
            e.headers,
            vec![
                Header::new("a", "1"),
                Header {
                    name: "a".into(),
                    value: None
                }
            ]
        );
        assert_eq!(e.payload, None);
    }

    #[test]
    fn bad_lines_report_line_number_and_reason_and_reading_goes_on() {
        let input = "\n{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"key\":null,\"payload\":\"x\"}\nnot json\n{\"topic\":\"t\",\"offset\":1,\"key\":null,\"payload\":\"x\"}\n{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"headers\":[\"odd\"],\"key\":null,\"payload\":\"x\"}\n{\"topic\":\"\",\"partition\":0,\"offset\":0,\"key\":null,\"payload\":\"x\"}\n{\"topic\":\"t\",\"partition\":0,\"offset\":5,\"key\":\"k\",\"payload\":\"y\"}";
        let r = read_all(input);
        assert_eq!(r.len(), 6);
        assert!(r[0].is_ok());
        let errors: Vec<(u64, String)> = r[1..5]
            .iter()
            .map(|e| {
                let e = e.as_ref().unwrap_err();
                (e.line(), e.to_string())
            })
            .collect();
        assert_eq!(errors[0].0, 3);
        assert!(errors[0].1.contains("not a JSON object"), "{errors:?}");
        assert_eq!(errors[1].0, 4);
        assert!(
            errors[1].1.contains("missing field `partition`"),
            "{errors:?}"
        );
        assert_eq!(errors[2].0, 5);
        assert!(
            errors[2].1.contains("header `odd` has no value"),
            "{errors:?}"
        );
        assert_eq!(errors[3].0, 6);
        assert!(
            errors[3]
                .1
                .contains("`topic`: topic name must not be empty"),
            "{errors:?}"
        );
        assert_eq!(r[5].as_ref().unwrap().offset, 5);
    }

    #[test]
    fn invalid_utf8_ends_the_stream_with_an_error() {
        let input: &[u8] = b"{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"key\":null,\"payload\":\"x\"}\n\xff\xfe\n";
        let r: Vec<_> = EnvelopeReader::new(input).collect();
        assert_eq!(r.len(), 2);
        assert!(matches!(r[1], Err(ReadError::Io { line: 2, .. })));
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        let header = ("\\PC{0,8}", proptest::option::of(any::<String>()))
            .prop_map(|(name, value)| Header { name, value });
        (
            "[a-z][a-z.]{0,20}",
            0i32..64,
            0i64..i64::MAX,
            proptest::option::of((
                prop_oneof![
                    Just(TimestampType::Create),
                    Just(TimestampType::Logappend),
                    Just(TimestampType::Unknown)
                ],
                -1i64..i64::MAX,
            )),
            -1i32..10,
            proptest::collection::vec(header, 0..4),
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
        )
            .prop_map(
                |(topic, partition, offset, ts, broker, headers, key, payload)| Envelope {
                    topic,
                    partition,
                    offset,
                    tstype: ts.map(|t| t.0),
                    ts: ts.map(|t| t.1),
                    broker,
                    headers,
                    key,
                    payload,
                },
            )
    }

    proptest! {
        #[test]
        fn write_then_read_round_trips(records in proptest::collection::vec(envelope(), 0..20)) {
            let mut w = EnvelopeWriter::new(Vec::new());
            for r in &records {
                w.write(r).unwrap();
            }
            let bytes = w.into_inner();
            prop_assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), records.len());
            let back: Vec<Envelope> = EnvelopeReader::new(&bytes[..]).map(Result::unwrap).collect();
            prop_assert_eq!(back, records);
        }
    }
}
