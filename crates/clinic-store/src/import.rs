//! Bulk patient import from CSV, through the one write path in batches.

use std::io::Read;

use clinic_domain::FieldCode;
use clinic_domain::import::{ColumnMap, ImportProgress, ImportReport, ImportRowError};
use clinic_domain::patient::PatientFields;
use serde_json::json;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::patients::today;
use crate::{Actor, Mutation};
use crate::{Result, Store, StoreError};

/// Rows committed per transaction: large enough to amortise the commit's
/// fsync and the index pages every batch rewrites (keys in random order:
/// name key, birth date, search tokens; 25,000 ran 10% faster than 10,000),
/// small enough that progress moves and memory stays flat (about 50 MB per
/// batch).
pub const BATCH_ROWS: usize = 25_000;
/// Row errors reported in full; beyond this only the count grows.
const MAX_REPORTED_ERRORS: usize = 1_000;
/// Most patients in one import mutation (one audit entry, one outbox entry):
/// a batch's transaction holds several, so that each outbox payload stays
/// far below the server's request size limit (2 MiB by default).
const MUTATION_ROWS: usize = 1_000;
/// Most (estimated) payload bytes in one import mutation.
const MUTATION_BYTES: usize = 1 << 20;

impl Store {
    /// Imports patients from UTF-8 CSV with a header row. Invalid rows are
    /// reported with their line and skipped; valid rows are registered in
    /// batches, each batch one transaction. With `dry_run`, nothing is
    /// written. `bytes_total` (the input's size, if known) and `progress`
    /// drive a progress bar.
    pub async fn import_patients(
        &self,
        actor: &Actor,
        input: impl Read,
        bytes_total: u64,
        dry_run: bool,
        mut progress: impl FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        actor.require(clinic_domain::Permission::ImportPatients)?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let header = reader
            .headers()
            .map_err(|e| {
                StoreError::field(
                    "file",
                    FieldCode::BadCsv,
                    &format!("cannot read the header: {e}"),
                )
            })?
            .clone();
        let map = ColumnMap::from_header(header.iter()).map_err(StoreError::Validation)?;
        let mut rejected = Rejected::new(&header);
        let today = today();
        let mut report = ImportReport {
            dry_run,
            ..Default::default()
        };
        let run_id = Uuid::now_v7();
        let mut conn = if dry_run {
            None
        } else {
            Some(self.bulk_connection().await?)
        };
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line();
            let more = match reader.read_record(&mut record) {
                Ok(more) => more,
                Err(e) => {
                    // A broken line (e.g. invalid UTF-8) is reported; the rest goes on.
                    report.rows += 1;
                    push_error(
                        &mut report,
                        ImportRowError {
                            line,
                            field: None,
                            code: FieldCode::Unreadable,
                            limit: None,
                            message: e.to_string(),
                        },
                    );
                    continue;
                }
            };
            if !more {
                break;
            }
            report.rows += 1;
            let fields: Vec<&str> = record.iter().collect();
            let line = record.position().map_or(line, |p| p.line());
            let refused = match map.to_input(&fields) {
                Err(e) => vec![e],
                Ok(input) => match input.validate(today) {
                    Err(errors) => errors,
                    Ok(fields) => {
                        report.imported += 1;
                        if !dry_run {
                            batch.push((Uuid::now_v7(), fields));
                        }
                        Vec::new()
                    }
                },
            };
            if !refused.is_empty() {
                rejected.add(&record, &refused);
                for e in refused {
                    let field = map_field(&e.field);
                    push_error(
                        &mut report,
                        ImportRowError {
                            line,
                            message: format!("{field} {}", e.message),
                            field: Some(field),
                            code: e.code,
                            limit: e.limit,
                        },
                    );
                }
            }
            if let Some(conn) = conn.as_mut().filter(|_| batch.len() >= BATCH_ROWS) {
                let patients = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                self.commit_import_batch(conn, actor, run_id, patients)
                    .await?;
            }
            if report.rows.is_multiple_of(1000) {
                progress(ImportProgress {
                    done: report.rows,
                    bytes_read: reader.position().byte(),
                    bytes_total,
                });
            }
        }
        if let Some(mut conn) = conn {
            if !batch.is_empty() {
                self.commit_import_batch(&mut conn, actor, run_id, batch)
                    .await?;
            }
            // Back to the usual checkpoints: the summary's commit copies
            // the import's WAL into the database file, inside the import.
            sqlx::query("PRAGMA wal_autocheckpoint = 1000")
                .execute(&mut *conn)
                .await?;
            let summary = json!({
                "import_run": run_id,
                "rows": report.rows,
                "imported": report.imported,
                "rejected_rows": report.errors.len(),
            });
            self.commit_batch_on(&mut conn, actor, vec![Mutation::ImportRun { summary }])
                .await?;
            // Closed here, not in the background on drop, so that a process
            // that exits right after the import leaves no connection open.
            conn.close().await?;
        }
        progress(ImportProgress {
            done: report.rows,
            bytes_read: bytes_total,
            bytes_total,
        });
        report.rejected_csv = rejected.finish()?;
        Ok(report)
    }

    /// Commits one batch of rows in one transaction, as import mutations of
    /// at most [`MUTATION_ROWS`] rows and about [`MUTATION_BYTES`] each.
    async fn commit_import_batch(
        &self,
        conn: &mut SqliteConnection,
        actor: &Actor,
        run_id: Uuid,
        rows: Vec<(Uuid, PatientFields)>,
    ) -> Result<()> {
        let mut mutations = Vec::new();
        let mut patients = Vec::new();
        let mut bytes = 0;
        for (id, fields) in rows {
            let size = approx_json_len(&fields);
            if !patients.is_empty()
                && (patients.len() >= MUTATION_ROWS || bytes + size > MUTATION_BYTES)
            {
                mutations.push(Mutation::PatientImport {
                    run_id,
                    patients: std::mem::take(&mut patients),
                });
                bytes = 0;
            }
            bytes += size;
            patients.push((id, fields));
        }
        if !patients.is_empty() {
            mutations.push(Mutation::PatientImport { run_id, patients });
        }
        self.commit_batch_on(conn, actor, mutations).await?;
        Ok(())
    }
}

/// About how long a patient's entry in an import payload is: its text and
/// a generous allowance for the keys, id, MRN and punctuation.
fn approx_json_len(f: &PatientFields) -> usize {
    let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    400 + f.family_name.len()
        + f.given_name.len()
        + opt(&f.middle_name)
        + f.phones.iter().map(|p| p.len() + 4).sum::<usize>()
        + opt(&f.national_id)
        + opt(&f.address)
        + opt(&f.emergency_contact_name)
        + opt(&f.emergency_contact_phone)
        + opt(&f.allergies)
        + opt(&f.notes)
}

/// The CSV column a form field came from.
fn map_field(field: &str) -> String {
    if field.starts_with("phones") {
        "phone".to_owned()
    } else {
        field.to_owned()
    }
}

/// The refused rows as a CSV to fix and import again: the file's own
/// header and rows, and an `import_error` column saying what to fix.
struct Rejected {
    writer: csv::Writer<Vec<u8>>,
    rows: usize,
}

impl Rejected {
    fn new(header: &csv::StringRecord) -> Rejected {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut head: Vec<&str> = header
            .iter()
            .filter(|h| h.trim() != clinic_domain::import::ERROR_COLUMN)
            .collect();
        head.push(clinic_domain::import::ERROR_COLUMN);
        // Writing to memory cannot fail.
        let _ = writer.write_record(&head);
        Rejected { writer, rows: 0 }
    }

    /// Adds a refused row (as many as errors are reported in full).
    fn add(&mut self, record: &csv::StringRecord, errors: &[clinic_domain::FieldError]) {
        if self.rows >= MAX_REPORTED_ERRORS {
            return;
        }
        self.rows += 1;
        let why = errors
            .iter()
            .map(|e| format!("{} {}", map_field(&e.field), e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut row: Vec<&str> = record.iter().collect();
        row.push(&why);
        let _ = self.writer.write_record(&row);
    }

    fn finish(self) -> Result<Option<String>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let bytes = self
            .writer
            .into_inner()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| StoreError::Internal(e.to_string()))
    }
}

fn push_error(report: &mut ImportReport, e: ImportRowError) {
    if report.errors.len() < MAX_REPORTED_ERRORS {
        report.errors.push(e);
    }
}
