//! The one write path.
//!
//! [`Store::commit`] and [`Store::commit_batch`] are the only functions
//! that change a table. In one `BEGIN IMMEDIATE` transaction they:
//! 1. check the actor's permission for each [`Mutation`];
//! 2. write the row (and the search index derived from it);
//! 3. append a hash-chained audit entry with the before and after values;
//! 4. append an outbox entry with a fresh client mutation id, for records the
//!    central server will receive.
//!
//! Bulk inserts (a CSV import) are buffered and written as multi-row
//! `INSERT`s at the end of the batch; anything that reads or updates rows
//! flushes the buffers first, so a batch sees its own writes.

use chrono::{DateTime, Utc};
use clinic_domain::audit::AuditAction;
use clinic_domain::patient::PatientFields;
use clinic_domain::sync::{Entity, MutationOutcome, Op, PullResponse, ServerUser};
use clinic_domain::user::Language;
use clinic_domain::{Permission, Role};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

use crate::patients::{self, PatientRow};
use crate::sql::{self, AuditRow, OutboxRow};
use crate::{Result, Store, StoreError};

/// Who is making a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The signed-in user; `None` for the system itself or the CLI.
    pub user_id: Option<Uuid>,
    /// The name the audit log shows.
    pub name: String,
    /// The role whose permissions apply.
    pub role: Role,
}

impl Actor {
    /// The workstation itself, for first-start bookkeeping. Has the admin's
    /// permissions and is named in the audit log as `system: <what>`.
    pub fn system(what: &str) -> Actor {
        Actor {
            user_id: None,
            name: format!("system: {what}"),
            role: Role::Admin,
        }
    }

    /// Checks that this actor may do `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(StoreError::Forbidden)
        }
    }
}

/// A change to the store. Each variant names the permission it needs.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// First start: make the workstation's identity.
    WorkstationInit {
        /// The new workstation id.
        id: Uuid,
        /// Its MRN prefix.
        mrn_prefix: String,
    },
    /// Change workstation settings.
    WorkstationSettings {
        /// A new name.
        name: Option<String>,
        /// A new idle lock time.
        idle_lock_minutes: Option<u32>,
    },
    /// Register a patient; the MRN is assigned here.
    PatientCreate {
        /// The new patient's id.
        id: Uuid,
        /// Validated fields.
        fields: PatientFields,
    },
    /// Change a patient's demographics.
    PatientUpdate {
        /// The patient.
        id: Uuid,
        /// The version the change was made on; a different stored version is a conflict.
        base_version: i64,
        /// The new fields.
        fields: PatientFields,
    },
    /// Merge `merge` into `keep`: `keep` gains what it lacks, `merge` is kept, marked merged.
    PatientMerge {
        /// The record that stays.
        keep: Uuid,
        /// The record merged into it.
        merge: Uuid,
        /// Why they are one person ([`clinic_domain::patient::validate_merge_reason`]).
        reason: String,
    },
    /// A user opened a patient's record (audit only).
    PatientView {
        /// The patient.
        id: Uuid,
    },
    /// Create a user.
    UserCreate {
        /// The new user's id.
        id: Uuid,
        /// Sign-in name.
        username: String,
        /// Display name.
        display_name: String,
        /// Role.
        role: Role,
        /// Language.
        language: Language,
        /// Argon2id PHC string.
        password_hash: String,
    },
    /// Set a user's password (admin reset).
    UserSetPassword {
        /// The user.
        id: Uuid,
        /// Argon2id PHC string.
        password_hash: String,
    },
    /// Disable or enable a user.
    UserSetDisabled {
        /// The user.
        id: Uuid,
        /// Disabled or not.
        disabled: bool,
    },
    /// A user changes their own language.
    UserSetLanguage {
        /// The user (must be the actor).
        id: Uuid,
        /// The language.
        language: Language,
    },
    /// A sign-in attempt's outcome, and the lockout bookkeeping it implies.
    SignIn {
        /// The user, if the name matched one.
        user_id: Option<Uuid>,
        /// The name typed.
        username: String,
        /// Whether the password was right.
        success: bool,
    },
    /// A user signed out or the session was locked.
    SignOut {
        /// The user.
        user_id: Uuid,
    },
    /// Create a record of a kind on the generic road
    /// ([`clinic_domain::record::KINDS`]); see [`crate::records`].
    RecordCreate {
        /// The kind.
        entity: Entity,
        /// The new record's id.
        id: Uuid,
        /// Its fields, validated by the kind here.
        fields: Value,
    },
    /// Update a record of a kind on the generic road.
    RecordUpdate {
        /// The kind.
        entity: Entity,
        /// The record.
        id: Uuid,
        /// The version the change was made on; a different stored version is a conflict.
        base_version: i64,
        /// All its fields, as they are to be.
        fields: Value,
    },
    /// Put a user in a department.
    UserSetDepartment {
        /// The user.
        id: Uuid,
        /// The department.
        department_id: Option<Uuid>,
    },
    /// Register a batch of imported patients as one change: their rows and
    /// search index, one audit entry and one outbox entry (op `import`)
    /// that carry every row's values, and a link from each patient to that
    /// audit entry for its history. MRNs are assigned here, in order.
    PatientImport {
        /// The import run the batch belongs to (the same for all its batches).
        run_id: Uuid,
        /// The new patients' ids and validated fields.
        patients: Vec<(Uuid, PatientFields)>,
    },
    /// A bulk import finished (audit only; the rows are in its batches' entries).
    ImportRun {
        /// What the import did, without patient data.
        summary: Value,
    },
    /// Set the central server's address and the clinic's code.
    SyncConfigure {
        /// `https://...`, or `http://` to localhost.
        server_url: String,
        /// The clinic's code on the server.
        clinic_code: String,
    },
    /// The server enrolled this workstation (sync engine only).
    SyncEnrolled {
        /// The clinic it belongs to now.
        clinic_id: Uuid,
        /// The MRN prefix the server assigned.
        mrn_prefix: String,
        /// The admin who enrolled it.
        admin: ServerUser,
        /// A local verifier of the admin's password, for offline sign-in.
        admin_password_hash: String,
    },
    /// A user signed in online (sync engine only).
    SyncServerUser {
        /// The account as the server has it.
        user: ServerUser,
        /// A local verifier of the password just checked by the server.
        password_hash: Option<String>,
    },
    /// The server answered a push (sync engine only).
    SyncOutcomes {
        /// One outcome per pushed mutation.
        outcomes: Vec<MutationOutcome>,
    },
    /// A page pulled from the server's change feed (sync engine only).
    SyncApply {
        /// The page.
        page: PullResponse,
    },
    /// The server's feed has a new epoch: its database was restored from a
    /// backup (sync engine only). The cursor starts again from 0 and every
    /// mutation the server had acknowledged is queued to be pushed again.
    SyncEpoch {
        /// The new epoch.
        epoch: Uuid,
    },
    /// Reception settles a demographic conflict.
    ConflictResolve {
        /// The conflict.
        id: Uuid,
        /// Keep the value that lost (true) or the server's (false).
        keep_client: bool,
    },
}

impl Mutation {
    /// The permission the actor needs, if any. A record of a kind (or an
    /// operation) the generic road does not know is refused here, before
    /// anything is written.
    fn permission(&self) -> Result<Option<Permission>> {
        use Mutation::*;
        let record = |entity: &Entity, op: Op| {
            clinic_domain::record::kind(*entity)
                .and_then(|k| k.permission(op))
                .map(Some)
                .ok_or(StoreError::Forbidden)
        };
        Ok(match self {
            RecordCreate { entity, .. } => return record(entity, Op::Create),
            RecordUpdate { entity, .. } => return record(entity, Op::Update),
            WorkstationInit { .. } | SignIn { .. } | SignOut { .. } | UserSetLanguage { .. } => {
                None
            }
            WorkstationSettings { .. } => Some(Permission::ManageSettings),
            PatientCreate { .. } | PatientUpdate { .. } => Some(Permission::WriteDemographics),
            PatientMerge { .. } => Some(Permission::MergePatients),
            PatientView { .. } => Some(Permission::ReadDemographics),
            UserCreate { .. }
            | UserSetPassword { .. }
            | UserSetDisabled { .. }
            | UserSetDepartment { .. } => Some(Permission::ManageUsers),
            PatientImport { .. } | ImportRun { .. } => Some(Permission::ImportPatients),
            SyncConfigure { .. } => Some(Permission::ManageSettings),
            // Bookkeeping of the sync engine, which acts as the system; the
            // workstation's commands never offer these to a user.
            SyncEnrolled { .. }
            | SyncServerUser { .. }
            | SyncOutcomes { .. }
            | SyncApply { .. }
            | SyncEpoch { .. } => None,
            ConflictResolve { .. } => Some(Permission::WriteDemographics),
        })
    }
}

/// What a committed mutation left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The audit entry's sequence number; none when the mutation changed
    /// nothing (a save with no field changed writes nothing).
    pub audit_seq: Option<i64>,
    /// The outbox entry's client mutation id, for synced records.
    pub mutation_id: Option<Uuid>,
}

impl Store {
    /// Commits one mutation: row, audit entry and outbox entry in one
    /// transaction.
    pub async fn commit(&self, actor: &Actor, mutation: Mutation) -> Result<Committed> {
        let mut done = self.commit_batch(actor, vec![mutation]).await?;
        Ok(done.remove(0))
    }

    /// Commits mutations in order, all or none, in one transaction.
    pub async fn commit_batch(
        &self,
        actor: &Actor,
        mutations: Vec<Mutation>,
    ) -> Result<Vec<Committed>> {
        let mut conn = self.pool().acquire().await?;
        self.commit_batch_on(&mut conn, actor, mutations).await
    }

    /// [`Store::commit_batch`] on a connection the caller holds. A bulk
    /// import keeps one connection for all its batches, so SQLite's page
    /// cache stays warm from one batch to the next instead of being
    /// reloaded on whichever pooled connection comes next.
    pub(crate) async fn commit_batch_on(
        &self,
        conn: &mut SqliteConnection,
        actor: &Actor,
        mutations: Vec<Mutation>,
    ) -> Result<Vec<Committed>> {
        for m in &mutations {
            if let Some(p) = m.permission()? {
                actor.require(p)?;
            }
        }
        let _writer = self.write_lock.lock().await;
        let tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut w = WriteTx::start(tx, self, actor).await?;
        let mut out = Vec::with_capacity(mutations.len());
        for m in mutations {
            out.push(w.apply(m).await?);
        }
        w.finish().await?;
        if out.iter().any(|c| c.mutation_id.is_some()) {
            self.outbox_signal.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(out)
    }
}

impl Store {
    /// A connection of its own for a long run of writes (an import, a first
    /// full pull), so SQLite's page cache stays warm from batch to batch
    /// (pooled connections take turns, and each turn re-read the pages
    /// another had changed). It is closed afterwards rather than returned
    /// to the pool with these settings:
    /// - a 256 MiB page cache, room for the indexes whose keys arrive in
    ///   random order (name key, birth date, phone tokens);
    /// - a checkpoint every 65,536 WAL pages (256 MiB) instead of 1,000.
    ///   Every batch rewrites pages all over those indexes; checkpointing
    ///   after each batch copied them into the database file again and
    ///   again. Durability is unchanged: each commit is in the WAL and
    ///   synced, as before.
    pub(crate) async fn bulk_connection(&self) -> Result<PoolConnection<Sqlite>> {
        let mut conn = self.pool().acquire().await?;
        conn.close_on_drop();
        sqlx::query("PRAGMA cache_size = -262144")
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA wal_autocheckpoint = 65536")
            .execute(&mut *conn)
            .await?;
        Ok(conn)
    }

    /// A [`BulkWriter`]: the write path on one warm connection.
    pub async fn bulk_writer(&self) -> Result<BulkWriter> {
        Ok(BulkWriter {
            store: self.clone(),
            conn: self.bulk_connection().await?,
        })
    }
}

/// The one write path for a long run of commits (a first full pull) on a
/// connection of its own; see [`Store::bulk_writer`]. Each commit is a
/// transaction of its own, exactly as with [`Store::commit`].
pub struct BulkWriter {
    store: Store,
    conn: PoolConnection<Sqlite>,
}

impl BulkWriter {
    /// Commits one mutation, like [`Store::commit`].
    pub async fn commit(&mut self, actor: &Actor, mutation: Mutation) -> Result<Committed> {
        let mut done = self
            .store
            .commit_batch_on(&mut self.conn, actor, vec![mutation])
            .await?;
        Ok(done.remove(0))
    }

    /// Back to the usual checkpoints, and the connection closed.
    pub async fn finish(mut self) -> Result<()> {
        sqlx::query("PRAGMA wal_autocheckpoint = 1000")
            .execute(&mut *self.conn)
            .await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// An open write transaction with its pending multi-row inserts.
///
/// The connection and the buffers are private: a write step reaches the
/// database only through [`WriteTx::conn`], which writes the buffered rows
/// first, so no statement can miss a row this transaction already made.
pub(crate) struct WriteTx<'a> {
    tx: Transaction<'a, Sqlite>,
    store: &'a Store,
    actor: &'a Actor,
    /// The transaction's clock reading: every row and entry it writes
    /// carries this instant.
    pub(crate) now: DateTime<Utc>,
    next_audit_seq: i64,
    prev_hash: String,
    audit: Vec<AuditRow>,
    outbox: Vec<OutboxRow>,
    /// New patient rows, each with its `search_keys` set.
    patients: Vec<PatientRow>,
    /// `audit_link` rows: (entity id, audit seq, item).
    links: Vec<(String, i64, i64)>,
    /// The sync columns every row this transaction writes shares.
    bookkeeping: Bookkeeping,
    /// The MRN prefix and next sequence number, read once per transaction
    /// and written back on flush, so bulk registration needs no per-row update.
    mrn_counter: Option<MrnCounter>,
}

/// The sync column values of one transaction, as stored.
pub(crate) struct Bookkeeping {
    /// `created_at`/`updated_at`.
    pub now: String,
    /// `created_by`/`updated_by` (see [`WriteTx::actor_ref`]).
    pub actor: String,
    /// `workstation_id`.
    pub workstation_id: String,
}

/// The workstation's MRN sequence within one transaction.
struct MrnCounter {
    prefix: clinic_domain::mrn::MrnPrefix,
    next: i64,
    dirty: bool,
}

/// The hash an audit chain starts from.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

impl<'a> WriteTx<'a> {
    async fn start(
        mut tx: Transaction<'a, Sqlite>,
        store: &'a Store,
        actor: &'a Actor,
    ) -> Result<Self> {
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_owned()));
        let now = store.now();
        let bookkeeping = Bookkeeping {
            now: sql::ts(now),
            actor: match actor.user_id {
                Some(id) => id.to_string(),
                None => actor.name.clone(),
            },
            workstation_id: store.workstation_id().to_string(),
        };
        Ok(Self {
            tx,
            store,
            actor,
            now,
            bookkeeping,
            next_audit_seq: last_seq + 1,
            prev_hash,
            audit: Vec::new(),
            outbox: Vec::new(),
            patients: Vec::new(),
            links: Vec::new(),
            mrn_counter: None,
        })
    }

    pub(crate) fn actor(&self) -> &Actor {
        self.actor
    }

    pub(crate) fn workstation_id(&self) -> Uuid {
        self.store.workstation_id()
    }

    /// The actor as stored in `created_by`/`updated_by` columns.
    pub(crate) fn actor_ref(&self) -> String {
        self.bookkeeping.actor.clone()
    }

    /// The sync column values of this transaction.
    pub(crate) fn bookkeeping(&self) -> &Bookkeeping {
        &self.bookkeeping
    }

    async fn apply(&mut self, m: Mutation) -> Result<Committed> {
        use Mutation::*;
        match m {
            WorkstationInit { id, mrn_prefix } => {
                let now = sql::ts(self.now);
                sqlx::query(
                    "INSERT INTO workstation (singleton, id, name, mrn_prefix, created_at, updated_at)
                     VALUES (1, ?1, ?2, ?3, ?4, ?4)",
                )
                .bind(id.to_string())
                // The prefix alone until an admin names it: a default
                // written in one language would stay in it for everyone.
                .bind(&mrn_prefix)
                .bind(&mrn_prefix)
                .bind(&now)
                .execute(&mut *self.tx)
                .await?;
                let after = serde_json::json!({ "id": id, "mrn_prefix": mrn_prefix });
                self.audit(
                    AuditAction::Create,
                    "workstation",
                    Some(id),
                    None,
                    Some(after),
                )
            }
            WorkstationSettings {
                name,
                idle_lock_minutes,
            } => crate::users::update_workstation(self, name, idle_lock_minutes).await,
            PatientCreate { id, fields } => patients::create(self, id, fields).await,
            PatientImport { run_id, patients } => patients::import(self, run_id, patients).await,
            PatientUpdate {
                id,
                base_version,
                fields,
            } => patients::update(self, id, base_version, fields).await,
            PatientMerge {
                keep,
                merge,
                reason,
            } => patients::merge(self, keep, merge, &reason).await,
            PatientView { id } => {
                let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM patients WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_optional(self.conn().await?)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound("patient"));
                }
                self.audit(AuditAction::View, "patient", Some(id), None, None)
            }
            UserCreate {
                id,
                username,
                display_name,
                role,
                language,
                password_hash,
            } => {
                crate::users::create(
                    self,
                    id,
                    username,
                    display_name,
                    role,
                    language,
                    password_hash,
                )
                .await
            }
            UserSetPassword { id, password_hash } => {
                crate::users::set_password(self, id, password_hash).await
            }
            UserSetDisabled { id, disabled } => {
                crate::users::set_disabled(self, id, disabled).await
            }
            UserSetLanguage { id, language } => {
                if self.actor.user_id != Some(id) {
                    self.actor.require(Permission::ManageUsers)?;
                }
                crate::users::set_language(self, id, language).await
            }
            SignIn {
                user_id,
                username,
                success,
            } => crate::users::record_sign_in(self, user_id, username, success).await,
            RecordCreate { entity, id, fields } => {
                crate::records::create(self, known_kind(entity)?, id, &fields).await
            }
            RecordUpdate {
                entity,
                id,
                base_version,
                fields,
            } => crate::records::update(self, known_kind(entity)?, id, base_version, &fields).await,
            UserSetDepartment { id, department_id } => {
                crate::users::set_department(self, id, department_id).await
            }
            SignOut { user_id } => {
                self.audit(AuditAction::SignOut, "session", Some(user_id), None, None)
            }
            ImportRun { summary } => {
                self.audit(AuditAction::Import, "patient", None, None, Some(summary))
            }
            SyncConfigure {
                server_url,
                clinic_code,
            } => crate::sync::configure(self, &server_url, &clinic_code).await,
            SyncEnrolled {
                clinic_id,
                mrn_prefix,
                admin,
                admin_password_hash,
            } => {
                crate::sync::enrolled(self, clinic_id, &mrn_prefix, &admin, &admin_password_hash)
                    .await
            }
            SyncServerUser {
                user,
                password_hash,
            } => crate::sync::server_user(self, &user, password_hash.as_deref()).await,
            SyncOutcomes { outcomes } => crate::sync::outcomes(self, &outcomes).await,
            SyncApply { page } => crate::sync::apply_page(self, &page).await,
            SyncEpoch { epoch } => crate::sync::new_epoch(self, epoch).await,
            ConflictResolve { id, keep_client } => {
                crate::sync::resolve_conflict(self, id, keep_client).await
            }
        }
    }

    /// Appends an audit entry, chained to the one before.
    pub(crate) fn audit(
        &mut self,
        action: AuditAction,
        entity: &str,
        entity_id: Option<Uuid>,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<Committed> {
        self.audit_text(
            action,
            entity,
            entity_id,
            before.map(|v| v.to_string()),
            after.map(|v| v.to_string()),
        )
    }

    /// The sequence number the next audit entry of this transaction gets.
    pub(crate) fn next_audit_seq(&self) -> i64 {
        self.next_audit_seq
    }

    /// [`WriteTx::audit`] with the before and after values already as JSON text.
    pub(crate) fn audit_text(
        &mut self,
        action: AuditAction,
        entity: &str,
        entity_id: Option<Uuid>,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<Committed> {
        let row = AuditRow {
            seq: self.next_audit_seq,
            at: sql::ts(self.now),
            user_id: self.actor.user_id.map(|u| u.to_string()),
            user_name: self.actor.name.clone(),
            workstation_id: self.workstation_id().to_string(),
            action: action.as_str().to_owned(),
            entity: entity.to_owned(),
            entity_id: entity_id.map(|u| u.to_string()),
            before,
            after,
            prev_hash: std::mem::take(&mut self.prev_hash),
            hash: String::new(),
        };
        let hash = audit_hash(&row);
        self.prev_hash = hash.clone();
        self.audit.push(AuditRow { hash, ..row });
        self.next_audit_seq += 1;
        Ok(Committed {
            audit_seq: Some(self.next_audit_seq - 1),
            mutation_id: None,
        })
    }

    /// Appends an outbox entry for the central server, authored by the
    /// acting user, and returns its id. Once the workstation is enrolled, an
    /// entry needs a user the server knows: one without an author could
    /// never be pushed and would hold up every entry after it, so
    /// [`WriteTx::flush`] refuses the transaction (`ClinicUserRequired`).
    pub(crate) fn outbox(
        &mut self,
        entity: Entity,
        entity_id: Uuid,
        op: Op,
        base_version: Option<i64>,
        payload: &Value,
    ) -> Uuid {
        self.outbox_text(entity, entity_id, op, base_version, payload.to_string())
    }

    /// [`WriteTx::outbox`] with the payload already as JSON text.
    pub(crate) fn outbox_text(
        &mut self,
        entity: Entity,
        entity_id: Uuid,
        op: Op,
        base_version: Option<i64>,
        payload: String,
    ) -> Uuid {
        let author = self.actor.user_id;
        self.outbox_as(author, entity, entity_id, op, base_version, payload)
    }

    /// [`WriteTx::outbox_text`] on behalf of `author`: for an entry the sync
    /// engine makes (acting as the system) for a user's earlier change.
    pub(crate) fn outbox_as(
        &mut self,
        author: Option<Uuid>,
        entity: Entity,
        entity_id: Uuid,
        op: Op,
        base_version: Option<i64>,
        payload: String,
    ) -> Uuid {
        let mutation_id = Uuid::now_v7();
        self.outbox.push(OutboxRow {
            mutation_id: mutation_id.to_string(),
            entity: entity.as_str().to_owned(),
            entity_id: entity_id.to_string(),
            op: op.as_str().to_owned(),
            base_version,
            payload,
            created_at: sql::ts(self.now),
            user_id: author.map(|u| u.to_string()),
        });
        mutation_id
    }

    /// The transaction's connection, with every buffered row written, so
    /// that the statement run on it sees them.
    pub(crate) async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        self.flush().await?;
        Ok(&mut *self.tx)
    }

    /// Queues a new patient row (its `search_keys` set) for a multi-row insert.
    pub(crate) fn insert_patient(&mut self, row: PatientRow) {
        self.patients.push(row);
    }

    /// Makes room for `n` more queued patient rows and their audit links.
    pub(crate) fn reserve_patients(&mut self, n: usize) {
        self.patients.reserve(n);
        self.links.reserve(n);
    }

    /// Queues an `audit_link` row: `entity_id`'s history includes item
    /// `item` of audit entry `seq` (a bulk entry covering many records).
    pub(crate) fn link_to_audit(&mut self, entity_id: String, seq: i64, item: i64) {
        self.links.push((entity_id, seq, item));
    }

    /// Drops the cached MRN counter after the prefix changed.
    pub(crate) fn forget_mrn_counter(&mut self) {
        self.mrn_counter = None;
    }

    /// Hands out the next MRN of this workstation.
    pub(crate) async fn next_mrn(&mut self) -> Result<clinic_domain::mrn::Mrn> {
        if self.mrn_counter.is_none() {
            let (prefix, next): (String, i64) =
                sqlx::query_as("SELECT mrn_prefix, mrn_next_seq FROM workstation")
                    .fetch_one(&mut *self.tx)
                    .await?;
            let prefix = clinic_domain::mrn::MrnPrefix::parse(&prefix)
                .ok_or_else(|| StoreError::Internal("stored MRN prefix is malformed".into()))?;
            self.mrn_counter = Some(MrnCounter {
                prefix,
                next,
                dirty: false,
            });
        }
        let counter = self.mrn_counter.as_mut().expect("set above");
        let mrn = clinic_domain::mrn::Mrn::new(&counter.prefix, counter.next as u64);
        counter.next += 1;
        counter.dirty = true;
        Ok(mrn)
    }

    /// Writes the buffered rows, so that later statements see them. Private:
    /// [`WriteTx::conn`] calls it, so a write step cannot forget to.
    async fn flush(&mut self) -> Result<()> {
        // Only a transaction with an entry nobody signed asks (see
        // [`WriteTx::outbox`]), so ordinary writes pay no extra query.
        if self.outbox.iter().any(|o| o.user_id.is_none()) {
            let enrolled: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sync_state WHERE clinic_id IS NOT NULL)",
            )
            .fetch_one(&mut *self.tx)
            .await?;
            if enrolled {
                return Err(StoreError::ClinicUserRequired);
            }
        }
        if let Some(counter) = self.mrn_counter.as_mut().filter(|c| c.dirty) {
            sqlx::query("UPDATE workstation SET mrn_next_seq = ?")
                .bind(counter.next)
                .execute(&mut *self.tx)
                .await?;
            counter.dirty = false;
        }
        if !self.patients.is_empty() {
            let after = sql::last_patient_key(&mut self.tx).await?;
            sql::insert_patients(&mut self.tx, std::mem::take(&mut self.patients)).await?;
            sql::index_patients(&mut self.tx, sql::Indexed::After(after)).await?;
        }
        sql::insert_audit(&mut self.tx, std::mem::take(&mut self.audit)).await?;
        sql::insert_links(&mut self.tx, std::mem::take(&mut self.links)).await?;
        sql::insert_outbox(&mut self.tx, std::mem::take(&mut self.outbox)).await?;
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        self.flush().await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// The generic road's entry for `entity` (checked in
/// [`Mutation::permission`] already).
fn known_kind(entity: Entity) -> Result<&'static clinic_domain::record::KindInfo> {
    clinic_domain::record::kind(entity).ok_or(StoreError::Forbidden)
}

/// The SHA-256 of an audit entry's content and its predecessor's hash, hex.
pub(crate) fn audit_hash(row: &AuditRow) -> String {
    let mut h = Sha256::new();
    for part in [
        row.prev_hash.as_str(),
        &row.seq.to_string(),
        &row.at,
        row.user_id.as_deref().unwrap_or(""),
        &row.user_name,
        &row.workstation_id,
        &row.action,
        &row.entity,
        row.entity_id.as_deref().unwrap_or(""),
        row.before.as_deref().unwrap_or(""),
        row.after.as_deref().unwrap_or(""),
    ] {
        // Length-prefixing each part makes the encoding unambiguous.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
