//! Extractors whose rejections are the API's own `{code, message}` errors.
//!
//! Every body is a JSON object, decoded strictly (unknown fields refused by
//! the types), and every message says where and which rule failed, never
//! the value. Text with a NUL character is refused here, before it can
//! reach PostgreSQL (which cannot store it), except in a push, whose
//! mutations are checked one by one so one bad mutation never blocks the
//! workstation's queue.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use clinic_domain::untrusted::{describe_decode_error, json_text_has_nul};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

const NUL_TEXT: &str = "text must not contain NUL characters";

/// A JSON object body with no NUL in any string.
pub struct ApiJson<T>(pub T);

/// A JSON object body that may hold NUL characters; only for a push, which
/// refuses them per mutation.
pub struct PushJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_body(req, state).await?;
        if json_text_has_nul(&bytes) {
            return Err(ApiError::BadRequest(NUL_TEXT.into()));
        }
        decode_object(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PushJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_body(req, state).await?;
        decode_object(&bytes).map(PushJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("application/json")
                || (m.len() > 5 && m[m.len() - 5..].eq_ignore_ascii_case("+json"))
        })
}

async fn json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::BadRequest(
            "send the body as application/json".into(),
        ));
    }
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest("the body could not be read (cut off, or sent too slowly)".into())
        }
    })
}

/// Decodes a JSON object (a JSON array would decode into a struct too,
/// field by position, and is refused), with the failing field's path.
fn decode_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = describe_decode_error(&e.into_inner().to_string());
        ApiError::BadRequest(if path == "." {
            format!("malformed JSON: {message}")
        } else {
            format!("malformed JSON: {path}: {message}")
        })
    })?;
    // Nothing but white space after the object.
    de.end().map_err(|e| {
        ApiError::BadRequest(format!(
            "malformed JSON: {}",
            describe_decode_error(&e.to_string())
        ))
    })?;
    Ok(value)
}

/// A query string, with no NUL in it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        if raw.to_ascii_lowercase().contains("%00") {
            return Err(ApiError::BadRequest(NUL_TEXT.into()));
        }
        let axum::extract::Query(q) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        Ok(ApiQuery(q))
    }
}

/// Path parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The client's address (see [`crate::limits::Limits::client_address`]),
/// when the server was started with connection info.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<crate::state::AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, ApiError> {
        Ok(ClientAddress(state.limits.client_address(parts)))
    }
}
