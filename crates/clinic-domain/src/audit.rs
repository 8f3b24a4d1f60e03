//! The audit trail as the admin screen and the patient history show it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;
use uuid::Uuid;

use crate::codes::wire_code;

wire_code! {
    /// What an audit entry records.
    pub enum AuditAction {
        /// A record was created.
        Create = "create",
        /// A record was changed.
        Update = "update",
        /// Two patient records were merged.
        Merge = "merge",
        /// A user opened a patient record.
        View = "view",
        /// A user signed in.
        SignIn = "sign_in",
        /// A sign-in failed.
        SignInFailed = "sign_in_failed",
        /// A user signed out.
        SignOut = "sign_out",
        /// A bulk import ran.
        Import = "import",
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    #[ts(type = "number")]
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it; `None` for a failed sign-in by an unknown name.
    pub user_id: Option<Uuid>,
    /// The user's display name at the time.
    pub user_name: String,
    /// The workstation it happened on.
    pub workstation_id: Uuid,
    /// What happened.
    pub action: AuditAction,
    /// The kind of record: `patient`, `user`, `session`.
    pub entity: String,
    /// The record's id.
    pub entity_id: Option<Uuid>,
    /// The record before the change.
    #[ts(type = "unknown")]
    pub before: Option<Value>,
    /// The record after the change.
    #[ts(type = "unknown")]
    pub after: Option<Value>,
    /// The patient the entry is about, as they are now (MRN and name), so
    /// the log can name and link them instead of showing an id.
    pub subject: Option<AuditSubject>,
}

/// A patient named by an audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AuditSubject {
    /// The record's id, to open it.
    pub id: Uuid,
    /// Its MRN.
    pub mrn: String,
    /// Family and given name.
    pub name: String,
}

/// Filters for browsing the audit log; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AuditFilter {
    /// Only this user's entries.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Only this action.
    #[serde(default)]
    pub action: Option<AuditAction>,
    /// Only entries about this kind of record.
    #[serde(default)]
    pub entity: Option<String>,
    /// Only entries about this record.
    #[serde(default)]
    pub entity_id: Option<Uuid>,
    /// Entries at or after this time.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// Entries with a sequence number below this (for paging back).
    #[serde(default)]
    #[ts(type = "number | null")]
    pub before_seq: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The result of checking the audit hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AuditVerification {
    /// How many entries were checked.
    #[ts(type = "number")]
    pub entries: i64,
    /// The first entry whose hash or link is wrong, if any.
    #[ts(type = "number | null")]
    pub first_bad_seq: Option<i64>,
    /// What is wrong there.
    pub problem: Option<String>,
}

impl AuditVerification {
    /// Whether the whole chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_bad_seq.is_none()
    }
}

/// One field's change, as a record's history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct FieldChange {
    /// The field.
    pub field: String,
    /// The value before.
    #[ts(type = "unknown")]
    pub before: Value,
    /// The value after.
    #[ts(type = "unknown")]
    pub after: Value,
}

/// One line of a record's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub user_name: String,
    /// What.
    pub action: AuditAction,
    /// Which fields changed, before and after.
    pub changes: Vec<FieldChange>,
}

/// Fields whose change is bookkeeping, not content.
const BOOKKEEPING: [&str; 6] = [
    "version",
    "updated_at",
    "updated_by",
    "created_at",
    "created_by",
    "workstation_id",
];

/// The content fields that differ between two JSON objects, in key order.
/// A missing side reads as `null`.
pub fn diff_fields(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !BOOKKEEPING.contains(&k.as_str()))
        .filter_map(|k| {
            let before = b.get(k).cloned().unwrap_or(Value::Null);
            let after = a.get(k).cloned().unwrap_or(Value::Null);
            (before != after).then(|| FieldChange {
                field: k.clone(),
                before,
                after,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_only_changed_content_fields() {
        let before = json!({"given_name": "Анна", "phones": ["1"], "version": 1});
        let after = json!({"given_name": "Анна", "phones": ["1", "2"], "version": 2, "notes": "x"});
        let changes = diff_fields(Some(&before), Some(&after));
        let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["notes", "phones"]);
        assert_eq!(changes[0].before, Value::Null);
    }

    #[test]
    fn actions_round_trip() {
        for a in [
            "create",
            "update",
            "merge",
            "view",
            "sign_in",
            "sign_in_failed",
            "sign_out",
            "import",
        ] {
            assert_eq!(AuditAction::parse(a).unwrap().as_str(), a);
        }
    }
}
