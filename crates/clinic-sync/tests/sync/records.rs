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
use crate::support::{Clinic, settle, sign_in_each};

#[tokio::test]
async fn departments_travel_and_a_concurrent_rename_is_refused_visibly() {
    let (c, [a, b]) = Clinic::with_workstations().await;
    let [alice_a, alice_b] = sign_in_each([&a, &b], "alice").await;
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
    settle(&[&a, &b]).await;
    let on_b = b.store.record::<Department>(id).await.unwrap();
    assert_eq!((on_b.fields.name.as_str(), on_b.version), ("Cardiology", 1));

    // Both rename it on version 1 before either has synced.
    for (ws, actor, name) in [(&a, &alice_a, "Heart"), (&b, &alice_b, "Cardio")] {
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
    a.engine.sync_now().await.unwrap();
    settle(&[&a, &b]).await;
    // A's rename reached the server first; B's is refused, kept and shown.
    for ws in [&a, &b] {
        let r = ws.store.record::<Department>(id).await.unwrap();
        assert_eq!((r.fields.name.as_str(), r.version), ("Heart", 2));
    }
    let refused = b.store.refused_changes(10).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].entity, refused[0].op),
        (Entity::Department, Op::Update)
    );
    assert_eq!(refused[0].code, Some(RejectCode::ChangedMeanwhile));
    assert_converged(&c.db.pool, c.db.clinic_id, &[&a, &b]).await;
}
