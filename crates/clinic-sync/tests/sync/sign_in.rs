//! The online-first sign-in rule (`clinic_sync::sign_in`) against a real
//! server: the server decides when it answers, the local verifier when it
//! cannot be reached, and accounts of this workstation only are its own.

use std::time::Duration;

use clinic_domain::Role;
use clinic_domain::error::ErrorCode;
use clinic_domain::user::{Language, NewUser};
use clinic_server::testing::PASSWORD;
use clinic_store::Workstation;
use clinic_sync::SyncError;

use crate::proxy::Fault;
use crate::support::{Clinic, Ws};

/// The code the app's sign-in command shows when `username` is refused.
async fn refusal(ws: &Ws, desk: &Workstation, username: &str, password: &str) -> ErrorCode {
    let e: SyncError = ws
        .engine
        .sign_in(desk, username, password)
        .await
        .expect_err("the sign-in must be refused");
    e.to_body().code
}

async fn desk(ws: &Ws) -> Workstation {
    Workstation::new(ws.store.clone()).await.unwrap()
}

#[tokio::test]
async fn the_server_decides_when_it_answers() {
    let c = Clinic::new().await;
    let a = c.workstation().await;
    let desk = desk(&a).await;
    // Online: signed in, and a verifier kept for later offline sign-ins.
    let session = a.engine.sign_in(&desk, "rita", PASSWORD).await.unwrap();
    assert_eq!(session.user.username, "rita");
    desk.sign_out().await.unwrap();
    // A new password set on the server: the old one no longer works here,
    // though the local verifier still matches it.
    let new_hash = clinic_store::users::hash_password("a-brand-new-passphrase").unwrap();
    sqlx::query("UPDATE users SET password_hash = $1, auth_version = auth_version + 1 WHERE username = 'rita'")
        .bind(&new_hash)
        .execute(&c.db.pool)
        .await
        .unwrap();
    assert_eq!(
        refusal(&a, &desk, "rita", PASSWORD).await,
        ErrorCode::InvalidCredentials
    );
    a.engine
        .sign_in(&desk, "rita", "a-brand-new-passphrase")
        .await
        .unwrap();
    desk.sign_out().await.unwrap();
    // Disabled on the server: refused here at once, as disabled.
    sqlx::query(
        "UPDATE users SET disabled = true, auth_version = auth_version + 1 WHERE username = 'rita'",
    )
    .execute(&c.db.pool)
    .await
    .unwrap();
    assert_eq!(
        refusal(&a, &desk, "rita", "a-brand-new-passphrase").await,
        ErrorCode::AccountDisabled
    );
}

#[tokio::test]
async fn the_local_verifier_decides_while_the_server_is_unreachable() {
    let c = Clinic::behind_proxy(11).await;
    let a = c.workstation().await;
    let desk = desk(&a).await;
    a.engine.sign_in(&desk, "rita", PASSWORD).await.unwrap();
    desk.sign_out().await.unwrap();
    // No answer: the local verifier the online sign-in left decides.
    c.proxy().inject("/v1/auth/sign-in", Fault::DropRequest);
    let session = a.engine.sign_in(&desk, "rita", PASSWORD).await.unwrap();
    assert_eq!(session.user.username, "rita");
    desk.sign_out().await.unwrap();
    // ... and still refuses a wrong password.
    c.proxy().inject("/v1/auth/sign-in", Fault::DropRequest);
    assert_eq!(
        refusal(&a, &desk, "rita", "not-her-password").await,
        ErrorCode::InvalidCredentials
    );
    // A server too slow to answer counts as unreachable.
    c.proxy()
        .inject("/v1/auth/sign-in", Fault::Delay(Duration::from_secs(3)));
    a.engine
        .sign_in_with_timeout(&desk, "rita", PASSWORD, Duration::from_millis(300))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_account_of_this_workstation_only_is_answered_here() {
    let c = Clinic::new().await;
    let a = Ws::open_unenrolled(&c).await;
    let desk = desk(&a).await;
    // Before enrolment, the workstation has its own admin and a nurse.
    desk.setup_admin(NewUser {
        username: "local-admin".into(),
        display_name: "Local Admin".into(),
        role: Role::Admin,
        password: PASSWORD.into(),
        language: Language::En,
    })
    .await
    .unwrap();
    desk.user_create(NewUser {
        username: "night-nurse".into(),
        display_name: "Night Nurse".into(),
        role: Role::Nurse,
        password: PASSWORD.into(),
        language: Language::Ru,
    })
    .await
    .unwrap();
    desk.sign_out().await.unwrap();
    a.enroll(&c).await;
    // Enrolment retired the local accounts (users are the clinic's now).
    // The server does not know her, so its "wrong name or password" is not
    // the answer: this workstation's is, and it says why she cannot sign in.
    assert_eq!(
        refusal(&a, &desk, "night-nurse", PASSWORD).await,
        ErrorCode::AccountDisabled
    );
    // A server account with a wrong password stays refused.
    assert_eq!(
        refusal(&a, &desk, "rita", "not-her-password").await,
        ErrorCode::InvalidCredentials
    );
}
