//! The workstation's side of sync with the central server: what to push,
//! recording the server's outcomes, and applying pulled changes.
//!
//! Everything that changes a table here is a write-path step (called from
//! [`crate::write`]), so pulled changes and outcomes are audited and
//! transactional like any other write. They make no outbox entries: they
//! came from the server.
//!
//! Applying a pulled page, in one transaction:
//! 1. outbox entries whose mutation id appears in the page are acknowledged
//!    as applied, or as conflict where the page has a conflict record the
//!    mutation lost (a push whose reply was lost is settled here);
//! 2. each record is replaced by the server's version;
//! 3. local changes still pending for a replaced record are re-applied on
//!    top by the server's merge rule, so the screen keeps showing what the
//!    user typed until the server has answered, except where the server
//!    changed the same field meanwhile and will keep its value (the rebase);
//! 4. the cursor moves forward (a trigger refuses to move it back).
//!
//! The cursor counts in one epoch of the server's feed. A page of a new
//! epoch (the server's database was restored from a backup) is refused;
//! the engine records the new epoch first, which re-queues everything the
//! server had acknowledged and starts the feed again from 0.

use clinic_domain::codes::PeerCode;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clinic_domain::FieldCode;
use clinic_domain::audit::AuditAction;
use clinic_domain::sync::{
    Change, Entity, MutationOutcome, Op, OutcomeStatus, PatientConflict, PullResponse,
    PushMutation, RejectCode, ServerUser,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::patients::remote;
use crate::sql::{self, parse_ts};
use crate::write::{Committed, WriteTx};
use crate::{Result, Store, StoreError};

/// Where and how this workstation syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// The server's base URL.
    pub server_url: String,
    /// The clinic's code, typed at sign-in.
    pub clinic_code: String,
    /// Set once an admin enrolled the workstation.
    pub clinic_id: Option<Uuid>,
    /// The last change-feed number applied.
    pub cursor: i64,
    /// The server's feed epoch the cursor counts in (none before the
    /// first pull); see [`Store::commit`] with `Mutation::SyncEpoch`.
    pub feed_epoch: Option<Uuid>,
    /// When the last pull finished.
    pub last_sync_at: Option<DateTime<Utc>>,
}

/// A refused outbox entry (see [`Store::refused_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRow {
    /// The client mutation id.
    pub mutation_id: Uuid,
    /// The entity kind.
    pub entity: Entity,
    /// The record (or, for an import, the import run).
    pub entity_id: Uuid,
    /// The operation.
    pub op: Op,
    /// When it was made here.
    pub created_at: DateTime<Utc>,
    /// The author's display name, if known here.
    pub author: Option<String>,
    /// The server's reason code.
    pub code: Option<RejectCode>,
    /// The server's reason in English.
    pub message: Option<String>,
}

/// Outbox and conflict counts for the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncCounts {
    /// Entries not yet acknowledged by the server.
    pub pending: i64,
    /// Entries the server refused.
    pub rejected: i64,
    /// Conflicts waiting for review.
    pub conflicts: i64,
}

/// Checks a server address: HTTPS, or plain HTTP to this machine only.
pub fn check_server_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/').to_owned();
    let bad = |msg: &str| StoreError::field("server_url", FieldCode::Invalid, msg);
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Err(bad(
                "use an https:// address; plain http is allowed only to this computer (localhost)",
            ));
        }
        rest
    } else {
        return Err(bad("the address must start with https://"));
    };
    if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("not a valid address"));
    }
    Ok(url)
}

impl Store {
    /// The sync settings, if a server is configured.
    pub async fn sync_settings(&self) -> Result<Option<SyncSettings>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            server_url: String,
            clinic_code: String,
            clinic_id: Option<String>,
            cursor: i64,
            feed_epoch: Option<String>,
            last_sync_at: Option<String>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT server_url, clinic_code, clinic_id, cursor, feed_epoch, last_sync_at FROM sync_state",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SyncSettings {
                server_url: r.server_url,
                clinic_code: r.clinic_code,
                clinic_id: r.clinic_id.as_deref().map(uuid).transpose()?,
                cursor: r.cursor,
                feed_epoch: r.feed_epoch.as_deref().map(uuid).transpose()?,
                last_sync_at: r.last_sync_at.as_deref().map(parse_ts).transpose()?,
            })
        })
        .transpose()
    }

    /// Changes made here that the server refused, newest first (at most
    /// `limit`), without their patients (see
    /// [`crate::Workstation::refused_changes`]).
    pub async fn refused_changes(&self, limit: i64) -> Result<Vec<RefusedRow>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            mutation_id: String,
            entity: String,
            entity_id: String,
            op: String,
            created_at: String,
            author: Option<String>,
            outcome: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.mutation_id, o.entity, o.entity_id, o.op, o.created_at, u.display_name AS author, \
             o.outcome FROM outbox o LEFT JOIN users u ON u.id = o.user_id \
             WHERE o.status = 'rejected' ORDER BY o.seq DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let outcome: Value = r
                    .outcome
                    .as_deref()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null);
                let text = |k: &str| outcome.get(k).and_then(Value::as_str).map(str::to_owned);
                Ok(RefusedRow {
                    mutation_id: uuid(&r.mutation_id)?,
                    entity: sql::code(&r.entity)?,
                    entity_id: uuid(&r.entity_id)?,
                    op: sql::code(&r.op)?,
                    created_at: parse_ts(&r.created_at)?,
                    author: r.author,
                    code: text("code").map(|c| RejectCode::from_peer(&c)),
                    message: text("message"),
                })
            })
            .collect()
    }

    /// The oldest pending outbox entries, in order, as the server wants them.
    pub async fn outbox_pending(&self, limit: i64) -> Result<Vec<PendingMutation>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            seq: i64,
            mutation_id: String,
            entity: String,
            entity_id: String,
            op: String,
            base_version: Option<i64>,
            payload: String,
            created_at: String,
            user_id: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, mutation_id, entity, entity_id, op, base_version, payload, created_at, user_id \
             FROM outbox WHERE status = 'pending' ORDER BY seq LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let author = r.user_id.as_deref().map(uuid).transpose()?;
                Ok(PendingMutation {
                    author,
                    payload_bytes: r.payload.len(),
                    mutation: PushMutation {
                        mutation_id: uuid(&r.mutation_id)?,
                        client_seq: r.seq,
                        entity: r.entity,
                        entity_id: uuid(&r.entity_id)?,
                        op: r.op,
                        base_version: r.base_version,
                        payload: serde_json::from_str(&r.payload).map_err(|_| {
                            StoreError::Internal("outbox payload is not JSON".into())
                        })?,
                        created_at: parse_ts(&r.created_at)?,
                        user_id: author.unwrap_or_else(Uuid::nil),
                    },
                })
            })
            .collect()
    }

    /// Pending, rejected and conflict counts.
    pub async fn sync_counts(&self) -> Result<SyncCounts> {
        let (pending, rejected): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'rejected'), 0) FROM outbox",
        )
        .fetch_one(self.pool())
        .await?;
        let (conflicts,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM patient_conflicts WHERE resolved_at IS NULL")
                .fetch_one(self.pool())
                .await?;
        Ok(SyncCounts {
            pending,
            rejected,
            conflicts,
        })
    }

    /// Conflicts waiting for review, oldest first.
    pub async fn open_conflicts(&self) -> Result<Vec<PatientConflict>> {
        let rows: Vec<ConflictRow> = sqlx::query_as(
            "SELECT * FROM patient_conflicts WHERE resolved_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(ConflictRow::to_conflict).collect()
    }

    /// Active accounts that came from the server, most recently signed in first.
    pub async fn server_user_ids(&self) -> Result<Vec<Uuid>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM users WHERE origin = 'server' AND disabled = 0 ORDER BY updated_at DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|(id,)| uuid(id)).collect()
    }

    /// Whether the server has every local change to this record: none is
    /// waiting for an answer, and none was refused.
    pub async fn is_synced(&self, entity_id: Uuid) -> Result<bool> {
        // An import's entry names its run, and lists its patients inside.
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'rejected') AND (entity_id = ?1 \
             OR (op = 'import' AND EXISTS (SELECT 1 FROM json_each(payload, '$.patients') p \
                 WHERE json_extract(p.value, '$.id') = ?1)))",
        )
        .bind(entity_id.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(n == 0)
    }
}

/// A pending outbox entry and who made it (`None`: the CLI or the system).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingMutation {
    /// The user whose token must push it.
    pub author: Option<Uuid>,
    /// The entry as it goes on the wire.
    pub mutation: PushMutation,
    /// The size of its payload's JSON, for bounding a push's size.
    pub payload_bytes: usize,
}

fn uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Internal("stored id is not a UUID".into()))
}

#[derive(sqlx::FromRow)]
struct ConflictRow {
    id: String,
    patient_id: String,
    field: String,
    base_value: String,
    server_value: String,
    client_value: String,
    mutation_id: String,
    user_id: String,
    created_at: String,
    resolved_at: Option<String>,
    #[allow(dead_code)]
    choice: Option<String>,
    #[allow(dead_code)]
    version: i64,
}

impl ConflictRow {
    fn to_conflict(&self) -> Result<PatientConflict> {
        let json = |s: &str| serde_json::from_str(s).unwrap_or(Value::Null);
        Ok(PatientConflict {
            id: uuid(&self.id)?,
            patient_id: uuid(&self.patient_id)?,
            field: self.field.clone(),
            base_value: json(&self.base_value),
            server_value: json(&self.server_value),
            client_value: json(&self.client_value),
            mutation_id: uuid(&self.mutation_id)?,
            user_id: uuid(&self.user_id)?,
            created_at: parse_ts(&self.created_at)?,
            resolved_at: self.resolved_at.as_deref().map(parse_ts).transpose()?,
        })
    }
}

/// Write-path step: set the server address and clinic code.
pub(crate) async fn configure(
    w: &mut WriteTx<'_>,
    server_url: &str,
    clinic_code: &str,
) -> Result<Committed> {
    let url = check_server_url(server_url)?;
    let code = clinic_code.trim().to_ascii_lowercase();
    if code.len() < 2
        || code.len() > 40
        || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(StoreError::field(
            "clinic_code",
            FieldCode::Invalid,
            "2 to 40 letters, digits or '-'",
        ));
    }
    let before: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT server_url, clinic_code, clinic_id FROM sync_state")
            .fetch_optional(w.conn().await?)
            .await?;
    if let Some((old_url, old_code, Some(_))) = &before
        && (old_url != &url || old_code != &code)
    {
        return Err(StoreError::field(
            "server_url",
            FieldCode::Enrolled,
            "this workstation is enrolled with its server; it cannot move to another",
        ));
    }
    sqlx::query(
        "INSERT INTO sync_state (singleton, server_url, clinic_code) VALUES (1, ?, ?) \
         ON CONFLICT (singleton) DO UPDATE SET server_url = excluded.server_url, clinic_code = excluded.clinic_code",
    )
    .bind(&url)
    .bind(&code)
    .execute(w.conn().await?)
    .await?;
    w.audit(
        AuditAction::Update,
        "sync_settings",
        None,
        before.map(|(u, c, _)| json!({"server_url": u, "clinic_code": c})),
        Some(json!({"server_url": url, "clinic_code": code})),
    )
}

/// Write-path step: the server enrolled this workstation.
///
/// Pending changes made before enrolment by local accounts (or the CLI)
/// have no author the server knows; they are handed to the enrolling admin,
/// who pushes them, and the audit log says so. The local accounts are
/// disabled: from now on users are the clinic's, from the server.
pub(crate) async fn enrolled(
    w: &mut WriteTx<'_>,
    clinic_id: Uuid,
    mrn_prefix: &str,
    admin: &ServerUser,
    admin_password_hash: &str,
) -> Result<Committed> {
    upsert_user(w, admin, Some(admin_password_hash)).await?;
    let adopted = sqlx::query(
        "UPDATE outbox SET user_id = ? WHERE status = 'pending' AND (user_id IS NULL OR user_id NOT IN \
         (SELECT id FROM users WHERE origin = 'server'))",
    )
    .bind(admin.id.to_string())
    .execute(w.conn().await?)
    .await?
    .rows_affected();
    // Accounts made here before enrolment stop working: from now on people
    // sign in with their clinic accounts, whose changes the server accepts.
    // (A local account's later changes could never be pushed, and would
    // hold up the queue behind them.)
    let retired = sqlx::query(
        "UPDATE users SET disabled = 1, version = version + 1, updated_at = ? \
         WHERE origin = 'local' AND disabled = 0",
    )
    .bind(sql::ts(w.now))
    .execute(w.conn().await?)
    .await?
    .rows_affected();
    let (old_prefix,): (String,) = sqlx::query_as("SELECT mrn_prefix FROM workstation")
        .fetch_one(w.conn().await?)
        .await?;
    if old_prefix != mrn_prefix {
        // A new prefix is unused in the clinic, so its numbers start at 1.
        sqlx::query(
            "UPDATE workstation SET mrn_prefix = ?, mrn_next_seq = 1, version = version + 1",
        )
        .bind(mrn_prefix)
        .execute(w.conn().await?)
        .await?;
        crate::patients::rows::forget_mrn_counter(w);
    }
    sqlx::query("UPDATE sync_state SET clinic_id = ?, enrolled_at = ?")
        .bind(clinic_id.to_string())
        .bind(sql::ts(w.now))
        .execute(w.conn().await?)
        .await?;
    w.audit(
        AuditAction::Update,
        "sync_enrolment",
        None,
        Some(json!({"mrn_prefix": old_prefix})),
        Some(json!({
            "clinic_id": clinic_id, "mrn_prefix": mrn_prefix, "enrolled_by": admin.id,
            "pending_changes_adopted": adopted, "local_accounts_disabled": retired,
        })),
    )
}

/// Write-path step: a user signed in online; keep their account and a local
/// password verifier so they can sign in here while offline.
pub(crate) async fn server_user(
    w: &mut WriteTx<'_>,
    user: &ServerUser,
    password_hash: Option<&str>,
) -> Result<Committed> {
    upsert_user(w, user, password_hash).await?;
    w.audit(
        AuditAction::Update,
        "user",
        Some(user.id),
        None,
        Some(json!({"username": user.username, "role": user.role, "disabled": user.disabled, "origin": "server"})),
    )
}

async fn upsert_user(
    w: &mut WriteTx<'_>,
    u: &ServerUser,
    password_hash: Option<&str>,
) -> Result<()> {
    let id = u.id.to_string();
    // A local account with the same name gives way: it is renamed and
    // disabled, and its owner signs in with the clinic account from now on.
    let clash: Option<(String,)> =
        sqlx::query_as("SELECT id FROM users WHERE username = ? COLLATE NOCASE AND id <> ?")
            .bind(&u.username)
            .bind(&id)
            .fetch_optional(w.conn().await?)
            .await?;
    if let Some((other,)) = clash {
        sqlx::query(
            "UPDATE users SET username = username || '.local-' || substr(id, 1, 4), disabled = 1, \
             version = version + 1, updated_at = ? WHERE id = ?",
        )
        .bind(sql::ts(w.now))
        .bind(&other)
        .execute(w.conn().await?)
        .await?;
    }
    let now = sql::ts(w.now);
    sqlx::query(
        "INSERT INTO users (id, username, display_name, role, language, password_hash, disabled, created_at, \
         created_by, updated_at, updated_by, workstation_id, origin) \
         VALUES (?, ?, ?, ?, ?, COALESCE(?, ''), ?, ?, 'server', ?, 'server', ?, 'server') \
         ON CONFLICT (id) DO UPDATE SET username = excluded.username, display_name = excluded.display_name, \
         role = excluded.role, language = excluded.language, disabled = excluded.disabled, \
         password_hash = COALESCE(?, users.password_hash), origin = 'server', \
         updated_at = excluded.updated_at, version = users.version + 1",
    )
    .bind(&id)
    .bind(&u.username)
    .bind(&u.display_name)
    .bind(u.role.as_str())
    .bind(u.language.as_str())
    .bind(password_hash)
    .bind(u.disabled)
    .bind(&now)
    .bind(&now)
    .bind(w.workstation_id().to_string())
    .bind(password_hash)
    .execute(w.conn().await?)
    .await?;
    Ok(())
}

/// Write-path step: record the server's answers to a push.
pub(crate) async fn outcomes(
    w: &mut WriteTx<'_>,
    outcomes: &[MutationOutcome],
) -> Result<Committed> {
    let now = sql::ts(w.now);
    let mut counts = [0u32; 3];
    let mut plain = Vec::new();
    for o in outcomes {
        counts[match o.status {
            OutcomeStatus::Applied => 0,
            OutcomeStatus::Conflict => 1,
            OutcomeStatus::Rejected => 2,
        }] += 1;
        if o.status == OutcomeStatus::Applied
            && o.code.is_none()
            && o.conflicts.is_empty()
            && o.refused.is_empty()
        {
            plain.push(o.mutation_id.to_string());
            continue;
        }
        let outcome = json!({
            "code": o.code, "message": o.message, "conflicts": o.conflicts, "refused": o.refused,
        });
        sqlx::query(
            "UPDATE outbox SET status = ?, outcome = ?, acked_at = ? WHERE mutation_id = ? AND status = 'pending'",
        )
        .bind(o.status.as_str())
        .bind(outcome.to_string())
        .bind(&now)
        .bind(o.mutation_id.to_string())
        .execute(w.conn().await?)
        .await?;
        // Imported records whose number the server found taken: new
        // numbers, and each sent again on its own.
        for id in &o.refused {
            remote::renumber(w, &id.to_string()).await?;
        }
    }
    if !plain.is_empty() {
        // The common case, one statement for the whole push.
        sqlx::query(
            "UPDATE outbox SET status = 'applied', acked_at = ? WHERE status = 'pending' \
             AND mutation_id IN (SELECT value FROM json_each(?))",
        )
        .bind(&now)
        .bind(serde_json::to_string(&plain).expect("strings serialize"))
        .execute(w.conn().await?)
        .await?;
    }
    w.audit(
        AuditAction::Update,
        "sync_push",
        None,
        None,
        Some(json!({"applied": counts[0], "conflict": counts[1], "rejected": counts[2]})),
    )
}

/// Write-path step: apply one pulled page (see the module docs).
pub(crate) async fn apply_page(w: &mut WriteTx<'_>, page: &PullResponse) -> Result<Committed> {
    let (cursor, epoch): (i64, Option<String>) =
        sqlx::query_as("SELECT cursor, feed_epoch FROM sync_state")
            .fetch_optional(w.conn().await?)
            .await?
            .ok_or_else(|| StoreError::Internal("sync is not configured".into()))?;
    // 0. The cursor counts in one epoch of the server's feed; a page of
    //    another (the server was restored) is not applied: the engine
    //    starts the feed again first (`new_epoch`).
    match epoch.as_deref().map(uuid).transpose()? {
        Some(e) if e != page.epoch => {
            return Err(StoreError::Internal(
                "the server's change feed was restored from a backup; sync starts again".into(),
            ));
        }
        Some(_) => {}
        None => {
            sqlx::query("UPDATE sync_state SET feed_epoch = ?")
                .bind(page.epoch.to_string())
                .execute(w.conn().await?)
                .await?;
        }
    }
    let now = sql::ts(w.now);
    // 1. Acknowledge our own mutations that the page shows the server
    //    took. A conflict record naming the mutation that lost it means
    //    that mutation's outcome was "conflict", even where this page (or
    //    an earlier one) carries the fields it did change.
    let mut plain_acks = Vec::new();
    for c in &page.changes {
        if let Some(mid) = c.mutation_id {
            let mid = mid.to_string();
            let lost_a_field = c.kind() == Some(Entity::PatientConflict)
                && c.data.get("mutation_id").and_then(Value::as_str) == Some(mid.as_str());
            if lost_a_field {
                sqlx::query(
                    "UPDATE outbox SET status = 'conflict', acked_at = COALESCE(acked_at, ?) \
                     WHERE mutation_id = ? AND status IN ('pending', 'applied')",
                )
                .bind(&now)
                .bind(&mid)
                .execute(w.conn().await?)
                .await?;
            } else {
                plain_acks.push(mid);
            }
        }
    }
    if !plain_acks.is_empty() {
        // One statement for the page; the ids travel as one JSON array.
        sqlx::query(
            "UPDATE outbox SET status = 'applied', acked_at = ? WHERE status = 'pending' \
             AND mutation_id IN (SELECT value FROM json_each(?))",
        )
        .bind(&now)
        .bind(serde_json::to_string(&plain_acks).expect("strings serialize"))
        .execute(w.conn().await?)
        .await?;
    }
    // 2. Take the server's records; changes at or below the cursor were
    //    applied before (a repeated page), so skip them.
    //    Patients are applied together (the latest version of each), so
    //    new ones are written in multi-row inserts.
    let mut patients: BTreeMap<Uuid, &Value> = BTreeMap::new();
    let mut applied = 0usize;
    for c in page.changes.iter().filter(|c| c.seq > cursor) {
        // Kinds with their own rows take their capability's step; every
        // other declared kind the generic one.
        match c.kind() {
            Some(Entity::Patient) => {
                patients.insert(c.entity_id, &c.data);
            }
            Some(Entity::PatientConflict) => upsert_conflict(w, c).await?,
            Some(Entity::User) => {
                let user: ServerUser = serde_json::from_value(c.data.clone())
                    .map_err(|_| StoreError::Internal("malformed user from the server".into()))?;
                upsert_user(w, &user, None).await?;
            }
            Some(entity) => match clinic_domain::record::generic(entity) {
                Some(info) => crate::records::apply_remote(w, info, c).await?,
                None => continue,
            },
            // A newer server's record kind: nothing here shows it yet.
            None => continue,
        }
        applied += 1;
    }
    let touched: Vec<Uuid> = patients.keys().copied().collect();
    remote::apply_remote_all(w, patients.into_values().collect()).await?;
    // 3. Re-apply what is still pending locally on top.
    remote::rebase_pending_all(w, &touched).await?;
    // 4. Move the cursor.
    let new_cursor = page.cursor.max(cursor);
    sqlx::query("UPDATE sync_state SET cursor = ?, last_sync_at = ?")
        .bind(new_cursor)
        .bind(&now)
        .execute(w.conn().await?)
        .await?;
    w.audit(
        AuditAction::Update,
        "sync_pull",
        None,
        Some(json!({"cursor": cursor})),
        Some(json!({"cursor": new_cursor, "changes": applied})),
    )
}

/// Write-path step: the server's feed has a new epoch (its database was
/// restored). Everything the server acknowledged may be missing from the
/// restored copy, so it is queued again in its original order (the server
/// answers a mutation it still has with the stored outcome and applies the
/// others), and the whole feed is pulled again from the start. Refused
/// mutations stay refused: the server kept nothing of them.
pub(crate) async fn new_epoch(w: &mut WriteTx<'_>, epoch: Uuid) -> Result<Committed> {
    let (cursor, old): (i64, Option<String>) =
        sqlx::query_as("SELECT cursor, feed_epoch FROM sync_state")
            .fetch_optional(w.conn().await?)
            .await?
            .ok_or_else(|| StoreError::Internal("sync is not configured".into()))?;
    let requeued = sqlx::query(
        "UPDATE outbox SET status = 'pending', outcome = NULL, acked_at = NULL, attempts = 0, \
         last_error = NULL WHERE status IN ('applied', 'conflict')",
    )
    .execute(w.conn().await?)
    .await?
    .rows_affected();
    sqlx::query("UPDATE sync_state SET cursor = 0, feed_epoch = ?")
        .bind(epoch.to_string())
        .execute(w.conn().await?)
        .await?;
    w.audit(
        AuditAction::Update,
        "sync_epoch",
        None,
        Some(json!({"epoch": old, "cursor": cursor})),
        Some(json!({"epoch": epoch, "cursor": 0, "requeued": requeued})),
    )
}

async fn upsert_conflict(w: &mut WriteTx<'_>, c: &Change) -> Result<()> {
    let conflict: PatientConflict = serde_json::from_value(c.data.clone())
        .map_err(|_| StoreError::Internal("malformed conflict from the server".into()))?;
    let choice = c.data.get("choice").and_then(Value::as_str);
    sqlx::query(
        "INSERT INTO patient_conflicts (id, patient_id, field, base_value, server_value, client_value, mutation_id, \
         user_id, created_at, resolved_at, choice, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET resolved_at = excluded.resolved_at, choice = excluded.choice, \
         version = excluded.version",
    )
    .bind(conflict.id.to_string())
    .bind(conflict.patient_id.to_string())
    .bind(&conflict.field)
    .bind(conflict.base_value.to_string())
    .bind(conflict.server_value.to_string())
    .bind(conflict.client_value.to_string())
    .bind(conflict.mutation_id.to_string())
    .bind(conflict.user_id.to_string())
    .bind(sql::ts(conflict.created_at))
    .bind(conflict.resolved_at.map(sql::ts))
    .bind(choice)
    .bind(c.version)
    .execute(w.conn().await?)
    .await?;
    Ok(())
}

/// Write-path step: reception settles a conflict. Keeping the losing
/// (client) value writes it to the record like an edit; either way the
/// decision goes to the server.
pub(crate) async fn resolve_conflict(
    w: &mut WriteTx<'_>,
    id: Uuid,
    keep_client: bool,
) -> Result<Committed> {
    let row: Option<ConflictRow> = sqlx::query_as("SELECT * FROM patient_conflicts WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(w.conn().await?)
        .await?;
    let row = row.ok_or(StoreError::NotFound("conflict"))?;
    if row.resolved_at.is_some() {
        return Err(StoreError::Conflict);
    }
    let conflict = row.to_conflict()?;
    if keep_client {
        remote::set_field_local(
            w,
            conflict.patient_id,
            &conflict.field,
            &conflict.client_value,
        )
        .await?;
    }
    let choice = if keep_client { "client" } else { "server" };
    sqlx::query("UPDATE patient_conflicts SET resolved_at = ?, choice = ?, version = version + 1 WHERE id = ?")
        .bind(sql::ts(w.now))
        .bind(choice)
        .bind(id.to_string())
        .execute(w.conn().await?)
        .await?;
    let mutation_id = w.outbox(
        Entity::PatientConflict,
        id,
        Op::Resolve,
        None,
        &json!({"choice": choice}),
    );
    let done = w.audit(
        AuditAction::Update,
        "patient_conflict",
        Some(conflict.patient_id),
        Some(json!({"field": conflict.field, "server_value": conflict.server_value, "client_value": conflict.client_value})),
        Some(json!({"field": conflict.field, "choice": choice})),
    )?;
    Ok(Committed {
        mutation_id: Some(mutation_id),
        ..done
    })
}
