//! The clinic workstation app: a thin Tauri shell over `clinic-store`.
//!
//! `main` manages one [`state::AppState`] (the database opens in the
//! background while the window starts, then its sync engine) and lists the
//! commands; each command in [`commands`] is a few lines that call the
//! store's [`clinic_store::Workstation`], which checks roles and does the work.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod error;
mod saved_files;
mod startup;
mod state;

use tauri::Manager;
use tauri::webview::PageLoadEvent;

fn main() {
    startup::mark("main");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLINIC_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let db_arg = state::db_path_from_args(std::env::args());
    let app = tauri::Builder::default()
        .setup(move |app| {
            startup::mark("setup");
            let path = match db_arg.clone() {
                Some(p) => p,
                None => app.path().app_data_dir()?.join("clinic.db"),
            };
            // Not awaited: the window and WebKit start meanwhile, and the
            // UI's first command waits for the opening (or its error).
            app.manage(state::AppState::new(path));
            state::AppState::open_in_background(app.handle());
            // The window is created hidden and the UI shows it once its
            // first screen is rendered (`ui_show`); should the UI never
            // get that far, show it anyway.
            if let Some(window) = app.get_webview_window("main") {
                tauri::async_runtime::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    commands::show_window(&window);
                });
            }
            Ok(())
        })
        .on_page_load(|_, payload| match payload.event() {
            PageLoadEvent::Started => startup::mark("page_load_started"),
            PageLoadEvent::Finished => startup::mark("page_load_finished"),
        })
        .invoke_handler(tauri::generate_handler![
            commands::ui_show,
            commands::ui_ready,
            commands::workstation_info,
            commands::setup_admin,
            commands::new_user_problems,
            commands::sign_in,
            commands::sign_out,
            commands::current_session,
            commands::lock_session,
            commands::unlock,
            commands::activity,
            commands::set_language,
            commands::patient_search,
            commands::patient_check_duplicates,
            commands::patient_register,
            commands::patient_get,
            commands::patient_update,
            commands::patient_history,
            commands::patient_merge,
            commands::users_list,
            commands::user_create,
            commands::user_reset_password,
            commands::user_set_disabled,
            commands::audit_list,
            commands::audit_verify,
            commands::settings_set_idle_lock,
            commands::workstation_rename,
            commands::demo_load,
            commands::import_patients_csv,
            commands::import_save_rejected,
            commands::sync_status,
            commands::sync_enroll,
            commands::conflicts_list,
            commands::conflict_resolve,
            commands::refused_changes,
        ])
        .build(tauri::generate_context!())
        .expect("the Tauri runtime failed to start");
    startup::mark("built");
    app.run(|_, _| {});
}
