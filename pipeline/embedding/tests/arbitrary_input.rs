//! Whatever an endpoint answers — any status, any body, any retry header — the client classifies
//! it without a panic, and a wait it computes is finite and capped (issue 15).

use atenex_embedding::client::classify;
use atenex_embedding::retry::{Hints, RetryPolicy, parse_reset};
use proptest::prelude::*;

/// Header values as servers write them, and as broken ones do.
fn header_value() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        "[0-9]{1,30}(\\.[0-9]{1,5})?",
        "-?[0-9.]{1,8}(e[+-]?[0-9]{1,4})?",
        Just("inf".to_owned()),
        Just("-inf".to_owned()),
        Just("NaN".to_owned()),
        Just("1e309".to_owned()),
        "([0-9.]{1,6}(h|m|s|ms|us|ns)){1,4}",
        "\\PC{0,12}",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_answer_is_classified(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = classify(status, &body, Hints::default());
    }

    #[test]
    fn any_retry_header_gives_a_finite_capped_wait(
        retry_after_ms in header_value(),
        retry_after in header_value(),
        reset_requests in header_value(),
        reset_tokens in header_value(),
        attempt in 0u32..100,
        draw in any::<f64>(),
    ) {
        let hints = Hints { retry_after_ms, retry_after, reset_requests, reset_tokens };
        let _ = hints.wait();
        let policy = RetryPolicy::default();
        if let Some(w) = policy.wait(attempt.max(1), &hints, draw) {
            prop_assert!(w <= policy.max);
        }
        prop_assert!(policy.backoff(attempt, draw) <= policy.max);
    }

    #[test]
    fn any_reset_text_is_parsed_or_refused(text in "\\PC{0,24}") {
        let _ = parse_reset(&text);
    }
}
