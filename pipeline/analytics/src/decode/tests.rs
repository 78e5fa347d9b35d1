use super::*;
use atenex_contracts::{EnvelopeWriter, Header, TimestampType};
use proptest::prelude::*;

const DOC: &str = "0b8f3a2e-6a8e-4c1e-9d2f-1f2e3d4c5b6a";
const T: &str = "embeddings.ready";

fn line_of(e: &Envelope) -> Vec<u8> {
    let mut w = EnvelopeWriter::new(Vec::new());
    w.write(e).unwrap();
    let mut v = w.into_inner();
    v.pop();
    v
}

fn envelope(payload: Option<String>) -> Envelope {
    Envelope {
        topic: T.into(),
        partition: 2,
        offset: 41,
        tstype: Some(TimestampType::Create),
        ts: Some(1_764_201_600_123),
        broker: 1,
        headers: vec![Header::new("h", "v ]\"}")],
        key: Some(DOC.into()),
        payload,
    }
}

fn value(company: &str, vector: &str) -> String {
    format!(
        r#"{{"chunk_id":"{DOC}_7","document_id":"{DOC}","company_id":"{company}","vector":{vector}}}"#
    )
}

#[test]
fn the_fast_path_reads_the_common_shape_without_copying() {
    let line = line_of(&envelope(Some(value("acme", "[0.5,-1e-3,2.0E+2]"))));
    let got = fast::line(&line, T).expect("fast path applies").unwrap();
    let Line::Record(r) = got else {
        panic!("a record")
    };
    assert_eq!((r.partition, r.offset, r.ts), (2, 41, 1_764_201_600_123));
    assert!(matches!(r.keys.company_id, Cow::Borrowed("acme")));
    assert_eq!(r.keys.chunk_id, format!("{DOC}_7"));
    assert_eq!(Line::Record(r), slow_line(&line, T).unwrap());
}

#[test]
fn other_topics_are_ignored_and_unusual_shapes_fall_back() {
    let mut e = envelope(Some("not even json".into()));
    e.topic = "chunks.processed".into();
    assert_eq!(decode_line(&line_of(&e), T), Ok(Line::OtherTopic));
    // Escapes in an id: the slow path decodes it.
    let line = line_of(&envelope(Some(value("caf\\u00e9", "[1]"))));
    assert!(fast::line(&line, T).is_none());
    let Ok(Line::Record(r)) = decode_line(&line, T) else {
        panic!()
    };
    assert_eq!(r.keys.company_id, "café");
    // A string inside the vector: slow path, which rejects nothing here (serde skips it).
    let line = line_of(&envelope(Some(value("acme", r#"[1,"x"]"#))));
    assert!(fast::line(&line, T).is_none());
    assert!(decode_line(&line, T).is_ok());
    // An empty element is not JSON: never the fast path's, and the slow path refuses it.
    for vector in ["[1,,2]", "[,1]", "[1,]", "[1, ,2]", "[[1,,2]]", "[,]"] {
        let line = line_of(&envelope(Some(value("acme", vector))));
        assert!(fast::line(&line, T).is_none(), "{vector}");
        assert!(decode_line(&line, T).is_err(), "{vector}");
    }
    for vector in ["[]", "[ ]", "[1, 2]", "[-1e-3,2.0E+2]"] {
        let line = line_of(&envelope(Some(value("acme", vector))));
        assert!(fast::line(&line, T).is_some(), "{vector}");
    }
}

#[test]
fn bad_records_have_reasons() {
    let cases = [
        (envelope(None), "null value"),
        (
            envelope(Some(value("", "[1]"))),
            "field `company_id`: must not be empty",
        ),
        (
            envelope(Some(r#"{"chunk_id":"x"}"#.into())),
            "field `document_id`: is missing",
        ),
        (envelope(Some("{".into())), "is not valid JSON"),
        (envelope(Some(value("acme", "[1,]x"))), "is not valid JSON"),
        (
            Envelope {
                ts: None,
                tstype: None,
                ..envelope(Some(value("a", "[1]")))
            },
            "without a timestamp",
        ),
    ];
    for (e, needle) in cases {
        let err = decode_line(&line_of(&e), T).unwrap_err();
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(Err(err), slow_line(&line_of(&e), T));
    }
    assert!(decode_line(b"{\"topic\":", T).unwrap_err().contains("EOF"));
    assert!(decode_line(b"[]", T).is_err());
}

fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.-]{1,12}",
        "\\PC{1,6}",
        Just("c\"q".to_owned()),
        Just("c\\b".to_owned()),
    ]
}

fn extra_field() -> impl Strategy<Value = Option<(String, String)>> {
    proptest::option::of(prop_oneof![
        Just(("page".to_owned(), "3".to_owned())),
        Just(("text".to_owned(), "\"hola ] [ \\\" }\"".to_owned())),
        Just(("meta".to_owned(), "{\"a\":[1]}".to_owned())),
        Just(("flag".to_owned(), "true".to_owned())),
        Just(("n".to_owned(), "null".to_owned())),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the shape, the fast path either declines or agrees with serde exactly.
    #[test]
    fn fast_and_slow_paths_agree(
        company in id_text(),
        vector in proptest::collection::vec(-1.0e3f64..1.0e3, 0..40),
        spaced in any::<bool>(),
        order in any::<prop::sample::Index>(),
        extra in extra_field(),
        topic_match in any::<bool>(),
        ts in proptest::option::of(any::<i64>()),
        index in 0u32..100,
        wrong_doc in any::<bool>(),
    ) {
        let sep = if spaced { ", " } else { "," };
        let doc = if wrong_doc { "11111111-2222-3333-4444-555555555555" } else { DOC };
        let mut fields = vec![
            format!("\"chunk_id\":{}", serde_json::to_string(&format!("{doc}_{index}")).unwrap()),
            format!("\"document_id\":\"{DOC}\""),
            format!("\"company_id\":{}", serde_json::to_string(&company).unwrap()),
            format!("\"vector\":[{}]", vector.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(sep)),
        ];
        if let Some((k, v)) = extra {
            fields.push(format!("\"{k}\":{v}"));
        }
        let n = fields.len();
        fields.rotate_left(order.index(n));
        let payload = format!("{{{}}}", fields.join(sep));
        let mut e = envelope(Some(payload));
        e.ts = ts;
        e.tstype = ts.map(|_| TimestampType::Create);
        if !topic_match { e.topic = "other".into(); }
        let line = line_of(&e);
        let slow = slow_line(&line, T);
        if let Some(fast) = fast::line(&line, T) {
            prop_assert_eq!(&fast, &slow);
        }
        if let Some(kcat) = fast::kcat_line(&line, T) {
            prop_assert_eq!(&kcat, &slow);
        }
        prop_assert_eq!(decode_line(&line, T), slow);
    }
}

#[test]
fn generated_bench_lines_take_the_fast_path() {
    let data = crate::bench::generate(&crate::bench::StreamSpec {
        records: 50,
        dims: 8,
        ..Default::default()
    });
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(
            fast::line(line, T).is_some_and(|r| r.is_ok()),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}
