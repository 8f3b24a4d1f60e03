//! The workstation's commands for record kinds on the generic road
//! ([`clinic_domain::record`]): each checks the signed-in user's permission
//! for the kind, then goes through the one write path.

use clinic_domain::record::{Record, RecordKind};
use uuid::Uuid;

use crate::{Mutation, Result, StoreError, Workstation};

impl Workstation {
    /// Creates a record of kind `K` as the signed-in user.
    pub async fn record_create<K: RecordKind>(&self, fields: K) -> Result<Record<K>> {
        let id = Uuid::now_v7();
        self.commit_record::<K>(id, fields, |entity, fields| Mutation::RecordCreate {
            entity,
            id,
            fields,
        })
        .await
    }

    /// Saves `fields` as record `id`'s, made on `base_version`.
    pub async fn record_update<K: RecordKind>(
        &self,
        id: Uuid,
        base_version: i64,
        fields: K,
    ) -> Result<Record<K>> {
        self.commit_record::<K>(id, fields, |entity, fields| Mutation::RecordUpdate {
            entity,
            id,
            base_version,
            fields,
        })
        .await
    }

    /// Commits the change `make` builds from `fields` as the signed-in user
    /// (who needs the kind's write permission) and reads record `id` back.
    async fn commit_record<K: RecordKind>(
        &self,
        id: Uuid,
        fields: K,
        make: impl FnOnce(clinic_domain::sync::Entity, serde_json::Value) -> Mutation,
    ) -> Result<Record<K>> {
        let actor = self.authorize(Some(K::WRITE))?;
        let fields =
            serde_json::to_value(fields).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.store().commit(&actor, make(K::ENTITY, fields)).await?;
        self.store().record(id).await
    }

    /// Every record of kind `K`, for any signed-in user (set-up data such as
    /// departments is what every screen refers to).
    pub async fn records<K: RecordKind>(&self) -> Result<Vec<Record<K>>> {
        self.authorize(None)?;
        self.store().records().await
    }
}
