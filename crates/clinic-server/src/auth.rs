//! Sign-in, tokens and the authenticated caller.
//!
//! - Access tokens are short-lived and stateless: `base64url(claims)` `.`
//!   `base64url(HMAC-SHA256(secret, claims))`, so any server process with
//!   the shared secret can check them without a database round trip.
//! - Refresh tokens are random, stored as SHA-256 hashes, used once: each
//!   refresh replaces the token, and presenting a replaced token again
//!   revokes its whole family (a copied token is useless after one use).
//! - Sign-in uses the workstation's password rules and lockout.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use clinic_domain::password::DUMMY_HASH;
use clinic_domain::sync::{ServerUser, TokenResponse};
use clinic_domain::user::{LOCKOUT_MINUTES, Language, MAX_FAILED_SIGN_INS};
use clinic_domain::{Permission, Role};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::users::USER_COLUMNS;

type HmacSha256 = Hmac<Sha256>;

/// What an access token says about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// The user's clinic.
    pub clinic: Uuid,
    /// The user's role when the token was issued (informational: every
    /// request checks the role the user has now).
    pub role: Role,
    /// The user's `auth_version` when the token was issued: a new password
    /// or a disabled account bumps it, which ends the token at once.
    pub ver: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    secret: Vec<u8>,
}

impl TokenKeys {
    /// Keys from the configured secret.
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length")
    }

    /// A signed token for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        format!("{body}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The claims of a token this server signed, if it has not expired.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, &'static str> {
        let (body, sig) = token.split_once('.').ok_or("malformed token")?;
        let sig = B64.decode(sig).map_err(|_| "malformed token")?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| "invalid token")?;
        let bytes = B64.decode(body).map_err(|_| "malformed token")?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| "malformed token")?;
        if claims.exp <= now.timestamp() {
            return Err("token expired");
        }
        Ok(claims)
    }
}

/// The authenticated caller of an endpoint, as the database says now.
///
/// The token only names the user: every request reads the user's current
/// role, disabled flag and `auth_version` (one primary-key lookup), so a
/// demoted, disabled or re-passworded user's old token cannot do what it
/// once could. Each caller also holds a place among the user's requests in
/// flight ([`crate::limits`]) until the request ends.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub user_id: Uuid,
    /// Their clinic: every query is limited to it.
    pub clinic_id: Uuid,
    /// Their role now.
    pub role: Role,
    /// The token's `auth_version` and expiry, for a long-lived answer (the
    /// live channel) to check again later.
    token_version: i64,
    token_expires: i64,
    _held: crate::limits::Held,
}

/// What a request's token was accepted on, to check again during a
/// long-lived answer without holding the caller's share of the pool.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    user: Uuid,
    clinic: Uuid,
    version: i64,
    expires: i64,
}

impl Standing {
    /// Whether the token still holds: not expired, the user not disabled,
    /// no new password since (one primary-key lookup).
    pub async fn holds(&self, pool: &PgPool) -> bool {
        Utc::now().timestamp() < self.expires
            && current_role(pool, self.user, self.clinic, self.version)
                .await
                .is_ok()
    }
}

impl Caller {
    /// What the caller's token was accepted on, to check again later.
    pub fn standing(&self) -> Standing {
        Standing {
            user: self.user_id,
            clinic: self.clinic_id,
            version: self.token_version,
            expires: self.token_expires,
        }
    }

    /// Fails with 403 unless the role grants `permission`.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                self.role.as_str()
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthenticated("no bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(ApiError::Unauthenticated("no bearer token"))?;
        let claims = state
            .keys
            .verify(token, Utc::now())
            .map_err(ApiError::Unauthenticated)?;
        // Taken before the lookup: the lookup is the first use of the pool.
        let held = state.limits.user_request(claims.sub)?;
        let role = current_role(&state.pool, claims.sub, claims.clinic, claims.ver).await?;
        Ok(Caller {
            user_id: claims.sub,
            clinic_id: claims.clinic,
            role,
            token_version: claims.ver,
            token_expires: claims.exp,
            _held: held,
        })
    }
}

/// The role of the user a token names, as it is now; refused when the user
/// is unknown or disabled, or the token's `auth_version` is not theirs now.
async fn current_role(pool: &PgPool, user: Uuid, clinic: Uuid, version: i64) -> ApiResult<Role> {
    let row: Option<(String, bool, i64)> = sqlx::query_as(
        "SELECT role, disabled, auth_version FROM users WHERE id = $1 AND clinic_id = $2",
    )
    .bind(user)
    .bind(clinic)
    .fetch_optional(pool)
    .await?;
    let (role, disabled, now) = row.ok_or(ApiError::Unauthenticated("unknown user"))?;
    if disabled {
        return Err(ApiError::AccountDisabled);
    }
    if now != version {
        return Err(ApiError::Unauthenticated(
            "the token was revoked (new password or account change); sign in again",
        ));
    }
    Role::parse(&role).ok_or(ApiError::Internal)
}

/// SHA-256 of `text`, in lower-case hex: how the server stores refresh
/// tokens, clinical events' payloads and pushed mutations' contents.
pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of a refresh token, as stored.
fn token_hash(token: &str) -> String {
    sha256_hex(token)
}

/// A user row as the auth code needs it.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub clinic_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub language: String,
    pub password_hash: String,
    pub disabled: bool,
    pub auth_version: i64,
}

impl UserRow {
    /// The shareable form of the user.
    pub(crate) fn to_server_user(&self) -> ServerUser {
        ServerUser {
            id: self.id,
            clinic_id: self.clinic_id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: Role::parse(&self.role).unwrap_or(Role::Nurse),
            language: Language::parse(&self.language).unwrap_or(Language::En),
            disabled: self.disabled,
        }
    }
}

/// Checks a user's password with the lockout rules; on success returns the user.
///
/// The count is atomic however the attempts arrive: before its password is
/// checked, each attempt takes a numbered place with one `UPDATE`
/// ([`take_attempt`]). Places beyond [`MAX_FAILED_SIGN_INS`] are refused
/// as locked without a check, and the failure in the last place sets the
/// lock, so at most five guesses are ever checked before it holds, even
/// when thirty arrive at once. No row lock is held while Argon2 runs.
///
/// A disabled account answers as a wrong password unless the password is
/// right: a guesser learns nothing about the account.
pub(crate) async fn check_credentials(
    state: &AppState,
    clinic: &str,
    username: &str,
    password: &str,
) -> ApiResult<UserRow> {
    let user: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE clinic_id = (SELECT id FROM clinics WHERE code = $1) AND lower(username) = lower($2)"
    ))
    .bind(clinic)
    .bind(username)
    .fetch_optional(&state.pool)
    .await?;
    let now = Utc::now();
    let place = match &user {
        Some(u) => take_attempt(state, u.id, now).await?,
        None => None,
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let pw = password.to_owned();
    // An unknown user costs the same Argon2 time as a known one.
    let ok =
        tokio::task::spawn_blocking(move || clinic_domain::password::verify_password(&pw, &hash))
            .await
            .map_err(|_| ApiError::Internal)?;
    let Some(user) = user else {
        return Err(ApiError::InvalidCredentials);
    };
    let audit = |action: &'static str| {
        crate::audit::record(
            &state.pool,
            Some(user.clinic_id),
            Some(user.id),
            action,
            "user",
            Some(user.id),
            None,
        )
    };
    let Some(place) = place else {
        audit("sign_in_locked").await?;
        return Err(ApiError::AccountLocked);
    };
    if !ok {
        let locks = i64::from(place) >= MAX_FAILED_SIGN_INS;
        if locks {
            sqlx::query("UPDATE users SET locked_until = $2 WHERE id = $1")
                .bind(user.id)
                .bind(now + Duration::minutes(LOCKOUT_MINUTES))
                .execute(&state.pool)
                .await?;
        }
        audit("sign_in_failed").await?;
        return Err(if locks {
            ApiError::AccountLocked
        } else {
            ApiError::InvalidCredentials
        });
    }
    sqlx::query("UPDATE users SET failed_sign_ins = 0 WHERE id = $1")
        .bind(user.id)
        .execute(&state.pool)
        .await?;
    if user.disabled {
        audit("sign_in_disabled").await?;
        return Err(ApiError::AccountDisabled);
    }
    audit("sign_in").await?;
    Ok(user)
}

/// Takes the next place among the account's attempts since its last
/// success, in one statement: `None` when the account is locked or
/// [`MAX_FAILED_SIGN_INS`] attempts are already counted. An expired lock
/// starts the count again.
async fn take_attempt(state: &AppState, user: Uuid, now: DateTime<Utc>) -> ApiResult<Option<i32>> {
    let place: Option<(i32,)> = sqlx::query_as(
        "UPDATE users SET \
           failed_sign_ins = CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_sign_ins + 1 END, \
           locked_until = NULL \
         WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) RETURNING failed_sign_ins",
    )
    .bind(user)
    .bind(now)
    .fetch_optional(&state.pool)
    .await?;
    Ok(place
        .map(|p| p.0)
        .filter(|p| i64::from(*p) <= MAX_FAILED_SIGN_INS))
}

/// Issues an access token and a new refresh token in `family`.
pub(crate) async fn issue_tokens(
    state: &AppState,
    conn: &mut PgConnection,
    user: &UserRow,
    family: Uuid,
) -> ApiResult<TokenResponse> {
    let now = Utc::now();
    let minutes = state.config.access_token_minutes;
    let role = Role::parse(&user.role).ok_or(ApiError::Internal)?;
    let access_token = state.keys.sign(&Claims {
        sub: user.id,
        clinic: user.clinic_id,
        role,
        ver: user.auth_version,
        exp: (now + Duration::minutes(minutes)).timestamp(),
    });
    let refresh_token = B64.encode(rand::random::<[u8; 32]>());
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(family)
    .bind(user.id)
    .bind(token_hash(&refresh_token))
    .bind(now + Duration::days(state.config.refresh_token_days))
    .execute(&mut *conn)
    .await?;
    Ok(TokenResponse {
        access_token,
        expires_in: minutes * 60,
        refresh_token,
        user: user.to_server_user(),
    })
}

/// Exchanges a refresh token for new tokens, rotating it.
pub(crate) async fn refresh(state: &AppState, token: &str) -> ApiResult<TokenResponse> {
    let mut tx = state.pool.begin().await?;
    #[derive(sqlx::FromRow)]
    struct Stored {
        id: Uuid,
        family_id: Uuid,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
        replaced_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
    }
    let row: Option<Stored> = sqlx::query_as(
        "SELECT id, family_id, user_id, expires_at, replaced_at, revoked_at FROM refresh_tokens \
         WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(Stored {
        id,
        family_id: family,
        user_id,
        expires_at,
        replaced_at,
        revoked_at,
    }) = row
    else {
        return Err(ApiError::Unauthenticated("unknown refresh token"));
    };
    let now = Utc::now();
    // A token presented again within the grace period is a retry whose
    // answer was lost on the way (flaky clinic networks): it gets a fresh
    // pair. Later, it is a copy someone kept.
    let grace = Duration::seconds(state.config.refresh_reuse_grace_seconds);
    let retry = replaced_at.is_some_and(|t| now - t <= grace) && revoked_at.is_none();
    if replaced_at.is_some() && !retry {
        // A used token came back: someone kept a copy. End the family.
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(%user_id, "refresh token reused; its family is revoked");
        return Err(ApiError::Unauthenticated("refresh token already used"));
    }
    if revoked_at.is_some() || expires_at <= now {
        return Err(ApiError::Unauthenticated(
            "refresh token expired or revoked",
        ));
    }
    let user: UserRow = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    // The grace period counts from the first use.
    sqlx::query("UPDATE refresh_tokens SET replaced_at = COALESCE(replaced_at, $1) WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let tokens = issue_tokens(state, &mut tx, &user, family).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// Revokes the family of a refresh token (sign-out).
pub(crate) async fn revoke(state: &AppState, token: &str) -> ApiResult<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = \
         (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
    )
    .bind(token_hash(token))
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Revokes every refresh token of a user (disabled, password reset).
pub(crate) async fn revoke_user(conn: &mut PgConnection, user_id: Uuid) -> ApiResult<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::now_v7(),
            clinic: Uuid::now_v7(),
            role: Role::Nurse,
            ver: 1,
            exp,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let c = claims(now.timestamp() + 60);
        let t = keys.sign(&c);
        assert_eq!(keys.verify(&t, now), Ok(c));
        assert_eq!(
            keys.verify(&t, now + Duration::seconds(61)),
            Err("token expired")
        );
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let other = TokenKeys::new("fedcba9876543210fedcba9876543210");
        let now = Utc::now();
        let t = keys.sign(&claims(now.timestamp() + 60));
        assert_eq!(other.verify(&t, now), Err("invalid token"));
        // Promote the nurse to admin in the body, keep the signature.
        let (body, sig) = t.split_once('.').unwrap();
        let json = String::from_utf8(B64.decode(body).unwrap()).unwrap();
        let forged = B64.encode(json.replace("nurse", "admin"));
        assert_eq!(
            keys.verify(&format!("{forged}.{sig}"), now),
            Err("invalid token")
        );
        assert_eq!(keys.verify("garbage", now), Err("malformed token"));
    }
}
