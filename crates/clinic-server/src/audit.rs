//! The server's audit trail: who did what, when, from which workstation.
//! Entries name records by id; values stay in the records themselves.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::ApiResult;

/// Appends one audit entry.
pub(crate) async fn record<'e>(
    db: impl PgExecutor<'e>,
    clinic_id: Option<Uuid>,
    user_id: Option<Uuid>,
    action: &str,
    entity: &str,
    entity_id: Option<Uuid>,
    detail: Option<Value>,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (clinic_id, user_id, action, entity, entity_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(clinic_id)
    .bind(user_id)
    .bind(action)
    .bind(entity)
    .bind(entity_id)
    .bind(detail)
    .execute(db)
    .await?;
    Ok(())
}
