//! The OpenAPI 3.1 document served at `/openapi.json`, built from the same
//! table of endpoints as its description of who may call what. Request and
//! response bodies are described by name (see `clinic_domain::sync`); full
//! JSON schemas are a known gap (see the README).

use axum::Json;
use serde_json::{Map, Value, json};

/// (method, path, summary, permission needed or "public"/"signed in").
const ENDPOINTS: &[(&str, &str, &str, &str)] = &[
    ("get", "/health", "Liveness", "public"),
    ("get", "/ready", "Readiness: the database answers", "public"),
    (
        "post",
        "/v1/auth/sign-in",
        "Sign in: access and refresh tokens",
        "public",
    ),
    (
        "post",
        "/v1/auth/refresh",
        "Rotate a refresh token",
        "public",
    ),
    (
        "post",
        "/v1/auth/sign-out",
        "Revoke a refresh token's family",
        "public",
    ),
    ("get", "/v1/me", "The signed-in user", "signed in"),
    (
        "post",
        "/v1/workstations",
        "Enrol a workstation in the clinic",
        "manage_settings",
    ),
    (
        "post",
        "/v1/sync/push",
        "Push outbox mutations; idempotent per mutation id",
        "per mutation",
    ),
    (
        "get",
        "/v1/sync/pull",
        "A page of the clinic's change feed after a cursor",
        "read_demographics",
    ),
    (
        "get",
        "/v1/sync/events",
        "Server-sent events: the feed's newest sequence number",
        "signed in",
    ),
    (
        "get",
        "/v1/patients",
        "Find patients by MRN or name start",
        "read_demographics",
    ),
    (
        "post",
        "/v1/patients",
        "Register a patient (server-assigned MRN)",
        "write_demographics",
    ),
    (
        "get",
        "/v1/patients/{id}",
        "One patient",
        "read_demographics",
    ),
    (
        "get",
        "/v1/patients/{id}/vitals",
        "A patient's vital signs",
        "read_clinical",
    ),
    (
        "post",
        "/v1/patients/{id}/vitals",
        "Record vital signs (idempotent per id)",
        "record_vitals",
    ),
    (
        "get",
        "/v1/patients/{id}/labs",
        "A patient's lab results",
        "read_clinical",
    ),
    (
        "post",
        "/v1/patients/{id}/labs",
        "Record a lab result (idempotent per id)",
        "write_clinical",
    ),
    ("get", "/v1/users", "The clinic's users", "manage_users"),
    ("post", "/v1/users", "Create a user", "manage_users"),
    (
        "patch",
        "/v1/users/{id}",
        "Change role, name, language or disabled",
        "manage_users",
    ),
    (
        "post",
        "/v1/users/{id}/password",
        "Reset a password",
        "manage_users",
    ),
    (
        "get",
        "/v1/conflicts",
        "Open demographic conflicts",
        "write_demographics",
    ),
];

/// `GET /openapi.json`.
pub async fn document() -> Json<Value> {
    let mut paths = Map::new();
    for (method, path, summary, permission) in ENDPOINTS {
        let mut op = json!({
            "summary": summary,
            "description": format!("Requires: {permission}."),
            "responses": {
                "200": { "description": "OK" },
                "4XX": { "$ref": "#/components/responses/Error" },
                "5XX": { "$ref": "#/components/responses/Error" }
            }
        });
        if *permission != "public" {
            op["security"] = json!([{ "bearer": [] }]);
        }
        if path.contains("{id}") {
            op["parameters"] = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": "Clinic server API", "version": "1" },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": { "type": "string" },
                        "message": { "type": "string" },
                        "fields": { "type": "array", "items": { "type": "object" } }
                    }
                }
            }
        }
    }))
}
