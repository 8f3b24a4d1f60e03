//! `/health` (the process is up) and `/ready` (it can serve: the database answers).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The answer of `/health` and `/ready`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` (health) or `ready`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness: answers while the process runs.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The process runs", body = Status)),
    extensions(("x-permission" = json!("public"))),
)]
pub async fn health() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Readiness: answers 200 only when the database does.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "The database answers", body = Status),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    extensions(("x-permission" = json!("public"))),
)]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(Json(Status { status: "ready" }))
}
