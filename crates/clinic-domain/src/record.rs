//! Synced record kinds, each declared once.
//!
//! A kind is one struct of fields ([`RecordKind`]): the form sends it, the
//! store writes it to its table (one column per field, the same names in
//! SQLite and PostgreSQL), the outbox and the change feed carry it as JSON,
//! the audit log keeps it before and after. The write path, the server's
//! apply, the feed, the pull and the history are generic over
//! [`KindInfo`], the kind's entry in [`KINDS`]; a new kind adds a struct,
//! an entry there and its tables (see "How to add a record kind" in
//! ARCHITECTURE.md).
//!
//! How a kind's records change is part of the declaration ([`Lifecycle`]):
//! an editable record takes updates made on a known version, merged per
//! field on the server; an append-only record (vitals, notes, results) is
//! never updated: a correction is a new record that names the one it
//! amends, and the write path refuses anything else.

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;
use uuid::Uuid;

use crate::error::{FieldCode, FieldError};
use crate::role::Permission;
use crate::sync::{Entity, Op};
use crate::untrusted::describe_decode_error;

/// How a kind's records change once made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Updated in place, each update made on a known version; concurrent
    /// updates merge per field (see [`crate::sync::three_way_merge`]).
    Editable,
    /// Never updated: corrected by a new record whose `amends` names the
    /// original ([`Op::Amend`]).
    AppendOnly,
}

/// Where a kind's records are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// On workstations, offline too, and pushed to the server.
    Workstation,
    /// By the server alone (user accounts, the conflicts it records): the
    /// workstations take them from the feed and push no create or update
    /// of them; only the kind's own [`RecordKind::OPS`] come back.
    Server,
}

/// What becomes of a field two workstations changed from the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflicts {
    /// The later edit is refused as a whole (`changed_meanwhile`) and its
    /// author sees it among the refused changes, with what they typed.
    Refuse,
    /// The server's value stays and the losing value is kept as a conflict
    /// record for reception to review (a patient's demographics: the other
    /// fields of the edit still apply).
    Review,
}

/// Where a kind's rows are written on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// The generic tables: one column per field in SQLite and PostgreSQL,
    /// written and read by the generic road alone.
    Generic,
    /// The capability's own steps, because its rows carry more than the
    /// fields (a patient's search index and MRN counter, a user's password
    /// hash); the declaration still decides permission, validation, merge
    /// and what travels.
    Capability,
}

/// A synced record kind: its fields, table, rules and permission.
pub trait RecordKind:
    Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// The kind on the wire, in the outbox and in the feed.
    const ENTITY: Entity;
    /// The table, named alike on the workstation and the server.
    const TABLE: &'static str;
    /// The fields as serde names them: the table's data columns, the keys
    /// of the JSON that travels. Held equal to the struct by
    /// [`check_kind`] in each kind's tests.
    const FIELDS: &'static [&'static str];
    /// The fields an update changes and the three-way merge compares;
    /// the others are kept by the kind's own operations (a patient's MRN
    /// and merge status).
    const EDITABLE: &'static [&'static str] = Self::FIELDS;
    /// Fields no two live records of the clinic share (a department's name).
    const UNIQUE: &'static [&'static str] = &[];
    /// How records change once made.
    const LIFECYCLE: Lifecycle;
    /// Where records are made.
    const ORIGIN: Origin = Origin::Workstation;
    /// What a field changed on both sides becomes.
    const CONFLICTS: Conflicts = Conflicts::Refuse;
    /// Where rows are written.
    const STORAGE: Storage = Storage::Generic;
    /// The permission a create or update needs (reading follows the kind's
    /// screen).
    const WRITE: Permission;
    /// The kind's own operations beyond its lifecycle's, each with the
    /// permission it needs (a patient's merge and import).
    const OPS: &'static [(Op, Permission)] = &[];

    /// Checks and cleans the fields: the same rules for a form, an IPC
    /// call and a pushed change. `today` is the clinic's date where the
    /// rules need one (no birth date in the future).
    fn validate(self, today: NaiveDate) -> Result<Self, Vec<FieldError>>;
}

/// A kind as the generic road sees it: what [`RecordKind`] declares, with
/// its validation over JSON.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// [`RecordKind::ENTITY`].
    pub entity: Entity,
    /// [`RecordKind::TABLE`].
    pub table: &'static str,
    /// [`RecordKind::FIELDS`].
    pub fields: &'static [&'static str],
    /// [`RecordKind::EDITABLE`].
    pub editable: &'static [&'static str],
    /// [`RecordKind::UNIQUE`].
    pub unique: &'static [&'static str],
    /// [`RecordKind::LIFECYCLE`].
    pub lifecycle: Lifecycle,
    /// [`RecordKind::ORIGIN`].
    pub origin: Origin,
    /// [`RecordKind::CONFLICTS`].
    pub conflicts: Conflicts,
    /// [`RecordKind::STORAGE`].
    pub storage: Storage,
    /// [`RecordKind::WRITE`].
    pub write: Permission,
    /// [`RecordKind::OPS`].
    pub ops: &'static [(Op, Permission)],
    /// Decodes, validates and re-encodes the fields (unknown keys dropped).
    pub validate: fn(&Value, NaiveDate) -> Result<Value, Vec<FieldError>>,
}

impl KindInfo {
    /// The entry of kind `K`.
    pub const fn of<K: RecordKind>() -> KindInfo {
        KindInfo {
            entity: K::ENTITY,
            table: K::TABLE,
            fields: K::FIELDS,
            editable: K::EDITABLE,
            unique: K::UNIQUE,
            lifecycle: K::LIFECYCLE,
            origin: K::ORIGIN,
            conflicts: K::CONFLICTS,
            storage: K::STORAGE,
            write: K::WRITE,
            ops: K::OPS,
            validate: validate_json::<K>,
        }
    }

    /// The permission `op` needs on this kind, or `None` when the kind
    /// has no such operation: an update of an append-only record, a pushed
    /// create of a record only the server makes, a merge of departments.
    pub fn permission(&self, op: Op) -> Option<Permission> {
        if let Some((_, p)) = self.ops.iter().find(|(o, _)| *o == op) {
            return Some(*p);
        }
        if self.origin == Origin::Server {
            return None;
        }
        match (self.lifecycle, op) {
            (_, Op::Create) => Some(self.write),
            (Lifecycle::Editable, Op::Update) => Some(self.write),
            (Lifecycle::AppendOnly, Op::Amend) => Some(self.write),
            _ => None,
        }
    }

    /// The fields of `data` this kind has (a feed row also carries `id`
    /// and `version`), in declaration order.
    pub fn pick(&self, data: &Value) -> Value {
        let mut out = serde_json::Map::new();
        for f in self.fields {
            out.insert(
                (*f).to_owned(),
                data.get(*f).cloned().unwrap_or(Value::Null),
            );
        }
        Value::Object(out)
    }
}

fn validate_json<K: RecordKind>(
    fields: &Value,
    today: NaiveDate,
) -> Result<Value, Vec<FieldError>> {
    let record: K = serde_json::from_value(fields.clone()).map_err(|e| {
        vec![FieldError::new(
            "fields",
            FieldCode::Invalid,
            describe_decode_error(&e.to_string()),
        )]
    })?;
    let record = record.validate(today)?;
    serde_json::to_value(record)
        .map_err(|e| vec![FieldError::new("fields", FieldCode::Invalid, e.to_string())])
}

/// Every synced kind: one entry per [`Entity`] (a unit test holds them
/// equal).
pub const KINDS: &[KindInfo] = &[
    KindInfo::of::<crate::sync::PatientData>(),
    KindInfo::of::<crate::sync::PatientConflict>(),
    KindInfo::of::<Department>(),
    KindInfo::of::<crate::sync::ServerUser>(),
];

/// The declaration of `entity`.
pub fn kind(entity: Entity) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.entity == entity)
}

/// The declaration of `entity` when its rows are on the generic tables
/// ([`Storage::Generic`]): the generic store, apply and checks take it.
pub fn generic(entity: Entity) -> Option<&'static KindInfo> {
    kind(entity).filter(|k| k.storage == Storage::Generic)
}

/// A record of kind `K` as it is stored and shown: its fields and the
/// sync columns a screen needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
// The UI sees one concrete type per kind (`Record` alone would hide
// TypeScript's own `Record`).
#[ts(export, rename = "DepartmentRecord", concrete(K = Department))]
pub struct Record<K> {
    /// The record's id (UUID v7, made where it was created).
    pub id: Uuid,
    /// Row version, raised by one on every change.
    #[ts(type = "number")]
    pub version: i64,
    /// The fields.
    #[serde(flatten)]
    pub fields: K,
}

/// Checks that `K`'s [`RecordKind::FIELDS`] are exactly the keys its
/// example serializes to, in order: a kind's tests call it, so a field
/// added to the struct but not to the table (or back) fails there.
pub fn check_kind<K: RecordKind>(example: K) {
    let json = serde_json::to_value(&example).expect("a kind serializes");
    let keys: Vec<&str> = json
        .as_object()
        .expect("a kind is a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut declared = K::FIELDS.to_vec();
    let mut seen = keys.clone();
    declared.sort_unstable();
    seen.sort_unstable();
    assert_eq!(
        declared,
        seen,
        "{:?}: FIELDS and the struct differ",
        K::ENTITY
    );
    for f in K::UNIQUE.iter().chain(K::EDITABLE) {
        assert!(K::FIELDS.contains(f), "{f} is not a field");
    }
    let today = NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date");
    assert_eq!(example.clone().validate(today).ok(), Some(example));
}

/// The longest department name, in characters.
pub const DEPARTMENT_NAME_MAX: usize = 100;

/// A clinic department: scheduling, rooms and the queue refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[ts(export)]
pub struct Department {
    /// Its name, unique in the clinic.
    pub name: String,
}

impl RecordKind for Department {
    const ENTITY: Entity = Entity::Department;
    const TABLE: &'static str = "departments";
    const FIELDS: &'static [&'static str] = &["name"];
    const UNIQUE: &'static [&'static str] = &["name"];
    const LIFECYCLE: Lifecycle = Lifecycle::Editable;
    const WRITE: Permission = Permission::ManageUsers;

    fn validate(self, _today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let name = self.name.trim().to_owned();
        let count = name.chars().count();
        let error = if name.is_empty() {
            Some(FieldError::new("name", FieldCode::Required, "is required"))
        } else if count > DEPARTMENT_NAME_MAX {
            Some(
                FieldError::new("name", FieldCode::TooLong, "is too long")
                    .with_limit(DEPARTMENT_NAME_MAX),
            )
        } else if name.chars().any(char::is_control) {
            Some(FieldError::new(
                "name",
                FieldCode::ControlChars,
                "must not contain control characters",
            ))
        } else {
            None
        };
        match error {
            Some(e) => Err(vec![e]),
            None => Ok(Department { name }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    #[test]
    fn every_entity_is_declared_once() {
        for e in Entity::ALL {
            assert_eq!(KINDS.iter().filter(|k| k.entity == *e).count(), 1, "{e:?}");
        }
        assert_eq!(KINDS.len(), Entity::ALL.len());
        assert!(generic(Entity::Department).is_some());
        assert!(
            generic(Entity::Patient).is_none(),
            "patients keep their own rows"
        );
    }

    #[test]
    fn a_kind_only_the_server_makes_takes_only_its_own_operations() {
        let users = kind(Entity::User).unwrap();
        assert_eq!(users.origin, Origin::Server);
        for op in Op::ALL {
            assert_eq!(users.permission(*op), None, "{op:?}");
        }
        let conflicts = kind(Entity::PatientConflict).unwrap();
        assert_eq!(
            conflicts.permission(Op::Resolve),
            Some(Permission::WriteDemographics)
        );
        assert_eq!(conflicts.permission(Op::Create), None);
        assert_eq!(conflicts.permission(Op::Update), None);
    }

    #[test]
    fn a_patient_declares_its_merge_and_import() {
        let p = kind(Entity::Patient).unwrap();
        assert_eq!(p.conflicts, Conflicts::Review);
        assert_eq!(
            p.permission(Op::Create),
            Some(Permission::WriteDemographics)
        );
        assert_eq!(
            p.permission(Op::Update),
            Some(Permission::WriteDemographics)
        );
        assert_eq!(p.permission(Op::Merge), Some(Permission::MergePatients));
        assert_eq!(p.permission(Op::Import), Some(Permission::ImportPatients));
        assert_eq!(p.permission(Op::Amend), None);
        assert!(
            !p.editable.contains(&"mrn"),
            "a patient number is never edited"
        );
    }

    #[test]
    fn a_department_is_declared_consistently() {
        check_kind(Department {
            name: "Cardiology".into(),
        });
    }

    #[test]
    fn a_department_name_is_checked_and_trimmed() {
        let k = kind(Entity::Department).unwrap();
        assert_eq!(
            (k.validate)(&json!({"name": "  ENT  ", "extra": 1}), today()).unwrap(),
            json!({"name": "ENT"})
        );
        let code = |v: Value| (k.validate)(&v, today()).unwrap_err()[0].code;
        assert_eq!(code(json!({"name": " "})), FieldCode::Required);
        assert_eq!(code(json!({"name": "x".repeat(101)})), FieldCode::TooLong);
        assert_eq!(code(json!({"name": "a\u{0}b"})), FieldCode::ControlChars);
        assert_eq!(code(json!({"name": 5})), FieldCode::Invalid);
        assert_eq!(code(json!([])), FieldCode::Invalid);
    }

    #[test]
    fn the_lifecycle_decides_which_operations_exist() {
        let editable = KindInfo::of::<Department>();
        assert_eq!(
            editable.permission(Op::Update),
            Some(Permission::ManageUsers)
        );
        assert_eq!(editable.permission(Op::Amend), None);
        let append_only = KindInfo {
            lifecycle: Lifecycle::AppendOnly,
            ..editable
        };
        assert_eq!(
            append_only.permission(Op::Create),
            Some(Permission::ManageUsers)
        );
        assert_eq!(append_only.permission(Op::Update), None, "never updated");
        assert_eq!(
            append_only.permission(Op::Amend),
            Some(Permission::ManageUsers)
        );
        assert_eq!(append_only.permission(Op::Merge), None);
    }

    #[test]
    fn pick_keeps_the_declared_fields_only() {
        let k = kind(Entity::Department).unwrap();
        assert_eq!(
            k.pick(&json!({"id": "x", "version": 3, "name": "ENT"})),
            json!({"name": "ENT"})
        );
    }
}
