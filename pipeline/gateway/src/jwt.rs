//! HS256 tokens (`jsonwebtoken`): claims `sub`, `company_id`, `roles`, `exp`, as the seed's
//! gateway. Expiry is checked with no leeway.

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

/// Why a request is not authenticated (401) or not allowed (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed(String),
    Expired,
    BadSignature,
    NoCompany,
}

impl AuthError {
    pub fn detail(&self) -> String {
        match self {
            AuthError::Missing => "missing bearer token (Authorization: Bearer <token>)".to_owned(),
            AuthError::Malformed(why) => format!("invalid token: {why}"),
            AuthError::Expired => "the token has expired".to_owned(),
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
    validation.set_required_spec_claims(&["exp", "sub"]);
    let key = DecodingKey::from_secret(secret)
        .map_err(|e| AuthError::Malformed(format!("the gateway's secret is unusable: {e}")))?;
    let data = decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
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

    #[test]
    fn tokens_are_checked() {
        let secret = b"s3cret";
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
}
