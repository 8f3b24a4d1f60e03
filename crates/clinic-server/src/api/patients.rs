//! REST API v1 for integrations: patients, their vitals and lab results.
//! Records are limited to the caller's clinic; permissions follow the matrix.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use clinic_domain::clinical::{ClinicalEvent, LabResult, Vitals};
use clinic_domain::mrn::{Mrn, MrnPrefix};
use clinic_domain::patient::{PatientInput, PatientStatus};
use clinic_domain::sync::{Entity, PatientData, ServerPatient};
use clinic_domain::{FieldCode, Permission};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::apply::RECORD_JSON;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::feed::FeedBatch;
use crate::state::AppState;

/// Query of `GET /v1/patients`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// An MRN, or the start of a family or given name.
    #[serde(default)]
    q: Option<String>,
    /// Page size; clamped to 1..=200.
    #[serde(default = "default_limit")]
    #[param(default = default_limit)]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

// The patient handlers return the stored record JSON as it is
// (`RECORD_JSON`), so the API answers exactly what the change feed carries;
// `ServerPatient` describes it, and the API tests check that the two agree.

/// Find patients by MRN or name.
///
/// Active patients of the caller's clinic whose MRN is `q`, or whose family
/// or given name starts with it.
#[utoipa::path(
    get,
    path = "/v1/patients",
    tag = "patients",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Patients ordered by name", body = Vec<ServerPatient>),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ReadDemographics))),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    caller.require(Permission::ReadDemographics)?;
    let limit = q.limit.clamp(1, 200);
    let term = q.q.unwrap_or_default().trim().to_lowercase();
    let mrn = Mrn::parse(&term).map(|m| m.as_str().to_owned());
    let rows: Vec<(Value,)> = sqlx::query_as(&format!(
        "SELECT {RECORD_JSON} FROM patients \
         WHERE clinic_id = $1 AND status = 'active' AND ($2 = '' OR mrn = $3 \
           OR lower(data->>'family_name') LIKE $4 OR lower(data->>'given_name') LIKE $4) \
         ORDER BY data->>'family_name', data->>'given_name', id LIMIT $5"
    ))
    .bind(caller.clinic_id)
    .bind(&term)
    .bind(mrn)
    .bind(format!(
        "{}%",
        term.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    ))
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.into_iter().map(|r| r.0).collect()))
}

/// One patient.
#[utoipa::path(
    get,
    path = "/v1/patients/{id}",
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The patient record", body = ServerPatient),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
        (status = 404, description = "No such patient in the caller's clinic", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ReadDemographics))),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Value>> {
    caller.require(Permission::ReadDemographics)?;
    let (record,): (Value,) = sqlx::query_as(&format!(
        "SELECT {RECORD_JSON} FROM patients WHERE id = $1 AND clinic_id = $2"
    ))
    .bind(id)
    .bind(caller.clinic_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound("patient"))?;
    Ok(Json(record))
}

/// Register a patient from an integration.
///
/// The server numbers it with the clinic's own MRN prefix, and it reaches
/// the workstations through the change feed like any other change.
#[utoipa::path(
    post,
    path = "/v1/patients",
    tag = "patients",
    request_body = PatientInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = ServerPatient),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
        (status = 422, description = "Field validation failed", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::WriteDemographics))),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<PatientInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Permission::WriteDemographics)?;
    let now = Utc::now();
    let fields = input
        .validate(now.date_naive())
        .map_err(ApiError::Validation)?;
    let mut tx = state.pool.begin().await?;
    let (prefix, seq): (String, i64) = sqlx::query_as(
        "UPDATE clinics SET mrn_next = mrn_next + 1 WHERE id = $1 RETURNING mrn_prefix, mrn_next - 1",
    )
    .bind(caller.clinic_id)
    .fetch_one(&mut *tx)
    .await?;
    let prefix = MrnPrefix::parse(&prefix).ok_or(ApiError::Internal)?;
    let data = PatientData {
        fields,
        mrn: Mrn::new(&prefix, seq as u64).as_str().to_owned(),
        status: PatientStatus::Active,
        merged_into: None,
    };
    let data = serde_json::to_value(&data).map_err(|_| ApiError::Internal)?;
    let id = Uuid::now_v7();
    let (record,): (Value,) = sqlx::query_as(&format!(
        "INSERT INTO patients (id, clinic_id, mrn, data, status, version, created_at, created_by, updated_at, \
         updated_by, workstation_id) VALUES ($1, $2, $3, $4, 'active', 1, $5, $6, $5, $6, $7) RETURNING {RECORD_JSON}"
    ))
    .bind(id)
    .bind(caller.clinic_id)
    .bind(data["mrn"].as_str())
    .bind(&data)
    .bind(now)
    .bind(caller.user_id)
    // Records made by the server itself carry the nil workstation id.
    .bind(Uuid::nil())
    .fetch_one(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        Some(caller.clinic_id),
        Some(caller.user_id),
        "patient.create",
        "patient",
        Some(id),
        None,
    )
    .await?;
    let mut feed = FeedBatch::default();
    feed.push(Entity::Patient, id, 1, record.clone(), None);
    feed.publish(&mut tx, caller.clinic_id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Body of `POST /v1/patients/{id}/vitals` and `/labs`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput<T> {
    /// Made by the client so a retried request records the event once.
    id: Uuid,
    /// When it was measured or reported.
    recorded_at: DateTime<Utc>,
    /// The event this one corrects.
    #[serde(default)]
    amends_id: Option<Uuid>,
    /// The measurements or the result.
    data: T,
}

type EventRow = (Uuid, Uuid, String, Value, Option<Uuid>, DateTime<Utc>, Uuid);

fn to_event(r: EventRow) -> ClinicalEvent {
    ClinicalEvent {
        id: r.0,
        patient_id: r.1,
        kind: r.2,
        data: r.3,
        amends_id: r.4,
        recorded_at: r.5,
        recorded_by: r.6,
    }
}

async fn record_event<T: serde::Serialize>(
    state: &AppState,
    caller: &Caller,
    patient_id: Uuid,
    kind: &str,
    input: &EventInput<T>,
) -> ApiResult<(StatusCode, Json<ClinicalEvent>)> {
    let (id, recorded_at, amends_id) = (input.id, input.recorded_at, input.amends_id);
    let data = serde_json::to_value(&input.data).map_err(|_| ApiError::Internal)?;
    if recorded_at > Utc::now() + chrono::Duration::minutes(5) {
        return Err(ApiError::Validation(vec![clinic_domain::FieldError::new(
            "recorded_at",
            FieldCode::InFuture,
            "cannot be in the future",
        )]));
    }
    if recorded_at.date_naive() < clinic_domain::clinical::EARLIEST_RECORD_DATE {
        return Err(ApiError::Validation(vec![clinic_domain::FieldError::new(
            "recorded_at",
            FieldCode::TooEarly,
            format!(
                "cannot be before {}",
                clinic_domain::clinical::EARLIEST_RECORD_DATE
            ),
        )]));
    }
    let hash = crate::auth::sha256_hex(&data.to_string());
    let mut tx = state.pool.begin().await?;
    let patient: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM patients WHERE id = $1 AND clinic_id = $2")
            .bind(patient_id)
            .bind(caller.clinic_id)
            .fetch_optional(&mut *tx)
            .await?;
    patient.ok_or(ApiError::NotFound("patient"))?;
    if let Some(a) = amends_id {
        let amended: Option<(String,)> = sqlx::query_as(
            "SELECT kind FROM clinical_events WHERE id = $1 AND patient_id = $2 AND clinic_id = $3",
        )
        .bind(a)
        .bind(patient_id)
        .bind(caller.clinic_id)
        .fetch_optional(&mut *tx)
        .await?;
        if amended.map(|k| k.0) != Some(kind.to_owned()) {
            return Err(ApiError::BadRequest(
                "amends_id must name an event of the same kind and patient".into(),
            ));
        }
    }
    let inserted = sqlx::query(
        "INSERT INTO clinical_events (id, clinic_id, patient_id, kind, data, payload_hash, amends_id, recorded_at, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (clinic_id, id) DO NOTHING",
    )
    .bind(id)
    .bind(caller.clinic_id)
    .bind(patient_id)
    .bind(kind)
    .bind(&data)
    .bind(&hash)
    .bind(amends_id)
    .bind(recorded_at)
    .bind(caller.user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row: EventRow = sqlx::query_as(
        "SELECT id, patient_id, kind, data, amends_id, recorded_at, recorded_by FROM clinical_events WHERE id = $1 AND clinic_id = $2",
    )
    .bind(id)
    .bind(caller.clinic_id)
    .fetch_optional(&mut *tx)
    .await?
    // Ids are the clinic's own: the row is there, inserted now or before.
    .ok_or(ApiError::Internal)?;
    if inserted == 0 {
        // The same id again: fine if it is the same event (a retry), refused
        // if the payload differs, so nothing is silently overwritten.
        let (stored_hash,): (String,) = sqlx::query_as(
            "SELECT payload_hash FROM clinical_events WHERE id = $1 AND clinic_id = $2",
        )
        .bind(id)
        .bind(caller.clinic_id)
        .fetch_one(&mut *tx)
        .await?;
        if stored_hash != hash || row.1 != patient_id || row.2 != kind {
            return Err(ApiError::Conflict(
                "an event with this id but other content exists".into(),
            ));
        }
        return Ok((StatusCode::OK, Json(to_event(row))));
    }
    crate::audit::record(
        &mut *tx,
        Some(caller.clinic_id),
        Some(caller.user_id),
        &format!("{kind}.record"),
        kind,
        Some(id),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(to_event(row))))
}

async fn list_events(
    state: &AppState,
    caller: &Caller,
    patient_id: Uuid,
    kind: &str,
) -> ApiResult<Json<Vec<ClinicalEvent>>> {
    caller.require(Permission::ReadClinical)?;
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT id, patient_id, kind, data, amends_id, recorded_at, recorded_by FROM clinical_events \
         WHERE patient_id = $1 AND clinic_id = $2 AND kind = $3 ORDER BY recorded_at DESC, id",
    )
    .bind(patient_id)
    .bind(caller.clinic_id)
    .bind(kind)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.into_iter().map(to_event).collect()))
}

/// A patient's vital signs.
#[utoipa::path(
    get,
    path = "/v1/patients/{id}/vitals",
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first", body = Vec<ClinicalEvent>),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ReadClinical))),
)]
pub async fn list_vitals(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<ClinicalEvent>>> {
    list_events(&state, &caller, id, "vitals").await
}

/// A patient's lab results.
#[utoipa::path(
    get,
    path = "/v1/patients/{id}/labs",
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first", body = Vec<ClinicalEvent>),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::ReadClinical))),
)]
pub async fn list_labs(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<ClinicalEvent>>> {
    list_events(&state, &caller, id, "lab_result").await
}

/// Record vital signs; idempotent per event id.
#[utoipa::path(
    post,
    path = "/v1/patients/{id}/vitals",
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = EventInput<Vitals>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded before with the same content (a retry)", body = ClinicalEvent),
        (status = 201, description = "Recorded", body = ClinicalEvent),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
        (status = 404, description = "No such patient in the caller's clinic", body = ErrorBody),
        (status = 409, description = "The id is used by another event", body = ErrorBody),
        (status = 422, description = "Field validation failed", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::RecordVitals))),
)]
pub async fn add_vitals(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(patient_id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<EventInput<Vitals>>,
) -> ApiResult<(StatusCode, Json<ClinicalEvent>)> {
    caller.require(Permission::RecordVitals)?;
    input.data.validate().map_err(ApiError::Validation)?;
    record_event(&state, &caller, patient_id, "vitals", &input).await
}

/// Record a lab result; idempotent per event id.
#[utoipa::path(
    post,
    path = "/v1/patients/{id}/labs",
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = EventInput<LabResult>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded before with the same content (a retry)", body = ClinicalEvent),
        (status = 201, description = "Recorded", body = ClinicalEvent),
        (status = 403, description = "The role does not allow this", body = ErrorBody),
        (status = 404, description = "No such patient in the caller's clinic", body = ErrorBody),
        (status = 409, description = "The id is used by another event", body = ErrorBody),
        (status = 422, description = "Field validation failed", body = ErrorBody),
    ),
    extensions(("x-permission" = json!(Permission::WriteClinical))),
)]
pub async fn add_lab(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(patient_id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<EventInput<LabResult>>,
) -> ApiResult<(StatusCode, Json<ClinicalEvent>)> {
    caller.require(Permission::WriteClinical)?;
    input.data.validate().map_err(ApiError::Validation)?;
    record_event(&state, &caller, patient_id, "lab_result", &input).await
}
