//! The generic road of a record kind on the workstation
//! ([`clinic_domain::record`]): create and update through the write path,
//! the server's version applied on pull with local pending edits put back
//! on top, and the typed reads a screen needs.
//!
//! Every SQL statement here is built from a kind's declared table and
//! field names (constants of this program, never input); values are bound.
//! A field's column holds its JSON value as SQLite stores it
//! (`json_extract`), and reads come back through `json_object`.

use clinic_domain::FieldCode;
use clinic_domain::audit::AuditAction;
use clinic_domain::record::{KindInfo, Record, RecordKind};
use clinic_domain::sync::{Change, Op, RecordEdit};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::write::{Committed, WriteTx};
use crate::{Result, Store, StoreError};

/// `SELECT id, json_object('a', a, …), version FROM table`: a kind's rows
/// as id, fields (one JSON object) and version; callers add the rest.
fn select(info: &KindInfo) -> String {
    let parts: Vec<String> = info.fields.iter().map(|f| format!("'{f}', {f}")).collect();
    format!(
        "SELECT id, json_object({}), version FROM {}",
        parts.join(", "),
        info.table
    )
}

/// `json_extract(?N, '$.a'), json_extract(?N, '$.b')`.
fn extracts(info: &KindInfo, param: usize) -> String {
    let parts: Vec<String> = info
        .fields
        .iter()
        .map(|f| format!("json_extract(?{param}, '$.{f}')"))
        .collect();
    parts.join(", ")
}

/// A record's fields and version, if it exists.
async fn load(w: &mut WriteTx<'_>, info: &KindInfo, id: Uuid) -> Result<Option<(Value, i64)>> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as(&format!("{} WHERE id = ?", select(info)))
            .bind(id.to_string())
            .fetch_optional(w.conn().await?)
            .await?;
    row.map(|(_, json, version)| Ok((parse(&json)?, version)))
        .transpose()
}

fn parse(json: &str) -> Result<Value> {
    serde_json::from_str(json).map_err(|e| StoreError::Internal(format!("stored record: {e}")))
}

/// Refuses a value of a unique field that another record holds here (the
/// server is the authority; this answers the user at once).
async fn check_unique(
    w: &mut WriteTx<'_>,
    info: &KindInfo,
    id: Uuid,
    fields: &Value,
) -> Result<()> {
    for f in info.unique {
        let taken: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM {} WHERE {f} = json_extract(?1, '$.{f}') AND id <> ?2",
            info.table
        ))
        .bind(fields.to_string())
        .bind(id.to_string())
        .fetch_optional(w.conn().await?)
        .await?;
        if taken.is_some() {
            return Err(StoreError::field(
                f,
                FieldCode::Exists,
                "another record has this value",
            ));
        }
    }
    Ok(())
}

fn validated(w: &WriteTx<'_>, info: &KindInfo, fields: &Value) -> Result<Value> {
    // The clinic's date, as the registration form has it.
    (info.validate)(fields, w.now.with_timezone(&chrono::Local).date_naive())
        .map_err(StoreError::Validation)
}

/// The fields with the version, as the audit log keeps a record.
fn snapshot(fields: &Value, version: i64) -> Value {
    let mut v = fields.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("version".into(), json!(version));
    }
    v
}

/// Write-path step: a new record.
pub(crate) async fn create(
    w: &mut WriteTx<'_>,
    info: &KindInfo,
    id: Uuid,
    fields: &Value,
) -> Result<Committed> {
    let fields = validated(w, info, fields)?;
    check_unique(w, info, id, &fields).await?;
    let b = w.bookkeeping().clone();
    sqlx::query(&format!(
        "INSERT INTO {} (id, {}, created_at, created_by, updated_at, updated_by, version, workstation_id) \
         VALUES (?1, {}, ?3, ?4, ?3, ?4, 1, ?5)",
        info.table,
        info.fields.join(", "),
        extracts(info, 2)
    ))
    .bind(id.to_string())
    .bind(fields.to_string())
    .bind(&b.now)
    .bind(&b.actor)
    .bind(&b.workstation_id)
    .execute(w.conn().await?)
    .await?;
    let mutation_id = w.outbox(info.entity, id, Op::Create, None, &fields);
    let done = w.audit(
        AuditAction::Create,
        info.entity.as_str(),
        Some(id),
        None,
        Some(snapshot(&fields, 1)),
    )?;
    Ok(Committed {
        mutation_id: Some(mutation_id),
        ..done
    })
}

/// Write-path step: an update made on `base_version` (an append-only
/// kind has none: the write path refused it already, from the kind's
/// lifecycle, in `Mutation::permission`). A record that
/// changed since is a conflict (the user reloads); the server merges the
/// changed fields into its version ([`clinic_domain::sync::three_way_merge`]).
pub(crate) async fn update(
    w: &mut WriteTx<'_>,
    info: &KindInfo,
    id: Uuid,
    base_version: i64,
    fields: &Value,
) -> Result<Committed> {
    let (before, version) = load(w, info, id)
        .await?
        .ok_or(StoreError::NotFound("record"))?;
    if version != base_version {
        return Err(StoreError::Conflict);
    }
    let after = validated(w, info, fields)?;
    let changed: Vec<String> = info
        .fields
        .iter()
        .filter(|f| before.get(**f) != after.get(**f))
        .map(|f| (*f).to_owned())
        .collect();
    if changed.is_empty() {
        return Ok(Committed {
            audit_seq: None,
            mutation_id: None,
        });
    }
    check_unique(w, info, id, &after).await?;
    let sets: Vec<String> = info
        .fields
        .iter()
        .map(|f| format!("{f} = json_extract(?1, '$.{f}')"))
        .collect();
    let b = w.bookkeeping().clone();
    sqlx::query(&format!(
        "UPDATE {} SET {}, updated_at = ?2, updated_by = ?3, workstation_id = ?4, version = version + 1 \
         WHERE id = ?5",
        info.table,
        sets.join(", ")
    ))
    .bind(after.to_string())
    .bind(&b.now)
    .bind(&b.actor)
    .bind(&b.workstation_id)
    .bind(id.to_string())
    .execute(w.conn().await?)
    .await?;
    let edit = RecordEdit {
        base: changed
            .iter()
            .map(|f| (f.clone(), before.get(f).cloned().unwrap_or(Value::Null)))
            .collect(),
        changed,
        fields: after.clone(),
    };
    let payload = serde_json::to_value(&edit).map_err(|e| StoreError::Internal(e.to_string()))?;
    let mutation_id = w.outbox(info.entity, id, Op::Update, Some(base_version), &payload);
    let done = w.audit(
        AuditAction::Update,
        info.entity.as_str(),
        Some(id),
        Some(snapshot(&before, version)),
        Some(snapshot(&after, version + 1)),
    )?;
    Ok(Committed {
        mutation_id: Some(mutation_id),
        ..done
    })
}

/// Pull step: takes the server's version of a record, then puts back on
/// top the fields of this workstation's edits the server has not answered
/// yet, so a pulled page never hides what a user typed here.
pub(crate) async fn apply_remote(w: &mut WriteTx<'_>, info: &KindInfo, c: &Change) -> Result<()> {
    let fields = info.pick(&c.data);
    let b = w.bookkeeping().clone();
    let sets: Vec<String> = info
        .fields
        .iter()
        .map(|f| format!("{f} = excluded.{f}"))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO {} (id, {}, created_at, created_by, updated_at, updated_by, version, workstation_id) \
         VALUES (?1, {}, ?3, 'server', ?3, 'server', ?4, ?5) \
         ON CONFLICT (id) DO UPDATE SET {}, version = excluded.version, updated_at = excluded.updated_at",
        info.table,
        info.fields.join(", "),
        extracts(info, 2),
        sets.join(", ")
    ))
    .bind(c.entity_id.to_string())
    .bind(fields.to_string())
    .bind(&b.now)
    .bind(c.version)
    .bind(&b.workstation_id)
    .execute(w.conn().await?)
    .await?;
    let pending: Vec<(String,)> = sqlx::query_as(
        "SELECT payload FROM outbox WHERE entity = ? AND entity_id = ? AND op = 'update' \
         AND status = 'pending' ORDER BY seq",
    )
    .bind(info.entity.as_str())
    .bind(c.entity_id.to_string())
    .fetch_all(w.conn().await?)
    .await?;
    for (payload,) in pending {
        let edit: RecordEdit = serde_json::from_str(&payload)
            .map_err(|e| StoreError::Internal(format!("stored edit: {e}")))?;
        for f in info
            .fields
            .iter()
            .filter(|f| edit.changed.iter().any(|c| c == *f))
        {
            sqlx::query(&format!(
                "UPDATE {} SET {f} = json_extract(?1, '$.fields.{f}') WHERE id = ?2",
                info.table
            ))
            .bind(&payload)
            .bind(c.entity_id.to_string())
            .execute(w.conn().await?)
            .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Every record of kind `K`, in the order of its first unique field
    /// (or its id).
    pub async fn records<K: RecordKind>(&self) -> Result<Vec<Record<K>>> {
        let info = KindInfo::of::<K>();
        let order = info.unique.first().copied().unwrap_or("id");
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as(&format!("{} ORDER BY {order}", select(&info)))
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(id, json, version)| decode(&id, &json, version))
            .collect()
    }

    /// One record of kind `K`.
    pub async fn record<K: RecordKind>(&self, id: Uuid) -> Result<Record<K>> {
        let info = KindInfo::of::<K>();
        let row: Option<(String, String, i64)> =
            sqlx::query_as(&format!("{} WHERE id = ?", select(&info)))
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await?;
        let (id, json, version) = row.ok_or(StoreError::NotFound("record"))?;
        decode(&id, &json, version)
    }
}

fn decode<K: RecordKind>(id: &str, json: &str, version: i64) -> Result<Record<K>> {
    Ok(Record {
        id: Uuid::parse_str(id).map_err(|e| StoreError::Internal(e.to_string()))?,
        version,
        fields: serde_json::from_str(json)
            .map_err(|e| StoreError::Internal(format!("stored record: {e}")))?,
    })
}
