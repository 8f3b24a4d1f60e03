//! Duplicates, merge and history.

use clinic_domain::Role;
use clinic_domain::patient::{DuplicateReason, PatientStatus};
use clinic_store::Mutation;

use crate::support::{TestDb, actor, fields};

#[tokio::test]
async fn duplicates_are_found_by_id_phone_and_folded_name() {
    let db = TestDb::new().await;
    let mut f = fields("Иванов", "Пётр", "1980-03-21");
    f.phones = vec!["+7 (912) 345-67-89".into()];
    f.national_id = Some("4510123456".into());
    let id = db.register(f).await;

    let same_name = fields("PETR", "Ivanov", "1980-03-21"); // Latin spelling, word order swapped
    let c = db.store.find_duplicates(&same_name, None).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].patient.id, id);
    assert_eq!(c[0].reasons, [DuplicateReason::NameAndBirthDate]);

    let mut by_phone = fields("Smith", "John", "1990-01-01");
    by_phone.phones = vec!["8 912 345 67 89".into()];
    assert_eq!(
        db.store.find_duplicates(&by_phone, None).await.unwrap()[0].reasons,
        [DuplicateReason::Phone]
    );

    let mut by_id = fields("Smith", "John", "1990-01-01");
    by_id.national_id = Some("4510123456".into());
    assert_eq!(
        db.store.find_duplicates(&by_id, None).await.unwrap()[0].reasons,
        [DuplicateReason::NationalId]
    );

    let other = fields("Иванов", "Пётр", "1980-03-22");
    assert!(
        db.store
            .find_duplicates(&other, None)
            .await
            .unwrap()
            .is_empty(),
        "another birth date is another person"
    );
}

#[tokio::test]
async fn merging_keeps_everything_and_is_audited() {
    let db = TestDb::new().await;
    let mut a = fields("ใจดี", "สมชาย", "1975-06-01");
    a.phones = vec!["081 234 5678".into()];
    a.allergies = Some("Penicillin".into());
    let mut b = fields("ใจดี", "สมชาย", "1975-06-01");
    b.phones = vec!["02 555 1234".into(), "+66 81 234 5678".into()];
    b.allergies = Some("Latex".into());
    b.national_id = Some("1103702345671".into());
    let (keep, merge) = (db.register(a).await, db.register(b).await);

    db.commit_as(
        Role::Reception,
        Mutation::PatientMerge {
            keep,
            merge,
            reason: "Registered twice".into(),
        },
    )
    .await;
    let k = db.store.patient(keep).await.unwrap();
    assert_eq!(
        k.phones,
        ["081 234 5678", "02 555 1234"],
        "phones united, the same number once"
    );
    assert_eq!(k.national_id.as_deref(), Some("1103702345671"));
    assert_eq!(
        k.allergies.as_deref(),
        Some("Penicillin\nLatex"),
        "no allergy is lost"
    );
    let m = db.store.patient(merge).await.unwrap();
    assert_eq!(m.status, PatientStatus::Merged);
    assert_eq!(m.merged_into, Some(keep));
    assert_eq!(
        m.allergies.as_deref(),
        Some("Latex"),
        "the merged record itself is kept intact"
    );

    // The merged record's MRN leads to the kept one, and search shows it once.
    let found = db.store.search(&m.mrn, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, keep);
    assert_eq!(db.store.search("สมชาย", 10).await.unwrap().len(), 1);

    // A merged record is read-only.
    let err = db
        .refused_as(
            Role::Reception,
            Mutation::PatientUpdate {
                id: merge,
                base_version: m.version,
                fields: fields("X", "Y", "1975-06-01"),
            },
        )
        .await;
    assert!(
        matches!(err, clinic_store::StoreError::Validation(_)),
        "{err:?}"
    );
    let history = db.store.patient_history(keep).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.action, clinic_domain::audit::AuditAction::Merge);
    let reason = last.changes.iter().find(|c| c.field == "merge_reason");
    assert_eq!(
        reason.map(|c| c.after.clone()),
        Some(serde_json::json!("Registered twice")),
        "the history says why: {:?}",
        last.changes
    );
}

#[tokio::test]
async fn a_merge_needs_a_reason_and_the_desk_or_the_admin() {
    let db = TestDb::new().await;
    let keep = db.register(fields("Smith", "Anna", "1980-01-01")).await;
    let merge = db.register(fields("Smith", "Anna", "1980-01-01")).await;
    let attempt = |role, reason: &str| {
        let reason = reason.to_owned();
        let store = &db.store;
        async move {
            store
                .commit(
                    &actor(role),
                    Mutation::PatientMerge {
                        keep,
                        merge,
                        reason,
                    },
                )
                .await
        }
    };
    let err = attempt(Role::Reception, "  ").await.unwrap_err();
    assert!(
        matches!(&err, clinic_store::StoreError::Validation(e) if e[0].field == "reason" && e[0].code == clinic_domain::FieldCode::Required),
        "{err:?}"
    );
    for role in [Role::Doctor, Role::Nurse, Role::ImagingOperator] {
        let err = attempt(role, "Registered twice").await.unwrap_err();
        assert!(
            matches!(err, clinic_store::StoreError::Forbidden),
            "{role:?}: {err:?}"
        );
    }
    assert_eq!(
        db.store.patient(merge).await.unwrap().status,
        PatientStatus::Active,
        "nothing merged yet"
    );
    attempt(Role::Reception, "Same passport").await.unwrap();
}

#[tokio::test]
async fn history_shows_who_changed_what() {
    let db = TestDb::new().await;
    let id = db.register(fields("Смирнова", "Ольга", "1960-01-01")).await;
    let mut changed = fields("Смирнова", "Ольга", "1960-01-01");
    changed.notes = Some("prefers morning visits".into());
    db.commit_as(
        Role::Doctor,
        Mutation::PatientUpdate {
            id,
            base_version: 1,
            fields: changed,
        },
    )
    .await;
    let h = db.store.patient_history(id).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].user_name, "test doctor");
    assert_eq!(h[1].changes.len(), 1);
    assert_eq!(h[1].changes[0].field, "notes");
    assert_eq!(
        h[1].changes[0].after,
        serde_json::json!("prefers morning visits")
    );
    // A stale edit is refused, not applied over the newer one.
    let err = db
        .refused_as(
            Role::Reception,
            Mutation::PatientUpdate {
                id,
                base_version: 1,
                fields: fields("Смирнова", "Оля", "1960-01-01"),
            },
        )
        .await;
    assert!(matches!(err, clinic_store::StoreError::Conflict));
}

#[tokio::test]
async fn a_save_that_changes_nothing_writes_nothing() {
    let db = TestDb::new().await;
    let id = db.register(fields("Ivanova", "Anna", "1980-03-04")).await;
    let before = db.store.patient(id).await.unwrap();
    let (audit, outbox) = (db.count("audit_log").await, db.count("outbox").await);
    let done = db
        .commit_as(
            Role::Reception,
            Mutation::PatientUpdate {
                id,
                base_version: before.version,
                fields: fields("Ivanova", "Anna", "1980-03-04"),
            },
        )
        .await;
    assert_eq!((done.audit_seq, done.mutation_id), (None, None));
    assert_eq!(db.store.patient(id).await.unwrap().version, before.version);
    assert_eq!(db.count("audit_log").await, audit);
    assert_eq!(db.count("outbox").await, outbox);
}
