//! Arbitrary `Authorization` headers and secrets: a verdict, never a panic; nothing but a token
//! signed with the secret is ever accepted (issue 15).

use atenex_gateway::jwt::{authenticate, check_secret};
use proptest::prelude::*;

const SECRET: &[u8] = b"arbitrary-7c3e9a1f5b2d8e4c6a0f9b3d1e7c5a2f";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_authorization_header_is_refused(header in "\\PC{0,300}") {
        prop_assert!(authenticate(Some(&header), SECRET).is_err());
    }

    #[test]
    fn any_bearer_token_shaped_text_is_refused(
        parts in prop::collection::vec("[A-Za-z0-9_=-]{0,60}", 1..5),
    ) {
        let header = format!("Bearer {}", parts.join("."));
        prop_assert!(authenticate(Some(&header), SECRET).is_err());
    }

    #[test]
    fn any_secret_is_judged(secret in prop::collection::vec(any::<u8>(), 0..100)) {
        let _ = check_secret(&secret);
    }
}
