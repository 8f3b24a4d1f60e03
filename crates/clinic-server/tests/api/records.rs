//! The server's side of the generic record road, with departments: a pushed
//! create and update checked by the kind's rules and the pusher's role,
//! merged per field, refused visibly when both sides changed a field, and
//! published to the feed as the whole record.

use clinic_domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

/// A workstation's user pushing department changes.
struct Desk<'a> {
    s: &'a TestServer,
    token: String,
    ws: Uuid,
    user: Uuid,
}

impl Desk<'_> {
    /// Pushes one department change and returns its outcome.
    async fn push(&self, id: Uuid, op: &str, base: Option<i64>, payload: Value) -> Value {
        let m = mutation(self.user, id, "department", op, base, payload);
        let r = self
            .s
            .post(
                "/v1/sync/push",
                Some(&self.token),
                json!({"workstation_id": self.ws, "mutations": [m]}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        r.1["outcomes"][0].clone()
    }
}

/// The clinic's feed entries for `id`: (version, data).
async fn feed(s: &TestServer, token: &str, id: Uuid) -> Vec<(i64, Value)> {
    let r = s.get("/v1/sync/pull?after=0&limit=1000", Some(token)).await;
    r.1["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["entity_id"] == json!(id))
        .map(|c| (c["version"].as_i64().unwrap(), c["data"].clone()))
        .collect()
}

#[tokio::test]
async fn a_department_is_created_merged_and_refused_by_its_declaration() {
    let db = TestDb::new().await;
    let alice = db.user(db.clinic_id, "alice", Role::Admin).await;
    let rita = db.user(db.clinic_id, "rita", Role::Reception).await;
    let s = TestServer::start(&db).await;
    let admin_token = s.sign_in("alice").await.access_token;
    let ws = s.enroll(&admin_token).await;
    let admin = Desk {
        s: &s,
        token: admin_token.clone(),
        ws,
        user: alice,
    };
    let reception = Desk {
        s: &s,
        token: s.sign_in("rita").await.access_token,
        ws,
        user: rita,
    };
    let id = Uuid::now_v7();

    // The kind's rules, as the workstation has them.
    let o = admin.push(id, "create", None, json!({"name": " "})).await;
    assert_eq!(
        (o["status"].as_str(), o["code"].as_str()),
        (Some("rejected"), Some("validation"))
    );
    assert!(o["message"].as_str().unwrap().contains("name"), "{o}");
    // The kind's permission: reception does not set up the clinic.
    let o = reception
        .push(id, "create", None, json!({"name": "ENT"}))
        .await;
    assert_eq!(o["code"], "forbidden");

    let o = admin
        .push(id, "create", None, json!({"name": " Cardiology "}))
        .await;
    assert_eq!(o["status"], "applied", "{o}");
    assert_eq!(
        feed(&s, &admin_token, id).await,
        vec![(1, json!({"id": id, "version": 1, "name": "Cardiology"}))]
    );
    // The same id again, or another department with the same name.
    let o = admin.push(id, "create", None, json!({"name": "X"})).await;
    assert_eq!(o["code"], "exists");
    let o = admin
        .push(
            Uuid::now_v7(),
            "create",
            None,
            json!({"name": "Cardiology"}),
        )
        .await;
    assert_eq!(o["code"], "exists");

    // An update made on version 1 merges in.
    let rename = |from: &str, to: &str| json!({"changed": ["name"], "base": {"name": from}, "fields": {"name": to}});
    let o = admin
        .push(id, "update", Some(1), rename("Cardiology", "Heart"))
        .await;
    assert_eq!(o["status"], "applied", "{o}");
    // Another workstation's rename, also made on version 1: the field
    // changed meanwhile, so nothing is applied and the author is told.
    let o = admin
        .push(id, "update", Some(1), rename("Cardiology", "Cardio"))
        .await;
    assert_eq!(o["code"], "changed_meanwhile", "{o}");
    assert_eq!(
        feed(&s, &admin_token, id).await.last().unwrap(),
        &(2, json!({"id": id, "version": 2, "name": "Heart"}))
    );
    // An update of a department that is not there, and an operation the
    // kind does not have.
    let o = admin
        .push(Uuid::now_v7(), "update", Some(1), rename("A", "B"))
        .await;
    assert_eq!(o["code"], "not_found");
    let o = admin.push(id, "merge", None, json!({})).await;
    assert_eq!(o["code"], "unknown_mutation");
    let o = admin
        .push(id, "update", Some(2), json!({"changed": "name"}))
        .await;
    assert_eq!(o["code"], "malformed");
}
