//! Arbitrary bytes as a document of each format, and arbitrary `documents.raw` values: text
//! pages or a reason for the dead letter — never a panic that escapes (issue 15).

use atenex_docproc::extract::{Format, Limits, extract};
use atenex_docproc::service::parse_event;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_extracted_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for format in [Format::Pdf, Format::Docx, Format::Txt, Format::Md, Format::Html] {
            let _ = extract(format, &bytes, &Limits::default());
        }
    }

    #[test]
    fn magic_prefixed_bytes_are_extracted_or_refused(
        kind in 0usize..2,
        rest in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let (format, magic): (Format, &[u8]) = [(Format::Pdf, &b"%PDF-1.7\n"[..]), (Format::Docx, b"PK\x03\x04")][kind];
        let bytes = [magic, &rest].concat();
        let _ = extract(format, &bytes, &Limits::default());
    }

    #[test]
    fn any_event_is_parsed_or_refused(payload in prop::option::of(prop::collection::vec(any::<u8>(), 0..300))) {
        let _ = parse_event(payload.as_deref());
    }
}
