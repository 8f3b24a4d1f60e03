//! Files the app saves for the user to open elsewhere (a CSV of refused
//! import rows): into their Downloads folder, never over an existing file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Most attempts at a free name (`name-2.csv`, `name-3.csv`, ...).
const MAX_TRIES: u32 = 1000;

/// `wanted` reduced to a safe file name: letters, digits, `.`, `-`, `_`
/// (other characters become `_`), no leading dot, at most 80 characters.
fn safe_name(wanted: &str) -> String {
    let name: String = wanted
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let name = name.trim_start_matches('.');
    if name.is_empty() {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

/// Writes `content` to a new file in `dir` named after `stem` with
/// `extension` (`patients.rejected.csv`, else `patients.rejected-2.csv`...),
/// and returns its path. An existing file is never overwritten.
pub fn save_new(
    dir: &Path,
    stem: &str,
    extension: &str,
    content: &str,
) -> std::io::Result<PathBuf> {
    let stem = safe_name(stem);
    for n in 1..=MAX_TRIES {
        let name = if n == 1 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{n}.{extension}")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(content.as_bytes())?;
                file.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free file name left",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_and_keeps_names_safe() {
        let dir = std::env::temp_dir().join(format!("clinic-saved-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = save_new(&dir, "patients.rejected", "csv", "one").unwrap();
        let b = save_new(&dir, "patients.rejected", "csv", "two").unwrap();
        assert_eq!(a.file_name().unwrap(), "patients.rejected.csv");
        assert_eq!(b.file_name().unwrap(), "patients.rejected-2.csv");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "one");
        let odd = save_new(&dir, "../../etc/passwd", "csv", "x").unwrap();
        assert_eq!(odd.parent().unwrap(), dir.as_path());
        assert_eq!(safe_name("..."), "file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
