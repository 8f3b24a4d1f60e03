//! The app's managed state: the open workstation and its sync engine, or
//! why the database could not open.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clinic_domain::error::ErrorBody;
use clinic_domain::sync::SyncStatus;
use clinic_store::{OpenOptions, Store, Workstation};
use clinic_sync::SyncEngine;
use tauri::{Emitter, Manager};
use tokio::sync::OnceCell;

use crate::error::IpcError;
use crate::startup;

/// Managed by Tauri; the pool inside is shared, so no extra locking.
///
/// The database is opened in the background while the window and its web
/// process start ([`AppState::open_in_background`]); a command that comes
/// first waits for that opening, never starts a second. An opening that
/// failed (the file held by another program, say) is tried again by the
/// next command, so the error screen's "Try again" works once the cause is
/// gone.
pub struct AppState {
    path: PathBuf,
    opened: OnceCell<Opened>,
    /// The running app, to forward the sync status from whichever opening
    /// succeeds.
    app: OnceLock<tauri::AppHandle>,
}

/// The open database's workstation and the one sync engine over it.
pub struct Opened {
    /// Session and permission checks; every command goes through it.
    pub ws: Workstation,
    /// Pushes the outbox and pulls the clinic's feed in the background.
    pub sync: SyncEngine,
}

/// The event that carries every new [`SyncStatus`] to the UI.
pub const SYNC_STATUS_EVENT: &str = "sync-status";

impl AppState {
    /// The state for the database at `path`, not opened yet.
    pub fn new(path: PathBuf) -> AppState {
        AppState {
            path,
            opened: OnceCell::new(),
            app: OnceLock::new(),
        }
    }

    /// Starts opening the database on the async runtime. Once it is open,
    /// every change of the sync status is sent to the UI as
    /// [`SYNC_STATUS_EVENT`].
    pub fn open_in_background(app: &tauri::AppHandle) {
        // Before any opening can finish, so that whichever one succeeds
        // (this one or a command's retry) forwards the status.
        let _ = app.state::<AppState>().app.set(app.clone());
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let state = app.state::<AppState>();
            if state.opened().await.is_ok() {
                startup::mark("db_open");
            }
        });
    }

    /// The database and its engine, or why it could not open; waits for an
    /// opening under way, and tries again after one that failed.
    pub async fn opened(&self) -> Result<&Opened, IpcError> {
        self.opened
            .get_or_try_init(|| async {
                let opened = open(&self.path).await.map_err(IpcError)?;
                if let Some(app) = self.app.get() {
                    forward_sync_status(app.clone(), opened.sync.status());
                }
                Ok(opened)
            })
            .await
    }

    /// The workstation (see [`AppState::opened`]).
    pub async fn ws(&self) -> Result<&Workstation, IpcError> {
        Ok(&self.opened().await?.ws)
    }
}

/// Sends every sync status to the UI; a window that is not there yet asks
/// with `sync_status`.
fn forward_sync_status(
    app: tauri::AppHandle,
    mut status: tokio::sync::watch::Receiver<SyncStatus>,
) {
    tauri::async_runtime::spawn(async move {
        loop {
            let now: SyncStatus = status.borrow_and_update().clone();
            let _ = app.emit(SYNC_STATUS_EVENT, now);
            if status.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Opens the database at `path`. A failure (damaged file, another instance
/// running) is kept and shown by the UI, never papered over with a new empty
/// database.
async fn open(path: &Path) -> Result<Opened, ErrorBody> {
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
    let ws = match opened {
        Ok(ws) => ws,
        Err(e) => {
            tracing::error!(error = %e, "the database could not be opened");
            return Err(e.to_body());
        }
    };
    // The keychain probe may wait on D-Bus; keep it off the async threads.
    let secrets = tokio::task::spawn_blocking(clinic_sync::default_store)
        .await
        .unwrap_or_else(|_| Box::new(clinic_sync::SessionOnly::default()));
    let sync = SyncEngine::start(ws.store().clone(), secrets);
    Ok(Opened { ws, sync })
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
