//! Test support (feature `test-support`): a fresh PostgreSQL database per
//! test, migrated, with one clinic, and the server serving it on a free
//! loopback port. Used by this crate's tests and the sync engine's.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::Config;
use clinic_domain::Role;
use clinic_domain::sync::TokenResponse;
use clinic_domain::user::{Language, NewUser};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// The password of every test user.
pub const PASSWORD: &str = "Correct-Horse-42";
/// The token secret of test servers.
pub const SECRET: &str = "test-secret-test-secret-test-secret";

/// A fresh database, migrated, with one clinic (code `central`).
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// A pool on it.
    pub pool: PgPool,
    /// The clinic `central`.
    pub clinic_id: Uuid,
}

fn base_url() -> String {
    std::env::var("CLINIC_TEST_PG_URL").expect(
        "CLINIC_TEST_PG_URL is not set: run the server tests with a PostgreSQL, e.g. \
         `bash scripts/with-pg.sh cargo test -p clinic-server`",
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// Makes the database from `CLINIC_TEST_PG_URL`.
    pub async fn new() -> TestDb {
        let base = base_url();
        let admin = PgPool::connect(&base)
            .await
            .expect("connect to the test PostgreSQL");
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            Uuid::now_v7().simple()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = match base.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{name}"),
            None => panic!("CLINIC_TEST_PG_URL needs a database path"),
        };
        let pool = crate::connect(&url).await.unwrap();
        crate::migrate(&pool).await.unwrap();
        let clinic_id = crate::users::create_clinic(&pool, "central", "Central clinic")
            .await
            .unwrap();
        TestDb {
            url,
            pool,
            clinic_id,
        }
    }

    /// Creates a user with [`PASSWORD`].
    pub async fn user(&self, clinic_id: Uuid, username: &str, role: Role) -> Uuid {
        crate::users::create_user(
            &self.pool,
            clinic_id,
            None,
            NewUser {
                username: username.into(),
                display_name: format!("{username} test"),
                role,
                password: PASSWORD.into(),
                language: Language::En,
            },
        )
        .await
        .unwrap()
        .id
    }
}

impl TestDb {
    /// Creates a user of `clinic_id` whose password hash is `hash` (made
    /// once, e.g. by [`clinic_domain::password::hash_password`] of
    /// [`PASSWORD`]), as [`crate::users::create_user`] does (the row and
    /// its change-feed entry) but without hashing a password each time.
    pub async fn user_with_hash(
        &self,
        clinic_id: Uuid,
        username: &str,
        role: Role,
        hash: &str,
    ) -> clinic_domain::sync::ServerUser {
        let user = clinic_domain::sync::ServerUser {
            id: Uuid::now_v7(),
            clinic_id,
            username: username.into(),
            display_name: format!("{username} test"),
            role,
            language: Language::En,
            disabled: false,
        };
        let mut tx = self.pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO users (id, clinic_id, username, display_name, role, language, password_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id)
        .bind(clinic_id)
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(role.as_str())
        .bind(user.language.as_str())
        .bind(hash)
        .execute(&mut *tx)
        .await
        .unwrap();
        let mut feed = crate::feed::FeedBatch::default();
        feed.push(
            clinic_domain::sync::Entity::User,
            user.id,
            1,
            json!(user),
            None,
        );
        feed.publish(&mut tx, clinic_id).await.unwrap();
        tx.commit().await.unwrap();
        user
    }
}

/// A server process's worth of app, serving on a free loopback port.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client for it.
    pub http: reqwest::Client,
    /// The state it serves with.
    pub state: crate::AppState,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    /// Serves `db`.
    pub async fn start(db: &TestDb) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    /// Serves `db` with a changed configuration.
    pub async fn start_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            max_body_bytes: 256 * 1024,
            ..Config::with_defaults(&db.url, SECRET)
        };
        tweak(&mut config);
        let pool = crate::connect(&db.url).await.unwrap();
        let state = crate::state(pool, config).await.unwrap();
        let serving = state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::serve(listener, state, async move {
            let _ = rx.await;
        }));
        TestServer {
            base,
            http: reqwest::Client::new(),
            state: serving,
            _shutdown: tx,
        }
    }

    /// Tokens for `user` as a successful sign-in issues them (a new token
    /// family), without checking a password: Argon2 costs tens of
    /// milliseconds, and the sync simulation enrols thousands of
    /// workstations.
    pub async fn tokens_for(&self, user: Uuid) -> TokenResponse {
        let mut tx = self.state.pool.begin().await.unwrap();
        let row: crate::auth::UserRow = sqlx::query_as(&format!(
            "SELECT {} FROM users WHERE id = $1",
            crate::users::USER_COLUMNS
        ))
        .bind(user)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let tokens = crate::auth::issue_tokens(&self.state, &mut tx, &row, Uuid::now_v7())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        tokens
    }

    /// Signs a user of `central` in.
    pub async fn sign_in(&self, username: &str) -> TokenResponse {
        let r = self
            .post(
                "/v1/auth/sign-in",
                None,
                json!({"clinic": "central", "username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.0, 200, "sign-in of {username}: {}", r.1);
        serde_json::from_value(r.1).unwrap()
    }

    /// `GET` with an optional token: (status, JSON body).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST` JSON with an optional token.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    /// Any method with a JSON body: (status, JSON body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A push of `mutations` by `token` from workstation `ws`, as the
    /// outbox sends it: most sync tests push one change and read its outcome.
    pub async fn push(&self, token: &str, ws: Uuid, mutations: Vec<Value>) -> (u16, Value) {
        self.post(
            "/v1/sync/push",
            Some(token),
            json!({"workstation_id": ws, "mutations": mutations}),
        )
        .await
    }

    /// Presents a refresh token, as a workstation does to renew its access.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Enrols a workstation with an admin token; returns its id.
    pub async fn enroll(&self, admin_token: &str) -> Uuid {
        let id = Uuid::now_v7();
        let r = self
            .post(
                "/v1/workstations",
                Some(admin_token),
                json!({"workstation_id": id, "name": "Reception 1", "mrn_prefix": "KAB"}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        id
    }
}

/// A valid patient record as a workstation pushes it.
pub fn patient(mrn: &str, family: &str) -> Value {
    json!({
        "mrn": mrn, "family_name": family, "given_name": "Anna", "middle_name": null,
        "sex": "female", "birth_date": "1980-03-04", "birth_date_estimated": false,
        "phones": ["+7 912 345-67-89"], "national_id": null, "address": "Lenina 1",
        "emergency_contact_name": null, "emergency_contact_phone": null,
        "allergies": null, "notes": null, "status": "active", "merged_into": null
    })
}

/// A valid MRN with prefix `p` and sequence `n`.
pub fn mrn(p: &str, n: u64) -> String {
    clinic_domain::mrn::Mrn::new(&clinic_domain::mrn::MrnPrefix::parse(p).unwrap(), n)
        .as_str()
        .to_owned()
}

/// The registration of a valid patient (MRN `n` of the prefix "KAB" that
/// [`TestServer::enroll`] gives its workstation) by `user`, as the outbox
/// sends it: the change most tests push before the one they look at.
pub fn patient_create(user: Uuid, id: Uuid, n: u64, family: &str) -> Value {
    mutation(
        user,
        id,
        "patient",
        "create",
        None,
        patient(&mrn("KAB", n), family),
    )
}

/// The status and error code of an answer, what most refusals are checked by.
pub fn code(r: &(u16, Value)) -> (u16, Option<&str>) {
    (r.0, r.1["code"].as_str())
}

/// The status of every outcome of a push, in the order of its mutations.
pub fn statuses(r: &(u16, Value)) -> Vec<&str> {
    r.1["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect()
}

/// The status and code of the `i`-th outcome of a push ("" for no code).
pub fn outcome(r: &(u16, Value), i: usize) -> (String, String) {
    let o = &r.1["outcomes"][i];
    (
        o["status"].as_str().unwrap_or("?").to_owned(),
        o["code"].as_str().unwrap_or("").to_owned(),
    )
}

/// One mutation as the outbox sends it.
pub fn mutation(
    user: Uuid,
    entity_id: Uuid,
    entity: &str,
    op: &str,
    base_version: Option<i64>,
    payload: Value,
) -> Value {
    json!({
        "mutation_id": Uuid::now_v7(), "client_seq": 1, "entity": entity, "entity_id": entity_id,
        "op": op, "base_version": base_version, "payload": payload,
        "created_at": chrono::Utc::now(), "user_id": user
    })
}
