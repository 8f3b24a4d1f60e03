//! One schedule of the simulation: its clinic, workstations and proxy, the
//! random steps, the settling at the end and the checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clinic_domain::Role;
use clinic_domain::patient::{PatientInput, PatientStatus, Sex};
use clinic_domain::record::Department;
use clinic_domain::sync::Entity;
use clinic_domain::sync::{EnrollRequest, PatientConflict};
use clinic_server::testing::PASSWORD;
use clinic_store::{Actor, Mutation, StoreError};
use clinic_sync::client::{Client, ClientError};
use clinic_sync::tokens::refresh_token_key;
use clinic_sync::{SecretStore, SyncError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use crate::invariants::{check_converged, outbox, server_patients};
use crate::proxy::{Chaos, Proxy};
use crate::support::{Keychain, Ws};

use super::{Totals, World};

/// One workstation of a schedule. `ws` is `None` only while it restarts.
struct Node {
    ws: Option<Ws>,
    path: PathBuf,
    keychain: Keychain,
    /// The last sync cursor seen.
    cursor: i64,
    /// The last sync said a user must sign in online.
    needs_sign_in: bool,
}

impl Node {
    fn ws(&self) -> &Ws {
        self.ws.as_ref().expect("the workstation is up")
    }
}

/// One schedule's state.
struct Schedule {
    rng: StdRng,
    world: Arc<World>,
    clinic_code: String,
    clinic_id: Uuid,
    admin: Actor,
    proxy: Proxy,
    nodes: Vec<Node>,
    /// Every patient registered, on any workstation.
    created: Vec<Uuid>,
    trace: Vec<String>,
    totals: Totals,
}

/// Today for the registration form's checks.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

const FAMILY: [&str; 6] = [
    "Ivanova",
    "Petrova",
    "Jaidee",
    "Walker",
    "Сидорова",
    "Somboon",
];
const DEPARTMENTS: [&str; 4] = ["Cardiology", "ENT", "Radiology", "Кардиология"];
const GIVEN: [&str; 5] = ["Anna", "Malee", "Olga", "Somchai", "Vera"];
const MIDDLE: [Option<&str>; 3] = [None, Some("Petrovna"), Some("Ivanovna")];
const ADDRESS: [Option<&str>; 4] = [None, Some("Lenina 1"), Some("Mira 5"), Some("Sukhumvit 12")];
const NOTES: [Option<&str>; 4] = [
    None,
    Some("prefers mornings"),
    Some("needs an interpreter"),
    Some("wheelchair"),
];
const PHONES: [&[&str]; 3] = [&[], &["+7 912 345-67-89"], &["+66 81 234 5678"]];
const SEXES: [Sex; 3] = [Sex::Female, Sex::Male, Sex::Unknown];

/// The admin's password hash (Argon2), made once for the whole run.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| clinic_store::users::hash_password(PASSWORD).unwrap())
}

/// Enrols `ws` with `admin` of `clinic_code`, as [`SyncEngine::enroll`]
/// does, but without the two Argon2 computations of a real enrolment (the
/// server checking the password, the workstation making its offline
/// verifier), which would cost more than the rest of a schedule: the
/// tokens come from the test server as a sign-in would issue them, and
/// the verifier is made once for the run. The enrolment itself is the real
/// request through the proxy; the engine finds the refresh token in the
/// keychain and refreshes it on its first sync, through the proxy too.
///
/// [`SyncEngine::enroll`]: clinic_sync::SyncEngine::enroll
async fn enroll(ws: &Ws, world: &World, url: &str, clinic_code: &str, admin: Uuid) {
    ws.store
        .commit(
            &Actor::system("test"),
            Mutation::SyncConfigure {
                server_url: url.to_owned(),
                clinic_code: clinic_code.to_owned(),
            },
        )
        .await
        .unwrap();
    let tokens = world.servers[0].tokens_for(admin).await;
    let info = ws.store.workstation_info().await.unwrap();
    let enrolled = Client::new(url)
        .enroll(
            &tokens.access_token,
            &EnrollRequest {
                workstation_id: info.id,
                name: info.name,
                mrn_prefix: info.mrn_prefix,
            },
        )
        .await
        .unwrap();
    ws.keychain
        .set(&refresh_token_key(tokens.user.id), &tokens.refresh_token);
    // What the engine records once the server has answered, with the
    // verifier made once for the run instead of from the password.
    let recorded = Mutation::SyncEnrolled {
        clinic_id: enrolled.clinic_id,
        mrn_prefix: enrolled.mrn_prefix,
        admin: tokens.user,
        admin_password_hash: password_hash().to_owned(),
    };
    ws.store
        .commit(&Actor::system("sync"), recorded)
        .await
        .unwrap();
}

/// Runs the schedule of `seed` to its end; `Err` says what does not hold.
/// `verbose` prints its trace even when it passes.
pub(super) async fn run_schedule(
    world: Arc<World>,
    seed: u64,
    verbose: bool,
) -> Result<Totals, String> {
    let t0 = Instant::now();
    let mut s = Schedule::new(world, seed).await;
    s.warm_up().await;
    let t1 = Instant::now();
    let steps = s.rng.gen_range(12..=24);
    for _ in 0..steps {
        s.step().await;
        s.check_cursors().await?;
    }
    s.close_the_day().await;
    let t2 = Instant::now();
    let result = s.quiesce().await;
    let t3 = Instant::now();
    let result = match result {
        Ok(()) => s.check().await,
        Err(e) => Err(e),
    };
    s.totals.phases = [t1 - t0, t2 - t1, t3 - t2, t3.elapsed()];
    let dirs: Vec<PathBuf> = s.nodes.iter().map(|n| n.path.clone()).collect();
    if verbose || result.is_err() {
        eprintln!("seed {seed} trace:\n{}", s.trace.join("\n"));
    }
    let outcome = match result {
        Ok(()) => {
            s.totals.schedules = 1;
            s.totals.steps = steps;
            s.totals.faults = s.proxy.stats();
            Ok(std::mem::take(&mut s.totals))
        }
        Err(problems) => Err(format!(
            "{problems}\nlast requests through the proxy:\n{}",
            s.proxy.recent(40)
        )),
    };
    for n in &mut s.nodes {
        if let Some(ws) = n.ws.take() {
            ws.store.close().await;
        }
    }
    for path in dirs {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    outcome
}

impl Drop for Schedule {
    fn drop(&mut self) {
        // A step panicked: show how the schedule got there.
        if std::thread::panicking() {
            eprintln!("trace of the failed schedule:\n{}", self.trace.join("\n"));
        }
    }
}

impl Schedule {
    async fn new(world: Arc<World>, seed: u64) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let clinic_code = format!("sim-{seed:x}");
        let pool = &world.db.pool;
        let clinic_id = clinic_server::users::create_clinic(pool, &clinic_code, "Simulated clinic")
            .await
            .unwrap();
        let admin = world
            .db
            .user_with_hash(clinic_id, "admin", Role::Admin, password_hash())
            .await;
        let upstreams = world
            .servers
            .iter()
            .map(|s| s.base.trim_start_matches("http://").parse().unwrap())
            .collect();
        let proxy = Proxy::start_balanced(upstreams, rng.r#gen()).await;
        let mut nodes = Vec::new();
        for _ in 0..rng.gen_range(2..=3) {
            let path = world.dir.path().join(format!("{}.db", Uuid::now_v7()));
            let keychain = Keychain::default();
            let ws = Ws::open(&path, keychain.clone()).await;
            enroll(&ws, &world, &proxy.url(), &clinic_code, admin.id).await;
            nodes.push(Node {
                ws: Some(ws),
                path,
                keychain,
                cursor: 0,
                needs_sign_in: false,
            });
        }
        Schedule {
            rng,
            world,
            clinic_code,
            clinic_id,
            admin: Actor {
                user_id: Some(admin.id),
                name: admin.display_name,
                role: Role::Admin,
            },
            proxy,
            trace: vec![format!("{} workstations", nodes.len())],
            nodes,
            created: Vec::new(),
            totals: Totals::default(),
        }
    }

    /// Two patients registered on the first workstation and known to all,
    /// so that the random edits meet on them from the start.
    async fn warm_up(&mut self) {
        for _ in 0..2 {
            self.register(0).await;
        }
        for n in 0..self.nodes.len() {
            let result = self.nodes[n].ws().engine.sync_now().await;
            self.after_sync(n, "sync", result);
        }
    }

    /// Adds a line to the trace printed when the schedule fails.
    fn note(&mut self, line: String) {
        self.trace.push(line);
    }

    /// One random step.
    async fn step(&mut self) {
        let n = self.rng.gen_range(0..self.nodes.len());
        let roll = self.rng.gen_range(0..100);
        match roll {
            _ if self.created.len() < 2 => self.register(n).await,
            0..=9 => self.register(n).await,
            10..=38 => self.edit(n).await,
            39..=41 => self.department(n).await,
            42 => self.staff().await,
            43..=44 => self.merge(n).await,
            45..=56 => self.resolve(n).await,
            57..=81 => self.sync(n).await,
            82..=84 => self.restart(n).await,
            85..=87 => self.crash(n).await,
            88..=93 => self.network(),
            _ => self.sign_in(n).await,
        }
    }

    /// Registers a random patient on workstation `n`.
    async fn register(&mut self, n: usize) {
        let input = PatientInput {
            family_name: FAMILY.choose(&mut self.rng).unwrap().to_string(),
            given_name: GIVEN.choose(&mut self.rng).unwrap().to_string(),
            sex: Some(*SEXES.choose(&mut self.rng).unwrap()),
            birth_date: Some("1980-03-04".into()),
            address: ADDRESS.choose(&mut self.rng).unwrap().map(str::to_owned),
            ..Default::default()
        };
        let fields = input.validate(today()).expect("a valid registration");
        let id = Uuid::now_v7();
        self.nodes[n]
            .ws()
            .store
            .commit(&self.admin, Mutation::PatientCreate { id, fields })
            .await
            .expect("registering offline works");
        self.created.push(id);
        self.totals.patients += 1;
        self.note(format!("ws{n}: register {id}"));
    }

    /// Creates a department or renames one this workstation has: a kind on
    /// the generic record road. Names come from a short list, so
    /// workstations collide on names and on renames of the same record.
    async fn department(&mut self, n: usize) {
        let name = *DEPARTMENTS.choose(&mut self.rng).unwrap();
        let ws = self.nodes[n].ws();
        let existing = ws.store.records::<Department>().await.unwrap();
        let create = existing.is_empty() || self.rng.gen_bool(0.4);
        let (what, mutation) = if create {
            let id = Uuid::now_v7();
            (
                format!("create department {id} {name}"),
                Mutation::RecordCreate {
                    entity: Entity::Department,
                    id,
                    fields: json!({ "name": name }),
                },
            )
        } else {
            let r = existing.choose(&mut self.rng).unwrap();
            (
                format!("rename department {} v{} to {name}", r.id, r.version),
                Mutation::RecordUpdate {
                    entity: Entity::Department,
                    id: r.id,
                    base_version: r.version,
                    fields: json!({ "name": name }),
                },
            )
        };
        match ws.store.commit(&self.admin, mutation).await {
            Ok(_) => self.note(format!("ws{n}: {what}")),
            // The name is taken here: the form would say so; nothing is made.
            Err(StoreError::Validation(_)) => self.note(format!("ws{n}: {what}: name taken here")),
            Err(e) => panic!("ws{n}: {what}: {e}"),
        }
    }

    /// The server's admin API adds a nurse or changes one: user accounts
    /// are a kind only the server makes, which every workstation takes from
    /// the feed. (The admin the workstations work as stays as it is.)
    async fn staff(&mut self) {
        let pool = &self.world.db.pool;
        let nurses: Vec<(Uuid,)> =
            sqlx::query_as("SELECT id FROM users WHERE clinic_id = $1 AND role <> 'admin'")
                .bind(self.clinic_id)
                .fetch_all(pool)
                .await
                .unwrap();
        let admin = self.admin.user_id.expect("the admin has an id");
        if nurses.is_empty() || self.rng.gen_bool(0.2) {
            let n = nurses.len();
            let user = clinic_server::users::create_user(
                pool,
                self.clinic_id,
                Some(admin),
                clinic_domain::user::NewUser {
                    username: format!("nurse{n}"),
                    display_name: format!("Nurse {n}"),
                    role: Role::Nurse,
                    password: PASSWORD.into(),
                    language: clinic_domain::user::Language::Th,
                },
            )
            .await
            .unwrap();
            self.note(format!("server: add user {}", user.id));
        } else {
            let (id,) = *nurses.choose(&mut self.rng).unwrap();
            let change = clinic_server::users::UserChange {
                role: Some(
                    *[Role::Nurse, Role::Reception, Role::Doctor]
                        .choose(&mut self.rng)
                        .unwrap(),
                ),
                display_name: Some(GIVEN.choose(&mut self.rng).unwrap().to_string()),
                language: Some(
                    *clinic_domain::user::Language::ALL
                        .choose(&mut self.rng)
                        .unwrap(),
                ),
                disabled: Some(self.rng.gen_bool(0.3)),
            };
            clinic_server::users::update_user(pool, self.clinic_id, admin, id, &change)
                .await
                .unwrap();
            self.note(format!("server: change user {id}: {change:?}"));
        }
    }

    /// Edits one to three random fields of a patient this workstation has.
    async fn edit(&mut self, n: usize) {
        let ws = self.nodes[n].ws();
        // A random patient this workstation has (registered here or pulled).
        let mut candidates = self.created.clone();
        candidates.shuffle(&mut self.rng);
        let mut found = None;
        for id in candidates {
            if let Ok(p) = ws.store.patient(id).await
                && p.status == PatientStatus::Active
            {
                found = Some((id, p));
                break;
            }
        }
        let Some((id, p)) = found else {
            return;
        };
        let mut input = PatientInput {
            family_name: p.family_name.clone(),
            given_name: p.given_name.clone(),
            middle_name: p.middle_name.clone(),
            sex: Some(p.sex),
            birth_date: Some(p.birth_date.format("%Y-%m-%d").to_string()),
            estimated_age: None,
            phones: p.phones.clone(),
            national_id: p.national_id.clone(),
            address: p.address.clone(),
            emergency_contact_name: p.emergency_contact_name.clone(),
            emergency_contact_phone: p.emergency_contact_phone.clone(),
            allergies: p.allergies.clone(),
            notes: p.notes.clone(),
        };
        let mut changed = Vec::new();
        for _ in 0..self.rng.gen_range(1..=3) {
            let rng = &mut self.rng;
            let field = match rng.gen_range(0..7) {
                0 => {
                    input.family_name = FAMILY.choose(rng).unwrap().to_string();
                    "family_name"
                }
                1 => {
                    input.given_name = GIVEN.choose(rng).unwrap().to_string();
                    "given_name"
                }
                2 => {
                    input.middle_name = MIDDLE.choose(rng).unwrap().map(str::to_owned);
                    "middle_name"
                }
                3 => {
                    input.sex = Some(*SEXES.choose(rng).unwrap());
                    "sex"
                }
                4 => {
                    input.address = ADDRESS.choose(rng).unwrap().map(str::to_owned);
                    "address"
                }
                5 => {
                    input.notes = NOTES.choose(rng).unwrap().map(str::to_owned);
                    "notes"
                }
                _ => {
                    input.phones = PHONES
                        .choose(rng)
                        .unwrap()
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    "phones"
                }
            };
            changed.push(field);
        }
        let fields = input.validate(today()).expect("a valid edit");
        changed.sort_unstable();
        changed.dedup();
        let described: Vec<String> = changed
            .iter()
            .map(|f| match *f {
                "family_name" => format!("{f}={:?}", fields.family_name),
                "given_name" => format!("{f}={:?}", fields.given_name),
                "middle_name" => format!("{f}={:?}", fields.middle_name),
                "sex" => format!("{f}={:?}", fields.sex),
                "address" => format!("{f}={:?}", fields.address),
                "notes" => format!("{f}={:?}", fields.notes),
                _ => format!("{f}={:?}", fields.phones),
            })
            .collect();
        let same = fields.family_name == p.family_name
            && fields.given_name == p.given_name
            && fields.middle_name == p.middle_name
            && fields.sex == p.sex
            && fields.address == p.address
            && fields.notes == p.notes
            && fields.phones == p.phones;
        if same {
            // Saving an unchanged form: not a change to sync.
            return;
        }
        let result = ws
            .store
            .commit(
                &self.admin,
                Mutation::PatientUpdate {
                    id,
                    base_version: p.version,
                    fields,
                },
            )
            .await;
        match result {
            Ok(_) => {
                self.totals.edits += 1;
                self.note(format!("ws{n}: edit {id} {}", described.join(", ")));
            }
            Err(e) => panic!("ws{n}: editing {id} failed: {e}"),
        }
    }

    /// Merges two random active patients workstation `n` has (reception
    /// found a duplicate), perhaps while another workstation edits either.
    async fn merge(&mut self, n: usize) {
        let ws = self.nodes[n].ws();
        let mut candidates = self.created.clone();
        candidates.shuffle(&mut self.rng);
        let mut active = Vec::new();
        for id in candidates {
            if let Ok(p) = ws.store.patient(id).await
                && p.status == PatientStatus::Active
            {
                active.push(id);
                if active.len() == 2 {
                    break;
                }
            }
        }
        let [keep, merge] = active[..] else {
            return;
        };
        match ws
            .store
            .commit(
                &self.admin,
                Mutation::PatientMerge {
                    keep,
                    merge,
                    reason: "Registered twice".into(),
                },
            )
            .await
        {
            Ok(_) => {
                self.totals.merges += 1;
                self.note(format!("ws{n}: merge {merge} into {keep}"));
            }
            Err(e) => panic!("ws{n}: merging {merge} into {keep} failed: {e}"),
        }
    }

    /// Settles a random open conflict of workstation `n`, either way.
    async fn resolve(&mut self, n: usize) {
        let open = self.nodes[n].ws().store.open_conflicts().await.unwrap();
        let Some(conflict) = open.choose(&mut self.rng) else {
            return;
        };
        let keep_client = self.rng.gen_bool(0.5);
        self.settle_conflict(n, conflict, keep_client).await;
    }

    /// Reception on workstation `n` settles `conflict`.
    async fn settle_conflict(&mut self, n: usize, conflict: &PatientConflict, keep_client: bool) {
        self.nodes[n]
            .ws()
            .store
            .commit(
                &self.admin,
                Mutation::ConflictResolve {
                    id: conflict.id,
                    keep_client,
                },
            )
            .await
            .expect("settling an open conflict works offline");
        self.totals.resolved += 1;
        let line = format!(
            "ws{n}: resolve conflict {} on {} {} keep_client={keep_client}",
            conflict.id, conflict.patient_id, conflict.field
        );
        self.note(line);
    }

    /// Workstation `n` syncs: a whole cycle, or only pushes, or only pulls.
    async fn sync(&mut self, n: usize) {
        let kind = self.rng.gen_range(0..10);
        let ws = self.nodes[n].ws();
        let (what, result) = match kind {
            0..=5 => ("sync", ws.engine.sync_now().await),
            6..=7 => ("push", ws.engine.push_now().await),
            _ => ("pull", ws.engine.pull_now().await),
        };
        self.after_sync(n, what, result);
    }

    /// Notes a sync's result; only an unreachable server or a sign-in
    /// request are expected failures.
    fn after_sync(&mut self, n: usize, what: &str, result: Result<(), SyncError>) {
        let line = match &result {
            Ok(()) => format!("ws{n}: {what} ok"),
            Err(e) => format!("ws{n}: {what}: {e}"),
        };
        self.note(line);
        match result {
            Err(SyncError::SignInNeeded(_)) => self.nodes[n].needs_sign_in = true,
            Err(SyncError::Client(ClientError::Unreachable(_))) | Ok(()) => {}
            Err(e) => panic!("ws{n}: {what} failed in an unexpected way: {e}"),
        }
    }

    /// The workstation's process ends and starts again on its file.
    async fn restart(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let ws = node.ws.take().unwrap();
        node.ws = Some(ws.restart().await);
        self.totals.restarts += 1;
        self.note(format!("ws{n}: restart"));
    }

    /// The workstation's process is killed in the middle of a sync, at a
    /// random moment, and starts again on its file.
    async fn crash(&mut self, n: usize) {
        let after = Duration::from_micros(self.rng.gen_range(0..30_000));
        let node = &mut self.nodes[n];
        let ws = node.ws.take().unwrap();
        let running = tokio::spawn(async move {
            let r = ws.engine.sync_now().await;
            (ws, r)
        });
        tokio::time::sleep(after).await;
        running.abort();
        let finished = match running.await {
            Ok((ws, _)) => {
                // It finished first: kill it now.
                drop(ws.engine);
                ws.store.close().await;
                true
            }
            Err(e) => {
                assert!(e.is_cancelled(), "the sync panicked: {e}");
                false
            }
        };
        node.ws = Some(Ws::open(&node.path, node.keychain.clone()).await);
        self.totals.crashes += 1;
        self.note(format!(
            "ws{n}: killed {} µs into a sync{}",
            after.as_micros(),
            if finished { " (after it ended)" } else { "" }
        ));
    }

    /// Partitions or heals the network, or changes the random faults.
    fn network(&mut self) {
        let line = match self.rng.gen_range(0..4) {
            0 if !self.proxy.is_partitioned() => {
                self.proxy.partition();
                self.totals.partitions += 1;
                "partition".to_owned()
            }
            0 => {
                self.proxy.heal();
                "heal".to_owned()
            }
            level => {
                let chaos = match level {
                    1 => Chaos::NONE,
                    2 => Chaos {
                        drop_request: 0.05,
                        drop_response: 0.05,
                        delay: 0.2,
                        max_delay: Duration::from_millis(5),
                        duplicate: 0.05,
                        late_duplicate: 0.05,
                    },
                    _ => Chaos {
                        drop_request: 0.15,
                        drop_response: 0.2,
                        delay: 0.2,
                        max_delay: Duration::from_millis(15),
                        duplicate: 0.15,
                        late_duplicate: 0.15,
                    },
                };
                self.proxy.set_chaos(chaos);
                format!("faults {level}")
            }
        };
        self.note(format!("network: {line}"));
    }

    /// The user signs in online again, if the workstation asked for it.
    async fn sign_in(&mut self, n: usize) {
        if !self.nodes[n].needs_sign_in {
            return self.sync(n).await;
        }
        let result = self.nodes[n]
            .ws()
            .engine
            .sign_in_online("admin", PASSWORD)
            .await;
        match result {
            Ok(_) => {
                self.nodes[n].needs_sign_in = false;
                self.totals.sign_ins += 1;
                self.note(format!("ws{n}: signed in again"));
            }
            Err(e) => self.note(format!("ws{n}: sign-in failed: {e}")),
        }
    }

    /// Samples every workstation's cursor: it must never go back.
    async fn check_cursors(&mut self) -> Result<(), String> {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let cursor = node
                .ws()
                .store
                .sync_settings()
                .await
                .unwrap()
                .map_or(0, |s| s.cursor);
            if cursor < node.cursor {
                return Err(format!(
                    "ws{i}: the cursor went back from {} to {cursor}",
                    node.cursor
                ));
            }
            node.cursor = cursor;
        }
        Ok(())
    }

    /// Reception on every workstation works through its list of conflicts
    /// before anyone syncs again, so the same conflict is often settled on
    /// two workstations, each its own way.
    async fn close_the_day(&mut self) {
        for n in 0..self.nodes.len() {
            let open = self.nodes[n].ws().store.open_conflicts().await.unwrap();
            for conflict in open {
                let keep_client = self.rng.gen_bool(0.5);
                self.settle_conflict(n, &conflict, keep_client).await;
            }
        }
    }

    /// Heals the network and syncs every workstation until nothing is
    /// pending and a whole round changes nothing.
    async fn quiesce(&mut self) -> Result<(), String> {
        self.proxy.heal();
        self.proxy.set_chaos(Chaos::NONE);
        self.proxy.wait_idle().await;
        self.note("quiesce".into());
        let mut last = None;
        for _ in 0..10 {
            let mut errors = Vec::new();
            for n in 0..self.nodes.len() {
                let mut result = self.nodes[n].ws().engine.sync_now().await;
                if let Err(SyncError::SignInNeeded(_)) = result {
                    self.nodes[n].needs_sign_in = true;
                    self.sign_in(n).await;
                    result = self.nodes[n].ws().engine.sync_now().await;
                }
                if let Err(e) = &result {
                    errors.push(format!("ws{n}: {e}"));
                }
                self.after_sync(n, "sync", result);
            }
            self.check_cursors().await?;
            let mut pending = 0;
            for node in &self.nodes {
                pending += node.ws().store.sync_counts().await.unwrap().pending;
            }
            let (feed,): (i64,) =
                sqlx::query_as("SELECT last_seq FROM clinic_feed_counter WHERE clinic_id = $1")
                    .bind(self.clinic_id)
                    .fetch_one(&self.world.db.pool)
                    .await
                    .unwrap();
            let state: Vec<i64> = self.nodes.iter().map(|n| n.cursor).chain([feed]).collect();
            if errors.is_empty() && pending == 0 && last.as_ref() == Some(&state) {
                return Ok(());
            }
            last = Some(state);
        }
        Err("the workstations did not settle in ten rounds after the network healed".into())
    }

    /// The invariants after quiescence.
    async fn check(&mut self) -> Result<(), String> {
        let pool = &self.world.db.pool;
        let wss: Vec<&Ws> = self.nodes.iter().map(Node::ws).collect();
        let mut problems = match check_converged(pool, self.clinic_id, &wss).await {
            Ok(()) => String::new(),
            Err(p) => p,
        };
        // Every registration has one outcome; the patient is on the server,
        // once, exactly when it was applied.
        let server = server_patients(pool, self.clinic_id).await;
        let mut creates: BTreeMap<Uuid, String> = BTreeMap::new();
        for ws in &wss {
            for e in outbox(ws).await {
                match e.what.as_str() {
                    "patient.create" if creates.contains_key(&e.entity_id) => {
                        let _ = writeln!(problems, "patient {} registered twice", e.entity_id);
                    }
                    "patient.create" => {
                        creates.insert(e.entity_id, e.status.clone());
                    }
                    "patient.update" if e.status == "rejected" => self.totals.rejected += 1,
                    "patient_conflict.resolve" if e.status == "rejected" => {
                        self.totals.rejected += 1
                    }
                    _ => {}
                }
            }
        }
        let made: BTreeSet<Uuid> = self.created.iter().copied().collect();
        for id in &made {
            match creates.get(id).map(String::as_str) {
                None => {
                    let _ = writeln!(
                        problems,
                        "patient {id} was registered but has no outbox entry"
                    );
                }
                Some("applied") if !server.contains_key(id) => {
                    let _ = writeln!(
                        problems,
                        "patient {id} was applied but is not on the server"
                    );
                }
                Some("applied") => {}
                Some(other) => {
                    if server.contains_key(id) {
                        let _ = writeln!(problems, "patient {id} is {other} but on the server");
                    }
                }
            }
        }
        for id in server.keys().filter(|id| !made.contains(id)) {
            let _ = writeln!(
                problems,
                "the server has patient {id}, which no one registered"
            );
        }
        let (conflicts,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM patient_conflicts WHERE clinic_id = $1")
                .bind(self.clinic_id)
                .fetch_one(pool)
                .await
                .unwrap();
        self.totals.conflicts += conflicts as usize;
        for (i, ws) in wss.iter().enumerate() {
            let audit = ws.store.verify_audit().await.unwrap();
            if audit.first_bad_seq.is_some() {
                let _ = writeln!(problems, "ws{i}: the audit chain is broken: {audit:?}");
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("clinic {}:\n{problems}", self.clinic_code))
        }
    }
}
