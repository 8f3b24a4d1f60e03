//! Sign-in, tokens and the authenticated caller.
//!
//! - Access tokens are short-lived, stateless JWTs (RFC 7519, HS256, made
//!   and checked by `jsonwebtoken`), so any server process with the shared
//!   secret can check them without a database round trip, and other
//!   software can read them with any JWT library. Claims: `iss`
//!   ([`ISSUER`]), `aud` ([`AUDIENCE`]), `sub` (the user id), `iat`, `exp`,
//!   and the private `clinic`, `role` and `ver` ([`Claims`]).
//! - The header's `kid` names the secret that signed the token: the first
//!   8 hex digits of the secret's SHA-256 ([`key_id`]). The configured
//!   `token_secret` signs; the `previous_token_secrets` are still accepted,
//!   so the secret can be rotated without signing everyone out. A token
//!   with an unknown `kid`, another `alg` than HS256 (`none` included), a
//!   wrong `iss` or `aud`, or a changed header or payload is refused; so
//!   is a token at or after its `exp`, by the server's clock, with no
//!   leeway.
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
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::users::USER_COLUMNS;

/// The `iss` of every access token: who signed it.
pub const ISSUER: &str = "clinic-server";
/// The `aud` of every access token: whom it is for.
pub const AUDIENCE: &str = "clinic-workstation";
/// The only signing algorithm made or accepted.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// Longer "tokens" are refused unread; ours are about 400 characters.
const MAX_TOKEN_LEN: usize = 4096;

/// What an access token says about its bearer (besides `iss` and `aud`,
/// which [`TokenKeys::sign`] adds and [`TokenKeys::verify`] requires).
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
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// The claims as signed: [`Claims`] with the issuer and audience.
#[derive(Serialize)]
struct Registered<'a> {
    iss: &'static str,
    aud: &'static str,
    #[serde(flatten)]
    claims: &'a Claims,
}

/// The key id of a secret: the first 8 hex digits of its SHA-256 (so an
/// operator can tell which secret a token names with `sha256sum`).
pub fn key_id(secret: &str) -> String {
    sha256_hex(secret)[..8].to_owned()
}

/// A secret that verifies tokens, by key id.
#[derive(Clone)]
struct Accepted {
    kid: String,
    key: DecodingKey,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    /// The current secret's id and key: signs every new token.
    kid: String,
    signing: EncodingKey,
    /// The current secret first, then the previous ones.
    accepted: Vec<Accepted>,
    validation: Validation,
}

impl TokenKeys {
    /// Keys from the current secret, which signs, and previous secrets,
    /// whose tokens are still accepted. Fails on an empty secret or two
    /// secrets with one key id.
    pub fn new(current: &str, previous: &[String]) -> anyhow::Result<Self> {
        // The one backend this build enables, which jsonwebtoken picks by
        // itself; installed by name so that, should another crate enable a
        // second backend, it is still the one (else none would be picked
        // and every token would panic). A second install is a no-op.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let mut accepted: Vec<Accepted> = Vec::new();
        for secret in std::iter::once(current).chain(previous.iter().map(String::as_str)) {
            let kid = key_id(secret);
            if accepted.iter().any(|a| a.kid == kid) {
                anyhow::bail!(
                    "two token secrets have the key id {kid}; every secret must differ (replace one)"
                );
            }
            let key = DecodingKey::from_secret(secret.as_bytes())
                .map_err(|_| anyhow::anyhow!("a token secret is empty"))?;
            accepted.push(Accepted { kid, key });
        }
        let signing = EncodingKey::from_secret(current.as_bytes())
            .map_err(|_| anyhow::anyhow!("token_secret is empty"))?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // `exp` is checked in `verify` against the clock it is given.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Ok(Self {
            kid: accepted[0].kid.clone(),
            signing,
            accepted,
            validation,
        })
    }

    /// Keys from the configuration's `token_secret` and
    /// `previous_token_secrets`.
    pub fn from_config(config: &crate::Config) -> anyhow::Result<Self> {
        Self::new(&config.token_secret, &config.previous_token_secrets)
    }

    /// A token for `claims`, signed with the current secret.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.kid.clone());
        let registered = Registered {
            iss: ISSUER,
            aud: AUDIENCE,
            claims,
        };
        jsonwebtoken::encode(&header, &registered, &self.signing)
            .expect("an HMAC key signs any claims")
    }

    /// The claims of a token signed with one of the accepted secrets, if
    /// it is for this server's audience and has not expired at `now`.
    /// Any input is only an error, never a panic.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, &'static str> {
        if token.len() > MAX_TOKEN_LEN {
            return Err("malformed token");
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        let Some(accepted) = header
            .kid
            .as_deref()
            .and_then(|kid| self.accepted.iter().find(|a| a.kid == kid))
        else {
            tracing::debug!(kid = ?header.kid, "access token refused: unknown key id");
            return Err("invalid token");
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &accepted.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_)
                | ErrorKind::MissingRequiredClaim(_)
                | ErrorKind::InvalidClaimFormat(_) => "malformed token",
                kind => {
                    tracing::debug!(?kind, "access token refused");
                    "invalid token"
                }
            })?
            .claims;
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
        iat: now.timestamp(),
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

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn keys(current: &str, previous: &[&str]) -> TokenKeys {
        let previous: Vec<String> = previous.iter().map(|s| s.to_string()).collect();
        TokenKeys::new(current, &previous).unwrap()
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::now_v7(),
            clinic: Uuid::now_v7(),
            role: Role::Nurse,
            ver: 1,
            iat: exp - 60,
            exp,
        }
    }

    /// The token's three parts, header and payload as JSON.
    fn parts(token: &str) -> (serde_json::Value, serde_json::Value, String) {
        let mut it = token.split('.');
        let mut json = || serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
        let (header, payload) = (json(), json());
        (header, payload, it.next().unwrap().to_owned())
    }

    /// A token with `header` and `payload`, signed HS256 with `secret`
    /// whatever the header says: what a forger with the secret could make.
    fn forge(header: &serde_json::Value, payload: &serde_json::Value, secret: &str) -> String {
        use hmac_for_tests::sign;
        let body = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(payload.to_string())
        );
        format!(
            "{body}.{}",
            B64.encode(sign(secret.as_bytes(), body.as_bytes()))
        )
    }

    mod hmac_for_tests {
        /// HMAC-SHA256 (RFC 2104) from `sha2`, independent of jsonwebtoken.
        pub fn sign(key: &[u8], msg: &[u8]) -> Vec<u8> {
            use sha2::{Digest, Sha256};
            let mut k = [0u8; 64];
            if key.len() > 64 {
                k[..32].copy_from_slice(&Sha256::digest(key));
            } else {
                k[..key.len()].copy_from_slice(key);
            }
            let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
            let inner = Sha256::new()
                .chain_update(pad(0x36))
                .chain_update(msg)
                .finalize();
            Sha256::new()
                .chain_update(pad(0x5c))
                .chain_update(inner)
                .finalize()
                .to_vec()
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef", &[]).unwrap();
        let now = Utc::now();
        let c = claims(now.timestamp() + 60);
        let t = keys.sign(&c);
        assert_eq!(keys.verify(&t, now), Ok(c.clone()));
        assert_eq!(
            keys.verify(&t, now + Duration::seconds(61)),
            Err("token expired")
        );
        // No leeway: refused from the second of `exp` on.
        assert_eq!(
            keys.verify(&t, DateTime::from_timestamp(c.exp - 1, 0).unwrap()),
            Ok(c.clone())
        );
        assert_eq!(
            keys.verify(&t, DateTime::from_timestamp(c.exp, 0).unwrap()),
            Err("token expired")
        );
    }

    #[test]
    fn a_token_is_a_standard_jwt() {
        let keys = keys(SECRET, &[]);
        let c = claims(Utc::now().timestamp() + 60);
        let (header, payload, _) = parts(&keys.sign(&c));
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], key_id(SECRET));
        assert_eq!(key_id(SECRET).len(), 8);
        assert_eq!(payload["iss"], ISSUER);
        assert_eq!(payload["aud"], AUDIENCE);
        assert_eq!(payload["sub"], c.sub.to_string());
        assert_eq!(payload["iat"], c.iat);
        assert_eq!(payload["exp"], c.exp);
        assert_eq!(payload["clinic"], c.clinic.to_string());
        assert_eq!(payload["role"], "nurse");
        assert_eq!(payload["ver"], 1);
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef", &[]).unwrap();
        let other = TokenKeys::new("fedcba9876543210fedcba9876543210", &[]).unwrap();
        let now = Utc::now();
        let t = keys.sign(&claims(now.timestamp() + 60));
        assert_eq!(other.verify(&t, now), Err("invalid token"));
        // Promote the nurse to admin in the payload, keep the signature.
        let (header, body, sig) = {
            let mut it = t.split('.');
            (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
        };
        let json = String::from_utf8(B64.decode(body).unwrap()).unwrap();
        let forged = B64.encode(json.replace("nurse", "admin"));
        assert_eq!(
            keys.verify(&format!("{header}.{forged}.{sig}"), now),
            Err("invalid token")
        );
        // The same for the header: another kid, same signature.
        let (mut h, _, _) = parts(&t);
        h["kid"] = key_id(OTHER).into();
        let h = B64.encode(h.to_string());
        assert_eq!(
            other.verify(&format!("{h}.{body}.{sig}"), now),
            Err("invalid token")
        );
        assert_eq!(keys.verify("garbage", now), Err("malformed token"));
    }

    #[test]
    fn a_foreign_secret_claiming_our_kid_is_refused() {
        let keys = keys(SECRET, &[]);
        let now = Utc::now();
        let (header, payload, _) = parts(&keys.sign(&claims(now.timestamp() + 60)));
        assert_eq!(
            keys.verify(&forge(&header, &payload, OTHER), now),
            Err("invalid token")
        );
        // The forging helper itself is right: with our secret it verifies.
        assert!(keys.verify(&forge(&header, &payload, SECRET), now).is_ok());
    }

    #[test]
    fn an_unknown_or_missing_kid_is_refused() {
        let keys = keys(SECRET, &[]);
        let now = Utc::now();
        let (mut header, payload, _) = parts(&keys.sign(&claims(now.timestamp() + 60)));
        header["kid"] = "deadbeef".into();
        assert_eq!(
            keys.verify(&forge(&header, &payload, SECRET), now),
            Err("invalid token")
        );
        header.as_object_mut().unwrap().remove("kid");
        assert_eq!(
            keys.verify(&forge(&header, &payload, SECRET), now),
            Err("invalid token")
        );
    }

    #[test]
    fn a_previous_key_verifies_while_configured() {
        let now = Utc::now();
        let c = claims(now.timestamp() + 60);
        let old = keys(OTHER, &[]).sign(&c);
        // Rotated: SECRET signs now, OTHER is still accepted.
        let rotated = keys(SECRET, &[OTHER]);
        assert_eq!(rotated.verify(&old, now), Ok(c.clone()));
        let new = rotated.sign(&c);
        assert_eq!(parts(&new).0["kid"], key_id(SECRET));
        assert_eq!(rotated.verify(&new, now), Ok(c.clone()));
        // A previous key verifies, never signs: a server still on the old
        // configuration does not know the new tokens.
        assert_eq!(keys(OTHER, &[]).verify(&new, now), Err("invalid token"));
        // OTHER removed after the access-token lifetime: its tokens end.
        let done = keys(SECRET, &[]);
        assert_eq!(done.verify(&old, now), Err("invalid token"));
        assert_eq!(done.verify(&new, now), Ok(c));
    }

    #[test]
    fn a_wrong_issuer_or_audience_is_refused() {
        let keys = keys(SECRET, &[]);
        let now = Utc::now();
        let (header, payload, _) = parts(&keys.sign(&claims(now.timestamp() + 60)));
        for (claim, value) in [
            ("iss", serde_json::json!("someone-else")),
            ("aud", serde_json::json!("someone-else")),
            ("aud", serde_json::json!(["someone-else"])),
        ] {
            let mut p = payload.clone();
            p[claim] = value;
            assert_eq!(
                keys.verify(&forge(&header, &p, SECRET), now),
                Err("invalid token"),
                "{claim}"
            );
        }
        for claim in ["iss", "aud", "exp", "sub"] {
            let mut p = payload.clone();
            p.as_object_mut().unwrap().remove(claim);
            assert!(
                keys.verify(&forge(&header, &p, SECRET), now).is_err(),
                "without {claim}"
            );
        }
        // An audience list that names us is what RFC 7519 allows.
        let mut p = payload.clone();
        p["aud"] = serde_json::json!(["other", AUDIENCE]);
        assert!(keys.verify(&forge(&header, &p, SECRET), now).is_ok());
    }

    #[test]
    fn another_algorithm_or_none_is_refused() {
        let keys = keys(SECRET, &[]);
        let now = Utc::now();
        let t = keys.sign(&claims(now.timestamp() + 60));
        let (header, payload, _) = parts(&t);
        // alg none: no signature at all, or the real one kept.
        for alg in [
            "none", "None", "NONE", "HS384", "HS512", "RS256", "ES256", "",
        ] {
            let mut h = header.clone();
            h["alg"] = alg.into();
            let unsigned = format!(
                "{}.{}.",
                B64.encode(h.to_string()),
                B64.encode(payload.to_string())
            );
            assert!(keys.verify(&unsigned, now).is_err(), "{alg}, unsigned");
            let sig = t.rsplit('.').next().unwrap();
            assert!(
                keys.verify(&format!("{unsigned}{sig}"), now).is_err(),
                "{alg}, old signature"
            );
            assert!(
                keys.verify(&forge(&h, &payload, SECRET), now).is_err(),
                "{alg}, signed"
            );
        }
        let mut h = header.clone();
        h.as_object_mut().unwrap().remove("alg");
        assert!(keys.verify(&forge(&h, &payload, SECRET), now).is_err());
    }

    #[test]
    fn any_input_is_an_error_not_a_panic() {
        let keys = keys(SECRET, &[OTHER]);
        let now = Utc::now();
        let good = keys.sign(&claims(now.timestamp() + 60));
        let huge = "a".repeat(1 << 20);
        let huge_parts = format!("{huge}.{huge}.{huge}");
        let mut inputs: Vec<String> = [
            "",
            ".",
            "..",
            "...",
            "a.b",
            "a.b.c",
            "a.b.c.d",
            "\0",
            "\0.\0.\0",
            "e30.e30.",
            "e30.e30.e30",
            "bnVsbA.bnVsbA.",
            "W10.W10.",
            "IiI.IiI.",
            "eyJhbGciOiJIUzI1NiJ9.e30.",
            "%%%.%%%.%%%",
            "é.ü.ß",
            "\u{feff}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        inputs.push(huge.clone());
        inputs.push(huge_parts);
        inputs.push(format!("{good}\0"));
        inputs.push(format!("\0{good}"));
        inputs.push(good.replace('.', "\0"));
        inputs.push(format!("{good}.{good}"));
        // Header and payload of every JSON shape, signed and unsigned.
        let json = [
            "null",
            "1",
            "-1",
            "1e400",
            "\"x\"",
            "[]",
            "{}",
            "{\"alg\":1}",
            "{\"alg\":\"HS256\",\"kid\":[]}",
            "{\"alg\":\"HS256\",\"kid\":\"\\u0000\"}",
            "{\"alg\":\"HS256\",\"crit\":[\"x\"]}",
            "{\"alg\":\"HS256\",\"b64\":false}",
            "{\"exp\":-1}",
            "{\"exp\":1e300}",
            "{\"exp\":\"soon\"}",
            "{\"sub\":null,\"exp\":18446744073709551615}",
            "{",
            "\u{0}",
        ];
        let kid = key_id(SECRET);
        for h in json
            .iter()
            .map(|h| h.to_string())
            .chain([format!("{{\"alg\":\"HS256\",\"kid\":\"{kid}\"}}")])
        {
            for p in json {
                let body = format!("{}.{}", B64.encode(&h), B64.encode(p));
                let sig = B64.encode(hmac_for_tests::sign(SECRET.as_bytes(), body.as_bytes()));
                inputs.push(format!("{body}.{sig}"));
                inputs.push(format!("{body}."));
            }
        }
        for i in &inputs {
            assert!(keys.verify(i, now).is_err(), "{:.80}", i);
        }
        // Random bytes in each part.
        for n in 0..2000 {
            let part = |len: usize| -> String {
                (0..len)
                    .map(|_| char::from(rand::random::<u8>() % 128))
                    .collect()
            };
            let t = format!("{}.{}.{}", part(n % 50), part(n % 70), part(n % 45));
            assert!(keys.verify(&t, now).is_err());
        }
    }

    #[test]
    fn secrets_must_differ_and_not_be_empty() {
        assert!(TokenKeys::new("", &[]).is_err());
        assert!(TokenKeys::new(SECRET, &[String::new()]).is_err());
        assert!(TokenKeys::new(SECRET, &[SECRET.to_owned()]).is_err());
        assert!(TokenKeys::new(SECRET, &[OTHER.to_owned(), OTHER.to_owned()]).is_err());
        assert!(TokenKeys::new(SECRET, &[OTHER.to_owned()]).is_ok());
    }
}
