//! What must hold once every workstation has synced: read from the
//! workstations' SQLite files and the server's PostgreSQL tables directly,
//! not through the code under test.
//!
//! - nothing is pending, and every local change has the outcome the server
//!   recorded for it (and the server recorded nothing no workstation sent);
//! - every workstation has exactly the server's patient records, field by
//!   field, with the same versions, and no others;
//! - every conflict the server recorded is on every workstation, settled or
//!   open as on the server;
//! - every record of a kind on the generic tables, and every user account
//!   of the clinic, is on every workstation as on the server;
//! - nothing was silently overwritten: every field an applied edit changed
//!   is in the version that edit made on the server, or kept as a conflict
//!   with the edit's value, and every conflict settled for the losing value
//!   put that value in the record.

#![allow(dead_code)] // each test binary that includes this uses a part

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use clinic_domain::sync::PATIENT_FIELDS;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::Ws;

/// A patient record in the wire form: the demographic fields, `mrn`,
/// `status`, `merged_into` and `version`.
pub type Record = Map<String, Value>;

/// The server's patients of `clinic`, by id.
pub async fn server_patients(pool: &PgPool, clinic: Uuid) -> BTreeMap<Uuid, Record> {
    let rows: Vec<(Uuid, Value, String, Option<Uuid>, i64)> = sqlx::query_as(
        "SELECT id, data, status, merged_into, version FROM patients WHERE clinic_id = $1",
    )
    .bind(clinic)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, data, status, merged_into, version)| {
            let mut r = Record::new();
            for f in PATIENT_FIELDS.iter().chain(&["mrn"]) {
                r.insert((*f).into(), data.get(*f).cloned().unwrap_or(Value::Null));
            }
            r.insert("status".into(), json!(status));
            r.insert("merged_into".into(), json!(merged_into));
            r.insert("version".into(), json!(version));
            (id, r)
        })
        .collect()
}

/// A workstation's patients, by id, read from its file.
pub async fn local_patients(ws: &Ws) -> BTreeMap<Uuid, Record> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        mrn: String,
        family_name: String,
        given_name: String,
        middle_name: Option<String>,
        sex: String,
        birth_date: String,
        birth_date_estimated: bool,
        phones: String,
        national_id: Option<String>,
        address: Option<String>,
        emergency_contact_name: Option<String>,
        emergency_contact_phone: Option<String>,
        allergies: Option<String>,
        notes: Option<String>,
        status: String,
        merged_into: Option<String>,
        version: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, mrn, family_name, given_name, middle_name, sex, birth_date, birth_date_estimated, \
         phones, national_id, address, emergency_contact_name, emergency_contact_phone, allergies, notes, \
         status, merged_into, version FROM patients",
    )
    .fetch_all(&mut ws.raw().await)
    .await
    .unwrap();
    rows.into_iter()
        .map(|p| {
            let phones: Value = serde_json::from_str(&p.phones).unwrap();
            let merged_into = p.merged_into.map(|m| Uuid::parse_str(&m).unwrap());
            let r = json!({
                "family_name": p.family_name, "given_name": p.given_name,
                "middle_name": p.middle_name, "sex": p.sex, "birth_date": p.birth_date,
                "birth_date_estimated": p.birth_date_estimated, "phones": phones,
                "national_id": p.national_id, "address": p.address,
                "emergency_contact_name": p.emergency_contact_name,
                "emergency_contact_phone": p.emergency_contact_phone,
                "allergies": p.allergies, "notes": p.notes, "mrn": p.mrn,
                "status": p.status, "merged_into": merged_into, "version": p.version,
            });
            let Value::Object(r) = r else { unreachable!() };
            (Uuid::parse_str(&p.id).unwrap(), r)
        })
        .collect()
}

/// One outbox entry as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The client mutation id.
    pub mutation_id: Uuid,
    /// `patient.create`, `patient.update`, `patient_conflict.resolve`, ...
    pub what: String,
    /// The record it changes.
    pub entity_id: Uuid,
    /// `pending`, `applied`, `conflict` or `rejected`.
    pub status: String,
    /// What it sent.
    pub payload: Value,
}

/// A workstation's outbox, oldest first.
pub async fn outbox(ws: &Ws) -> Vec<Entry> {
    let rows: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT mutation_id, entity, op, entity_id, status, payload FROM outbox ORDER BY seq",
    )
    .fetch_all(&mut ws.raw().await)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(m, entity, op, id, status, payload)| Entry {
            mutation_id: Uuid::parse_str(&m).unwrap(),
            what: format!("{entity}.{op}"),
            entity_id: Uuid::parse_str(&id).unwrap(),
            status,
            payload: serde_json::from_str(&payload).unwrap(),
        })
        .collect()
}

/// The outcomes the server recorded for `clinic`: mutation id → status.
pub async fn server_outcomes(pool: &PgPool, clinic: Uuid) -> BTreeMap<Uuid, String> {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT mutation_id, status FROM mutation_results WHERE clinic_id = $1")
            .bind(clinic)
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

/// A conflict: (id, patient, field, losing value, settled).
type ConflictKey = (Uuid, Uuid, String, String, bool);

async fn server_conflicts(pool: &PgPool, clinic: Uuid) -> BTreeSet<ConflictKey> {
    let rows: Vec<(Uuid, Uuid, String, Value, bool)> = sqlx::query_as(
        "SELECT id, patient_id, field, client_value, resolved_at IS NOT NULL FROM patient_conflicts \
         WHERE clinic_id = $1",
    )
    .bind(clinic)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, p, f, v, r)| (id, p, f, v.to_string(), r))
        .collect()
}

async fn local_conflicts(ws: &Ws) -> BTreeSet<ConflictKey> {
    let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(
        "SELECT id, patient_id, field, client_value, resolved_at IS NOT NULL FROM patient_conflicts",
    )
    .fetch_all(&mut ws.raw().await)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, p, f, v, r)| {
            let v: Value = serde_json::from_str(&v).unwrap();
            let id = Uuid::parse_str(&id).unwrap();
            (id, Uuid::parse_str(&p).unwrap(), f, v.to_string(), r)
        })
        .collect()
}

/// Checks every invariant of the module docs for the workstations of
/// `clinic`; the error lists every difference found.
pub async fn check_converged(pool: &PgPool, clinic: Uuid, wss: &[&Ws]) -> Result<(), String> {
    let mut problems = String::new();
    let server = server_patients(pool, clinic).await;
    let outcomes = server_outcomes(pool, clinic).await;
    let conflicts = server_conflicts(pool, clinic).await;
    let mut sent = BTreeSet::new();
    let mut all = Vec::new();
    for (i, ws) in wss.iter().enumerate() {
        let entries = outbox(ws).await;
        for e in &entries {
            sent.insert(e.mutation_id);
            match outcomes.get(&e.mutation_id) {
                _ if e.status == "pending" => {
                    let _ = writeln!(
                        problems,
                        "ws{i}: {} {} still pending",
                        e.what, e.mutation_id
                    );
                }
                None => {
                    let _ = writeln!(
                        problems,
                        "ws{i}: {} {} is {} here but the server has no outcome for it",
                        e.what, e.mutation_id, e.status
                    );
                }
                Some(s) if *s != e.status => {
                    let _ = writeln!(
                        problems,
                        "ws{i}: {} {} is {} here but {s} on the server",
                        e.what, e.mutation_id, e.status
                    );
                }
                Some(_) => {}
            }
        }
        all.extend(entries);
        let local = local_patients(ws).await;
        for (id, want) in &server {
            match local.get(id) {
                None => {
                    let _ = writeln!(problems, "ws{i}: patient {id} is missing");
                }
                Some(have) if have != want => {
                    for key in want.keys() {
                        if have.get(key) != want.get(key) {
                            let _ = writeln!(
                                problems,
                                "ws{i}: patient {id} {key}: {} here, {} on the server",
                                have.get(key).unwrap_or(&Value::Null),
                                want[key]
                            );
                        }
                    }
                }
                Some(_) => {}
            }
        }
        for id in local.keys().filter(|id| !server.contains_key(id)) {
            let _ = writeln!(problems, "ws{i}: patient {id} is not on the server");
        }
        let mut mrns = BTreeSet::new();
        for r in local.values() {
            if !mrns.insert(r["mrn"].to_string()) {
                let _ = writeln!(problems, "ws{i}: MRN {} is used twice", r["mrn"]);
            }
        }
        let here = local_conflicts(ws).await;
        for c in conflicts.symmetric_difference(&here) {
            let side = if here.contains(c) {
                "here"
            } else {
                "on the server"
            };
            let _ = writeln!(problems, "ws{i}: conflict {c:?} only {side}");
        }
    }
    no_silent_overwrite(pool, clinic, &all, &mut problems).await;
    for kind in clinic_domain::record::KINDS {
        if kind.storage == clinic_domain::record::Storage::Generic {
            kind_converged(pool, clinic, kind, wss, &all, &mut problems).await;
        }
    }
    users_converged(pool, clinic, wss, &mut problems).await;
    for m in outcomes.keys().filter(|m| !sent.contains(m)) {
        let _ = writeln!(
            problems,
            "the server has an outcome for {m}, which no one sent"
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Every field an applied (or partly applied) edit changed is in the
/// version the edit made on the server, or is a conflict that kept the
/// edit's value; a conflict settled for the losing value put it in the
/// record. Edits whose every field the server already had make no version;
/// they are not checked here.
async fn no_silent_overwrite(pool: &PgPool, clinic: Uuid, sent: &[Entry], problems: &mut String) {
    let made: Vec<(Uuid, Uuid, Value)> = sqlx::query_as(
        "SELECT mutation_id, entity_id, data FROM change_log \
         WHERE clinic_id = $1 AND entity = 'patient' AND mutation_id IS NOT NULL",
    )
    .bind(clinic)
    .fetch_all(pool)
    .await
    .unwrap();
    let made: BTreeMap<(Uuid, Uuid), Value> =
        made.into_iter().map(|(m, id, d)| ((m, id), d)).collect();
    let lost: Vec<(Uuid, Uuid, String, Value)> = sqlx::query_as(
        "SELECT id, mutation_id, field, client_value FROM patient_conflicts WHERE clinic_id = $1",
    )
    .bind(clinic)
    .fetch_all(pool)
    .await
    .unwrap();
    for e in sent
        .iter()
        .filter(|e| e.status == "applied" || e.status == "conflict")
    {
        match e.what.as_str() {
            "patient.update" => {
                let version = made.get(&(e.mutation_id, e.entity_id));
                for f in e.payload["changed"].as_array().into_iter().flatten() {
                    let f = f.as_str().unwrap();
                    let value = &e.payload["fields"][f];
                    let in_version = version.is_some_and(|d| &d[f] == value);
                    let kept_as_conflict = lost
                        .iter()
                        .any(|(_, m, lf, v)| *m == e.mutation_id && lf == f && v == value);
                    if version.is_some() && !in_version && !kept_as_conflict {
                        let _ = writeln!(
                            problems,
                            "edit {} of patient {}: {f} = {value} is neither in the version it made \
                             nor kept as a conflict",
                            e.mutation_id, e.entity_id
                        );
                    }
                }
            }
            "patient_conflict.resolve"
                if e.status == "applied" && e.payload["choice"] == "client" =>
            {
                let Some((_, _, field, value)) = lost.iter().find(|(id, ..)| *id == e.entity_id)
                else {
                    let _ = writeln!(
                        problems,
                        "settled conflict {} is not on the server",
                        e.entity_id
                    );
                    continue;
                };
                let put = made
                    .iter()
                    .any(|((m, _), d)| *m == e.mutation_id && &d[field.as_str()] == value);
                if !put {
                    let _ = writeln!(
                        problems,
                        "conflict {} was settled for the losing {field} = {value}, which no version has",
                        e.entity_id
                    );
                }
            }
            _ => {}
        }
    }
}

/// Every user account of the clinic is on every workstation as the server
/// has it (a workstation may hold local accounts of its own besides).
async fn users_converged(pool: &PgPool, clinic: Uuid, wss: &[&Ws], problems: &mut String) {
    type User = (String, String, String, String, bool);
    let rows: Vec<(Uuid, String, String, String, String, bool)> = sqlx::query_as(
        "SELECT id, username, display_name, role, language, disabled FROM users WHERE clinic_id = $1",
    )
    .bind(clinic)
    .fetch_all(pool)
    .await
    .unwrap();
    let server: BTreeMap<Uuid, User> = rows
        .into_iter()
        .map(|(id, u, d, r, l, x)| (id, (u, d, r, l, x)))
        .collect();
    for (i, ws) in wss.iter().enumerate() {
        let rows: Vec<(String, String, String, String, String, bool, String)> = sqlx::query_as(
            "SELECT id, username, display_name, role, language, disabled, origin FROM users",
        )
        .fetch_all(&mut ws.raw().await)
        .await
        .unwrap();
        let local: BTreeMap<Uuid, (User, String)> = rows
            .into_iter()
            .map(|(id, u, d, r, l, x, origin)| {
                (Uuid::parse_str(&id).unwrap(), ((u, d, r, l, x), origin))
            })
            .collect();
        for (id, want) in &server {
            match local.get(id) {
                None => {
                    let _ = writeln!(problems, "ws{i}: user {id} is missing");
                }
                Some((have, origin)) if have != want || origin != "server" => {
                    let _ = writeln!(
                        problems,
                        "ws{i}: user {id} is {have:?} ({origin}) here, {want:?} on the server"
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// [`check_converged`], panicking with the differences.
pub async fn assert_converged(pool: &PgPool, clinic: Uuid, wss: &[&Ws]) {
    if let Err(p) = check_converged(pool, clinic, wss).await {
        panic!("the workstations did not converge with the server:\n{p}");
    }
}

/// Every record of a kind on the generic road: the server's are on every
/// workstation with the same fields and version, and a workstation's record
/// the server lacks is one whose create the server refused (kept, and
/// shown among the refused changes), never one lost on the way.
async fn kind_converged(
    pool: &PgPool,
    clinic: Uuid,
    kind: &clinic_domain::record::KindInfo,
    wss: &[&Ws],
    sent: &[Entry],
    problems: &mut String,
) {
    // `'a', a, 'b', b`: the fields as JSON object pairs, on either database.
    let pairs: Vec<String> = kind.fields.iter().map(|f| format!("'{f}', {f}")).collect();
    let pairs = pairs.join(", ");
    let rows: Vec<(Uuid, i64, Value)> = sqlx::query_as(&format!(
        "SELECT id, version, jsonb_build_object({pairs}) FROM {} WHERE clinic_id = $1",
        kind.table
    ))
    .bind(clinic)
    .fetch_all(pool)
    .await
    .unwrap();
    let server: BTreeMap<Uuid, (i64, Value)> =
        rows.into_iter().map(|(id, v, d)| (id, (v, d))).collect();
    let refused: BTreeSet<Uuid> = sent
        .iter()
        .filter(|e| e.what == format!("{}.create", kind.entity) && e.status == "rejected")
        .map(|e| e.entity_id)
        .collect();
    for (i, ws) in wss.iter().enumerate() {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(&format!(
            "SELECT id, version, json_object({pairs}) FROM {}",
            kind.table
        ))
        .fetch_all(&mut ws.raw().await)
        .await
        .unwrap();
        let local: BTreeMap<Uuid, (i64, Value)> = rows
            .into_iter()
            .map(|(id, v, d)| {
                (
                    Uuid::parse_str(&id).unwrap(),
                    (v, serde_json::from_str(&d).unwrap()),
                )
            })
            .collect();
        for (id, want) in &server {
            match local.get(id) {
                None => {
                    let _ = writeln!(problems, "ws{i}: {} {id} is missing", kind.entity);
                }
                Some(have) if have != want => {
                    let _ = writeln!(
                        problems,
                        "ws{i}: {} {id} is {have:?} here, {want:?} on the server",
                        kind.entity
                    );
                }
                Some(_) => {}
            }
        }
        for id in local
            .keys()
            .filter(|id| !server.contains_key(id) && !refused.contains(id))
        {
            let _ = writeln!(
                problems,
                "ws{i}: {} {id} is not on the server and was not refused",
                kind.entity
            );
        }
    }
}
