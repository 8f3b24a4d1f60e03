//! Sign-in, token refresh, sign-out and "who am I".

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use clinic_domain::sync::{RefreshRequest, ServerUser, SignInRequest, TokenResponse};
use uuid::Uuid;

use super::extract::ApiJson;
use crate::auth::{self, Caller, UserRow};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `POST /v1/auth/sign-in`.
pub async fn sign_in(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignInRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let user = auth::check_credentials(&state, &req.clinic, &req.username, &req.password).await?;
    let mut conn = state.pool.acquire().await?;
    let tokens = auth::issue_tokens(&state, &mut conn, &user, Uuid::now_v7()).await?;
    Ok(Json(tokens))
}

/// `POST /v1/auth/refresh`: a new access token and the next refresh token.
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(auth::refresh(&state, &req.refresh_token).await?))
}

/// `POST /v1/auth/sign-out`: revokes the refresh token's family.
pub async fn sign_out(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    auth::revoke(&state, &req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/me`.
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<ServerUser>> {
    let user: UserRow = sqlx::query_as(
        "SELECT id, clinic_id, username, display_name, role, language, password_hash, disabled, \
         failed_sign_ins, locked_until FROM users WHERE id = $1 AND clinic_id = $2",
    )
    .bind(caller.user_id)
    .bind(caller.clinic_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Unauthenticated("unknown user"))?;
    Ok(Json(user.to_server_user()))
}
