//! Users: password hashing, the write-path steps for user changes and
//! sign-in bookkeeping, and workstation settings.

use clinic_domain::FieldCode;
use clinic_domain::Role;
use clinic_domain::audit::AuditAction;
use clinic_domain::user::{Language, User, after_failed_sign_in};
use clinic_domain::workstation::{ConnectionState, WorkstationInfo};
use serde_json::json;
use uuid::Uuid;

use crate::sql::{self, parse_ts};
use crate::write::{Committed, WriteTx};
use crate::{Result, Store, StoreError};

/// A `users` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub language: String,
    pub password_hash: String,
    pub disabled: bool,
    pub failed_sign_ins: i64,
    pub locked_until: Option<String>,
    pub created_at: String,
    pub version: i64,
}

impl UserRow {
    pub(crate) fn to_user(&self) -> Result<User> {
        Ok(User {
            id: Uuid::parse_str(&self.id).map_err(|e| StoreError::Internal(e.to_string()))?,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: Role::parse(&self.role)
                .ok_or_else(|| StoreError::Internal("unknown stored role".into()))?,
            language: Language::parse(&self.language).unwrap_or_default(),
            disabled: self.disabled,
            locked_until: self.locked_until.as_deref().map(parse_ts).transpose()?,
            created_at: parse_ts(&self.created_at)?,
        })
    }

    /// The audit snapshot: never the password hash.
    fn snapshot(&self) -> serde_json::Value {
        json!({
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "language": self.language,
            "disabled": self.disabled,
            "locked_until": self.locked_until,
            "version": self.version,
        })
    }
}

/// Hashes a password with Argon2id and a fresh random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String> {
    clinic_domain::password::hash_password(password, rand::random())
        .ok_or_else(|| StoreError::Internal("password hashing failed".into()))
}

pub use clinic_domain::password::verify_password;

async fn load(w: &mut WriteTx<'_>, id: Uuid) -> Result<UserRow> {
    sqlx::query_as("SELECT * FROM users WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(w.conn().await?)
        .await?
        .ok_or(StoreError::NotFound("user"))
}

/// Writes the changed row back and audits the change.
async fn save(
    w: &mut WriteTx<'_>,
    before: UserRow,
    mut row: UserRow,
    action: AuditAction,
) -> Result<Committed> {
    row.version += 1;
    sqlx::query(
        "UPDATE users SET display_name = ?, role = ?, language = ?, password_hash = ?, disabled = ?, \
         failed_sign_ins = ?, locked_until = ?, updated_at = ?, updated_by = ?, version = ?, workstation_id = ? \
         WHERE id = ?",
    )
    .bind(&row.display_name)
    .bind(&row.role)
    .bind(&row.language)
    .bind(&row.password_hash)
    .bind(row.disabled)
    .bind(row.failed_sign_ins)
    .bind(&row.locked_until)
    .bind(sql::ts(w.now))
    .bind(w.actor_ref())
    .bind(row.version)
    .bind(w.workstation_id().to_string())
    .bind(&row.id)
    .execute(w.conn().await?)
    .await?;
    let id = Uuid::parse_str(&row.id).ok();
    w.audit(
        action,
        "user",
        id,
        Some(before.snapshot()),
        Some(row.snapshot()),
    )
}

pub(crate) async fn create(
    w: &mut WriteTx<'_>,
    id: Uuid,
    username: String,
    display_name: String,
    role: Role,
    language: Language,
    password_hash: String,
) -> Result<Committed> {
    let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE username = ?")
        .bind(&username)
        .fetch_optional(w.conn().await?)
        .await?;
    if taken.is_some() {
        return Err(StoreError::UserExists);
    }
    let now = sql::ts(w.now);
    let created_by = w.actor().user_id.map(|u| u.to_string());
    sqlx::query(
        "INSERT INTO users (id, username, display_name, role, language, password_hash, created_at, created_by, \
         updated_at, updated_by, workstation_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?8, ?9)",
    )
    .bind(id.to_string())
    .bind(&username)
    .bind(&display_name)
    .bind(role.as_str())
    .bind(language.as_str())
    .bind(&password_hash)
    .bind(&now)
    .bind(created_by)
    .bind(w.workstation_id().to_string())
    .execute(w.conn().await?)
    .await?;
    let after = json!({ "username": username, "display_name": display_name, "role": role.as_str(),
                        "language": language.as_str(), "disabled": false, "version": 1 });
    w.audit(AuditAction::Create, "user", Some(id), None, Some(after))
}

pub(crate) async fn set_password(
    w: &mut WriteTx<'_>,
    id: Uuid,
    password_hash: String,
) -> Result<Committed> {
    let before = load(w, id).await?;
    let mut row = before.clone();
    row.password_hash = password_hash;
    // A reset also lifts a lockout: the admin has verified the person.
    row.failed_sign_ins = 0;
    row.locked_until = None;
    save(w, before, row, AuditAction::Update).await
}

pub(crate) async fn set_disabled(
    w: &mut WriteTx<'_>,
    id: Uuid,
    disabled: bool,
) -> Result<Committed> {
    if disabled && w.actor().user_id == Some(id) {
        return Err(StoreError::field(
            "disabled",
            FieldCode::OwnAccount,
            "you cannot disable your own account",
        ));
    }
    let before = load(w, id).await?;
    let mut row = before.clone();
    row.disabled = disabled;
    save(w, before, row, AuditAction::Update).await
}

pub(crate) async fn set_language(
    w: &mut WriteTx<'_>,
    id: Uuid,
    language: Language,
) -> Result<Committed> {
    let before = load(w, id).await?;
    let mut row = before.clone();
    row.language = language.as_str().to_owned();
    save(w, before, row, AuditAction::Update).await
}

/// Records a sign-in attempt: resets or counts failures, locking the
/// account after too many, and audits the attempt.
pub(crate) async fn record_sign_in(
    w: &mut WriteTx<'_>,
    user_id: Option<Uuid>,
    username: String,
    success: bool,
) -> Result<Committed> {
    let action = if success {
        AuditAction::SignIn
    } else {
        AuditAction::SignInFailed
    };
    let Some(id) = user_id else {
        return w.audit(
            action,
            "session",
            None,
            None,
            Some(json!({ "username": username })),
        );
    };
    let before = load(w, id).await?;
    let mut row = before.clone();
    if success {
        row.failed_sign_ins = 0;
        row.locked_until = None;
    } else {
        let (failed, lock) = after_failed_sign_in(row.failed_sign_ins, w.now);
        row.failed_sign_ins = failed;
        if let Some(until) = lock {
            row.locked_until = Some(sql::ts(until));
        }
    }
    if row.failed_sign_ins != before.failed_sign_ins || row.locked_until != before.locked_until {
        sqlx::query("UPDATE users SET failed_sign_ins = ?, locked_until = ? WHERE id = ?")
            .bind(row.failed_sign_ins)
            .bind(&row.locked_until)
            .bind(&row.id)
            .execute(w.conn().await?)
            .await?;
    }
    w.audit(
        action,
        "session",
        Some(id),
        None,
        Some(json!({ "username": username, "locked_until": row.locked_until })),
    )
}

pub(crate) async fn update_workstation(
    w: &mut WriteTx<'_>,
    name: Option<String>,
    idle_lock_minutes: Option<u32>,
) -> Result<Committed> {
    let (id, old_name, old_idle): (String, String, i64) =
        sqlx::query_as("SELECT id, name, idle_lock_minutes FROM workstation")
            .fetch_one(w.conn().await?)
            .await?;
    let name = match name.map(|n| n.trim().to_owned()) {
        Some(n) if n.is_empty() || n.chars().count() > 60 || n.chars().any(char::is_control) => {
            return Err(StoreError::field(
                "name",
                FieldCode::BadName,
                "1 to 60 characters",
            ));
        }
        Some(n) => n,
        None => old_name.clone(),
    };
    let idle = match idle_lock_minutes {
        Some(m) if !(1..=240).contains(&m) => {
            return Err(StoreError::field(
                "idle_lock_minutes",
                FieldCode::OutOfRange,
                "1 to 240 minutes",
            ));
        }
        Some(m) => i64::from(m),
        None => old_idle,
    };
    sqlx::query("UPDATE workstation SET name = ?, idle_lock_minutes = ?, updated_at = ?, version = version + 1")
        .bind(&name)
        .bind(idle)
        .bind(sql::ts(w.now))
        .execute(w.conn().await?)
        .await?;
    let id = Uuid::parse_str(&id).ok();
    w.audit(
        AuditAction::Update,
        "workstation",
        id,
        Some(json!({ "name": old_name, "idle_lock_minutes": old_idle })),
        Some(json!({ "name": name, "idle_lock_minutes": idle })),
    )
}

pub(crate) async fn set_department(
    w: &mut WriteTx<'_>,
    id: Uuid,
    department_id: Option<Uuid>,
) -> Result<Committed> {
    let before = load(w, id).await?;
    sqlx::query("UPDATE users SET department_id = ?, version = version + 1 WHERE id = ?")
        .bind(department_id.map(|d| d.to_string()))
        .bind(id.to_string())
        .execute(w.conn().await?)
        .await?;
    let mut after = before.snapshot();
    after["department_id"] = json!(department_id);
    after["version"] = json!(before.version + 1);
    w.audit(
        AuditAction::Update,
        "user",
        Some(id),
        Some(before.snapshot()),
        Some(after),
    )
}

impl Store {
    /// All users, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as("SELECT * FROM users ORDER BY display_name COLLATE NOCASE")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(UserRow::to_user).collect()
    }

    /// One user.
    pub async fn user(&self, id: Uuid) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.ok_or(StoreError::NotFound("user"))?.to_user()
    }

    pub(crate) async fn user_row_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = ?")
            .bind(username.trim())
            .fetch_optional(self.pool())
            .await?)
    }

    pub(crate) async fn user_row(&self, id: Uuid) -> Result<UserRow> {
        sqlx::query_as("SELECT * FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound("user"))
    }

    /// Whether any user exists (the first start asks for an admin until one does).
    pub async fn has_users(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    /// The workstation's identity and settings.
    pub async fn workstation_info(&self) -> Result<WorkstationInfo> {
        let (id, name, prefix, idle): (String, String, String, i64) =
            sqlx::query_as("SELECT id, name, mrn_prefix, idle_lock_minutes FROM workstation")
                .fetch_one(self.pool())
                .await?;
        Ok(WorkstationInfo {
            id: Uuid::parse_str(&id).map_err(|e| StoreError::Internal(e.to_string()))?,
            name,
            mrn_prefix: prefix,
            needs_setup: !self.has_users().await?,
            is_empty: !self.has_patients().await?,
            idle_lock_minutes: idle as u32,
            connection: ConnectionState::Offline,
        })
    }
}
