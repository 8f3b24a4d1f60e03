//! The app's managed state: the open workstation, or why it could not open.

use std::path::{Path, PathBuf};

use clinic_domain::error::ErrorBody;
use clinic_store::{OpenOptions, Store, Workstation};

use crate::error::IpcError;

/// Managed by Tauri; the pool inside is shared, so no extra locking.
pub struct AppState {
    workstation: Result<Workstation, ErrorBody>,
}

impl AppState {
    /// Opens the database at `path`. A failure (damaged file, another
    /// instance running) is kept and shown by the UI, never papered over
    /// with a new empty database.
    pub async fn open(path: &Path) -> AppState {
        tracing::info!(path = %path.display(), "opening the database");
        let opened = async {
            let store = Store::open(
                path,
                OpenOptions {
                    create: true,
                    exclusive: true,
                },
            )
            .await?;
            Workstation::new(store).await
        }
        .await;
        if let Err(e) = &opened {
            tracing::error!(error = %e, "the database could not be opened");
        }
        AppState {
            workstation: opened.map_err(|e| e.to_body()),
        }
    }

    /// The workstation, or the error that stopped it opening.
    pub fn ws(&self) -> Result<&Workstation, IpcError> {
        self.workstation.as_ref().map_err(|e| IpcError(e.clone()))
    }
}

/// The database path from `--db PATH` or `--db=PATH`, else `CLINIC_DB`.
pub fn db_path_from_args(args: impl Iterator<Item = String>) -> Option<PathBuf> {
    let mut args = args.skip(1);
    while let Some(a) = args.next() {
        if a == "--db" {
            return args.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--db=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("CLINIC_DB").map(PathBuf::from)
}
