//! The workstation's local store, on SQLite through sqlx.
//!
//! - [`Store::open`] refuses damaged or foreign files instead of creating a
//!   new database over them, and reports a file held by another program.
//! - Every change goes through one write path ([`write`]): the row, a
//!   hash-chained audit entry and, for synced records, an outbox entry, in
//!   one transaction.
//! - [`Workstation`] holds the signed-in session and checks the role's
//!   permissions on every call; the Tauri commands and the CLI call it.
#![deny(missing_docs)]

pub mod audit;
pub mod backup;
pub mod demo;
mod error;
pub mod import;
pub mod mutation;
mod open;
pub mod patients;
pub mod records;
mod sql;
pub mod sync;
pub mod users;
mod workstation;
mod workstation_records;
pub mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use uuid::Uuid;

pub use error::{Result, StoreError};
pub use mutation::Mutation;
pub use patients::search;
pub use workstation::Workstation;
pub use write::{Actor, Change};

/// How to open a database file.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Create the file when it does not exist. An existing file is never
    /// replaced, whatever this says.
    pub create: bool,
    /// Take the per-file application lock, so that a second app instance on
    /// the same file gets a clear error. The CLI leaves it off so that
    /// backups run while the app is open.
    pub exclusive: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            create: true,
            exclusive: false,
        }
    }
}

/// The source of "now"; tests replace it to step over lockout windows.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// An open workstation database.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    workstation_id: Uuid,
    clock: Clock,
    /// Serialises this process's writers; SQLite allows one at a time anyway,
    /// and queuing here avoids busy-waiting inside SQLite.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Held for the life of the store when opened `exclusive`.
    _app_lock: Option<Arc<std::fs::File>>,
    /// Counts commits that queued an outbox entry; see [`Store::outbox_changes`].
    outbox_signal: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Store {
    /// Opens (and, with `create`, creates) the database at `path`, runs its
    /// migrations and makes the workstation's identity on first start.
    pub async fn open(path: impl AsRef<Path>, options: OpenOptions) -> Result<Store> {
        open::open(path.as_ref(), options).await
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool, for read queries in this crate's modules.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Changes after every commit that queued an outbox entry: the sync
    /// engine listens here, so a write reaches the server without each
    /// caller remembering to wake it.
    pub fn outbox_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox_signal.subscribe()
    }

    /// This workstation's id.
    pub fn workstation_id(&self) -> Uuid {
        self.workstation_id
    }

    /// The current time by this store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Replaces the clock (for tests of time-dependent rules).
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// Closes the pool, checkpointing the WAL into the main file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
