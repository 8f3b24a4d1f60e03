//! Push, pull, and the live channel that says when to pull.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use clinic_domain::Permission;
use clinic_domain::sync::{EnrollRequest, EnrollResponse, PullResponse, PushRequest, PushResponse};
use serde::Deserialize;
use tokio_stream::{Stream, StreamExt, wrappers::BroadcastStream};
use utoipa::IntoParams;

use super::extract::{ApiJson, ApiQuery, PushJson};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Enrol a workstation in the caller's clinic.
///
/// The MRN prefix the workstation proposes is kept if no other workstation
/// of the clinic (nor the server itself) uses it; otherwise a free one is
/// assigned. Enrolling again is idempotent.
#[utoipa::path(
    post,
    path = "/v1/workstations",
    tag = "sync",
    request_body = EnrollRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Enrolled, with the MRN prefix to use", body = EnrollResponse),
        (status = 403, description = "Not allowed, or the workstation belongs to another clinic", body = ErrorBody),
        (status = 409, description = "No free MRN prefix left in the clinic", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ManageSettings))),
)]
pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> ApiResult<Json<EnrollResponse>> {
    caller.require(Permission::ManageSettings)?;
    if clinic_domain::mrn::MrnPrefix::parse(&req.mrn_prefix).is_none() {
        return Err(ApiError::BadRequest(
            "mrn_prefix must be 3 base-32 characters".into(),
        ));
    }
    let name = req.name.trim();
    if !clinic_domain::user::is_display_name(name) {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 printable characters".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    // Serialise enrolments of a clinic so two never pick the same prefix.
    let (server_prefix,): (String,) =
        sqlx::query_as("SELECT mrn_prefix FROM clinics WHERE id = $1 FOR UPDATE")
            .bind(caller.clinic_id)
            .fetch_one(&mut *tx)
            .await?;
    let existing: Option<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT clinic_id, mrn_prefix FROM workstations WHERE id = $1")
            .bind(req.workstation_id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((clinic, prefix)) = existing {
        if clinic != caller.clinic_id {
            return Err(ApiError::Forbidden(
                "this workstation belongs to another clinic".into(),
            ));
        }
        return Ok(Json(EnrollResponse {
            clinic_id: clinic,
            mrn_prefix: prefix,
        }));
    }
    let taken: Vec<(String,)> =
        sqlx::query_as("SELECT mrn_prefix FROM workstations WHERE clinic_id = $1")
            .bind(caller.clinic_id)
            .fetch_all(&mut *tx)
            .await?;
    let is_free = |p: &str| p != server_prefix && !taken.iter().any(|(t,)| t == p);
    let wanted = req.mrn_prefix.to_ascii_uppercase();
    let prefix = if is_free(&wanted) {
        wanted
    } else {
        (0..10_000)
            .map(|_| {
                clinic_domain::mrn::MrnPrefix::from_random(rand::random())
                    .as_str()
                    .to_owned()
            })
            .find(|p| is_free(p))
            .ok_or(ApiError::Conflict(
                "no free MRN prefix left in this clinic".into(),
            ))?
    };
    sqlx::query(
        "INSERT INTO workstations (id, clinic_id, name, mrn_prefix, enrolled_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(req.workstation_id)
    .bind(caller.clinic_id)
    .bind(name)
    .bind(&prefix)
    .bind(caller.user_id)
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        Some(caller.clinic_id),
        Some(caller.user_id),
        "workstation.enroll",
        "workstation",
        Some(req.workstation_id),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(EnrollResponse {
        clinic_id: caller.clinic_id,
        mrn_prefix: prefix,
    }))
}

/// Push outbox mutations, in outbox order.
///
/// Idempotent per `mutation_id`: a replayed mutation gets its stored outcome
/// and changes nothing. The permission is checked for each mutation; a
/// refused one is `rejected` in its outcome, not an error of the request.
#[utoipa::path(
    post,
    path = "/v1/sync/push",
    tag = "sync",
    request_body = PushRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One outcome per mutation, in order", body = PushResponse),
        (status = 400, description = "Malformed JSON, an unknown field, or too many mutations in one push", body = ErrorBody),
        (status = 403, description = "The account is disabled, a mutation is another user's, \
            or the workstation is not enrolled in the caller's clinic", body = ErrorBody),
    ),
    extensions(("x-permission" = json!("per_mutation"))),
)]
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    PushJson(req): PushJson<PushRequest>,
) -> ApiResult<Json<PushResponse>> {
    Ok(Json(crate::apply::push(&state, &caller, req).await?))
}

/// Query of `GET /v1/sync/pull`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// The last sequence number the workstation has applied.
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// Page size; clamped to the largest page the server sends.
    #[serde(default = "default_limit")]
    #[param(default = default_limit)]
    limit: i64,
}

fn default_limit() -> i64 {
    1000
}

/// A page of the clinic's change feed after a cursor.
#[utoipa::path(
    get,
    path = "/v1/sync/pull",
    tag = "sync",
    params(PullQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changes after the cursor, in sequence order", body = PullResponse),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ReadDemographics))),
)]
pub async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PullQuery>,
) -> ApiResult<Json<PullResponse>> {
    caller.require(Permission::ReadDemographics)?;
    if q.after < 0 {
        return Err(ApiError::BadRequest("after must be 0 or more".into()));
    }
    Ok(Json(
        crate::feed::pull(&state.pool, caller.clinic_id, q.after, q.limit).await?,
    ))
}

/// The live channel: server-sent `feed` events.
///
/// Each event carries the clinic's newest sequence number; workstations pull
/// when it is above their cursor, and `-1` means ticks were missed and a pull
/// is due anyway. Every server process listens to PostgreSQL NOTIFY, so a
/// change pushed through one process reaches clients of all of them.
#[utoipa::path(
    get,
    path = "/v1/sync/events",
    tag = "sync",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream of `feed` events", content_type = "text/event-stream", body = String),
    ),
    extensions(("x-permission" = json!("signed_in"))),
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let clinic = caller.clinic_id;
    let rx = state.ticks.subscribe();
    let (last,): (i64,) =
        sqlx::query_as("SELECT last_seq FROM clinic_feed_counter WHERE clinic_id = $1")
            .bind(clinic)
            .fetch_one(&state.pool)
            .await?;
    let first = tokio_stream::once(Ok(Event::default().event("feed").data(last.to_string())));
    let ticks = BroadcastStream::new(rx).filter_map(move |tick| match tick {
        Ok((c, seq)) if c == clinic => {
            Some(Ok(Event::default().event("feed").data(seq.to_string())))
        }
        Ok(_) => None,
        // Missed ticks: tell the client to pull anyway.
        Err(_) => Some(Ok(Event::default().event("feed").data("-1"))),
    });
    Ok(Sse::new(first.chain(ticks)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
