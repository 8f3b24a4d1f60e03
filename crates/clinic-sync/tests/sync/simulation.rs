//! A seeded, randomized simulation of a clinic's workstations syncing
//! through a faulty network.
//!
//! Each schedule is one clinic on the shared servers (two processes over
//! one database, which the proxy calls in turn; clinics are isolated
//! there), two or three workstations with real SQLite files and manual
//! engines, and a fault-injecting proxy. A seeded RNG picks every step:
//! register a patient, edit random fields of a patient the workstation
//! knows, merge two of them, settle a conflict, sync (a whole cycle, or only push, or only
//! pull), restart a workstation on its file, kill one in the middle of a
//! sync, partition or heal the network, change the random faults. At the
//! end every workstation settles its open conflicts (often the same ones,
//! differently), the network heals and every workstation syncs until
//! nothing moves. Then the invariants are checked (see
//! [`crate::invariants`]), and: every patient a workstation registered is
//! on the server exactly once, and no sync cursor ever went back (sampled
//! after every step).
//!
//! `SIM_SCHEDULES` (default 1000) schedules run, `SIM_JOBS` (default 4) at
//! a time, from seeds `SIM_BASE_SEED` (default: random) upwards; a failing
//! seed is printed with the command that replays it alone (`SIM_SEED`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clinic_server::testing::{TestDb, TestServer};

use crate::proxy::Stats;

mod schedule;

use schedule::run_schedule;

/// The shared server side of all schedules.
struct World {
    db: TestDb,
    /// Two server processes over the one database: every request of a
    /// schedule goes to them in turn, so the protocol is tested stateless.
    servers: [TestServer; 2],
    dir: tempfile::TempDir,
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

/// Where the workstation files go: memory when the machine offers it. The
/// simulation kills processes, not machines, so what SQLite wrote is there
/// after a kill either way, and the thousands of files cost no disk syncs.
fn scratch_dir() -> tempfile::TempDir {
    match tempfile::tempdir_in("/dev/shm") {
        Ok(dir) => dir,
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation() {
    let single = env_number("SIM_SEED");
    let schedules = env_number("SIM_SCHEDULES").unwrap_or(1000);
    let jobs = env_number("SIM_JOBS").unwrap_or(4).max(1) as usize;
    let base = env_number("SIM_BASE_SEED").unwrap_or_else(|| rand::random::<u32>() as u64);
    let seeds: Vec<u64> = match single {
        Some(s) => vec![s],
        None => (base..base + schedules).collect(),
    };
    let db = TestDb::new().await;
    let servers = [TestServer::start(&db).await, TestServer::start(&db).await];
    let world = Arc::new(World {
        db,
        servers,
        dir: scratch_dir(),
    });
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut queue = seeds.iter().copied();
    let mut running = tokio::task::JoinSet::new();
    let mut failure = None;
    loop {
        while failure.is_none() && running.len() < jobs {
            let Some(seed) = queue.next() else { break };
            let world = world.clone();
            running.spawn(async move {
                let outcome = tokio::spawn(run_schedule(world, seed, single.is_some())).await;
                (seed, outcome)
            });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let (seed, outcome) = done.expect("the schedule wrapper does not panic");
        match outcome {
            Ok(Ok(t)) => totals.add(&t),
            Ok(Err(report)) => failure = failure.or(Some((seed, report))),
            Err(panic) => {
                let message = panic
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    })
                    .unwrap_or_else(|| "the schedule panicked".into());
                failure = failure.or(Some((seed, message)));
            }
        }
    }
    if let Some((seed, report)) = failure {
        panic!(
            "simulation schedule with seed {seed} failed:\n{report}\n\
             replay it: SIM_SEED={seed} bash scripts/with-pg.sh cargo test -p clinic-sync --test sync simulation -- --nocapture"
        );
    }
    eprintln!(
        "simulation: {} schedules (seeds {}..{}) in {:.1} s: {totals}",
        seeds.len(),
        seeds[0],
        seeds[seeds.len() - 1] + 1,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(totals.schedules, seeds.len());
}

/// What the schedules did, summed.
#[derive(Debug, Default)]
struct Totals {
    schedules: usize,
    steps: usize,
    patients: usize,
    edits: usize,
    merges: usize,
    conflicts: usize,
    resolved: usize,
    rejected: usize,
    restarts: usize,
    crashes: usize,
    partitions: usize,
    sign_ins: usize,
    faults: Stats,
    /// Time in setting up, random steps, settling and checking.
    phases: [Duration; 4],
}

impl Totals {
    fn add(&mut self, t: &Totals) {
        self.schedules += t.schedules;
        self.steps += t.steps;
        self.patients += t.patients;
        self.edits += t.edits;
        self.merges += t.merges;
        self.conflicts += t.conflicts;
        self.resolved += t.resolved;
        self.rejected += t.rejected;
        self.restarts += t.restarts;
        self.crashes += t.crashes;
        self.partitions += t.partitions;
        self.sign_ins += t.sign_ins;
        for (mine, theirs) in self.phases.iter_mut().zip(t.phases) {
            *mine += theirs;
        }
        let (f, g) = (&mut self.faults, &t.faults);
        f.requests += g.requests;
        f.dropped_requests += g.dropped_requests;
        f.dropped_responses += g.dropped_responses;
        f.delayed += g.delayed;
        f.duplicated += g.duplicated;
        f.late_duplicates += g.late_duplicates;
        f.partitioned += g.partitioned;
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let f = &self.faults;
        write!(
            out,
            "{} steps, {} patients, {} edits, {} merges, {} conflicts ({} settled), {} rejected, {} restarts, \
             {} crashes mid-sync, {} partitions, {} sign-ins again; {} requests: {} dropped, \
             {} answers dropped, {} delayed, {} duplicated, {} late duplicates, {} connections cut; \
             time summed over schedules: setting up {:.0} s, steps {:.0} s, settling {:.0} s, checks {:.0} s",
            self.steps,
            self.patients,
            self.edits,
            self.merges,
            self.conflicts,
            self.resolved,
            self.rejected,
            self.restarts,
            self.crashes,
            self.partitions,
            self.sign_ins,
            f.requests,
            f.dropped_requests,
            f.dropped_responses,
            f.delayed,
            f.duplicated,
            f.late_duplicates,
            f.partitioned,
            self.phases[0].as_secs_f64(),
            self.phases[1].as_secs_f64(),
            self.phases[2].as_secs_f64(),
            self.phases[3].as_secs_f64(),
        )
    }
}
