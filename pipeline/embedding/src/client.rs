//! The OpenAI embeddings client: one request, its outcome classified. Vectors are kept as the raw
//! JSON text of the answer (never parsed into floats: they are copied into `embeddings.ready`);
//! their length is counted to check the dimension.
//!
//! The API key is only ever written into the `Authorization` header: it is not in `Debug`, in
//! errors or in logs.

use crate::retry::Hints;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::Duration;

/// `OPENAI_API_KEY`, never printed.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `OPENAI_BASE_URL`, e.g. `https://api.openai.com/v1` (the SDKs' convention).
    pub base_url: String,
    pub api_key: ApiKey,
    /// `OPENAI_EMBEDDING_MODEL`.
    pub model: String,
    /// `OPENAI_EMBEDDING_DIMENSIONS`: sent as `dimensions` when set.
    pub dimensions: Option<usize>,
    /// Per request.
    pub timeout: Duration,
}

impl ClientConfig {
    /// The vector length the answers must have.
    pub fn expected_dimensions(&self) -> Option<usize> {
        self.dimensions.or(match self.model.as_str() {
            "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
            "text-embedding-3-large" => Some(3072),
            _ => None,
        })
    }
}

/// A failed request, by whose fault it is: only [`Failure::Permanent`] is the input's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again (429 rate limit, 5xx, timeout, connection): with the server's hints.
    Retryable { reason: String, hints: Hints },
    /// The input caused it and would cause it again: OpenAI's own error answer to a 400, 413 or
    /// 422 (too long, empty, ...). The reason for the dead letters.
    Permanent { status: u16, reason: String },
    /// The endpoint or the configuration, not the input: a key or project refused (401, 403),
    /// no such endpoint or model (404, 405), the quota used up, any other answer that is not
    /// OpenAI's (an HTML page, a 200 without embeddings), vectors of another dimension. Every
    /// input would fail the same way: consumption pauses, nothing is dead-lettered or committed.
    Endpoint { status: u16, reason: String },
}

pub struct Client {
    http: reqwest::Client,
    url: String,
    config: ClientConfig,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    data: Vec<Item<'a>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    index: usize,
    #[serde(borrow)]
    embedding: &'a RawValue,
}

impl Client {
    pub fn new(config: ClientConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        let url = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        Ok(Self { http, url, config })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Embeds `inputs`; the vectors (raw JSON arrays) come back in input order.
    pub async fn embed(&self, inputs: &[&str]) -> Result<Vec<Box<RawValue>>, Failure> {
        let mut body = serde_json::json!({"model": self.config.model, "input": inputs});
        if let Some(d) = self.config.dimensions {
            body["dimensions"] = d.into();
        }
        let sent = self
            .http
            .post(&self.url)
            .bearer_auth(&self.config.api_key.0)
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Err(Failure::Retryable {
                    reason: describe(&e),
                    hints: Hints::default(),
                });
            }
        };
        let status = response.status().as_u16();
        let hints = Hints::from_headers(response.headers());
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(Failure::Retryable {
                    reason: describe(&e),
                    hints,
                });
            }
        };
        if status != 200 {
            return Err(classify(status, &bytes, hints));
        }
        self.vectors(&bytes, inputs.len())
            .map_err(|reason| Failure::Endpoint {
                status,
                reason: format!("{reason} (is OPENAI_BASE_URL an OpenAI embeddings API?)"),
            })
    }

    fn vectors(&self, body: &[u8], n: usize) -> Result<Vec<Box<RawValue>>, String> {
        let answer: Answer<'_> = serde_json::from_slice(body)
            .map_err(|e| format!("OpenAI answered 200 with an unreadable body: {e}"))?;
        let mut out = vec![None; n];
        for item in answer.data {
            let slot = out
                .get_mut(item.index)
                .ok_or_else(|| format!("OpenAI answered index {} for {n} inputs", item.index))?;
            let raw = item.embedding.get();
            let len = array_len(raw)
                .ok_or_else(|| "OpenAI answered an embedding that is not an array".to_owned())?;
            if let Some(want) = self.config.expected_dimensions()
                && len != want
            {
                return Err(format!(
                    "OpenAI answered {len} dimensions, expected {want} (model {}, OPENAI_EMBEDDING_DIMENSIONS)",
                    self.config.model
                ));
            }
            // A copy of the array's bytes: the numbers are never parsed.
            *slot = Some(item.embedding.to_owned());
        }
        out.into_iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| format!("OpenAI answered no embedding for input {i}")))
            .collect()
    }
}

/// The length of a flat JSON array of numbers, by counting its commas.
fn array_len(raw: &str) -> Option<usize> {
    let inner = raw.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.contains(['[', '{', '"']) {
        return None;
    }
    Some(if inner.trim().is_empty() {
        0
    } else {
        memchr::memchr_iter(b',', inner.as_bytes()).count() + 1
    })
}

/// A request error without its URL's query or any header (the key is never in it).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        format!("OpenAI {kind}")
    } else {
        format!("OpenAI {kind}: {detail}")
    }
}

/// OpenAI's error body, classified (docs/semantics.md, the OpenAI embeddings API).
pub fn classify(status: u16, body: &[u8], hints: Hints) -> Failure {
    #[derive(Deserialize, Default)]
    struct Body {
        error: Option<Detail>,
    }
    #[derive(Deserialize, Default)]
    struct Detail {
        message: Option<String>,
        code: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    // OpenAI's error body: `{"error": {"message", "type", "code"}}`; anything else is not OpenAI.
    let openai = serde_json::from_slice::<Body>(body)
        .ok()
        .and_then(|b| b.error);
    let from_openai = openai.is_some();
    let detail = openai.unwrap_or_default();
    let code = detail.code.or(detail.kind).unwrap_or_default();
    let message = detail.message.unwrap_or_else(|| {
        String::from_utf8_lossy(&body[..floor_char_boundary(body, 200)]).into_owned()
    });
    let reason = format!("OpenAI {status} {code}: {message}");
    let endpoint = |fix: &str| Failure::Endpoint {
        status,
        reason: format!("{reason} ({fix})"),
    };
    match status {
        429 if code == "insufficient_quota" => {
            endpoint("the account's quota is used up: add credit or raise the limit")
        }
        408 | 409 | 429 | 500..=599 => Failure::Retryable { reason, hints },
        401 | 403 => endpoint("the API key or project was refused: check OPENAI_API_KEY"),
        404 | 405 => endpoint(
            "no embeddings endpoint or model there: check OPENAI_BASE_URL (it ends in /v1) and OPENAI_EMBEDDING_MODEL",
        ),
        400 | 413 | 422 if from_openai => Failure::Permanent { status, reason },
        _ => endpoint("not an answer of OpenAI's embeddings API: check OPENAI_BASE_URL"),
    }
}

/// The largest index ≤ `max` that does not cut a UTF-8 character of `bytes` in two.
fn floor_char_boundary(bytes: &[u8], max: usize) -> usize {
    let mut end = max.min(bytes.len());
    while end > 0 && end < bytes.len() && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lengths_without_parsing() {
        assert_eq!(array_len("[0.1,-0.2,3e-5]"), Some(3));
        assert_eq!(array_len(" [ ] "), Some(0));
        assert_eq!(array_len("[1]"), Some(1));
        assert_eq!(array_len("\"AAAA\""), None);
        assert_eq!(array_len("[[1,2]]"), None);
    }

    #[test]
    fn the_key_is_not_in_debug() {
        let c = ClientConfig {
            base_url: "http://x".into(),
            api_key: ApiKey::new("sk-secret-123"),
            model: "m".into(),
            dimensions: None,
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{c:?}").contains("sk-secret"));
    }

    #[test]
    fn classification() {
        let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(matches!(
            classify(429, quota, Hints::default()),
            Failure::Endpoint { status: 429, .. }
        ));
        let rl = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert!(matches!(
            classify(429, rl, Hints::default()),
            Failure::Retryable { .. }
        ));
        assert!(matches!(
            classify(503, b"<html>busy</html>", Hints::default()),
            Failure::Retryable { .. }
        ));
        let long = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":null}}"#;
        match classify(400, long, Hints::default()) {
            Failure::Permanent { status, reason } => {
                assert_eq!(status, 400);
                assert!(reason.contains("maximum context length"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(401, b"{}", Hints::default()),
            Failure::Endpoint { status: 401, .. }
        ));
    }

    #[test]
    fn only_openais_answer_to_the_input_blames_the_input() {
        let e = |status, body: &[u8]| classify(status, body, Hints::default());
        let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        for (status, body, fix) in [
            (429, &quota[..], "quota is used up"),
            (
                401,
                br#"{"error":{"message":"Incorrect API key","code":"invalid_api_key"}}"#,
                "OPENAI_API_KEY",
            ),
            (403, b"forbidden", "OPENAI_API_KEY"),
            (
                404,
                b"<html>Not Found</html>",
                "OPENAI_BASE_URL (it ends in /v1)",
            ),
            (
                404,
                br#"{"error":{"message":"The model `x` does not exist","code":"model_not_found"}}"#,
                "OPENAI_EMBEDDING_MODEL",
            ),
            (405, b"", "OPENAI_BASE_URL"),
            (
                400,
                b"<html>Bad Request</html>",
                "not an answer of OpenAI's",
            ),
            (418, b"teapot", "not an answer of OpenAI's"),
        ] {
            match e(status, body) {
                Failure::Endpoint { status: s, reason } => {
                    assert_eq!(s, status);
                    assert!(reason.contains(fix), "{status}: {reason}");
                }
                other => panic!("{status} {}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        let refused = br#"{"error":{"message":"'$.input' is invalid","type":"invalid_request_error","code":null}}"#;
        for status in [400, 413, 422] {
            assert!(
                matches!(e(status, refused), Failure::Permanent { .. }),
                "{status}"
            );
        }
        // A message cut at 200 bytes never splits a character.
        let long = "é".repeat(300);
        match e(418, long.as_bytes()) {
            Failure::Endpoint { reason, .. } => assert!(reason.contains(&"é".repeat(100))),
            other => panic!("{other:?}"),
        }
    }
}
