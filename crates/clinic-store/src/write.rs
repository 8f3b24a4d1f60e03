//! The one write path.
//!
//! [`Store::commit`] and [`Store::commit_batch`] are the only functions
//! that change a table. In one `BEGIN IMMEDIATE` transaction they:
//! 1. check the actor's permission for each change ([`crate::Mutation`]);
//! 2. write the row (and the search index derived from it);
//! 3. append a hash-chained audit entry with the before and after values;
//! 4. append an outbox entry with a fresh client mutation id, for records the
//!    central server will receive.
//!
//! Bulk inserts (a CSV import) are buffered and written as multi-row
//! `INSERT`s at the end of the batch; anything that reads or updates rows
//! flushes the buffers first, so a batch sees its own writes.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use clinic_domain::audit::AuditAction;
use clinic_domain::sync::{Entity, Op};
use clinic_domain::{Permission, Role};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

use crate::sql::{self, AuditRow, OutboxRow};
use crate::{Result, Store, StoreError};

/// Who is making a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The signed-in user; `None` for the system itself or the CLI.
    pub user_id: Option<Uuid>,
    /// The name the audit log shows.
    pub name: String,
    /// The role whose permissions apply.
    pub role: Role,
}

impl Actor {
    /// The workstation itself, for first-start bookkeeping. Has the admin's
    /// permissions and is named in the audit log as `system: <what>`.
    pub fn system(what: &str) -> Actor {
        Actor {
            user_id: None,
            name: format!("system: {what}"),
            role: Role::Admin,
        }
    }

    /// Checks that this actor may do `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(StoreError::Forbidden)
        }
    }
}

/// Rows a capability queues during a write transaction and writes in bulk
/// when it flushes (before the transaction's audit entries, links and
/// outbox), e.g. an import's patients and the MRN counter
/// ([`crate::patient_rows`]).
pub(crate) trait Buffer: Any + Send {
    /// Writes what is queued and empties the buffer.
    fn flush<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
}

/// What the write path applies inside its transaction. [`crate::Mutation`]
/// is the one implementation: the engine knows no table a change writes,
/// so it imports nothing from the capabilities that write them.
pub trait Change: Send {
    /// The permission the actor needs, if any; an error refuses the
    /// change before anything is written.
    fn permission(&self) -> Result<Option<Permission>>;

    /// Writes the change through the open transaction `w`.
    fn apply(self, w: &mut WriteTx<'_>) -> impl Future<Output = Result<Committed>> + Send;
}

/// What a committed mutation left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The audit entry's sequence number; none when the mutation changed
    /// nothing (a save with no field changed writes nothing).
    pub audit_seq: Option<i64>,
    /// The outbox entry's client mutation id, for synced records.
    pub mutation_id: Option<Uuid>,
}

impl Store {
    /// Commits one mutation: row, audit entry and outbox entry in one
    /// transaction.
    pub async fn commit<M: Change>(&self, actor: &Actor, mutation: M) -> Result<Committed> {
        let mut done = self.commit_batch(actor, vec![mutation]).await?;
        Ok(done.remove(0))
    }

    /// Commits mutations in order, all or none, in one transaction.
    pub async fn commit_batch<M: Change>(
        &self,
        actor: &Actor,
        mutations: Vec<M>,
    ) -> Result<Vec<Committed>> {
        let mut conn = self.pool().acquire().await?;
        self.commit_batch_on(&mut conn, actor, mutations).await
    }

    /// [`Store::commit_batch`] on a connection the caller holds. A bulk
    /// import keeps one connection for all its batches, so SQLite's page
    /// cache stays warm from one batch to the next instead of being
    /// reloaded on whichever pooled connection comes next.
    pub(crate) async fn commit_batch_on<M: Change>(
        &self,
        conn: &mut SqliteConnection,
        actor: &Actor,
        mutations: Vec<M>,
    ) -> Result<Vec<Committed>> {
        for m in &mutations {
            if let Some(p) = m.permission()? {
                actor.require(p)?;
            }
        }
        let _writer = self.write_lock.lock().await;
        let tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut w = WriteTx::start(tx, self, actor).await?;
        let mut out = Vec::with_capacity(mutations.len());
        for m in mutations {
            out.push(m.apply(&mut w).await?);
        }
        w.finish().await?;
        if out.iter().any(|c| c.mutation_id.is_some()) {
            self.outbox_signal.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(out)
    }
}

impl Store {
    /// A connection of its own for a long run of writes (an import, a first
    /// full pull), so SQLite's page cache stays warm from batch to batch
    /// (pooled connections take turns, and each turn re-read the pages
    /// another had changed). It is closed afterwards rather than returned
    /// to the pool with these settings:
    /// - a 256 MiB page cache, room for the indexes whose keys arrive in
    ///   random order (name key, birth date, phone tokens);
    /// - a checkpoint every 65,536 WAL pages (256 MiB) instead of 1,000.
    ///   Every batch rewrites pages all over those indexes; checkpointing
    ///   after each batch copied them into the database file again and
    ///   again. Durability is unchanged: each commit is in the WAL and
    ///   synced, as before.
    pub(crate) async fn bulk_connection(&self) -> Result<PoolConnection<Sqlite>> {
        let mut conn = self.pool().acquire().await?;
        conn.close_on_drop();
        sqlx::query("PRAGMA cache_size = -262144")
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA wal_autocheckpoint = 65536")
            .execute(&mut *conn)
            .await?;
        Ok(conn)
    }

    /// A [`BulkWriter`]: the write path on one warm connection.
    pub async fn bulk_writer(&self) -> Result<BulkWriter> {
        Ok(BulkWriter {
            store: self.clone(),
            conn: self.bulk_connection().await?,
        })
    }
}

/// The one write path for a long run of commits (a first full pull) on a
/// connection of its own; see [`Store::bulk_writer`]. Each commit is a
/// transaction of its own, exactly as with [`Store::commit`].
pub struct BulkWriter {
    store: Store,
    conn: PoolConnection<Sqlite>,
}

impl BulkWriter {
    /// Commits one mutation, like [`Store::commit`].
    pub async fn commit<M: Change>(&mut self, actor: &Actor, mutation: M) -> Result<Committed> {
        let mut done = self
            .store
            .commit_batch_on(&mut self.conn, actor, vec![mutation])
            .await?;
        Ok(done.remove(0))
    }

    /// Back to the usual checkpoints, and the connection closed.
    pub async fn finish(mut self) -> Result<()> {
        sqlx::query("PRAGMA wal_autocheckpoint = 1000")
            .execute(&mut *self.conn)
            .await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// An open write transaction with its pending multi-row inserts.
///
/// The connection and the buffers are private: a write step reaches the
/// database only through [`WriteTx::conn`], which writes the buffered rows
/// first, so no statement can miss a row this transaction already made.
pub struct WriteTx<'a> {
    tx: Transaction<'a, Sqlite>,
    store: &'a Store,
    actor: &'a Actor,
    /// The transaction's clock reading: every row and entry it writes
    /// carries this instant.
    pub(crate) now: DateTime<Utc>,
    next_audit_seq: i64,
    prev_hash: String,
    audit: Vec<AuditRow>,
    outbox: Vec<OutboxRow>,
    /// What capabilities queued for bulk writes ([`Buffer`]), in the order
    /// they were added.
    buffers: Vec<Box<dyn Buffer>>,
    /// `audit_link` rows: (entity id, audit seq, item).
    links: Vec<(String, i64, i64)>,
    /// The sync columns every row this transaction writes shares.
    bookkeeping: Bookkeeping,
}

/// The sync column values of one transaction, as stored.
#[derive(Clone)]
pub(crate) struct Bookkeeping {
    /// `created_at`/`updated_at`.
    pub now: String,
    /// `created_by`/`updated_by` (see [`WriteTx::actor_ref`]).
    pub actor: String,
    /// `workstation_id`.
    pub workstation_id: String,
}

/// The hash an audit chain starts from.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

impl<'a> WriteTx<'a> {
    async fn start(
        mut tx: Transaction<'a, Sqlite>,
        store: &'a Store,
        actor: &'a Actor,
    ) -> Result<Self> {
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_owned()));
        let now = store.now();
        let bookkeeping = Bookkeeping {
            now: sql::ts(now),
            actor: match actor.user_id {
                Some(id) => id.to_string(),
                None => actor.name.clone(),
            },
            workstation_id: store.workstation_id().to_string(),
        };
        Ok(Self {
            tx,
            store,
            actor,
            now,
            bookkeeping,
            next_audit_seq: last_seq + 1,
            prev_hash,
            audit: Vec::new(),
            outbox: Vec::new(),
            buffers: Vec::new(),
            links: Vec::new(),
        })
    }

    pub(crate) fn actor(&self) -> &Actor {
        self.actor
    }

    pub(crate) fn workstation_id(&self) -> Uuid {
        self.store.workstation_id()
    }

    /// The actor as stored in `created_by`/`updated_by` columns.
    pub(crate) fn actor_ref(&self) -> String {
        self.bookkeeping.actor.clone()
    }

    /// The sync column values of this transaction.
    pub(crate) fn bookkeeping(&self) -> &Bookkeeping {
        &self.bookkeeping
    }

    /// Appends an audit entry, chained to the one before.
    pub(crate) fn audit(
        &mut self,
        action: AuditAction,
        entity: &str,
        entity_id: Option<Uuid>,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<Committed> {
        self.audit_text(
            action,
            entity,
            entity_id,
            before.map(|v| v.to_string()),
            after.map(|v| v.to_string()),
        )
    }

    /// The sequence number the next audit entry of this transaction gets.
    pub(crate) fn next_audit_seq(&self) -> i64 {
        self.next_audit_seq
    }

    /// [`WriteTx::audit`] with the before and after values already as JSON text.
    pub(crate) fn audit_text(
        &mut self,
        action: AuditAction,
        entity: &str,
        entity_id: Option<Uuid>,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<Committed> {
        let row = AuditRow {
            seq: self.next_audit_seq,
            at: sql::ts(self.now),
            user_id: self.actor.user_id.map(|u| u.to_string()),
            user_name: self.actor.name.clone(),
            workstation_id: self.workstation_id().to_string(),
            action: action.as_str().to_owned(),
            entity: entity.to_owned(),
            entity_id: entity_id.map(|u| u.to_string()),
            before,
            after,
            prev_hash: std::mem::take(&mut self.prev_hash),
            hash: String::new(),
        };
        let hash = audit_hash(&row);
        self.prev_hash = hash.clone();
        self.audit.push(AuditRow { hash, ..row });
        self.next_audit_seq += 1;
        Ok(Committed {
            audit_seq: Some(self.next_audit_seq - 1),
            mutation_id: None,
        })
    }

    /// Appends an outbox entry for the central server, authored by the
    /// acting user, and returns its id. Once the workstation is enrolled, an
    /// entry needs a user the server knows: one without an author could
    /// never be pushed and would hold up every entry after it, so
    /// [`WriteTx::flush`] refuses the transaction (`ClinicUserRequired`).
    pub(crate) fn outbox(
        &mut self,
        entity: Entity,
        entity_id: Uuid,
        op: Op,
        base_version: Option<i64>,
        payload: &Value,
    ) -> Uuid {
        self.outbox_text(entity, entity_id, op, base_version, payload.to_string())
    }

    /// [`WriteTx::outbox`] with the payload already as JSON text.
    pub(crate) fn outbox_text(
        &mut self,
        entity: Entity,
        entity_id: Uuid,
        op: Op,
        base_version: Option<i64>,
        payload: String,
    ) -> Uuid {
        let author = self.actor.user_id;
        self.outbox_as(author, entity, entity_id, op, base_version, payload)
    }

    /// [`WriteTx::outbox_text`] on behalf of `author`: for an entry the sync
    /// engine makes (acting as the system) for a user's earlier change.
    pub(crate) fn outbox_as(
        &mut self,
        author: Option<Uuid>,
        entity: Entity,
        entity_id: Uuid,
        op: Op,
        base_version: Option<i64>,
        payload: String,
    ) -> Uuid {
        let mutation_id = Uuid::now_v7();
        self.outbox.push(OutboxRow {
            mutation_id: mutation_id.to_string(),
            entity: entity.as_str().to_owned(),
            entity_id: entity_id.to_string(),
            op: op.as_str().to_owned(),
            base_version,
            payload,
            created_at: sql::ts(self.now),
            user_id: author.map(|u| u.to_string()),
        });
        mutation_id
    }

    /// The transaction's connection, with every buffered row written, so
    /// that the statement run on it sees them.
    pub(crate) async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        self.flush().await?;
        Ok(&mut *self.tx)
    }

    /// This transaction's buffer of type `B`, if a write step added one.
    pub(crate) fn buffer<B: Buffer>(&mut self) -> Option<&mut B> {
        self.buffers
            .iter_mut()
            .find_map(|b| (&mut **b as &mut dyn Any).downcast_mut::<B>())
    }

    /// Adds buffer `b`; buffers flush in the order they were added.
    pub(crate) fn add_buffer<B: Buffer>(&mut self, b: B) {
        self.buffers.push(Box::new(b));
    }

    /// This transaction's buffer of type `B`, added empty if there is none.
    pub(crate) fn buffer_or_default<B: Buffer + Default>(&mut self) -> &mut B {
        if self.buffer::<B>().is_none() {
            self.add_buffer(B::default());
        }
        self.buffer::<B>().expect("added above")
    }

    /// Drops buffer `B` unflushed (its cached state went stale).
    pub(crate) fn drop_buffer<B: Buffer>(&mut self) {
        self.buffers.retain(|b| !(&**b as &dyn Any).is::<B>());
    }

    /// Makes room for `n` more `audit_link` rows.
    pub(crate) fn reserve_links(&mut self, n: usize) {
        self.links.reserve(n);
    }

    /// Queues an `audit_link` row: `entity_id`'s history includes item
    /// `item` of audit entry `seq` (a bulk entry covering many records).
    pub(crate) fn link_to_audit(&mut self, entity_id: String, seq: i64, item: i64) {
        self.links.push((entity_id, seq, item));
    }

    /// Writes the buffered rows, so that later statements see them. Private:
    /// [`WriteTx::conn`] calls it, so a write step cannot forget to.
    async fn flush(&mut self) -> Result<()> {
        // Only a transaction with an entry nobody signed asks (see
        // [`WriteTx::outbox`]), so ordinary writes pay no extra query.
        if self.outbox.iter().any(|o| o.user_id.is_none()) {
            let enrolled: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sync_state WHERE clinic_id IS NOT NULL)",
            )
            .fetch_one(&mut *self.tx)
            .await?;
            if enrolled {
                return Err(StoreError::ClinicUserRequired);
            }
        }
        for buffer in &mut self.buffers {
            buffer.flush(&mut self.tx).await?;
        }
        sql::insert_audit(&mut self.tx, std::mem::take(&mut self.audit)).await?;
        sql::insert_links(&mut self.tx, std::mem::take(&mut self.links)).await?;
        sql::insert_outbox(&mut self.tx, std::mem::take(&mut self.outbox)).await?;
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        self.flush().await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// The SHA-256 of an audit entry's content and its predecessor's hash, hex.
pub(crate) fn audit_hash(row: &AuditRow) -> String {
    let mut h = Sha256::new();
    for part in [
        row.prev_hash.as_str(),
        &row.seq.to_string(),
        &row.at,
        row.user_id.as_deref().unwrap_or(""),
        &row.user_name,
        &row.workstation_id,
        &row.action,
        &row.entity,
        row.entity_id.as_deref().unwrap_or(""),
        row.before.as_deref().unwrap_or(""),
        row.after.as_deref().unwrap_or(""),
    ] {
        // Length-prefixing each part makes the encoding unambiguous.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
