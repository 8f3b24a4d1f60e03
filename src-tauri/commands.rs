//! The commands the UI invokes. Each is a thin wrapper: take the managed
//! workstation, call it, map the error. Roles are checked inside the core.
//! Writes need not wake the sync engine: it hears of every new outbox entry
//! from the store (`Store::outbox_changes`).

use std::collections::BTreeMap;

use clinic_domain::Permission;
use clinic_domain::audit::{AuditEntry, AuditFilter, AuditVerification, HistoryEntry};
use clinic_domain::import::ImportReport;
use clinic_domain::patient::{DuplicateCandidate, Patient, PatientInput, PatientSummary};
use clinic_domain::sync::{ConflictReview, RefusedChange, SyncStatus};
use clinic_domain::user::{Language, NewUser, Session, User};
use clinic_domain::workstation::WorkstationInfo;
use clinic_store::StoreError;
use tauri::{AppHandle, Emitter, State, WebviewWindow};
use uuid::Uuid;

use crate::error::CmdResult;
use crate::startup;
use crate::state::AppState;

/// The UI's first screen is rendered: show the window (created hidden).
///
/// Shown any earlier, WebKitGTK draws the window before the web process has
/// a frame and the app's main thread waits for one (up to 500 ms) while the
/// web process waits for that thread to serve the page's files.
#[tauri::command]
pub fn ui_show(window: WebviewWindow) {
    startup::mark("show");
    show_window(&window);
}

/// Shows `window`; a failure is only logged (the window stays as it was).
pub fn show_window(window: &WebviewWindow) {
    if let Err(e) = window.show() {
        tracing::warn!(error = %e, "could not show the window");
    }
}

/// The UI's first screen (`screen`) has painted; `marks` are the UI's
/// start-up steps in epoch ms. Only recorded for the cold-start benchmark.
#[tauri::command]
pub fn ui_ready(screen: String, marks: Option<BTreeMap<String, f64>>) {
    startup::report_ready(&screen, &marks.unwrap_or_default());
}

#[tauri::command]
pub async fn workstation_info(state: State<'_, AppState>) -> CmdResult<WorkstationInfo> {
    Ok(state.ws().await?.info().await?)
}

#[tauri::command]
pub async fn setup_admin(state: State<'_, AppState>, user: NewUser) -> CmdResult<Session> {
    Ok(state.ws().await?.setup_admin(user).await?)
}

/// The field errors a new account would get, all at once, without creating
/// it: the set-up form shows them beside a password mismatch it finds
/// itself, instead of one problem per attempt.
#[tauri::command]
pub fn new_user_problems(user: NewUser) -> Vec<clinic_domain::FieldError> {
    user.validate().err().unwrap_or_default()
}

/// Signs in: the server first, then here (the rule and its tests are in
/// `clinic_sync::sign_in`).
#[tauri::command]
pub async fn sign_in(
    state: State<'_, AppState>,
    username: String,
    password: String,
) -> CmdResult<Session> {
    let o = state.opened().await?;
    Ok(o.sync.sign_in(&o.ws, &username, &password).await?)
}

#[tauri::command]
pub async fn sign_out(state: State<'_, AppState>) -> CmdResult<()> {
    Ok(state.ws().await?.sign_out().await?)
}

#[tauri::command]
pub async fn current_session(state: State<'_, AppState>) -> CmdResult<Option<Session>> {
    Ok(state.ws().await?.current_session().await?)
}

#[tauri::command]
pub async fn lock_session(state: State<'_, AppState>) -> CmdResult<()> {
    state.ws().await?.lock();
    Ok(())
}

#[tauri::command]
pub async fn unlock(state: State<'_, AppState>, password: String) -> CmdResult<Session> {
    Ok(state.ws().await?.unlock(&password).await?)
}

#[tauri::command]
pub async fn activity(state: State<'_, AppState>) -> CmdResult<()> {
    Ok(state.ws().await?.activity()?)
}

#[tauri::command]
pub async fn set_language(state: State<'_, AppState>, language: Language) -> CmdResult<User> {
    let user = state.ws().await?.set_language(language).await?;
    Ok(user)
}

#[tauri::command]
pub async fn patient_search(
    state: State<'_, AppState>,
    query: String,
    limit: Option<u32>,
) -> CmdResult<Vec<PatientSummary>> {
    Ok(state
        .ws()
        .await?
        .patient_search(&query, limit.unwrap_or(50))
        .await?)
}

#[tauri::command]
pub async fn patient_check_duplicates(
    state: State<'_, AppState>,
    input: PatientInput,
    exclude: Option<Uuid>,
) -> CmdResult<Vec<DuplicateCandidate>> {
    Ok(state
        .ws()
        .await?
        .patient_check_duplicates(&input, exclude)
        .await?)
}

#[tauri::command]
pub async fn patient_register(
    state: State<'_, AppState>,
    input: PatientInput,
) -> CmdResult<Patient> {
    let patient = state.ws().await?.patient_register(&input).await?;
    Ok(patient)
}

#[tauri::command]
pub async fn patient_get(state: State<'_, AppState>, id: Uuid) -> CmdResult<Patient> {
    Ok(state.ws().await?.patient_get(id).await?)
}

#[tauri::command]
pub async fn patient_update(
    state: State<'_, AppState>,
    id: Uuid,
    base_version: i64,
    input: PatientInput,
) -> CmdResult<Patient> {
    let patient = state
        .ws()
        .await?
        .patient_update(id, base_version, &input)
        .await?;
    Ok(patient)
}

#[tauri::command]
pub async fn patient_history(state: State<'_, AppState>, id: Uuid) -> CmdResult<Vec<HistoryEntry>> {
    Ok(state.ws().await?.patient_history(id).await?)
}

#[tauri::command]
pub async fn patient_merge(
    state: State<'_, AppState>,
    keep_id: Uuid,
    merge_id: Uuid,
    reason: String,
) -> CmdResult<Patient> {
    let patient = state
        .ws()
        .await?
        .patient_merge(keep_id, merge_id, &reason)
        .await?;
    Ok(patient)
}

#[tauri::command]
pub async fn users_list(state: State<'_, AppState>) -> CmdResult<Vec<User>> {
    Ok(state.ws().await?.users_list().await?)
}

#[tauri::command]
pub async fn user_create(state: State<'_, AppState>, user: NewUser) -> CmdResult<User> {
    let user = state.ws().await?.user_create(user).await?;
    Ok(user)
}

#[tauri::command]
pub async fn user_reset_password(
    state: State<'_, AppState>,
    id: Uuid,
    password: String,
) -> CmdResult<()> {
    state.ws().await?.user_reset_password(id, &password).await?;
    Ok(())
}

#[tauri::command]
pub async fn user_set_disabled(
    state: State<'_, AppState>,
    id: Uuid,
    disabled: bool,
) -> CmdResult<User> {
    let user = state.ws().await?.user_set_disabled(id, disabled).await?;
    Ok(user)
}

#[tauri::command]
pub async fn audit_list(
    state: State<'_, AppState>,
    filter: AuditFilter,
) -> CmdResult<Vec<AuditEntry>> {
    Ok(state.ws().await?.audit_list(&filter).await?)
}

#[tauri::command]
pub async fn audit_verify(state: State<'_, AppState>) -> CmdResult<AuditVerification> {
    Ok(state.ws().await?.audit_verify().await?)
}

#[tauri::command]
pub async fn settings_set_idle_lock(
    state: State<'_, AppState>,
    minutes: u32,
) -> CmdResult<WorkstationInfo> {
    let info = state
        .ws()
        .await?
        .settings_update(None, Some(minutes))
        .await?;
    Ok(info)
}

#[tauri::command]
pub async fn workstation_rename(
    state: State<'_, AppState>,
    name: String,
) -> CmdResult<WorkstationInfo> {
    let info = state.ws().await?.settings_update(Some(name), None).await?;
    Ok(info)
}

#[tauri::command]
pub async fn demo_load(state: State<'_, AppState>) -> CmdResult<u64> {
    let n = state.ws().await?.demo_load().await?;
    Ok(n)
}

#[tauri::command]
pub async fn import_patients_csv(
    app: AppHandle,
    state: State<'_, AppState>,
    csv: String,
    dry_run: bool,
) -> CmdResult<ImportReport> {
    let report = state
        .ws()
        .await?
        .import_csv(&csv, dry_run, |p| {
            // Progress is best-effort: a window that went away loses nothing.
            let _ = app.emit("import-progress", p);
        })
        .await?;
    Ok(report)
}

/// Saves the refused rows of an import (the report's `rejected_csv`) as a
/// new file in the user's Downloads folder (else their home folder), named
/// after the imported file; returns where it went.
#[tauri::command]
pub async fn import_save_rejected(
    app: AppHandle,
    state: State<'_, AppState>,
    csv: String,
    file_name: String,
) -> CmdResult<String> {
    use tauri::Manager;
    state.ws().await?.check_signed_in()?;
    let dir = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    let stem = file_name.trim_end_matches(".csv").trim_end_matches(".CSV");
    let path = crate::saved_files::save_new(&dir, &format!("{stem}.rejected"), "csv", &csv)
        .map_err(StoreError::Io)?;
    Ok(path.display().to_string())
}

/// The sync status now (any signed-in user); changes also arrive as the
/// `sync-status` event.
#[tauri::command]
pub async fn sync_status(state: State<'_, AppState>) -> CmdResult<SyncStatus> {
    let o = state.opened().await?;
    o.ws.check_signed_in()?;
    let status = o.sync.status().borrow().clone();
    Ok(status)
}

/// Enrols this workstation with the clinic's server (admin only): the
/// address must be https, or plain http to this computer.
#[tauri::command]
pub async fn sync_enroll(
    state: State<'_, AppState>,
    server_url: String,
    clinic_code: String,
    username: String,
    password: String,
) -> CmdResult<()> {
    let o = state.opened().await?;
    let actor = o.ws.authorize(Some(Permission::ManageSettings))?;
    let url = clinic_store::sync::check_server_url(&server_url)?;
    o.sync
        .enroll(&actor, &url, &clinic_code, &username, &password)
        .await?;
    Ok(())
}

/// Sync conflicts waiting for reception, with their patients.
#[tauri::command]
pub async fn conflicts_list(state: State<'_, AppState>) -> CmdResult<Vec<ConflictReview>> {
    Ok(state.ws().await?.conflicts_list().await?)
}

/// Changes made here that the server refused, newest first, with reasons.
#[tauri::command]
pub async fn refused_changes(state: State<'_, AppState>) -> CmdResult<Vec<RefusedChange>> {
    Ok(state.ws().await?.refused_changes().await?)
}

/// Settles a conflict: `keep_client` uses the value that lost instead of the
/// server's.
#[tauri::command]
pub async fn conflict_resolve(
    state: State<'_, AppState>,
    id: Uuid,
    keep_client: bool,
) -> CmdResult<()> {
    state.ws().await?.conflict_resolve(id, keep_client).await?;
    Ok(())
}
