//! The server against a real PostgreSQL on loopback.

mod hardening;
mod openapi;
mod records;
mod support;

use clinic_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use uuid::Uuid;

#[tokio::test]
async fn health_and_ready_answer() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    assert_eq!(s.get("/health", None).await, (200, json!({"status": "ok"})));
    assert_eq!(s.get("/ready", None).await.0, 200);
    let missing = s.get("/v1/nothing-here", None).await;
    assert_eq!(code(&missing), (404, Some("not_found")));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "rita", Role::Reception).await;
    // No grace period: any second use is a copy.
    let s = TestServer::start_with(&db, |c| c.refresh_reuse_grace_seconds = 0).await;
    let first = s.sign_in("rita").await;
    assert_eq!(
        s.get("/v1/me", Some(&first.access_token)).await.1["username"],
        "rita"
    );

    let second = s.refresh(&first.refresh_token).await;
    assert_eq!(second.0, 200);
    let second_refresh = second.1["refresh_token"].as_str().unwrap().to_owned();
    // The first token was used: presenting it again is theft, and ends the family.
    let replay = s.refresh(&first.refresh_token).await;
    assert_eq!(code(&replay), (401, Some("unauthenticated")));
    let after = s.refresh(&second_refresh).await;
    assert_eq!(after.0, 401, "the whole family is revoked");

    // Sign-out revokes too.
    let third = s.sign_in("rita").await;
    assert_eq!(
        s.post(
            "/v1/auth/sign-out",
            None,
            json!({"refresh_token": third.refresh_token})
        )
        .await
        .0,
        204
    );
    assert_eq!(s.refresh(&third.refresh_token).await.0, 401);
}

#[tokio::test]
async fn a_refresh_retried_after_a_lost_answer_still_works() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let first = s.sign_in("rita").await;
    let body = json!({"refresh_token": first.refresh_token});
    let lost = s.post("/v1/auth/refresh", None, body.clone()).await;
    assert_eq!(lost.0, 200);
    // The answer never arrived; the workstation asks again with the same token.
    let retry = s.post("/v1/auth/refresh", None, body).await;
    assert_eq!(retry.0, 200, "{}", retry.1);
    let next = retry.1["refresh_token"].as_str().unwrap();
    assert_ne!(next, lost.1["refresh_token"].as_str().unwrap());
    assert_eq!(s.refresh(next).await.0, 200);
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let wrong = json!({"clinic": "central", "username": "rita", "password": "wrong-password-1"});
    for _ in 0..4 {
        let r = s.post("/v1/auth/sign-in", None, wrong.clone()).await;
        assert_eq!(code(&r), (401, Some("invalid_credentials")));
    }
    let fifth = s.post("/v1/auth/sign-in", None, wrong).await;
    assert_eq!(code(&fifth), (403, Some("account_locked")));
    let right = s
        .post(
            "/v1/auth/sign-in",
            None,
            json!({"clinic": "central", "username": "rita", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        right.1["code"], "account_locked",
        "even the right password waits out the lock"
    );
}

#[tokio::test]
async fn every_endpoint_refuses_missing_expired_and_forged_tokens() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    // An expired token signed with the real secret.
    let short = TestServer::start_with(&db, |c| c.access_token_minutes = 1).await;
    let t = short.sign_in("rita").await.access_token;
    let forged = format!("{}x", t);
    let id = Uuid::now_v7();
    let protected: Vec<(Method, String)> = vec![
        (Method::GET, "/v1/me".into()),
        (Method::POST, "/v1/workstations".into()),
        (Method::POST, "/v1/sync/push".into()),
        (Method::GET, "/v1/sync/pull".into()),
        (Method::GET, "/v1/sync/events".into()),
        (Method::GET, "/v1/patients".into()),
        (Method::POST, "/v1/patients".into()),
        (Method::GET, format!("/v1/patients/{id}")),
        (Method::GET, format!("/v1/patients/{id}/vitals")),
        (Method::POST, format!("/v1/patients/{id}/vitals")),
        (Method::GET, format!("/v1/patients/{id}/labs")),
        (Method::POST, format!("/v1/patients/{id}/labs")),
        (Method::GET, "/v1/users".into()),
        (Method::POST, "/v1/users".into()),
        (Method::PATCH, format!("/v1/users/{id}")),
        (Method::POST, format!("/v1/users/{id}/password")),
        (Method::GET, "/v1/conflicts".into()),
    ];
    for (method, path) in &protected {
        for token in [None, Some(forged.as_str())] {
            let r = s.send(method.clone(), path, token, json!({})).await;
            assert_eq!(
                r.0,
                401,
                "{method} {path} with {:?}",
                token.map(|_| "forged")
            );
            assert_eq!(r.1["code"], "unauthenticated");
        }
    }
    // Expire it: check with a server whose clock is the same but the token is
    // minted already expired (1-minute token checked after its expiry would
    // need a minute's wait; sign a token with exp in the past instead).
    let expired = expired_token(&db).await;
    // Refused for its expiry, not its form.
    assert_eq!(
        s.get("/v1/me", Some(&expired)).await.1["message"],
        "sign in first: token expired"
    );
    for (method, path) in &protected {
        let r = s
            .send(method.clone(), path, Some(&expired), json!({}))
            .await;
        assert_eq!(r.0, 401, "{method} {path} with an expired token");
    }
}

/// A token for a real user of the clinic whose expiry has passed, signed
/// with the real secret and key id: only `exp` is wrong.
async fn expired_token(db: &TestDb) -> String {
    let (user, ver): (Uuid, i64) = sqlx::query_as("SELECT id, auth_version FROM users LIMIT 1")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "clinic-server", "aud": "clinic-workstation",
        "sub": user, "clinic": db.clinic_id, "role": "admin", "ver": ver,
        "iat": now - 65, "exp": now - 5,
    });
    jwt(&claims, SECRET)
}

/// `claims` signed HS256 with `secret`, its key id in the header (the first
/// 8 hex digits of the secret's SHA-256, as documented).
fn jwt(claims: &Value, secret: &str) -> String {
    use sha2::Digest;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let digest = sha2::Sha256::digest(secret.as_bytes());
    header.kid = Some(digest[..4].iter().map(|b| format!("{b:02x}")).collect());
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test]
async fn a_rotated_secret_keeps_its_tokens_until_it_is_removed() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "rita", Role::Reception).await;
    let new_secret = "the-next-secret-the-next-secret-0123";
    let old = TestServer::start(&db).await;
    let old_t = old.sign_in("rita").await.access_token;
    // Rotation: the new secret signs, the old one is still accepted.
    let rotated = TestServer::start_with(&db, |c| {
        c.token_secret = new_secret.into();
        c.previous_token_secrets = vec![SECRET.into()];
    })
    .await;
    assert_eq!(
        rotated.get("/v1/me", Some(&old_t)).await.1["username"],
        "rita"
    );
    let new_t = rotated.sign_in("rita").await.access_token;
    assert_eq!(
        rotated.get("/v1/me", Some(&new_t)).await.1["username"],
        "rita"
    );
    // A token made by any JWT library with the secret is as good.
    let (user,): (Uuid,) = sqlx::query_as("SELECT id FROM users WHERE username = 'rita'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": "clinic-server", "aud": "clinic-workstation",
        "sub": user, "clinic": db.clinic_id, "role": "reception", "ver": 1,
        "iat": now, "exp": now + 60,
    });
    assert_eq!(
        rotated
            .get("/v1/me", Some(&jwt(&claims, new_secret)))
            .await
            .0,
        200
    );
    // Another audience is refused.
    claims["aud"] = "someone-else".into();
    assert_eq!(
        rotated
            .get("/v1/me", Some(&jwt(&claims, new_secret)))
            .await
            .0,
        401
    );
    // The old secret removed: its tokens are refused, the new ones hold.
    let done = TestServer::start_with(&db, |c| c.token_secret = new_secret.into()).await;
    let r = done.get("/v1/me", Some(&old_t)).await;
    assert_eq!(code(&r), (401, Some("unauthenticated")));
    assert_eq!(r.1["message"], "sign in first: invalid token");
    assert_eq!(done.get("/v1/me", Some(&new_t)).await.1["username"], "rita");
}

#[tokio::test]
async fn roles_and_clinics_are_enforced_on_the_server() {
    let db = TestDb::new().await;
    let other_clinic = clinic_server::users::create_clinic(&db.pool, "north", "North branch")
        .await
        .unwrap();
    let admin = db.user(db.clinic_id, "alice", Role::Admin).await;
    let reception = db.user(db.clinic_id, "rita", Role::Reception).await;
    let nurse = db.user(db.clinic_id, "nina", Role::Nurse).await;
    db.user(other_clinic, "oleg", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let admin_t = s.sign_in("alice").await.access_token;
    let rita_t = s.sign_in("rita").await.access_token;
    let nina_t = s.sign_in("nina").await.access_token;
    let ws = s.enroll(&admin_t).await;

    // Reception registers a patient.
    let pid = Uuid::now_v7();
    let r = s
        .push(
            &rita_t,
            ws,
            vec![patient_create(reception, pid, 1, "Ivanova")],
        )
        .await;
    assert_eq!(r.1["outcomes"][0]["status"], "applied", "{}", r.1);

    // A nurse's workstation cannot push a demographic change, even patched.
    let edit = json!({"changed": ["family_name"], "base": {"family_name": "Ivanova"}, "fields": {"family_name": "Petrova"}});
    let r = s
        .push(
            &nina_t,
            ws,
            vec![mutation(
                nurse,
                pid,
                "patient",
                "update",
                Some(1),
                edit.clone(),
            )],
        )
        .await;
    assert_eq!(r.1["outcomes"][0]["status"], "rejected");
    assert_eq!(r.1["outcomes"][0]["code"], "forbidden");
    // Nor pass the change off as reception's.
    let r = s
        .push(
            &nina_t,
            ws,
            vec![mutation(reception, pid, "patient", "update", Some(1), edit)],
        )
        .await;
    assert_eq!(r.0, 403);
    // Nurses may not manage users; reception may not enrol workstations.
    assert_eq!(s.get("/v1/users", Some(&nina_t)).await.0, 403);
    assert_eq!(
        s.post(
            "/v1/workstations",
            Some(&rita_t),
            json!({"workstation_id": Uuid::now_v7(), "name": "x", "mrn_prefix": "KAC"})
        )
        .await
        .0,
        403
    );
    // Reception may not read clinical data; nurses may record vitals.
    assert_eq!(
        s.get(&format!("/v1/patients/{pid}/vitals"), Some(&rita_t))
            .await
            .0,
        403
    );
    let vit = json!({"id": Uuid::now_v7(), "recorded_at": chrono::Utc::now(), "data": {"temperature_c": 36.8, "pulse_bpm": 70}});
    assert_eq!(
        s.post(
            &format!("/v1/patients/{pid}/vitals"),
            Some(&nina_t),
            vit.clone()
        )
        .await
        .0,
        201
    );
    assert_eq!(
        s.post(&format!("/v1/patients/{pid}/vitals"), Some(&nina_t), vit)
            .await
            .0,
        200,
        "same id: recorded once"
    );
    assert_eq!(
        s.get(&format!("/v1/patients/{pid}/vitals"), Some(&nina_t))
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Another clinic sees nothing of this one.
    let oleg_t = s
        .post(
            "/v1/auth/sign-in",
            None,
            json!({"clinic": "north", "username": "oleg", "password": PASSWORD}),
        )
        .await
        .1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.get(&format!("/v1/patients/{pid}"), Some(&oleg_t)).await.0,
        404
    );
    assert_eq!(
        s.get("/v1/sync/pull", Some(&oleg_t)).await.1["changes"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only oleg's own user row"
    );
    let r = s.push(&oleg_t, ws, vec![]).await;
    assert_eq!(r.0, 403, "a workstation of another clinic");
    let _ = admin;
}

#[tokio::test]
async fn a_replayed_push_changes_nothing_and_a_rejection_does_not_block_the_rest() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let t = s.sign_in("rita").await.access_token;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut bad = patient(&mrn("KAB", 2), "");
    bad["birth_date"] = json!("2999-01-01");
    let batch = vec![
        patient_create(rita, a, 1, "Ivanova"),
        mutation(rita, Uuid::now_v7(), "patient", "create", None, bad),
        patient_create(rita, b, 3, "Smith"),
    ];
    let first = s.push(&t, ws, batch.clone()).await;
    assert_eq!(first.0, 200);
    assert_eq!(statuses(&first), ["applied", "rejected", "applied"]);
    assert_eq!(first.1["outcomes"][1]["code"], "validation");
    let again = s.push(&t, ws, batch).await;
    assert_eq!(again.1, first.1, "the stored outcomes come back");
    let (patients,): (i64,) = sqlx::query_as("SELECT count(*) FROM patients")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let (changes,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM change_log WHERE entity = 'patient'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((patients, changes), (2, 2));
}

#[tokio::test]
async fn concurrent_edits_merge_per_field_and_the_loser_is_kept_as_a_conflict() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let t = s.sign_in("rita").await.access_token;
    let id = Uuid::now_v7();
    s.push(&t, ws, vec![patient_create(rita, id, 1, "Ivanova")])
        .await;
    // Workstation A renames and moves her; B, from the same base, renames too and adds a note.
    let a = json!({"changed": ["family_name", "address"], "base": {"family_name": "Ivanova", "address": "Lenina 1"},
                   "fields": {"family_name": "Petrova", "address": "Mira 5"}});
    let b = json!({"changed": ["family_name", "notes"], "base": {"family_name": "Ivanova", "notes": null},
                   "fields": {"family_name": "Sidorova", "notes": "prefers mornings"}});
    let ra = s
        .push(
            &t,
            ws,
            vec![mutation(rita, id, "patient", "update", Some(1), a)],
        )
        .await;
    assert_eq!(ra.1["outcomes"][0]["status"], "applied");
    let rb = s
        .push(
            &t,
            ws,
            vec![mutation(rita, id, "patient", "update", Some(1), b)],
        )
        .await;
    assert_eq!(rb.1["outcomes"][0]["status"], "conflict");
    assert_eq!(rb.1["outcomes"][0]["conflicts"], json!(["family_name"]));
    let p = s.get(&format!("/v1/patients/{id}"), Some(&t)).await.1;
    assert_eq!(
        (
            p["family_name"].as_str(),
            p["address"].as_str(),
            p["notes"].as_str()
        ),
        (Some("Petrova"), Some("Mira 5"), Some("prefers mornings"))
    );
    assert_eq!(p["version"], 3);
    let conflicts = s.get("/v1/conflicts", Some(&t)).await.1;
    assert_eq!(conflicts.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            conflicts[0]["server_value"].as_str(),
            conflicts[0]["client_value"].as_str()
        ),
        (Some("Petrova"), Some("Sidorova"))
    );

    // Reception settles it for the losing value: a new version, the conflict closed.
    let cid: Uuid = serde_json::from_value(conflicts[0]["id"].clone()).unwrap();
    let r = s
        .push(
            &t,
            ws,
            vec![mutation(
                rita,
                cid,
                "patient_conflict",
                "resolve",
                None,
                json!({"choice": "client"}),
            )],
        )
        .await;
    assert_eq!(r.1["outcomes"][0]["status"], "applied", "{}", r.1);
    let p = s.get(&format!("/v1/patients/{id}"), Some(&t)).await.1;
    assert_eq!(
        (p["family_name"].as_str(), p["version"].as_i64()),
        (Some("Sidorova"), Some(4))
    );
    assert!(
        s.get("/v1/conflicts", Some(&t))
            .await
            .1
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_refused_change_sends_its_record_again_to_the_feed() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let t = s.sign_in("rita").await.access_token;
    let id = Uuid::now_v7();
    let create = patient_create(rita, id, 1, "Ivanova");
    s.push(&t, ws, vec![create]).await;
    for family in ["Petrova", "Sidorova"] {
        let edit = json!({"changed": ["family_name"], "base": {"family_name": "Ivanova"},
                          "fields": {"family_name": family}});
        let m = mutation(rita, id, "patient", "update", Some(1), edit);
        s.push(&t, ws, vec![m]).await;
    }
    let conflicts = s.get("/v1/conflicts", Some(&t)).await.1;
    let cid: Uuid = serde_json::from_value(conflicts[0]["id"].clone()).unwrap();

    // Two workstations settle it, each its own way; the second comes too late.
    let mut statuses = Vec::new();
    for choice in ["server", "client"] {
        let m = mutation(
            rita,
            cid,
            "patient_conflict",
            "resolve",
            None,
            json!({ "choice": choice }),
        );
        let r = s.push(&t, ws, vec![m]).await;
        statuses.push(r.1["outcomes"][0]["status"].clone());
    }
    assert_eq!(statuses, [json!("applied"), json!("rejected")]);
    // The workstation that kept the losing name locally finds the record
    // as the server has it at the end of the feed.
    let feed = s.get("/v1/sync/pull?after=0&limit=100", Some(&t)).await.1;
    let last = feed["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["entity"].as_str(),
            last["mutation_id"].is_null(),
            last["data"]["family_name"].as_str(),
            last["version"].as_i64()
        ),
        (Some("patient"), true, Some("Petrova"), Some(2))
    );
}

#[tokio::test]
async fn sql_injection_strings_are_stored_as_plain_text() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let t = s.sign_in("rita").await.access_token;
    let evil = "Robert'); DROP TABLE patients;--";
    let id = Uuid::now_v7();
    let mut p = patient(&mrn("KAB", 1), evil);
    p["address"] = json!("' OR '1'='1");
    let r = s
        .push(
            &t,
            ws,
            vec![mutation(rita, id, "patient", "create", None, p)],
        )
        .await;
    assert_eq!(r.1["outcomes"][0]["status"], "applied", "{}", r.1);
    let got = s.get(&format!("/v1/patients/{id}"), Some(&t)).await.1;
    assert_eq!(
        (got["family_name"].as_str(), got["address"].as_str()),
        (Some(evil), Some("' OR '1'='1"))
    );
    let found = s
        .get("/v1/patients?q=robert%27)%3B%20drop", Some(&t))
        .await
        .1;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let none = s.get("/v1/patients?q=%25", Some(&t)).await.1;
    assert!(
        none.as_array().unwrap().is_empty(),
        "% is a character, not a wildcard"
    );
    let login = s
        .post(
            "/v1/auth/sign-in",
            None,
            json!({"clinic": "central' OR '1'='1", "username": "rita' --", "password": "x"}),
        )
        .await;
    assert_eq!(login.0, 401);
}

#[tokio::test]
async fn malformed_unknown_and_oversized_bodies_are_refused_clearly() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let raw = |body: &'static str| {
        s.http
            .post(format!("{}/v1/auth/sign-in", s.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = raw("{not json").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "bad_request");
    let r = s
        .post(
            "/v1/auth/sign-in",
            None,
            json!({"clinic": "c", "username": "u", "password": "p", "is_admin": true}),
        )
        .await;
    assert_eq!(r.0, 400);
    assert!(
        r.1["message"].as_str().unwrap().contains("is_admin"),
        "{}",
        r.1
    );
    let big = "x".repeat(300 * 1024);
    let r = s
        .post(
            "/v1/auth/sign-in",
            None,
            json!({"clinic": big, "username": "u", "password": "p"}),
        )
        .await;
    assert_eq!(code(&r), (413, Some("too_large")));
}

#[tokio::test]
async fn a_change_that_commits_late_is_not_skipped_by_the_feed() {
    use clinic_server::feed::{FeedBatch, pull};
    let db = TestDb::new().await;
    // Writer 1 takes its number and holds the counter until it commits.
    let mut tx1 = db.pool.begin().await.unwrap();
    let mut b1 = FeedBatch::default();
    b1.push(
        clinic_domain::sync::Entity::Department,
        Uuid::now_v7(),
        1,
        json!({"n": 1}),
        None,
    );
    let seq1 = b1.publish(&mut tx1, db.clinic_id).await.unwrap().unwrap();
    // Writer 2 starts after and must wait for writer 1's commit.
    let pool = db.pool.clone();
    let clinic = db.clinic_id;
    let w2 = tokio::spawn(async move {
        let mut tx2 = pool.begin().await.unwrap();
        let mut b2 = FeedBatch::default();
        b2.push(
            clinic_domain::sync::Entity::Department,
            Uuid::now_v7(),
            1,
            json!({"n": 2}),
            None,
        );
        let seq = b2.publish(&mut tx2, clinic).await.unwrap().unwrap();
        tx2.commit().await.unwrap();
        seq
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let seen = pull(&db.pool, db.clinic_id, 0, 100).await.unwrap();
    assert!(
        seen.changes.is_empty(),
        "nothing is visible before the first commit"
    );
    assert!(!w2.is_finished(), "the second writer waits for the first");
    tx1.commit().await.unwrap();
    let seq2 = w2.await.unwrap();
    assert_eq!(seq2, seq1 + 1);
    let seen = pull(&db.pool, db.clinic_id, 0, 100).await.unwrap();
    let seqs: Vec<i64> = seen.changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, vec![seq1, seq2]);
}

#[tokio::test]
async fn the_database_refuses_a_double_booking() {
    let db = TestDb::new().await;
    let doctor = db.user(db.clinic_id, "dana", Role::Doctor).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let pid = Uuid::now_v7();
    sqlx::query("INSERT INTO patients (id, clinic_id, mrn, data, version, created_at, created_by, updated_at, updated_by, workstation_id) VALUES ($1, $2, 'KAB-000001-X', '{}', 1, now(), $3, now(), $3, $3)")
        .bind(pid).bind(db.clinic_id).bind(rita).execute(&db.pool).await.unwrap();
    let book = |start: &'static str, end: &'static str, status: &'static str| {
        sqlx::query("INSERT INTO appointments (id, clinic_id, patient_id, doctor_id, starts_at, ends_at, status) VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7)")
            .bind(Uuid::now_v7()).bind(db.clinic_id).bind(pid).bind(doctor).bind(start).bind(end).bind(status)
            .execute(&db.pool)
    };
    book("2026-12-01 09:00+07", "2026-12-01 09:30+07", "booked")
        .await
        .unwrap();
    let clash = book("2026-12-01 09:15+07", "2026-12-01 09:45+07", "booked")
        .await
        .unwrap_err();
    assert_eq!(
        clash.as_database_error().unwrap().code().as_deref(),
        Some("23P01")
    );
    book("2026-12-01 09:30+07", "2026-12-01 10:00+07", "booked")
        .await
        .expect("back-to-back is fine");
    book("2026-12-01 09:00+07", "2026-12-01 09:30+07", "cancelled")
        .await
        .expect("a cancelled slot does not block");
}

#[tokio::test]
async fn two_server_processes_share_the_feed_and_the_live_channel() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let a = TestServer::start(&db).await;
    let b = TestServer::start(&db).await;
    let ws = a.enroll(&a.sign_in("alice").await.access_token).await;
    let ta = a.sign_in("rita").await.access_token;
    let tb = b.sign_in("rita").await;
    // Tokens from one process work on the other.
    assert_eq!(b.get("/v1/me", Some(&ta)).await.0, 200);
    // Listen on B, push through A.
    let mut events = b
        .http
        .get(format!("{}/v1/sync/events", b.base))
        .bearer_auth(&tb.access_token)
        .send()
        .await
        .unwrap();
    let first = String::from_utf8(events.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.contains("event: feed"), "{first}");
    let id = Uuid::now_v7();
    a.push(&ta, ws, vec![patient_create(rita, id, 1, "Ivanova")])
        .await;
    let tick = tokio::time::timeout(std::time::Duration::from_secs(5), events.chunk())
        .await
        .expect("a tick within 5 s");
    let tick = String::from_utf8(tick.unwrap().unwrap().to_vec()).unwrap();
    assert!(tick.contains("event: feed"), "{tick}");
    let pulled = b
        .get("/v1/sync/pull?after=0", Some(&tb.access_token))
        .await
        .1;
    assert!(
        pulled["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["entity_id"] == json!(id))
    );
}

#[tokio::test]
async fn a_create_that_fails_in_the_database_is_rejected_alone() {
    let db = TestDb::new().await;
    db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let ws = s.enroll(&s.sign_in("alice").await.access_token).await;
    let t = s.sign_in("rita").await.access_token;
    // Valid as a record, but the database refuses it (a constraint this
    // test adds, standing in for any failure the checks before the insert
    // did not foresee): the insert fails inside the push's transaction.
    sqlx::query(
        "ALTER TABLE patients ADD CONSTRAINT test_refuses CHECK (data->>'family_name' <> 'Orphan')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let dangling = patient(&mrn("KAB", 2), "Orphan");
    let batch = vec![
        patient_create(rita, Uuid::now_v7(), 1, "Ivanova"),
        mutation(rita, Uuid::now_v7(), "patient", "create", None, dangling),
        patient_create(rita, Uuid::now_v7(), 3, "Smith"),
    ];
    let r = s.push(&t, ws, batch).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(statuses(&r), ["applied", "rejected", "applied"]);
    assert_eq!(r.1["outcomes"][1]["code"], "server_error");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM patients")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
