//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the
//! code: every handler carries a `#[utoipa::path]` that `api::router`
//! registers together with its route, and bodies are described by the wire
//! types' `ToSchema` derives (`clinic-domain`'s feature `openapi`).
//!
//! Each operation's `x-permission` names what the caller needs: a permission
//! of the role matrix, `signed_in` (any valid access token), `public` (no
//! token) or `per_mutation` (push: checked for each mutation).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, ToSchema};

use crate::error::ErrorBody;

/// The security scheme name the paths' `security(("bearer" = []))` refer to.
pub(crate) const BEARER: &str = "bearer";

/// The document's fixed parts: info, the bearer scheme and the error schema.
/// The paths come from the router (`api::documented`).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Clinic server API",
        version = "1",
        description = "REST API v1 and the sync protocol of the clinic server. \
            Errors are `{code, message}` (schema `Error`) with the HTTP status that fits. \
            `x-permission` on each operation names what the caller needs: a permission \
            of the role matrix, `signed_in`, `public` (no token) or `per_mutation`."
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme)
)]
pub(crate) struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, api: &mut OpenApi) {
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Adds the error responses every endpoint shares, so each `#[utoipa::path]`
/// lists only its own: 400/413 where there is a body or parameters to
/// refuse, 401 where a token is needed, 500/503 everywhere.
pub(crate) fn add_shared_responses(mut api: OpenApi) -> OpenApi {
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for op in operations.into_iter().flatten() {
            let has_input =
                op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let needs_token = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut shared = Vec::new();
            if has_input {
                shared.push((
                    "400",
                    "Malformed JSON, an unknown field, or a bad query or path",
                ));
            }
            if op.request_body.is_some() {
                shared.push(("413", "The request body is too large"));
            }
            if needs_token {
                shared.push(("401", "No valid access token"));
            }
            shared.push(("500", "Internal error"));
            shared.push(("503", "The database is unavailable; try again"));
            for (status, description) in shared {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
    api
}

/// An error response with the `{code, message}` body.
fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
        .into()
}
