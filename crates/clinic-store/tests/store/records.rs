//! The generic record road on the workstation, with departments, its first
//! kind: validation, permission, the row, audit and outbox entries, stale
//! versions, and the server's version applied on pull under a pending edit.

use clinic_domain::audit::{AuditAction, AuditFilter};
use clinic_domain::record::Department;
use clinic_domain::sync::{Change, Entity, PullResponse, RecordEdit};
use clinic_domain::user::{Language, NewUser};
use clinic_domain::{FieldCode, Role};
use clinic_store::{Actor, Mutation, StoreError, Workstation};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestDb, raw_connection};

fn dept(name: &str) -> Department {
    Department { name: name.into() }
}

async fn admin_desk(db: &TestDb) -> Workstation {
    let ws = Workstation::new(db.store.clone()).await.unwrap();
    ws.setup_admin(NewUser {
        username: "admin".into(),
        display_name: "Admin".into(),
        role: Role::Admin,
        password: "correct horse battery".into(),
        language: Language::En,
    })
    .await
    .unwrap();
    ws
}

/// The outbox entries of `id`: (op, base_version, payload).
async fn outbox(db: &TestDb, id: Uuid) -> Vec<(String, Option<i64>, Value)> {
    let rows: Vec<(String, Option<i64>, String)> = sqlx::query_as(
        "SELECT op, base_version, payload FROM outbox WHERE entity = 'department' AND entity_id = ? ORDER BY seq",
    )
    .bind(id.to_string())
    .fetch_all(&mut raw_connection(&db.path()).await)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(op, base, p)| (op, base, serde_json::from_str(&p).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_department_is_created_with_its_audit_and_outbox_entries() {
    let db = TestDb::new().await;
    let ws = admin_desk(&db).await;
    let made = ws.record_create(dept("  Cardiology ")).await.unwrap();
    assert_eq!(
        made.fields,
        dept("Cardiology"),
        "trimmed by the kind's rules"
    );
    assert_eq!(made.version, 1);
    assert_eq!(
        ws.records::<Department>().await.unwrap(),
        vec![made.clone()]
    );
    assert_eq!(
        outbox(&db, made.id).await,
        vec![("create".into(), None, json!({"name": "Cardiology"}))]
    );
    let audit = ws
        .audit_list(&AuditFilter {
            entity_id: Some(made.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let entry = audit.first().expect("an audit entry");
    assert_eq!(entry.action, AuditAction::Create);
    assert_eq!(entry.entity, "department");
    assert_eq!(
        entry.after,
        Some(json!({"name": "Cardiology", "version": 1}))
    );
}

#[tokio::test]
async fn the_kinds_rules_and_permission_hold_on_the_write_path() {
    let db = TestDb::new().await;
    let ws = admin_desk(&db).await;
    let field = |e: StoreError| match e {
        StoreError::Validation(f) => (f[0].field.clone(), f[0].code),
        e => panic!("{e:?}"),
    };
    assert_eq!(
        field(ws.record_create(dept(" ")).await.unwrap_err()),
        ("name".into(), FieldCode::Required)
    );
    assert_eq!(
        field(ws.record_create(dept("a\u{0}b")).await.unwrap_err()),
        ("name".into(), FieldCode::ControlChars)
    );
    ws.record_create(dept("ENT")).await.unwrap();
    assert_eq!(
        field(ws.record_create(dept("ENT")).await.unwrap_err()),
        ("name".into(), FieldCode::Exists)
    );
    // Reception may not set up the clinic, through any door.
    let reception = Actor {
        user_id: None,
        name: "rita".into(),
        role: Role::Reception,
    };
    let err = db
        .store
        .commit(
            &reception,
            Mutation::RecordCreate {
                entity: Entity::Department,
                id: Uuid::now_v7(),
                fields: json!({"name": "Radiology"}),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Forbidden), "{err:?}");
    // A kind that is not on the road is refused before anything is written.
    let err = db
        .store
        .commit(
            &Actor::system("test"),
            Mutation::RecordCreate {
                entity: Entity::Patient,
                id: Uuid::now_v7(),
                fields: json!({}),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Forbidden), "{err:?}");
    assert_eq!(ws.records::<Department>().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_update_is_made_on_a_version_and_goes_out_as_an_edit() {
    let db = TestDb::new().await;
    let ws = admin_desk(&db).await;
    let made = ws.record_create(dept("Cardiology")).await.unwrap();
    let renamed = ws
        .record_update(made.id, 1, dept("Cardiology and ECG"))
        .await
        .unwrap();
    assert_eq!(renamed.version, 2);
    let sent = outbox(&db, made.id).await;
    assert_eq!(sent[1].0, "update");
    assert_eq!(sent[1].1, Some(1));
    let edit: RecordEdit = serde_json::from_value(sent[1].2.clone()).unwrap();
    assert_eq!(edit.changed, ["name"]);
    assert_eq!(edit.base["name"], json!("Cardiology"));
    assert_eq!(edit.fields, json!({"name": "Cardiology and ECG"}));
    // Made on a version that is gone: a conflict, nothing written.
    let err = ws
        .record_update(made.id, 1, dept("Heart"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    // The same fields again: nothing to write, nothing to send.
    ws.record_update(made.id, 2, dept("Cardiology and ECG"))
        .await
        .unwrap();
    assert_eq!(outbox(&db, made.id).await.len(), 2);
    assert_eq!(
        ws.store()
            .record::<Department>(made.id)
            .await
            .unwrap()
            .version,
        2
    );
}

#[tokio::test]
async fn a_pulled_version_keeps_a_pending_local_edit_on_top() {
    let db = TestDb::new().await;
    let ws = admin_desk(&db).await;
    let made = ws.record_create(dept("Cardiology")).await.unwrap();
    ws.record_update(made.id, 1, dept("Heart")).await.unwrap();
    // The server's version 2 (another workstation's rename) arrives while
    // this workstation's rename is still pending.
    let page = PullResponse {
        changes: vec![
            Change {
                seq: 1,
                entity: "department".into(),
                entity_id: made.id,
                version: 2,
                data: json!({"id": made.id, "version": 2, "name": "Cardiology dept."}),
                mutation_id: None,
            },
            Change {
                seq: 2,
                entity: "department".into(),
                entity_id: Uuid::now_v7(),
                version: 1,
                data: json!({"id": Uuid::nil(), "version": 1, "name": "Neurology"}),
                mutation_id: None,
            },
        ],
        cursor: 2,
        has_more: false,
        epoch: Uuid::now_v7(),
    };
    let sync = Actor::system("sync");
    db.store
        .commit(
            &sync,
            Mutation::SyncConfigure {
                server_url: "http://localhost:9".into(),
                clinic_code: "central".into(),
            },
        )
        .await
        .unwrap();
    db.store
        .commit(&sync, Mutation::SyncApply { page })
        .await
        .unwrap();
    let all = ws.records::<Department>().await.unwrap();
    let names: Vec<&str> = all.iter().map(|r| r.fields.name.as_str()).collect();
    assert_eq!(
        names,
        ["Heart", "Neurology"],
        "the pending rename stays on top"
    );
    assert_eq!(all[0].version, 2, "at the server's version");
}
