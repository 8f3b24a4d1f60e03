//! `import_bench`: CSV patient import throughput.
//!
//! ```text
//! cargo run -p clinic-bench --release --bin import_bench -- [--rows N] [--seed S] [--dir PATH]
//! ```
//!
//! Writes a CSV of N generated patients (default 200,000, from
//! `clinic_store::demo::patients(seed)`) to a temporary file, imports it with
//! `Store::import_patients` into a fresh database and prints
//!
//! ```text
//! bench: import_patients_per_s <v> rows/s
//! ```
//!
//! For diagnosis it also times, on stderr, a dry run of the same file (CSV
//! parsing and validation only, nothing written), so the difference is the
//! cost of the write path.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use clinic_domain::import::{COLUMNS, ImportReport};
use clinic_store::{Actor, OpenOptions, Store};

const USAGE: &str = "usage: import_bench [--rows N] [--seed S] [--dir PATH]
  --rows N    patients in the CSV (default 200000)
  --seed S    generator seed (default 7)
  --dir PATH  where the CSV and the database go (default: a new directory under $TMPDIR)";

struct Options {
    rows: usize,
    seed: u64,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        rows: 200_000,
        seed: 7,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--rows" => o.rows = num(&value("--rows")?)?,
            "--seed" => o.seed = num(&value("--seed")?)?,
            "--dir" => o.dir = Some(PathBuf::from(value("--dir")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn num<T: FromStr>(s: &str) -> Result<T, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {s}"))
}

#[tokio::main]
async fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(o).await {
        eprintln!("import_bench: {e}");
        std::process::exit(1);
    }
}

async fn run(o: Options) -> Result<(), String> {
    let dir = match &o.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("clinic-import-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let csv_path = dir.join("patients.csv");
    let db_path = dir.join("import.db");
    let dry_db_path = dir.join("dry-run.db");
    for p in [&db_path, &dry_db_path] {
        for ext in ["", "-wal", "-shm"] {
            let mut f = p.as_os_str().to_owned();
            f.push(ext);
            let _ = std::fs::remove_file(PathBuf::from(f));
        }
    }

    let t = Instant::now();
    {
        let mut w = csv::Writer::from_path(&csv_path).map_err(|e| e.to_string())?;
        w.write_record(COLUMNS).map_err(|e| e.to_string())?;
        for p in clinic_store::demo::patients(o.seed).take(o.rows) {
            let sex = p.sex.map(|s| s.as_str()).unwrap_or("");
            w.write_record([
                p.family_name.as_str(),
                p.given_name.as_str(),
                p.middle_name.as_deref().unwrap_or(""),
                sex,
                p.birth_date.as_deref().unwrap_or(""),
                p.phones.first().map(String::as_str).unwrap_or(""),
                p.national_id.as_deref().unwrap_or(""),
                p.address.as_deref().unwrap_or(""),
            ])
            .map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }
    let size = std::fs::metadata(&csv_path)
        .map_err(|e| e.to_string())?
        .len();
    eprintln!(
        "wrote {} rows ({:.1} MB) to {} in {:.1} s",
        o.rows,
        size as f64 / 1e6,
        csv_path.display(),
        t.elapsed().as_secs_f64()
    );

    // Parsing and validation alone, then the real import into a fresh database.
    let ((dry, _), dry_secs) = timed_import(&dry_db_path, &csv_path, size, true).await?;
    eprintln!(
        "dry run (CSV + validation only): {} rows in {dry_secs:.2} s = {:.0} rows/s",
        dry.rows,
        dry.rows as f64 / dry_secs
    );
    let ((report, count), secs) = timed_import(&db_path, &csv_path, size, false).await?;
    if report.imported as usize != o.rows || count as usize != o.rows || !report.errors.is_empty() {
        return Err(format!(
            "expected {} rows imported, got {} (stored {count}); first error: {:?}",
            o.rows,
            report.imported,
            report.errors.first()
        ));
    }
    let db_size = std::fs::metadata(&db_path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "import: {} rows in {secs:.2} s; write path share {:.0}%; database {:.1} MB",
        report.imported,
        100.0 * (secs - dry_secs).max(0.0) / secs,
        db_size as f64 / 1e6
    );
    println!(
        "bench: import_patients_per_s {:.0} rows/s",
        report.imported as f64 / secs
    );
    if o.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Imports the CSV at `csv` into a new database at `db` and times
/// `Store::import_patients` alone. Returns the report, the number of active
/// patients stored afterwards, and the seconds taken.
async fn timed_import(
    db: &Path,
    csv: &Path,
    size: u64,
    dry_run: bool,
) -> Result<((ImportReport, i64), f64), String> {
    let store = Store::open(
        db,
        OpenOptions {
            create: true,
            exclusive: false,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let file = std::io::BufReader::new(std::fs::File::open(csv).map_err(|e| e.to_string())?);
    let actor = Actor::system("import_bench");
    let t = Instant::now();
    let report = store
        .import_patients(&actor, file, size, dry_run, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let count = store.patient_count().await.map_err(|e| e.to_string())?;
    store.close().await;
    Ok(((report, count), secs))
}
