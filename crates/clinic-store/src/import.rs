//! Bulk patient import from CSV, through the one write path in batches.

use std::io::Read;

use clinic_domain::import::{ColumnMap, ImportProgress, ImportReport, ImportRowError};
use serde_json::json;
use uuid::Uuid;

use crate::patients::today;
use crate::write::{Actor, Mutation};
use crate::{Result, Store, StoreError};

/// Rows committed per transaction: large enough to amortise the commit's
/// fsync, small enough that progress moves and memory stays flat.
pub const BATCH_ROWS: usize = 5_000;
/// Row errors reported in full; beyond this only the count grows.
const MAX_REPORTED_ERRORS: usize = 1_000;

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
                StoreError::field("file", "bad_csv", &format!("cannot read the header: {e}"))
            })?
            .clone();
        let map = ColumnMap::from_header(header.iter())
            .map_err(|m| StoreError::field("file", "bad_header", &m))?;
        let today = today();
        let mut report = ImportReport {
            dry_run,
            ..Default::default()
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
            match map.to_input(&fields) {
                Err((field, message)) => {
                    push_error(
                        &mut report,
                        ImportRowError {
                            line,
                            field: Some(field),
                            message,
                        },
                    );
                }
                Ok(input) => match input.validate(today) {
                    Err(errors) => {
                        for e in errors {
                            let field = map_field(&e.field);
                            let message = format!("{field} {}", e.message);
                            push_error(
                                &mut report,
                                ImportRowError {
                                    line,
                                    field: Some(field),
                                    message,
                                },
                            );
                        }
                    }
                    Ok(fields) => {
                        report.imported += 1;
                        if !dry_run {
                            batch.push(Mutation::PatientCreate {
                                id: Uuid::now_v7(),
                                fields,
                            });
                        }
                    }
                },
            }
            if batch.len() >= BATCH_ROWS {
                self.commit_batch(actor, std::mem::take(&mut batch)).await?;
            }
            if report.rows.is_multiple_of(1000) {
                progress(ImportProgress {
                    done: report.rows,
                    bytes_read: reader.position().byte(),
                    bytes_total,
                });
            }
        }
        if !batch.is_empty() {
            self.commit_batch(actor, batch).await?;
        }
        progress(ImportProgress {
            done: report.rows,
            bytes_read: bytes_total,
            bytes_total,
        });
        if !dry_run {
            let summary = json!({ "rows": report.rows, "imported": report.imported, "rejected_rows": report.errors.len() });
            self.commit(actor, Mutation::ImportRun { summary }).await?;
        }
        Ok(report)
    }
}

/// The CSV column a form field came from.
fn map_field(field: &str) -> String {
    if field.starts_with("phones") {
        "phone".to_owned()
    } else {
        field.to_owned()
    }
}

fn push_error(report: &mut ImportReport, e: ImportRowError) {
    if report.errors.len() < MAX_REPORTED_ERRORS {
        report.errors.push(e);
    }
}
