//! Sign-in, token refresh, sign-out and "who am I".

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use clinic_domain::sync::{RefreshRequest, ServerUser, SignInRequest, TokenResponse};
use uuid::Uuid;

use super::extract::{ApiJson, ClientAddress};
use crate::auth::{self, Caller, UserRow};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::users::USER_COLUMNS;

/// Sign in: an access token and a refresh token.
#[utoipa::path(
    post,
    path = "/v1/auth/sign-in",
    tag = "auth",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong clinic, user name or password", body = ErrorBody),
        (status = 403, description = "The account is locked, or disabled (said only after the right password)", body = ErrorBody),
        (status = 429, description = "Too many attempts for this account or from this address; see Retry-After", body = ErrorBody),
    ),
    extensions(("x-permission" = json!("public"))),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(req): ApiJson<SignInRequest>,
) -> ApiResult<Json<TokenResponse>> {
    state.limits.sign_in(&req.clinic, &req.username, address)?;
    let user = auth::check_credentials(&state, &req.clinic, &req.username, &req.password).await?;
    let mut conn = state.pool.acquire().await?;
    let tokens = auth::issue_tokens(&state, &mut conn, &user, Uuid::now_v7()).await?;
    Ok(Json(tokens))
}

/// Rotate a refresh token: a new access token and the next refresh token.
///
/// Presenting a refresh token that was already used revokes its family.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "The refresh token is unknown, used or expired", body = ErrorBody),
        (status = 403, description = "The account is disabled", body = ErrorBody),
    ),
    extensions(("x-permission" = json!("public"))),
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(auth::refresh(&state, &req.refresh_token).await?))
}

/// Sign out: revokes the refresh token's family.
#[utoipa::path(
    post,
    path = "/v1/auth/sign-out",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")),
    extensions(("x-permission" = json!("public"))),
)]
pub async fn sign_out(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    auth::revoke(&state, &req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The user the token belongs to", body = ServerUser)),
    extensions(("x-permission" = json!("signed_in"))),
)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<ServerUser>> {
    let user: UserRow = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND clinic_id = $2"
    ))
    .bind(caller.user_id)
    .bind(caller.clinic_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Unauthenticated("unknown user"))?;
    Ok(Json(user.to_server_user()))
}
