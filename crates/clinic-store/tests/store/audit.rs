//! The hash-chained audit log detects tampering.

use clinic_domain::Role;
use clinic_store::Mutation;
use uuid::Uuid;

use crate::support::{TestDb, actor, fields};

#[tokio::test]
async fn the_chain_is_intact_and_a_changed_entry_is_found() {
    let db = TestDb::new().await;
    for name in ["Anna", "Boris", "Chai"] {
        db.store
            .commit(
                &actor(Role::Reception),
                Mutation::PatientCreate {
                    id: Uuid::now_v7(),
                    fields: fields("Test", name, "1970-01-01"),
                },
            )
            .await
            .unwrap();
    }
    let ok = db.store.verify_audit().await.unwrap();
    assert!(ok.is_intact(), "{ok:?}");
    assert_eq!(
        ok.entries, 4,
        "the workstation's creation and three registrations"
    );

    let mut conn = crate::support::raw_connection(db.store.path()).await;
    let blocked = sqlx::query("UPDATE audit_log SET user_name = 'someone else' WHERE seq = 3")
        .execute(&mut conn)
        .await;
    assert!(blocked.is_err(), "the table refuses updates");
    // An attacker with the file can drop the trigger; the chain still tells.
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET user_name = 'someone else' WHERE seq = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    let bad = db.store.verify_audit().await.unwrap();
    assert_eq!(bad.first_bad_seq, Some(3), "{bad:?}");

    sqlx::query("DROP TRIGGER audit_log_no_delete")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET user_name = 'test reception' WHERE seq = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        db.store.verify_audit().await.unwrap().is_intact(),
        "restored content verifies again"
    );
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        db.store.verify_audit().await.unwrap().first_bad_seq,
        Some(2),
        "a removed entry is found"
    );
}

#[tokio::test]
async fn views_are_audited_and_filterable() {
    let db = TestDb::new().await;
    let id = Uuid::now_v7();
    db.store
        .commit(
            &actor(Role::Reception),
            Mutation::PatientCreate {
                id,
                fields: fields("Test", "View", "1970-01-01"),
            },
        )
        .await
        .unwrap();
    db.store
        .commit(&actor(Role::Nurse), Mutation::PatientView { id })
        .await
        .unwrap();
    let filter = clinic_domain::audit::AuditFilter {
        entity_id: Some(id),
        action: Some(clinic_domain::audit::AuditAction::View),
        ..Default::default()
    };
    let entries = db.store.audit_entries(&filter).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].user_name, "test nurse");
    assert_eq!(entries[0].workstation_id, db.store.workstation_id());
    // The log names the patient by MRN and name, not by a cut-off id.
    let subject = entries[0]
        .subject
        .clone()
        .expect("a patient entry names its patient");
    assert_eq!(subject.id, id);
    assert_eq!(subject.name, "Test View");
    assert_eq!(subject.mrn, db.store.patient(id).await.unwrap().mrn);
    let sessions = db
        .store
        .audit_entries(&clinic_domain::audit::AuditFilter {
            entity: Some("user".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sessions.iter().all(|e| e.subject.is_none()));
}
