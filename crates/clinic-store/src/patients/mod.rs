//! Patient records: the write-path steps for create, update and merge, and
//! the reads the record screen needs (record, history, duplicate check).

pub(crate) mod remote;
pub(crate) mod rows;
pub mod search;

pub(crate) use rows::{PatientRow, SELECT_PATIENT};
use rows::{bad, keys_of_parts};
use std::collections::BTreeMap;

use chrono::NaiveDate;
use clinic_domain::FieldCode;
use clinic_domain::audit::{AuditAction, HistoryEntry, diff_fields};
use clinic_domain::patient::{
    DuplicateCandidate, DuplicateReason, Patient, PatientFields, PatientStatus, Sex,
    validate_merge_reason,
};
use clinic_domain::sync::{Entity, Op};
use clinic_domain::{phone, text};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::sql::{self, parse_ts};
use crate::write::{Committed, WriteTx};
use crate::{Result, Store, StoreError};

/// One patient in an import batch's audit `after` and outbox payload: the
/// fields of [`PatientRow::snapshot`] plus the id. Empty optional fields are
/// left out (and `merged_into`, never set on a new record): a missing field
/// reads as null to the history's diff and to the server alike, and a batch
/// is a third smaller without them.
#[derive(Serialize)]
struct ImportItem<'a> {
    id: &'a str,
    mrn: &'a str,
    family_name: &'a str,
    given_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    middle_name: Option<&'a str>,
    sex: &'a str,
    birth_date: &'a str,
    birth_date_estimated: bool,
    phones: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    national_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emergency_contact_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emergency_contact_phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allergies: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'a str>,
    status: PatientStatus,
    version: i64,
}

impl<'a> ImportItem<'a> {
    fn of(row: &'a PatientRow, phones: &'a [String]) -> Self {
        ImportItem {
            id: &row.id,
            mrn: &row.mrn,
            family_name: &row.family_name,
            given_name: &row.given_name,
            middle_name: row.middle_name.as_deref(),
            sex: &row.sex,
            birth_date: &row.birth_date,
            birth_date_estimated: row.birth_date_estimated,
            phones,
            national_id: row.national_id.as_deref(),
            address: row.address.as_deref(),
            emergency_contact_name: row.emergency_contact_name.as_deref(),
            emergency_contact_phone: row.emergency_contact_phone.as_deref(),
            allergies: row.allergies.as_deref(),
            notes: row.notes.as_deref(),
            status: row.status,
            version: row.version,
        }
    }
}

/// Write-path step: a batch of imported patients. Each gets the next MRN,
/// its row and search index, and a link to the batch's one audit entry. That
/// entry's `after`, which is also the outbox payload (op `import`), is
/// `{"import_run": …, "patients": [{"id": …, …}, …]}` in MRN order.
pub(crate) async fn import(
    w: &mut WriteTx<'_>,
    run_id: Uuid,
    patients: Vec<(Uuid, PatientFields)>,
) -> Result<Committed> {
    let seq = w.next_audit_seq();
    let mut json = Vec::with_capacity(64 + patients.len() * 400);
    json.extend_from_slice(b"{\"import_run\":\"");
    json.extend_from_slice(run_id.to_string().as_bytes());
    json.extend_from_slice(b"\",\"patients\":[");
    rows::reserve(w, patients.len());
    for (item, (id, mut fields)) in patients.into_iter().enumerate() {
        let mrn = rows::next_mrn(w).await?;
        let phones = std::mem::take(&mut fields.phones);
        let family = text::name_parts(&fields.family_name);
        let given = text::name_parts(&fields.given_name);
        let middle = fields
            .middle_name
            .as_deref()
            .map(text::name_parts)
            .unwrap_or_default();
        let name_key = text::name_key_of_parts(&family, &given);
        let mut row = PatientRow::from_owned_fields(w, id, &mrn, fields, &phones, name_key);
        row.search_keys = keys_of_parts(
            [&family, &given, &middle],
            &phones,
            row.national_id.as_deref(),
            &row.mrn,
        );
        if item > 0 {
            json.push(b',');
        }
        serde_json::to_writer(&mut json, &ImportItem::of(&row, &phones))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        w.link_to_audit(row.id.clone(), seq, item as i64);
        rows::queue(w, row);
    }
    json.extend_from_slice(b"]}");
    let json = String::from_utf8(json).map_err(|e| StoreError::Internal(e.to_string()))?;
    let mutation_id = w.outbox_text(Entity::Patient, run_id, Op::Import, None, json.clone());
    let done = w.audit_text(AuditAction::Import, "patient", None, None, Some(json))?;
    debug_assert_eq!(done.audit_seq, Some(seq));
    Ok(Committed {
        mutation_id: Some(mutation_id),
        ..done
    })
}

/// Write-path step: insert a new patient with the next MRN.
pub(crate) async fn create(
    w: &mut WriteTx<'_>,
    id: Uuid,
    fields: PatientFields,
) -> Result<Committed> {
    let mrn = rows::next_mrn(w).await?;
    let mut row = PatientRow::from_fields(w, id, &mrn, &fields);
    row.search_keys = row.index_keys();
    let after = row.snapshot();
    let mutation_id = w.outbox(Entity::Patient, id, Op::Create, None, &after);
    rows::queue(w, row);
    let done = w.audit(AuditAction::Create, "patient", Some(id), None, Some(after))?;
    Ok(Committed {
        mutation_id: Some(mutation_id),
        ..done
    })
}

async fn load_for_write(w: &mut WriteTx<'_>, id: Uuid) -> Result<PatientRow> {
    let row: Option<PatientRow> = sqlx::query_as("SELECT * FROM patients WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(w.conn().await?)
        .await?;
    let row = row.ok_or(StoreError::NotFound("patient"))?;
    if row.status == PatientStatus::Merged {
        return Err(StoreError::field(
            "status",
            FieldCode::Merged,
            "this record was merged into another; change that record instead",
        ));
    }
    Ok(row)
}

async fn save_row(w: &mut WriteTx<'_>, row: &mut PatientRow) -> Result<()> {
    row.version += 1;
    row.updated_at = sql::ts(w.now);
    row.updated_by = w.actor_ref();
    row.workstation_id = w.workstation_id().to_string();
    write_row(w, row).await
}

/// Writes a changed row as it is (content, status, bookkeeping) and
/// re-indexes it for search.
pub(crate) async fn write_row(w: &mut WriteTx<'_>, row: &PatientRow) -> Result<()> {
    rows::unindex_patient(w.conn().await?, &row.id).await?;
    sqlx::query(
        "UPDATE patients SET family_name = ?, given_name = ?, middle_name = ?, sex = ?, birth_date = ?, \
         birth_date_estimated = ?, phones = ?, national_id = ?, address = ?, emergency_contact_name = ?, \
         emergency_contact_phone = ?, allergies = ?, notes = ?, status = ?, merged_into = ?, name_key = ?, \
         updated_at = ?, updated_by = ?, version = ?, workstation_id = ?, search_keys = ? WHERE id = ?",
    )
    .bind(&row.family_name)
    .bind(&row.given_name)
    .bind(&row.middle_name)
    .bind(&row.sex)
    .bind(&row.birth_date)
    .bind(row.birth_date_estimated)
    .bind(&row.phones)
    .bind(&row.national_id)
    .bind(&row.address)
    .bind(&row.emergency_contact_name)
    .bind(&row.emergency_contact_phone)
    .bind(&row.allergies)
    .bind(&row.notes)
    .bind(row.status.as_str())
    .bind(&row.merged_into)
    .bind(&row.name_key)
    .bind(&row.updated_at)
    .bind(&row.updated_by)
    .bind(row.version)
    .bind(&row.workstation_id)
    .bind(row.index_keys())
    .bind(&row.id)
    .execute(w.conn().await?)
    .await?;
    rows::index_patients(w.conn().await?, rows::Indexed::Id(&row.id)).await
}

/// Write-path step: change demographics, if nobody changed them since `base_version`.
pub(crate) async fn update(
    w: &mut WriteTx<'_>,
    id: Uuid,
    base_version: i64,
    fields: PatientFields,
) -> Result<Committed> {
    let mut row = load_for_write(w, id).await?;
    if row.version != base_version {
        return Err(StoreError::Conflict);
    }
    let before = row.snapshot();
    row.set_fields(&fields);
    if row.snapshot() == before {
        // Nothing changed: no new version, history entry or push. (A new
        // local version the server never makes would only be undone by the
        // next pull.)
        return Ok(Committed {
            audit_seq: None,
            mutation_id: None,
        });
    }
    save_row(w, &mut row).await?;
    let after = row.snapshot();
    let changed: Vec<String> = diff_fields(Some(&before), Some(&after))
        .into_iter()
        .map(|c| c.field)
        .collect();
    // The changed fields' values before the edit: the base of the server's
    // three-way merge.
    let base: serde_json::Map<String, Value> = changed
        .iter()
        .map(|f| (f.clone(), before.get(f).cloned().unwrap_or(Value::Null)))
        .collect();
    let payload = json!({ "fields": after, "changed": changed, "base": base });
    let mutation_id = w.outbox(
        Entity::Patient,
        id,
        Op::Update,
        Some(base_version),
        &payload,
    );
    let done = w.audit(
        AuditAction::Update,
        "patient",
        Some(id),
        Some(before),
        Some(after),
    )?;
    Ok(Committed {
        mutation_id: Some(mutation_id),
        ..done
    })
}

/// Combines two free-text values without losing either.
fn combine_text(keep: Option<String>, other: Option<String>) -> Option<String> {
    match (keep, other) {
        (Some(k), Some(o)) if text::fold(&k) != text::fold(&o) => Some(format!("{k}\n{o}")),
        (Some(k), _) => Some(k),
        (None, o) => o,
    }
}

/// Write-path step: merge `merge` into `keep`.
pub(crate) async fn merge(
    w: &mut WriteTx<'_>,
    keep: Uuid,
    merge: Uuid,
    reason: &str,
) -> Result<Committed> {
    let reason = validate_merge_reason(reason).map_err(StoreError::Validation)?;
    if keep == merge {
        return Err(StoreError::field(
            "merge_id",
            FieldCode::SameRecord,
            "a record cannot be merged into itself",
        ));
    }
    let mut k = load_for_write(w, keep).await?;
    let mut m = load_for_write(w, merge).await?;
    let (k_before, m_before) = (k.snapshot(), m.snapshot());

    let mut f = k.fields()?;
    let other = m.fields()?;
    for p in other.phones {
        if !f.phones.iter().any(|q| phone::same_number(q, &p)) {
            f.phones.push(p);
        }
    }
    f.middle_name = f.middle_name.or(other.middle_name);
    f.national_id = f.national_id.or(other.national_id);
    f.address = f.address.or(other.address);
    f.emergency_contact_name = f.emergency_contact_name.or(other.emergency_contact_name);
    f.emergency_contact_phone = f.emergency_contact_phone.or(other.emergency_contact_phone);
    f.allergies = combine_text(f.allergies, other.allergies);
    f.notes = combine_text(f.notes, other.notes);
    if f.sex == Sex::Unknown {
        f.sex = other.sex;
    }
    if f.birth_date_estimated && !other.birth_date_estimated {
        f.birth_date = other.birth_date;
        f.birth_date_estimated = false;
    }
    let base_version = k.version;
    k.set_fields(&f);
    // The kept record gets a new version only if the merge changed it, as
    // on the server (which bumps a version only when a field changes).
    if k.snapshot() != k_before {
        save_row(w, &mut k).await?;
    }

    m.status = PatientStatus::Merged;
    m.merged_into = Some(k.id.clone());
    save_row(w, &mut m).await?;

    let payload = json!({
        "keep": keep, "merge": merge, "keep_fields": k.snapshot(), "base": k_before,
        "reason": reason,
    });
    let mutation_id = w.outbox(
        Entity::Patient,
        keep,
        Op::Merge,
        Some(base_version),
        &payload,
    );
    // The reason stands in both records' history, as a field of the merge.
    let with_reason = |mut snapshot: Value| {
        snapshot["merge_reason"] = json!(reason);
        snapshot
    };
    w.audit(
        AuditAction::Merge,
        "patient",
        Some(merge),
        Some(m_before),
        Some(with_reason(m.snapshot())),
    )?;
    let done = w.audit(
        AuditAction::Merge,
        "patient",
        Some(keep),
        Some(k_before),
        Some(with_reason(k.snapshot())),
    )?;
    Ok(Committed {
        mutation_id: Some(mutation_id),
        ..done
    })
}

impl Store {
    /// Reads a patient's record (without auditing the view; see
    /// [`crate::Workstation::patient_get`]).
    pub async fn patient(&self, id: Uuid) -> Result<Patient> {
        let sql = format!("{SELECT_PATIENT} WHERE p.id = ?");
        let row: Option<PatientRow> = sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.ok_or(StoreError::NotFound("patient"))?.to_patient()
    }

    /// Reads the rows of the given patients, in no particular order.
    pub(crate) async fn summaries(&self, ids: &[String]) -> Result<Vec<PatientRow>> {
        self.rows_in("id", serde_json::to_string(ids).expect("strings serialize"))
            .await
    }

    /// [`Store::summaries`] by the patients' integer keys (as search finds them).
    pub(crate) async fn summaries_by_key(&self, keys: &[i64]) -> Result<Vec<PatientRow>> {
        self.rows_in(
            "key",
            serde_json::to_string(keys).expect("numbers serialize"),
        )
        .await
    }

    /// Rows whose `column` is in the JSON array `values` (one bound
    /// parameter however many values).
    async fn rows_in(&self, column: &'static str, values: String) -> Result<Vec<PatientRow>> {
        let sql =
            format!("SELECT * FROM patients WHERE {column} IN (SELECT value FROM json_each(?))");
        Ok(sqlx::query_as(&sql)
            .bind(values)
            .fetch_all(self.pool())
            .await?)
    }

    /// Every change to a patient's record, oldest first: the entries about
    /// it, and the import batches that created it (through `audit_link`),
    /// each with this patient's values from the batch.
    pub async fn patient_history(&self, id: Uuid) -> Result<Vec<HistoryEntry>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            at: String,
            user_name: String,
            action: String,
            before: Option<String>,
            after: Option<String>,
            linked: bool,
        }
        let id = id.to_string();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, at, user_name, action, before, after, 0 AS linked FROM audit_log \
             WHERE entity = 'patient' AND entity_id = ?1 AND action != 'view' \
             UNION ALL \
             SELECT a.seq, a.at, a.user_name, a.action, NULL, a.after -> '$.patients' -> l.item, 1 \
             FROM audit_link l JOIN audit_log a ON a.seq = l.seq WHERE l.entity_id = ?1 \
             ORDER BY seq",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let parse = |s: &Option<String>| {
                s.as_deref()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
            };
            let (before, mut after) = (parse(&r.before), parse(&r.after));
            if r.linked {
                // A batch entry: this patient's item, which names its id.
                match after.as_mut().and_then(Value::as_object_mut) {
                    Some(item) if item.get("id").and_then(Value::as_str) == Some(id.as_str()) => {
                        item.remove("id");
                    }
                    _ => continue,
                }
            }
            out.push(HistoryEntry {
                at: parse_ts(&r.at)?,
                user_name: r.user_name,
                action: AuditAction::parse(&r.action).ok_or_else(|| bad("audit action"))?,
                changes: diff_fields(before.as_ref(), after.as_ref()),
            });
        }
        Ok(out)
    }

    /// Active patients who may be the person described by `fields`: same
    /// national id, a phone in common, or the same name key and birth date.
    pub async fn find_duplicates(
        &self,
        fields: &PatientFields,
        exclude: Option<Uuid>,
    ) -> Result<Vec<DuplicateCandidate>> {
        let mut reasons: BTreeMap<String, Vec<DuplicateReason>> = BTreeMap::new();
        let mut add = |ids: Vec<String>, reason| {
            for id in ids {
                let r = reasons.entry(id).or_default();
                if !r.contains(&reason) {
                    r.push(reason);
                }
            }
        };
        if let Some(nid) = &fields.national_id {
            let ids = sqlx::query_scalar(
                "SELECT id FROM patients WHERE national_id = ? AND status = 'active' LIMIT 20",
            )
            .bind(nid)
            .fetch_all(self.pool())
            .await?;
            add(ids, DuplicateReason::NationalId);
        }
        for p in &fields.phones {
            let (lo, hi) = search::prefix_range(&format!("p:{}", phone::match_key(p)));
            let ids = sqlx::query_scalar(
                "SELECT p.id FROM search_token t JOIN patients p ON p.key = t.patient_key \
                 WHERE t.token >= ? AND t.token < ? LIMIT 20",
            )
            .bind(lo)
            .bind(hi)
            .fetch_all(self.pool())
            .await?;
            add(ids, DuplicateReason::Phone);
        }
        let key = text::name_key(&fields.family_name, &fields.given_name);
        let ids = sqlx::query_scalar(
            "SELECT id FROM patients WHERE name_key = ? AND birth_date = ? AND status = 'active' LIMIT 20",
        )
        .bind(key)
        .bind(fields.birth_date.to_string())
        .fetch_all(self.pool())
        .await?;
        add(ids, DuplicateReason::NameAndBirthDate);

        if let Some(ex) = exclude {
            reasons.remove(&ex.to_string());
        }
        let ids: Vec<String> = reasons.keys().cloned().collect();
        let mut out = Vec::new();
        for row in self.summaries(&ids).await? {
            if row.status != PatientStatus::Active {
                continue;
            }
            let reasons = reasons.remove(&row.id).unwrap_or_default();
            out.push(DuplicateCandidate {
                patient: row.to_summary()?,
                reasons,
            });
        }
        // Most reasons first: a national id and a name match beats a shared phone.
        out.sort_by(|a, b| {
            b.reasons
                .len()
                .cmp(&a.reasons.len())
                .then(a.patient.mrn.cmp(&b.patient.mrn))
        });
        Ok(out)
    }

    /// Whether the store holds any patient record at all (a cheap check,
    /// unlike counting a million rows).
    pub async fn has_patients(&self) -> Result<bool> {
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM patients LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(any.is_some())
    }

    /// How many active patients the store holds.
    pub async fn patient_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM patients WHERE status = 'active'")
                .fetch_one(self.pool())
                .await?,
        )
    }
}

/// Today's date on this machine, for validating birth dates.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}
