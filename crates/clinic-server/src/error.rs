//! The server's error type and its JSON form `{code, message}`.
//!
//! Messages never contain patient data: they go to clients and, for 5xx, to
//! the log. Database errors are logged with their SQLSTATE only.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clinic_domain::FieldError;
use clinic_domain::sync::ApiErrorCode;
use clinic_domain::untrusted::describe_decode_error;
use serde::Serialize;

/// Everything an endpoint can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, a malformed token, or an expired one.
    #[error("sign in first: {0}")]
    Unauthenticated(&'static str),
    /// Wrong user name or password.
    #[error("wrong clinic, user name or password")]
    InvalidCredentials,
    /// Too many failed sign-ins.
    #[error("too many failed sign-ins; the account is locked for a while")]
    AccountLocked,
    /// The account is disabled.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The token's role or clinic does not allow this.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// No such record in the caller's clinic.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request body or query is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Field validation failed.
    #[error("the input is not valid")]
    Validation(Vec<FieldError>),
    /// The request conflicts with the current state (e.g. a name taken).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the server accepts.
    #[error("the request body is too large")]
    TooLarge,
    /// The caller's share of the server is in use (too many requests of
    /// the user at once, a push of the workstation in progress, too many
    /// sign-in attempts): try again after `retry_after` seconds.
    #[error("busy: {what}; try again in {retry_after} s")]
    Busy {
        /// Seconds to wait (the `Retry-After` header).
        retry_after: u64,
        /// What is busy.
        what: &'static str,
    },
    /// The HTTP method is not one the path serves.
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// The database is unavailable or failed; the client should retry.
    #[error("the server cannot reach its database; try again")]
    Unavailable,
    /// A bug or an unexpected state.
    #[error("internal error")]
    Internal,
}

/// The JSON body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    /// A stable, machine-readable code.
    code: ApiErrorCode,
    /// An English message; never contains patient data.
    message: String,
    /// Per-field problems; only with `validation`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<FieldError>,
}

impl ApiError {
    /// The stable code and HTTP status.
    pub fn code_and_status(&self) -> (ApiErrorCode, StatusCode) {
        use ApiError::*;
        match self {
            Unauthenticated(_) => (ApiErrorCode::Unauthenticated, StatusCode::UNAUTHORIZED),
            InvalidCredentials => (ApiErrorCode::InvalidCredentials, StatusCode::UNAUTHORIZED),
            AccountLocked => (ApiErrorCode::AccountLocked, StatusCode::FORBIDDEN),
            AccountDisabled => (ApiErrorCode::AccountDisabled, StatusCode::FORBIDDEN),
            Forbidden(_) => (ApiErrorCode::Forbidden, StatusCode::FORBIDDEN),
            NotFound(_) => (ApiErrorCode::NotFound, StatusCode::NOT_FOUND),
            BadRequest(_) => (ApiErrorCode::BadRequest, StatusCode::BAD_REQUEST),
            Validation(_) => (ApiErrorCode::Validation, StatusCode::UNPROCESSABLE_ENTITY),
            Conflict(_) => (ApiErrorCode::Conflict, StatusCode::CONFLICT),
            TooLarge => (ApiErrorCode::TooLarge, StatusCode::PAYLOAD_TOO_LARGE),
            Busy { .. } => (ApiErrorCode::Busy, StatusCode::TOO_MANY_REQUESTS),
            MethodNotAllowed => (
                ApiErrorCode::MethodNotAllowed,
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            Unavailable => (ApiErrorCode::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            Internal => (ApiErrorCode::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        let message = self.to_string();
        let retry_after = match &self {
            ApiError::Busy { retry_after, .. } => Some(*retry_after),
            ApiError::Unavailable => Some(1),
            _ => None,
        };
        let fields = match self {
            ApiError::Validation(f) => f,
            _ => Vec::new(),
        };
        let body = ErrorBody {
            code,
            message,
            fields,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // Log the kind and SQLSTATE only: a database error message can quote
        // the row that failed, which may be patient data.
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error.kind = "database_unavailable", "database unavailable");
                ApiError::Unavailable
            }
            sqlx::Error::Database(db) => {
                let state = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // Serialization failures and deadlocks are transient.
                if state == "40001" || state == "40P01" {
                    tracing::info!(sqlstate = %state, "transaction retry needed");
                    ApiError::Unavailable
                } else {
                    tracing::error!(sqlstate = %state, "database error");
                    ApiError::Internal
                }
            }
            _ => {
                tracing::error!(error.kind = "database", "database error");
                ApiError::Internal
            }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!(
            "bad query string: {}",
            describe_decode_error(&r.body_text())
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(format!(
            "bad path: {}",
            describe_decode_error(&r.body_text())
        ))
    }
}

/// Results of handlers and their helpers.
pub type ApiResult<T> = Result<T, ApiError>;
