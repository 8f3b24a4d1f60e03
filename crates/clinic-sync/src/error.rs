//! Why a sync step failed, and how each failure reaches the UI.
//!
//! Two readers, two forms: the status bar shows a [`SyncProblem`] (sync
//! stalled, and why), and a command the user is waiting on (sign-in,
//! enrolment) gets an [`ErrorBody`], the same `{code, message}` every
//! command returns. Both mappings live here, with their tests, so the shell
//! matches no server code itself.

use clinic_domain::error::{ErrorBody, ErrorCode};
use clinic_domain::sync::{ApiErrorCode, SyncProblem, SyncProblemCode};
use clinic_store::StoreError;
use uuid::Uuid;

use crate::client::ClientError;

/// Why a sync step failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be reached or refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No server is configured, or the workstation is not enrolled.
    #[error("this workstation is not enrolled with a server")]
    NotEnrolled,
    /// Changes by this user wait until they sign in online here.
    #[error("changes wait for a user to sign in while online")]
    SignInNeeded(Option<Uuid>),
}

impl SyncError {
    /// What the status bar says while sync is stalled by this error.
    pub fn problem(&self) -> SyncProblem {
        let code = match self {
            SyncError::Client(ClientError::Unreachable(_)) => SyncProblemCode::ServerUnreachable,
            SyncError::Client(ClientError::Unauthorized { .. }) => SyncProblemCode::SignInNeeded,
            SyncError::Client(ClientError::Refused { .. }) => SyncProblemCode::ServerRefused,
            SyncError::Store(_) => SyncProblemCode::LocalError,
            SyncError::NotEnrolled => SyncProblemCode::NotEnrolled,
            SyncError::SignInNeeded(_) => SyncProblemCode::SignInNeeded,
        };
        SyncProblem {
            code,
            message: self.to_string(),
        }
    }

    /// The `{code, message}` a command returns for this error: the server's
    /// refusals that mean the same as a local one (wrong password, locked
    /// or disabled account, forbidden) get the local code, so the UI says
    /// them the same way online and offline.
    pub fn to_body(&self) -> ErrorBody {
        let body = |code: ErrorCode, message: String| ErrorBody {
            code,
            message,
            fields: Vec::new(),
        };
        match self {
            SyncError::Store(e) => e.to_body(),
            SyncError::Client(ClientError::Unreachable(m)) => {
                body(ErrorCode::ServerUnreachable, m.clone())
            }
            SyncError::Client(ClientError::Unauthorized {
                code: ApiErrorCode::InvalidCredentials,
            }) => StoreError::InvalidCredentials.to_body(),
            SyncError::Client(ClientError::Refused { code, message, .. }) => match code {
                ApiErrorCode::AccountLocked => body(ErrorCode::AccountLocked, message.clone()),
                ApiErrorCode::AccountDisabled => StoreError::AccountDisabled.to_body(),
                ApiErrorCode::Forbidden => StoreError::Forbidden.to_body(),
                _ => body(ErrorCode::ServerRefused, format!("{code}: {message}")),
            },
            other => body(ErrorCode::ServerRefused, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: ApiErrorCode) -> SyncError {
        SyncError::Client(ClientError::Refused {
            status: 403,
            code,
            message: "locked until 10:00".into(),
        })
    }

    #[test]
    fn server_refusals_read_as_the_local_ones() {
        let wrong = SyncError::Client(ClientError::Unauthorized {
            code: ApiErrorCode::InvalidCredentials,
        });
        assert_eq!(wrong.to_body().code, ErrorCode::InvalidCredentials);
        let locked = refused(ApiErrorCode::AccountLocked).to_body();
        assert_eq!(locked.code, ErrorCode::AccountLocked);
        assert_eq!(locked.message, "locked until 10:00");
        assert_eq!(
            refused(ApiErrorCode::AccountDisabled).to_body().code,
            ErrorCode::AccountDisabled
        );
        assert_eq!(
            refused(ApiErrorCode::Forbidden).to_body().code,
            ErrorCode::Forbidden
        );
    }

    #[test]
    fn other_failures_say_server_refused_or_unreachable() {
        let body = refused(ApiErrorCode::Conflict).to_body();
        assert_eq!(body.code, ErrorCode::ServerRefused);
        assert!(body.message.starts_with("conflict: "), "{}", body.message);
        let gone = SyncError::Client(ClientError::Unreachable("timeout".into()));
        assert_eq!(gone.to_body().code, ErrorCode::ServerUnreachable);
        // An expired token during enrolment is a refusal, not a wrong password.
        let expired = SyncError::Client(ClientError::Unauthorized {
            code: ApiErrorCode::Unauthenticated,
        });
        assert_eq!(expired.to_body().code, ErrorCode::ServerRefused);
        assert_eq!(
            SyncError::NotEnrolled.to_body().code,
            ErrorCode::ServerRefused
        );
    }

    #[test]
    fn every_failure_has_a_status_bar_problem() {
        assert_eq!(
            SyncError::NotEnrolled.problem().code,
            SyncProblemCode::NotEnrolled
        );
        assert_eq!(
            refused(ApiErrorCode::Busy).problem().code,
            SyncProblemCode::ServerRefused
        );
        assert_eq!(
            SyncError::SignInNeeded(None).problem().code,
            SyncProblemCode::SignInNeeded
        );
    }
}
