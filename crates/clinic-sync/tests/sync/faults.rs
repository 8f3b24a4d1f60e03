//! Sync through a faulty network: the fault-injecting proxy sits between
//! the workstations and the real server. Each test checks that nothing is
//! lost, applied twice or silently overwritten: every workstation ends with
//! exactly the server's records, nothing pending, and every change with the
//! outcome the server recorded for it.

use clinic_domain::sync::SyncProblemCode;
use std::time::Duration;

use clinic_sync::SyncError;
use clinic_sync::client::ClientError;
use uuid::Uuid;

use crate::invariants::assert_converged;
use crate::proxy::{Chaos, Fault};
use crate::support::{Clinic, Ws, settle, sign_in_each};

fn is_unreachable(r: Result<(), SyncError>) -> bool {
    matches!(r, Err(SyncError::Client(ClientError::Unreachable(_))))
}

/// How many feed entries each (mutation, record) pair made on the server;
/// a mutation applied twice would make two.
async fn feed_entries_per_change(c: &Clinic) -> Vec<(Option<Uuid>, Uuid, i64)> {
    sqlx::query_as(
        "SELECT mutation_id, entity_id, count(*) FROM change_log WHERE entity = 'patient' \
         GROUP BY mutation_id, entity_id",
    )
    .fetch_all(&c.db.pool)
    .await
    .unwrap()
}

async fn assert_each_change_once(c: &Clinic) {
    for (m, id, n) in feed_entries_per_change(c).await {
        assert_eq!(n, 1, "mutation {m:?} changed patient {id} {n} times");
    }
}

/// Settles the workstations, then checks that the faults cost nothing:
/// `patients` on the server, each change applied once, all converged.
async fn assert_settled_once(c: &Clinic, wss: &[&Ws], patients: i64) {
    settle(wss).await;
    assert_eq!(c.server_patients().await, patients);
    assert_each_change_once(c).await;
    assert_converged(&c.db.pool, c.db.clinic_id, wss).await;
}

/// Kills a workstation (its sync task aborted, the workstation dropped)
/// while the proxy holds its request to `route`, then cuts the connection,
/// as when the machine is switched off mid-request.
async fn killed_while_held(c: &Clinic, ws: Ws, route: &str) {
    c.proxy().inject(route, Fault::Hold);
    let running = tokio::spawn(async move {
        let _ = ws.engine.sync_now().await;
        drop(ws);
    });
    c.proxy().wait_held().await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    c.proxy().cut();
}

#[tokio::test]
async fn answers_lost_after_the_server_committed_are_settled_without_duplicates() {
    let c = Clinic::behind_proxy(1).await;
    let [a, b] = c.workstations().await;
    let [rita, _] = sign_in_each([&a, &b], "rita").await;
    let ids = [
        a.register(&rita, "Anna", "Ivanova").await,
        a.register(&rita, "Boris", "Petrov").await,
    ];

    c.proxy().inject("/v1/sync/push", Fault::DropResponse);
    assert!(is_unreachable(a.engine.sync_now().await));
    assert_eq!(
        c.server_patients().await,
        2,
        "the server committed the push"
    );
    assert_eq!(
        a.outbox_statuses().await,
        ["pending", "pending"],
        "the answer never arrived"
    );

    // More work on top of the unacknowledged registration, then the answer
    // to the pull is lost too: the cursor must stay where it was.
    a.edit(&rita, ids[0], |f| {
        f.notes = Some("after the lost answer".into())
    })
    .await;
    let cursor = a.store.sync_settings().await.unwrap().unwrap().cursor;
    c.proxy().inject("/v1/sync/pull", Fault::DropResponse);
    assert!(is_unreachable(a.engine.sync_now().await));
    assert_eq!(
        a.store.sync_settings().await.unwrap().unwrap().cursor,
        cursor,
        "a lost page moves no cursor"
    );
    assert_eq!(
        a.outbox_statuses().await,
        ["applied", "applied", "applied"],
        "the retried push got the stored outcomes and applied the edit"
    );

    assert_settled_once(&c, &[&a, &b], 2).await;
    assert_eq!(
        b.store.patient(ids[0]).await.unwrap().notes.as_deref(),
        Some("after the lost answer")
    );
    assert_eq!(c.proxy().stats().dropped_responses, 2);
}

#[tokio::test]
async fn duplicated_requests_are_applied_once() {
    let c = Clinic::behind_proxy(2).await;
    let [a, b] = c.workstations().await;
    let [rita, rita_b] = sign_in_each([&a, &b], "rita").await;
    let id = a.register(&rita, "Anna", "Ivanova").await;
    a.edit(&rita, id, |f| f.address = Some("Mira 5".into()))
        .await;

    // Both copies reach the server at once. One push per workstation runs
    // at a time: the other copy is answered 429 (busy) at once, and when
    // the proxy hands that answer to the workstation, its next push gets
    // the stored outcomes. Either way the change is applied once.
    c.proxy().inject("/v1/sync/push", Fault::Duplicate);
    sync_through_busy(&a).await;
    // A copy arriving after the answer, and after the next push.
    b.engine.sync_now().await.unwrap();
    b.edit(&rita_b, id, |f| f.notes = Some("late copy".into()))
        .await;
    c.proxy().inject(
        "/v1/sync/push",
        Fault::LateDuplicate(Duration::from_millis(200)),
    );
    b.engine.sync_now().await.unwrap();
    b.edit(&rita_b, id, |f| {
        f.notes = Some("after the late copy".into())
    })
    .await;
    b.engine.sync_now().await.unwrap();
    c.proxy().wait_idle().await;

    settle(&[&a, &b]).await;
    assert_eq!(c.proxy().stats().duplicated, 1);
    assert_eq!(c.proxy().stats().late_duplicates, 1);
    assert_eq!(c.server_patients().await, 1);
    assert_each_change_once(&c).await;
    assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b]).await;
    let p = a.store.patient(id).await.unwrap();
    assert_eq!(
        p.notes.as_deref(),
        Some("after the late copy"),
        "the late copy of an older edit did not overwrite a newer one"
    );
    assert_eq!(p.version, 4, "create and three edits, each once");
}

#[tokio::test]
async fn delays_and_timeouts_are_retried_without_harm() {
    let c = Clinic::behind_proxy(3).await;
    let [a, b] = c.workstations().await;
    let [rita, rita_b] = sign_in_each([&a, &b], "rita").await;
    a.engine.set_request_timeout(Duration::from_millis(300));
    b.engine.set_request_timeout(Duration::from_millis(300));
    let id = a.register(&rita, "Anna", "Ivanova").await;

    // The push reaches the server only after the client gave up; the
    // retry overtakes it.
    c.proxy()
        .inject("/v1/sync/push", Fault::Delay(Duration::from_millis(800)));
    assert!(is_unreachable(a.engine.sync_now().await));
    a.engine.sync_now().await.unwrap();
    c.proxy().wait_idle().await;
    assert_eq!(c.server_patients().await, 1);

    // Both work and sync at once while every other request is slow.
    c.proxy().set_chaos(Chaos {
        delay: 0.5,
        max_delay: Duration::from_millis(60),
        ..Chaos::NONE
    });
    b.engine.sync_now().await.unwrap();
    let work_a = async {
        for i in 0..8 {
            a.register(&rita, "Vera", &format!("Delayed-{i}")).await;
            let _ = a.engine.sync_now().await;
        }
    };
    let work_b = async {
        for i in 0..8 {
            b.edit(&rita_b, id, |f| f.notes = Some(format!("note {i}")))
                .await;
            let _ = b.engine.sync_now().await;
        }
    };
    tokio::join!(work_a, work_b);
    c.proxy().set_chaos(Chaos::NONE);
    c.proxy().wait_idle().await;

    // Settle without the short timeout: this machine is shared and slow.
    a.engine
        .set_request_timeout(clinic_sync::client::REQUEST_TIMEOUT);
    b.engine
        .set_request_timeout(clinic_sync::client::REQUEST_TIMEOUT);
    settle(&[&a, &b]).await;
    assert!(c.proxy().stats().delayed > 5, "{:?}", c.proxy().stats());
    assert_eq!(c.server_patients().await, 9);
    assert_each_change_once(&c).await;
    assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b]).await;
    assert_eq!(
        a.store.patient(id).await.unwrap().notes.as_deref(),
        Some("note 7")
    );
}

#[tokio::test]
async fn workstations_keep_working_through_a_partition_and_converge_after_it() {
    let c = Clinic::behind_proxy(4).await;
    let [a, b, d] = c.workstations().await;
    let [rita, rita_b, rita_d] = sign_in_each([&a, &b, &d], "rita").await;
    let shared = a.register(&rita, "Anna", "Ivanova").await;
    settle(&[&a, &b, &d]).await;

    c.proxy().partition();
    a.edit(&rita, shared, |f| f.family_name = "Petrova".into())
        .await;
    b.edit(&rita_b, shared, |f| {
        f.family_name = "Sidorova".into();
        f.notes = Some("prefers mornings".into());
    })
    .await;
    let offline = d.register(&rita_d, "Somchai", "Jaidee").await;
    d.edit(&rita_d, shared, |f| f.address = Some("Mira 5".into()))
        .await;
    for ws in [&a, &b, &d] {
        assert!(is_unreachable(ws.engine.sync_now().await));
        assert_eq!(
            ws.engine.status().borrow().connection,
            clinic_domain::workstation::ConnectionState::Offline
        );
    }
    assert_eq!(
        d.store.search("jaidee", 5).await.unwrap()[0].id,
        offline,
        "offline work is there to find"
    );

    c.proxy().heal();
    settle(&[&a, &b, &d]).await;
    assert!(c.proxy().stats().partitioned >= 3);
    assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b, &d]).await;
    let p = d.store.patient(shared).await.unwrap();
    assert_eq!(p.family_name, "Petrova", "the first to reach the server");
    assert_eq!(p.notes.as_deref(), Some("prefers mornings"));
    assert_eq!(p.address.as_deref(), Some("Mira 5"));
    for ws in [&a, &b, &d] {
        let conflicts = ws.store.open_conflicts().await.unwrap();
        assert_eq!(conflicts.len(), 1, "the losing name is shown everywhere");
        assert_eq!(conflicts[0].client_value, serde_json::json!("Sidorova"));
    }
    assert_eq!(c.server_patients().await, 2);
}

#[tokio::test]
async fn a_workstation_killed_mid_sync_resumes_on_its_file() {
    let c = Clinic::behind_proxy(5).await;
    let [a, b] = c.workstations().await;
    let [rita, rita_b] = sign_in_each([&a, &b], "rita").await;
    let ids = [
        a.register(&rita, "Anna", "Ivanova").await,
        a.register(&rita, "Boris", "Petrov").await,
    ];
    let (path, keychain) = (a.path().to_owned(), a.keychain.clone());

    // Killed while the server has committed its push but not answered.
    killed_while_held(&c, a, "/v1/sync/push").await;
    assert_eq!(c.server_patients().await, 2);

    let a = Ws::open(&path, keychain.clone()).await;
    assert_eq!(a.outbox_statuses().await, ["pending", "pending"]);
    b.engine.sync_now().await.unwrap();
    b.edit(&rita_b, ids[1], |f| f.notes = Some("edited on B".into()))
        .await;
    b.engine.sync_now().await.unwrap();

    // Killed again, now while it reads the feed.
    killed_while_held(&c, a, "/v1/sync/pull").await;

    let a = Ws::open(&path, keychain).await;
    assert_eq!(
        a.outbox_statuses().await,
        ["applied", "applied"],
        "the push before the pull was recorded"
    );
    assert_settled_once(&c, &[&a, &b], 2).await;
    assert_eq!(
        a.store.patient(ids[1]).await.unwrap().notes.as_deref(),
        Some("edited on B")
    );
}

/// Found by the simulation: when the answer to a push was lost, the pull
/// that carried the mutation's changes recorded it as applied, even though
/// the server had kept another value for one of its fields (a conflict).
#[tokio::test]
async fn a_lost_answer_to_an_edit_that_lost_a_field_is_settled_as_a_conflict() {
    let c = Clinic::behind_proxy(6).await;
    let [a, b] = c.workstations().await;
    let [rita_a, rita_b] = sign_in_each([&a, &b], "rita").await;
    let id = a.register(&rita_a, "Anna", "Ivanova").await;
    settle(&[&a, &b]).await;

    a.edit(&rita_a, id, |f| f.family_name = "Petrova".into())
        .await;
    a.engine.sync_now().await.unwrap();
    b.edit(&rita_b, id, |f| {
        f.family_name = "Sidorova".into();
        f.notes = Some("prefers mornings".into());
    })
    .await;
    c.proxy().inject("/v1/sync/push", Fault::DropResponse);
    assert!(is_unreachable(b.engine.sync_now().await));
    // The feed shows B's note applied and its name lost, before any push
    // could fetch the stored outcome.
    b.engine.pull_now().await.unwrap();
    assert_eq!(b.outbox_statuses().await, ["conflict"]);

    settle(&[&a, &b]).await;
    assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b]).await;
    assert_eq!(b.store.open_conflicts().await.unwrap().len(), 1);
}

/// A refresh token is used once, and presenting a used one again is taken
/// for theft (the server ends the token family). So a lost answer to a
/// refresh signs the workstation out of the server: the user must sign in
/// online again before their changes go out. Nothing is lost meanwhile,
/// and the status says what is needed.
#[tokio::test]
async fn a_lost_answer_to_a_token_refresh_is_retried_and_loses_nothing() {
    let c = Clinic::behind_proxy(7).await;
    let a = c.workstation().await;
    let rita = a.sign_in("rita").await;
    let id = a.register(&rita, "Anna", "Ivanova").await;
    // The app restarts: access tokens live in memory only.
    let a = a.restart().await;

    c.proxy().inject("/v1/auth/refresh", Fault::DropResponse);
    assert!(is_unreachable(a.engine.sync_now().await));
    // The same refresh token again, within the server's grace period: the
    // retry gets fresh tokens, and nobody has to sign in again.
    settle(&[&a]).await;
    assert!(a.store.is_synced(id).await.unwrap());
    let problem = a.engine.status().borrow().problem.clone().map(|p| p.code);
    assert_ne!(problem, Some(SyncProblemCode::SignInNeeded));
    assert_converged(&c.db.pool, c.db.clinic_id, &[&a]).await;
}

/// Syncs, trying again while the server says it is busy (a copy of this
/// workstation's own push holds its turn); any other error fails the test.
async fn sync_through_busy(ws: &Ws) {
    for _ in 0..50 {
        let r = ws.engine.sync_now().await;
        if r.is_ok() {
            return;
        }
        let shown = format!("{r:?}");
        assert!(is_unreachable(r), "sync failed: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server stayed busy for 5 s");
}
