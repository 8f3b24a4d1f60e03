//! A kind on the generic record road (departments) between two
//! workstations and the server: created on one and pulled on the other,
//! renamed on both while offline, the loser refused and shown, both ending
//! on the server's version.

use clinic_domain::record::Department;
use clinic_domain::sync::{Entity, Op, RejectCode};
use clinic_store::Mutation;
use serde_json::json;
use uuid::Uuid;

use crate::invariants::assert_converged;
use crate::proxy::Fault;
use crate::support::{Clinic, Ws, settle, sign_in_each};

/// A department made on `a` and pulled by `b`, then renamed on both on
/// version 1 before either syncs: `a` to "Heart", `b` to "Cardio".
async fn renamed_on_both(a: &Ws, b: &Ws) -> Uuid {
    let [alice_a, alice_b] = sign_in_each([a, b], "alice").await;
    let id = Uuid::now_v7();
    a.store
        .commit(
            &alice_a,
            Mutation::RecordCreate {
                entity: Entity::Department,
                id,
                fields: json!({"name": "Cardiology"}),
            },
        )
        .await
        .unwrap();
    settle(&[a, b]).await;
    let on_b = b.store.record::<Department>(id).await.unwrap();
    assert_eq!((on_b.fields.name.as_str(), on_b.version), ("Cardiology", 1));
    for (ws, actor, name) in [(a, &alice_a, "Heart"), (b, &alice_b, "Cardio")] {
        ws.store
            .commit(
                actor,
                Mutation::RecordUpdate {
                    entity: Entity::Department,
                    id,
                    base_version: 1,
                    fields: json!({ "name": name }),
                },
            )
            .await
            .unwrap();
    }
    id
}

/// Both workstations show `name` at version 2, and the clinic converged.
async fn both_show(c: &Clinic, a: &Ws, b: &Ws, id: Uuid, name: &str) {
    for ws in [a, b] {
        let r = ws.store.record::<Department>(id).await.unwrap();
        assert_eq!((r.fields.name.as_str(), r.version), (name, 2));
    }
    assert_converged(&c.db.pool, c.db.clinic_id, &[a, b]).await;
}

#[tokio::test]
async fn departments_travel_and_a_concurrent_rename_is_refused_visibly() {
    let (c, [a, b]) = Clinic::with_workstations().await;
    let id = renamed_on_both(&a, &b).await;
    a.engine.sync_now().await.unwrap();
    settle(&[&a, &b]).await;
    // A's rename reached the server first; B's is refused, kept and shown.
    let refused = b.store.refused_changes(10).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].entity, refused[0].op),
        (Entity::Department, Op::Update)
    );
    assert_eq!(refused[0].code, Some(RejectCode::ChangedMeanwhile));
    both_show(&c, &a, &b, id, "Heart").await;
}

/// A refused update whose answer was lost after the workstation pulled the
/// server's version (its own change put back on top, still pending): the
/// replayed push gets the stored refusal, and the server's version comes
/// again behind it, so the workstation ends showing what the server has.
#[tokio::test]
async fn a_refusal_whose_answer_was_lost_still_brings_the_servers_version() {
    let c = Clinic::behind_proxy(7).await;
    let [a, b] = c.workstations().await;
    let id = renamed_on_both(&a, &b).await;
    b.engine.push_now().await.unwrap();
    // A's push is refused (changed meanwhile), but the answer never arrives.
    c.proxy().inject("/v1/sync/push", Fault::DropResponse);
    assert!(a.engine.push_now().await.is_err());
    // A pulls the server's version while its own rename is still pending.
    a.engine.pull_now().await.unwrap();
    settle(&[&a, &b]).await;
    assert_eq!(a.store.refused_changes(10).await.unwrap().len(), 1);
    both_show(&c, &a, &b, id, "Cardio").await;
}
