//! The per-clinic change feed.
//!
//! Writers collect their changes in a [`FeedBatch`] and publish it as the
//! last step before commit: the per-clinic counter row is bumped with
//! `UPDATE ... RETURNING`, whose row lock is held until commit. A second
//! writer of the same clinic waits for that lock, so sequence numbers become
//! visible in order and a reader that has seen `seq = n` can never later
//! find a committed change below `n` (the late-commit skip of plain
//! sequences). The lock is held only for the insert and the commit.

use clinic_domain::sync::{Change, Entity, MAX_PULL_PAGE, PullResponse};
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

/// One page of a clinic's feed after `after`, with the feed's epoch (read
/// in the same statement, so from the same snapshot).
pub async fn pull<'e>(
    db: impl PgExecutor<'e>,
    clinic_id: Uuid,
    after: i64,
    limit: i64,
) -> ApiResult<PullResponse> {
    type Row = (
        Uuid,
        Option<i64>,
        Option<String>,
        Option<Uuid>,
        Option<i64>,
        Option<Value>,
        Option<Uuid>,
    );
    let limit = limit.clamp(1, MAX_PULL_PAGE);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.feed_epoch, p.seq, p.entity, p.entity_id, p.version, p.data, p.mutation_id \
         FROM clinics c LEFT JOIN LATERAL ( \
             SELECT seq, entity, entity_id, version, data, mutation_id FROM change_log \
             WHERE clinic_id = c.id AND seq > $2 ORDER BY seq LIMIT $3) p ON true \
         WHERE c.id = $1 ORDER BY p.seq",
    )
    .bind(clinic_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let epoch = rows
        .first()
        .map(|r| r.0)
        .ok_or(ApiError::NotFound("clinic"))?;
    let mut changes: Vec<Change> = rows
        .into_iter()
        .filter_map(|(_, seq, entity, entity_id, version, data, mutation_id)| {
            Some(Change {
                seq: seq?,
                entity: entity?,
                entity_id: entity_id?,
                version: version?,
                data: data?,
                mutation_id,
            })
        })
        .collect();
    let has_more = changes.len() as i64 > limit;
    changes.truncate(limit as usize);
    let cursor = changes.last().map_or(after, |c| c.seq);
    Ok(PullResponse {
        changes,
        cursor,
        has_more,
        epoch,
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
