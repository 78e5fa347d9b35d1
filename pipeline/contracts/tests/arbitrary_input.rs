//! Arbitrary bytes into every parser of untrusted input this crate has — recorded-stream
//! envelopes (the fast scanner, serde, the line reader, the unescaper) and the payload decoders —
//! never panic; and where the fast scanner accepts a line, serde reads the same record from it
//! (issue 15).

use atenex_contracts::raw_envelope::{RawEnvelope, unescape_into};
use atenex_contracts::{
    AnalyticsWindow, ChunkKeys, ChunkProcessed, DocumentRaw, EmbeddingReady, Envelope,
    EnvelopeReader, Topic, decode,
};
use proptest::prelude::*;

/// JSON objects of fewer than `most` fields, keys and values drawn from the two strategies
/// (duplicate keys included).
fn json_object(
    key: impl Strategy<Value = &'static str>,
    value: impl Strategy<Value = String>,
    most: usize,
) -> impl Strategy<Value = String> {
    prop::collection::vec((key, value), 0..most).prop_map(|fields| {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

/// Lines shaped like envelopes, with the values that go wrong: huge and negative numbers, odd
/// strings and escapes, arrays, nulls, duplicate and missing keys.
fn envelope_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "topic",
        "partition",
        "offset",
        "ts",
        "tstype",
        "key",
        "payload",
        "headers",
        "broker",
    ]);
    let value = prop_oneof![
        "-?[0-9]{1,22}",
        "\"[a-z.\\\\/ \"]{0,12}\"",
        Just("null".to_owned()),
        "\\[[0-9,\"a-z ]{0,12}\\]",
        "[0-9eE.+-]{1,8}",
        Just("\"embeddings.ready\"".to_owned()),
        Just("\"..\"".to_owned()),
    ];
    json_object(key, value, 9)
}

/// Values shaped like payloads: the contract's field names with any kind of JSON value.
fn payload_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "document_id",
        "company_id",
        "chunk_id",
        "text",
        "page",
        "vector",
        "s3_path",
        "doc_type",
        "window_start",
        "window_end",
        "chunk_count",
    ]);
    let value = prop_oneof![
        "-?[0-9]{1,22}(\\.[0-9]{1,3})?",
        "\"[0-9a-f-]{0,40}(_[0-9]{1,3})?\"",
        "\"[a-zA-Z0-9 ñ€]{0,10}\"",
        Just("null".to_owned()),
        "\\[[0-9,. e-]{0,16}\\]",
        Just("{}".to_owned()),
    ];
    json_object(key, value, 8)
}

fn every_envelope_parser(bytes: &[u8]) -> Result<(), TestCaseError> {
    let scanned = RawEnvelope::scan(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let parsed = Envelope::parse(text.trim());
        if let Some(raw) = &scanned {
            let e = parsed.map_err(|e| TestCaseError::fail(format!("scan took it, serde: {e}")))?;
            prop_assert_eq!(raw.topic, e.topic.as_str());
            prop_assert_eq!(
                (raw.partition, raw.offset, raw.ts),
                (e.partition, e.offset, e.ts)
            );
        }
    }
    for _ in EnvelopeReader::new(bytes) {}
    let mut out = Vec::new();
    let _ = unescape_into(bytes, &mut out);
    Ok(())
}

fn every_payload_decoder(bytes: &[u8]) {
    let _ = decode::<DocumentRaw>(bytes);
    let _ = decode::<ChunkProcessed>(bytes);
    let _ = decode::<EmbeddingReady>(bytes);
    let _ = decode::<AnalyticsWindow>(bytes);
    for topic in Topic::ALL {
        let _ = ChunkKeys::decode(topic, bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic_an_envelope_parser(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        every_envelope_parser(&bytes)?;
    }

    #[test]
    fn envelope_shaped_lines_never_panic_and_both_paths_agree(line in envelope_like()) {
        every_envelope_parser(line.as_bytes())?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_payload_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        every_payload_decoder(&bytes);
    }

    #[test]
    fn payload_shaped_values_never_panic_a_payload_decoder(value in payload_like()) {
        every_payload_decoder(value.as_bytes());
    }
}
