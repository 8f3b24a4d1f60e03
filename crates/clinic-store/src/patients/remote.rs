//! Patient records from the server: taking the server's version of a record,
//! re-applying local changes still pending on top of it, and settling a
//! conflict locally. Write-path steps, called from [`crate::sync`].

use clinic_domain::audit::AuditAction;
use clinic_domain::mrn;
use clinic_domain::patient::PatientStatus;
use clinic_domain::sync::{Entity, Op, PATIENT_FIELDS};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::patients::rows::PatientRow;
use crate::patients::write_row;
use crate::sql;
use crate::write::WriteTx;
use crate::{Result, StoreError};

fn malformed(what: &str) -> StoreError {
    StoreError::Internal(format!("the server sent a patient with a malformed {what}"))
}

fn text_of(data: &Value, key: &str) -> Result<String> {
    data.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| malformed(key))
}

fn opt_text(data: &Value, key: &str) -> Option<String> {
    data.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn ts_of(data: &Value, key: &str) -> Result<String> {
    let t = text_of(data, key)?;
    Ok(sql::ts(sql::parse_ts(&t).map_err(|_| malformed(key))?))
}

/// Sets one demographic field of a row from its wire value (the caller
/// refreshes the name key once all fields are set).
fn set_field(row: &mut PatientRow, field: &str, v: &Value) -> Result<()> {
    let s = || v.as_str().map(str::to_owned);
    match field {
        "family_name" => row.family_name = s().ok_or_else(|| malformed(field))?,
        "given_name" => row.given_name = s().ok_or_else(|| malformed(field))?,
        "middle_name" => row.middle_name = s(),
        "sex" => row.sex = s().ok_or_else(|| malformed(field))?,
        "birth_date" => row.birth_date = s().ok_or_else(|| malformed(field))?,
        "birth_date_estimated" => row.birth_date_estimated = v.as_bool().unwrap_or(false),
        "phones" => {
            let phones: Vec<String> =
                serde_json::from_value(v.clone()).map_err(|_| malformed(field))?;
            row.phones = serde_json::to_string(&phones).expect("strings serialize");
        }
        "national_id" => row.national_id = s(),
        "address" => row.address = s(),
        "emergency_contact_name" => row.emergency_contact_name = s(),
        "emergency_contact_phone" => row.emergency_contact_phone = s(),
        "allergies" => row.allergies = s(),
        "notes" => row.notes = s(),
        _ => return Ok(()),
    }
    Ok(())
}

fn row_from_server(data: &Value) -> Result<PatientRow> {
    let mrn = text_of(data, "mrn")?;
    let mut row = PatientRow {
        id: text_of(data, "id")?,
        mrn_compact: mrn::compact(&mrn),
        mrn,
        family_name: String::new(),
        given_name: String::new(),
        middle_name: None,
        sex: "unknown".into(),
        birth_date: String::new(),
        birth_date_estimated: false,
        phones: "[]".into(),
        national_id: None,
        address: None,
        emergency_contact_name: None,
        emergency_contact_phone: None,
        allergies: None,
        notes: None,
        status: PatientStatus::parse(&text_of(data, "status")?)
            .ok_or_else(|| malformed("status"))?,
        merged_into: opt_text(data, "merged_into"),
        name_key: String::new(),
        created_at: ts_of(data, "created_at")?,
        created_by: text_of(data, "created_by")?,
        updated_at: ts_of(data, "updated_at")?,
        updated_by: text_of(data, "updated_by")?,
        version: data
            .get("version")
            .and_then(Value::as_i64)
            .ok_or_else(|| malformed("version"))?,
        workstation_id: text_of(data, "workstation_id")?,
        search_keys: String::new(),
    };
    for field in PATIENT_FIELDS {
        set_field(&mut row, field, data.get(field).unwrap_or(&Value::Null))?;
    }
    row.refresh_name_key();
    Ok(row)
}

/// Replaces (or creates) the local copies of patients with the server's:
/// new records in multi-row inserts first, then the changed ones.
pub(crate) async fn apply_remote_all(w: &mut WriteTx<'_>, datas: Vec<&Value>) -> Result<()> {
    if datas.is_empty() {
        return Ok(());
    }
    let rows = datas
        .into_iter()
        .map(row_from_server)
        .collect::<Result<Vec<_>>>()?;
    // A merged record may arrive with the one it was merged into, in any
    // order and in different insert statements: check `merged_into` at
    // commit, when both are there. (SQLite switches this off again at the
    // end of the transaction.)
    sqlx::query("PRAGMA defer_foreign_keys = ON")
        .execute(w.conn().await?)
        .await?;
    let ids = json!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()).to_string();
    let mrns = json!(
        rows.iter()
            .map(|r| r.mrn_compact.as_str())
            .collect::<Vec<_>>()
    )
    .to_string();
    let existing: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM patients WHERE id IN (SELECT value FROM json_each(?))")
            .bind(&ids)
            .fetch_all(w.conn().await?)
            .await?;
    let existing: std::collections::HashSet<String> = existing.into_iter().map(|r| r.0).collect();
    // An MRN the server gave to another record belongs to that record; a
    // local record holding it (numbered before this workstation was
    // enrolled) is renumbered and sent again.
    let holders: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, mrn_compact FROM patients WHERE mrn_compact IN (SELECT value FROM json_each(?))",
    )
    .bind(&mrns)
    .fetch_all(w.conn().await?)
    .await?;
    for (local_id, mrn) in holders {
        if rows
            .iter()
            .any(|r| r.mrn_compact == mrn && r.id != local_id)
        {
            renumber(w, &local_id).await?;
        }
    }
    let (fresh, known): (Vec<PatientRow>, Vec<PatientRow>) =
        rows.into_iter().partition(|r| !existing.contains(&r.id));
    for mut row in fresh {
        row.search_keys = row.index_keys();
        crate::patients::rows::queue(w, row);
    }
    for row in &known {
        write_row(w, row).await?;
    }
    Ok(())
}

/// Gives a local record a fresh MRN and queues its creation again.
pub(crate) async fn renumber(w: &mut WriteTx<'_>, id: &str) -> Result<()> {
    let new = crate::patients::rows::next_mrn(w).await?;
    let (old,): (String,) = sqlx::query_as("SELECT mrn FROM patients WHERE id = ?")
        .bind(id)
        .fetch_one(w.conn().await?)
        .await?;
    sqlx::query("UPDATE patients SET mrn = ?, mrn_compact = ?, version = version + 1 WHERE id = ?")
        .bind(new.as_str())
        .bind(mrn::compact(new.as_str()))
        .bind(id)
        .execute(w.conn().await?)
        .await?;
    let row: PatientRow = sqlx::query_as("SELECT * FROM patients WHERE id = ?")
        .bind(id)
        .fetch_one(w.conn().await?)
        .await?;
    // The MRN's sequence is a search key: write_row re-indexes the row
    // under its new number.
    write_row(w, &row).await?;
    let uuid = Uuid::parse_str(id).map_err(|_| malformed("id"))?;
    let snapshot = row.snapshot();
    // The record's creation is sent again under the new number: its queued
    // or refused create entry becomes a fresh attempt (a new mutation id:
    // the server keeps its answer to the old one). The entry keeps its
    // place and its author (the enrolling admin, for a record made before
    // enrolment), so it never waits for one; nothing refused is left behind.
    let retried = sqlx::query(
        "UPDATE outbox SET mutation_id = ?, payload = ?, status = 'pending', outcome = NULL, \
         acked_at = NULL, attempts = 0, last_error = NULL \
         WHERE entity_id = ? AND op = 'create' AND status IN ('pending', 'rejected')",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(snapshot.to_string())
    .bind(id)
    .execute(w.conn().await?)
    .await?
    .rows_affected();
    if retried == 0 {
        // Created by an import (one entry for many records): a create of
        // its own, pushed by whoever pushes the import. The record's
        // history link leads to the import's audit entry, whose run id is
        // the import's outbox entity.
        let author: Option<String> = sqlx::query_scalar(
            "SELECT o.user_id FROM audit_link l JOIN audit_log a ON a.seq = l.seq \
             JOIN outbox o ON o.op = 'import' AND o.entity_id = json_extract(a.after, '$.import_run') \
             WHERE l.entity_id = ? AND o.user_id IS NOT NULL ORDER BY o.seq LIMIT 1",
        )
        .bind(id)
        .fetch_optional(w.conn().await?)
        .await?;
        let author = author
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| malformed("outbox author"))?;
        w.outbox_as(
            author,
            Entity::Patient,
            uuid,
            Op::Create,
            None,
            snapshot.to_string(),
        );
    }
    w.audit(
        AuditAction::Update,
        "patient",
        Some(uuid),
        Some(json!({ "mrn": old })),
        Some(json!({ "mrn": new.as_str(), "reason": "number taken on the server" })),
    )?;
    Ok(())
}

/// Re-applies pending local changes on top of the server's versions just
/// written, for those of `ids` that have any.
pub(crate) async fn rebase_pending_all(w: &mut WriteTx<'_>, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let list = json!(ids.iter().map(Uuid::to_string).collect::<Vec<_>>()).to_string();
    let with_pending: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT j.value FROM json_each(?1) j WHERE EXISTS (SELECT 1 FROM outbox o \
         WHERE o.status = 'pending' AND o.entity = 'patient' AND (o.entity_id = j.value \
         OR (o.op = 'merge' AND json_extract(o.payload, '$.merge') = j.value)))",
    )
    .bind(&list)
    .fetch_all(w.conn().await?)
    .await?;
    for (id,) in with_pending {
        let id = Uuid::parse_str(&id).map_err(|_| malformed("id"))?;
        rebase_pending(w, id).await?;
    }
    Ok(())
}

/// Re-applies this record's pending local changes on top of the server's
/// version just written, field by field by the server's own rule (the
/// three-way merge): a field the server has not changed since the edit's
/// base takes the edit's value; a field the server changed meanwhile keeps
/// the server's value, which is what the push will find, so the record
/// never shows a value the server is going to refuse. The losing value
/// comes back as a conflict when the server has answered.
pub(crate) async fn rebase_pending(w: &mut WriteTx<'_>, id: Uuid) -> Result<()> {
    let id_s = id.to_string();
    let pending: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT op, entity_id, payload FROM outbox WHERE status = 'pending' AND entity = 'patient' \
         AND (entity_id = ?1 OR (op = 'merge' AND json_extract(payload, '$.merge') = ?1)) ORDER BY seq",
    )
    .bind(&id_s)
    .fetch_all(w.conn().await?)
    .await?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut row: PatientRow = sqlx::query_as("SELECT * FROM patients WHERE id = ?")
        .bind(&id_s)
        .fetch_one(w.conn().await?)
        .await?;
    if row.status == PatientStatus::Merged {
        // The server merged this record into another: it refuses every
        // change to it, so none is shown on it either.
        return Ok(());
    }
    for (op, entity_id, payload) in pending {
        let payload: Value =
            serde_json::from_str(&payload).map_err(|_| malformed("outbox payload"))?;
        match Op::parse(&op) {
            Some(Op::Update) => {
                let changed: Vec<&str> = payload["changed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                merge_into(&mut row, &changed, &payload["base"], &payload["fields"])?;
            }
            Some(Op::Merge) if entity_id == id_s => {
                let (base, kept) = (&payload["base"], &payload["keep_fields"]);
                let changed: Vec<&str> = PATIENT_FIELDS
                    .into_iter()
                    .filter(|f| base.get(f) != kept.get(f))
                    .collect();
                merge_into(&mut row, &changed, base, kept)?;
            }
            Some(Op::Merge) => {
                row.status = PatientStatus::Merged;
                row.merged_into = payload["keep"].as_str().map(str::to_owned);
            }
            _ => {}
        }
    }
    write_row(w, &row).await
}

/// Sets each of `changed` to its value in `fields` where the row still has
/// the value in `base` (see [`rebase_pending`]).
fn merge_into(row: &mut PatientRow, changed: &[&str], base: &Value, fields: &Value) -> Result<()> {
    let current = row.snapshot();
    for f in changed {
        let now = current.get(*f).unwrap_or(&Value::Null);
        if now == base.get(*f).unwrap_or(&Value::Null) {
            set_field(row, f, fields.get(*f).unwrap_or(&Value::Null))?;
        }
    }
    row.refresh_name_key();
    Ok(())
}

/// Sets one field locally as a new version (a conflict settled for the
/// losing value); the server gets the decision through the outbox.
pub(crate) async fn set_field_local(
    w: &mut WriteTx<'_>,
    id: Uuid,
    field: &str,
    value: &Value,
) -> Result<()> {
    let mut row: PatientRow = sqlx::query_as("SELECT * FROM patients WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(w.conn().await?)
        .await?
        .ok_or(StoreError::NotFound("patient"))?;
    set_field(&mut row, field, value)?;
    row.refresh_name_key();
    row.version += 1;
    row.updated_at = sql::ts(w.now);
    row.updated_by = w.actor_ref();
    write_row(w, &row).await
}
