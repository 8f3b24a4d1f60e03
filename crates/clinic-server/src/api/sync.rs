//! Push, pull, and the live channel that says when to pull.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use clinic_domain::Permission;
use clinic_domain::sync::{EnrollRequest, EnrollResponse, PullResponse, PushRequest, PushResponse};
use serde::Deserialize;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};
use tokio_stream::{Stream, StreamExt};
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
) -> ApiResult<Response> {
    caller.require(Permission::ReadDemographics)?;
    if q.after < 0 {
        return Err(ApiError::BadRequest("after must be 0 or more".into()));
    }
    // PostgreSQL wrote the page's JSON (a `PullResponse`); it goes out as it is.
    let json = crate::feed::pull_json(&state.pool, caller.clinic_id, q.after, q.limit).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// The live channel: server-sent `feed` events.
///
/// Each event carries the clinic's newest sequence number; workstations pull
/// when it is above their cursor, and `-1` means ticks were missed and a pull
/// is due anyway. Every server process listens to PostgreSQL NOTIFY, so a
/// change pushed through one process reaches clients of all of them.
/// The stream ends within `live_recheck_seconds` of the user being disabled
/// or given a new password, and when the access token expires: connect
/// again with a fresh token.
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
    // The stream outlives the request: it keeps what to check, not the
    // caller's share of the pool.
    let standing = caller.standing();
    drop(caller);
    let rx = state.ticks.subscribe();
    let (last,): (i64,) =
        sqlx::query_as("SELECT last_seq FROM clinic_feed_counter WHERE clinic_id = $1")
            .bind(clinic)
            .fetch_one(&state.pool)
            .await?;
    let feed = |seq: i64| Event::default().event("feed").data(seq.to_string());
    let first = tokio_stream::once(Live::Send(feed(last)));
    let period = Duration::from_secs(state.config.live_recheck_seconds);
    let rechecks = IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + period,
        period,
    ))
    .map(|_| Live::Recheck);
    let ticks = BroadcastStream::new(rx).filter_map(move |tick| match tick {
        Ok((c, seq)) if c == clinic => Some(Live::Send(feed(seq))),
        Ok(_) => None,
        // Missed ticks: tell the client to pull anyway.
        Err(_) => Some(Live::Send(feed(-1))),
    });
    let pool = state.pool.clone();
    let stream = first
        .chain(ticks.merge(rechecks))
        .then(move |live| {
            let pool = pool.clone();
            async move {
                match live {
                    // A user disabled, or with a new password, or a token
                    // expired: the stream ends, and the client's reconnect
                    // with its refreshed token is refused or accepted anew.
                    Live::Recheck if !standing.holds(&pool).await => Live::End,
                    other => other,
                }
            }
        })
        .take_while(|live| !matches!(live, Live::End))
        .filter_map(|live| match live {
            Live::Send(event) => Some(Ok(event)),
            Live::Recheck | Live::End => None,
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One step of the live channel.
enum Live {
    /// An event to send.
    Send(Event),
    /// Time to check that the caller's token still holds.
    Recheck,
    /// It does not: end the stream.
    End,
}
