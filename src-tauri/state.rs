//! The app's managed state: the open workstation, or why it could not open.

use std::path::{Path, PathBuf};

use clinic_domain::error::ErrorBody;
use clinic_store::{OpenOptions, Store, Workstation};
use tauri::Manager;
use tokio::sync::OnceCell;

use crate::error::IpcError;
use crate::startup;

/// Managed by Tauri; the pool inside is shared, so no extra locking.
///
/// The database is opened in the background while the window and its web
/// process start ([`AppState::open_in_background`]); a command that comes
/// first waits for that one opening, never starts a second.
pub struct AppState {
    path: PathBuf,
    workstation: OnceCell<Result<Workstation, ErrorBody>>,
}

impl AppState {
    /// The state for the database at `path`, not opened yet.
    pub fn new(path: PathBuf) -> AppState {
        AppState {
            path,
            workstation: OnceCell::new(),
        }
    }

    /// Starts opening the database on the async runtime.
    pub fn open_in_background(app: &tauri::AppHandle) {
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let _ = app.state::<AppState>().ws().await;
            startup::mark("db_open");
        });
    }

    /// The workstation, or the error that stopped it opening; waits for the
    /// opening when it has not finished yet.
    pub async fn ws(&self) -> Result<&Workstation, IpcError> {
        self.workstation
            .get_or_init(|| open(&self.path))
            .await
            .as_ref()
            .map_err(|e| IpcError(e.clone()))
    }
}

/// Opens the database at `path`. A failure (damaged file, another instance
/// running) is kept and shown by the UI, never papered over with a new empty
/// database.
async fn open(path: &Path) -> Result<Workstation, ErrorBody> {
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
    opened.map_err(|e| e.to_body())
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
