//! Signing in on an enrolled workstation: the server first, then here.
//!
//! The rule: the server decides whenever it answers (a password changed or
//! an account disabled on another workstation holds here at once); when it
//! cannot be reached in [`ONLINE_SIGN_IN_TIMEOUT`], the local verifier that
//! the last online sign-in left decides, so the desk keeps working offline.
//! An account made on this workstation only (before enrolment) is unknown
//! to the server, and its refusal does not apply to it.

use std::time::Duration;

use clinic_domain::sync::ApiErrorCode;
use clinic_domain::user::Session;
use clinic_store::Workstation;

use crate::client::ClientError;
use crate::{SyncEngine, SyncError};

/// How long sign-in waits for the server before signing in offline.
pub const ONLINE_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(8);

impl SyncEngine {
    /// Signs `username` in on `ws`, asking the server first (see the
    /// [module](self) documentation), and starts a sync round for them.
    pub async fn sign_in(
        &self,
        ws: &Workstation,
        username: &str,
        password: &str,
    ) -> Result<Session, SyncError> {
        self.sign_in_with_timeout(ws, username, password, ONLINE_SIGN_IN_TIMEOUT)
            .await
    }

    /// [`SyncEngine::sign_in`] with another wait for the server (tests).
    pub async fn sign_in_with_timeout(
        &self,
        ws: &Workstation,
        username: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Session, SyncError> {
        let online = tokio::time::timeout(timeout, self.sign_in_online(username, password)).await;
        match online {
            // Signed in on the server, or not enrolled: the local sign-in follows.
            Ok(Ok(_)) => {}
            Err(_) | Ok(Err(SyncError::Client(ClientError::Unreachable(_)))) => {
                tracing::info!("server unreachable; signing in offline");
            }
            Ok(Err(SyncError::Client(ClientError::Unauthorized {
                code: ApiErrorCode::InvalidCredentials,
            }))) if ws.is_local_account(username).await? => {}
            Ok(Err(e)) => return Err(e),
        }
        let session = ws.sign_in(username, password).await?;
        self.nudge();
        Ok(session)
    }
}
