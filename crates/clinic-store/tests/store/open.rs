//! Opening: damaged and busy files give clear errors and are never replaced.

use clinic_domain::ErrorCode;
use clinic_store::{OpenOptions, Store, StoreError};

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clinic.db");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path, OpenOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::DatabaseCorrupt, "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the user's file is untouched"
    );
}

#[tokio::test]
async fn a_damaged_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clinic.db");
    let store = Store::open(&path, OpenOptions::default()).await.unwrap();
    store.close().await;
    // Fold the WAL into the main file, so the damage below hits real content.
    let mut raw = crate::support::raw_connection(&path).await;
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::Connection::close(raw).await.unwrap();
    // Keep the header, wreck the schema page.
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(100).take(3000) {
        *b = 0xAB;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path, OpenOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::DatabaseCorrupt, "{err}");
}

#[tokio::test]
async fn a_second_app_instance_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clinic.db");
    let exclusive = OpenOptions {
        create: true,
        exclusive: true,
    };
    let _first = Store::open(&path, exclusive.clone()).await.unwrap();
    let err = Store::open(&path, exclusive).await.err().unwrap();
    assert!(matches!(err, StoreError::DatabaseLocked { .. }), "{err}");
    // The CLI (not exclusive) may still read, e.g. for a backup.
    Store::open(&path, OpenOptions::default()).await.unwrap();
}

#[tokio::test]
async fn a_database_locked_by_another_program_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clinic.db");
    Store::open(&path, OpenOptions::default())
        .await
        .unwrap()
        .close()
        .await;
    // Another program holds an exclusive lock (journal mode must allow it).
    let mut other = crate::support::raw_connection(&path).await;
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let err = Store::open(&path, OpenOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::DatabaseLocked, "{err}");
}

#[tokio::test]
async fn a_missing_file_is_not_created_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let err = Store::open(
        &path,
        OpenOptions {
            create: false,
            exclusive: false,
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(!path.exists());
}
