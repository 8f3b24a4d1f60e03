//! Central user management for the clinic's admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use clinic_domain::Permission;
use clinic_domain::sync::{PatientConflict, ServerUser};
use clinic_domain::user::NewUser;
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath};
use crate::auth::{Caller, UserRow};
use crate::conflicts::{COLUMNS, ConflictRow};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::users::{self, USER_COLUMNS, UserChange};

/// `GET /v1/users`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ServerUser>>> {
    caller.require(Permission::ManageUsers)?;
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE clinic_id = $1 ORDER BY lower(username)"
    ))
    .bind(caller.clinic_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.iter().map(UserRow::to_server_user).collect()))
}

/// `POST /v1/users`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<ServerUser>)> {
    caller.require(Permission::ManageUsers)?;
    let user = users::create_user(&state.pool, caller.clinic_id, Some(caller.user_id), new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PATCH /v1/users/{id}`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(change): ApiJson<UserChange>,
) -> ApiResult<Json<ServerUser>> {
    caller.require(Permission::ManageUsers)?;
    Ok(Json(
        users::update_user(&state.pool, caller.clinic_id, caller.user_id, id, &change).await?,
    ))
}

/// Body of `POST /v1/users/{id}/password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    password: String,
}

/// `POST /v1/users/{id}/password`.
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PasswordReset>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ManageUsers)?;
    users::reset_password(
        &state.pool,
        caller.clinic_id,
        caller.user_id,
        id,
        &body.password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/conflicts`: open demographic conflicts of the clinic.
pub async fn conflicts(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<PatientConflict>>> {
    caller.require(Permission::WriteDemographics)?;
    let rows: Vec<ConflictRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM patient_conflicts WHERE clinic_id = $1 AND resolved_at IS NULL ORDER BY created_at"
    ))
    .bind(caller.clinic_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.iter().map(ConflictRow::to_conflict).collect()))
}
