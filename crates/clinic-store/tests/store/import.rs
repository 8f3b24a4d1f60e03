//! CSV import: batches of patients as import mutations, each one audit entry
//! and one outbox entry, with every patient's creation in its history.

use std::collections::BTreeSet;

use clinic_domain::Role;
use clinic_domain::audit::{AuditAction, AuditFilter};
use clinic_domain::import::ImportReport;
use clinic_domain::patient::DuplicateReason;
use clinic_domain::sync::PatientData;
use clinic_store::Mutation;
use serde_json::Value;
use uuid::Uuid;

use crate::support::{TestDb, actor, field_codes, fields, raw_connection, raw_exec, raw_try};

const HEADER: &str = "family_name,given_name,middle_name,sex,birth_date,phone,national_id,address";

/// A CSV of `n` distinct patients; every third has a middle name, national
/// id and address, so both filled and empty optional fields are imported.
fn csv(n: usize) -> String {
    let mut out = format!("{HEADER}\n");
    for i in 0..n {
        let (middle, nid, addr) = if i % 3 == 0 {
            (
                "Петрович",
                format!("NID{i:06}"),
                format!("\"{i} Main St, Apt 2\""),
            )
        } else {
            ("", String::new(), String::new())
        };
        out.push_str(&format!(
            "Walker{i},Anna,{middle},F,1980-01-{:02},+66 81 {:03} {:04},{nid},{addr}\n",
            i % 28 + 1,
            i % 1000,
            i
        ));
    }
    out
}

async fn import(db: &TestDb, text: &str) -> ImportReport {
    db.store
        .import_patients(
            &actor(Role::Reception),
            text.as_bytes(),
            text.len() as u64,
            false,
            |_| {},
        )
        .await
        .unwrap()
}

/// `(mutation_id, entity_id, payload)` of every `import` outbox entry, in order.
async fn import_outbox(db: &TestDb) -> Vec<(String, String, Value)> {
    let mut conn = raw_connection(db.store.path()).await;
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT mutation_id, entity, entity_id, op, payload FROM outbox WHERE op = 'import' ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(m, entity, entity_id, op, payload)| {
            assert_eq!((entity.as_str(), op.as_str()), ("patient", "import"));
            (m, entity_id, serde_json::from_str(&payload).unwrap())
        })
        .collect()
}

async fn patient_ids(db: &TestDb) -> Vec<String> {
    let mut conn = raw_connection(db.store.path()).await;
    sqlx::query_scalar("SELECT id FROM patients ORDER BY mrn")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_imported_row_is_in_one_outbox_entry_the_server_can_apply() {
    let db = TestDb::new().await;
    let report = import(&db, &csv(2_500)).await;
    assert_eq!((report.imported, report.errors.len()), (2_500, 0));

    let entries = import_outbox(&db).await;
    assert_eq!(
        entries.len(),
        3,
        "at most 1,000 patients per import mutation"
    );
    let run = entries[0].2["import_run"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    let mut mutation_ids = BTreeSet::new();
    for (mutation_id, entity_id, payload) in &entries {
        assert!(mutation_ids.insert(mutation_id.clone()), "one id per entry");
        assert_eq!(entity_id, &run, "the entry is about the import run");
        assert_eq!(payload["import_run"], run.as_str());
        assert!(payload.to_string().len() < 1 << 20, "far below 2 MiB");
        for item in payload["patients"].as_array().unwrap() {
            let id: Uuid = item["id"].as_str().unwrap().parse().unwrap();
            // The shape the server's `patient.import` reads.
            let data: PatientData = serde_json::from_value(item.clone()).unwrap();
            let stored = db.store.patient(id).await.unwrap();
            assert_eq!(data.mrn, stored.mrn);
            assert_eq!(data.status, clinic_domain::patient::PatientStatus::Active);
            assert_eq!(data.merged_into, None);
            assert_eq!(data.fields.family_name, stored.family_name);
            assert_eq!(data.fields.middle_name, stored.middle_name);
            assert_eq!(data.fields.birth_date, stored.birth_date);
            assert_eq!(data.fields.phones, stored.phones);
            assert_eq!(data.fields.national_id, stored.national_id);
            assert_eq!(data.fields.address, stored.address);
            assert_eq!(data.fields.sex, stored.sex);
            seen.push(id.to_string());
        }
    }
    assert_eq!(seen, patient_ids(&db).await, "every row once, in MRN order");
}

#[tokio::test]
async fn imported_patients_have_history_and_the_chain_verifies() {
    let db = TestDb::new().await;
    import(&db, &csv(1_200)).await;
    let check = db.store.verify_audit().await.unwrap();
    assert!(check.is_intact(), "{check:?}");
    assert_eq!(
        check.entries, 4,
        "workstation creation, two import mutations, the run's summary"
    );

    // The same person registered by hand, for comparison.
    let by_hand = Uuid::now_v7();
    let mut f = fields("Walker3", "Anna", "1980-01-04");
    f.middle_name = Some("Петрович".into());
    f.sex = clinic_domain::patient::Sex::Female;
    f.phones = vec!["+66 81 003 0003".into()];
    f.national_id = Some("NID000003".into());
    f.address = Some("3 Main St, Apt 2".into());
    db.register_as(by_hand, f).await;
    let without_mrn = |h: &[clinic_domain::audit::HistoryEntry]| {
        h[0].changes
            .iter()
            .filter(|c| c.field != "mrn")
            .cloned()
            .collect::<Vec<_>>()
    };
    let expected = without_mrn(&db.store.patient_history(by_hand).await.unwrap());

    let ids = patient_ids(&db).await;
    for (i, id) in [(3, &ids[3]), (1_100, &ids[1_100])] {
        let id: Uuid = id.parse().unwrap();
        let h = db.store.patient_history(id).await.unwrap();
        assert_eq!(h.len(), 1, "its creation by the import");
        assert_eq!(h[0].action, AuditAction::Import);
        assert_eq!(h[0].user_name, "test reception");
        let mrn = h[0].changes.iter().find(|c| c.field == "mrn").unwrap();
        assert_eq!(mrn.after, db.store.patient(id).await.unwrap().mrn.as_str());
        assert!(h[0].changes.iter().all(|c| c.field != "id"));
        if i == 3 {
            assert_eq!(
                without_mrn(&h),
                expected,
                "the same values as a registration"
            );
        }
        // The audit screen finds the batch entry by the patient's id.
        let entries = db
            .store
            .audit_entries(&AuditFilter {
                entity_id: Some(id),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].action, AuditAction::Import);
        assert_eq!(entries[0].workstation_id, db.store.workstation_id());
        // Listed with the batch's size and this patient's values, not all rows.
        let after = entries[0].after.as_ref().unwrap();
        assert_eq!(after["patients"], if i < 1_000 { 1_000 } else { 200 });
        assert_eq!(after["patient"]["id"], id.to_string());
        assert_eq!(after["patient"]["family_name"], format!("Walker{i}"));
    }

    // Later changes follow the import in the history.
    let id: Uuid = ids[0].parse().unwrap();
    let mut changed = db.store.patient(id).await.unwrap();
    changed.notes = Some("moved".into());
    db.commit_as(
        Role::Doctor,
        Mutation::PatientUpdate {
            id,
            base_version: 1,
            fields: clinic_domain::patient::PatientFields {
                family_name: changed.family_name,
                given_name: changed.given_name,
                middle_name: changed.middle_name,
                sex: changed.sex,
                birth_date: changed.birth_date,
                birth_date_estimated: changed.birth_date_estimated,
                phones: changed.phones,
                national_id: changed.national_id,
                address: changed.address,
                emergency_contact_name: None,
                emergency_contact_phone: None,
                allergies: None,
                notes: changed.notes,
            },
        },
    )
    .await;
    let h = db.store.patient_history(id).await.unwrap();
    let actions: Vec<_> = h.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Import, AuditAction::Update]);
    assert_eq!(h[1].changes.len(), 1);
    assert!(db.store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn a_changed_batch_entry_or_a_lost_link_is_found() {
    let db = TestDb::new().await;
    import(&db, &csv(10)).await;
    assert!(db.store.verify_audit().await.unwrap().is_intact());
    let batch_seq = 2;

    let mut conn = raw_connection(db.store.path()).await;
    assert!(
        raw_try(&mut conn, "DELETE FROM audit_link").await.is_err(),
        "links are append-only"
    );
    raw_exec(&mut conn, "DROP TRIGGER audit_link_no_delete").await;
    raw_exec(&mut conn, "DELETE FROM audit_link WHERE item = 4").await;
    let bad = db.store.verify_audit().await.unwrap();
    assert_eq!(bad.first_bad_seq, Some(batch_seq), "{bad:?}");

    // A patient's values changed inside the batch entry break its hash.
    let db = TestDb::new().await;
    import(&db, &csv(10)).await;
    let mut conn = raw_connection(db.store.path()).await;
    raw_exec(&mut conn, "DROP TRIGGER audit_log_no_update").await;
    sqlx::query("UPDATE audit_log SET after = replace(after, 'Walker4', 'Walker9') WHERE seq = ?")
        .bind(batch_seq)
        .execute(&mut conn)
        .await
        .unwrap();
    let bad = db.store.verify_audit().await.unwrap();
    assert_eq!(bad.first_bad_seq, Some(batch_seq), "{bad:?}");
}

#[tokio::test]
async fn imported_patients_are_found_and_flagged_as_duplicates() {
    let db = TestDb::new().await;
    let text = format!(
        "{HEADER}\nИванов,Пётр,Сергеевич,M,1980-03-21,+7 (912) 345-67-89,4510123456,\n{}",
        csv(30).lines().skip(1).collect::<Vec<_>>().join("\n")
    );
    import(&db, &text).await;
    let id = db.store.search("иванов пётр", 10).await.unwrap()[0].id;
    for q in ["ivanov", "Ivanov Petr", "ivanvo", "345-67-89", "1980-03-21"] {
        let found = db.store.search(q, 10).await.unwrap();
        assert!(found.iter().any(|p| p.id == id), "{q}: {found:?}");
    }
    let mut same = fields("PETR", "Ivanov", "1980-03-21");
    same.phones = vec!["8 912 345 67 89".into()];
    same.national_id = Some("4510123456".into());
    let c = db.store.find_duplicates(&same, None).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].patient.id, id);
    assert_eq!(c[0].reasons.len(), 3, "{:?}", c[0].reasons);
    assert!(c[0].reasons.contains(&DuplicateReason::NameAndBirthDate));
}

#[tokio::test]
async fn refused_rows_come_back_as_a_csv_to_fix_and_import_again() {
    let db = TestDb::new().await;
    let text = "family_name,given_name,birth_date,sex\n\
                Good,Anna,1980-01-01,F\n\
                ,Nameless,1980-01-01,F\n\
                Future,Boris,2999-01-01,dragon\n";
    let report = import(&db, text).await;
    assert_eq!((report.rows, report.imported), (3, 1));
    let codes: Vec<(u64, Option<&str>, &str)> = report
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_deref(), e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            (3, Some("family_name"), "required"),
            (4, Some("sex"), "unknown_sex")
        ]
    );
    let rejected = report.rejected_csv.expect("refused rows as CSV");
    let mut lines = rejected.lines();
    assert_eq!(
        lines.next(),
        Some("family_name,given_name,birth_date,sex,import_error")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(",Nameless,1980-01-01,F,family_name")
    );
    let future = lines.next().unwrap();
    assert!(
        future.starts_with("Future,Boris,2999-01-01,dragon,"),
        "{future}"
    );
    assert!(future.contains("sex must be female, male"), "{future}");
    // Fixed in place and imported again, the error column and all.
    let fixed = rejected
        .replace(",Nameless,", "Named,Nameless,")
        .replace("2999-01-01,dragon", "1999-01-01,M");
    let again = import(&db, &fixed).await;
    assert_eq!(
        (again.imported, again.errors.len()),
        (2, 0),
        "{:?}",
        again.errors
    );
    assert!(again.rejected_csv.is_none());
}

#[tokio::test]
async fn a_wrong_header_names_every_missing_and_unknown_column() {
    let db = TestDb::new().await;
    let err = db
        .store
        .import_patients(
            &actor(Role::Reception),
            "family_name,blood_group,phone\nA,B,1\n".as_bytes(),
            0,
            true,
            |_| {},
        )
        .await
        .unwrap_err();
    let clinic_store::StoreError::Validation(problems) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        field_codes(&problems),
        [
            ("column.blood_group", "unknown_column"),
            ("column.given_name", "missing_column")
        ]
    );
}
