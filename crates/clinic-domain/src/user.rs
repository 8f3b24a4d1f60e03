//! Users, sign-in sessions and the password policy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::codes::wire_code;
use crate::error::{FieldCode, FieldError};
use crate::role::{Permission, Role};

/// The longest display name (and workstation name), in characters.
pub const DISPLAY_NAME_MAX: usize = 100;
/// A display name as the API document states it: printable characters
/// (no control characters), not only white space.
pub const DISPLAY_NAME_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Whether `name` is a valid display name: [`DISPLAY_NAME_PATTERN`] and at
/// most [`DISPLAY_NAME_MAX`] characters once trimmed.
pub fn is_display_name(name: &str) -> bool {
    let name = name.trim();
    !name.is_empty()
        && name.chars().count() <= DISPLAY_NAME_MAX
        && !name.chars().any(char::is_control)
}

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest password accepted (Argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Failed sign-ins in a row that lock an account.
pub const MAX_FAILED_SIGN_INS: i64 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_MINUTES: i64 = 15;
/// The lockout rule, shared by the workstation and the server: after a
/// failed sign-in with `failed_before` failures in a row, the new count and,
/// when that makes [`MAX_FAILED_SIGN_INS`], the end of a
/// [`LOCKOUT_MINUTES`] lock (the count then starts again).
pub fn after_failed_sign_in(
    failed_before: i64,
    now: DateTime<Utc>,
) -> (i64, Option<DateTime<Utc>>) {
    let failed = failed_before + 1;
    if failed >= MAX_FAILED_SIGN_INS {
        (0, Some(now + chrono::Duration::minutes(LOCKOUT_MINUTES)))
    } else {
        (failed, None)
    }
}

/// Idle minutes before the workstation locks, unless an admin sets another.
pub const DEFAULT_IDLE_LOCK_MINUTES: u32 = 10;

wire_code! {
    /// A user interface language.
    #[derive(Default)]
    pub enum Language {
        /// English.
        #[default]
        En = "en",
        /// Russian.
        Ru = "ru",
        /// Thai.
        Th = "th",
    }
}

/// A user as the admin screen and the status bar show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// Sign-in name.
    pub username: String,
    /// Name shown in the status bar and in the audit log.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Preferred language.
    pub language: Language,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// Locked after too many failed sign-ins, until this time.
    pub locked_until: Option<DateTime<Utc>>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// The admin's form for a new user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct NewUser {
    /// Sign-in name: 3 to 32 letters, digits, `.`, `_` or `-`.
    pub username: String,
    /// Name shown to others.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Initial password.
    pub password: String,
    /// Preferred language.
    pub language: Language,
}

impl NewUser {
    /// Checks the form; the password against [`check_password`].
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = self.username.trim();
        let name_ok = (3..=32).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            errors.push(FieldError::new(
                "username",
                FieldCode::BadUsername,
                "3 to 32 letters, digits, '.', '_' or '-'",
            ));
        }
        if !is_display_name(&self.display_name) {
            errors.push(FieldError::new(
                "display_name",
                FieldCode::Required,
                "is required (at most 100 characters)",
            ));
        }
        if let Err(e) = check_password(&self.password, name) {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// What the UI knows about the signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Session {
    /// The signed-in user.
    pub user: User,
    /// What the user's role allows; the UI uses it only to hide what would be refused.
    pub permissions: Vec<Permission>,
}

/// Common passwords of ten or more characters (shorter ones fail on length).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Checks `password` against the policy: at least ten characters, not a
/// common password, not the user name, not one repeated character.
pub fn check_password(password: &str, username: &str) -> Result<(), FieldError> {
    let weak = |code: FieldCode, message: &str| Err(FieldError::new("password", code, message));
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            FieldCode::TooShort,
            "must be at least 10 characters",
        )
        .with_limit(MIN_PASSWORD_CHARS));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            FieldCode::TooLong,
            "must be at most 256 characters",
        )
        .with_limit(MAX_PASSWORD_CHARS));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|p| p == lower) {
        return weak(FieldCode::Common, "is a commonly used password");
    }
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return weak(FieldCode::Common, "uses too few different characters");
    }
    if !username.trim().is_empty() && lower.contains(&username.trim().to_lowercase()) {
        return weak(
            FieldCode::ContainsUsername,
            "must not contain the user name",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_in_a_row_locks_for_fifteen_minutes() {
        let now = Utc::now();
        assert_eq!(after_failed_sign_in(0, now), (1, None));
        assert_eq!(after_failed_sign_in(3, now), (4, None));
        assert_eq!(
            after_failed_sign_in(4, now),
            (0, Some(now + chrono::Duration::minutes(15)))
        );
    }

    #[test]
    fn password_policy() {
        assert!(check_password("short1!", "anna").is_err());
        assert_eq!(
            check_password("password123", "anna").unwrap_err().code,
            FieldCode::Common
        );
        assert_eq!(
            check_password("qwertyuiop", "anna").unwrap_err().code,
            FieldCode::Common
        );
        assert_eq!(
            check_password("aaaaaaaaaaaa", "anna").unwrap_err().code,
            FieldCode::Common
        );
        assert_eq!(
            check_password("anna-2026-spring", "Anna").unwrap_err().code,
            FieldCode::ContainsUsername
        );
        assert!(check_password("Teal-Lantern-48", "anna").is_ok());
    }

    #[test]
    fn usernames_are_checked() {
        let user = NewUser {
            username: "a b".into(),
            display_name: "A".into(),
            role: Role::Nurse,
            password: "Teal-Lantern-48".into(),
            language: Language::Ru,
        };
        let errs = user.validate().unwrap_err();
        assert_eq!(errs[0].field, "username");
    }
}
