//! Row types and the multi-row inserts the write path flushes.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::Result;
use crate::patients::PatientRow;

/// SQLite's limit on bound parameters in one statement.
const MAX_PARAMS: usize = 32_000;

/// Timestamps are stored as RFC 3339 UTC with microseconds, so that text
/// order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a stored timestamp.
pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| crate::StoreError::Internal(format!("bad stored timestamp: {e}")))
}

/// A stored code column read back as its enum. Only this program writes
/// these columns, so an unknown text is a damaged row, not a newer peer.
pub(crate) fn code<C: clinic_domain::codes::WireCode>(s: &str) -> Result<C> {
    C::from_text(s)
        .ok_or_else(|| crate::StoreError::Internal(format!("unknown stored {} `{s}`", C::NAME)))
}

/// An audit entry as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub user_id: Option<String>,
    pub user_name: String,
    pub workstation_id: String,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// An outbox entry to insert.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub mutation_id: String,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
    pub base_version: Option<i64>,
    pub payload: String,
    pub created_at: String,
    pub user_id: Option<String>,
}

/// Runs `INSERT … VALUES (…), (…)` over `rows` in chunks that fit SQLite's
/// parameter limit. `head` names the table and columns; `bind` pushes one
/// row's values in that order.
///
/// A chunk is either the largest that fits or a power of two, so that a
/// connection sees few distinct statements and reuses their prepared form
/// from its statement cache; compiling a statement of thousands of rows for
/// every odd-sized remainder cost more than running it.
async fn insert_many<T>(
    tx: &mut SqliteConnection,
    head: &'static str,
    columns: usize,
    rows: Vec<T>,
    bind: impl Fn(&mut sqlx::query_builder::Separated<'_, '_, Sqlite, &'static str>, T) + Copy,
) -> Result<()> {
    let max_chunk = (MAX_PARAMS / columns).max(1);
    let mut left = rows.len();
    let mut rows = rows.into_iter();
    while left > 0 {
        let chunk = if left >= max_chunk {
            max_chunk
        } else {
            1 << left.ilog2()
        };
        left -= chunk;
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(head);
        qb.push_values(rows.by_ref().take(chunk), |mut b, row| bind(&mut b, row));
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

pub(crate) async fn insert_audit(tx: &mut SqliteConnection, rows: Vec<AuditRow>) -> Result<()> {
    insert_many(
        tx,
        "INSERT INTO audit_log (seq, at, user_id, user_name, workstation_id, action, entity, entity_id, before, after, prev_hash, hash) ",
        12,
        rows,
        |b, r| {
            b.push_bind(r.seq)
                .push_bind(r.at)
                .push_bind(r.user_id)
                .push_bind(r.user_name)
                .push_bind(r.workstation_id)
                .push_bind(r.action)
                .push_bind(r.entity)
                .push_bind(r.entity_id)
                .push_bind(r.before)
                .push_bind(r.after)
                .push_bind(r.prev_hash)
                .push_bind(r.hash);
        },
    )
    .await
}

pub(crate) async fn insert_outbox(tx: &mut SqliteConnection, rows: Vec<OutboxRow>) -> Result<()> {
    insert_many(
        tx,
        "INSERT INTO outbox (mutation_id, entity, entity_id, op, base_version, payload, created_at, user_id) ",
        8,
        rows,
        |b, r| {
            b.push_bind(r.mutation_id)
                .push_bind(r.entity)
                .push_bind(r.entity_id)
                .push_bind(r.op)
                .push_bind(r.base_version)
                .push_bind(r.payload)
                .push_bind(r.created_at)
                .push_bind(r.user_id);
        },
    )
    .await
}

pub(crate) async fn insert_links(
    tx: &mut SqliteConnection,
    rows: Vec<(String, i64, i64)>,
) -> Result<()> {
    insert_many(
        tx,
        "INSERT INTO audit_link (entity_id, seq, item) ",
        3,
        rows,
        |b, (id, seq, item)| {
            b.push_bind(id).push_bind(seq).push_bind(item);
        },
    )
    .await
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
    insert_many(
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
                .push_bind(r.status)
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
