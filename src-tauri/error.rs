//! The error every command returns: `{code, message, fields}`.

use clinic_domain::error::ErrorBody;
use clinic_store::StoreError;
use serde::Serialize;

/// A command's error as the UI receives it.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct IpcError(pub ErrorBody);

impl From<StoreError> for IpcError {
    fn from(e: StoreError) -> Self {
        let body = e.to_body();
        // Internal errors are logged here, with SQLite's detail; store
        // messages carry no patient data by construction.
        if matches!(
            body.code,
            clinic_domain::ErrorCode::Internal | clinic_domain::ErrorCode::Io
        ) {
            tracing::error!(error = %e, "command failed");
        } else {
            tracing::debug!(code = %body.code, "command refused");
        }
        IpcError(body)
    }
}

impl From<clinic_sync::SyncError> for IpcError {
    fn from(e: clinic_sync::SyncError) -> Self {
        match e {
            // The store's own errors are logged as every command's are.
            clinic_sync::SyncError::Store(e) => e.into(),
            other => {
                tracing::info!(problem = %other.problem().code, "server call failed");
                IpcError(other.to_body())
            }
        }
    }
}

/// A command's result.
pub type CmdResult<T> = Result<T, IpcError>;
