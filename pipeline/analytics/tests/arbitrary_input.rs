//! Arbitrary bytes into the analytics job's decoders (a recorded line, a Kafka value): a record,
//! another topic, or a reason — never a panic (issue 15).

use atenex_analytics::decode::{decode_line, decode_record};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_line_is_decoded_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_line(&bytes, "embeddings.ready");
    }

    #[test]
    fn any_value_and_timestamp_is_decoded_or_refused(
        value in prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        ts in prop::option::of(any::<i64>()),
    ) {
        let _ = decode_record(value.as_deref(), ts);
    }
}
