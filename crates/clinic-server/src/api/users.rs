//! Central user management for the clinic's admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use clinic_domain::Permission;
use clinic_domain::sync::{PatientConflict, ServerUser};
use clinic_domain::user::NewUser;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath};
use crate::auth::{Caller, UserRow};
use crate::conflicts::{COLUMNS, ConflictRow};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::users::{self, USER_COLUMNS, UserChange};

/// The clinic's users.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Users ordered by user name", body = Vec<ServerUser>),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ManageUsers))),
)]
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

/// Create a user; the password must meet the password policy.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ServerUser),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
        (status = 409, description = "A user with this name exists in the clinic", body = ErrorBody),
        (status = 422, description = "Field validation failed", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ManageUsers))),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<ServerUser>)> {
    caller.require(Permission::ManageUsers)?;
    let user = users::create_user(&state.pool, caller.clinic_id, Some(caller.user_id), new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Change a user's role, display name, language or disabled flag.
///
/// Disabling ends the user's refresh tokens.
#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = UserChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed user", body = ServerUser),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
        (status = 404, description = "No such user in the caller's clinic", body = ErrorBody),
        (status = 409, description = "Admins cannot disable or demote themselves", body = ErrorBody),
        (status = 422, description = "Field validation failed", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ManageUsers))),
)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The new password; it must meet the password policy.
    password: String,
}

/// Reset a user's password; ends the user's refresh tokens.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/password",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = PasswordReset,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The password is changed"),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
        (status = 404, description = "No such user in the caller's clinic", body = ErrorBody),
        (status = 422, description = "The password does not meet the policy", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ManageUsers))),
)]
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

/// The clinic's open demographic conflicts, oldest first.
#[utoipa::path(
    get,
    path = "/v1/conflicts",
    tag = "sync",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Open conflicts", body = Vec<PatientConflict>),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::WriteDemographics))),
)]
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
