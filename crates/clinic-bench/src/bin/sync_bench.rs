//! `sync_bench`: the three sync figures, over a real server on a real
//! PostgreSQL and workstation stores on real SQLite files.
//!
//! ```text
//! bash scripts/with-pg.sh cargo run -p clinic-bench --release --bin sync_bench -- \
//!     [--workstations W] [--per-workstation M] [--propagations K]
//! ```
//!
//! 1. `sync_push_mutations_per_s`: W workstations (default 10) each register
//!    M patients (default 10,000) offline, then all push at once; mutations
//!    applied on the server per second of wall time, outcomes recorded.
//! 2. `sync_initial_pull_rows_per_s`: a new workstation enrols and pulls the
//!    W × M patients (default 100,000) into its empty store: rows per second,
//!    searchable when it ends.
//!    Then, on the same rows: `sync_feed_copy_rows_per_s`, a raw `COPY` of
//!    the clinic's `change_log` on the server's database;
//!    `sync_feed_fetch_rows_per_s`, every page of the feed over HTTP as the
//!    engine fetches it, decoded but not applied; and their ratio
//!    `sync_feed_copy_over_fetch` (median of three runs each, alternated).
//! 3. `sync_propagation_p95_ms`: two running workstations of another clinic;
//!    a patient saved on A (commit + nudge, as the app does) until it is
//!    readable on B through the live channel; K samples (default 100).
//!
//! 4. The same push and pull per record kind: `sync_push_<kind>_per_s` and
//!    `sync_initial_pull_<kind>_rows_per_s` for the kinds on the generic
//!    road (departments today), in a clinic of their own: 2 workstations
//!    push W × M / 10 records (default 10,000), a new one pulls them. A
//!    patient is leg 1 and 2.
//!
//! Needs `CLINIC_TEST_PG_URL` (scripts/with-pg.sh sets it).

use std::time::{Duration, Instant};

use clinic_domain::Role;
use clinic_server::testing::{PASSWORD, TestDb, TestServer};
use clinic_store::{Actor, Mutation, OpenOptions, Store};
use clinic_sync::{SessionOnly, SyncEngine};
use uuid::Uuid;

const USAGE: &str = "usage: sync_bench [--workstations W] [--per-workstation M] [--propagations K]";

struct Args {
    workstations: usize,
    per_workstation: usize,
    propagations: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        workstations: 10,
        per_workstation: 10_000,
        propagations: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{flag} needs a number\n{USAGE}"))
        };
        match flag.as_str() {
            "--workstations" => a.workstations = value()?,
            "--per-workstation" => a.per_workstation = value()?,
            "--propagations" => a.propagations = value()?,
            _ => return Err(USAGE.into()),
        }
    }
    Ok(a)
}

/// A workstation on its own file, enrolled in `clinic` by alice.
async fn workstation(
    dir: &std::path::Path,
    server: &TestServer,
    clinic: &str,
    running: bool,
) -> (Store, SyncEngine) {
    let path = dir.join(format!("{}.db", Uuid::now_v7()));
    let options = OpenOptions {
        create: true,
        exclusive: false,
    };
    let store = Store::open(&path, options).await.expect("open store");
    let secrets = Box::new(SessionOnly::default());
    let engine = if running {
        SyncEngine::start(store.clone(), secrets)
    } else {
        SyncEngine::manual(store.clone(), secrets)
    };
    engine
        .enroll(
            &Actor::system("bench"),
            &server.base,
            clinic,
            "alice",
            PASSWORD,
        )
        .await
        .expect("enrol");
    (store, engine)
}

async fn sign_in(engine: &SyncEngine, username: &str) -> Actor {
    let user = engine
        .sign_in_online(username, PASSWORD)
        .await
        .expect("sign in")
        .expect("enrolled");
    Actor {
        user_id: Some(user.id),
        name: user.display_name,
        role: user.role,
    }
}

async fn register(store: &Store, actor: &Actor, seed: u64, n: usize) -> Vec<Uuid> {
    let today = chrono::Utc::now().date_naive();
    let mut ids = Vec::with_capacity(n);
    let inputs: Vec<_> = clinic_store::demo::patients(seed).take(n).collect();
    for chunk in inputs.chunks(5_000) {
        let batch: Vec<Mutation> = chunk
            .iter()
            .map(|input| {
                let id = Uuid::now_v7();
                ids.push(id);
                Mutation::PatientCreate {
                    id,
                    fields: input.validate(today).expect("demo data is valid"),
                }
            })
            .collect();
        store.commit_batch(actor, batch).await.expect("register");
    }
    ids
}

/// A raw `COPY` of a clinic's feed, the columns a pull serves, in feed
/// order, read to the end: rows and seconds.
async fn copy_feed(pool: &sqlx::PgPool, clinic: Uuid) -> (usize, f64) {
    use futures_util::TryStreamExt;
    use sqlx::postgres::PgPoolCopyExt;
    let start = Instant::now();
    let mut stream = pool
        .copy_out_raw(&format!(
            "COPY (SELECT seq, entity, entity_id, version, data, mutation_id FROM change_log \
             WHERE clinic_id = '{clinic}' ORDER BY seq) TO STDOUT"
        ))
        .await
        .expect("copy out");
    let mut rows = 0;
    while let Some(chunk) = stream.try_next().await.expect("copy data") {
        rows += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    (rows, start.elapsed().as_secs_f64())
}

/// Every page of the feed over HTTP, as the engine fetches it (same client,
/// same page size), decoded into `PullResponse` and dropped: rows and seconds.
async fn fetch_feed(base: &str, token: &str) -> (usize, f64) {
    let client = clinic_sync::client::Client::new(base);
    let start = Instant::now();
    let (mut cursor, mut rows) = (0, 0);
    loop {
        let page = client
            .pull(token, cursor, clinic_sync::engine::PULL_PAGE)
            .await
            .expect("pull");
        rows += page.changes.len();
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    (rows, start.elapsed().as_secs_f64())
}

fn runs(v: &[(usize, f64)]) -> String {
    let rates: Vec<String> = v
        .iter()
        .map(|(n, s)| format!("{:.0}", *n as f64 / s))
        .collect();
    rates.join(", ")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDb::new().await;
    for (name, role) in [("alice", Role::Admin), ("rita", Role::Reception)] {
        db.user(db.clinic_id, name, role).await;
    }
    // Every workstation here is enrolled by alice and signs in as rita,
    // from one address: the per-user share of requests in flight (4 by
    // default) and the sign-in throttles would refuse the fleet with 429,
    // as they should for one real user on a dozen machines.
    let server = TestServer::start_with(&db, |c| {
        c.max_requests_per_user = 64;
        c.sign_ins_per_account_per_minute = 1_000;
        c.sign_ins_per_address_per_minute = 1_000;
    })
    .await;

    // 1. Push: W workstations, M offline registrations each, pushed at once.
    let mut fleet = Vec::new();
    for i in 0..args.workstations {
        let (store, engine) = workstation(dir.path(), &server, "central", false).await;
        let rita = sign_in(&engine, "rita").await;
        register(&store, &rita, 1_000 + i as u64, args.per_workstation).await;
        fleet.push((store, std::sync::Arc::new(engine)));
    }
    let total = args.workstations * args.per_workstation;
    eprintln!(
        "push: {} workstations × {} pending",
        args.workstations, args.per_workstation
    );
    let secs = push_all(&fleet).await;
    println!(
        "bench: sync_push_mutations_per_s {:.0} mutations/s",
        total as f64 / secs
    );
    eprintln!("  {total} mutations in {secs:.2} s");
    drop(fleet);

    // 2. Initial pull of everything into an empty workstation.
    let (store, engine) = workstation(dir.path(), &server, "central", false).await;
    sign_in(&engine, "rita").await;
    let start = Instant::now();
    engine.sync_now().await.expect("initial sync");
    let secs = start.elapsed().as_secs_f64();
    let pulled = store.patient_count().await.expect("count");
    assert_eq!(pulled as usize, total, "every patient arrived");
    println!(
        "bench: sync_initial_pull_rows_per_s {:.0} rows/s",
        pulled as f64 / secs
    );
    eprintln!("  {pulled} rows in {secs:.2} s");
    drop(engine);

    // The feed beside its database, on the same clinic's rows: a raw COPY
    // of them, and fetching every page over HTTP as the engine does,
    // decoded but not applied. Alternated, median of three each.
    // After 100,000 pushed rows PostgreSQL's autovacuum starts within a
    // minute and takes a core for seconds: runs during it measured half of
    // the first run's rate, COPY and feed alike. Vacuum first, so both
    // measure the database at rest, as a clinic's server mostly is.
    sqlx::query("VACUUM (ANALYZE)")
        .execute(&db.pool)
        .await
        .expect("vacuum");
    let (mut copies, mut fetches) = (Vec::new(), Vec::new());
    let token = server.sign_in("rita").await.access_token;
    for _ in 0..3 {
        copies.push(copy_feed(&db.pool, db.clinic_id).await);
        fetches.push(fetch_feed(&server.base, &token).await);
    }
    let median = |v: &mut Vec<(usize, f64)>| {
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v[v.len() / 2]
    };
    let (copied, copy_secs) = median(&mut copies);
    let (fetched, fetch_secs) = median(&mut fetches);
    // The feed also holds the clinic's users, beside the patients.
    assert!(copied >= total, "COPY saw every change");
    assert_eq!(fetched, copied, "the feed served what COPY saw");
    let copy_rate = copied as f64 / copy_secs;
    let fetch_rate = fetched as f64 / fetch_secs;
    println!("bench: sync_feed_copy_rows_per_s {copy_rate:.0} rows/s");
    println!("bench: sync_feed_fetch_rows_per_s {fetch_rate:.0} rows/s");
    println!(
        "bench: sync_feed_copy_over_fetch {:.2} x",
        copy_rate / fetch_rate
    );
    eprintln!(
        "  COPY {copied} rows in {copy_secs:.2} s; feed {fetched} rows in {fetch_secs:.2} s \
         (pages of {}; runs: COPY {}, feed {})",
        clinic_sync::engine::PULL_PAGE,
        runs(&copies),
        runs(&fetches)
    );

    // 3. Propagation between two running workstations of a fresh clinic.
    let north = clinic_server::users::create_clinic(&db.pool, "north", "North")
        .await
        .expect("clinic");
    for (name, role) in [("alice", Role::Admin), ("rita", Role::Reception)] {
        db.user(north, name, role).await;
    }
    let (a, a_engine) = workstation(dir.path(), &server, "north", true).await;
    let (b, b_engine) = workstation(dir.path(), &server, "north", true).await;
    let rita = sign_in(&a_engine, "rita").await;
    sign_in(&b_engine, "rita").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut samples = Vec::with_capacity(args.propagations);
    for i in 0..args.propagations {
        let start = Instant::now();
        let id = register(&a, &rita, 90_000 + i as u64, 1).await[0];
        a_engine.nudge();
        loop {
            if b.patient(id).await.is_ok() {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                eprintln!("propagation sample {i} took over 30 s");
                std::process::exit(1);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "bench: sync_propagation_p95_ms {:.0} ms",
        percentile(&samples, 0.95)
    );
    eprintln!(
        "  p50 {:.0} ms, max {:.0} ms over {} saves",
        percentile(&samples, 0.5),
        samples[samples.len() - 1],
        samples.len()
    );
    drop((b_engine, a_engine));

    // 4. Per record kind on the generic road.
    generic_kind_leg(dir.path(), &db, &server, total / 10).await;
}

/// Every workstation of `fleet` pushes at once; the seconds until all are
/// done, every mutation answered.
async fn push_all(fleet: &[(Store, std::sync::Arc<SyncEngine>)]) -> f64 {
    let start = Instant::now();
    let mut pushes = tokio::task::JoinSet::new();
    for (_, engine) in fleet {
        let engine = engine.clone();
        pushes.spawn(async move { engine.push_now().await });
    }
    while let Some(result) = pushes.join_next().await {
        result.expect("push task").expect("push");
    }
    let secs = start.elapsed().as_secs_f64();
    for (store, _) in fleet {
        assert_eq!(store.sync_counts().await.expect("counts").pending, 0);
    }
    secs
}

/// Leg 4 for departments (the generic road's one kind so far): push
/// `total` creates from two workstations at once, then pull them into a
/// new one. A clinic of its own, so the pull holds these records only.
async fn generic_kind_leg(dir: &std::path::Path, db: &TestDb, server: &TestServer, total: usize) {
    let clinic = clinic_server::users::create_clinic(&db.pool, "kinds", "Kinds")
        .await
        .expect("clinic");
    db.user(clinic, "alice", Role::Admin).await;
    let mut fleet = Vec::new();
    for w in 0..2 {
        let (store, engine) = workstation(dir, server, "kinds", false).await;
        let alice = sign_in(&engine, "alice").await;
        let batch: Vec<Mutation> = (0..total / 2)
            .map(|i| Mutation::RecordCreate {
                entity: clinic_domain::sync::Entity::Department,
                id: Uuid::now_v7(),
                fields: serde_json::json!({ "name": format!("Department {w}-{i}") }),
            })
            .collect();
        for chunk in batch.chunks(5_000) {
            store
                .commit_batch(&alice, chunk.to_vec())
                .await
                .expect("departments");
        }
        fleet.push((store, std::sync::Arc::new(engine)));
    }
    let secs = push_all(&fleet).await;
    println!(
        "bench: sync_push_department_per_s {:.0} mutations/s",
        total as f64 / secs
    );
    drop(fleet);
    let (store, engine) = workstation(dir, server, "kinds", false).await;
    sign_in(&engine, "alice").await;
    let start = Instant::now();
    engine.sync_now().await.expect("initial sync");
    let secs = start.elapsed().as_secs_f64();
    let pulled = store
        .records::<clinic_domain::record::Department>()
        .await
        .expect("departments")
        .len();
    assert_eq!(pulled, total, "every department arrived");
    println!(
        "bench: sync_initial_pull_department_rows_per_s {:.0} rows/s",
        pulled as f64 / secs
    );
}
