//! Applying pushed mutations: the server side of the outbox.
//!
//! A push is one PostgreSQL transaction; each mutation that writes more
//! than one statement runs under its own savepoint, so a rejected mutation
//! rolls back alone and the ones after it still apply (a create is a single
//! statement after validation; if one fails unexpectedly, the whole push is
//! run again with a savepoint around every mutation); the records it would have changed go to the feed again, so
//! the workstation that shows the refused change locally gets the server's
//! version back. Every mutation id gets exactly one stored outcome; a replayed
//! push returns the stored outcomes and changes nothing. A database failure
//! aborts the whole push (nothing is recorded) and the client retries.
//!
//! The permission of each mutation is checked against the author's role as
//! the server knows it now, not as the workstation claims.

use clinic_domain::codes::PeerCode;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use clinic_domain::Role;
use clinic_domain::patient::{PatientFields, PatientStatus};
use clinic_domain::record::RecordKind;
use clinic_domain::sync::{
    Entity, MAX_PUSH_BATCH, MutationOutcome, Op, OutcomeStatus, PATIENT_FIELDS, PatientData,
    PushMutation, PushRequest, PushResponse, RecordEdit, RejectCode, change_permission,
    three_way_merge,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::auth::Caller;
use crate::conflicts::{COLUMNS, ConflictRow};
use crate::error::{ApiError, ApiResult};
use crate::feed::FeedBatch;
use crate::state::AppState;

/// Who is pushing, as the server sees it.
pub(crate) struct Ctx {
    pub(crate) clinic_id: Uuid,
    workstation_id: Uuid,
    pub(crate) user_id: Uuid,
    role: Role,
    pub(crate) today: NaiveDate,
    pub(crate) now: DateTime<Utc>,
}

/// A mutation's fate before it is stored.
pub(crate) struct Outcome {
    status: OutcomeStatus,
    code: Option<RejectCode>,
    message: Option<String>,
    conflicts: Vec<String>,
    refused: Vec<Uuid>,
}

impl Outcome {
    pub(crate) fn applied() -> Self {
        Self {
            status: OutcomeStatus::Applied,
            code: None,
            message: None,
            conflicts: Vec::new(),
            refused: Vec::new(),
        }
    }

    pub(crate) fn rejected(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            status: OutcomeStatus::Rejected,
            code: Some(code),
            message: Some(message.into()),
            conflicts: Vec::new(),
            refused: Vec::new(),
        }
    }
}

/// `POST /v1/sync/push`.
pub async fn push(state: &AppState, caller: &Caller, req: PushRequest) -> ApiResult<PushResponse> {
    if req.mutations.len() > MAX_PUSH_BATCH {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PUSH_BATCH} mutations per push"
        )));
    }
    if let Some(m) = req.mutations.iter().find(|m| m.user_id != caller.user_id) {
        return Err(ApiError::Forbidden(format!(
            "mutation {} was made by another user; push it with that user's token",
            m.mutation_id
        )));
    }
    // The caller's role is the one the user has now (read for every
    // request), and a disabled user never gets this far.
    let role = caller.role;
    // One push per workstation at a time: a second one waits for nothing
    // and holds no connection; it is told to come back (429).
    let _one_push = state.limits.push(req.workstation_id)?;
    let ws_clinic: Option<(Uuid,)> =
        sqlx::query_as("SELECT clinic_id FROM workstations WHERE id = $1")
            .bind(req.workstation_id)
            .fetch_optional(&state.pool)
            .await?;
    if ws_clinic.map(|c| c.0) != Some(caller.clinic_id) {
        return Err(ApiError::Forbidden(
            "this workstation is not enrolled in the user's clinic".into(),
        ));
    }
    let now = Utc::now();
    let ctx = Ctx {
        clinic_id: caller.clinic_id,
        workstation_id: req.workstation_id,
        user_id: caller.user_id,
        role,
        today: now.date_naive(),
        now,
    };

    // Fast first: single-statement creates run without a savepoint. If one
    // fails unexpectedly, the transaction is lost; run the push again with
    // a savepoint around every mutation, so only that one is rejected.
    match apply_batch(state, &ctx, &req, false).await {
        Err(ApiError::Internal) => apply_batch(state, &ctx, &req, true).await,
        other => other,
    }
}

/// One attempt at a push. `careful`: a savepoint around every mutation.
async fn apply_batch(
    state: &AppState,
    ctx: &Ctx,
    req: &PushRequest,
    careful: bool,
) -> ApiResult<PushResponse> {
    let mut tx = state.pool.begin().await?;
    // One push per workstation at a time across server processes too, so a
    // retry racing its original finds the stored outcomes. A push that
    // finds the lock taken gives its connection back at once (429).
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(ctx.workstation_id)
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Err(crate::limits::push_in_progress());
    }
    let ids: Vec<Uuid> = req.mutations.iter().map(|m| m.mutation_id).collect();
    let stored = stored_outcomes(&mut tx, ctx.clinic_id, &ids).await?;
    let hashes: Vec<String> = req.mutations.iter().map(content_hash).collect();

    let mut feed = FeedBatch::default();
    let mut outcomes: Vec<MutationOutcome> = Vec::with_capacity(req.mutations.len());
    let mut fresh: Vec<(&PushMutation, &String, &MutationOutcome)> = Vec::new();
    let mut fresh_idx = Vec::new();
    // Mutation ids seen earlier in this push, with their content and outcome.
    let mut in_batch: HashMap<Uuid, (&str, usize)> = HashMap::new();
    for (m, hash) in req.mutations.iter().zip(&hashes) {
        if let Some((first_hash, first)) = in_batch.get(&m.mutation_id) {
            // The same mutation twice in one push gets the first one's
            // answer; another change under a used id is refused.
            let o = if *first_hash == hash.as_str() {
                outcomes[*first].clone()
            } else {
                reused_id(m.mutation_id)
            };
            outcomes.push(o);
            continue;
        }
        in_batch.insert(m.mutation_id, (hash.as_str(), outcomes.len()));
        if let Some(stored) = stored.get(&m.mutation_id) {
            // A replay gets its stored answer, but only the workstation
            // that pushed it and only for the same content: an id reused
            // for something else is refused, never answered with the
            // outcome of another change.
            let same = stored.workstation_id == ctx.workstation_id
                && stored.content_hash.as_deref().is_none_or(|h| h == hash);
            if same && stored.outcome.status == OutcomeStatus::Rejected {
                // The first answer may have been lost after the workstation
                // pulled the records it refused and put its change back on
                // top: send the server's versions again, so they arrive
                // after the workstation has heard of the refusal.
                resend_refused(&mut tx, ctx, m, &mut feed).await?;
            }
            outcomes.push(if same {
                stored.outcome.clone()
            } else {
                reused_id(m.mutation_id)
            });
            continue;
        }
        if let Some(problem) = unstorable(m) {
            // Text PostgreSQL cannot hold: refuse this one mutation, and
            // store nothing of it (its answer is the same on every retry).
            outcomes.push(MutationOutcome {
                mutation_id: m.mutation_id,
                status: OutcomeStatus::Rejected,
                code: Some(RejectCode::Malformed),
                message: Some(problem.into()),
                conflicts: Vec::new(),
                refused: Vec::new(),
            });
            continue;
        }
        // A create is one INSERT ... ON CONFLICT DO NOTHING after the
        // validation, so a refused create has written nothing to undo and
        // needs no savepoint.
        let savepoint = careful || m.kind() != Some((Entity::Patient, Op::Create));
        if savepoint {
            sqlx::query("SAVEPOINT m").execute(&mut *tx).await?;
        }
        let mark = feed.len();
        let outcome = match apply_one(&mut tx, ctx, m, &mut feed).await {
            Ok(o) => o,
            // Worth a retry: abort the push, record nothing.
            Err(ApiError::Unavailable) => return Err(ApiError::Unavailable),
            // Without a savepoint the transaction is lost: run it again carefully.
            Err(_) if !savepoint => return Err(ApiError::Internal),
            // Anything else would fail again on every retry and wedge the
            // workstation's queue: reject this one mutation, visibly.
            Err(_) => Outcome::rejected(
                RejectCode::ServerError,
                "the server could not apply this change; its administrator has the details",
            ),
        };
        if savepoint && outcome.status == OutcomeStatus::Rejected {
            sqlx::query("ROLLBACK TO SAVEPOINT m")
                .execute(&mut *tx)
                .await?;
            feed.truncate(mark);
            resend_refused(&mut tx, ctx, m, &mut feed).await?;
        } else if savepoint {
            sqlx::query("RELEASE SAVEPOINT m").execute(&mut *tx).await?;
        }
        fresh_idx.push(outcomes.len());
        outcomes.push(MutationOutcome {
            mutation_id: m.mutation_id,
            status: outcome.status,
            code: outcome.code,
            message: outcome.message,
            conflicts: outcome.conflicts,
            refused: outcome.refused,
        });
    }
    for i in &fresh_idx {
        fresh.push((&req.mutations[*i], &hashes[*i], &outcomes[*i]));
    }
    store_outcomes(&mut tx, ctx, &fresh).await?;
    feed.publish(&mut tx, ctx.clinic_id).await?;
    tx.commit().await?;
    Ok(PushResponse { outcomes })
}

/// After a refused mutation, the records it would have changed go to the
/// feed again as they are (with no mutation id): the workstation that made
/// the change shows it locally, and only the server's version can take it
/// back there (a conflict settled twice, an edit of a record merged away).
async fn resend_refused(
    tx: &mut PgConnection,
    ctx: &Ctx,
    m: &PushMutation,
    feed: &mut FeedBatch,
) -> ApiResult<()> {
    if let Some((entity, Op::Update)) = m.kind()
        && let Some(kind) = clinic_domain::record::generic(entity)
    {
        return crate::records::resend(tx, ctx, kind, m.entity_id, feed).await;
    }
    let mut patients = Vec::new();
    match m.kind() {
        Some((Entity::Patient, Op::Update)) => patients.push(m.entity_id),
        Some((Entity::Patient, Op::Merge)) => {
            patients.push(m.entity_id);
            if let Some(Ok(other)) = m.payload.get("merge").map(Uuid::deserialize) {
                patients.push(other);
            }
        }
        Some((Entity::PatientConflict, Op::Resolve)) => {
            let row: Option<ConflictRow> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM patient_conflicts WHERE id = $1 AND clinic_id = $2"
            ))
            .bind(m.entity_id)
            .bind(ctx.clinic_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(conflict) = row {
                patients.push(conflict.patient_id);
                // Still open here, though the workstation settled it.
                if conflict.resolved_at.is_none() {
                    let data = conflict.feed_json(None);
                    feed.push(
                        Entity::PatientConflict,
                        conflict.id,
                        conflict.version,
                        data,
                        None,
                    );
                }
            }
        }
        _ => {}
    }
    for id in patients {
        let row: Option<(i64, Value)> = sqlx::query_as(&format!(
            "SELECT version, {RECORD_JSON} FROM patients WHERE id = $1 AND clinic_id = $2"
        ))
        .bind(id)
        .bind(ctx.clinic_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((version, record)) = row {
            feed.push(Entity::Patient, id, version, record, None);
        }
    }
    Ok(())
}

/// An outcome stored earlier, with whose it is and what it answered.
struct Stored {
    workstation_id: Uuid,
    content_hash: Option<String>,
    outcome: MutationOutcome,
}

/// The stored outcomes of `ids` in the clinic; ids are the clinic's own,
/// so another clinic's outcome is never seen here.
async fn stored_outcomes(
    conn: &mut PgConnection,
    clinic_id: Uuid,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Stored>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        mutation_id: Uuid,
        workstation_id: Uuid,
        content_hash: Option<String>,
        status: String,
        code: Option<String>,
        message: Option<String>,
        conflicts: Value,
        refused: Value,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT mutation_id, workstation_id, content_hash, status, code, message, conflicts, refused \
         FROM mutation_results WHERE clinic_id = $1 AND mutation_id = ANY($2)",
    )
    .bind(clinic_id)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let outcome = MutationOutcome {
                mutation_id: r.mutation_id,
                status: OutcomeStatus::parse(&r.status).unwrap_or(OutcomeStatus::Rejected),
                code: r.code.as_deref().map(RejectCode::from_peer),
                message: r.message,
                conflicts: serde_json::from_value(r.conflicts).unwrap_or_default(),
                refused: serde_json::from_value(r.refused).unwrap_or_default(),
            };
            let stored = Stored {
                workstation_id: r.workstation_id,
                content_hash: r.content_hash,
                outcome,
            };
            (r.mutation_id, stored)
        })
        .collect())
}

/// SHA-256 of what a mutation says (its author, record, operation and
/// payload), so a replay can be told from another change under the same id.
fn content_hash(m: &PushMutation) -> String {
    let canonical = json!([
        m.user_id,
        m.entity,
        m.entity_id,
        m.op,
        m.base_version,
        m.payload
    ]);
    crate::auth::sha256_hex(&canonical.to_string())
}

/// The answer to a mutation id already used for another change.
fn reused_id(mutation_id: Uuid) -> MutationOutcome {
    MutationOutcome {
        mutation_id,
        status: OutcomeStatus::Rejected,
        code: Some(RejectCode::MutationIdReused),
        message: Some(
            "this mutation id was already used for another change; give the change a new id".into(),
        ),
        conflicts: Vec::new(),
        refused: Vec::new(),
    }
}

/// Why a mutation cannot even be recorded: text with a NUL character,
/// which PostgreSQL's text and jsonb refuse.
fn unstorable(m: &PushMutation) -> Option<&'static str> {
    let nul = m.entity.contains('\0')
        || m.op.contains('\0')
        || clinic_domain::untrusted::contains_nul(&m.payload);
    nul.then_some("text must not contain NUL characters")
}

/// The entity and operation as the audit log records them: known kinds
/// only, since the pushed strings are the client's.
fn audit_kind(m: &PushMutation) -> (&'static str, &'static str) {
    m.kind()
        .filter(|(e, o)| change_permission(*e, *o).is_some())
        .map(|(e, o)| (e.as_str(), o.as_str()))
        .unwrap_or(("unknown", "unknown"))
}

/// Stores the outcomes and one audit entry per mutation, in two statements.
async fn store_outcomes(
    conn: &mut PgConnection,
    ctx: &Ctx,
    fresh: &[(&PushMutation, &String, &MutationOutcome)],
) -> ApiResult<()> {
    if fresh.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = fresh.iter().map(|(m, _, _)| m.mutation_id).collect();
    let seqs: Vec<i64> = fresh.iter().map(|(m, _, _)| m.client_seq).collect();
    let hashes: Vec<&str> = fresh.iter().map(|(_, h, _)| h.as_str()).collect();
    let statuses: Vec<&str> = fresh.iter().map(|(_, _, o)| o.status.as_str()).collect();
    let codes: Vec<Option<&str>> = fresh
        .iter()
        .map(|(_, _, o)| o.code.map(RejectCode::as_str))
        .collect();
    let messages: Vec<Option<String>> = fresh.iter().map(|(_, _, o)| o.message.clone()).collect();
    let conflicts: Vec<Value> = fresh.iter().map(|(_, _, o)| json!(o.conflicts)).collect();
    let refused: Vec<Value> = fresh.iter().map(|(_, _, o)| json!(o.refused)).collect();
    sqlx::query(
        "INSERT INTO mutation_results (mutation_id, clinic_id, workstation_id, user_id, client_seq, status, code, message, \
         conflicts, refused, content_hash) \
         SELECT u.id, $1, $2, $3, u.seq, u.status, u.code, u.message, u.conflicts, u.refused, u.hash \
         FROM UNNEST($4::uuid[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::jsonb[], $11::text[]) \
         AS u(id, seq, status, code, message, conflicts, refused, hash)",
    )
    .bind(ctx.clinic_id)
    .bind(ctx.workstation_id)
    .bind(ctx.user_id)
    .bind(&ids)
    .bind(&seqs)
    .bind(&statuses)
    .bind(&codes)
    .bind(&messages)
    .bind(&conflicts)
    .bind(&refused)
    .bind(&hashes)
    .execute(&mut *conn)
    .await?;
    let kinds: Vec<(&str, &str)> = fresh.iter().map(|(m, _, _)| audit_kind(m)).collect();
    let actions: Vec<String> = kinds.iter().map(|(e, o)| format!("{e}.{o}")).collect();
    let entities: Vec<&str> = kinds.iter().map(|(e, _)| *e).collect();
    let entity_ids: Vec<Uuid> = fresh.iter().map(|(m, _, _)| m.entity_id).collect();
    let details: Vec<Value> = fresh
        .iter()
        .map(|(m, _, o)| json!({ "status": o.status, "code": o.code, "client_at": m.created_at }))
        .collect();
    sqlx::query(
        "INSERT INTO audit_log (at, clinic_id, user_id, workstation_id, action, entity, entity_id, mutation_id, detail) \
         SELECT $1, $2, $3, $4, u.action, u.entity, u.entity_id, u.mutation_id, u.detail \
         FROM UNNEST($5::text[], $6::text[], $7::uuid[], $8::uuid[], $9::jsonb[]) \
         AS u(action, entity, entity_id, mutation_id, detail)",
    )
    .bind(ctx.now)
    .bind(ctx.clinic_id)
    .bind(ctx.user_id)
    .bind(ctx.workstation_id)
    .bind(&actions)
    .bind(&entities)
    .bind(&entity_ids)
    .bind(&ids)
    .bind(&details)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies one mutation inside the push transaction. `Ok(rejected)` for
/// business-rule failures; `Err` only for failures worth a retry.
async fn apply_one(
    tx: &mut Transaction<'static, Postgres>,
    ctx: &Ctx,
    m: &PushMutation,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    let Some(((entity, op), needed)) = m
        .kind()
        .and_then(|(e, o)| Some(((e, o), change_permission(e, o)?)))
    else {
        return Ok(Outcome::rejected(
            RejectCode::UnknownMutation,
            "this server does not know this kind of change (entity and op); update the server",
        ));
    };
    if !ctx.role.allows(needed) {
        return Ok(Outcome::rejected(
            RejectCode::Forbidden,
            format!(
                "the {} role may not do {}.{}",
                ctx.role.as_str(),
                m.entity,
                m.op
            ),
        ));
    }
    // A kind on the generic road: one apply for all of them.
    if let Some(kind) = clinic_domain::record::generic(entity) {
        return match op {
            Op::Create => crate::records::create(tx, ctx, kind, m, feed).await,
            Op::Update => crate::records::update(tx, ctx, kind, m, feed).await,
            _ => Ok(Outcome::rejected(
                RejectCode::UnknownMutation,
                "this server does not apply this kind of change yet",
            )),
        };
    }
    match (entity, op) {
        (Entity::Patient, Op::Create) => match decode_patient(&m.payload) {
            Ok(p) => create_patient(tx, ctx, m.entity_id, &p, Some(m.mutation_id), feed).await,
            Err(rejected) => Ok(rejected),
        },
        (Entity::Patient, Op::Import) => import_patients(tx, ctx, m, feed).await,
        (Entity::Patient, Op::Update) => match decode::<RecordEdit>(&m.payload) {
            Ok(edit) => update_patient(tx, ctx, m.entity_id, &edit, m.mutation_id, feed).await,
            Err(rejected) => Ok(rejected),
        },
        (Entity::Patient, Op::Merge) => merge_patients(tx, ctx, m, feed).await,
        (Entity::PatientConflict, Op::Resolve) => resolve_conflict(tx, ctx, m, feed).await,
        // `change_permission` knows no other kind; a kind added there
        // without an apply here is refused, visibly, not applied halfway.
        _ => Ok(Outcome::rejected(
            RejectCode::UnknownMutation,
            "this server does not apply this kind of change yet",
        )),
    }
}

/// A payload that does not decode: the message names the field and the
/// rule, never the value (it would sit in the stored outcome and the logs).
fn malformed(e: impl std::fmt::Display) -> Outcome {
    Outcome::rejected(
        RejectCode::Malformed,
        format!(
            "malformed payload: {}",
            clinic_domain::untrusted::describe_decode_error(&e.to_string())
        ),
    )
}

/// Decodes a payload, with the path of the field that failed.
pub(crate) fn decode<'a, T: Deserialize<'a>>(payload: &'a Value) -> Result<T, Outcome> {
    serde_path_to_error::deserialize(payload).map_err(|e| malformed(with_path(e)))
}

/// A decoder's error with the path of the field first, when it has one.
fn with_path(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    if path == "." {
        inner
    } else {
        format!("{path}: {inner}")
    }
}

/// [`decode`] for a patient record. Its demographic fields are flattened
/// into it, and serde decodes a flattened struct from a buffer that has
/// forgotten the field names: when the error has no path, the fields are
/// decoded on their own, which names the one that failed.
fn decode_patient(payload: &Value) -> Result<PatientData, Outcome> {
    decode::<PatientData>(payload).map_err(|outcome| {
        match serde_path_to_error::deserialize::<_, PatientFields>(payload) {
            Err(e) if e.path().to_string() != "." => malformed(with_path(e)),
            _ => outcome,
        }
    })
}

pub(crate) fn validation(errors: Vec<clinic_domain::FieldError>) -> Outcome {
    let fields: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.code))
        .collect();
    Outcome::rejected(
        RejectCode::Validation,
        format!("invalid fields: {}", fields.join(", ")),
    )
}

/// SQL for a patient row as the feed and the REST API carry it: the data
/// plus the sync columns.
pub(crate) const RECORD_JSON: &str = "data || jsonb_build_object('id', id, 'version', version, \
     'created_at', created_at, 'created_by', created_by, 'updated_at', updated_at, \
     'updated_by', updated_by, 'workstation_id', workstation_id)";

async fn create_patient(
    tx: &mut PgConnection,
    ctx: &Ctx,
    id: Uuid,
    p: &PatientData,
    mutation_id: Option<Uuid>,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    if let Err(errors) = p.clone().validate(ctx.today) {
        return Ok(validation(errors));
    }
    // A record merged into another (a re-push after a server restore) may
    // only point at a record of the same clinic.
    if let Some(target) = p.merged_into {
        let found: Option<(Uuid,)> =
            sqlx::query_as("SELECT id FROM patients WHERE id = $1 AND clinic_id = $2")
                .bind(target)
                .bind(ctx.clinic_id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Ok(Outcome::rejected(
                RejectCode::NotFound,
                "merged_into names no patient of this clinic",
            ));
        }
    }
    let data = serde_json::to_value(p).map_err(|_| ApiError::Internal)?;
    let inserted: Option<(Value,)> = sqlx::query_as(&format!(
        "INSERT INTO patients (id, clinic_id, mrn, data, status, merged_into, version, created_at, created_by, \
         updated_at, updated_by, workstation_id) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $7, $8, $9) \
         ON CONFLICT DO NOTHING RETURNING {RECORD_JSON}"
    ))
    .bind(id)
    .bind(ctx.clinic_id)
    .bind(&p.mrn)
    .bind(&data)
    .bind(p.status.as_str())
    .bind(p.merged_into)
    .bind(ctx.now)
    .bind(ctx.user_id)
    .bind(ctx.workstation_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((record,)) = inserted else {
        let exists: Option<(Uuid,)> =
            sqlx::query_as("SELECT id FROM patients WHERE id = $1 AND clinic_id = $2")
                .bind(id)
                .bind(ctx.clinic_id)
                .fetch_optional(&mut *tx)
                .await?;
        return Ok(if exists.is_some() {
            Outcome::rejected(RejectCode::Exists, "a patient with this id already exists")
        } else {
            Outcome::rejected(
                RejectCode::MrnTaken,
                "this patient number is already used in the clinic",
            )
        });
    };
    feed.push(Entity::Patient, id, 1, record, mutation_id);
    Ok(Outcome::applied())
}

/// A bulk import: `{"patients": [{"id": ..., ...PatientData}, ...]}`. The
/// rows are created as one mutation. A row whose MRN another record of the
/// clinic has is left out and named in the outcome's `refused` (the
/// workstation renumbers it and sends it again), so one clash never holds
/// back the rest; any other failure rejects the whole import, so the
/// workstation and the server never disagree on which rows exist.
async fn import_patients(
    tx: &mut PgConnection,
    ctx: &Ctx,
    m: &PushMutation,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    #[derive(Deserialize)]
    struct Row {
        id: Uuid,
        #[serde(flatten)]
        data: PatientData,
    }
    #[derive(Deserialize)]
    struct Import {
        patients: Vec<Row>,
    }
    let import = match decode::<Import>(&m.payload) {
        Ok(i) => i,
        Err(rejected) => return Ok(rejected),
    };
    let mut refused = Vec::new();
    for row in &import.patients {
        let o = create_patient(tx, ctx, row.id, &row.data, Some(m.mutation_id), feed).await?;
        match (o.status, o.code) {
            // Nothing was written for this row; the others go on.
            (OutcomeStatus::Rejected, Some(RejectCode::MrnTaken)) => refused.push(row.id),
            (OutcomeStatus::Rejected, _) => return Ok(o),
            _ => {}
        }
    }
    Ok(Outcome {
        refused,
        ..Outcome::applied()
    })
}

#[derive(sqlx::FromRow)]
struct PatientRow {
    data: Value,
    #[sqlx(try_from = "String")]
    status: PatientStatus,
    version: i64,
}

async fn lock_patient(tx: &mut PgConnection, ctx: &Ctx, id: Uuid) -> ApiResult<Option<PatientRow>> {
    Ok(sqlx::query_as(
        "SELECT data, status, version FROM patients WHERE id = $1 AND clinic_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(ctx.clinic_id)
    .fetch_optional(&mut *tx)
    .await?)
}

async fn save_patient(
    tx: &mut PgConnection,
    ctx: &Ctx,
    id: Uuid,
    data: &Value,
    version: i64,
    mutation_id: Uuid,
    feed: &mut FeedBatch,
) -> ApiResult<()> {
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("active");
    let merged_into: Option<Uuid> = data
        .get("merged_into")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let (record,): (Value,) = sqlx::query_as(&format!(
        "UPDATE patients SET data = $2, status = $3, merged_into = $4, version = $5, updated_at = $6, \
         updated_by = $7, workstation_id = $8 WHERE id = $1 AND clinic_id = $9 RETURNING {RECORD_JSON}"
    ))
    .bind(id)
    .bind(data)
    .bind(status)
    .bind(merged_into)
    .bind(version)
    .bind(ctx.now)
    .bind(ctx.user_id)
    .bind(ctx.workstation_id)
    .bind(ctx.clinic_id)
    .fetch_one(&mut *tx)
    .await?;
    feed.push(Entity::Patient, id, version, record, Some(mutation_id));
    Ok(())
}

/// Applies the three-way merge of `edit`; returns the outcome and whether
/// anything changed.
async fn update_patient(
    tx: &mut PgConnection,
    ctx: &Ctx,
    id: Uuid,
    edit: &RecordEdit,
    mutation_id: Uuid,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    let Some(row) = lock_patient(tx, ctx, id).await? else {
        return Ok(Outcome::rejected(
            RejectCode::NotFound,
            "no such patient in this clinic",
        ));
    };
    if row.status == PatientStatus::Merged {
        return Ok(Outcome::rejected(
            RejectCode::Merged,
            "the record was merged into another; edit that record",
        ));
    }
    let merge = three_way_merge(&PATIENT_FIELDS, &row.data, edit);
    let mut data = row.data.clone();
    if let Some(obj) = data.as_object_mut() {
        for (field, value) in &merge.apply {
            obj.insert(field.clone(), value.clone());
        }
    }
    if !merge.apply.is_empty() {
        match decode_patient(&data) {
            Ok(p) => {
                if let Err(errors) = p.validate(ctx.today) {
                    return Ok(validation(errors));
                }
            }
            Err(rejected) => return Ok(rejected),
        }
    }
    let mut version = row.version;
    if !merge.apply.is_empty() {
        version += 1;
        save_patient(tx, ctx, id, &data, version, mutation_id, feed).await?;
    }
    let mut conflict_fields = Vec::new();
    for (field, base, server, client) in merge.conflicts {
        let conflict_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO patient_conflicts (id, clinic_id, patient_id, field, base_value, server_value, client_value, \
             mutation_id, user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(conflict_id)
        .bind(ctx.clinic_id)
        .bind(id)
        .bind(&field)
        .bind(&base)
        .bind(&server)
        .bind(&client)
        .bind(mutation_id)
        .bind(ctx.user_id)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?;
        let row = ConflictRow {
            id: conflict_id,
            patient_id: id,
            field: field.clone(),
            base_value: base,
            server_value: server,
            client_value: client,
            mutation_id,
            user_id: ctx.user_id,
            created_at: ctx.now,
            resolved_at: None,
            version: 1,
        };
        feed.push(
            Entity::PatientConflict,
            conflict_id,
            1,
            row.feed_json(None),
            Some(mutation_id),
        );
        conflict_fields.push(field);
    }
    if conflict_fields.is_empty() {
        Ok(Outcome::applied())
    } else {
        Ok(Outcome {
            status: OutcomeStatus::Conflict,
            code: Some(RejectCode::FieldsKeptServerValue),
            message: Some(
                "some fields were changed on the server meanwhile; reception reviews them".into(),
            ),
            conflicts: conflict_fields,
            refused: Vec::new(),
        })
    }
}

/// A merge: `{"keep", "merge", "keep_fields", "base"}`. The kept record's
/// changes are merged field by field like an edit; the other record is
/// marked merged into it.
async fn merge_patients(
    tx: &mut PgConnection,
    ctx: &Ctx,
    m: &PushMutation,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    #[derive(Deserialize)]
    struct Merge {
        keep: Uuid,
        merge: Uuid,
        keep_fields: Value,
        #[serde(default)]
        base: Option<Value>,
        /// Why (required on the workstation since the merge dialog asks;
        /// a merge queued by an older workstation has none).
        #[serde(default)]
        reason: Option<String>,
    }
    let req = match decode::<Merge>(&m.payload) {
        Ok(r) => r,
        Err(rejected) => return Ok(rejected),
    };
    if let Some(reason) = &req.reason
        && let Err(errors) = clinic_domain::patient::validate_merge_reason(reason)
    {
        return Ok(validation(errors));
    }
    if req.keep == req.merge {
        return Ok(Outcome::rejected(
            RejectCode::SameRecord,
            "a record cannot be merged into itself",
        ));
    }
    let Some(other) = lock_patient(tx, ctx, req.merge).await? else {
        return Ok(Outcome::rejected(
            RejectCode::NotFound,
            "no such patient in this clinic",
        ));
    };
    if other.status == PatientStatus::Merged {
        return Ok(Outcome::rejected(
            RejectCode::Merged,
            "that record was already merged",
        ));
    }
    let base = req.base.unwrap_or_else(|| req.keep_fields.clone());
    let changed: Vec<String> = PATIENT_FIELDS
        .iter()
        .filter(|f| base.get(**f) != req.keep_fields.get(**f))
        .map(|f| (*f).to_owned())
        .collect();
    let edit = RecordEdit {
        base: changed
            .iter()
            .map(|f| (f.clone(), base.get(f).cloned().unwrap_or(Value::Null)))
            .collect(),
        changed,
        fields: req.keep_fields,
    };
    let outcome = update_patient(tx, ctx, req.keep, &edit, m.mutation_id, feed).await?;
    if outcome.status == OutcomeStatus::Rejected {
        return Ok(outcome);
    }
    let mut data = other.data.clone();
    if let Some(obj) = data.as_object_mut() {
        obj.insert("status".into(), json!("merged"));
        obj.insert("merged_into".into(), json!(req.keep));
    }
    save_patient(
        tx,
        ctx,
        req.merge,
        &data,
        other.version + 1,
        m.mutation_id,
        feed,
    )
    .await?;
    Ok(outcome)
}

/// Settles a conflict: `{"choice": "server" | "client"}`. Choosing the
/// client's value writes it to the record as a new version.
async fn resolve_conflict(
    tx: &mut PgConnection,
    ctx: &Ctx,
    m: &PushMutation,
    feed: &mut FeedBatch,
) -> ApiResult<Outcome> {
    let choice = m.payload.get("choice").and_then(Value::as_str);
    if !matches!(choice, Some("server" | "client")) {
        return Ok(Outcome::rejected(
            RejectCode::Malformed,
            "malformed payload: choice must be `server` or `client`",
        ));
    }
    let row: Option<ConflictRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM patient_conflicts WHERE id = $1 AND clinic_id = $2 FOR UPDATE"
    ))
    .bind(m.entity_id)
    .bind(ctx.clinic_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(mut conflict) = row else {
        return Ok(Outcome::rejected(
            RejectCode::NotFound,
            "no such conflict in this clinic",
        ));
    };
    if conflict.resolved_at.is_some() {
        return Ok(Outcome::rejected(
            RejectCode::AlreadyResolved,
            "this conflict was already settled",
        ));
    }
    if choice == Some("client") {
        let Some(p) = lock_patient(tx, ctx, conflict.patient_id).await? else {
            return Ok(Outcome::rejected(
                RejectCode::NotFound,
                "no such patient in this clinic",
            ));
        };
        let mut data = p.data.clone();
        if let Some(obj) = data.as_object_mut() {
            obj.insert(conflict.field.clone(), conflict.client_value.clone());
        }
        match decode_patient(&data) {
            Ok(d) => {
                if let Err(errors) = d.validate(ctx.today) {
                    return Ok(validation(errors));
                }
            }
            Err(rejected) => return Ok(rejected),
        }
        save_patient(
            tx,
            ctx,
            conflict.patient_id,
            &data,
            p.version + 1,
            m.mutation_id,
            feed,
        )
        .await?;
    }
    sqlx::query("UPDATE patient_conflicts SET resolved_at = $2, resolved_by = $3, version = version + 1 WHERE id = $1 AND clinic_id = $4")
        .bind(m.entity_id)
        .bind(ctx.now)
        .bind(ctx.user_id)
        .bind(ctx.clinic_id)
        .execute(&mut *tx)
        .await?;
    conflict.resolved_at = Some(ctx.now);
    conflict.version += 1;
    feed.push(
        Entity::PatientConflict,
        conflict.id,
        conflict.version,
        conflict.feed_json(choice),
        Some(m.mutation_id),
    );
    Ok(Outcome::applied())
}
