//! The HTTP surface: routes, middleware (request ids, tracing, body limit)
//! and the JSON fallback for unknown paths.

mod auth;
mod extract;
mod health;
mod patients;
mod sync;
mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, patch, post};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application, ready to serve.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let max_push = state.config.max_push_bytes;
    let v1 = Router::new()
        .route("/auth/sign-in", post(auth::sign_in))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/sign-out", post(auth::sign_out))
        .route("/me", get(auth::me))
        .route("/workstations", post(sync::enroll))
        .route(
            "/sync/push",
            post(sync::push).layer(DefaultBodyLimit::max(max_push)),
        )
        .route("/sync/pull", get(sync::pull))
        .route("/sync/events", get(sync::events))
        .route("/patients", get(patients::list).post(patients::create))
        .route("/patients/{id}", get(patients::get))
        .route(
            "/patients/{id}/vitals",
            get(patients::list_vitals).post(patients::add_vitals),
        )
        .route(
            "/patients/{id}/labs",
            get(patients::list_labs).post(patients::add_lab),
        )
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", patch(users::update))
        .route("/users/{id}/password", post(users::reset_password))
        .route("/conflicts", get(users::conflicts));
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/openapi.json", get(crate::openapi::document))
        .nest("/v1", v1)
        .fallback(|| async { ApiError::NotFound("endpoint") })
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    // One span per request with its id, method and route
                    // template; never the query string or body.
                    TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                        let id = req
                            .headers()
                            .get(&REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        let route = req
                            .extensions()
                            .get::<axum::extract::MatchedPath>()
                            .map_or("-", |p| p.as_str());
                        tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(state)
}
