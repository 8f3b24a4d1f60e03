//! Demographic conflicts: values that lost a concurrent edit, kept for
//! reception to review and settle.

use chrono::{DateTime, Utc};
use clinic_domain::sync::PatientConflict;
use serde_json::{Value, json};
use uuid::Uuid;

/// The columns [`ConflictRow`] reads.
pub(crate) const COLUMNS: &str = "id, patient_id, field, base_value, server_value, client_value, \
     mutation_id, user_id, created_at, resolved_at, version";

/// A `patient_conflicts` row.
#[derive(sqlx::FromRow)]
pub(crate) struct ConflictRow {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub field: String,
    pub base_value: Value,
    pub server_value: Value,
    pub client_value: Value,
    pub mutation_id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl ConflictRow {
    /// The wire form.
    pub(crate) fn to_conflict(&self) -> PatientConflict {
        PatientConflict {
            id: self.id,
            patient_id: self.patient_id,
            field: self.field.clone(),
            base_value: self.base_value.clone(),
            server_value: self.server_value.clone(),
            client_value: self.client_value.clone(),
            mutation_id: self.mutation_id,
            user_id: self.user_id,
            created_at: self.created_at,
            resolved_at: self.resolved_at,
        }
    }

    /// The change-feed form, with how it was settled.
    pub(crate) fn feed_json(&self, choice: Option<&str>) -> Value {
        let mut v = json!(self.to_conflict());
        v["choice"] = json!(choice);
        v
    }
}
