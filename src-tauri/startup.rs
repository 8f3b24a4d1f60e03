//! Start-up timing for the cold-start benchmark (`app_bench`).
//!
//! Only when `CLINIC_READY_FILE` is set: the app notes when each start-up
//! step finished ([`mark`]), and when the UI reports its first screen painted
//! ([`report_ready`]) it writes to that file:
//!
//! ```text
//! <epoch ms when ui_ready arrived>
//! screen <sign_in|setup|shell|error>
//! mark <name> <epoch ms>        (one line per step, app and UI)
//! ```
//!
//! Without the variable every call here is a no-op.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

fn ready_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os("CLINIC_READY_FILE").map(PathBuf::from))
        .as_ref()
}

fn marks() -> &'static Mutex<Vec<(String, f64)>> {
    static MARKS: OnceLock<Mutex<Vec<(String, f64)>>> = OnceLock::new();
    MARKS.get_or_init(Mutex::default)
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Notes that the start-up step `name` finished now (benchmark runs only).
pub fn mark(name: &str) {
    if ready_file().is_some() {
        let now = epoch_ms();
        marks()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((format!("app.{name}"), now));
    }
}

/// Writes the ready file: now, the screen the UI painted, the app's marks
/// and the UI's (`ui.<name>`, epoch ms from the webview's clock).
pub fn report_ready(screen: &str, ui_marks: &BTreeMap<String, f64>) {
    let Some(file) = ready_file() else {
        return;
    };
    let now = epoch_ms();
    let mut text = format!("{now:.0}\nscreen {screen}\n");
    let app_marks = marks().lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ui = ui_marks.iter().map(|(k, v)| (format!("ui.{k}"), *v));
    for (name, ms) in app_marks.into_iter().chain(ui) {
        // Names come from our own UI; keep them one word for the reader.
        let name: String = name
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        text.push_str(&format!("mark {name} {ms:.1}\n"));
    }
    // Write then rename, so the benchmark never reads half a file.
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not write the ready file");
    }
}
