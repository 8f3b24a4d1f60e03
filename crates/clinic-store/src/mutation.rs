//! The changes the store can make ([`Mutation`]) and where each is applied.
//!
//! This is the one place that knows every capability: each variant names
//! the permission it needs and the capability function that writes it. The
//! write path itself ([`crate::write`]) only runs a [`Change`] inside its
//! transaction, so the engine imports nothing from the capabilities.

use clinic_domain::audit::AuditAction;
use clinic_domain::patient::PatientFields;
use clinic_domain::record::{self, KindInfo};
use clinic_domain::sync::{Entity, MutationOutcome, Op, PullResponse, ServerUser};
use clinic_domain::user::Language;
use clinic_domain::{Permission, Role};
use serde_json::Value;
use uuid::Uuid;

use crate::patients;
use crate::sql;
use crate::write::{Change, Committed, WriteTx};
use crate::{Result, StoreError};

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

impl Change for Mutation {
    /// The permission the actor needs, if any. A synced change needs what
    /// its kind's declaration says ([`clinic_domain::record::KINDS`], the
    /// same rule the server applies); a kind or operation the declaration
    /// does not have (an update of an append-only kind, a record kind off
    /// the generic road sent down it) is refused here, before anything is
    /// written.
    fn permission(&self) -> Result<Option<Permission>> {
        use Mutation::*;
        let declared = |kind: Option<&KindInfo>, op: Op| {
            kind.and_then(|k| k.permission(op))
                .map(Some)
                .ok_or(StoreError::Forbidden)
        };
        let patient = |op| declared(record::kind(Entity::Patient), op);
        match self {
            RecordCreate { entity, .. } => declared(record::generic(*entity), Op::Create),
            RecordUpdate { entity, .. } => declared(record::generic(*entity), Op::Update),
            PatientCreate { .. } => patient(Op::Create),
            PatientUpdate { .. } => patient(Op::Update),
            PatientMerge { .. } => patient(Op::Merge),
            PatientImport { .. } | ImportRun { .. } => patient(Op::Import),
            ConflictResolve { .. } => declared(record::kind(Entity::PatientConflict), Op::Resolve),
            WorkstationInit { .. } | SignIn { .. } | SignOut { .. } | UserSetLanguage { .. } => {
                Ok(None)
            }
            WorkstationSettings { .. } | SyncConfigure { .. } => {
                Ok(Some(Permission::ManageSettings))
            }
            PatientView { .. } => Ok(Some(Permission::ReadDemographics)),
            // Local accounts (before the workstation joins a clinic's
            // server; the server's accounts come from its feed).
            UserCreate { .. }
            | UserSetPassword { .. }
            | UserSetDisabled { .. }
            | UserSetDepartment { .. } => Ok(Some(Permission::ManageUsers)),
            // Bookkeeping of the sync engine, which acts as the system; the
            // workstation's commands never offer these to a user.
            SyncEnrolled { .. }
            | SyncServerUser { .. }
            | SyncOutcomes { .. }
            | SyncApply { .. }
            | SyncEpoch { .. } => Ok(None),
        }
    }

    /// Writes this change through the open transaction `w`.
    async fn apply(self, w: &mut WriteTx<'_>) -> Result<Committed> {
        use Mutation::*;
        match self {
            WorkstationInit { id, mrn_prefix } => {
                let now = sql::ts(w.now);
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
                .execute(w.conn().await?)
                .await?;
                let after = serde_json::json!({ "id": id, "mrn_prefix": mrn_prefix });
                w.audit(
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
            } => crate::users::update_workstation(w, name, idle_lock_minutes).await,
            PatientCreate { id, fields } => patients::create(w, id, fields).await,
            PatientImport { run_id, patients } => patients::import(w, run_id, patients).await,
            PatientUpdate {
                id,
                base_version,
                fields,
            } => patients::update(w, id, base_version, fields).await,
            PatientMerge {
                keep,
                merge,
                reason,
            } => patients::merge(w, keep, merge, &reason).await,
            PatientView { id } => {
                let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM patients WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_optional(w.conn().await?)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound("patient"));
                }
                w.audit(AuditAction::View, "patient", Some(id), None, None)
            }
            UserCreate {
                id,
                username,
                display_name,
                role,
                language,
                password_hash,
            } => {
                crate::users::create(w, id, username, display_name, role, language, password_hash)
                    .await
            }
            UserSetPassword { id, password_hash } => {
                crate::users::set_password(w, id, password_hash).await
            }
            UserSetDisabled { id, disabled } => crate::users::set_disabled(w, id, disabled).await,
            UserSetLanguage { id, language } => {
                if w.actor().user_id != Some(id) {
                    w.actor().require(Permission::ManageUsers)?;
                }
                crate::users::set_language(w, id, language).await
            }
            SignIn {
                user_id,
                username,
                success,
            } => crate::users::record_sign_in(w, user_id, username, success).await,
            RecordCreate { entity, id, fields } => {
                crate::records::create(w, known_kind(entity)?, id, &fields).await
            }
            RecordUpdate {
                entity,
                id,
                base_version,
                fields,
            } => crate::records::update(w, known_kind(entity)?, id, base_version, &fields).await,
            UserSetDepartment { id, department_id } => {
                crate::users::set_department(w, id, department_id).await
            }
            SignOut { user_id } => {
                w.audit(AuditAction::SignOut, "session", Some(user_id), None, None)
            }
            ImportRun { summary } => {
                w.audit(AuditAction::Import, "patient", None, None, Some(summary))
            }
            SyncConfigure {
                server_url,
                clinic_code,
            } => crate::sync::configure(w, &server_url, &clinic_code).await,
            SyncEnrolled {
                clinic_id,
                mrn_prefix,
                admin,
                admin_password_hash,
            } => {
                crate::sync::enrolled(w, clinic_id, &mrn_prefix, &admin, &admin_password_hash).await
            }
            SyncServerUser {
                user,
                password_hash,
            } => crate::sync::server_user(w, &user, password_hash.as_deref()).await,
            SyncOutcomes { outcomes } => crate::sync::outcomes(w, &outcomes).await,
            SyncApply { page } => crate::sync::apply_page(w, &page).await,
            SyncEpoch { epoch } => crate::sync::new_epoch(w, epoch).await,
            ConflictResolve { id, keep_client } => {
                crate::sync::resolve_conflict(w, id, keep_client).await
            }
        }
    }
}

/// The generic road's entry for `entity` (checked in
/// [`Mutation::permission`] already).
fn known_kind(entity: Entity) -> Result<&'static KindInfo> {
    record::generic(entity).ok_or(StoreError::Forbidden)
}
