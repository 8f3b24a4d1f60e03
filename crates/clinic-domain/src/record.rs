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
    /// Fields no two live records of the clinic share (a department's name).
    const UNIQUE: &'static [&'static str] = &[];
    /// How records change once made.
    const LIFECYCLE: Lifecycle;
    /// The permission a change needs (reading follows the kind's screen).
    const WRITE: Permission;

    /// Checks and cleans the fields: the same rules for a form, an IPC
    /// call and a pushed change.
    fn validate(self) -> Result<Self, Vec<FieldError>>;
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
    /// [`RecordKind::UNIQUE`].
    pub unique: &'static [&'static str],
    /// [`RecordKind::LIFECYCLE`].
    pub lifecycle: Lifecycle,
    /// [`RecordKind::WRITE`].
    pub write: Permission,
    /// Decodes, validates and re-encodes the fields (unknown keys dropped).
    pub validate: fn(&Value) -> Result<Value, Vec<FieldError>>,
}

impl KindInfo {
    /// The entry of kind `K`.
    pub const fn of<K: RecordKind>() -> KindInfo {
        KindInfo {
            entity: K::ENTITY,
            table: K::TABLE,
            fields: K::FIELDS,
            unique: K::UNIQUE,
            lifecycle: K::LIFECYCLE,
            write: K::WRITE,
            validate: validate_json::<K>,
        }
    }

    /// The permission `op` needs on this kind, or `None` when the kind's
    /// lifecycle has no such operation (an update of an append-only record).
    pub fn permission(&self, op: Op) -> Option<Permission> {
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

fn validate_json<K: RecordKind>(fields: &Value) -> Result<Value, Vec<FieldError>> {
    let record: K = serde_json::from_value(fields.clone()).map_err(|e| {
        vec![FieldError::new(
            "fields",
            FieldCode::Invalid,
            describe_decode_error(&e.to_string()),
        )]
    })?;
    let record = record.validate()?;
    serde_json::to_value(record)
        .map_err(|e| vec![FieldError::new("fields", FieldCode::Invalid, e.to_string())])
}

/// Every kind on the generic road.
pub const KINDS: &[KindInfo] = &[KindInfo::of::<Department>()];

/// The entry of `entity`, if it is on the generic road.
pub fn kind(entity: Entity) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.entity == entity)
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
    for u in K::UNIQUE {
        assert!(K::FIELDS.contains(u), "{u} is not a field");
    }
    assert_eq!(example.clone().validate().ok(), Some(example));
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

    fn validate(self) -> Result<Self, Vec<FieldError>> {
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
            (k.validate)(&json!({"name": "  ENT  ", "extra": 1})).unwrap(),
            json!({"name": "ENT"})
        );
        let code = |v: Value| (k.validate)(&v).unwrap_err()[0].code;
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
