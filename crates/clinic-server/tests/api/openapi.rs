//! The OpenAPI document at `/openapi.json` against the server that serves it.

use std::collections::BTreeSet;

use clinic_domain::Role;
use clinic_domain::sync::ServerPatient;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

/// Every route the server serves (besides `/openapi.json`), written out
/// here rather than read from the document, so a route missing from the
/// document or a documented route the server lacks fails the test.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("post", "/v1/auth/sign-in"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/sign-out"),
    ("get", "/v1/me"),
    ("post", "/v1/workstations"),
    ("post", "/v1/sync/push"),
    ("get", "/v1/sync/pull"),
    ("get", "/v1/sync/events"),
    ("get", "/v1/patients"),
    ("post", "/v1/patients"),
    ("get", "/v1/patients/{id}"),
    ("get", "/v1/patients/{id}/vitals"),
    ("post", "/v1/patients/{id}/vitals"),
    ("get", "/v1/patients/{id}/labs"),
    ("post", "/v1/patients/{id}/labs"),
    ("get", "/v1/users"),
    ("post", "/v1/users"),
    ("patch", "/v1/users/{id}"),
    ("post", "/v1/users/{id}/password"),
    ("get", "/v1/conflicts"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(s: &TestServer) -> Value {
    let (status, doc) = s.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    doc
}

/// A server on a fresh database with `users` (of `central`) and the
/// document it serves; the database and the server are handed back so that
/// they live as long as the test.
async fn served_document(users: &[(&str, Role)]) -> (TestDb, TestServer, Value) {
    let db = TestDb::new().await;
    for (username, role) in users {
        db.user(db.clinic_id, username, *role).await;
    }
    let s = TestServer::start(&db).await;
    let doc = document(&s).await;
    (db, s, doc)
}

/// (method, path, operation) of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op));
            }
        }
    }
    out
}

/// The component a `$ref` points at; panics when it does not exist.
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("not a local reference: {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} points at nothing"))
}

/// The properties and required properties of an object schema, through
/// `$ref` and `allOf` (serde's `flatten` becomes `allOf`).
fn object_shape(doc: &Value, schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        return object_shape(doc, resolve(doc, r));
    }
    let mut properties: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut required: BTreeSet<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|n| n.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (p, r) = object_shape(doc, part);
        properties.extend(p);
        required.extend(r);
    }
    (properties, required)
}

/// The `$ref` of an operation's JSON request body.
fn request_ref<'a>(doc: &'a Value, method: &str, path: &str) -> &'a str {
    doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path}: the request body is not a component schema"))
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn all_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => all_refs(x, out),
                }
            }
        }
        Value::Array(xs) => xs.iter().for_each(|x| all_refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_lists_exactly_the_served_routes() {
    let (_db, s, doc) = served_document(&[]).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );

    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);

    // Each documented operation is routed (not the JSON fallback, not 405),
    // and answers 401 without a token exactly when it declares a bearer
    // requirement.
    for (method, path, op) in operations(&doc) {
        let url = path.replace("{id}", &Uuid::now_v7().to_string());
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, body) = s.send(method.clone(), &url, None, Value::Null).await;
        let fallback = status == 404 && body["message"] == "endpoint not found";
        assert!(!fallback && status != 405, "{method} {path} is not served");
        let bearer = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        assert_eq!(
            status == 401,
            bearer,
            "{method} {path}: {status} without a token, bearer declared: {bearer}"
        );
    }
}

#[tokio::test]
async fn operations_name_their_permission_and_error_bodies() {
    let (_db, s, doc) = served_document(&[]).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    );
    let permissions: BTreeSet<String> = clinic_domain::Permission::ALL
        .iter()
        .map(|p| json!(p).as_str().unwrap().to_owned())
        .chain(["public", "signed_in", "per_mutation"].map(String::from))
        .collect();

    for (method, path, op) in operations(&doc) {
        let needs = op["x-permission"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no x-permission"));
        assert!(permissions.contains(needs), "{method} {path}: {needs}");
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(secured, needs != "public", "{method} {path}: security");
        assert!(
            op["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty() && !s.contains('\n')),
            "{method} {path}: no one-line summary"
        );
        // Every write of this API takes a JSON body.
        if method == "post" || method == "patch" {
            resolve(&doc, request_ref(&doc, &method, &path));
        }

        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {path}: no success response"
        );
        for must in ["500", "503"] {
            assert!(responses.contains_key(must), "{method} {path}: no {must}");
        }
        if secured {
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }
    let (properties, required) = object_shape(&doc, &json!({"$ref": "#/components/schemas/Error"}));
    assert_eq!(properties, strings(&["code", "fields", "message"]));
    assert_eq!(required, strings(&["code", "message"]));

    // An error the server really sends has that shape.
    let (status, body) = s.get("/v1/me", None).await;
    assert_eq!(status, 401);
    let keys: BTreeSet<String> = body.as_object().unwrap().keys().cloned().collect();
    assert!(
        keys.is_superset(&required) && keys.is_subset(&properties),
        "{body}"
    );

    let mut refs = Vec::new();
    all_refs(&doc, &mut refs);
    for r in refs {
        resolve(&doc, r);
    }
}

#[tokio::test]
async fn request_bodies_are_component_schemas_with_their_required_fields() {
    let (_db, _s, doc) = served_document(&[]).await;
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        (
            "post",
            "/v1/sync/push",
            "PushRequest",
            &["mutations", "workstation_id"],
        ),
        (
            "post",
            "/v1/auth/sign-in",
            "SignInRequest",
            &["clinic", "password", "username"],
        ),
        (
            "post",
            "/v1/patients",
            "PatientInput",
            &["family_name", "given_name"],
        ),
        (
            "post",
            "/v1/workstations",
            "EnrollRequest",
            &["mrn_prefix", "name", "workstation_id"],
        ),
    ];
    for (method, path, name, needed) in cases {
        let reference = request_ref(&doc, method, path);
        assert_eq!(reference, format!("#/components/schemas/{name}"));
        let schema = resolve(&doc, reference);
        let (_, required) = object_shape(&doc, schema);
        assert_eq!(required, strings(needed), "{name}");
    }

    // A push carries full mutation schemas, and refuses unknown fields as
    // the server does.
    let push = &doc["components"]["schemas"]["PushRequest"];
    assert_eq!(push["additionalProperties"], false);
    let item = &push["properties"]["mutations"]["items"]["$ref"];
    assert_eq!(item, "#/components/schemas/PushMutation");
    let (_, required) = object_shape(&doc, resolve(&doc, item.as_str().unwrap()));
    assert_eq!(
        required,
        strings(&[
            "client_seq",
            "created_at",
            "entity",
            "entity_id",
            "mutation_id",
            "op",
            "payload",
            "user_id"
        ])
    );
    // Enums carry their wire values.
    assert_eq!(
        doc["components"]["schemas"]["OutcomeStatus"]["enum"],
        json!(["applied", "conflict", "rejected"])
    );
}

#[tokio::test]
async fn patient_records_match_their_schema() {
    let (_db, s, doc) = served_document(&[("rita", Role::Reception)]).await;
    let token = s.sign_in("rita").await.access_token;
    let created = s
        .post(
            "/v1/patients",
            Some(&token),
            json!({"family_name": "Ivanova", "given_name": "Anna", "sex": "female",
                   "birth_date": "1980-03-04", "phones": ["+7 912 345-67-89"]}),
        )
        .await;
    assert_eq!(created.0, 201, "{}", created.1);
    let id = created.1["id"].as_str().unwrap();
    let fetched = s.get(&format!("/v1/patients/{id}"), Some(&token)).await;
    assert_eq!(fetched.0, 200);

    let create_201 = &doc["paths"]["/v1/patients"]["post"]["responses"]["201"];
    let get_200 = &doc["paths"]["/v1/patients/{id}"]["get"]["responses"]["200"];
    let schema = &get_200["content"]["application/json"]["schema"];
    assert_eq!(schema["$ref"], "#/components/schemas/ServerPatient");
    assert_eq!(create_201["content"]["application/json"]["schema"], *schema);
    let (properties, required) = object_shape(&doc, schema);
    for record in [&created.1, &fetched.1] {
        let keys: BTreeSet<String> = record.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, properties, "the record's keys are the schema's");
        assert!(required.is_subset(&keys));
        serde_json::from_value::<ServerPatient>(record.clone()).expect("a ServerPatient");
    }
}

/// The rules the server enforces are in the document, from the constants
/// the validation uses, and the server holds to them at the bounds.
#[tokio::test]
async fn the_document_states_the_ranges_and_lengths_the_server_enforces() {
    let (db, s, doc) = served_document(&[("nina", Role::Nurse)]).await;
    let vitals = &doc["components"]["schemas"]["Vitals"]["properties"];
    for (field, lo, hi) in clinic_domain::clinical::VITAL_RANGES {
        assert_eq!(vitals[field]["minimum"].as_f64(), Some(lo), "{field}");
        assert_eq!(vitals[field]["maximum"].as_f64(), Some(hi), "{field}");
    }
    for schema in ["NewUser", "PasswordReset"] {
        let p = &doc["components"]["schemas"][schema]["properties"]["password"];
        assert_eq!(
            p["minLength"],
            clinic_domain::user::MIN_PASSWORD_CHARS,
            "{schema}"
        );
        assert_eq!(
            p["maxLength"],
            clinic_domain::user::MAX_PASSWORD_CHARS,
            "{schema}"
        );
    }
    let after = doc["paths"]["/v1/sync/pull"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "after")
        .unwrap();
    assert_eq!(after["schema"]["minimum"], 0);
    // Every integer states both ends of its range (a client_seq beyond 64
    // bits is refused; the document said any integer).
    let mut open_ended = Vec::new();
    integers_without_bounds(&doc, "", &mut open_ended);
    assert!(
        open_ended.is_empty(),
        "integers without a range: {open_ended:?}"
    );
    let seq = &doc["components"]["schemas"]["PushMutation"]["properties"]["client_seq"];
    assert_eq!(seq["maximum"], i64::MAX, "{seq}");

    // At the bounds: accepted; one past: refused.
    let nina = s.sign_in("nina").await.access_token;
    let pid = db_patient(&db).await;
    let (_, lo, hi) = clinic_domain::clinical::VITAL_RANGES[1];
    for (pulse, status) in [(lo, 201), (hi, 201), (hi + 1.0, 422), (lo - 1.0, 422)] {
        let r = s
            .post(
                &format!("/v1/patients/{pid}/vitals"),
                Some(&nina),
                json!({"id": Uuid::now_v7(), "recorded_at": chrono::Utc::now(), "data": {"pulse_bpm": pulse as i64}}),
            )
            .await;
        assert_eq!(r.0, status, "pulse {pulse}: {}", r.1);
    }
}

/// Paths of integer schemas in `v` without a `minimum` or a `maximum`.
fn integers_without_bounds(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let integer = map.get("type").is_some_and(|t| {
                t == "integer"
                    || t.as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "integer"))
            });
            if integer && !(map.contains_key("minimum") && map.contains_key("maximum")) {
                out.push(at.to_owned());
            }
            for (k, child) in map {
                integers_without_bounds(child, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                integers_without_bounds(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A patient of the test clinic, written straight into the database.
async fn db_patient(db: &TestDb) -> Uuid {
    let pid = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO patients (id, clinic_id, mrn, data, version, created_at, created_by, updated_at, updated_by, workstation_id) \
         VALUES ($1, $2, 'KAB-000001-X', '{}', 1, now(), $1, now(), $1, $1)",
    )
    .bind(pid)
    .bind(db.clinic_id)
    .execute(&db.pool)
    .await
    .unwrap();
    pid
}
