//! Test fixtures: a fresh database file, actors, a steerable clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, Utc};
use clinic_domain::patient::{PatientFields, PatientInput, Sex};
use clinic_domain::{FieldError, Role};
use clinic_store::write::Committed;
use clinic_store::{Actor, Mutation, OpenOptions, Store, StoreError};
use tempfile::TempDir;
use uuid::Uuid;

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

    /// Commits one mutation as a user of `role`, which the test expects to
    /// succeed: most tests write through the store before what they check.
    pub async fn commit_as(&self, role: Role, mutation: Mutation) -> Committed {
        self.store.commit(&actor(role), mutation).await.unwrap()
    }

    /// Commits one mutation as a user of `role`, which the test expects the
    /// store to refuse; the refusal, for the test to look at.
    pub async fn refused_as(&self, role: Role, mutation: Mutation) -> StoreError {
        self.store.commit(&actor(role), mutation).await.unwrap_err()
    }

    /// Registers a patient with `id` as reception, the usual first step
    /// before a test looks at what a registration leaves behind.
    pub async fn register_as(&self, id: Uuid, fields: PatientFields) -> Committed {
        self.commit_as(Role::Reception, Mutation::PatientCreate { id, fields })
            .await
    }

    /// Registers a patient under a new id as reception; its id.
    pub async fn register(&self, fields: PatientFields) -> Uuid {
        let id = Uuid::now_v7();
        self.register_as(id, fields).await;
        id
    }

    /// Registers every patient under a new id as reception, in one batch
    /// (one transaction), as an import or a seeded database would.
    pub async fn register_all(&self, all: Vec<PatientFields>) {
        let batch = all
            .into_iter()
            .map(|fields| Mutation::PatientCreate {
                id: Uuid::now_v7(),
                fields,
            })
            .collect();
        self.store
            .commit_batch(&actor(Role::Reception), batch)
            .await
            .unwrap();
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

/// Runs one statement on a raw connection, which the test expects to
/// succeed (the tests that tamper with the file use it to drop triggers and
/// change rows behind the store's back).
pub async fn raw_exec(conn: &mut sqlx::SqliteConnection, sql: &str) {
    sqlx::query(sql).execute(conn).await.unwrap();
}

/// Runs one statement on a raw connection and returns what happened, for
/// the statements the database itself must refuse (its triggers).
pub async fn raw_try(
    conn: &mut sqlx::SqliteConnection,
    sql: &str,
) -> Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
    sqlx::query(sql).execute(conn).await
}

/// A path for a database file in a new temp dir, for the tests that open
/// (or fail to open) the file themselves; the dir is deleted on drop.
pub fn temp_path(name: &str) -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// Opens the file with the default options, which the test expects to
/// fail; the error.
pub async fn open_error(path: &std::path::Path) -> StoreError {
    Store::open(path, OpenOptions::default())
        .await
        .err()
        .unwrap()
}

/// The field and code of each problem, in order: what a test of validation
/// compares (the messages are for people and may be reworded).
pub fn field_codes(problems: &[FieldError]) -> Vec<(&str, &str)> {
    problems
        .iter()
        .map(|p| (p.field.as_str(), p.code.as_str()))
        .collect()
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
