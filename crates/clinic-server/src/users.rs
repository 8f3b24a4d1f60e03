//! Users and clinics, managed centrally. Every change to a user goes to the
//! clinic's change feed (without the password hash), so workstations learn
//! about new, changed and disabled accounts.

use clinic_domain::sync::ServerUser;
use clinic_domain::user::NewUser;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::UserRow;
use crate::error::{ApiError, ApiResult};
use crate::feed::FeedBatch;

pub(crate) const USER_COLUMNS: &str = "id, clinic_id, username, display_name, role, language, password_hash, \
     disabled, auth_version";

/// An Argon2id hash with a fresh salt, off the async threads.
async fn hash_password(password: &str) -> ApiResult<String> {
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || clinic_domain::password::hash_password(&pw, rand::random()))
        .await
        .map_err(|_| ApiError::Internal)?
        .ok_or(ApiError::Internal)
}

/// Creates a clinic with its own MRN prefix for server-registered patients.
pub async fn create_clinic(pool: &PgPool, code: &str, name: &str) -> ApiResult<Uuid> {
    let id = Uuid::now_v7();
    let prefix = clinic_domain::mrn::MrnPrefix::from_random(rand::random());
    let mut tx = pool.begin().await?;
    let done = sqlx::query("INSERT INTO clinics (id, code, name, mrn_prefix) VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING")
        .bind(id)
        .bind(code)
        .bind(name)
        .bind(prefix.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_check_violation() => {
                ApiError::BadRequest("a clinic code is 2 to 40 lower-case letters, digits or '-'".into())
            }
            other => other.into(),
        })?;
    if done.rows_affected() == 0 {
        return Err(ApiError::Conflict(format!(
            "a clinic with code {code} exists"
        )));
    }
    sqlx::query("INSERT INTO clinic_feed_counter (clinic_id) VALUES ($1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The id of the clinic with `code`.
pub async fn clinic_id(pool: &PgPool, code: &str) -> ApiResult<Uuid> {
    let row: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM clinics WHERE code = $1")
        .bind(code)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.0).ok_or(ApiError::NotFound("clinic"))
}

async fn load(conn: &mut PgConnection, clinic_id: Uuid, id: Uuid) -> ApiResult<UserRow> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND clinic_id = $2"
    ))
    .bind(id)
    .bind(clinic_id)
    .fetch_optional(conn)
    .await?
    .ok_or(ApiError::NotFound("user"))
}

async fn publish(conn: &mut PgConnection, user: &ServerUser, version: i64) -> ApiResult<()> {
    let mut feed = FeedBatch::default();
    feed.push(
        clinic_domain::sync::Entity::User,
        user.id,
        version,
        json!(user),
        None,
    );
    feed.publish(conn, user.clinic_id).await?;
    Ok(())
}

/// Creates a user after checking the password policy.
pub async fn create_user(
    pool: &PgPool,
    clinic_id: Uuid,
    by: Option<Uuid>,
    new: NewUser,
) -> ApiResult<ServerUser> {
    new.validate().map_err(ApiError::Validation)?;
    let hash = hash_password(&new.password).await?;
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, clinic_id, username, display_name, role, language, password_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(clinic_id)
    .bind(new.username.trim())
    .bind(new.display_name.trim())
    .bind(new.role.as_str())
    .bind(new.language.as_str())
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::Conflict(
            "a user with this name exists in the clinic".into(),
        ));
    }
    let user = load(&mut tx, clinic_id, id).await?.to_server_user();
    publish(&mut tx, &user, 1).await?;
    crate::audit::record(
        &mut *tx,
        Some(clinic_id),
        by,
        "user.create",
        "user",
        Some(id),
        Some(json!({"role": new.role})),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Changes a user's role, display name, language or disabled flag. Disabling
/// ends the user's refresh tokens and access tokens; a new role applies to
/// the user's next request (every request reads it).
pub async fn update_user(
    pool: &PgPool,
    clinic_id: Uuid,
    by: Uuid,
    id: Uuid,
    change: &UserChange,
) -> ApiResult<ServerUser> {
    let mut tx = pool.begin().await?;
    let before = load(&mut tx, clinic_id, id).await?;
    let role = change
        .role
        .map(|r| r.as_str().to_owned())
        .unwrap_or(before.role.clone());
    let language = change
        .language
        .map(|l| l.as_str().to_owned())
        .unwrap_or(before.language.clone());
    let display = change
        .display_name
        .as_deref()
        .map(str::trim)
        .unwrap_or(&before.display_name)
        .to_owned();
    if !clinic_domain::user::is_display_name(&display) {
        return Err(ApiError::Validation(vec![clinic_domain::FieldError::new(
            "display_name",
            clinic_domain::FieldCode::Required,
            "is required (at most 100 characters)",
        )]));
    }
    let disabled = change.disabled.unwrap_or(before.disabled);
    if by == id && (disabled || role != "admin") {
        return Err(ApiError::Conflict(
            "admins cannot disable or demote themselves".into(),
        ));
    }
    let (version,): (i64,) = sqlx::query_as(
        "UPDATE users SET role = $2, language = $3, display_name = $4, disabled = $5, updated_at = now(), \
         version = version + 1, auth_version = auth_version + CASE WHEN $5 AND NOT disabled THEN 1 ELSE 0 END \
         WHERE id = $1 RETURNING version",
    )
    .bind(id)
    .bind(&role)
    .bind(&language)
    .bind(&display)
    .bind(disabled)
    .fetch_one(&mut *tx)
    .await?;
    if disabled {
        crate::auth::revoke_user(&mut tx, id).await?;
    }
    let user = load(&mut tx, clinic_id, id).await?.to_server_user();
    publish(&mut tx, &user, version).await?;
    crate::audit::record(
        &mut *tx,
        Some(clinic_id),
        Some(by),
        "user.update",
        "user",
        Some(id),
        Some(json!({"role": [before.role, role], "disabled": [before.disabled, disabled]})),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Sets a new password (policy checked) and ends the user's refresh tokens.
pub async fn reset_password(
    pool: &PgPool,
    clinic_id: Uuid,
    by: Uuid,
    id: Uuid,
    password: &str,
) -> ApiResult<()> {
    let mut tx = pool.begin().await?;
    let user = load(&mut tx, clinic_id, id).await?;
    clinic_domain::user::check_password(password, &user.username)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let hash = hash_password(password).await?;
    // A new auth_version ends every access token issued before.
    sqlx::query("UPDATE users SET password_hash = $2, failed_sign_ins = 0, locked_until = NULL, updated_at = now(), \
                 auth_version = auth_version + 1 WHERE id = $1")
        .bind(id)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    crate::auth::revoke_user(&mut tx, id).await?;
    crate::audit::record(
        &mut *tx,
        Some(clinic_id),
        Some(by),
        "user.reset_password",
        "user",
        Some(id),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A partial change of a user (`PATCH /v1/users/{id}`); absent fields stay.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// New role.
    #[serde(default)]
    pub role: Option<clinic_domain::Role>,
    /// New display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New UI language.
    #[serde(default)]
    pub language: Option<clinic_domain::user::Language>,
    /// Disable or re-enable.
    #[serde(default)]
    pub disabled: Option<bool>,
}
