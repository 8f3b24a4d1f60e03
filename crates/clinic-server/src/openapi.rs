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
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
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
                shared.push((
                    "429",
                    "Too many requests of this user (or pushes of this workstation) at once; see Retry-After",
                ));
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

/// A string with no NUL character, which the server refuses everywhere
/// (PostgreSQL cannot store it).
const NO_NUL: &str = r"^[^\x00]*$";

/// Writes into the document the rules the server enforces that the types
/// alone do not say, from the same constants the validation uses: the
/// vitals' ranges, the password's length, the display name and MRN prefix
/// patterns, and no NUL in any other text.
pub(crate) fn add_rules(doc: &mut serde_json::Value) {
    use clinic_domain::clinical::VITAL_RANGES;
    use clinic_domain::user::{
        DISPLAY_NAME_MAX, DISPLAY_NAME_PATTERN, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS,
    };
    let schemas = &mut doc["components"]["schemas"];
    schemas["PatientInput"]["properties"]["estimated_age"]["maximum"] =
        serde_json::json!(clinic_domain::patient::MAX_ESTIMATED_AGE);
    // The vitals schema, and its copy inlined into the event input.
    for (schema, field, lo, hi) in VITAL_RANGES.iter().flat_map(|(f, lo, hi)| {
        [
            ("Vitals", *f, *lo, *hi),
            ("EventInput_Vitals", *f, *lo, *hi),
        ]
    }) {
        let vitals = if schema == "Vitals" {
            &mut schemas["Vitals"]
        } else {
            &mut schemas[schema]["properties"]["data"]
        };
        if vitals.get("properties").is_none() {
            continue; // a $ref to Vitals, patched above
        }
        let p = &mut vitals["properties"][field];
        // Whole-number measurements keep integer bounds.
        let integer = p["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "integer"))
            || p["type"] == "integer";
        if integer {
            p["minimum"] = serde_json::json!(lo as i64);
            p["maximum"] = serde_json::json!(hi as i64);
        } else {
            p["minimum"] = serde_json::json!(lo);
            p["maximum"] = serde_json::json!(hi);
        }
    }
    for schema in ["NewUser", "PasswordReset"] {
        let p = &mut schemas[schema]["properties"]["password"];
        p["minLength"] = serde_json::json!(MIN_PASSWORD_CHARS);
        p["maxLength"] = serde_json::json!(MAX_PASSWORD_CHARS);
    }
    for (schema, field) in [
        ("NewUser", "display_name"),
        ("UserChange", "display_name"),
        ("EnrollRequest", "name"),
    ] {
        let p = &mut schemas[schema]["properties"][field];
        p["pattern"] = serde_json::json!(DISPLAY_NAME_PATTERN);
        // Trimmed before it is counted: surrounding spaces come on top.
        p["maxLength"] = serde_json::json!(DISPLAY_NAME_MAX);
    }
    schemas["EnrollRequest"]["properties"]["mrn_prefix"]["pattern"] =
        serde_json::json!(clinic_domain::mrn::PREFIX_PATTERN);
    forbid_nul(doc);
    bound_integers(doc);
}

/// Calls `f` on every JSON object in `v`, however deep: every schema of
/// the document, in bodies, parameters and responses alike.
fn for_each_object(
    v: &mut serde_json::Value,
    f: &mut impl FnMut(&mut serde_json::Map<String, serde_json::Value>),
) {
    match v {
        serde_json::Value::Object(map) => {
            f(map);
            for child in map.values_mut() {
                for_each_object(child, f);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                for_each_object(child, f);
            }
        }
        _ => {}
    }
}

/// Every integer schema states the range of the Rust type behind it (its
/// `format`), where a rule above has not set a narrower one: a number
/// beyond 64 bits is refused, and the document says so.
fn bound_integers(v: &mut serde_json::Value) {
    for_each_object(v, &mut |map| {
        let range = match map.get("format").and_then(|f| f.as_str()) {
            Some("int64") => Some((i64::MIN, i64::MAX)),
            Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
            _ => None,
        };
        if let Some((lo, hi)) = range {
            map.entry("minimum").or_insert(serde_json::json!(lo));
            map.entry("maximum").or_insert(serde_json::json!(hi));
        }
    });
}

/// Every string schema without a pattern, format or enum of its own gets
/// [`NO_NUL`]: bodies, parameters and responses alike.
fn forbid_nul(v: &mut serde_json::Value) {
    for_each_object(v, &mut |map| {
        let is_string = map.get("type").is_some_and(|t| {
            t == "string"
                || t.as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "string"))
        });
        let open = !["pattern", "format", "enum", "const"]
            .iter()
            .any(|k| map.contains_key(*k));
        if is_string && open {
            map.insert("pattern".into(), serde_json::json!(NO_NUL));
        }
    });
}
