//! The sync protocol between a workstation and the central server: the wire
//! types of push, pull and sign-in, and the per-field three-way merge that
//! settles concurrent demographic edits. Both sides use these definitions, so
//! the protocol is written once.
//!
//! - **Push** sends outbox entries in order; each has a client mutation id and
//!   gets exactly one [`MutationOutcome`], stored by the server, so a replayed
//!   push returns the stored outcome and changes nothing.
//! - **Pull** reads a clinic's change feed after a cursor; every [`Change`]
//!   carries the full record, so applying a change twice is harmless.
//! - **Demographics** merge per field against the base the edit was made on
//!   ([`three_way_merge`]); a field both sides changed keeps the server value
//!   and the losing value becomes a [`FieldConflict`], never dropped.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;
use uuid::Uuid;

use crate::codes::wire_code;
use crate::error::{FieldCode, FieldError};
use crate::patient::{PatientFields, PatientStatus, PatientSummary};
use crate::record::{Conflicts, Lifecycle, Origin, RecordKind, Storage};
use crate::role::{Permission, Role};
use crate::user::Language;

/// How many mutations a workstation sends in one push at most.
pub const MAX_PUSH_BATCH: usize = 500;
/// How many bytes of mutations a workstation puts in one push, at most
/// (a single larger mutation still goes alone). The server accepts more
/// (`max_push_bytes`, 32 MiB by default).
pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;
/// How many changes one pull page holds at most.
pub const MAX_PULL_PAGE: i64 = 5_000;

/// The demographic fields of a patient record, as named on the wire and in
/// the workstation's snapshots. These are the fields the merge looks at.
pub const PATIENT_FIELDS: [&str; 13] = [
    "family_name",
    "given_name",
    "middle_name",
    "sex",
    "birth_date",
    "birth_date_estimated",
    "phones",
    "national_id",
    "address",
    "emergency_contact_name",
    "emergency_contact_phone",
    "allergies",
    "notes",
];

wire_code! {
    /// Kinds of records the protocol carries.
    ///
    /// On the wire of a push or a pull the kind stays text
    /// ([`PushMutation::kind`], [`Change::kind`]): a kind a newer peer knows
    /// and this one does not becomes one refused entry, never a refused
    /// request that would hold up every entry after it.
    pub enum Entity {
        /// A patient's demographic record.
        Patient = "patient",
        /// A losing field value waiting for reception's review.
        PatientConflict = "patient_conflict",
        /// A clinic department.
        Department = "department",
        /// A user account (never with its password hash).
        User = "user",
    }
}

wire_code! {
    /// What a synced change does to its record.
    pub enum Op {
        /// A new record.
        Create = "create",
        /// A change to an existing record, made on a known version.
        Update = "update",
        /// Two patient records found to be one person.
        Merge = "merge",
        /// A batch of new records from a CSV import.
        Import = "import",
        /// Reception settled a conflict.
        Resolve = "resolve",
        /// A correction of an append-only record: a new record naming the
        /// one it amends.
        Amend = "amend",
    }
}

wire_code! {
    /// Why the server refused one pushed change; stored with the change and
    /// shown to its author (`refused.<code>`).
    pub enum RejectCode {
        /// The author's role does not allow it.
        Forbidden = "forbidden",
        /// A field failed validation (the message names it).
        Validation = "validation",
        /// The payload is not what its kind and operation carry.
        Malformed = "malformed",
        /// The record it changes does not exist in the clinic.
        NotFound = "not_found",
        /// The patient was merged into another record.
        Merged = "merged",
        /// A record with this id already exists.
        Exists = "exists",
        /// The MRN belongs to another patient of the clinic.
        MrnTaken = "mrn_taken",
        /// A merge of a record with itself.
        SameRecord = "same_record",
        /// The conflict was settled already.
        AlreadyResolved = "already_resolved",
        /// A kind or operation the server does not know.
        UnknownMutation = "unknown_mutation",
        /// A mutation id already used for a different change.
        MutationIdReused = "mutation_id_reused",
        /// Applied, but some fields kept the server's value (a conflict outcome).
        FieldsKeptServerValue = "fields_kept_server_value",
        /// The server failed on this change; pushing again may work.
        ServerError = "server_error",
        /// The record changed on the server since the change was made, in
        /// a field the change also changed; nothing was applied.
        ChangedMeanwhile = "changed_meanwhile",
        /// A code this workstation does not know yet (from a newer server).
        #[serde(other)]
        Other = "other",
    }
}

wire_code! {
    /// The `code` of the server's error body (`{code, message}`) on any
    /// failed request.
    pub enum ApiErrorCode {
        /// No valid access token.
        Unauthenticated = "unauthenticated",
        /// Wrong user name or password.
        InvalidCredentials = "invalid_credentials",
        /// Too many failed sign-ins; locked for a while.
        AccountLocked = "account_locked",
        /// The account is disabled.
        AccountDisabled = "account_disabled",
        /// The caller's role does not allow it.
        Forbidden = "forbidden",
        /// No such record in the caller's clinic.
        NotFound = "not_found",
        /// A malformed request.
        BadRequest = "bad_request",
        /// A field failed validation; see `fields`.
        Validation = "validation",
        /// The record changed meanwhile, or the name is taken.
        Conflict = "conflict",
        /// The request body is larger than the server accepts.
        TooLarge = "too_large",
        /// Too many requests at once; try again after `Retry-After`.
        Busy = "busy",
        /// The method is not allowed on this path.
        MethodNotAllowed = "method_not_allowed",
        /// The server's database cannot be reached now.
        Unavailable = "unavailable",
        /// An internal error; details are in the server's log.
        Internal = "internal",
        /// A code this workstation does not know yet (from a newer server).
        #[serde(other)]
        Other = "other",
    }
}

wire_code! {
    /// Why sync cannot go on by itself (the status bar says it).
    pub enum SyncProblemCode {
        /// The server cannot be reached; sync retries by itself.
        ServerUnreachable = "server_unreachable",
        /// Someone must sign in while online (a server sign-in ended).
        SignInNeeded = "sign_in_needed",
        /// The server refused a request.
        ServerRefused = "server_refused",
        /// The local database failed; details are in the local log.
        LocalError = "local_error",
        /// No server is configured, or the workstation is not enrolled.
        NotEnrolled = "not_enrolled",
    }
}

/// A patient record's fields on the wire: the demographic ones, then the
/// MRN and the merge status.
const PATIENT_RECORD_FIELDS: [&str; 16] = {
    let mut out = [""; 16];
    let mut i = 0;
    while i < PATIENT_FIELDS.len() {
        out[i] = PATIENT_FIELDS[i];
        i += 1;
    }
    out[13] = "mrn";
    out[14] = "status";
    out[15] = "merged_into";
    out
};

/// A patient record as it travels: the demographic fields plus the MRN and
/// the merge status. The patient's [`RecordKind`]: its demographic fields
/// are the ones an edit changes; the MRN and the status change only by the
/// kind's own operations (a renumbering, a merge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatientData {
    /// The demographic fields.
    #[serde(flatten)]
    pub fields: PatientFields,
    /// The patient number, unique in the clinic.
    pub mrn: String,
    /// Active, or merged into `merged_into`.
    pub status: PatientStatus,
    /// The record this one was merged into.
    #[serde(default)]
    pub merged_into: Option<Uuid>,
}

impl RecordKind for PatientData {
    const ENTITY: Entity = Entity::Patient;
    const TABLE: &'static str = "patients";
    const FIELDS: &'static [&'static str] = &PATIENT_RECORD_FIELDS;
    const EDITABLE: &'static [&'static str] = &PATIENT_FIELDS;
    const UNIQUE: &'static [&'static str] = &["mrn"];
    const LIFECYCLE: Lifecycle = Lifecycle::Editable;
    const CONFLICTS: Conflicts = Conflicts::Review;
    const STORAGE: Storage = Storage::Capability;
    const WRITE: Permission = Permission::WriteDemographics;
    const OPS: &'static [(Op, Permission)] = &[
        (Op::Merge, Permission::MergePatients),
        (Op::Import, Permission::ImportPatients),
    ];

    /// The registration form's rules, so that a record pushed by a patched
    /// or buggy workstation gets the same ones, and a valid patient number.
    fn validate(self, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let input = self.fields.to_input();
        let (fields, mut errors) = match input.validate(today) {
            Ok(fields) => (Some(fields), Vec::new()),
            Err(e) => (None, e),
        };
        if crate::mrn::Mrn::parse(&self.mrn).is_none() {
            errors.push(FieldError::new(
                "mrn",
                FieldCode::Invalid,
                "not a valid patient number",
            ));
        }
        match fields {
            Some(mut fields) if errors.is_empty() => {
                // The form resolves an estimated age to 1 July; a stored
                // record says which it was.
                fields.birth_date_estimated = self.fields.birth_date_estimated;
                Ok(PatientData { fields, ..self })
            }
            _ => Err(errors),
        }
    }
}

/// A patient record as the server stores and returns it (`/v1/patients`,
/// and the `data` of a pulled `patient` change): the record as it travels
/// and the sync columns the server keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerPatient {
    /// The demographic fields, MRN and merge status.
    #[serde(flatten)]
    pub data: PatientData,
    /// The record's id (UUID v7, made where the patient was registered).
    pub id: Uuid,
    /// Row version, raised by one on every change.
    pub version: i64,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// The user who created it.
    pub created_by: Uuid,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The user who last changed it.
    pub updated_by: Uuid,
    /// The workstation of the last change; the nil id for the server itself.
    pub workstation_id: Uuid,
}

/// One outbox entry on its way to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushMutation {
    /// The client mutation id, made on the workstation; the idempotency key.
    pub mutation_id: Uuid,
    /// The outbox sequence number on the workstation (for ordering and logs).
    #[serde(deserialize_with = "crate::untrusted::integer")]
    pub client_seq: i64,
    /// What kind of record it changes ([`Entity`]). Text on the wire, any
    /// text: the server answers an unknown or malformed kind (even one with
    /// a NUL character) with that entry's refusal, never by refusing the
    /// whole push, which would hold up every entry behind it.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[\s\S]*$"))]
    pub entity: String,
    /// The record's id.
    pub entity_id: Uuid,
    /// What it does ([`Op`]); any text, answered per entry like `entity`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[\s\S]*$"))]
    pub op: String,
    /// The version the change was made on, for updates.
    #[serde(default, deserialize_with = "crate::untrusted::optional_integer")]
    pub base_version: Option<i64>,
    /// The change itself; its shape depends on `entity` and `op`.
    pub payload: Value,
    /// When the user made the change, by the workstation's clock (display only).
    pub created_at: DateTime<Utc>,
    /// Who made the change; must be the user the push is authenticated as.
    pub user_id: Uuid,
}

/// The permission a synced change of this kind needs, or `None` when the
/// kind and operation do not go together (no such change exists). The
/// server checks it for every pushed change; the workstation's write path
/// checks the same permissions before the change is made.
pub fn change_permission(entity: Entity, op: Op) -> Option<Permission> {
    crate::record::kind(entity)?.permission(op)
}

impl PushMutation {
    /// The kind and operation, when this side knows both.
    pub fn kind(&self) -> Option<(Entity, Op)> {
        Some((Entity::parse(&self.entity)?, Op::parse(&self.op)?))
    }
}

/// `POST /v1/sync/push`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The pushing workstation; it must be enrolled in the token's clinic.
    pub workstation_id: Uuid,
    /// Outbox entries in outbox order.
    pub mutations: Vec<PushMutation>,
}

wire_code! {
    /// What became of one pushed mutation.
    pub enum OutcomeStatus {
        /// Applied as sent.
        Applied = "applied",
        /// Applied, but some fields kept the server's value; the losing values
        /// are stored as conflicts for review.
        Conflict = "conflict",
        /// Not applied, with a reason (validation, permission, unknown record).
        Rejected = "rejected",
    }
}

/// The server's recorded answer to one mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MutationOutcome {
    /// The client mutation id.
    pub mutation_id: Uuid,
    /// Applied, conflict or rejected.
    pub status: OutcomeStatus,
    /// For rejections (and conflicts): why.
    #[serde(default)]
    pub code: Option<RejectCode>,
    /// For rejections: an English reason, without patient data.
    #[serde(default)]
    pub message: Option<String>,
    /// The fields that kept the server's value.
    #[serde(default)]
    pub conflicts: Vec<String>,
    /// Records of a bulk mutation (an import) the server did not create
    /// because their MRN was already used in the clinic; the rest were. The
    /// workstation gives them new numbers and sends them again.
    #[serde(default)]
    pub refused: Vec<Uuid>,
}

/// `POST /v1/sync/push` answer: one outcome per mutation, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    /// Outcomes of the pushed mutations, in the order they were sent.
    pub outcomes: Vec<MutationOutcome>,
}

/// One entry of a clinic's change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// The server sequence number; strictly increasing per clinic, in commit order.
    pub seq: i64,
    /// The kind of record.
    pub entity: String,
    /// The record's id.
    pub entity_id: Uuid,
    /// The record's version after this change.
    pub version: i64,
    /// The whole record after the change.
    pub data: Value,
    /// The client mutation that caused it, if one did.
    #[serde(default)]
    pub mutation_id: Option<Uuid>,
}

impl Change {
    /// The kind of record, when this side knows it.
    pub fn kind(&self) -> Option<Entity> {
        Entity::parse(&self.entity)
    }
}

/// `GET /v1/sync/pull?after=N&limit=M` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullResponse {
    /// Changes after the cursor, in sequence order.
    pub changes: Vec<Change>,
    /// The cursor to ask with next (the last change's `seq`, or the old cursor).
    pub cursor: i64,
    /// Whether more changes are waiting.
    pub has_more: bool,
    /// The feed's epoch: it changes when the server's database was restored
    /// from a backup, and sequence numbers of another epoch mean nothing.
    pub epoch: Uuid,
}

/// A conflict record: a value that lost a concurrent edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[ts(export)]
pub struct PatientConflict {
    /// The conflict's id.
    pub id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// The field both sides changed.
    pub field: String,
    /// The value both edits started from.
    pub base_value: Value,
    /// The value kept (the server's).
    pub server_value: Value,
    /// The value that lost, kept here for review.
    pub client_value: Value,
    /// The mutation that brought the losing value.
    pub mutation_id: Uuid,
    /// Who made the losing edit.
    pub user_id: Uuid,
    /// When it was recorded on the server.
    pub created_at: DateTime<Utc>,
    /// When reception settled it, if it has been.
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl RecordKind for PatientConflict {
    const ENTITY: Entity = Entity::PatientConflict;
    const TABLE: &'static str = "patient_conflicts";
    const FIELDS: &'static [&'static str] = &[
        "id",
        "patient_id",
        "field",
        "base_value",
        "server_value",
        "client_value",
        "mutation_id",
        "user_id",
        "created_at",
        "resolved_at",
    ];
    const EDITABLE: &'static [&'static str] = &["resolved_at"];
    const LIFECYCLE: Lifecycle = Lifecycle::Editable;
    /// The server records a conflict when it merges an edit; reception
    /// settles it from a workstation ([`Op::Resolve`]).
    const ORIGIN: Origin = Origin::Server;
    const STORAGE: Storage = Storage::Capability;
    const WRITE: Permission = Permission::WriteDemographics;
    const OPS: &'static [(Op, Permission)] = &[(Op::Resolve, Permission::WriteDemographics)];

    fn validate(self, _today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        if PATIENT_FIELDS.contains(&self.field.as_str()) {
            Ok(self)
        } else {
            Err(vec![FieldError::new(
                "field",
                FieldCode::Invalid,
                "not a demographic field",
            )])
        }
    }
}

/// An open conflict as reception reviews it: the conflict and the patient
/// it belongs to (`None` if the record is not on this workstation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ConflictReview {
    /// The conflict.
    pub conflict: PatientConflict,
    /// The patient's name and MRN.
    pub patient: Option<PatientSummary>,
}

/// A change made here that the server refused, as its author reviews it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RefusedChange {
    /// The change's client mutation id.
    pub mutation_id: Uuid,
    /// What kind of record it changed.
    pub entity: Entity,
    /// How.
    pub op: Op,
    /// When it was made here.
    pub created_at: DateTime<Utc>,
    /// Who made it, as this workstation knows them.
    pub author: Option<String>,
    /// The patient it was about, when it was about one this workstation has.
    pub patient: Option<PatientSummary>,
    /// The server's reason (the UI translates it).
    pub code: Option<RejectCode>,
    /// The server's reason in English, without patient data.
    pub message: Option<String>,
}

/// A user account as the server shares it with workstations (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerUser {
    /// The user's id, the same on every workstation.
    pub id: Uuid,
    /// The clinic the user works at.
    pub clinic_id: Uuid,
    /// Sign-in name, unique in the clinic.
    pub username: String,
    /// Name shown in the UI and the audit log.
    pub display_name: String,
    /// Role at the clinic.
    pub role: Role,
    /// UI language.
    pub language: Language,
    /// Whether the account is disabled.
    pub disabled: bool,
}

impl RecordKind for ServerUser {
    const ENTITY: Entity = Entity::User;
    const TABLE: &'static str = "users";
    const FIELDS: &'static [&'static str] = &[
        "id",
        "clinic_id",
        "username",
        "display_name",
        "role",
        "language",
        "disabled",
    ];
    const EDITABLE: &'static [&'static str] = &["display_name", "role", "language", "disabled"];
    const UNIQUE: &'static [&'static str] = &["username"];
    const LIFECYCLE: Lifecycle = Lifecycle::Editable;
    /// Accounts are the clinic's, kept by the server's admin API; a
    /// workstation takes them from the feed (with the password hash from
    /// an online sign-in, never from the feed).
    const ORIGIN: Origin = Origin::Server;
    const STORAGE: Storage = Storage::Capability;
    const WRITE: Permission = Permission::ManageUsers;

    fn validate(self, _today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        if crate::user::is_display_name(&self.display_name) {
            Ok(self)
        } else {
            Err(vec![FieldError::new(
                "display_name",
                FieldCode::Required,
                "is required (at most 100 characters)",
            )])
        }
    }
}

/// `POST /v1/auth/sign-in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The clinic's code, e.g. `central`.
    pub clinic: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/sign-out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last sign-in or refresh.
    pub refresh_token: String,
}

/// A fresh access token and the next refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// Bearer token for API calls; short-lived.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// One-use token for the next refresh; the old one stops working.
    pub refresh_token: String,
    /// Who signed in.
    pub user: ServerUser,
}

/// `POST /v1/workstations`: enrol a workstation in the admin's clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The workstation's id (made on its first start).
    pub workstation_id: Uuid,
    /// Its name, e.g. "Reception 1".
    pub name: String,
    /// The MRN prefix it uses now.
    pub mrn_prefix: String,
}

/// The server's answer to an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The clinic the workstation now belongs to.
    pub clinic_id: Uuid,
    /// The MRN prefix to use from now on; unique in the clinic.
    pub mrn_prefix: String,
}

/// What the status bar shows about sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SyncStatus {
    /// Whether a server is configured for this workstation.
    pub configured: bool,
    /// The server's address, when configured.
    pub server_url: Option<String>,
    /// Online (the last exchange with the server worked) or offline.
    pub connection: crate::workstation::ConnectionState,
    /// Local changes the server has not acknowledged yet.
    #[ts(type = "number")]
    pub pending: i64,
    /// Local changes the server refused; each has a reason to review.
    #[ts(type = "number")]
    pub rejected: i64,
    /// Demographic conflicts waiting for reception.
    #[ts(type = "number")]
    pub conflicts: i64,
    /// When the last pull finished.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// During a long initial sync: the fraction done, 0..1.
    pub progress: Option<f64>,
    /// Why sync is stalled or failing, in English (the UI shows `code`).
    pub problem: Option<SyncProblem>,
    /// No OS keychain here: server sign-ins are kept for this session only
    /// (shown whatever else is wrong).
    pub tokens_session_only: bool,
}

/// Why sync cannot go on by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SyncProblem {
    /// What is wrong.
    pub code: SyncProblemCode,
    /// English details for logs; never patient data.
    pub message: String,
}

/// The body of an edit of any editable record (a patient's demographics,
/// a record kind's fields): the fields changed, their values before the
/// edit (the base of the three-way merge) and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEdit {
    /// Names of the changed fields.
    pub changed: Vec<String>,
    /// The changed fields' values before the edit.
    pub base: BTreeMap<String, Value>,
    /// The whole record after the edit, as the workstation saw it.
    pub fields: Value,
}

/// The result of merging one edit into the server's record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MergeResult {
    /// Field values to write to the server record.
    pub apply: BTreeMap<String, Value>,
    /// Fields both sides changed: (field, base, server value kept, client value lost).
    pub conflicts: Vec<(String, Value, Value, Value)>,
}

/// Three-way merge of one edit into the server's current record, field by
/// field: a field the server has not changed since the edit's base takes the
/// client's value; a field both changed to different values keeps the
/// server's value and is reported as a conflict. No field is decided by
/// last-writer-wins.
pub fn three_way_merge(fields: &[&str], server: &Value, edit: &RecordEdit) -> MergeResult {
    let mut out = MergeResult::default();
    for field in &edit.changed {
        if !fields.contains(&field.as_str()) {
            continue;
        }
        let base = edit.base.get(field).cloned().unwrap_or(Value::Null);
        let client = edit.fields.get(field).cloned().unwrap_or(Value::Null);
        let current = server.get(field).cloned().unwrap_or(Value::Null);
        if current == client {
            continue; // both sides made the same change
        }
        if current == base {
            out.apply.insert(field.clone(), client);
        } else {
            out.conflicts.push((field.clone(), base, current, client));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(changed: &[&str], base: Value, fields: Value) -> RecordEdit {
        RecordEdit {
            changed: changed.iter().map(|s| s.to_string()).collect(),
            base: serde_json::from_value(base).unwrap(),
            fields,
        }
    }

    fn patient() -> PatientData {
        let form = crate::patient::PatientInput {
            family_name: "Ivanova".into(),
            given_name: "Anna".into(),
            sex: Some(crate::patient::Sex::Female),
            estimated_age: Some(46),
            phones: vec!["+66 81 234 5678".into()],
            ..Default::default()
        };
        PatientData {
            fields: form
                .validate(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap())
                .unwrap(),
            mrn: crate::mrn::Mrn::new(&crate::mrn::MrnPrefix::parse("KAA").unwrap(), 1)
                .as_str()
                .to_owned(),
            status: PatientStatus::Active,
            merged_into: None,
        }
    }

    #[test]
    fn the_patient_user_and_conflict_kinds_are_declared_consistently() {
        crate::record::check_kind(patient());
        crate::record::check_kind(PatientConflict {
            id: Uuid::nil(),
            patient_id: Uuid::nil(),
            field: "address".into(),
            base_value: json!(null),
            server_value: json!("a"),
            client_value: json!("b"),
            mutation_id: Uuid::nil(),
            user_id: Uuid::nil(),
            created_at: DateTime::UNIX_EPOCH,
            resolved_at: None,
        });
        crate::record::check_kind(ServerUser {
            id: Uuid::nil(),
            clinic_id: Uuid::nil(),
            username: "nurse.anna".into(),
            display_name: "Anna".into(),
            role: Role::Nurse,
            language: Language::Ru,
            disabled: false,
        });
    }

    #[test]
    fn a_pushed_patient_gets_the_forms_rules() {
        let kind = crate::record::kind(Entity::Patient).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let mut p = serde_json::to_value(patient()).unwrap();
        p["birth_date"] = json!("2030-01-01");
        p["mrn"] = json!("nonsense");
        let errors = (kind.validate)(&p, today).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["birth_date", "mrn"]);
        p["status"] = json!("deleted");
        assert_eq!(
            (kind.validate)(&p, today).unwrap_err()[0].code,
            FieldCode::Invalid,
            "an unknown status does not decode"
        );
    }

    #[test]
    fn untouched_server_fields_take_the_clients_value() {
        let server = json!({"family_name": "Ivanov", "address": "Old"});
        let e = edit(
            &["address"],
            json!({"address": "Old"}),
            json!({"family_name": "Ivanov", "address": "New"}),
        );
        let r = three_way_merge(&PATIENT_FIELDS, &server, &e);
        assert_eq!(r.apply.get("address"), Some(&json!("New")));
        assert!(r.conflicts.is_empty());
    }

    #[test]
    fn a_field_both_sides_changed_keeps_the_server_value_and_reports_the_loser() {
        let server = json!({"family_name": "Petrov", "address": "Server st"});
        let e = edit(
            &["family_name", "address"],
            json!({"family_name": "Ivanov", "address": "Server st"}),
            json!({"family_name": "Sidorov", "address": "Client st"}),
        );
        let r = three_way_merge(&PATIENT_FIELDS, &server, &e);
        assert_eq!(r.apply.get("address"), Some(&json!("Client st")));
        assert!(!r.apply.contains_key("family_name"));
        assert_eq!(
            r.conflicts,
            vec![(
                "family_name".to_owned(),
                json!("Ivanov"),
                json!("Petrov"),
                json!("Sidorov")
            )]
        );
    }

    #[test]
    fn the_same_change_on_both_sides_is_not_a_conflict() {
        let server = json!({"sex": "female"});
        let e = edit(
            &["sex"],
            json!({"sex": "unknown"}),
            json!({"sex": "female"}),
        );
        let r = three_way_merge(&PATIENT_FIELDS, &server, &e);
        assert!(r.apply.is_empty() && r.conflicts.is_empty());
    }

    #[test]
    fn fields_outside_the_demographics_are_ignored() {
        let server = json!({"version": 3});
        let e = edit(&["version"], json!({"version": 1}), json!({"version": 9}));
        assert_eq!(
            three_way_merge(&PATIENT_FIELDS, &server, &e),
            MergeResult::default()
        );
    }

    #[test]
    fn requests_reject_unknown_fields() {
        let r: Result<RefreshRequest, _> =
            serde_json::from_value(json!({"refresh_token": "x", "admin": true}));
        assert!(r.is_err());
    }
}
