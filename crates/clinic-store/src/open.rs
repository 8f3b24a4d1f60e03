//! Opening the database file safely.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use crate::error::{is_busy, is_corrupt};
use crate::{Actor, Mutation};
use crate::{OpenOptions, Result, Store, StoreError};

/// The 16 bytes every SQLite 3 database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

pub(crate) async fn open(path: &Path, options: OpenOptions) -> Result<Store> {
    let display = path.display().to_string();
    let corrupt = |detail: String| StoreError::DatabaseCorrupt {
        path: display.clone(),
        detail,
    };
    let exists = path.exists();
    if exists {
        check_header(path).map_err(corrupt)?;
    } else if !options.create {
        return Err(StoreError::NotFound("database file"));
    } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }

    let app_lock = if options.exclusive {
        Some(Arc::new(take_app_lock(path)?))
    } else {
        None
    };

    let connect = SqliteConnectOptions::from_str("sqlite://")
        .map_err(StoreError::Sqlx)?
        .filename(path)
        .create_if_missing(!exists)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a record is on disk when the UI says "saved", even if the
        // machine loses power right after.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(1)
        .connect_with(connect)
        .await
        .map_err(|e| classify(e, path))?;

    // Reading the schema catches files SQLite cannot read at all.
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .fetch_one(&pool)
        .await
        .map_err(|e| classify(e, path))?;

    match sqlx::migrate!("../../migrations/sqlite").run(&pool).await {
        Ok(()) => {}
        Err(sqlx::migrate::MigrateError::VersionMissing(_)) => {
            return Err(StoreError::DatabaseTooNew);
        }
        Err(sqlx::migrate::MigrateError::Execute(e)) => return Err(classify(e, path)),
        Err(e) => return Err(e.into()),
    }

    let existing: Option<String> = sqlx::query_scalar("SELECT id FROM workstation")
        .fetch_optional(&pool)
        .await
        .map_err(|e| classify(e, path))?;
    let workstation_id = match &existing {
        Some(id) => Uuid::parse_str(id).map_err(|e| StoreError::Internal(e.to_string()))?,
        None => Uuid::now_v7(),
    };

    let store = Store {
        pool,
        path: path.to_owned(),
        workstation_id,
        clock: Arc::new(chrono::Utc::now),
        write_lock: Arc::default(),
        _app_lock: app_lock,
        outbox_signal: Arc::new(tokio::sync::watch::channel(0).0),
    };
    if existing.is_none() {
        let prefix = clinic_domain::mrn::MrnPrefix::from_random(rand::random());
        store
            .commit(
                &Actor::system("first start"),
                Mutation::WorkstationInit {
                    id: workstation_id,
                    mrn_prefix: prefix.as_str().to_owned(),
                },
            )
            .await?;
    }
    Ok(store)
}

/// Refuses a non-empty file that does not start like a SQLite database.
fn check_header(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]).map_err(|e| e.to_string())? {
            0 => break,
            n => read += n,
        }
    }
    match read {
        0 => Ok(()), // an empty file is an empty database
        16 if &head == SQLITE_MAGIC => Ok(()),
        _ => Err("the file does not start with a SQLite header".to_owned()),
    }
}

/// Takes an exclusive advisory lock on `<db>.lock`, held while the app runs.
fn take_app_lock(path: &Path) -> Result<File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::DatabaseLocked {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Maps SQLite's "busy" and "not a database" answers to clear errors.
fn classify(e: sqlx::Error, path: &Path) -> StoreError {
    if is_busy(&e) {
        StoreError::DatabaseLocked {
            path: path.display().to_string(),
        }
    } else if is_corrupt(&e) {
        StoreError::DatabaseCorrupt {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    } else {
        StoreError::Sqlx(e)
    }
}
