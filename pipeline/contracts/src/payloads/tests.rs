use super::*;
use proptest::prelude::*;

const DOC: &str = "0b8f3a2e-6a8e-4c1e-9d2f-1f2e3d4c5b6a";

fn err<T: Payload + std::fmt::Debug>(json: &str) -> ContractError {
    decode::<T>(json.as_bytes()).expect_err("must be rejected")
}

#[test]
fn decodes_each_topic_and_ignores_extra_fields() {
    let d: DocumentRaw = decode(
        format!(r#"{{"document_id":"{DOC}","company_id":"c1","s3_path":"s3://b/c1/{DOC}/a.pdf","extra":1}}"#)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(d.key(), DOC);

    let c: ChunkProcessed = decode(
        format!(r#"{{"chunk_id":"{DOC}_3","document_id":"{DOC}","company_id":"c1","text":"hola","page":null}}"#)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(c.page, None);
    assert_eq!(c.chunk_id.index(), 3);

    let e: EmbeddingReady = decode(
        format!(r#"{{"chunk_id":"{DOC}_0","document_id":"{DOC}","company_id":"c1","vector":[0.5,-1e-3]}}"#)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(e.vector, vec![0.5, -0.001]);

    let w: AnalyticsWindow = decode(
        br#"{"window_start":"2026-11-27T23:00:00+01:00","window_end":"2026-11-27T22:01:00Z","company_id":"c1","chunk_count":7}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&w).unwrap(),
        r#"{"window_start":"2026-11-27T22:00:00Z","window_end":"2026-11-27T22:01:00Z","company_id":"c1","chunk_count":7}"#
    );
}

#[test]
fn errors_name_topic_field_and_problem() {
    let e = err::<DocumentRaw>(r#"{"document_id":"x","company_id":"c","s3_path":"p"}"#);
    assert_eq!(
        (e.topic.as_str(), e.field.as_str()),
        ("documents.raw", "document_id")
    );
    assert!(e.problem.contains("UUID"), "{e}");

    let e = err::<DocumentRaw>(&format!(r#"{{"document_id":"{DOC}","s3_path":"p"}}"#));
    assert_eq!(
        (e.field.as_str(), e.problem.as_str()),
        ("company_id", "is missing")
    );
    assert_eq!(
        e.to_string(),
        "documents.raw: field `company_id`: is missing"
    );

    let e = err::<DocumentRaw>(&format!(
        r#"{{"document_id":"{DOC}","company_id":123,"s3_path":"p"}}"#
    ));
    assert_eq!(e.field, "company_id");
    assert!(e.problem.contains("expected a string"), "{e}");

    let e = err::<DocumentRaw>(&format!(
        r#"{{"document_id":"{DOC}","company_id":" ","s3_path":"p"}}"#
    ));
    assert_eq!(
        (e.field.as_str(), e.problem.as_str()),
        ("company_id", "must not be empty")
    );

    let e = err::<ChunkProcessed>(&format!(
        r#"{{"chunk_id":"{DOC}_1","document_id":"{DOC}","company_id":"c","text":"t","page":0}}"#
    ));
    assert_eq!(e.field, "page");

    let other = "11111111-2222-3333-4444-555555555555";
    let e = err::<ChunkProcessed>(&format!(
        r#"{{"chunk_id":"{other}_1","document_id":"{DOC}","company_id":"c","text":"t","page":1}}"#
    ));
    assert_eq!(e.field, "chunk_id");
    assert!(e.problem.contains(DOC));

    let e = err::<ChunkProcessed>(&format!(
        r#"{{"chunk_id":"{DOC}_1","document_id":"{DOC}","company_id":"c","text":"  ","page":1}}"#
    ));
    assert_eq!(e.field, "text");

    let e = err::<EmbeddingReady>(&format!(
        r#"{{"chunk_id":"{DOC}_1","document_id":"{DOC}","company_id":"c","vector":[1.0,"x"]}}"#
    ));
    assert_eq!(e.field, "vector[1]");
    assert_eq!(e.topic, "embeddings.ready");

    let e = err::<EmbeddingReady>(&format!(
        r#"{{"chunk_id":"{DOC}_1","document_id":"{DOC}","company_id":"c","vector":[]}}"#
    ));
    assert_eq!(e.field, "vector");

    let e = err::<AnalyticsWindow>(
        r#"{"window_start":"2026-11-27 23:00","window_end":"2026-11-27T23:01:00Z","company_id":"c","chunk_count":1}"#,
    );
    assert_eq!(e.field, "window_start");
    assert!(e.problem.contains("RFC 3339"), "{e}");

    let e = err::<AnalyticsWindow>(
        r#"{"window_start":"2026-11-27T23:01:00Z","window_end":"2026-11-27T23:01:00Z","company_id":"c","chunk_count":1}"#,
    );
    assert_eq!(e.field, "window_end");
}

#[test]
fn whole_value_errors() {
    for (input, needle) in [
        ("", "empty"),
        ("  \n", "empty"),
        ("{\"document_id\":", "not valid JSON"),
        ("[1,2]", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("{}", "is missing"),
        ("nope", "not valid JSON"),
    ] {
        let e = err::<DocumentRaw>(input);
        if input == "{}" {
            assert_eq!(e.field, "document_id");
            continue;
        }
        assert_eq!(e.field, "<value>", "{input:?}");
        assert!(e.problem.contains(needle), "{input:?}: {e}");
    }
    let e = err::<DocumentRaw>(&format!(
        r#"{{"document_id":"{DOC}","company_id":"c","s3_path":"p"}} trailing"#
    ));
    assert!(e.problem.contains("not valid JSON"), "{e}");
}

#[test]
fn chunk_keys_skip_text_and_vector_and_borrow_the_ids() {
    let value = format!(
        r#"{{"chunk_id":"{DOC}_9","document_id":"{DOC}","company_id":"c\u00f1","vector":[1e400,"not even numbers",{{"a":[]}}]}}"#
    );
    // The vector is not decoded into numbers, so even values that are no f32 pass through.
    let k = ChunkKeys::decode(Topic::EmbeddingsReady, value.as_bytes()).unwrap();
    assert!(
        matches!(k.chunk_id, Cow::Borrowed(_)),
        "no escapes: borrowed"
    );
    assert_eq!(k.company_id, "cñ");
    let e = ChunkKeys::decode(Topic::ChunksProcessed, br#"{"chunk_id":"x"}"#).unwrap_err();
    assert_eq!(
        (e.topic.as_str(), e.field.as_str()),
        ("chunks.processed", "document_id")
    );
    assert_eq!(e.problem, "is missing");
    let value = format!(r#"{{"chunk_id":"x","document_id":"{DOC}","company_id":"c"}}"#);
    let e = ChunkKeys::decode(Topic::ChunksProcessed, value.as_bytes()).unwrap_err();
    assert_eq!(e.field, "chunk_id");
    let other = "11111111-2222-3333-4444-555555555555";
    let value = format!(r#"{{"chunk_id":"{other}_1","document_id":"{DOC}","company_id":"c"}}"#);
    let e = ChunkKeys::decode(Topic::EmbeddingsReady, value.as_bytes()).unwrap_err();
    assert_eq!(e.field, "chunk_id");
    assert!(e.problem.contains("must start with the document_id"), "{e}");
    let value = format!(r#"{{"chunk_id":"{DOC}_1","document_id":"{DOC}","company_id":""}}"#);
    assert_eq!(
        ChunkKeys::decode(Topic::EmbeddingsReady, value.as_bytes())
            .unwrap_err()
            .field,
        "company_id"
    );
}

fn doc_id() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 16]>().prop_map(|b| DocumentId::from(uuid::Uuid::from_bytes(b)))
}

fn text() -> impl Strategy<Value = String> {
    "\\PC*[a-zA-Z0-9ñ中]\\PC*"
}

proptest! {
    #[test]
    fn chunk_round_trip(doc in doc_id(), idx in any::<u32>(), company in text(), body in text(), page in proptest::option::of(1u32..)) {
        let c = ChunkProcessed { chunk_id: ChunkId::new(&doc, idx), document_id: doc, company_id: company, text: body, page };
        let json = serde_json::to_vec(&c).unwrap();
        prop_assert_eq!(decode::<ChunkProcessed>(&json).unwrap(), c);
    }

    #[test]
    fn embedding_round_trip(doc in doc_id(), idx in any::<u32>(), company in text(), vector in proptest::collection::vec(-1.0e6f32..1.0e6, 1..64)) {
        let e = EmbeddingReady { chunk_id: ChunkId::new(&doc, idx), document_id: doc, company_id: company, vector };
        let json = serde_json::to_vec(&e).unwrap();
        prop_assert_eq!(decode::<EmbeddingReady>(&json).unwrap(), e);
    }

    #[test]
    fn document_round_trip(doc in doc_id(), company in text(), path in text()) {
        let d = DocumentRaw { document_id: doc, company_id: company, s3_path: path, doc_type: None };
        let json = serde_json::to_vec(&d).unwrap();
        prop_assert_eq!(decode::<DocumentRaw>(&json).unwrap(), d);
    }

    #[test]
    fn window_round_trip(start_ms in 0i64..4_000_000_000_000, len_ms in 1i64..86_400_000, company in text(), count in 1u64..) {
        let w = AnalyticsWindow {
            window_start: DateTime::from_timestamp_millis(start_ms).unwrap(),
            window_end: DateTime::from_timestamp_millis(start_ms + len_ms).unwrap(),
            company_id: company,
            chunk_count: count,
        };
        let json = serde_json::to_string(&w).unwrap();
        prop_assert!(json.contains("Z\""), "{}", json);
        prop_assert_eq!(decode::<AnalyticsWindow>(json.as_bytes()).unwrap(), w);
    }
}

#[test]
fn documents_raw_carries_the_checked_type_when_its_producer_gives_it() {
    let with =
        format!(r#"{{"document_id":"{DOC}","company_id":"c","s3_path":"p","doc_type":"pdf"}}"#);
    let d: DocumentRaw = decode(with.as_bytes()).unwrap();
    assert_eq!(d.doc_type.as_deref(), Some("pdf"));
    assert_eq!(serde_json::to_string(&d).unwrap(), with);
    // An older producer's event has none, and none is written back.
    let without = format!(r#"{{"document_id":"{DOC}","company_id":"c","s3_path":"p"}}"#);
    let old: DocumentRaw = decode(without.as_bytes()).unwrap();
    assert_eq!(old.doc_type, None);
    assert_eq!(serde_json::to_string(&old).unwrap(), without);
}
