//! The one write path: row, audit entry and outbox entry together, or nothing.

use clinic_domain::Role;
use clinic_store::{Mutation, StoreError};
use uuid::Uuid;

use crate::support::{TestDb, actor, fields};

#[tokio::test]
async fn a_registration_writes_row_audit_and_outbox_together() {
    let db = TestDb::new().await;
    let (audit0, outbox0) = (db.count("audit_log").await, db.count("outbox").await);
    let id = Uuid::now_v7();
    let done = db
        .register_as(id, fields("Иванов", "Пётр", "1980-03-21"))
        .await;
    assert_eq!(db.count("patients").await, 1);
    assert_eq!(
        db.count("audit_log").await,
        audit0 + 1,
        "one audit entry per change"
    );
    assert_eq!(
        db.count("outbox").await,
        outbox0 + 1,
        "one outbox entry per synced change"
    );
    assert!(
        done.mutation_id.is_some(),
        "a synced change carries a client mutation id"
    );
    let p = db.store.patient(id).await.unwrap();
    assert_eq!(p.version, 1);
    assert_eq!(p.workstation_id, db.store.workstation_id());
    assert!(
        clinic_domain::mrn::Mrn::parse(&p.mrn).is_some(),
        "the MRN carries a valid check character"
    );
}

#[tokio::test]
async fn a_failing_mutation_rolls_back_its_whole_batch() {
    let db = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let before = (db.count("audit_log").await, db.count("outbox").await);
    let err = db
        .store
        .commit_batch(
            &actor(Role::Reception),
            vec![
                Mutation::PatientCreate {
                    id: a,
                    fields: fields("Smith", "Anna", "1990-01-01"),
                },
                // Wrong base version: a conflict, which must undo the create too.
                Mutation::PatientUpdate {
                    id: a,
                    base_version: 7,
                    fields: fields("Smith", "Ann", "1990-01-01"),
                },
                Mutation::PatientCreate {
                    id: b,
                    fields: fields("Brown", "Tom", "1970-01-01"),
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(db.count("patients").await, 0);
    assert_eq!(
        (db.count("audit_log").await, db.count("outbox").await),
        before
    );
}

#[tokio::test]
async fn mrns_are_sequential_per_workstation_and_unique() {
    let db = TestDb::new().await;
    db.register_all(
        (0..50)
            .map(|i| fields("Walker", &format!("P{i}x"), "1980-01-01"))
            .collect(),
    )
    .await;
    db.register(fields("Walker", "Last", "1980-01-01")).await;
    let info = db.store.workstation_info().await.unwrap();
    let found = db
        .store
        .search(&format!("{}-00005", info.mrn_prefix), 100)
        .await
        .unwrap();
    let mrns: Vec<_> = found.iter().map(|p| p.mrn.clone()).collect();
    assert_eq!(
        mrns.len(),
        2,
        "sequences 50 and 51 start with 00005: {mrns:?}"
    );
    assert!(mrns[0].starts_with(&format!("{}-000050-", info.mrn_prefix)));
    assert!(mrns[1].starts_with(&format!("{}-000051-", info.mrn_prefix)));
}

#[tokio::test]
async fn patients_cannot_be_deleted_even_with_raw_sql() {
    let db = TestDb::new().await;
    db.register(fields("A", "B", "1980-01-01")).await;
    let mut conn = crate::support::raw_connection(db.store.path()).await;
    let err = sqlx::query("DELETE FROM patients")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never deleted"), "{err}");
}
