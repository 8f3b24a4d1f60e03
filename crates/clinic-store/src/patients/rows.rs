//! The patients table's bulk writes: rows queued in a write transaction
//! and inserted many per statement, their search index, and the
//! workstation's MRN counter, read once per transaction and written back
//! when it flushes. Both are [`Buffer`]s of the write path, which flushes
//! them before its audit entries, so the engine itself knows no patient.

use std::future::Future;
use std::pin::Pin;

use clinic_domain::mrn::{self, Mrn, MrnPrefix};
use clinic_domain::patient::{Patient, PatientFields, PatientStatus, PatientSummary, Sex};
use clinic_domain::{national_id, phone, text};
use serde_json::{Value, json};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::sql::{self, parse_ts};
use crate::write::{Buffer, WriteTx};
use crate::{Result, StoreError};

/// A `patients` row, as written and read.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PatientRow {
    pub id: String,
    pub mrn: String,
    pub mrn_compact: String,
    pub family_name: String,
    pub given_name: String,
    pub middle_name: Option<String>,
    pub sex: String,
    pub birth_date: String,
    pub birth_date_estimated: bool,
    pub phones: String,
    pub national_id: Option<String>,
    pub address: Option<String>,
    pub emergency_contact_name: Option<String>,
    pub emergency_contact_phone: Option<String>,
    pub allergies: Option<String>,
    pub notes: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: PatientStatus,
    pub merged_into: Option<String>,
    pub name_key: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub version: i64,
    pub workstation_id: String,
    /// The search tokens as a JSON array (see [`PatientRow::index_keys`]);
    /// empty when the row was read without them.
    #[sqlx(default)]
    pub search_keys: String,
}

/// Selects a patient row with the creator's and editor's display names in
/// place of their ids.
pub(crate) const SELECT_PATIENT: &str = "SELECT p.id, p.mrn, p.mrn_compact, p.family_name, p.given_name, \
    p.middle_name, p.sex, p.birth_date, p.birth_date_estimated, p.phones, p.national_id, p.address, \
    p.emergency_contact_name, p.emergency_contact_phone, p.allergies, p.notes, p.status, p.merged_into, \
    p.name_key, p.created_at, COALESCE(cu.display_name, p.created_by) AS created_by, p.updated_at, \
    COALESCE(uu.display_name, p.updated_by) AS updated_by, p.version, p.workstation_id \
    FROM patients p LEFT JOIN users cu ON cu.id = p.created_by LEFT JOIN users uu ON uu.id = p.updated_by";

pub(crate) fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("stored patient has a malformed {what}"))
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| bad("id"))
}

impl PatientRow {
    pub(crate) fn from_fields(
        w: &WriteTx<'_>,
        id: Uuid,
        mrn: &mrn::Mrn,
        f: &PatientFields,
    ) -> PatientRow {
        let now = sql::ts(w.now);
        PatientRow {
            id: id.to_string(),
            mrn: mrn.as_str().to_owned(),
            mrn_compact: mrn::compact(mrn.as_str()),
            family_name: f.family_name.clone(),
            given_name: f.given_name.clone(),
            middle_name: f.middle_name.clone(),
            sex: f.sex.as_str().to_owned(),
            birth_date: f.birth_date.to_string(),
            birth_date_estimated: f.birth_date_estimated,
            phones: serde_json::to_string(&f.phones).expect("strings serialize"),
            national_id: f.national_id.clone(),
            address: f.address.clone(),
            emergency_contact_name: f.emergency_contact_name.clone(),
            emergency_contact_phone: f.emergency_contact_phone.clone(),
            allergies: f.allergies.clone(),
            notes: f.notes.clone(),
            status: PatientStatus::Active,
            merged_into: None,
            name_key: text::name_key(&f.family_name, &f.given_name),
            created_at: now.clone(),
            created_by: w.actor_ref(),
            updated_at: now,
            updated_by: w.actor_ref(),
            version: 1,
            workstation_id: w.workstation_id().to_string(),
            search_keys: String::new(),
        }
    }

    /// [`PatientRow::from_fields`] taking the fields by value (the phones
    /// apart) and the name key made already, for bulk import: no string is
    /// copied, and no name folded, that need not be.
    pub(crate) fn from_owned_fields(
        w: &WriteTx<'_>,
        id: Uuid,
        mrn: &mrn::Mrn,
        f: PatientFields,
        phones: &[String],
        name_key: String,
    ) -> PatientRow {
        let bk = w.bookkeeping();
        PatientRow {
            id: id.to_string(),
            mrn: mrn.as_str().to_owned(),
            mrn_compact: mrn::compact(mrn.as_str()),
            name_key,
            family_name: f.family_name,
            given_name: f.given_name,
            middle_name: f.middle_name,
            sex: f.sex.as_str().to_owned(),
            birth_date: f.birth_date.to_string(),
            birth_date_estimated: f.birth_date_estimated,
            phones: serde_json::to_string(phones).expect("strings serialize"),
            national_id: f.national_id,
            address: f.address,
            emergency_contact_name: f.emergency_contact_name,
            emergency_contact_phone: f.emergency_contact_phone,
            allergies: f.allergies,
            notes: f.notes,
            status: PatientStatus::Active,
            merged_into: None,
            created_at: bk.now.clone(),
            created_by: bk.actor.clone(),
            updated_at: bk.now.clone(),
            updated_by: bk.actor.clone(),
            version: 1,
            workstation_id: bk.workstation_id.clone(),
            search_keys: String::new(),
        }
    }

    /// Replaces the content fields with `f`, keeping identity and bookkeeping.
    pub(crate) fn set_fields(&mut self, f: &PatientFields) {
        self.family_name = f.family_name.clone();
        self.given_name = f.given_name.clone();
        self.middle_name = f.middle_name.clone();
        self.sex = f.sex.as_str().to_owned();
        self.birth_date = f.birth_date.to_string();
        self.birth_date_estimated = f.birth_date_estimated;
        self.phones = serde_json::to_string(&f.phones).expect("strings serialize");
        self.national_id = f.national_id.clone();
        self.address = f.address.clone();
        self.emergency_contact_name = f.emergency_contact_name.clone();
        self.emergency_contact_phone = f.emergency_contact_phone.clone();
        self.allergies = f.allergies.clone();
        self.notes = f.notes.clone();
        self.refresh_name_key();
    }

    /// Recomputes the duplicate-detection name key after the names changed.
    pub(crate) fn refresh_name_key(&mut self) {
        self.name_key = text::name_key(&self.family_name, &self.given_name);
    }

    pub(crate) fn phone_list(&self) -> Vec<String> {
        serde_json::from_str(&self.phones).unwrap_or_default()
    }

    pub(crate) fn fields(&self) -> Result<PatientFields> {
        Ok(PatientFields {
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            middle_name: self.middle_name.clone(),
            sex: Sex::parse(&self.sex).ok_or_else(|| bad("sex"))?,
            birth_date: self.birth_date.parse().map_err(|_| bad("birth date"))?,
            birth_date_estimated: self.birth_date_estimated,
            phones: self.phone_list(),
            national_id: self.national_id.clone(),
            address: self.address.clone(),
            emergency_contact_name: self.emergency_contact_name.clone(),
            emergency_contact_phone: self.emergency_contact_phone.clone(),
            allergies: self.allergies.clone(),
            notes: self.notes.clone(),
        })
    }

    pub(crate) fn to_patient(&self) -> Result<Patient> {
        let f = self.fields()?;
        Ok(Patient {
            id: parse_uuid(&self.id)?,
            mrn: self.mrn.clone(),
            family_name: f.family_name,
            given_name: f.given_name,
            middle_name: f.middle_name,
            sex: f.sex,
            birth_date: f.birth_date,
            birth_date_estimated: f.birth_date_estimated,
            phones: f.phones,
            national_id: f.national_id,
            address: f.address,
            emergency_contact_name: f.emergency_contact_name,
            emergency_contact_phone: f.emergency_contact_phone,
            allergies: f.allergies,
            notes: f.notes,
            status: self.status,
            merged_into: self.merged_into.as_deref().map(parse_uuid).transpose()?,
            version: self.version,
            created_at: parse_ts(&self.created_at)?,
            created_by: self.created_by.clone(),
            updated_at: parse_ts(&self.updated_at)?,
            updated_by: self.updated_by.clone(),
            workstation_id: parse_uuid(&self.workstation_id)?,
        })
    }

    pub(crate) fn to_summary(&self) -> Result<PatientSummary> {
        Ok(PatientSummary {
            id: parse_uuid(&self.id)?,
            mrn: self.mrn.clone(),
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            middle_name: self.middle_name.clone(),
            sex: Sex::parse(&self.sex).ok_or_else(|| bad("sex"))?,
            birth_date: self.birth_date.parse().map_err(|_| bad("birth date"))?,
            birth_date_estimated: self.birth_date_estimated,
            phone: self.phone_list().into_iter().next(),
            national_id: self.national_id.clone(),
        })
    }

    /// The audit snapshot: the record's content and status, no bookkeeping
    /// beyond the version.
    pub(crate) fn snapshot(&self) -> Value {
        json!({
            "mrn": self.mrn,
            "family_name": self.family_name,
            "given_name": self.given_name,
            "middle_name": self.middle_name,
            "sex": self.sex,
            "birth_date": self.birth_date,
            "birth_date_estimated": self.birth_date_estimated,
            "phones": self.phone_list(),
            "national_id": self.national_id,
            "address": self.address,
            "emergency_contact_name": self.emergency_contact_name,
            "emergency_contact_phone": self.emergency_contact_phone,
            "allergies": self.allergies,
            "notes": self.notes,
            "status": self.status,
            "merged_into": self.merged_into,
            "version": self.version,
        })
    }

    /// The record's search tokens as the JSON array stored in
    /// `search_keys`, from which the write path derives `search_token` and
    /// the typo vocabulary: `n:` folded name parts, `s:` their Latin
    /// skeletons, `p:` reversed phone digits, `i:` the reversed national ID
    /// and `m:` the MRN's sequence digits. A merged record has none.
    pub(crate) fn index_keys(&self) -> String {
        if self.status != PatientStatus::Active {
            return "[]".to_owned();
        }
        let middle = self
            .middle_name
            .as_deref()
            .map(text::name_parts)
            .unwrap_or_default();
        let names = [
            &text::name_parts(&self.family_name)[..],
            &text::name_parts(&self.given_name)[..],
            &middle[..],
        ];
        keys_of_parts(
            names,
            &self.phone_list(),
            self.national_id.as_deref(),
            &self.mrn,
        )
    }
}

/// [`PatientRow::index_keys`] from the names' [`text::name_parts`], the
/// phone list, the national ID and the MRN, for an active record.
pub(crate) fn keys_of_parts(
    names: [&[(String, Option<String>)]; 3],
    phones: &[String],
    national_id: Option<&str>,
    mrn: &str,
) -> String {
    let mut keys: Vec<String> = Vec::with_capacity(10);
    if let Some(id) = national_id
        .map(national_id::reversed)
        .filter(|id| !id.is_empty())
    {
        keys.push(format!("i:{id}"));
    }
    if let Some(seq) = mrn::sequence_of(mrn) {
        keys.push(format!("m:{seq}"));
    }
    for (t, sk) in names.into_iter().flatten() {
        if let Some(sk) = sk {
            keys.push(format!("s:{sk}"));
        }
        keys.push(format!("n:{t}"));
    }
    for p in phones {
        keys.push(format!("p:{}", phone::reversed_digits(p)));
    }
    keys.sort_unstable();
    keys.dedup();
    serde_json::to_string(&keys).expect("strings serialize")
}

/// New patient rows of one transaction, each with its `search_keys` set.
#[derive(Default)]
struct QueuedPatients(Vec<PatientRow>);

impl Buffer for QueuedPatients {
    fn flush<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            if self.0.is_empty() {
                return Ok(());
            }
            let after = last_patient_key(conn).await?;
            insert_patients(conn, std::mem::take(&mut self.0)).await?;
            index_patients(conn, Indexed::After(after)).await
        })
    }
}

/// Queues a new patient row (its `search_keys` set) for a multi-row insert.
pub(crate) fn queue(w: &mut WriteTx<'_>, row: PatientRow) {
    w.buffer_or_default::<QueuedPatients>().0.push(row);
}

/// Makes room for `n` more queued patient rows and their audit links.
pub(crate) fn reserve(w: &mut WriteTx<'_>, n: usize) {
    w.buffer_or_default::<QueuedPatients>().0.reserve(n);
    w.reserve_links(n);
}

/// The workstation's MRN sequence within one transaction.
struct MrnCounter {
    prefix: MrnPrefix,
    next: i64,
    dirty: bool,
}

impl Buffer for MrnCounter {
    fn flush<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            if self.dirty {
                sqlx::query("UPDATE workstation SET mrn_next_seq = ?")
                    .bind(self.next)
                    .execute(&mut *conn)
                    .await?;
                self.dirty = false;
            }
            Ok(())
        })
    }
}

/// Hands out the next MRN of this workstation.
pub(crate) async fn next_mrn(w: &mut WriteTx<'_>) -> Result<Mrn> {
    if w.buffer::<MrnCounter>().is_none() {
        let (prefix, next): (String, i64) =
            sqlx::query_as("SELECT mrn_prefix, mrn_next_seq FROM workstation")
                .fetch_one(w.conn().await?)
                .await?;
        let prefix = MrnPrefix::parse(&prefix)
            .ok_or_else(|| StoreError::Internal("stored MRN prefix is malformed".into()))?;
        w.add_buffer(MrnCounter {
            prefix,
            next,
            dirty: false,
        });
    }
    let counter = w.buffer::<MrnCounter>().expect("added above");
    let mrn = Mrn::new(&counter.prefix, counter.next as u64);
    counter.next += 1;
    counter.dirty = true;
    Ok(mrn)
}

/// Drops the cached MRN counter after the prefix changed.
pub(crate) fn forget_mrn_counter(w: &mut WriteTx<'_>) {
    w.drop_buffer::<MrnCounter>();
}

/// The largest patient key so far (0 in an empty table): rows inserted
/// after this call, under the same write lock, have larger keys.
pub(crate) async fn last_patient_key(tx: &mut SqliteConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(key), 0) FROM patients")
            .fetch_one(&mut *tx)
            .await?,
    )
}

/// Whose stored `search_keys` [`index_patients`] derives the index from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Indexed<'a> {
    /// The patients inserted after this key (see [`last_patient_key`]).
    After(i64),
    /// One patient, after its `search_keys` changed (see [`unindex_patient`]).
    Id(&'a str),
}

/// Derives the search index from patients' `search_keys`: numbers (`p:`,
/// `i:`, `m:`) into `search_token`, names (`n:`, `s:`) into
/// `patient_name_fts` and the typo vocabulary (thousands of words, few
/// distinct). A bulk load inserts in key order, so the B-tree inserts walk
/// the index instead of jumping around it.
pub(crate) async fn index_patients(tx: &mut SqliteConnection, which: Indexed<'_>) -> Result<()> {
    let (condition, order) = match which {
        Indexed::After(_) => ("p.key > ?", " ORDER BY 1, 2"),
        Indexed::Id(_) => ("p.id = ?", ""),
    };
    let numbers = format!(
        "INSERT OR IGNORE INTO search_token (token, patient_key) \
         SELECT j.value, p.key FROM patients p, json_each(p.search_keys) j \
         WHERE {condition} AND j.value GLOB '[pim]:*'{order}"
    );
    // The ascii tokenizer splits on ':'; the kind letter alone keeps n: and
    // s: keys apart (see migrations/sqlite/0007_name_fts.sql).
    let names = format!(
        "INSERT INTO patient_name_fts (rowid, keys) \
         SELECT key, keys FROM (SELECT p.key AS key, \
           (SELECT group_concat(replace(j.value, ':', ''), ' ') \
            FROM json_each(p.search_keys) j WHERE j.value GLOB '[ns]:*') AS keys \
          FROM patients p WHERE {condition} ORDER BY p.key) \
         WHERE keys IS NOT NULL"
    );
    let vocab = format!(
        "INSERT OR IGNORE INTO search_vocab (token) \
         SELECT DISTINCT j.value FROM patients p, json_each(p.search_keys) j \
         WHERE {condition} AND j.value GLOB '[ns]:*'"
    );
    for sql in [numbers, names, vocab] {
        let query = sqlx::query(&sql);
        let query = match which {
            Indexed::After(key) => query.bind(key),
            Indexed::Id(id) => query.bind(id),
        };
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Removes one patient from the search index, before their `search_keys`
/// change. (The vocabulary keeps its words: it only suggests spellings.)
pub(crate) async fn unindex_patient(tx: &mut SqliteConnection, id: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM search_token WHERE (token, patient_key) IN \
         (SELECT j.value, p.key FROM patients p, json_each(p.search_keys) j WHERE p.id = ?)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM patient_name_fts WHERE rowid = (SELECT key FROM patients WHERE id = ?)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(crate) async fn insert_patients(
    tx: &mut SqliteConnection,
    rows: Vec<PatientRow>,
) -> Result<()> {
    sql::insert_many(
        tx,
        "INSERT INTO patients (id, mrn, mrn_compact, family_name, given_name, middle_name, sex, birth_date, \
         birth_date_estimated, phones, national_id, address, emergency_contact_name, emergency_contact_phone, \
         allergies, notes, status, merged_into, name_key, created_at, created_by, updated_at, updated_by, version, workstation_id, \
         search_keys) ",
        26,
        rows,
        |b, r| {
            b.push_bind(r.id)
                .push_bind(r.mrn)
                .push_bind(r.mrn_compact)
                .push_bind(r.family_name)
                .push_bind(r.given_name)
                .push_bind(r.middle_name)
                .push_bind(r.sex)
                .push_bind(r.birth_date)
                .push_bind(r.birth_date_estimated)
                .push_bind(r.phones)
                .push_bind(r.national_id)
                .push_bind(r.address)
                .push_bind(r.emergency_contact_name)
                .push_bind(r.emergency_contact_phone)
                .push_bind(r.allergies)
                .push_bind(r.notes)
                .push_bind(r.status.as_str())
                .push_bind(r.merged_into)
                .push_bind(r.name_key)
                .push_bind(r.created_at)
                .push_bind(r.created_by)
                .push_bind(r.updated_at)
                .push_bind(r.updated_by)
                .push_bind(r.version)
                .push_bind(r.workstation_id)
                .push_bind(r.search_keys);
        },
    )
    .await
}
