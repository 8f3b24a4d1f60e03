//! Workstation stores (real SQLite files) syncing through a real server on
//! a real PostgreSQL.

mod faults;
mod invariants;
mod proxy;
mod records;
mod sign_in;
mod simulation;
mod support;

use std::time::Duration;

use clinic_domain::Role;
use clinic_domain::patient::{PatientInput, Sex};
use clinic_domain::sync::{Entity, Op, RejectCode};
use clinic_domain::workstation::ConnectionState;
use serde_json::json;
use support::*;
use uuid::Uuid;

#[tokio::test]
async fn a_patient_registered_on_one_workstation_reaches_the_other() {
    let (_c, [a, b]) = Clinic::with_workstations().await;
    let rita_a = a.sign_in("rita").await;
    let id = a.register(&rita_a, "Сомчай", "Ivanova").await;
    assert!(
        !a.store.is_synced(id).await.unwrap(),
        "not synced before the server answered"
    );
    a.engine.sync_now().await.unwrap();
    assert!(a.store.is_synced(id).await.unwrap());
    b.engine.sync_now().await.unwrap();
    let on_b = b.store.patient(id).await.unwrap();
    assert_eq!(on_b.family_name, "Ivanova");
    assert_eq!(on_b.mrn, a.store.patient(id).await.unwrap().mrn);
    let found = b.store.search("ivan", 10).await.unwrap();
    assert_eq!(
        found.first().map(|p| p.id),
        Some(id),
        "search on B finds the pulled record"
    );
}

#[tokio::test]
async fn offline_edits_of_the_same_patient_converge_and_the_loser_is_shown() {
    let (c, [a, b]) = Clinic::with_workstations().await;
    let [rita_a, rita_b] = sign_in_each([&a, &b], "rita").await;
    let id = a.register(&rita_a, "Anna", "Ivanova").await;
    sync_each(&[&a, &b]).await;

    // Both offline: A renames and moves her; B renames and adds a note.
    a.edit(&rita_a, id, |f| {
        f.family_name = "Petrova".into();
        f.address = Some("Mira 5".into());
    })
    .await;
    b.edit(&rita_b, id, |f| {
        f.family_name = "Sidorova".into();
        f.notes = Some("prefers mornings".into());
    })
    .await;
    // They come online, A first.
    sync_each(&[&a, &b, &a]).await;

    for ws in [&a, &b] {
        let p = ws.store.patient(id).await.unwrap();
        assert_eq!(p.family_name, "Petrova", "the server's value wins the name");
        assert_eq!(p.address.as_deref(), Some("Mira 5"));
        assert_eq!(
            p.notes.as_deref(),
            Some("prefers mornings"),
            "B's other field is merged"
        );
        let conflicts = ws.store.open_conflicts().await.unwrap();
        assert_eq!(conflicts.len(), 1, "both workstations show the conflict");
        assert_eq!(conflicts[0].field, "family_name");
        assert_eq!(
            conflicts[0].client_value,
            json!("Sidorova"),
            "the losing value is kept"
        );
    }
    assert_eq!(
        b.outbox_statuses().await,
        vec!["conflict"],
        "B's edit: applied in part"
    );

    // Reception on A settles it for B's value; everyone converges on it.
    let conflict = a.store.open_conflicts().await.unwrap().remove(0);
    a.store
        .commit(
            &rita_a,
            clinic_store::Mutation::ConflictResolve {
                id: conflict.id,
                keep_client: true,
            },
        )
        .await
        .unwrap();
    sync_each(&[&a, &b]).await;
    for ws in [&a, &b] {
        assert_eq!(ws.store.patient(id).await.unwrap().family_name, "Sidorova");
        assert!(ws.store.open_conflicts().await.unwrap().is_empty());
    }
    let (server_name,): (String,) =
        sqlx::query_as("SELECT data->>'family_name' FROM patients WHERE id = $1")
            .bind(id)
            .fetch_one(&c.db.pool)
            .await
            .unwrap();
    assert_eq!(server_name, "Sidorova");
}

#[tokio::test]
async fn changes_made_before_enrolment_are_pushed_by_the_enrolling_admin() {
    let c = Clinic::new().await;
    let a = Ws::open_unenrolled(&c).await;
    let cli = cli_actor();
    let id = a.register(&cli, "Somchai", "Jaidee").await;
    let local_admin = Uuid::now_v7();
    a.store
        .commit(
            &cli,
            clinic_store::Mutation::UserCreate {
                id: local_admin,
                username: "first.admin".into(),
                display_name: "First admin".into(),
                role: Role::Admin,
                language: clinic_domain::user::Language::En,
                password_hash: clinic_store::users::hash_password("Correct-Horse-42").unwrap(),
            },
        )
        .await
        .unwrap();
    a.enroll(&c).await;
    let users = a.store.users().await.unwrap();
    let first = users.iter().find(|u| u.id == local_admin).unwrap();
    assert!(
        first.disabled,
        "a local account stops working once enrolled"
    );
    a.engine.sync_now().await.unwrap();
    assert_eq!(a.outbox_statuses().await, vec!["applied"]);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM patients WHERE id = $1")
        .bind(id)
        .fetch_one(&c.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Once enrolled, a change without a clinic account (the command line)
    // is refused: the server could never be told who made it, and it would
    // hold up every change queued after it.
    let fields = PatientInput {
        family_name: "Late".into(),
        given_name: "Cli".into(),
        sex: Some(Sex::Male),
        birth_date: Some("1970-01-01".into()),
        ..Default::default()
    }
    .validate(clinic_store::patients::today())
    .unwrap();
    let err = a
        .store
        .commit(
            &cli,
            clinic_store::Mutation::PatientCreate {
                id: Uuid::now_v7(),
                fields,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, clinic_store::StoreError::ClinicUserRequired),
        "{err}"
    );
    assert_eq!(
        a.outbox_statuses().await,
        vec!["applied"],
        "nothing written"
    );
}

/// A workstation with one patient (Anna First, by rita) synced to the
/// server, the patient and its MRN: the number that a record numbered
/// offline by a second workstation then clashes with.
async fn a_number_on_the_server(c: &Clinic) -> (Ws, Uuid, String) {
    let w1 = c.workstation().await;
    let rita = w1.sign_in("rita").await;
    let first = w1.register(&rita, "Anna", "First").await;
    w1.engine.sync_now().await.unwrap();
    let taken = w1.store.patient(first).await.unwrap().mrn;
    (w1, first, taken)
}

/// A record numbered before enrolment whose MRN another workstation's
/// record got on the server is renumbered when that record is pulled, and
/// its new creation is pushed (by the enrolling admin, who adopted it)
/// instead of waiting forever for an author.
#[tokio::test]
async fn a_record_whose_number_was_taken_is_renumbered_and_pushed() {
    let c = Clinic::new().await;
    let (_w1, first, taken) = a_number_on_the_server(&c).await;

    // A second workstation drew the same random prefix (1 in 32,768) and
    // numbered a patient offline before it was enrolled.
    let w2 = Ws::open_unenrolled(&c).await;
    w2.force_mrn_prefix(&taken[..3]).await;
    let second = w2.register(&cli_actor(), "Boris", "Second").await;
    assert_eq!(w2.store.patient(second).await.unwrap().mrn, taken);
    w2.enroll(&c).await;
    for _ in 0..3 {
        w2.engine.sync_now().await.unwrap();
    }
    let renumbered = w2.store.patient(second).await.unwrap().mrn;
    assert_ne!(renumbered, taken);
    let (on_server,): (String,) = sqlx::query_as("SELECT mrn FROM patients WHERE id = $1")
        .bind(second)
        .fetch_one(&c.db.pool)
        .await
        .unwrap();
    assert_eq!(on_server, renumbered);
    assert_eq!(w2.store.sync_counts().await.unwrap().pending, 0);
    assert!(
        w2.store.is_synced(second).await.unwrap(),
        "{:?}",
        w2.outbox_statuses().await
    );
    assert_eq!(w2.store.patient(first).await.unwrap().mrn, taken);
}

#[tokio::test]
async fn a_rejected_change_is_visible_and_does_not_block_later_ones() {
    let c = Clinic::new().await;
    let a = c.workstation().await;
    let rita = a.sign_in("rita").await;
    let first = a.register(&rita, "Anna", "Ivanova").await;
    // The admin demotes reception to nurse on the server meanwhile: her
    // queued registration is now refused, her later view-only work is not
    // affected, and the next user's change goes through.
    sqlx::query("UPDATE users SET role = 'nurse' WHERE username = 'rita'")
        .execute(&c.db.pool)
        .await
        .unwrap();
    let dana = a.sign_in("dana").await;
    let second = a.register(&dana, "Boris", "Petrov").await;
    a.engine.sync_now().await.unwrap();
    assert_eq!(a.outbox_statuses().await, vec!["rejected", "applied"]);
    assert!(a.store.is_synced(second).await.unwrap());
    assert_eq!(a.store.sync_counts().await.unwrap().rejected, 1);
    assert!(
        !a.store.is_synced(first).await.unwrap(),
        "a refused change is not shown as synced"
    );
    // Its outcome is there to read: what, whose, and the server's reason.
    let refused = a.store.refused_changes(10).await.unwrap();
    assert_eq!(refused.len(), 1);
    let r = &refused[0];
    assert_eq!((r.entity, r.op), (Entity::Patient, Op::Create));
    assert_eq!(r.entity_id, first);
    assert_eq!(r.code, Some(RejectCode::Forbidden));
    assert_eq!(r.author.as_deref(), Some(rita.name.as_str()));
}

#[tokio::test]
async fn a_workstation_restarted_mid_sync_resumes_without_duplicates() {
    let c = Clinic::new().await;
    let a = c.workstation().await;
    let rita = a.sign_in("rita").await;
    let ids = [
        a.register(&rita, "Anna", "Ivanova").await,
        a.register(&rita, "Boris", "Petrov").await,
    ];
    // The server applies the push but the workstation dies before it
    // records the answer: push by hand, drop the reply.
    let pending = a.store.outbox_pending(10).await.unwrap();
    let token = c.server.sign_in("rita").await.access_token;
    let body = json!({"workstation_id": a.store.workstation_id(),
                      "mutations": pending.iter().map(|p| &p.mutation).collect::<Vec<_>>()});
    assert_eq!(
        c.server.post("/v1/sync/push", Some(&token), body).await.0,
        200
    );
    let a = a.restart().await;
    assert_eq!(
        a.outbox_statuses().await,
        vec!["pending", "pending"],
        "the answer never arrived"
    );
    a.sign_in("rita").await;
    a.engine.sync_now().await.unwrap();
    assert_eq!(a.outbox_statuses().await, vec!["applied", "applied"]);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM patients")
        .fetch_one(&c.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 2, "the replay created nothing twice");
    for id in ids {
        assert!(a.store.is_synced(id).await.unwrap());
    }
}

#[tokio::test]
async fn a_save_reaches_a_running_workstation_through_the_live_channel() {
    // Nobody nudges the engine: it hears of the new outbox entry from the
    // store (its idle wait is 30 s, beyond this test's 10 s deadline).
    let c = Clinic::new().await;
    let a = Ws::running(&c).await;
    let b = Ws::running(&c).await;
    let rita_a = a.sign_in("rita").await;
    b.sign_in("rita").await;
    // Let B's live channel connect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = a.register(&rita_a, "Anna", "Ivanova").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.store.patient(id).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B did not get the patient within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = b.engine.status().borrow().clone();
    assert_eq!(status.connection, ConnectionState::Online);
}

/// Found by the simulation: a pull while an edit was pending re-applied the
/// edit's value over the server's newer value of the same field; the push
/// then lost that field as a conflict, and the workstation kept showing
/// the losing value while the server kept the other.
#[tokio::test]
async fn a_pending_edit_rebased_over_a_newer_server_value_shows_the_server_value() {
    let (c, [a, b]) = Clinic::with_workstations().await;
    let [rita_a, rita_b] = sign_in_each([&a, &b], "rita").await;
    let id = a.register(&rita_a, "Anna", "Ivanova").await;
    sync_each(&[&a, &b]).await;

    b.edit(&rita_b, id, |f| {
        f.address = Some("B street".into());
        f.notes = Some("from B".into());
    })
    .await;
    a.edit(&rita_a, id, |f| f.address = Some("A street".into()))
        .await;
    a.engine.sync_now().await.unwrap();
    // B reads the feed before its edit went out (a stalled push does this).
    b.engine.pull_now().await.unwrap();
    let shown = b.store.patient(id).await.unwrap();
    assert_eq!(
        shown.notes.as_deref(),
        Some("from B"),
        "B's own field stays"
    );
    assert_eq!(
        shown.address.as_deref(),
        Some("A street"),
        "the server changed the address first and keeps it"
    );
    sync_each(&[&b, &a]).await;
    for ws in [&a, &b] {
        let p = ws.store.patient(id).await.unwrap();
        assert_eq!(p.address.as_deref(), Some("A street"));
        assert_eq!(p.notes.as_deref(), Some("from B"));
        let conflicts = ws.store.open_conflicts().await.unwrap();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].client_value, json!("B street"));
    }
    invariants::assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b]).await;
}

/// Two receptions settle the same conflict differently while offline: the
/// first decision to reach the server stands, and the other workstation
/// must end up showing it, not its own refused choice.
#[tokio::test]
async fn a_conflict_settled_twice_ends_with_the_first_decision_everywhere() {
    let (c, [a, b]) = Clinic::with_workstations().await;
    let [rita_a, rita_b] = sign_in_each([&a, &b], "rita").await;
    let id = a.register(&rita_a, "Anna", "Ivanova").await;
    sync_each(&[&a, &b]).await;
    a.edit(&rita_a, id, |f| f.family_name = "Petrova".into())
        .await;
    b.edit(&rita_b, id, |f| f.family_name = "Sidorova".into())
        .await;
    for ws in [&a, &b, &a] {
        ws.engine.sync_now().await.unwrap();
    }
    let conflict = a.store.open_conflicts().await.unwrap().remove(0);
    assert_eq!(b.store.open_conflicts().await.unwrap().len(), 1);

    // A keeps the server's name, B the losing one; A reaches the server first.
    for (ws, actor, keep_client) in [(&a, &rita_a, false), (&b, &rita_b, true)] {
        ws.store
            .commit(
                actor,
                clinic_store::Mutation::ConflictResolve {
                    id: conflict.id,
                    keep_client,
                },
            )
            .await
            .unwrap();
    }
    sync_each(&[&a, &b, &a]).await;

    let settled = |ws_outbox: Vec<invariants::Entry>| {
        ws_outbox
            .into_iter()
            .find(|e| e.what == "patient_conflict.resolve")
            .map(|e| e.status)
    };
    assert_eq!(
        settled(invariants::outbox(&a).await).as_deref(),
        Some("applied")
    );
    assert_eq!(
        settled(invariants::outbox(&b).await).as_deref(),
        Some("rejected"),
        "B's decision came second and is refused, visibly"
    );
    for ws in [&a, &b] {
        assert_eq!(
            ws.store.patient(id).await.unwrap().family_name,
            "Petrova",
            "the first decision (keep the server's name) stands"
        );
        assert!(ws.store.open_conflicts().await.unwrap().is_empty());
    }
    invariants::assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b]).await;
}

/// The rebase of a pending merge follows the server's merge rule too: a
/// field of the kept record that the server changed meanwhile keeps the
/// server's value.
#[tokio::test]
async fn a_pending_merge_rebased_over_a_newer_server_value_shows_the_server_value() {
    let (c, [a, b]) = Clinic::with_workstations().await;
    let [rita_a, rita_b] = sign_in_each([&a, &b], "rita").await;
    let keep = a.register(&rita_a, "Anna", "Ivanova").await;
    let twin = a.register(&rita_a, "Anna", "Ivanova").await;
    a.edit(&rita_a, twin, |f| f.notes = Some("from the twin".into()))
        .await;
    sync_each(&[&a, &b]).await;

    // A merges the twin in (its note comes along); B writes another note.
    a.store
        .commit(
            &rita_a,
            clinic_store::Mutation::PatientMerge {
                keep,
                merge: twin,
                reason: "Registered twice".into(),
            },
        )
        .await
        .unwrap();
    b.edit(&rita_b, keep, |f| f.notes = Some("from B".into()))
        .await;
    b.engine.sync_now().await.unwrap();
    a.engine.pull_now().await.unwrap();
    assert_eq!(
        a.store.patient(keep).await.unwrap().notes.as_deref(),
        Some("from B"),
        "the server changed the note first and keeps it"
    );
    sync_each(&[&a, &b]).await;
    invariants::assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b]).await;
    assert_eq!(a.store.open_conflicts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_imported_patient_shows_as_synced_only_once_the_server_has_it() {
    let (_c, [a, b]) = Clinic::with_workstations().await;
    let rita = a.sign_in("rita").await;
    b.sign_in("rita").await;
    let csv = "family_name,given_name,sex,birth_date\nIvanova,Anna,female,1980-03-04\nSmith,John,male,1975-01-02\n";
    let report = a
        .store
        .import_patients(&rita, csv.as_bytes(), csv.len() as u64, false, |_| {})
        .await
        .unwrap();
    assert_eq!(report.imported, 2);
    let id = a.store.search("Ivanova", 5).await.unwrap()[0].id;
    assert!(
        !a.store.is_synced(id).await.unwrap(),
        "the import is not on the server yet"
    );
    a.engine.sync_now().await.unwrap();
    assert!(a.store.is_synced(id).await.unwrap());
    b.engine.sync_now().await.unwrap();
    assert_eq!(b.store.patient(id).await.unwrap().family_name, "Ivanova");
}

/// The server's database is restored from a backup older than some
/// acknowledged changes: after `new-epoch`, the workstation pushes them
/// again, pulls the feed from the start, and a new workstation sees
/// everything, so nothing entered is lost.
#[tokio::test]
async fn after_a_server_restore_acknowledged_changes_are_pushed_again() {
    let c = Clinic::new().await;
    let w1 = c.workstation().await;
    let rita = w1.sign_in("rita").await;
    let early = w1.register(&rita, "Anna", "Early").await;
    w1.engine.sync_now().await.unwrap();
    let before = w1.store.sync_settings().await.unwrap().unwrap();
    assert!(
        before.feed_epoch.is_some(),
        "the first pull records the epoch"
    );

    // The nightly dump; then more work the server acknowledges.
    let dump = c.new_path().with_extension("dump");
    run(std::process::Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&c.db.url));
    w1.edit(&rita, early, |f| f.family_name = "Later".into())
        .await;
    let late = w1.register(&rita, "Boris", "Late").await;
    w1.engine.sync_now().await.unwrap();
    assert!(w1.store.is_synced(late).await.unwrap());
    assert_eq!(c.server_patients().await, 2);

    // The server's disk dies; the dump is restored and a new epoch begun.
    run(std::process::Command::new("pg_restore")
        .args(["--clean", "--if-exists", "--single-transaction", "--dbname"])
        .arg(&c.db.url)
        .arg(&dump));
    assert_eq!(c.server_patients().await, 1, "the restore lost Boris");
    assert_eq!(clinic_server::feed::new_epoch(&c.db.pool).await.unwrap(), 1);
    // (The server process keeps running: it holds no state of its own.)
    w1.engine.sync_now().await.unwrap();
    assert_eq!(c.server_patients().await, 2, "Boris is back on the server");
    assert!(w1.store.is_synced(late).await.unwrap());
    assert!(w1.store.is_synced(early).await.unwrap());
    let after = w1.store.sync_settings().await.unwrap().unwrap();
    assert_ne!(after.feed_epoch, before.feed_epoch);
    let (feed_end,): (i64,) = sqlx::query_as("SELECT max(seq) FROM change_log")
        .fetch_one(&c.db.pool)
        .await
        .unwrap();
    assert_eq!(after.cursor, feed_end, "the cursor counts in the new epoch");
    assert_eq!(w1.store.sync_counts().await.unwrap().pending, 0);
    assert_eq!(w1.store.patient(early).await.unwrap().family_name, "Later");

    let w2 = c.workstation().await;
    w2.engine.sync_now().await.unwrap();
    assert_eq!(w2.store.patient(early).await.unwrap().family_name, "Later");
    assert_eq!(w2.store.patient(late).await.unwrap().family_name, "Late");
}

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().expect("PostgreSQL client tools are installed");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An import made before enrolment, one of whose numbers another
/// workstation's record already has on the server: the server creates the
/// other rows and names that one; it is renumbered and sent on its own, so
/// one clash never holds back the rest of the import.
#[tokio::test]
async fn an_import_with_a_taken_number_creates_the_rest_and_renumbers_that_one() {
    let c = Clinic::new().await;
    let (_w1, _first, taken) = a_number_on_the_server(&c).await;

    let w2 = Ws::open_unenrolled(&c).await;
    w2.force_mrn_prefix(&taken[..3]).await;
    let csv = "family_name,given_name,middle_name,sex,birth_date,phone,national_id,address\n\
               Orlov,Pavel,,M,1960-01-01,,,\n\
               Sokolova,Irina,,F,1971-02-02,,,\n\
               Jaidee,Somchai,,M,1982-03-03,,,\n";
    let report = w2
        .store
        .import_patients(
            &cli_actor(),
            csv.as_bytes(),
            csv.len() as u64,
            false,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(report.imported, 3);
    let orlov = w2.store.search("orlov", 5).await.unwrap()[0].clone();
    assert_eq!(
        orlov.mrn, taken,
        "the first imported row drew the taken number"
    );
    w2.enroll(&c).await;
    sync_each(&[&w2, &w2]).await;

    assert_eq!(
        c.server_patients().await,
        4,
        "all three imported rows reached the server"
    );
    let renumbered = w2.store.patient(orlov.id).await.unwrap().mrn;
    assert_ne!(renumbered, taken);
    let (on_server,): (String,) = sqlx::query_as("SELECT mrn FROM patients WHERE id = $1")
        .bind(orlov.id)
        .fetch_one(&c.db.pool)
        .await
        .unwrap();
    assert_eq!(on_server, renumbered);
    let counts = w2.store.sync_counts().await.unwrap();
    assert_eq!((counts.pending, counts.rejected), (0, 0));
    for q in ["orlov", "sokolova", "jaidee"] {
        let p = &w2.store.search(q, 5).await.unwrap()[0];
        assert!(w2.store.is_synced(p.id).await.unwrap(), "{q}");
    }
}

/// A workstation that had neither record pulls a merge: the merged record
/// (pointing at the kept one) may be written before the kept one.
#[tokio::test]
async fn a_merge_reaches_a_workstation_that_had_neither_record() {
    let c = Clinic::new().await;
    let a = c.workstation().await;
    let rita = a.sign_in("rita").await;
    let first = a.register(&rita, "Anna", "Duplicate").await;
    a.register(&rita, "Boris", "Other").await;
    let kept = a.register(&rita, "Anna", "Duplicate").await;
    a.store
        .commit(
            &rita,
            clinic_store::Mutation::PatientMerge {
                keep: kept,
                merge: first,
                reason: "Registered twice".into(),
            },
        )
        .await
        .unwrap();
    a.engine.sync_now().await.unwrap();
    let b = c.workstation().await;
    b.engine.sync_now().await.unwrap();
    let merged = b.store.patient(first).await.unwrap();
    assert_eq!(merged.status, clinic_domain::patient::PatientStatus::Merged);
    assert_eq!(merged.merged_into, Some(kept));
    // The kept record's fields did not change, so neither did its version,
    // here or on the server.
    let (on_a, on_b) = (
        a.store.patient(kept).await.unwrap(),
        b.store.patient(kept).await.unwrap(),
    );
    assert_eq!((on_a.version, on_b.version), (1, 1));
}

/// An edit queued for a record another workstation merged meanwhile: the
/// server refuses it, so once the merge is pulled the record shows the
/// server's values, not the edit, before and after the refusal comes back.
#[tokio::test]
async fn an_edit_of_a_record_merged_elsewhere_is_not_shown() {
    let (_c, [a, b]) = Clinic::with_workstations().await;
    let [rita_a, rita_b] = sign_in_each([&a, &b], "rita").await;
    let keep = a.register(&rita_a, "Malee", "Jaidee").await;
    let dup = a.register(&rita_a, "Malee", "Jaidee").await;
    sync_each(&[&a, &b]).await;
    a.edit(&rita_a, dup, |f| f.given_name = "Anna".into()).await;
    b.store
        .commit(
            &rita_b,
            clinic_store::Mutation::PatientMerge {
                keep,
                merge: dup,
                reason: "Registered twice".into(),
            },
        )
        .await
        .unwrap();
    b.engine.sync_now().await.unwrap();
    // A pulls before its edit is pushed (a push whose answer was lost).
    a.engine.pull_now().await.unwrap();
    assert_eq!(a.store.patient(dup).await.unwrap().given_name, "Malee");
    a.engine.sync_now().await.unwrap();
    let on_a = a.store.patient(dup).await.unwrap();
    assert_eq!(on_a.given_name, "Malee");
    assert_eq!(on_a.status, clinic_domain::patient::PatientStatus::Merged);
    assert_eq!(
        a.outbox_statuses().await.last().map(String::as_str),
        Some("rejected")
    );
}
