//! Consistent online backup and restore.
//!
//! `VACUUM INTO` copies a consistent snapshot while the app keeps working
//! (WAL readers do not block writers). Restore checks the backup first and
//! replaces the live file only after that, keeping the old file beside it.

use std::path::{Path, PathBuf};

use clinic_domain::FieldCode;

use crate::{OpenOptions, Result, Store, StoreError};

impl Store {
    /// Writes a consistent copy of the database to `dest`, which must not exist.
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(StoreError::field(
                "file",
                FieldCode::Exists,
                "the backup file already exists; choose a new name",
            ));
        }
        let dest = dest.to_str().ok_or_else(|| {
            StoreError::field("file", FieldCode::BadPath, "the path is not valid UTF-8")
        })?;
        sqlx::query("VACUUM INTO ?")
            .bind(dest)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Replaces the database at `db` with the backup `backup`, after checking
/// that the backup opens, passes SQLite's integrity check and has an intact
/// audit chain. The replaced file is kept as `<db>.before-restore-<time>`.
/// Returns that path. The app must not be running on `db`.
pub async fn restore(db: &Path, backup: &Path) -> Result<Option<PathBuf>> {
    {
        let check = Store::open(
            backup,
            OpenOptions {
                create: false,
                exclusive: false,
            },
        )
        .await?;
        let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(check.pool())
            .await?;
        if ok != "ok" {
            return Err(StoreError::DatabaseCorrupt {
                path: backup.display().to_string(),
                detail: ok,
            });
        }
        let chain = check.verify_audit().await?;
        if !chain.is_intact() {
            return Err(StoreError::DatabaseCorrupt {
                path: backup.display().to_string(),
                detail: "its audit chain is broken".into(),
            });
        }
        check.close().await;
    }
    // Take the live file's app lock, and hold it until the backup is in
    // place, so that no app starts on the file half-way.
    let mut lock = None;
    let live = if db.exists() {
        let store = Store::open(
            db,
            OpenOptions {
                create: false,
                exclusive: true,
            },
        )
        .await?;
        store.close().await;
        lock = Some(store);
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let mut kept = db.as_os_str().to_owned();
        kept.push(format!(".before-restore-{stamp}"));
        let kept = PathBuf::from(kept);
        std::fs::rename(db, &kept)?;
        // The WAL goes with the file it belongs to: whatever a program other
        // than the app still had in it stays part of the kept copy.
        for ext in ["-wal", "-shm"] {
            let (mut from, mut to) = (db.as_os_str().to_owned(), kept.as_os_str().to_owned());
            from.push(ext);
            to.push(ext);
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Some(kept)
    } else {
        None
    };
    let tmp = db.with_extension("restoring");
    std::fs::copy(backup, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, db)?;
    drop(lock);
    Ok(live)
}
