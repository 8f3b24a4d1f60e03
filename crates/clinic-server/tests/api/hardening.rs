//! What a black-box probe found (issue 9), each as a test that failed
//! before its fix: old tokens of changed users, parallel password guesses,
//! reused mutation ids, other clinics' ids, NUL characters, echoed values,
//! bodies that are not JSON objects, hyper's own error answers, slow and
//! oversized requests, and one workstation flooding the server.

use std::time::Duration;

use clinic_domain::Role;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::support::*;

fn new_user(name: &str, role: &str) -> Value {
    json!({"username": name, "display_name": "New User", "role": role,
           "password": "Another-Horse-77", "language": "en"})
}

#[tokio::test]
async fn a_demoted_disabled_or_repassworded_user_loses_their_powers_at_once() {
    let db = TestDb::new().await;
    let alice = db.user(db.clinic_id, "alice", Role::Admin).await;
    db.user(db.clinic_id, "bob", Role::Admin).await;
    let nina = db.user(db.clinic_id, "nina", Role::Nurse).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let alice_t = s.sign_in("alice").await.access_token;
    let bob_t = s.sign_in("bob").await.access_token;
    let nina_t = s.sign_in("nina").await.access_token;
    let rita_t = s.sign_in("rita").await.access_token;

    // Bob demotes Alice to nurse; her token from before is a nurse's now.
    let r = s
        .send(
            Method::PATCH,
            &format!("/v1/users/{alice}"),
            Some(&bob_t),
            json!({"role": "nurse"}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let create = s
        .post("/v1/users", Some(&alice_t), new_user("mallory", "admin"))
        .await;
    assert_eq!(code(&create), (403, Some("forbidden")));
    let enrol = s
        .post(
            "/v1/workstations",
            Some(&alice_t),
            json!({"workstation_id": Uuid::now_v7(), "name": "Mine", "mrn_prefix": "KAB"}),
        )
        .await;
    assert_eq!(code(&enrol), (403, Some("forbidden")));
    let back = s
        .send(
            Method::PATCH,
            &format!("/v1/users/{alice}"),
            Some(&alice_t),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(code(&back), (403, Some("forbidden")));

    // Disabled: nothing at all, not even re-enabling herself.
    s.send(
        Method::PATCH,
        &format!("/v1/users/{alice}"),
        Some(&bob_t),
        json!({"role": "admin", "disabled": true}),
    )
    .await;
    let again = s
        .send(
            Method::PATCH,
            &format!("/v1/users/{alice}"),
            Some(&alice_t),
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(again.0, 403, "{}", again.1);
    let reset = s
        .post(
            &format!("/v1/users/{rita}/password"),
            Some(&alice_t),
            json!({"password": "Stolen-Horse-99"}),
        )
        .await;
    assert!(matches!(reset.0, 401 | 403), "{}", reset.1);
    let (enabled,): (bool,) = sqlx::query_as("SELECT disabled FROM users WHERE id = $1")
        .bind(alice)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(enabled, "she is still disabled");

    // A disabled nurse reads nothing.
    s.send(
        Method::PATCH,
        &format!("/v1/users/{nina}"),
        Some(&bob_t),
        json!({"disabled": true}),
    )
    .await;
    let read = s.get("/v1/patients", Some(&nina_t)).await;
    assert_eq!(code(&read), (403, Some("account_disabled")));

    // A new password ends the tokens issued before it.
    assert_eq!(s.get("/v1/patients", Some(&rita_t)).await.0, 200);
    let r = s
        .post(
            &format!("/v1/users/{rita}/password"),
            Some(&bob_t),
            json!({"password": "Fresh-Horse-2027"}),
        )
        .await;
    assert_eq!(r.0, 204, "{}", r.1);
    assert_eq!(
        code(&s.get("/v1/patients", Some(&rita_t)).await),
        (401, Some("unauthenticated"))
    );
}

/// Reads a live channel until it ends; `false` when it is still open at
/// `within`.
async fn ends_within(mut events: reqwest::Response, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn an_open_live_channel_ends_when_its_user_is_disabled_or_repassworded() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "bob", Role::Admin).await;
    let nina = db.user(db.clinic_id, "nina", Role::Nurse).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start_with(&db, |c| c.live_recheck_seconds = 1).await;
    let bob_t = s.sign_in("bob").await.access_token;
    let open = |token: String| {
        let s = &s;
        async move {
            let mut r = s
                .http
                .get(format!("{}/v1/sync/events", s.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let first = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
            assert!(first.contains("event: feed"), "{first}");
            r
        }
    };
    let nina_live = open(s.sign_in("nina").await.access_token).await;
    let rita_live = open(s.sign_in("rita").await.access_token).await;
    let bob_live = open(bob_t.clone()).await;

    s.send(
        Method::PATCH,
        &format!("/v1/users/{nina}"),
        Some(&bob_t),
        json!({"disabled": true}),
    )
    .await;
    let r = s
        .post(
            &format!("/v1/users/{rita}/password"),
            Some(&bob_t),
            json!({"password": "Fresh-Meadow-42"}),
        )
        .await;
    assert_eq!(r.0, 204, "{}", r.1);
    assert!(
        ends_within(nina_live, Duration::from_secs(5)).await,
        "disabled: the stream ends"
    );
    assert!(
        ends_within(rita_live, Duration::from_secs(5)).await,
        "new password: the stream ends"
    );
    // Several rechecks later, a user still in good standing keeps theirs.
    assert!(
        !ends_within(bob_live, Duration::from_secs(3)).await,
        "bob's stream stays open"
    );
}

/// The number of password checks the server made for `user`.
async fn checked(db: &TestDb, user: Uuid) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM audit_log WHERE entity_id = $1 AND action IN ('sign_in_failed', 'sign_in')",
    )
    .bind(user)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn parallel_wrong_passwords_are_checked_at_most_five_times_before_the_lock() {
    let db = TestDb::new().await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    // Throttles off: this is about the lockout alone.
    let s = TestServer::start_with(&db, |c| {
        c.sign_ins_per_account_per_minute = 1000;
        c.sign_ins_per_address_per_minute = 1000;
    })
    .await;
    let wrong = json!({"clinic": "central", "username": "rita", "password": "wrong-password-1"});
    let mut codes = Vec::new();
    for _round in 0..2 {
        let attempts: Vec<_> = (0..30)
            .map(|_| s.post("/v1/auth/sign-in", None, wrong.clone()))
            .collect();
        for r in join_all(attempts).await {
            codes.push(r.1["code"].as_str().unwrap_or("").to_owned());
        }
    }
    assert_eq!(
        checked(&db, rita).await,
        5,
        "exactly five guesses were checked"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "invalid_credentials").count(),
        4
    );
    assert!(
        codes
            .iter()
            .all(|c| c == "invalid_credentials" || c == "account_locked")
    );
    let right = s
        .post(
            "/v1/auth/sign-in",
            None,
            json!({"clinic": "central", "username": "rita", "password": PASSWORD}),
        )
        .await;
    assert_eq!(code(&right), (403, Some("account_locked")));
}

#[tokio::test]
async fn sign_ins_are_throttled_per_account_and_per_address() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start_with(&db, |c| {
        c.sign_ins_per_account_per_minute = 3;
        c.sign_ins_per_address_per_minute = 5;
    })
    .await;
    let attempt =
        |user: &str| json!({"clinic": "central", "username": user, "password": "wrong-password-1"});
    for _ in 0..3 {
        assert_eq!(
            s.post("/v1/auth/sign-in", None, attempt("RITA")).await.0,
            401
        );
    }
    let resp = s
        .http
        .post(format!("{}/v1/auth/sign-in", s.base))
        .json(&attempt("rita"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "busy");
    // Other accounts from the same address: two more, then the address is full.
    assert_eq!(
        s.post("/v1/auth/sign-in", None, attempt("nobody1")).await.0,
        401
    );
    assert_eq!(
        s.post("/v1/auth/sign-in", None, attempt("nobody2")).await.0,
        429
    );
}

#[tokio::test]
async fn a_mutation_id_belongs_to_one_clinic_and_one_workstation() {
    let db = TestDb::new().await;
    let north = clinic_server::users::create_clinic(&db.pool, "north", "North branch")
        .await
        .unwrap();
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let oleg_admin = db.user(north, "olga", Role::Admin).await;
    let oleg = db.user(north, "oleg", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let ws2 = s.enroll(&s.sign_in("alice").await.access_token).await;
    let north_ws = s.enroll(&s.tokens_for(oleg_admin).await.access_token).await;
    let rita_t = s.sign_in("rita").await.access_token;
    let oleg_t = s.tokens_for(oleg).await.access_token;

    let first = patient_create(rita, Uuid::now_v7(), 1, "Ivanova");
    let r = s.push(&rita_t, ws, vec![first.clone()]).await;
    assert_eq!(outcome(&r, 0).0, "applied");

    // The same id for another patient, later: refused, never "applied".
    let mut reuse = patient_create(rita, Uuid::now_v7(), 2, "Petrova");
    reuse["mutation_id"] = first["mutation_id"].clone();
    let r = s.push(&rita_t, ws, vec![reuse.clone()]).await;
    assert_eq!(
        outcome(&r, 0),
        ("rejected".into(), "mutation_id_reused".into())
    );
    // From another workstation of the clinic, even with the same content.
    let r = s.push(&rita_t, ws2, vec![first.clone()]).await;
    assert_eq!(
        outcome(&r, 0),
        ("rejected".into(), "mutation_id_reused".into())
    );
    // A replay from its own workstation still gets its stored answer.
    let r = s.push(&rita_t, ws, vec![first.clone()]).await;
    assert_eq!(outcome(&r, 0).0, "applied");

    // Another clinic's id is nothing to this clinic: its own change applies.
    let mut theirs = patient_create(oleg, Uuid::now_v7(), 1, "Sidorova");
    theirs["mutation_id"] = first["mutation_id"].clone();
    let r = s.push(&oleg_t, north_ws, vec![theirs]).await;
    assert_eq!(outcome(&r, 0).0, "applied", "{}", r.1);

    // The same id twice in one push: no 500, on the first try or a retry.
    let twin = patient_create(rita, Uuid::now_v7(), 3, "Smith");
    let mut other = patient_create(rita, Uuid::now_v7(), 4, "Jones");
    other["mutation_id"] = twin["mutation_id"].clone();
    for _ in 0..2 {
        let r = s
            .push(&rita_t, ws, vec![twin.clone(), twin.clone(), other.clone()])
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(outcome(&r, 0).0, "applied");
        assert_eq!(outcome(&r, 1).0, "applied");
        assert_eq!(
            outcome(&r, 2),
            ("rejected".into(), "mutation_id_reused".into())
        );
    }
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM patients WHERE clinic_id = $1")
        .bind(db.clinic_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 2, "Ivanova and Smith; nothing else");
}

#[tokio::test]
async fn another_clinics_ids_are_as_if_they_did_not_exist() {
    let db = TestDb::new().await;
    let north = clinic_server::users::create_clinic(&db.pool, "north", "North branch")
        .await
        .unwrap();
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    db.user(db.clinic_id, "nina", Role::Nurse).await;
    let olga = db.user(north, "olga", Role::Admin).await;
    let oleg = db.user(north, "oleg", Role::Reception).await;
    let nadia = db.user(north, "nadia", Role::Nurse).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let north_ws = s.enroll(&s.tokens_for(olga).await.access_token).await;
    let rita_t = s.sign_in("rita").await.access_token;
    let nina_t = s.sign_in("nina").await.access_token;
    let oleg_t = s.tokens_for(oleg).await.access_token;
    let nadia_t = s.tokens_for(nadia).await.access_token;

    let ours = Uuid::now_v7();
    let r = s
        .push(&rita_t, ws, vec![patient_create(rita, ours, 1, "Ivanova")])
        .await;
    assert_eq!(outcome(&r, 0).0, "applied");

    // North registers its own patient under the same id: an ordinary create.
    let r = s
        .push(
            &oleg_t,
            north_ws,
            vec![patient_create(oleg, ours, 1, "Sidorova")],
        )
        .await;
    assert_eq!(outcome(&r, 0).0, "applied", "{}", r.1);
    // A record of North merged into our patient: there is no such patient there.
    let mut merged = patient(&mrn("KAB", 2), "Petrova");
    merged["status"] = json!("merged");
    merged["merged_into"] = json!(Uuid::now_v7());
    let r = s
        .push(
            &oleg_t,
            north_ws,
            vec![mutation(
                oleg,
                Uuid::now_v7(),
                "patient",
                "create",
                None,
                merged.clone(),
            )],
        )
        .await;
    assert_eq!(outcome(&r, 0), ("rejected".into(), "not_found".into()));
    let (ours_name,): (String,) = sqlx::query_as(
        "SELECT data->>'family_name' FROM patients WHERE id = $1 AND clinic_id = $2",
    )
    .bind(ours)
    .bind(db.clinic_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(ours_name, "Ivanova", "our record is untouched");

    // Vitals: the same event id in two clinics are two events.
    let event = Uuid::now_v7();
    let vitals = json!({"id": event, "recorded_at": chrono::Utc::now(), "data": {"pulse_bpm": 70}});
    let r = s
        .post(
            &format!("/v1/patients/{ours}/vitals"),
            Some(&nina_t),
            vitals.clone(),
        )
        .await;
    assert_eq!(r.0, 201, "{}", r.1);
    let r = s
        .post(
            &format!("/v1/patients/{ours}/vitals"),
            Some(&nadia_t),
            vitals,
        )
        .await;
    assert_eq!(r.0, 201, "north's own patient with the same id; {}", r.1);
}

#[tokio::test]
async fn nul_characters_are_refused_per_mutation_and_never_cause_a_500() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let t = s.sign_in("rita").await.access_token;
    let mut bad_sex = patient(&mrn("KAB", 1), "Ivanova");
    bad_sex["sex"] = json!("fe\u{0}male");
    let good = patient_create(rita, Uuid::now_v7(), 2, "Petrova");
    let batch = vec![
        mutation(
            rita,
            Uuid::now_v7(),
            "pat\u{0}ient",
            "create",
            None,
            patient(&mrn("KAB", 3), "A"),
        ),
        mutation(
            rita,
            Uuid::now_v7(),
            "patient",
            "cre\u{0}ate",
            None,
            patient(&mrn("KAB", 4), "B"),
        ),
        mutation(rita, Uuid::now_v7(), "patient", "create", None, bad_sex),
        good,
    ];
    for _ in 0..2 {
        let r = s.push(&t, ws, batch.clone()).await;
        assert_eq!(r.0, 200, "{}", r.1);
        for i in 0..3 {
            assert_eq!(outcome(&r, i), ("rejected".into(), "malformed".into()));
        }
        assert_eq!(outcome(&r, 3).0, "applied");
    }
    let sign_in = s
        .post(
            "/v1/auth/sign-in",
            None,
            json!({"clinic": "cen\u{0}tral", "username": "ri\u{0}ta", "password": "x"}),
        )
        .await;
    assert_eq!(code(&sign_in), (400, Some("bad_request")));
    let q = s.get("/v1/patients?q=%00abc", Some(&t)).await;
    assert_eq!(code(&q), (400, Some("bad_request")));
}

#[tokio::test]
async fn no_rejection_message_echoes_what_was_sent() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let t = s.sign_in("rita").await.access_token;
    let secret = "Ivanova Maria 1980-03-21";
    let mut p = patient(&mrn("KAB", 1), "Ivanova");
    p["sex"] = json!(secret);
    let r = s
        .push(
            &t,
            ws,
            vec![mutation(rita, Uuid::now_v7(), "patient", "create", None, p)],
        )
        .await;
    let message = r.1["outcomes"][0]["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("Ivanova"), "{message}");
    assert!(message.contains("`female`"), "names the rule: {message}");
    assert!(message.contains("sex: "), "names the field: {message}");
    let (stored,): (String,) = sqlx::query_as("SELECT message FROM mutation_results")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(!stored.contains("Ivanova"));
    let r = s
        .post(
            "/v1/patients",
            Some(&t),
            json!({"family_name": "A", "given_name": "B", "sex": secret, "birth_date": "1980-01-01"}),
        )
        .await;
    assert_eq!(r.0, 400);
    let message = r.1["message"].as_str().unwrap();
    assert!(!message.contains("Ivanova"), "{message}");
    assert!(message.contains("sex"), "names the field: {message}");
}

#[tokio::test]
async fn bodies_must_be_json_objects_with_known_fields_and_plausible_dates() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    db.user(db.clinic_id, "nina", Role::Nurse).await;
    let s = TestServer::start(&db).await;
    let alice_t = s.sign_in("alice").await.access_token;
    let r = s
        .send(
            Method::PATCH,
            &format!("/v1/users/{rita}"),
            Some(&alice_t),
            json!([null, null]),
        )
        .await;
    assert_eq!(code(&r), (400, Some("bad_request")));
    let r = s
        .post(
            "/v1/patients",
            Some(&alice_t),
            json!({"family_name": "A", "given_name": "B", "sex": "female",
                   "birth_date": "1980-01-01", "is_admin": true}),
        )
        .await;
    assert_eq!(code(&r), (400, Some("bad_request")));
    let r = s
        .post(
            "/v1/patients",
            Some(&alice_t),
            json!({"family_name": "A", "given_name": "B", "sex": "female", "birth_date": "1980-01-01"}),
        )
        .await;
    assert_eq!(r.0, 201, "{}", r.1);
    let pid = r.1["id"].as_str().unwrap().to_owned();
    let nina_t = s.sign_in("nina").await.access_token;
    let r = s
        .post(
            &format!("/v1/patients/{pid}/vitals"),
            Some(&nina_t),
            json!({"id": Uuid::now_v7(), "recorded_at": "0000-01-01T00:00:00Z", "data": {"pulse_bpm": 70}}),
        )
        .await;
    assert_eq!(code(&r), (422, Some("validation")));
    assert_eq!(r.1["fields"][0]["code"], "too_early");
}

/// Sends raw bytes to the server and reads the answer until it closes.
async fn raw(s: &TestServer, request: &[u8]) -> String {
    let addr = s.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn json_body(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn every_error_answer_is_json_even_those_hyper_makes() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let r = s
        .send(Method::DELETE, "/v1/patients", None, json!({}))
        .await;
    assert_eq!(code(&r), (405, Some("method_not_allowed")));
    let long = format!(
        "GET /v1/patients?q={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let too_long = raw(&s, long.as_bytes()).await;
    assert!(too_long.starts_with("HTTP/1.1 414"), "{too_long}");
    assert_eq!(json_body(&too_long)["code"], "uri_too_long");
    let bad_path = raw(&s, b"GET /v1/patients/\xff\xfe HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(bad_path.starts_with("HTTP/1.1 400"), "{bad_path}");
    assert_eq!(json_body(&bad_path)["code"], "bad_request");
}

#[tokio::test]
async fn oversized_and_half_sent_requests_are_cut_off() {
    let db = TestDb::new().await;
    let s = TestServer::start_with(&db, |c| c.request_timeout_seconds = 1).await;
    // A declared 10 GiB body is refused before any of it is sent.
    let big = raw(
        &s,
        b"POST /v1/auth/sign-in HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 10737418240\r\n\r\n",
    )
    .await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert_eq!(json_body(&big)["code"], "too_large");
    // Half a request head: the connection is closed after the timeout.
    let started = std::time::Instant::now();
    let half = raw(&s, b"GET /v1/patients HTTP/1.1\r\nhost: x\r\n").await;
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed by the server"
    );
    assert!(!half.starts_with("HTTP/1.1 200"), "{half}");
    // Half a body: the request fails and the connection ends.
    let started = std::time::Instant::now();
    let body = raw(
        &s,
        b"POST /v1/auth/sign-in HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"clinic\":",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed by the server"
    );
    assert!(body.starts_with("HTTP/1.1 4"), "{body}");
}

#[tokio::test]
async fn one_workstation_flooding_pushes_is_told_to_wait_and_others_are_served() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    db.user(db.clinic_id, "dana", Role::Doctor).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let rita_t = s.sign_in("rita").await.access_token;
    let dana_t = s.sign_in("dana").await.access_token;
    let mut n = 0;
    let pushes: Vec<_> = (0..60)
        .map(|_| {
            let mutations: Vec<Value> = (0..200)
                .map(|_| {
                    n += 1;
                    mutation(
                        rita,
                        Uuid::now_v7(),
                        "patient",
                        "create",
                        None,
                        patient(&mrn("KAB", n), "Flood"),
                    )
                })
                .collect();
            s.push(&rita_t, ws, mutations)
        })
        .collect();
    // Another user, within her share of four requests at once.
    let reads: Vec<_> = (0..4)
        .map(|_| s.get("/v1/patients?q=flo", Some(&dana_t)))
        .collect();
    let (pushed, read) = tokio::join!(join_all(pushes), join_all(reads));
    let statuses: Vec<u16> = pushed.iter().map(|r| r.0).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "the flood is told to wait");
    assert!(statuses.contains(&200), "and some of it gets in");
    assert!(
        pushed
            .iter()
            .filter(|r| r.0 == 429)
            .all(|r| r.1["code"] == "busy"),
        "429s say why"
    );
    let read_statuses: Vec<u16> = read.iter().map(|r| r.0).collect();
    assert!(read_statuses.iter().all(|s| *s == 200), "{read_statuses:?}");
}

/// Every operation in the OpenAPI document, with a NUL character in every
/// query parameter and in every string property of its body: never a 5xx,
/// always a JSON `{code}`. New endpoints are covered without being listed.
#[tokio::test]
async fn nul_in_any_documented_field_of_any_endpoint_is_a_4xx() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let s = TestServer::start(&db).await;
    let t = s.sign_in("alice").await.access_token;
    let (_, doc) = s.get("/openapi.json", None).await;
    let schemas = doc["components"]["schemas"].clone();
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => schemas[r.rsplit('/').next().unwrap()].clone(),
            None => schema.clone(),
        }
    };
    let mut tried = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    Uuid::now_v7().to_string()
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        if path == "/v1/sync/events" {
            continue; // a stream: its 200 never ends
        }
        for (method, op) in ops.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let queries: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| format!("{}=%00x", p["name"].as_str().unwrap()))
                .collect();
            let body_schema = resolve(&op["requestBody"]["content"]["application/json"]["schema"]);
            let strings: Vec<String> = body_schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, p)| {
                    let p = resolve(p);
                    p["type"] == "string"
                        || p["type"]
                            .as_array()
                            .is_some_and(|t| t.contains(&json!("string")))
                })
                .map(|(k, _)| k.clone())
                .collect();
            let mut cases: Vec<(String, Value)> = Vec::new();
            if !queries.is_empty() {
                cases.push((format!("{concrete}?{}", queries.join("&")), json!({})));
            }
            for field in &strings {
                cases.push((concrete.clone(), json!({ field: "a\u{0}b" })));
            }
            for (url, body) in cases {
                let r = s.send(method.clone(), &url, Some(&t), body.clone()).await;
                assert!(
                    (400..500).contains(&r.0) && r.1["code"].is_string(),
                    "{method} {url} {body}: {} {}",
                    r.0,
                    r.1
                );
                tried += 1;
            }
        }
    }
    assert!(
        tried >= 15,
        "the document's operations were tried ({tried})"
    );
}

#[tokio::test]
async fn a_merge_is_the_desks_or_the_admins_and_its_reason_is_checked() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let doc = db.user(db.clinic_id, "dora", Role::Doctor).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let rita_t = s.sign_in("rita").await.access_token;
    let dora_t = s.sign_in("dora").await.access_token;
    let (keep, twin) = (Uuid::now_v7(), Uuid::now_v7());
    let created = s
        .push(
            &rita_t,
            ws,
            vec![
                patient_create(rita, keep, 1, "Smith"),
                patient_create(rita, twin, 2, "Smith"),
            ],
        )
        .await;
    assert_eq!(outcome(&created, 1).0, "applied", "{}", created.1);
    let merge = |user: Uuid, reason: Value| {
        mutation(
            user,
            keep,
            "patient",
            "merge",
            Some(1),
            json!({"keep": keep, "merge": twin, "keep_fields": patient(&mrn("KAB", 1), "Smith"), "reason": reason}),
        )
    };
    let by_doctor = s
        .push(&dora_t, ws, vec![merge(doc, json!("Same passport"))])
        .await;
    assert_eq!(outcome(&by_doctor, 0).0, "rejected", "{}", by_doctor.1);
    assert_eq!(
        by_doctor.1["outcomes"][0]["code"], "forbidden",
        "{}",
        by_doctor.1
    );
    let too_long = s
        .push(&rita_t, ws, vec![merge(rita, json!("x".repeat(501)))])
        .await;
    assert_eq!(
        too_long.1["outcomes"][0]["code"], "validation",
        "{}",
        too_long.1
    );
    let ok = s
        .push(&rita_t, ws, vec![merge(rita, json!("Same passport"))])
        .await;
    assert_eq!(outcome(&ok, 0).0, "applied", "{}", ok.1);
}
