//! The HTTP surface: routes, middleware (request ids, tracing, body limit)
//! and the JSON fallback for unknown paths.

mod auth;
mod extract;
mod health;
mod patients;
mod sync;
mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The one route with the larger body limit.
const PUSH_PATH: &str = "/v1/sync/push";

/// The documented routes. `routes!` registers each handler's route and its
/// `#[utoipa::path]` together, so the document lists exactly what is served.
fn documented(max_push: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::sign_out))
        .routes(routes!(auth::me))
        .routes(routes!(sync::enroll))
        .routes(routes!(sync::push).layer(DefaultBodyLimit::max(max_push)))
        .routes(routes!(sync::pull))
        .routes(routes!(sync::events))
        .routes(routes!(patients::list, patients::create))
        .routes(routes!(patients::get))
        .routes(routes!(patients::list_vitals, patients::add_vitals))
        .routes(routes!(patients::list_labs, patients::add_lab))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::update))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::conflicts))
}

/// The whole application, ready to serve.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let max_push = state.config.max_push_bytes;
    let body_timeout = std::time::Duration::from_secs(state.config.request_timeout_seconds);
    let (routes, api) = documented(state.config.max_push_bytes).split_for_parts();
    // Serialised once: the document is fixed for the life of the process.
    let mut doc = serde_json::to_value(crate::openapi::add_shared_responses(api))
        .expect("the OpenAPI document serialises");
    crate::openapi::add_rules(&mut doc);
    let document = Bytes::from(doc.to_string());
    routes
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
        .fallback(|| async { ApiError::NotFound("endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
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
                .layer(axum::middleware::from_fn(move |req, next| {
                    refuse_declared_length(req, next, max_body, max_push)
                }))
                // A body that stops arriving fails its request after this.
                .layer(RequestBodyTimeoutLayer::new(body_timeout))
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(state)
}

/// Refuses at once a body whose declared length is over the route's limit,
/// before a byte of it is read.
async fn refuse_declared_length(
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
    max_body: usize,
    max_push: usize,
) -> axum::response::Response {
    let limit = if req.uri().path() == PUSH_PATH {
        max_push
    } else {
        max_body
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::TooLarge.into_response();
    }
    next.run(req).await
}
