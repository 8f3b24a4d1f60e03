//! Roles are enforced in the core, and sign-in protection works.

use chrono::Duration;
use clinic_domain::Role;
use clinic_domain::user::{Language, NewUser};
use clinic_store::{Mutation, StoreError, Workstation};
use uuid::Uuid;

use crate::support::{TestDb, fields, input};

const ADMIN_PW: &str = "Violet-Harbour-93";

fn password_of(username: &str) -> &'static str {
    match username {
        "rita" => "Cobalt-River-2041",
        "nina" => "Amber-Meadow-3172",
        _ => "Quiet-Canyon-8810",
    }
}

fn new_user(username: &str, role: Role) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: format!("{username} display"),
        role,
        password: password_of(username).into(),
        language: Language::En,
    }
}

async fn workstation() -> (TestDb, Workstation) {
    let db = TestDb::new().await;
    let ws = Workstation::new(db.store.clone()).await.unwrap();
    ws.setup_admin(NewUser {
        username: "admin".into(),
        display_name: "Admin".into(),
        role: Role::Admin,
        password: ADMIN_PW.into(),
        language: Language::En,
    })
    .await
    .unwrap();
    for (name, role) in [("rita", Role::Reception), ("nina", Role::Nurse)] {
        ws.user_create(new_user(name, role)).await.unwrap();
    }
    (db, ws)
}

#[tokio::test]
async fn a_nurse_cannot_write_demographics_through_any_door() {
    let (db, ws) = workstation().await;
    // Through the store's write path directly.
    let err = db
        .refused_as(
            Role::Nurse,
            Mutation::PatientCreate {
                id: Uuid::now_v7(),
                fields: fields("A", "B", "1980-01-01"),
            },
        )
        .await;
    assert!(matches!(err, StoreError::Forbidden), "{err:?}");
    // Through the signed-in workstation, as the UI would.
    ws.sign_in("rita", password_of("rita")).await.unwrap();
    let p = ws
        .patient_register(&input("Петрова", "Анна", "1985-05-05"))
        .await
        .unwrap();
    ws.sign_in("nina", password_of("nina")).await.unwrap();
    assert_eq!(
        ws.patient_get(p.id).await.unwrap().family_name,
        "Петрова",
        "nurses read demographics"
    );
    let err = ws
        .patient_update(p.id, p.version, &input("Петрова", "Мария", "1985-05-05"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Forbidden), "{err:?}");
    assert!(matches!(
        ws.users_list().await.unwrap_err(),
        StoreError::Forbidden
    ));
    assert!(matches!(
        ws.audit_list(&Default::default()).await.unwrap_err(),
        StoreError::Forbidden
    ));
    assert_eq!(
        db.store.patient(p.id).await.unwrap().given_name,
        "Анна",
        "nothing changed"
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_for_fifteen_minutes() {
    let (db, ws) = workstation().await;
    for _ in 0..4 {
        assert!(matches!(
            ws.sign_in("rita", "wrong-password-1").await.unwrap_err(),
            StoreError::InvalidCredentials
        ));
    }
    let err = ws.sign_in("rita", "wrong-password-1").await.unwrap_err();
    assert!(
        matches!(err, StoreError::AccountLocked { minutes: 15 }),
        "{err:?}"
    );
    let err = ws.sign_in("rita", password_of("rita")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AccountLocked { .. }),
        "the right password does not help while locked"
    );
    db.advance(Duration::minutes(16));
    ws.sign_in("rita", password_of("rita"))
        .await
        .expect("the lock ends after 15 minutes");
}

#[tokio::test]
async fn disabled_users_and_unknown_names_cannot_sign_in() {
    let (_db, ws) = workstation().await;
    let rita = ws
        .users_list()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == "rita")
        .unwrap();
    ws.user_set_disabled(rita.id, true).await.unwrap();
    assert!(matches!(
        ws.sign_in("rita", password_of("rita")).await.unwrap_err(),
        StoreError::AccountDisabled
    ));
    assert!(matches!(
        ws.sign_in("nobody", "whatever-123456").await.unwrap_err(),
        StoreError::InvalidCredentials
    ));
}

#[tokio::test]
async fn weak_passwords_and_a_second_setup_are_refused() {
    let (_db, ws) = workstation().await;
    let mut weak = new_user("olga", Role::Doctor);
    weak.password = "password123".into();
    match ws.user_create(weak).await.unwrap_err() {
        StoreError::Validation(f) => assert_eq!(f[0].code, clinic_domain::FieldCode::Common),
        e => panic!("{e:?}"),
    }
    let again = ws
        .setup_admin(new_user("eve", Role::Admin))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::AlreadySetUp));
}

#[tokio::test]
async fn the_workstation_locks_after_the_idle_time() {
    let (db, ws) = workstation().await;
    ws.settings_update(None, Some(5)).await.unwrap();
    db.advance(Duration::minutes(6));
    assert!(matches!(
        ws.patient_search("a", 5).await.unwrap_err(),
        StoreError::SessionLocked
    ));
    assert!(matches!(
        ws.unlock("not-the-password").await.unwrap_err(),
        StoreError::InvalidCredentials
    ));
    ws.unlock(ADMIN_PW).await.unwrap();
    ws.patient_search("a", 5).await.expect("unlocked");
}
