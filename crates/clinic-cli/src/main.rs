//! `clinic`: the headless command-line tool over the workstation store.
//!
//! ```text
//! clinic --db PATH import-patients FILE.csv [--dry-run]
//! clinic --db PATH search QUERY [--json] [--limit N]
//! clinic --db PATH audit verify
//! clinic --db PATH backup FILE
//! clinic --db PATH restore FILE
//! ```
//!
//! Exit codes: 0 done; 1 failed (or, for `audit verify`, the chain is
//! broken); 2 the input file cannot be read or its header is wrong, or the
//! command line is malformed.
//!
//! Who is the actor? The CLI has no sign-in: whoever runs it can read and
//! write the database file directly anyway, so signing in would protect
//! nothing. Writes are made as `Actor { user_id: None, name: "cli: <os
//! user>", role: Admin }`, so every imported row is audited as `cli: <user>`.
//!
//! Only `import-patients` creates a missing database; every other command
//! refuses a missing file instead of creating an empty one. The store is
//! opened without the app lock, so `backup` works while the app is running.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use clinic_domain::Role;
use clinic_domain::import::{ColumnMap, ImportProgress, ImportReport};
use clinic_domain::patient::PatientSummary;
use clinic_store::{Actor, OpenOptions, Store, StoreError};

/// Row errors printed after an import; the rest are counted.
const MAX_PRINTED_ERRORS: usize = 50;

#[derive(Debug, Parser)]
#[command(
    name = "clinic",
    version,
    about = "Clinic workstation command-line tool"
)]
struct Cli {
    /// The workstation database file.
    #[arg(long, value_name = "PATH", global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import patients from a UTF-8 CSV file with a header row
    /// (family_name,given_name,middle_name,sex,birth_date,phone,national_id,address).
    ImportPatients {
        /// The CSV file.
        file: PathBuf,
        /// Check every row and report, but write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Search patients by name parts, MRN, phone or birth date.
    Search {
        /// What to look for.
        query: String,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Most results to show (1-100).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write a consistent copy of the database to FILE (works while the app runs).
    Backup {
        /// The backup file to create; it must not exist.
        file: PathBuf,
    },
    /// Replace the database with a checked backup; the previous file is kept beside it.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and report the first broken entry.
    Verify,
}

/// A problem with the input file itself (unreadable, wrong header): exit 2.
#[derive(Debug)]
struct InputFileError(String);

impl std::fmt::Display for InputFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputFileError {}

/// Writes a line to stdout; a closed pipe (`clinic … | head`) is not an error.
fn out(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(std::io::stderr().lock(), "error: {err:#}");
            if err.downcast_ref::<InputFileError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = cli
        .db
        .ok_or_else(|| anyhow!("--db PATH is required: the workstation database file"))?;
    match cli.command {
        Command::ImportPatients { file, dry_run } => import_patients(&db, &file, dry_run).await,
        Command::Search { query, json, limit } => search(&db, &query, json, limit).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => audit_verify(&db).await,
        Command::Backup { file } => backup(&db, &file).await,
        Command::Restore { file } => restore(&db, &file).await,
    }
}

/// A store error as a readable message: validation errors list their fields.
fn store_err(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Validation(fields) => anyhow!(
            "{}",
            fields
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow!(other),
    }
}

/// Opens an existing database; a missing file is an error, never a new database.
async fn open_existing(db: &Path) -> anyhow::Result<Store> {
    if !db.exists() {
        bail!(
            "no database at {}: check --db (only import-patients creates one)",
            db.display()
        );
    }
    Store::open(
        db,
        OpenOptions {
            create: false,
            exclusive: false,
        },
    )
    .await
    .map_err(store_err)
}

/// The audit name of whoever runs the CLI.
fn cli_actor() -> Actor {
    let user = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    Actor {
        user_id: None,
        name: format!("cli: {user}"),
        role: Role::Admin,
    }
}

/// Checks the CSV header before anything touches the database, so that a
/// wrong file creates no database and exits 2.
fn check_header(file: &Path) -> anyhow::Result<()> {
    let f = File::open(file)
        .map_err(|e| InputFileError(format!("cannot read {}: {e}", file.display())))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BufReader::new(f));
    let header = reader.headers().map_err(|e| {
        InputFileError(format!("cannot read the header of {}: {e}", file.display()))
    })?;
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(
            InputFileError(format!("{} is empty or has no header row", file.display())).into(),
        );
    }
    ColumnMap::from_header(header.iter()).map_err(|problems| {
        let each: Vec<String> = problems.into_iter().map(|p| p.message).collect();
        InputFileError(format!(
            "wrong header in {}: {}",
            file.display(),
            each.join("; ")
        ))
    })?;
    Ok(())
}

/// Progress on stderr: an updating line on a terminal, else one line per 10%.
struct Progress {
    tty: bool,
    last_decile: u64,
}

impl Progress {
    fn report(&mut self, p: ImportProgress) {
        let pct = (p.bytes_read.saturating_mul(100))
            .checked_div(p.bytes_total)
            .unwrap_or(100)
            .min(100);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\rprocessed {} rows ({pct}%)", p.done);
            let _ = err.flush();
        } else if pct / 10 > self.last_decile {
            self.last_decile = pct / 10;
            let _ = writeln!(err, "processed {} rows ({pct}%)", p.done);
        }
    }

    fn finish(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr().lock());
        }
    }
}

async fn import_patients(db: &Path, file: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    check_header(file)?;
    let input = File::open(file)
        .map_err(|e| InputFileError(format!("cannot read {}: {e}", file.display())))?;
    let bytes_total = input.metadata().map(|m| m.len()).unwrap_or(0);

    // A dry run writes nothing, not even a new database: without one it
    // checks the rows against a throwaway database in the temp directory.
    let scratch = (dry_run && !db.exists())
        .then(|| std::env::temp_dir().join(format!("clinic-dry-run-{}.db", std::process::id())));
    let path = scratch.as_deref().unwrap_or(db);
    let store = Store::open(
        path,
        OpenOptions {
            create: true,
            exclusive: false,
        },
    )
    .await
    .map_err(store_err)?;

    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        last_decile: 0,
    };
    let result = store
        .import_patients(
            &cli_actor(),
            BufReader::with_capacity(1 << 16, input),
            bytes_total,
            dry_run,
            |p| progress.report(p),
        )
        .await;
    progress.finish();
    store.close().await;
    if let Some(scratch) = &scratch {
        for ext in ["", "-wal", "-shm"] {
            let mut p = scratch.as_os_str().to_owned();
            p.push(ext);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
    let report = match result {
        Ok(report) => report,
        // The header was checked above; a bad file found here is still the file's fault.
        Err(StoreError::Validation(fields)) if fields.iter().any(|f| f.field == "file") => {
            let msg = fields
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(InputFileError(format!("{}: {msg}", file.display())).into());
        }
        Err(e) => return Err(store_err(e).context(format!("import of {} failed", file.display()))),
    };
    print_report(&report);
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &ImportReport) {
    if report.dry_run {
        out("dry run: nothing was written");
    }
    out(format_args!("rows: {}", report.rows));
    out(format_args!("imported: {}", report.imported));
    out(format_args!("rejected: {}", report.rows - report.imported));
    for e in report.errors.iter().take(MAX_PRINTED_ERRORS) {
        match &e.field {
            Some(field) => {
                // The store words messages as "<field> <problem>"; say the field once.
                let msg = e
                    .message
                    .strip_prefix(&format!("{field} "))
                    .unwrap_or(&e.message);
                out(format_args!("line {}: {field}: {msg}", e.line));
            }
            None => out(format_args!("line {}: {}", e.line, e.message)),
        }
    }
    if report.errors.len() > MAX_PRINTED_ERRORS {
        out(format_args!(
            "… and {} more",
            report.errors.len() - MAX_PRINTED_ERRORS
        ));
    }
}

async fn search(db: &Path, query: &str, json: bool, limit: u32) -> anyhow::Result<ExitCode> {
    let store = open_existing(db).await?;
    let found = store.search(query, limit).await.map_err(store_err);
    store.close().await;
    let found = found?;
    if json {
        out(serde_json::to_string_pretty(&found).context("cannot write JSON")?);
    } else if found.is_empty() {
        out("no patients found");
    } else {
        print_table(&found);
    }
    Ok(ExitCode::SUCCESS)
}

/// Display width: Thai vowel and tone marks and combining diacritics take no column.
fn width(s: &str) -> usize {
    s.chars()
        .filter(|&c| {
            !matches!(c, '\u{0300}'..='\u{036F}' | '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}')
        })
        .count()
}

fn print_table(rows: &[PatientSummary]) {
    let header = [
        "MRN",
        "Family name",
        "Given name",
        "Middle name",
        "Birth date",
        "Sex",
        "Phone",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|p| {
            [
                p.mrn.clone(),
                p.family_name.clone(),
                p.given_name.clone(),
                p.middle_name.clone().unwrap_or_default(),
                format!(
                    "{}{}",
                    p.birth_date,
                    if p.birth_date_estimated {
                        " (est.)"
                    } else {
                        ""
                    }
                ),
                p.sex.as_str().to_owned(),
                p.phone.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(width);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
    let line = |row: &[&str]| {
        let mut s = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            if i + 1 < row.len() {
                s.push_str(&" ".repeat(w - width(c)));
            }
        }
        s.trim_end().to_owned()
    };
    out(line(&header));
    out(line(
        &widths
            .map(|w| "-".repeat(w))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    for row in &cells {
        out(line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out(format_args!("{} patient(s)", rows.len()));
}

async fn audit_verify(db: &Path) -> anyhow::Result<ExitCode> {
    let store = open_existing(db).await?;
    let v = store.verify_audit().await.map_err(store_err);
    store.close().await;
    let v = v?;
    match v.first_bad_seq {
        None => {
            out(format_args!("audit chain intact: {} entries", v.entries));
            Ok(ExitCode::SUCCESS)
        }
        Some(seq) => {
            out(format_args!(
                "audit chain BROKEN at entry {seq}: {}",
                v.problem.as_deref().unwrap_or("unknown problem")
            ));
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn backup(db: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let store = open_existing(db).await?;
    let done = store.backup_to(file).await.map_err(store_err);
    store.close().await;
    done.with_context(|| format!("backup to {} failed", file.display()))?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    out(format_args!(
        "backup written to {} ({size} bytes)",
        file.display()
    ));
    Ok(ExitCode::SUCCESS)
}

async fn restore(db: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    if !file.is_file() {
        bail!("backup file {} does not exist", file.display());
    }
    let kept = clinic_store::backup::restore(db, file)
        .await
        .map_err(store_err)
        .with_context(|| format!("restore of {} from {} failed", db.display(), file.display()))?;
    out(format_args!(
        "restored {} from {}",
        db.display(),
        file.display()
    ));
    match kept {
        Some(kept) => out(format_args!(
            "the previous database was kept as {}",
            kept.display()
        )),
        None => out(format_args!(
            "there was no previous database at {}",
            db.display()
        )),
    }
    Ok(ExitCode::SUCCESS)
}
