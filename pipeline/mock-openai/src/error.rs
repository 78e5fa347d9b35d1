//! OpenAI's error answers, as OpenAI words them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// OpenAI's error answer: `{"error": {"message", "type", "param", "code"}}` with its status.
pub(crate) struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}});
        (self.status, axum::Json(body)).into_response()
    }
}

pub(crate) fn error(
    status: StatusCode,
    message: impl Into<String>,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
) -> OpenAiError {
    OpenAiError {
        status,
        message: message.into(),
        kind,
        param,
        code,
    }
}

pub(crate) fn invalid(message: impl Into<String>, param: Option<&'static str>) -> OpenAiError {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        None,
    )
}

/// OpenAI shows the first and last characters of a wrong key only.
pub(crate) fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}
