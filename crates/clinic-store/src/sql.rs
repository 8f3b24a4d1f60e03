//! Row types and the multi-row inserts the write path flushes.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::Result;

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
pub(crate) async fn insert_many<T>(
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
