//! The store's error type and its mapping to the `{code, message}` the UI gets.

use clinic_domain::error::{ErrorBody, ErrorCode, FieldCode, FieldError};

/// Everything that can go wrong in the store.
///
/// Messages never contain patient data: they may be logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Input failed validation.
    #[error("{} field(s) are invalid", .0.len())]
    Validation(Vec<FieldError>),
    /// No such record.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The actor's role does not allow this.
    #[error("your role does not allow this action")]
    Forbidden,
    /// Nobody is signed in.
    #[error("sign in first")]
    Unauthenticated,
    /// A change on a workstation enrolled with a central server, made
    /// without a clinic account (e.g. from the command line): the server
    /// must know who made it, or it could never be pushed.
    #[error(
        "this workstation syncs with a central server: make this change in the app, signed in with your clinic account"
    )]
    ClinicUserRequired,
    /// The session was locked after the idle time.
    #[error("the workstation is locked; enter your password")]
    SessionLocked,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// Too many failed sign-ins.
    #[error("too many failed sign-ins; the account is locked for {minutes} more minute(s)")]
    AccountLocked {
        /// Minutes until the lock ends.
        minutes: i64,
    },
    /// The account is disabled.
    #[error("this account is disabled; ask an admin")]
    AccountDisabled,
    /// The record changed since it was read.
    #[error("the record was changed by someone else; reload it and try again")]
    Conflict,
    /// The first admin must be created first.
    #[error("create the administrator account first")]
    SetupRequired,
    /// Setup was already done.
    #[error("this workstation is already set up")]
    AlreadySetUp,
    /// The user name is taken.
    #[error("a user with this name already exists")]
    UserExists,
    /// The file is not a usable clinic database.
    #[error(
        "the database file {path} is damaged or is not a clinic database ({detail}); it was left untouched — restore a backup"
    )]
    DatabaseCorrupt {
        /// The file.
        path: String,
        /// What SQLite said.
        detail: String,
    },
    /// Another program holds the database.
    #[error("the database file {path} is in use by another program; close it and try again")]
    DatabaseLocked {
        /// The file.
        path: String,
    },
    /// The schema is newer than this program.
    #[error("the database was written by a newer version of this program; update the program")]
    DatabaseTooNew,
    /// File I/O failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// A database error that is not the user's to fix.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database upgrade failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else unexpected.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// A validation error for one field.
    pub fn field(field: &str, code: FieldCode, message: &str) -> Self {
        StoreError::Validation(vec![FieldError::new(field, code, message)])
    }

    /// The stable code the UI translates.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Validation(_) => ErrorCode::Validation,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Forbidden => ErrorCode::Forbidden,
            StoreError::Unauthenticated | StoreError::ClinicUserRequired => {
                ErrorCode::Unauthenticated
            }
            StoreError::SessionLocked => ErrorCode::SessionLocked,
            StoreError::InvalidCredentials => ErrorCode::InvalidCredentials,
            StoreError::AccountLocked { .. } => ErrorCode::AccountLocked,
            StoreError::AccountDisabled => ErrorCode::AccountDisabled,
            StoreError::Conflict => ErrorCode::Conflict,
            StoreError::SetupRequired => ErrorCode::SetupRequired,
            StoreError::AlreadySetUp => ErrorCode::AlreadySetUp,
            StoreError::UserExists => ErrorCode::UserExists,
            StoreError::DatabaseCorrupt { .. } => ErrorCode::DatabaseCorrupt,
            StoreError::DatabaseLocked { .. } => ErrorCode::DatabaseLocked,
            StoreError::DatabaseTooNew => ErrorCode::DatabaseTooNew,
            StoreError::Io(_) => ErrorCode::Io,
            StoreError::Sqlx(e) if is_busy(e) => ErrorCode::DatabaseLocked,
            StoreError::Sqlx(_) | StoreError::Migrate(_) | StoreError::Internal(_) => {
                ErrorCode::Internal
            }
        }
    }

    /// The body sent to the UI. Internal details stay in the local log.
    pub fn to_body(&self) -> ErrorBody {
        let (message, fields) = match self {
            StoreError::Validation(fields) => (self.to_string(), fields.clone()),
            StoreError::Sqlx(e) if is_busy(e) => (
                "the database is busy in another program; try again".to_owned(),
                Vec::new(),
            ),
            StoreError::Sqlx(_) | StoreError::Migrate(_) | StoreError::Internal(_) => (
                "an unexpected error occurred; details are in the local log".to_owned(),
                Vec::new(),
            ),
            other => (other.to_string(), Vec::new()),
        };
        ErrorBody {
            code: self.code(),
            message,
            fields,
        }
    }
}

/// Whether SQLite reported the database as busy or locked.
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code();
            matches!(
                code.as_deref(),
                Some("5") | Some("6") | Some("261") | Some("517")
            )
        }
        _ => false,
    }
}

/// Whether SQLite said the file is not a database or is malformed.
pub(crate) fn is_corrupt(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("11") | Some("26"))
        }
        _ => false,
    }
}
