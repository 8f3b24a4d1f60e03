//! Error codes shared by the store, the app and (later) the server.
//!
//! Every error that reaches the UI is an [`ErrorBody`]: a stable [`ErrorCode`]
//! the UI translates into the user's language, an English `message` for logs
//! and tests, and per-field errors for forms. UI code matches on `code`, never
//! on message text.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    /// Input failed validation; see the field errors.
    Validation,
    /// The record does not exist (or is not visible to this user).
    NotFound,
    /// The signed-in user's role does not allow this action.
    Forbidden,
    /// Nobody is signed in.
    Unauthenticated,
    /// The workstation locked itself after the idle time; sign in again to unlock.
    SessionLocked,
    /// Wrong user name or password.
    InvalidCredentials,
    /// Too many failed sign-ins; the account is locked for a while.
    AccountLocked,
    /// The account was disabled by an admin.
    AccountDisabled,
    /// The password does not meet the password policy.
    WeakPassword,
    /// The record changed since it was read; reload and try again.
    Conflict,
    /// The first admin account must be created before anything else.
    SetupRequired,
    /// The workstation is already set up.
    AlreadySetUp,
    /// A user with this name already exists.
    UserExists,
    /// The database file is damaged or is not a clinic database.
    DatabaseCorrupt,
    /// Another program holds a lock on the database file.
    DatabaseLocked,
    /// The database was written by a newer version of this program.
    DatabaseTooNew,
    /// A file could not be read or written.
    Io,
    /// An unexpected internal error; details are in the local log.
    Internal,
    /// The central server could not be reached; try again later.
    ServerUnreachable,
    /// The central server refused the request (see the message).
    ServerRefused,
}

impl ErrorCode {
    /// The code as the snake_case string used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Unauthenticated => "unauthenticated",
            Self::SessionLocked => "session_locked",
            Self::InvalidCredentials => "invalid_credentials",
            Self::AccountLocked => "account_locked",
            Self::AccountDisabled => "account_disabled",
            Self::WeakPassword => "weak_password",
            Self::Conflict => "conflict",
            Self::SetupRequired => "setup_required",
            Self::AlreadySetUp => "already_set_up",
            Self::UserExists => "user_exists",
            Self::DatabaseCorrupt => "database_corrupt",
            Self::DatabaseLocked => "database_locked",
            Self::DatabaseTooNew => "database_too_new",
            Self::Io => "io",
            Self::Internal => "internal",
            Self::ServerUnreachable => "server_unreachable",
            Self::ServerRefused => "server_refused",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field's validation failure, shown beside that field in a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[ts(export)]
pub struct FieldError {
    /// The field's name as in the input type, e.g. `birth_date` or `phones.1`.
    pub field: String,
    /// A stable code the UI translates, e.g. `required`, `too_long`, `in_future`.
    pub code: String,
    /// An English description for logs and tests.
    pub message: String,
    /// The limit the rule names (`too_long`: most characters, `too_short`:
    /// fewest, `too_many`: most items), so the form can say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub limit: Option<u32>,
}

impl FieldError {
    /// A field error with its code and English message.
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
            limit: None,
        }
    }

    /// The same error, naming the limit its rule sets.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(u32::try_from(limit).unwrap_or(u32::MAX));
        self
    }
}

/// The serialized form of every error that reaches the UI: `{code, message, fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ErrorBody {
    /// What went wrong, for the UI to translate.
    pub code: ErrorCode,
    /// An English message; never contains patient data.
    pub message: String,
    /// Per-field validation errors; empty unless `code` is `validation`.
    #[serde(default)]
    pub fields: Vec<FieldError>,
}
