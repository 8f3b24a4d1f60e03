//! The real server binary killed with SIGKILL while workstations sync
//! through it, then started again on the same database: the workstations
//! converge with it, and nothing is lost or applied twice.
//!
//! The workstations, the fault-injecting proxy and the convergence checks
//! are the sync engine's test support (`crates/clinic-sync/tests/sync/`),
//! shared by path so both test suites drive the same code.

#[path = "../../../clinic-sync/tests/sync/invariants.rs"]
mod invariants;
#[path = "../../../clinic-sync/tests/sync/proxy.rs"]
mod proxy;
mod server_process;
#[path = "../../../clinic-sync/tests/sync/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use clinic_domain::Role;
use clinic_server::testing::TestDb;
use clinic_sync::SyncError;
use clinic_sync::client::ClientError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use invariants::assert_converged;
use proxy::{Fault, Proxy};
use server_process::ServerProcess;
use support::{Keychain, Ws, settle};

/// A clinic on a fresh database: alice (admin) and rita (reception).
async fn clinic() -> TestDb {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    db.user(db.clinic_id, "rita", Role::Reception).await;
    db
}

/// A workstation file in `dir`, enrolled through `proxy`.
async fn workstation(dir: &tempfile::TempDir, proxy: &Proxy) -> Ws {
    let path = dir.path().join(format!("{}.db", uuid::Uuid::now_v7()));
    let ws = Ws::open(&path, Keychain::default()).await;
    ws.enroll_at(&proxy.url(), "central", "alice").await;
    ws
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&db.pool).await.unwrap();
    n
}

/// No mutation changed a record twice: one feed entry per (mutation, record).
async fn assert_each_change_once(db: &TestDb) {
    let twice = count(
        db,
        "SELECT count(*) FROM (SELECT 1 FROM change_log WHERE mutation_id IS NOT NULL \
         GROUP BY mutation_id, entity_id HAVING count(*) > 1) t",
    )
    .await;
    assert_eq!(twice, 0, "a mutation was applied twice");
}

#[tokio::test]
async fn a_server_killed_between_commit_and_reply_loses_and_duplicates_nothing() {
    let db = clinic().await;
    let server = ServerProcess::start(&db.url);
    let proxy = Proxy::start(server.addr, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(workstation(&dir, &proxy).await);
    let b = workstation(&dir, &proxy).await;
    let rita = a.sign_in("rita").await;
    b.sign_in("rita").await;
    let first = a.register(&rita, "Anna", "Ivanova").await;
    a.register(&rita, "Boris", "Petrov").await;
    a.register(&rita, "Vera", "Sidorova").await;
    a.edit(&rita, first, |f| f.notes = Some("before the crash".into()))
        .await;

    // The server commits the push and answers; the answer is held, and the
    // server is killed before the workstation has it.
    proxy.inject("/v1/sync/push", Fault::Hold);
    let pushing = {
        let a = a.clone();
        tokio::spawn(async move { a.engine.sync_now().await })
    };
    proxy.wait_held().await;
    server.kill();
    proxy.cut();
    assert!(matches!(
        pushing.await.unwrap(),
        Err(SyncError::Client(ClientError::Unreachable(_)))
    ));
    assert_eq!(count(&db, "SELECT count(*) FROM patients").await, 3);
    assert_eq!(count(&db, "SELECT count(*) FROM mutation_results").await, 4);
    assert_eq!(
        a.outbox_statuses().await,
        ["pending"; 4],
        "the workstation never heard back"
    );
    // Down is down: the workstation keeps its work and says so.
    assert!(a.engine.sync_now().await.is_err());

    let server = ServerProcess::start(&db.url);
    proxy.set_upstream(server.addr);
    settle(&[&*a, &b]).await;
    assert_eq!(a.outbox_statuses().await, ["applied"; 4]);
    assert_eq!(count(&db, "SELECT count(*) FROM patients").await, 3);
    assert_eq!(count(&db, "SELECT count(*) FROM mutation_results").await, 4);
    assert_each_change_once(&db).await;
    assert_converged(&db.pool, db.clinic_id, &[&*a, &b]).await;
    assert_eq!(
        b.store.patient(first).await.unwrap().notes.as_deref(),
        Some("before the crash")
    );
}

#[tokio::test]
async fn a_server_killed_at_random_moments_of_syncs_loses_and_duplicates_nothing() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let db = clinic().await;
    let mut server = ServerProcess::start(&db.url);
    let proxy = Proxy::start(server.addr, seed).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(workstation(&dir, &proxy).await);
    let b = Arc::new(workstation(&dir, &proxy).await);
    let rita_a = a.sign_in("rita").await;
    let rita_b = b.sign_in("rita").await;
    let shared = a.register(&rita_a, "Anna", "Ivanova").await;
    settle(&[&*a, &*b]).await;

    let mut registered = 1;
    let mut interrupted = 0;
    for round in 0..6 {
        a.register(&rita_a, "Somchai", &format!("Round-{round}"))
            .await;
        b.register(&rita_b, "Malee", &format!("Round-{round}"))
            .await;
        registered += 2;
        a.edit(&rita_a, shared, |f| f.notes = Some(format!("a{round}")))
            .await;
        b.edit(&rita_b, shared, |f| f.address = Some(format!("b{round}")))
            .await;
        // Both sync; the server dies somewhere in the middle: every other
        // round right after it committed a push, else at a random moment.
        let after_commit = round % 2 == 0;
        if after_commit {
            proxy.inject("/v1/sync/push", Fault::Hold);
        }
        let syncs = [a.clone(), b.clone()]
            .map(|ws| tokio::spawn(async move { ws.engine.sync_now().await }));
        if after_commit {
            proxy.wait_held().await;
        }
        tokio::time::sleep(Duration::from_micros(rng.gen_range(0..30_000))).await;
        server.kill();
        proxy.cut();
        for s in syncs {
            if s.await.unwrap().is_err() {
                interrupted += 1;
            }
        }
        server = ServerProcess::start(&db.url);
        proxy.set_upstream(server.addr);
    }
    eprintln!("{interrupted} of 12 syncs were cut short by the kill");
    assert!(interrupted >= 3, "a push was held at every other kill");
    settle(&[&*a, &*b]).await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM patients").await,
        registered,
        "seed {seed}"
    );
    assert_each_change_once(&db).await;
    assert_converged(&db.pool, db.clinic_id, &[&*a, &*b]).await;
    let p = a.store.patient(shared).await.unwrap();
    assert_eq!(p.notes.as_deref(), Some("a5"), "seed {seed}");
    assert_eq!(p.address.as_deref(), Some("b5"), "seed {seed}");
}

/// `clinic-server new-epoch`, the step after restoring a backup, gives the
/// clinic's feed a new epoch (which makes workstations push again and pull
/// from the start; see the sync suite's restore test).
#[tokio::test]
async fn the_new_epoch_command_starts_a_new_feed_epoch() {
    let db = TestDb::new().await;
    let epoch = || async {
        let (e,): (uuid::Uuid,) = sqlx::query_as("SELECT feed_epoch FROM clinics")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        e
    };
    let before = epoch().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clinic-server"))
        .arg("new-epoch")
        .env("CLINIC_SERVER_DATABASE_URL", &db.url)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "new feed epoch for 1 clinic(s)"
    );
    assert_ne!(epoch().await, before);
}
