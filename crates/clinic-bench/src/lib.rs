//! Measurements of the built workstation binary, shared by the bench binaries.
//!
//! Everything here reads Linux `/proc`; nothing links Tauri.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The app binary to measure: an explicit path, else `$CLINIC_APP_BINARY`,
/// else the release build in the shared target dir, else the debug build.
pub fn resolve_app_binary(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) =
        explicit.or_else(|| std::env::var_os("CLINIC_APP_BINARY").map(PathBuf::from))
    {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("app binary not found: {}", path.display()))
        };
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| Path::new(&home).join(".cache/clinic-workstation/target"))
        })
        .ok_or("neither CARGO_TARGET_DIR nor HOME is set")?;
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("clinic-workstation"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "no clinic-workstation binary under {}/{{release,debug}}; build it with `tauri build --no-bundle`",
                target.display()
            )
        })
}

/// Parent pid of every live process, from `/proc/<pid>/stat`.
fn parent_map() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        if let Some(ppid) = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
        {
            parents.insert(pid, ppid);
        }
    }
    parents
}

/// `root` and all its live descendants (WebKitWebProcess, WebKitNetworkProcess, ...).
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents = parent_map();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        let mut children: Vec<u32> = parents
            .iter()
            .filter(|&(_, &ppid)| ppid == parent)
            .map(|(&pid, _)| pid)
            .collect();
        children.sort_unstable();
        tree.extend(children);
        i += 1;
    }
    tree
}

/// Proportional set size of one process in kB (`Pss:` of `/proc/PID/smaps_rollup`).
pub fn pss_kb(pid: u32) -> Option<u64> {
    parse_pss_kb(&fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?)
}

fn parse_pss_kb(smaps_rollup: &str) -> Option<u64> {
    smaps_rollup.lines().find_map(|line| {
        let rest = line.strip_prefix("Pss:")?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU time a process has used so far, in ms (`/proc/PID/schedstat`, ns on CPU).
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let text = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e6)
}

/// Short name of a process (`/proc/PID/comm`).
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

/// Median of the samples (mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// What the app wrote to `CLINIC_READY_FILE` (see `src-tauri/startup.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyReport {
    /// Epoch ms at which the UI reported its first screen painted.
    pub ready_ms: f64,
    /// That screen: `sign_in`, `setup`, `shell` or `error`.
    pub screen: String,
    /// Start-up steps (`app.*` from the core, `ui.*` from the webview), epoch ms.
    pub marks: Vec<(String, f64)>,
}

/// Parses a complete ready file; `None` while it is absent or incomplete.
pub fn parse_ready(text: &str) -> Option<ReadyReport> {
    let mut lines = text.lines();
    let ready_ms = lines.next()?.trim().parse().ok()?;
    let mut screen = None;
    let mut marks = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("screen"), Some(name), None) => screen = Some(name.to_owned()),
            (Some("mark"), Some(name), Some(ms)) => {
                if let Ok(ms) = ms.parse() {
                    marks.push((name.to_owned(), ms));
                }
            }
            _ => {}
        }
    }
    Some(ReadyReport {
        ready_ms,
        screen: screen?,
        marks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ready_file() {
        let text = "1700000001000\nscreen sign_in\nmark app.main 1700000000050.5\nmark ui.mounted 1700000000900.0\n";
        let report = parse_ready(text).unwrap();
        assert_eq!(report.ready_ms, 1_700_000_001_000.0);
        assert_eq!(report.screen, "sign_in");
        assert_eq!(
            report.marks,
            vec![
                ("app.main".to_owned(), 1_700_000_000_050.5),
                ("ui.mounted".to_owned(), 1_700_000_000_900.0)
            ]
        );
        assert_eq!(parse_ready(""), None);
        assert_eq!(parse_ready("1700000001000\n"), None);
    }

    #[test]
    fn parses_pss_line() {
        let text = "55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:  20480 kB\nPss:   12345 kB\nPss_Anon: 100 kB\n";
        assert_eq!(parse_pss_kb(text), Some(12345));
        assert_eq!(parse_pss_kb("Rss: 1 kB\n"), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn own_process_tree_pss_and_cpu() {
        let me = std::process::id();
        assert_eq!(process_tree(me)[0], me);
        assert!(pss_kb(me).is_some_and(|kb| kb > 0));
        assert!(cpu_ms(me).is_some_and(|ms| ms > 0.0));
    }
}
