//! The hash-chained audit log detects tampering.

use clinic_domain::Role;
use clinic_store::Mutation;

use crate::support::{TestDb, fields, raw_connection, raw_exec, raw_try};

#[tokio::test]
async fn the_chain_is_intact_and_a_changed_entry_is_found() {
    let db = TestDb::new().await;
    for name in ["Anna", "Boris", "Chai"] {
        db.register(fields("Test", name, "1970-01-01")).await;
    }
    let ok = db.store.verify_audit().await.unwrap();
    assert!(ok.is_intact(), "{ok:?}");
    assert_eq!(
        ok.entries, 4,
        "the workstation's creation and three registrations"
    );

    let mut conn = raw_connection(db.store.path()).await;
    assert!(
        raw_try(
            &mut conn,
            "UPDATE audit_log SET user_name = 'someone else' WHERE seq = 3"
        )
        .await
        .is_err(),
        "the table refuses updates"
    );
    // An attacker with the file can drop the trigger; the chain still tells.
    raw_exec(&mut conn, "DROP TRIGGER audit_log_no_update").await;
    raw_exec(
        &mut conn,
        "UPDATE audit_log SET user_name = 'someone else' WHERE seq = 3",
    )
    .await;
    let bad = db.store.verify_audit().await.unwrap();
    assert_eq!(bad.first_bad_seq, Some(3), "{bad:?}");

    raw_exec(&mut conn, "DROP TRIGGER audit_log_no_delete").await;
    raw_exec(
        &mut conn,
        "UPDATE audit_log SET user_name = 'test reception' WHERE seq = 3",
    )
    .await;
    assert!(
        db.store.verify_audit().await.unwrap().is_intact(),
        "restored content verifies again"
    );
    raw_exec(&mut conn, "DELETE FROM audit_log WHERE seq = 2").await;
    assert_eq!(
        db.store.verify_audit().await.unwrap().first_bad_seq,
        Some(2),
        "a removed entry is found"
    );
}

#[tokio::test]
async fn views_are_audited_and_filterable() {
    let db = TestDb::new().await;
    let id = db.register(fields("Test", "View", "1970-01-01")).await;
    db.commit_as(Role::Nurse, Mutation::PatientView { id })
        .await;
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
