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
//! 3. `sync_propagation_p95_ms`: two running workstations of another clinic;
//!    a patient saved on A (commit + nudge, as the app does) until it is
//!    readable on B through the live channel; K samples (default 100).
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
    let server = TestServer::start(&db).await;

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
    let start = Instant::now();
    let mut pushes = tokio::task::JoinSet::new();
    for (_, engine) in &fleet {
        let engine = engine.clone();
        pushes.spawn(async move { engine.push_now().await });
    }
    while let Some(result) = pushes.join_next().await {
        result.expect("push task").expect("push");
    }
    let secs = start.elapsed().as_secs_f64();
    for (store, _) in &fleet {
        assert_eq!(store.sync_counts().await.expect("counts").pending, 0);
    }
    println!(
        "bench: sync_push_mutations_per_s {:.0} mutations/s",
        total as f64 / secs
    );
    eprintln!("  {total} mutations in {secs:.2} s");
    drop(fleet);

    // How much of the pull is the server and the network: fetch every page
    // without writing it (stderr only).
    {
        let client = clinic_sync::client::Client::new(&server.base);
        let token = server.sign_in("rita").await.access_token;
        let start = Instant::now();
        let (mut cursor, mut rows) = (0, 0);
        loop {
            let page = client.pull(&token, cursor, 5_000).await.expect("pull");
            rows += page.changes.len();
            cursor = page.cursor;
            if !page.has_more {
                break;
            }
        }
        eprintln!(
            "  fetching alone: {rows} changes in {:.2} s",
            start.elapsed().as_secs_f64()
        );
    }

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
}
