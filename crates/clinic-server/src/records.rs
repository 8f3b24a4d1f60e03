//! The server's side of the generic record road
//! ([`clinic_domain::record`]): a pushed create or update of any kind on
//! it, checked by the kind's own rules, merged per field, and published
//! to the feed as the whole record.
//!
//! Statements are built from the kind's declared table and field names
//! (constants of this program, never input); values are bound. A record's
//! JSON becomes columns through `jsonb_populate_record` on the table's own
//! row type, so each column keeps its PostgreSQL type.

use clinic_domain::record::KindInfo;
use clinic_domain::sync::{PushMutation, RecordEdit, RejectCode, three_way_merge};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::apply::{Ctx, Outcome, decode, validation};
use crate::error::ApiResult;
use crate::feed::FeedBatch;

/// `jsonb_build_object('a', a, 'b', b)`: a row's fields as one object.
fn fields_json(kind: &KindInfo) -> String {
    let parts: Vec<String> = kind.fields.iter().map(|f| format!("'{f}', {f}")).collect();
    format!("jsonb_build_object({})", parts.join(", "))
}

/// `(r).a, (r).b` of a populated row `r`.
fn from_row(kind: &KindInfo) -> String {
    let parts: Vec<String> = kind.fields.iter().map(|f| format!("(r).{f}")).collect();
    parts.join(", ")
}

/// The refusal when another record of the clinic holds a unique field's value.
async fn taken(
    tx: &mut PgConnection,
    ctx: &Ctx,
    kind: &KindInfo,
    id: Uuid,
    fields: &Value,
) -> ApiResult<Option<Outcome>> {
    for f in kind.unique {
        let row: Option<(i32,)> = sqlx::query_as(&format!(
            "SELECT 1 FROM {t} WHERE clinic_id = $1 AND id <> $2 \
             AND {f} = (SELECT (r).{f} FROM jsonb_populate_record(NULL::{t}, $3) r)",
            t = kind.table
        ))
        .bind(ctx.clinic_id)
        .bind(id)
        .bind(fields)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            return Ok(Some(Outcome::rejected(
                RejectCode::Exists,
                format!("another record of this kind has this {f}"),
            )));
        }
    }
    Ok(None)
}

/// How [`save`] writes a record.
enum Save {
    /// A new row at version 1; nothing when the id is taken.
    Insert,
    /// The fields of the existing row, its version raised by one.
    Update,
}

/// Writes `fields` as record `id`: whether a row was written.
async fn save(
    tx: &mut PgConnection,
    ctx: &Ctx,
    kind: &KindInfo,
    id: Uuid,
    fields: &Value,
    how: Save,
) -> ApiResult<bool> {
    let (t, cols, vals) = (kind.table, kind.fields.join(", "), from_row(kind));
    let sql = match how {
        Save::Insert => format!(
            "INSERT INTO {t} (clinic_id, id, {cols}, version, created_at, created_by, updated_at, updated_by) \
             SELECT $1, $2, {vals}, 1, $4, $5, $4, $5 FROM jsonb_populate_record(NULL::{t}, $3) r \
             ON CONFLICT DO NOTHING"
        ),
        Save::Update => format!(
            "UPDATE {t} SET ({cols}) = (SELECT {vals} FROM jsonb_populate_record(NULL::{t}, $3) r), \
             version = version + 1, updated_at = $4, updated_by = $5 WHERE clinic_id = $1 AND id = $2"
        ),
    };
    let done = sqlx::query(&sql)
        .bind(ctx.clinic_id)
        .bind(id)
        .bind(fields)
        .bind(ctx.now)
        .bind(ctx.user_id)
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The record as the feed carries it: its fields, id and version.
fn feed_data(fields: &Value, id: Uuid, version: i64) -> Value {
    let mut data = fields.clone();
    if let Some(o) = data.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.insert("version".into(), json!(version));
    }
    data
}

/// A pushed create: the payload is the record's fields.
pub(crate) async fn create(
    tx: &mut PgConnection,
    ctx: &Ctx,
    kind: &KindInfo,
    m: &PushMutation,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    let fields = match (kind.validate)(&m.payload, ctx.today) {
        Ok(f) => f,
        Err(errors) => return Ok(validation(errors)),
    };
    if let Some(refused) = taken(tx, ctx, kind, m.entity_id, &fields).await? {
        return Ok(refused);
    }
    if !save(tx, ctx, kind, m.entity_id, &fields, Save::Insert).await? {
        return Ok(Outcome::rejected(
            RejectCode::Exists,
            "a record with this id (or unique value) already exists",
        ));
    }
    feed.push(
        kind.entity,
        m.entity_id,
        1,
        feed_data(&fields, m.entity_id, 1),
        Some(m.mutation_id),
    );
    Ok(Outcome::applied())
}

/// A pushed update: its changed fields merge into the server's version
/// field by field. A field the server changed meanwhile, to another value,
/// refuses the whole update (`changed_meanwhile`): the author sees it among
/// the refused changes with what they typed, and nothing is overwritten.
pub(crate) async fn update(
    tx: &mut PgConnection,
    ctx: &Ctx,
    kind: &KindInfo,
    m: &PushMutation,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    let edit = match decode::<RecordEdit>(&m.payload) {
        Ok(e) => e,
        Err(rejected) => return Ok(rejected),
    };
    let row: Option<(i64, Value)> = sqlx::query_as(&format!(
        "SELECT version, {} FROM {} WHERE clinic_id = $1 AND id = $2 FOR UPDATE",
        fields_json(kind),
        kind.table
    ))
    .bind(ctx.clinic_id)
    .bind(m.entity_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((version, current)) = row else {
        return Ok(Outcome::rejected(
            RejectCode::NotFound,
            "no such record in this clinic",
        ));
    };
    let merge = three_way_merge(kind.fields, &current, &edit);
    if !merge.conflicts.is_empty() {
        let fields: Vec<&str> = merge.conflicts.iter().map(|c| c.0.as_str()).collect();
        return Ok(Outcome::rejected(
            RejectCode::ChangedMeanwhile,
            format!("changed on the server meanwhile: {}", fields.join(", ")),
        ));
    }
    if merge.apply.is_empty() {
        return Ok(Outcome::applied());
    }
    let mut merged = current.clone();
    if let Some(o) = merged.as_object_mut() {
        for (f, v) in merge.apply {
            o.insert(f, v);
        }
    }
    let merged = match (kind.validate)(&merged, ctx.today) {
        Ok(f) => f,
        Err(errors) => return Ok(validation(errors)),
    };
    if let Some(refused) = taken(tx, ctx, kind, m.entity_id, &merged).await? {
        return Ok(refused);
    }
    save(tx, ctx, kind, m.entity_id, &merged, Save::Update).await?;
    feed.push(
        kind.entity,
        m.entity_id,
        version + 1,
        feed_data(&merged, m.entity_id, version + 1),
        Some(m.mutation_id),
    );
    Ok(Outcome::applied())
}

/// After a refused update: the record as the server has it goes to the
/// feed again, so the workstation that showed the refused value takes the
/// server's back (its own stays among the refused changes).
pub(crate) async fn resend(
    tx: &mut PgConnection,
    ctx: &Ctx,
    kind: &KindInfo,
    id: Uuid,
    feed: &mut FeedBatch,
) -> ApiResult<()> {
    let row: Option<(i64, Value)> = sqlx::query_as(&format!(
        "SELECT version, {} FROM {} WHERE clinic_id = $1 AND id = $2",
        fields_json(kind),
        kind.table
    ))
    .bind(ctx.clinic_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((version, fields)) = row {
        feed.push(
            kind.entity,
            id,
            version,
            feed_data(&fields, id, version),
            None,
        );
    }
    Ok(())
}
