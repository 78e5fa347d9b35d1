//! HS256 tokens (`jsonwebtoken`): claims `sub`, `company_id`, `roles`, `exp`, as the seed's
//! gateway. Expiry and, when present, `nbf` are checked with no leeway. The secret is checked once,
//! at start ([`check_secret`]): a guessable one would let anyone mint tokens for any company.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Seconds since the epoch.
    pub exp: u64,
}

/// The shortest HS256 secret accepted, in bytes: RFC 7518 §3.2 asks for a key of at least the
/// hash's size (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Fewer different bytes than this and the secret is a pattern, not a random value.
const MIN_DISTINCT_BYTES: usize = 8;

/// Words of template and tutorial placeholders (compared lower-case, letters and digits only):
/// a secret holding one was copied, not generated.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "replaceme",
    "yoursecret",
    "your256bitsecret",
    "placeholder",
    "example",
    "secretkey",
    "jwtsecret",
    "password",
    "notsecret",
    "insecure",
];

/// Whether `secret` may sign tokens: at least [`MIN_SECRET_BYTES`] bytes, not a known placeholder,
/// not a short pattern repeated. The error says why and how to make one.
pub fn check_secret(secret: &[u8]) -> Result<(), String> {
    const FIX: &str = "generate one with: openssl rand -hex 32";
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the JWT secret is {} bytes long; HS256 needs at least {MIN_SECRET_BYTES} ({FIX})",
            secret.len()
        ));
    }
    let folded: String = String::from_utf8_lossy(secret)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if let Some(word) = PLACEHOLDER_WORDS.iter().find(|w| folded.contains(*w)) {
        return Err(format!(
            "the JWT secret looks like a placeholder (it contains {word:?}); {FIX}"
        ));
    }
    let mut seen = [false; 256];
    secret.iter().for_each(|&b| seen[usize::from(b)] = true);
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(format!(
            "the JWT secret has only {distinct} different characters: a pattern, not a random value ({FIX})"
        ));
    }
    Ok(())
}

/// Why a request is not authenticated (401) or not allowed (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed(String),
    Expired,
    NotYetValid,
    BadSignature,
    NoCompany,
}

impl AuthError {
    pub fn detail(&self) -> String {
        match self {
            AuthError::Missing => "missing bearer token (Authorization: Bearer <token>)".to_owned(),
            AuthError::Malformed(why) => format!("invalid token: {why}"),
            AuthError::Expired => "the token has expired".to_owned(),
            AuthError::NotYetValid => "the token is not valid yet (nbf)".to_owned(),
            AuthError::BadSignature => "invalid token: bad signature".to_owned(),
            AuthError::NoCompany => "the token has no company_id claim".to_owned(),
        }
    }
}

/// Verifies `Authorization` (`Bearer <token>`) against the HS256 `secret`.
pub fn authenticate(authorization: Option<&str>, secret: &[u8]) -> Result<Claims, AuthError> {
    let token = authorization
        .and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let key = DecodingKey::from_secret(secret)
        .map_err(|e| AuthError::Malformed(format!("the gateway's secret is unusable: {e}")))?;
    let data = decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
        jsonwebtoken::errors::ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::BadSignature,
        _ => AuthError::Malformed(e.to_string()),
    })?;
    match &data.claims.company_id {
        Some(c) if !c.trim().is_empty() => Ok(data.claims),
        _ => Err(AuthError::NoCompany),
    }
}

/// A signed token (for `atenex token` and tests).
pub fn sign(claims: &Claims, secret: &[u8]) -> anyhow::Result<String> {
    Ok(encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret)?,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(company: Option<&str>, exp: u64) -> Claims {
        Claims {
            sub: "user-1".into(),
            company_id: company.map(str::to_owned),
            roles: vec!["admin".into()],
            exp,
        }
    }

    const SECRET: &[u8] = b"4f1c9e0a7b2d8c3e6f5a1b9d0c7e2f4a";

    #[test]
    fn tokens_are_checked() {
        let secret = SECRET;
        let good = sign(&claims(Some("c"), now() + 60), secret).unwrap();
        let ok = authenticate(Some(&format!("Bearer {good}")), secret).unwrap();
        assert_eq!(ok.company_id.as_deref(), Some("c"));
        assert_eq!(
            authenticate(Some(&format!("bearer  {good} ")), secret).unwrap(),
            ok
        );
        assert_eq!(authenticate(None, secret), Err(AuthError::Missing));
        assert_eq!(
            authenticate(Some(&format!("Basic {good}")), secret),
            Err(AuthError::Missing)
        );
        assert_eq!(
            authenticate(Some(&format!("Bearer {good}")), b"other"),
            Err(AuthError::BadSignature)
        );
        let expired = sign(&claims(Some("c"), now() - 1), secret).unwrap();
        assert_eq!(
            authenticate(Some(&format!("Bearer {expired}")), secret),
            Err(AuthError::Expired)
        );
        let no_company = sign(&claims(None, now() + 60), secret).unwrap();
        assert_eq!(
            authenticate(Some(&format!("Bearer {no_company}")), secret),
            Err(AuthError::NoCompany)
        );
        assert!(matches!(
            authenticate(Some("Bearer not.a.jwt"), secret),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn a_token_is_refused_before_its_nbf_and_accepted_from_it() {
        let token = |nbf: u64| {
            let claims =
                serde_json::json!({"sub": "u", "company_id": "c", "exp": now() + 60, "nbf": nbf});
            let key = EncodingKey::from_secret(SECRET).unwrap();
            format!(
                "Bearer {}",
                encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
            )
        };
        assert_eq!(
            authenticate(Some(&token(now() + 30)), SECRET),
            Err(AuthError::NotYetValid)
        );
        assert!(authenticate(Some(&token(now())), SECRET).is_ok());
    }

    #[test]
    fn weak_secrets_are_refused_with_the_fix() {
        for (secret, why) in [
            (&b""[..], "0 bytes long"),
            (b"change-me", "9 bytes long"),
            (b"s3cret", "at least 32"),
            (b"change-me-change-me-change-me-change-me", "placeholder"),
            (b"CHANGE_ME_to_a_random_value_of_32_bytes", "placeholder"),
            (b"your-256-bit-secret-your-256-bit-secret", "placeholder"),
            (
                b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "only 1 different",
            ),
            (b"abcabcabcabcabcabcabcabcabcabcabcabc", "only 3 different"),
        ] {
            let e = check_secret(secret).unwrap_err();
            assert!(
                e.contains(why) && e.contains("openssl rand -hex 32"),
                "{secret:?}: {e}"
            );
        }
        check_secret(SECRET).unwrap();
        check_secret(uuid_like().as_bytes()).unwrap();
    }

    /// What `atenex demo` uses: 64 hex digits.
    fn uuid_like() -> String {
        "0123456789abcdef".repeat(4)
    }
}
