//! The per-clinic change feed.
//!
//! Writers collect their changes in a [`FeedBatch`] and publish it as the
//! last step before commit: the per-clinic counter row is bumped with
//! `UPDATE ... RETURNING`, whose row lock is held until commit. A second
//! writer of the same clinic waits for that lock, so sequence numbers become
//! visible in order and a reader that has seen `seq = n` can never later
//! find a committed change below `n` (the late-commit skip of plain
//! sequences). The lock is held only for the insert and the commit.

use clinic_domain::sync::{Entity, MAX_PULL_PAGE, PullResponse};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// The NOTIFY channel that tells every server process a clinic's feed grew.
pub const CHANNEL: &str = "clinic_feed";

/// Changes made in one transaction, waiting for their sequence numbers.
#[derive(Default)]
pub struct FeedBatch {
    changes: Vec<(String, Uuid, i64, Value, Option<Uuid>)>,
}

impl FeedBatch {
    /// Records that `entity` `id` is now `data` at `version`.
    pub fn push(
        &mut self,
        entity: Entity,
        id: Uuid,
        version: i64,
        data: Value,
        mutation_id: Option<Uuid>,
    ) {
        self.changes
            .push((entity.as_str().to_owned(), id, version, data, mutation_id));
    }

    /// How many changes are waiting (for rolling back to a savepoint).
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether there is nothing to publish.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Drops changes made after `len` (their savepoint was rolled back).
    pub fn truncate(&mut self, len: usize) {
        self.changes.truncate(len);
    }

    /// Numbers and stores the changes and queues the NOTIFY. Call it last,
    /// right before commit. Returns the clinic's new last sequence number.
    pub async fn publish(self, conn: &mut PgConnection, clinic_id: Uuid) -> ApiResult<Option<i64>> {
        if self.changes.is_empty() {
            return Ok(None);
        }
        let n = self.changes.len() as i64;
        let (last,): (i64,) = sqlx::query_as(
            "UPDATE clinic_feed_counter SET last_seq = last_seq + $2 WHERE clinic_id = $1 RETURNING last_seq",
        )
        .bind(clinic_id)
        .bind(n)
        .fetch_one(&mut *conn)
        .await?;
        let first = last - n + 1;
        let mut seqs = Vec::with_capacity(self.changes.len());
        let mut entities = Vec::with_capacity(self.changes.len());
        let mut ids = Vec::with_capacity(self.changes.len());
        let mut versions = Vec::with_capacity(self.changes.len());
        let mut datas = Vec::with_capacity(self.changes.len());
        let mut mutations = Vec::with_capacity(self.changes.len());
        for (i, (entity, id, version, data, mutation_id)) in self.changes.into_iter().enumerate() {
            seqs.push(first + i as i64);
            entities.push(entity);
            ids.push(id);
            versions.push(version);
            datas.push(data);
            mutations.push(mutation_id);
        }
        sqlx::query(
            "INSERT INTO change_log (clinic_id, seq, entity, entity_id, version, data, mutation_id) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::uuid[], $5::bigint[], $6::jsonb[], $7::uuid[])",
        )
        .bind(clinic_id)
        .bind(&seqs)
        .bind(&entities)
        .bind(&ids)
        .bind(&versions)
        .bind(&datas)
        .bind(&mutations)
        .execute(&mut *conn)
        .await?;
        // Delivered by PostgreSQL at commit, to every listening process.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{clinic_id}:{last}"))
            .execute(&mut *conn)
            .await?;
        Ok(Some(last))
    }
}

/// One page of a clinic's feed after `after`, as the JSON text of a
/// [`PullResponse`], with the feed's epoch (read in the same statement, so
/// from the same snapshot).
///
/// PostgreSQL writes each change's JSON itself, splicing the stored `jsonb`
/// text of `data` in, and joins the page into one text value: the server
/// neither decodes the rows one by one nor parses and re-serialises every
/// record (the feed ran at a tenth of a raw `COPY` of the same rows when it
/// did). The shape is exactly [`PullResponse`]'s (field order included);
/// the tests read it back as one.
pub async fn pull_json<'e>(
    db: impl PgExecutor<'e>,
    clinic_id: Uuid,
    after: i64,
    limit: i64,
) -> ApiResult<String> {
    let limit = limit.clamp(1, MAX_PULL_PAGE);
    // `has_more`: a change after the page's last one, in the same snapshot
    // (one probe of the primary key instead of fetching `limit + 1` rows).
    let row: Option<(Uuid, Option<i64>, bool, Option<String>)> = sqlx::query_as(
        "SELECT c.feed_epoch, p.last, \
             EXISTS (SELECT 1 FROM change_log l WHERE l.clinic_id = c.id AND l.seq > COALESCE(p.last, $2)), \
             p.body \
         FROM clinics c CROSS JOIN LATERAL ( \
             SELECT max(seq) AS last, string_agg( \
                 '{\"seq\":' || seq || ',\"entity\":' || to_json(entity)::text \
                 || ',\"entity_id\":\"' || entity_id || '\",\"version\":' || version \
                 || ',\"data\":' || data::text || ',\"mutation_id\":' \
                 || COALESCE('\"' || mutation_id || '\"', 'null') || '}', \
                 ',' ORDER BY seq) AS body \
             FROM (SELECT seq, entity, entity_id, version, data, mutation_id FROM change_log \
                   WHERE clinic_id = c.id AND seq > $2 ORDER BY seq LIMIT $3) q) p \
         WHERE c.id = $1",
    )
    .bind(clinic_id)
    .bind(after)
    .bind(limit)
    .fetch_optional(db)
    .await?;
    let (epoch, last, has_more, body) = row.ok_or(ApiError::NotFound("clinic"))?;
    let body = body.unwrap_or_default();
    let mut json = String::with_capacity(body.len() + 100);
    json.push_str("{\"changes\":[");
    json.push_str(&body);
    json.push_str(&format!(
        "],\"cursor\":{},\"has_more\":{has_more},\"epoch\":\"{epoch}\"}}",
        last.unwrap_or(after)
    ));
    Ok(json)
}

/// One page of a clinic's feed after `after`, decoded (for tests and
/// tools; the API sends [`pull_json`]'s text as it is).
pub async fn pull<'e>(
    db: impl PgExecutor<'e>,
    clinic_id: Uuid,
    after: i64,
    limit: i64,
) -> ApiResult<PullResponse> {
    let json = pull_json(db, clinic_id, after, limit).await?;
    serde_json::from_str(&json).map_err(|e| {
        tracing::error!("the feed wrote unreadable JSON: {e}");
        ApiError::Internal
    })
}

/// Gives every clinic a new feed epoch; run after restoring the database
/// from a backup (see deploy/backup.md). Returns how many clinics.
pub async fn new_epoch(pool: &sqlx::PgPool) -> ApiResult<u64> {
    Ok(
        sqlx::query("UPDATE clinics SET feed_epoch = gen_random_uuid()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
