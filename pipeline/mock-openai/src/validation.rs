//! Requests checked as OpenAI checks them: the key first, then the body (model, inputs and their
//! token counts, dimensions, encoding).

use crate::error::{OpenAiError, error, invalid, redact};
use crate::{MAX_INPUT_TOKENS, MAX_INPUTS, MAX_REQUEST_TOKENS, Mock, model_dimensions};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// A valid request: what the answer is made of.
pub(crate) struct Request {
    pub(crate) model: String,
    pub(crate) dims: usize,
    pub(crate) base64: bool,
    pub(crate) inputs: Vec<Input>,
    /// Tokens of all inputs.
    pub(crate) total: usize,
}

/// The key in `Authorization: Bearer` (any non-empty one, or the configured one).
pub(crate) fn authenticate(mock: &Mock, headers: &HeaderMap) -> Result<(), OpenAiError> {
    // Authentication comes first, as at OpenAI.
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            None,
        ));
    }
    if mock.config.api_key.as_deref().is_some_and(|k| k != key) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                redact(key)
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ));
    }
    Ok(())
}

/// The body checked: a model, inputs within OpenAI's limits, dimensions and encoding.
pub(crate) fn request(mock: &Mock, body: &[u8]) -> Result<Request, OpenAiError> {
    let req: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            format!("We could not parse the JSON body of your request. ({e})"),
            None,
        )
    })?;
    let model = match req.get("model") {
        Some(Value::String(m)) => m.as_str(),
        None => return Err(invalid("you must provide a model parameter", None)),
        Some(_) => return Err(invalid("'model' must be a string", Some("model"))),
    };
    let Some(native) = model_dimensions(model) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ));
    };
    let inputs = inputs(mock, req.get("input"))?;
    if inputs.len() > MAX_INPUTS {
        return Err(invalid(
            format!(
                "'$.input' is invalid: at most {MAX_INPUTS} inputs per request, got {}.",
                inputs.len()
            ),
            Some("input"),
        ));
    }
    for (i, input) in inputs.iter().enumerate() {
        if input.tokens > MAX_INPUT_TOKENS {
            return Err(invalid(
                format!(
                    "This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however you requested {} tokens ({} in your prompt; 0 for the completion). Please reduce your prompt; or completion length. (input {i})",
                    input.tokens, input.tokens
                ),
                None,
            ));
        }
    }
    let total: usize = inputs.iter().map(|i| i.tokens).sum();
    if total > MAX_REQUEST_TOKENS {
        return Err(invalid(
            format!("Requested {total} tokens, max {MAX_REQUEST_TOKENS} tokens per request"),
            None,
        ));
    }
    let dims = match req.get("dimensions") {
        None | Some(Value::Null) => native,
        Some(d) => {
            if !model.starts_with("text-embedding-3") {
                return Err(invalid(
                    "This model does not support specifying dimensions.",
                    Some("dimensions"),
                ));
            }
            match d.as_u64() {
                Some(d) if d >= 1 && d as usize <= native => d as usize,
                _ => {
                    return Err(invalid(
                        format!(
                            "Invalid value for 'dimensions' = {d}. Must be between 1 and {native}."
                        ),
                        Some("dimensions"),
                    ));
                }
            }
        }
    };
    let base64 = match req.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "float" => false,
        Some(Value::String(s)) if s == "base64" => true,
        Some(other) => {
            return Err(invalid(
                format!(
                    "Invalid value for 'encoding_format' = {other}. Supported values are: 'float' and 'base64'."
                ),
                Some("encoding_format"),
            ));
        }
    };
    Ok(Request {
        model: model.to_owned(),
        dims,
        base64,
        inputs,
        total,
    })
}

/// One input: its text (for the vector) and its token count.
pub(crate) struct Input {
    pub(crate) seed_bytes: Vec<u8>,
    pub(crate) tokens: usize,
}

fn inputs(mock: &Mock, input: Option<&Value>) -> Result<Vec<Input>, OpenAiError> {
    let bad = || {
        invalid(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            Some("input"),
        )
    };
    let text = |s: &str| -> Result<Input, OpenAiError> {
        if s.is_empty() {
            return Err(bad());
        }
        Ok(Input {
            seed_bytes: s.as_bytes().to_vec(),
            tokens: mock.bpe.encode_ordinary(s).len(),
        })
    };
    let tokens = |a: &[Value]| -> Result<Input, OpenAiError> {
        if a.is_empty() || a.iter().any(|t| !t.is_u64()) {
            return Err(bad());
        }
        // The vector of a token array is the vector of the text it decodes to.
        let ids: Vec<u32> = a.iter().map(|t| t.as_u64().unwrap_or(0) as u32).collect();
        let seed_bytes = mock
            .bpe
            .decode(&ids)
            .map(String::into_bytes)
            .map_err(|_| bad())?;
        Ok(Input {
            seed_bytes,
            tokens: ids.len(),
        })
    };
    match input {
        Some(Value::String(s)) => Ok(vec![text(s)?]),
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.iter().all(Value::is_string) {
                items
                    .iter()
                    .map(|s| text(s.as_str().unwrap_or_default()))
                    .collect()
            } else if items.iter().all(Value::is_u64) {
                Ok(vec![tokens(items)?])
            } else if items.iter().all(Value::is_array) {
                items
                    .iter()
                    .map(|a| tokens(a.as_array().map(Vec::as_slice).unwrap_or_default()))
                    .collect()
            } else {
                Err(bad())
            }
        }
        None => Err(invalid("you must provide an input parameter", None)),
        _ => Err(bad()),
    }
}
