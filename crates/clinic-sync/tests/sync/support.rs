//! A clinic: a real server on a fresh PostgreSQL database, staff accounts,
//! and workstations with their own SQLite files and sync engines.

#![allow(dead_code)] // each test binary that includes this uses a part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use clinic_domain::Role;
use clinic_domain::patient::{PatientFields, PatientInput, Sex};
use clinic_server::testing::{PASSWORD, TestDb, TestServer};
use clinic_store::{Actor, Mutation, OpenOptions, Store};
use clinic_sync::{SecretStore, SyncEngine};
use sqlx::Connection;
use uuid::Uuid;

use crate::proxy::Proxy;

/// The server side.
pub struct Clinic {
    pub db: TestDb,
    pub server: TestServer,
    /// Where workstations send their requests: the server, or a proxy.
    pub url: String,
    /// The proxy between the workstations and the server, if any.
    pub proxy: Option<Proxy>,
    dir: tempfile::TempDir,
}

impl Clinic {
    /// A server with an admin (alice), reception (rita), a doctor (dana)
    /// and a nurse (nina).
    pub async fn new() -> Clinic {
        let db = TestDb::new().await;
        for (name, role) in [
            ("alice", Role::Admin),
            ("rita", Role::Reception),
            ("dana", Role::Doctor),
            ("nina", Role::Nurse),
        ] {
            db.user(db.clinic_id, name, role).await;
        }
        let server = TestServer::start(&db).await;
        Clinic {
            url: server.base.clone(),
            db,
            server,
            proxy: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// [`Clinic::new`] with workstations talking to the server through a
    /// fault-injecting proxy whose random faults come from `seed`.
    pub async fn behind_proxy(seed: u64) -> Clinic {
        let mut c = Clinic::new().await;
        let upstream = c.server.base.trim_start_matches("http://").parse().unwrap();
        let proxy = Proxy::start(upstream, seed).await;
        c.url = proxy.url();
        c.proxy = Some(proxy);
        c
    }

    /// The proxy; panics without one.
    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("the clinic has a proxy")
    }

    /// A workstation enrolled by alice, syncing when the test says so.
    pub async fn workstation(&self) -> Ws {
        let ws = Ws::open_unenrolled(self).await;
        ws.enroll(self).await;
        ws
    }

    /// A new clinic ([`Clinic::new`]) with `N` workstations
    /// ([`Clinic::workstations`]): the cast of most tests of desks converging.
    pub async fn with_workstations<const N: usize>() -> (Clinic, [Ws; N]) {
        let c = Clinic::new().await;
        let wss = c.workstations().await;
        (c, wss)
    }

    /// `N` workstations enrolled one after the other, as
    /// [`Clinic::workstation`] makes each.
    pub async fn workstations<const N: usize>(&self) -> [Ws; N] {
        let mut wss = Vec::with_capacity(N);
        for _ in 0..N {
            wss.push(self.workstation().await);
        }
        match wss.try_into() {
            Ok(wss) => wss,
            Err(_) => unreachable!("exactly N workstations were made"),
        }
    }

    /// A path for a new workstation file.
    pub fn new_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.db", Uuid::now_v7()))
    }

    /// How many patients the server has.
    pub async fn server_patients(&self) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM patients")
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        n
    }
}

/// The OS keychain of one test machine: refresh tokens survive a restart
/// of the workstation, as they do in the real keychain.
#[derive(Clone, Default)]
pub struct Keychain(Arc<Mutex<HashMap<String, String>>>);

impl SecretStore for Keychain {
    fn get(&self, key: &str) -> Option<String> {
        self.0.lock().unwrap().get(key).cloned()
    }

    fn set(&self, key: &str, value: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
        true
    }

    fn delete(&self, key: &str) {
        self.0.lock().unwrap().remove(key);
    }

    fn persistent(&self) -> bool {
        true
    }
}

/// A workstation: its store file, its engine and its keychain.
pub struct Ws {
    pub store: Store,
    pub engine: SyncEngine,
    pub keychain: Keychain,
    path: PathBuf,
}

impl Ws {
    /// Opens (or creates) the workstation file at `path`.
    pub async fn open(path: &Path, keychain: Keychain) -> Ws {
        Ws::open_with(path, keychain, false).await
    }

    /// A workstation whose engine runs in the background (live channel and
    /// all), instead of syncing only when the test says so.
    pub async fn running(c: &Clinic) -> Ws {
        let ws = Ws::open_with(&c.new_path(), Keychain::default(), true).await;
        ws.enroll(c).await;
        ws
    }

    async fn open_with(path: &Path, keychain: Keychain, background: bool) -> Ws {
        // The defaults: create the file, and no app lock (tests reopen it).
        let store = Store::open(path, OpenOptions::default()).await.unwrap();
        let secrets = Box::new(keychain.clone());
        let engine = if background {
            SyncEngine::start(store.clone(), secrets)
        } else {
            SyncEngine::manual(store.clone(), secrets)
        };
        Ws {
            store,
            engine,
            keychain,
            path: path.to_owned(),
        }
    }

    /// A new workstation, not yet enrolled.
    pub async fn open_unenrolled(c: &Clinic) -> Ws {
        Ws::open(&c.new_path(), Keychain::default()).await
    }

    /// alice enrols it.
    pub async fn enroll(&self, c: &Clinic) {
        self.enroll_at(&c.url, "central", "alice").await;
    }

    /// `admin` of clinic `clinic_code` enrols it with the server at `url`.
    pub async fn enroll_at(&self, url: &str, clinic_code: &str, admin: &str) {
        self.engine
            .enroll(&Actor::system("test"), url, clinic_code, admin, PASSWORD)
            .await
            .unwrap();
    }

    /// The file it lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes this workstation number with `prefix`, as if it had drawn the
    /// same random prefix as another (1 in 32,768).
    pub async fn force_mrn_prefix(&self, prefix: &str) {
        let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.path.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE workstation SET mrn_prefix = ?")
            .bind(prefix)
            .execute(&mut raw)
            .await
            .unwrap();
        sqlx::Connection::close(raw).await.unwrap();
    }

    /// The process dies and starts again on the same file (and keychain).
    pub async fn restart(self) -> Ws {
        let (path, keychain) = (self.path.clone(), self.keychain.clone());
        drop(self.engine);
        self.store.close().await;
        Ws::open(&path, keychain).await
    }

    /// A user signs in while online; returns them as a local actor.
    pub async fn sign_in(&self, username: &str) -> Actor {
        let user = self
            .engine
            .sign_in_online(username, PASSWORD)
            .await
            .unwrap()
            .expect("the workstation is enrolled");
        Actor {
            user_id: Some(user.id),
            name: user.display_name,
            role: user.role,
        }
    }

    /// Registers a patient locally.
    pub async fn register(&self, actor: &Actor, given: &str, family: &str) -> Uuid {
        let fields = PatientInput {
            family_name: family.into(),
            given_name: given.into(),
            sex: Some(Sex::Female),
            birth_date: Some("1980-03-04".into()),
            address: Some("Lenina 1".into()),
            ..Default::default()
        }
        .validate(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap())
        .unwrap();
        let id = Uuid::now_v7();
        self.store
            .commit(actor, Mutation::PatientCreate { id, fields })
            .await
            .unwrap();
        id
    }

    /// Edits a patient locally.
    pub async fn edit(&self, actor: &Actor, id: Uuid, change: impl FnOnce(&mut PatientFields)) {
        let p = self.store.patient(id).await.unwrap();
        let mut fields = PatientFields {
            family_name: p.family_name,
            given_name: p.given_name,
            middle_name: p.middle_name,
            sex: p.sex,
            birth_date: p.birth_date,
            birth_date_estimated: p.birth_date_estimated,
            phones: p.phones,
            national_id: p.national_id,
            address: p.address,
            emergency_contact_name: p.emergency_contact_name,
            emergency_contact_phone: p.emergency_contact_phone,
            allergies: p.allergies,
            notes: p.notes,
        };
        change(&mut fields);
        self.store
            .commit(
                actor,
                Mutation::PatientUpdate {
                    id,
                    base_version: p.version,
                    fields,
                },
            )
            .await
            .unwrap();
    }

    /// A read-only connection to the file, bypassing the store.
    pub async fn raw(&self) -> sqlx::SqliteConnection {
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", self.path.display()))
            .await
            .unwrap()
    }

    /// The outbox statuses of patient changes, in order, read from the file.
    pub async fn outbox_statuses(&self) -> Vec<String> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT status FROM outbox WHERE entity = 'patient' ORDER BY seq")
                .fetch_all(&mut self.raw().await)
                .await
                .unwrap();
        rows.into_iter().map(|r| r.0).collect()
    }
}

/// Someone working on the command line: no clinic account.
pub fn cli_actor() -> Actor {
    Actor {
        user_id: None,
        name: "cli: test".into(),
        role: Role::Admin,
    }
}

/// Signs `username` in on each workstation, one after the other; the
/// actor on each, in the same order.
pub async fn sign_in_each<const N: usize>(wss: [&Ws; N], username: &str) -> [Actor; N] {
    let mut actors = Vec::with_capacity(N);
    for ws in wss {
        actors.push(ws.sign_in(username).await);
    }
    match actors.try_into() {
        Ok(actors) => actors,
        Err(_) => unreachable!("one actor per workstation"),
    }
}

/// One sync of each workstation, in this order, each expected to succeed:
/// the order in which changes reach the server is what a test is about,
/// which [`settle`] (sync until quiet) does not fix.
pub async fn sync_each(wss: &[&Ws]) {
    for ws in wss {
        ws.engine.sync_now().await.unwrap();
    }
}

/// Syncs every workstation, round after round, until nothing is pending
/// and a whole round moves no cursor. Panics after ten rounds.
pub async fn settle(wss: &[&Ws]) {
    let mut last = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..10 {
        let mut cursors = Vec::new();
        let mut pending = 0;
        errors.clear();
        for ws in wss {
            if let Err(e) = ws.engine.sync_now().await {
                errors.push(e.to_string());
            }
            cursors.push(ws.store.sync_settings().await.unwrap().unwrap().cursor);
            pending += ws.store.sync_counts().await.unwrap().pending;
        }
        if errors.is_empty() && pending == 0 && cursors == last {
            return;
        }
        last = cursors;
    }
    panic!("the workstations did not settle in ten rounds; last errors: {errors:?}");
}
