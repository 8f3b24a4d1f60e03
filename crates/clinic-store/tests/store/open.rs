//! Opening: damaged and busy files give clear errors and are never replaced.

use clinic_domain::ErrorCode;
use clinic_store::{OpenOptions, Store, StoreError};

use crate::support::{open_error, raw_exec, temp_path};

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let (_dir, path) = temp_path("clinic.db");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = open_error(&path).await;
    assert_eq!(err.code(), ErrorCode::DatabaseCorrupt, "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the user's file is untouched"
    );
}

#[tokio::test]
async fn a_damaged_database_is_refused() {
    let (_dir, path) = temp_path("clinic.db");
    let store = Store::open(&path, OpenOptions::default()).await.unwrap();
    store.close().await;
    // Fold the WAL into the main file, so the damage below hits real content.
    let mut raw = crate::support::raw_connection(&path).await;
    raw_exec(&mut raw, "PRAGMA journal_mode = DELETE").await;
    sqlx::Connection::close(raw).await.unwrap();
    // Keep the header, wreck the schema page.
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(100).take(3000) {
        *b = 0xAB;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = open_error(&path).await;
    assert_eq!(err.code(), ErrorCode::DatabaseCorrupt, "{err}");
}

#[tokio::test]
async fn a_second_app_instance_gets_a_clear_error() {
    let (_dir, path) = temp_path("clinic.db");
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
    let (_dir, path) = temp_path("clinic.db");
    Store::open(&path, OpenOptions::default())
        .await
        .unwrap()
        .close()
        .await;
    // Another program holds an exclusive lock (journal mode must allow it).
    let mut other = crate::support::raw_connection(&path).await;
    raw_exec(&mut other, "PRAGMA journal_mode = DELETE").await;
    raw_exec(&mut other, "BEGIN EXCLUSIVE").await;
    let err = open_error(&path).await;
    assert_eq!(err.code(), ErrorCode::DatabaseLocked, "{err}");
}

#[tokio::test]
async fn a_missing_file_is_not_created_unless_asked() {
    let (_dir, path) = temp_path("absent.db");
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

/// A database made by a release before the leaner search index (migrations
/// 1–3 only) keeps its patients findable after the upgrade, and edits then
/// re-index them through the new columns.
#[tokio::test]
async fn an_older_database_is_upgraded_with_its_search_index() {
    use clinic_domain::Role;
    use clinic_store::Mutation;

    use crate::support::{actor, fields, raw_connection};

    let (_dir, path) = temp_path("clinic.db");
    {
        let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite");
        let mut old = sqlx::migrate::Migrator::new(std::path::Path::new(migrations))
            .await
            .unwrap();
        let before: Vec<_> = old
            .migrations
            .iter()
            .filter(|m| m.version <= 3)
            .cloned()
            .collect();
        assert_eq!(before.len(), 3);
        old.migrations = before.into();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        old.run(&mut conn).await.unwrap();
        // Two patients as that release wrote them: one active with its
        // tokens, one merged into it (no tokens).
        for (id, mrn, status, merged_into) in [
            (
                "0190f0c0-0000-7000-8000-000000000001",
                "K7M-000001-4",
                "active",
                None,
            ),
            (
                "0190f0c0-0000-7000-8000-000000000002",
                "K7M-000002-2",
                "merged",
                Some("0190f0c0-0000-7000-8000-000000000001"),
            ),
        ] {
            sqlx::query(
                "INSERT INTO patients (id, mrn, mrn_compact, family_name, given_name, sex, birth_date, \
                 status, merged_into, name_key, created_at, created_by, updated_at, updated_by, workstation_id, \
                 national_id) \
                 VALUES (?, ?, replace(?, '-', ''), 'Иванов', 'Пётр', 'male', '1980-03-21', ?, ?, 'ivanov petr', \
                 '2026-01-01T00:00:00.000000Z', 'x', '2026-01-01T00:00:00.000000Z', 'x', '0190f0c0-0000-7000-8000-0000000000ff', \
                 'AB1100700123456')",
            )
            .bind(id)
            .bind(mrn)
            .bind(mrn)
            .bind(status)
            .bind(merged_into)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        // A department with a user in it: migration 0009 rebuilds the
        // departments table under the user's reference.
        sqlx::query(
            "INSERT INTO departments (id, name, created_at, created_by, updated_at, updated_by, workstation_id) \
             VALUES ('0190f0c0-0000-7000-8000-0000000000d1', 'Cardiology', '2026-01-01T00:00:00.000000Z', 'x', \
             '2026-01-01T00:00:00.000000Z', 'x', '0190f0c0-0000-7000-8000-0000000000ff')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at, \
             workstation_id, department_id) VALUES ('0190f0c0-0000-7000-8000-0000000000a1', 'dana', 'Dana', \
             'doctor', 'x', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', \
             '0190f0c0-0000-7000-8000-0000000000ff', '0190f0c0-0000-7000-8000-0000000000d1')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for token in ["n:иванов", "s:ivanov", "n:петр", "s:petr", "p:98765432197"] {
            sqlx::query("INSERT INTO search_token (token, patient_id) VALUES (?, ?)")
                .bind(token)
                .bind("0190f0c0-0000-7000-8000-000000000001")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        sqlx::Connection::close(conn).await.unwrap();
    }

    let store = Store::open(&path, OpenOptions::default()).await.unwrap();
    let departments = store
        .records::<clinic_domain::record::Department>()
        .await
        .unwrap();
    assert_eq!(departments.len(), 1);
    assert_eq!(departments[0].fields.name, "Cardiology");
    let mut raw = raw_connection(&path).await;
    let broken: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(&mut raw)
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let dept: Option<String> =
        sqlx::query_scalar("SELECT department_id FROM users WHERE username = 'dana'")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(
        dept.as_deref(),
        Some("0190f0c0-0000-7000-8000-0000000000d1")
    );
    let found = store.search("ivanov petr", 10).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].mrn, "K7M-000001-4");
    assert_eq!(store.search("79123456789", 10).await.unwrap().len(), 1);
    // Keys added by a later release (migration 0006) for records already
    // there: the national ID, whole or by its ending, and the MRN's sequence.
    for q in [
        "ab 1100700123456",
        "1-1007-00123-45-6",
        "3456",
        "000001",
        "K7M-0000",
    ] {
        let hits = store.search(q, 10).await.unwrap();
        assert_eq!(
            hits.iter().map(|p| p.mrn.as_str()).collect::<Vec<_>>(),
            ["K7M-000001-4"],
            "{q}"
        );
    }
    let mut raw = raw_connection(&path).await;
    let keys: Vec<(i64, String)> =
        sqlx::query_as("SELECT key, search_keys FROM patients ORDER BY key")
            .fetch_all(&mut raw)
            .await
            .unwrap();
    assert_eq!(keys[0].0, 1);
    assert!(keys[0].1.contains("n:иванов"), "{keys:?}");
    let stored: Vec<String> = serde_json::from_str(&keys[0].1).unwrap();
    assert!(
        stored.contains(&"i:6543210070011BA".to_owned()),
        "{stored:?}"
    );
    assert!(stored.contains(&"m:000001".to_owned()), "{stored:?}");
    assert!(
        stored.is_sorted(),
        "kept sorted, as the write path writes it: {stored:?}"
    );
    assert_eq!(keys[1].1, "[]", "a merged record has no tokens");

    // An edit re-indexes: the old name is no longer found, the new one is.
    let id = found[0].id;
    let reception = actor(Role::Reception);
    let fields = fields("Petrov", "Pyotr", "1980-03-21");
    let version = store.patient(id).await.unwrap().version;
    store
        .commit(
            &reception,
            Mutation::PatientUpdate {
                id,
                base_version: version,
                fields,
            },
        )
        .await
        .unwrap();
    assert!(store.search("ivanov", 10).await.unwrap().is_empty());
    assert_eq!(store.search("petrov", 10).await.unwrap()[0].id, id);
    let stale: i64 =
        sqlx::query_scalar("SELECT count(*) FROM search_token WHERE token = 'n:иванов'")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(stale, 0);
    sqlx::Connection::close(raw).await.unwrap();
}
