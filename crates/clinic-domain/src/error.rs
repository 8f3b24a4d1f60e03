//! Error codes shared by the store, the app and (later) the server.
//!
//! Every error that reaches the UI is an [`ErrorBody`]: a stable [`ErrorCode`]
//! the UI translates into the user's language, an English `message` for logs
//! and tests, and per-field errors for forms. UI code matches on `code`, never
//! on message text.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::codes::wire_code;

wire_code! {
    /// A stable, machine-readable error code.
    pub enum ErrorCode {
        /// Input failed validation; see the field errors.
        Validation = "validation",
        /// The record does not exist (or is not visible to this user).
        NotFound = "not_found",
        /// The signed-in user's role does not allow this action.
        Forbidden = "forbidden",
        /// Nobody is signed in.
        Unauthenticated = "unauthenticated",
        /// The workstation locked itself after the idle time; sign in again to unlock.
        SessionLocked = "session_locked",
        /// Wrong user name or password.
        InvalidCredentials = "invalid_credentials",
        /// Too many failed sign-ins; the account is locked for a while.
        AccountLocked = "account_locked",
        /// The account was disabled by an admin.
        AccountDisabled = "account_disabled",
        /// The password does not meet the password policy.
        WeakPassword = "weak_password",
        /// The record changed since it was read; reload and try again.
        Conflict = "conflict",
        /// The first admin account must be created before anything else.
        SetupRequired = "setup_required",
        /// The workstation is already set up.
        AlreadySetUp = "already_set_up",
        /// A user with this name already exists.
        UserExists = "user_exists",
        /// The database file is damaged or is not a clinic database.
        DatabaseCorrupt = "database_corrupt",
        /// Another program holds a lock on the database file.
        DatabaseLocked = "database_locked",
        /// The database was written by a newer version of this program.
        DatabaseTooNew = "database_too_new",
        /// A file could not be read or written.
        Io = "io",
        /// An unexpected internal error; details are in the local log.
        Internal = "internal",
        /// The central server could not be reached; try again later.
        ServerUnreachable = "server_unreachable",
        /// The central server refused the request (see the message).
        ServerRefused = "server_refused",
    }
}

wire_code! {
    /// Why one field was refused: the UI says it beside the field, in the
    /// user's language (`field_error.<code>`).
    pub enum FieldCode {
        /// Empty, but needed.
        Required = "required",
        /// Longer than the rule's limit (see [`FieldError::limit`]).
        TooLong = "too_long",
        /// Shorter than the rule's limit.
        TooShort = "too_short",
        /// More items than the rule's limit (phones).
        TooMany = "too_many",
        /// Control characters (a NUL byte, a tab) where text belongs.
        ControlChars = "control_chars",
        /// A date after today.
        InFuture = "in_future",
        /// A date before the earliest the record accepts.
        TooEarly = "too_early",
        /// A birth date or age beyond the oldest accepted.
        TooOld = "too_old",
        /// Not a date.
        BadDate = "bad_date",
        /// A phone number with characters no phone number has.
        PhoneChars = "phone_chars",
        /// A phone number with too few or too many digits.
        PhoneLength = "phone_length",
        /// A number outside its allowed range.
        OutOfRange = "out_of_range",
        /// A diastolic pressure not below the systolic.
        AboveSystolic = "above_systolic",
        /// A sex a CSV file spells in a way nobody knows.
        UnknownSex = "unknown_sex",
        /// A name without a single letter.
        NoLetters = "no_letters",
        /// An identity document number with characters none has.
        IdChars = "id_chars",
        /// A password on the list of common passwords.
        Common = "common",
        /// A password containing the user name.
        ContainsUsername = "contains_username",
        /// A user name with characters a user name may not have.
        BadUsername = "bad_username",
        /// Two entries that must match do not (password and its repetition).
        Mismatch = "mismatch",
        /// Not a value of the field's kind (an address, a choice, a code).
        Invalid = "invalid",
        /// A name outside its length rule (a department, a workstation).
        BadName = "bad_name",
        /// A file that is not a readable CSV file.
        BadCsv = "bad_csv",
        /// A file path the system cannot use.
        BadPath = "bad_path",
        /// A file that exists already, where a new one is made.
        Exists = "exists",
        /// A database that already holds records, where an empty one is needed.
        NotEmpty = "not_empty",
        /// A change to a patient record that was merged into another.
        Merged = "merged",
        /// A merge of a record with itself.
        SameRecord = "same_record",
        /// An admin's change to their own account that would lock them out.
        OwnAccount = "own_account",
        /// A workstation enrolled with its server cannot move to another.
        Enrolled = "enrolled",
        /// A CSV line that cannot be read (not UTF-8, broken quoting).
        Unreadable = "unreadable",
        /// A CSV file lacks a column it needs (`field` is `column.<name>`).
        MissingColumn = "missing_column",
        /// A CSV file has a column nobody knows (`field` is `column.<n>`).
        UnknownColumn = "unknown_column",
    }
}

/// One field's validation failure, shown beside that field in a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[ts(export)]
pub struct FieldError {
    /// The field's name as in the input type, e.g. `birth_date` or `phones.1`.
    pub field: String,
    /// Why, for the UI to translate.
    pub code: FieldCode,
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
    pub fn new(field: impl Into<String>, code: FieldCode, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
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
