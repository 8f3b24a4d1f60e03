//! Test fixtures: a fresh database file, actors, a steerable clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, Utc};
use clinic_domain::Role;
use clinic_domain::patient::{PatientFields, PatientInput, Sex};
use clinic_store::{Actor, OpenOptions, Store};
use tempfile::TempDir;

/// A store on a new file in its own temp dir (kept alive by the struct).
pub struct TestDb {
    /// Deleted on drop; held so the file outlives the test's store.
    _dir: TempDir,
    pub store: Store,
    pub offset_secs: Arc<AtomicI64>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let offset_secs = Arc::new(AtomicI64::new(0));
        let off = offset_secs.clone();
        let store = Store::open(dir.path().join("clinic.db"), OpenOptions::default())
            .await
            .unwrap()
            .with_clock(Arc::new(move || {
                Utc::now() + Duration::seconds(off.load(Ordering::SeqCst))
            }));
        TestDb {
            _dir: dir,
            store,
            offset_secs,
        }
    }

    /// The database file.
    pub fn path(&self) -> std::path::PathBuf {
        self._dir.path().join("clinic.db")
    }

    /// Moves this store's clock forward.
    pub fn advance(&self, by: Duration) {
        self.offset_secs
            .fetch_add(by.num_seconds(), Ordering::SeqCst);
    }

    /// A raw count of rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = raw_connection(self.store.path()).await;
        // Table names come from the tests themselves, never from input.
        let n = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        n
    }
}

/// A connection to the file that bypasses the store, as another program
/// (or someone tampering with the file) would open it.
pub async fn raw_connection(path: &std::path::Path) -> sqlx::SqliteConnection {
    <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

pub fn actor(role: Role) -> Actor {
    Actor {
        user_id: None,
        name: format!("test {}", role.as_str()),
        role,
    }
}

pub fn input(family: &str, given: &str, birth: &str) -> PatientInput {
    PatientInput {
        family_name: family.into(),
        given_name: given.into(),
        sex: Some(Sex::Unknown),
        birth_date: Some(birth.into()),
        ..Default::default()
    }
}

pub fn fields(family: &str, given: &str, birth: &str) -> PatientFields {
    input(family, given, birth)
        .validate(clinic_store::patients::today())
        .unwrap()
}
