//! Bulk patient import: mapping CSV rows to registration forms, and the
//! report the CLI and the UI show.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::patient::{PatientInput, Sex};
use crate::{FieldCode, FieldError};

/// The CSV columns, in the documented order. Only the names are required.
pub const COLUMNS: [&str; 8] = [
    "family_name",
    "given_name",
    "middle_name",
    "sex",
    "birth_date",
    "phone",
    "national_id",
    "address",
];

/// A column the importer accepts and ignores: the reason a row was refused,
/// in a file of refused rows saved to be fixed and imported again.
pub const ERROR_COLUMN: &str = "import_error";

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ImportRowError {
    /// The line in the file (the header is line 1).
    #[ts(type = "number")]
    pub line: u64,
    /// The column, when one is to blame.
    pub field: Option<String>,
    /// The rule that failed (`unreadable` for a broken line).
    pub code: FieldCode,
    /// The limit the rule names, as in [`crate::FieldError::limit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub limit: Option<u32>,
    /// What is wrong, in English (the CLI prints it).
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ImportReport {
    /// Data rows read.
    #[ts(type = "number")]
    pub rows: u64,
    /// Rows imported (or, in a dry run, that would be).
    #[ts(type = "number")]
    pub imported: u64,
    /// Rows refused, with reasons.
    pub errors: Vec<ImportRowError>,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The refused rows as CSV, to fix and import again: the file's header
    /// and each refused row as it was, with an [`ERROR_COLUMN`] saying why
    /// (the rows of the reported errors). `None` when every row was fine.
    pub rejected_csv: Option<String>,
}

/// Progress of a running import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ImportProgress {
    /// Rows processed so far.
    #[ts(type = "number")]
    pub done: u64,
    /// Bytes read so far and the file's size, for a progress bar.
    #[ts(type = "number")]
    pub bytes_read: u64,
    /// The file's size in bytes.
    #[ts(type = "number")]
    pub bytes_total: u64,
}

/// Where each documented column sits in a file's header.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    index: [Option<usize>; 8],
}

impl ColumnMap {
    /// Maps a header row; an unknown column is an error, so that a typo in
    /// a header does not silently drop a column's data. Every problem is
    /// reported at once, each as a field error on `column.<name>`: code
    /// `unknown_column` or `missing_column`. An unknown header is named
    /// only when it is shaped like a column name (`blood_group`); anything
    /// else may be a data row taken for a header, and is named by its
    /// position (`column.3`), never by its text.
    pub fn from_header<'a>(
        header: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut index = [None; 8];
        let mut problems = Vec::new();
        for (i, name) in header.into_iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}');
            match COLUMNS.iter().position(|c| *c == name) {
                Some(col) => index[col] = Some(i),
                None if name == ERROR_COLUMN => {}
                None => {
                    let named = is_column_name(name);
                    let at = if named {
                        name.to_owned()
                    } else {
                        (i + 1).to_string()
                    };
                    let message = if named {
                        format!("unknown column '{name}'; expected {}", COLUMNS.join(","))
                    } else {
                        format!(
                            "column {} has an unknown name; expected {}",
                            i + 1,
                            COLUMNS.join(",")
                        )
                    };
                    problems.push(FieldError::new(
                        format!("column.{at}"),
                        FieldCode::UnknownColumn,
                        message,
                    ));
                }
            }
        }
        for required in [0, 1] {
            if index[required].is_none() {
                problems.push(FieldError::new(
                    format!("column.{}", COLUMNS[required]),
                    FieldCode::MissingColumn,
                    format!("the header has no '{}' column", COLUMNS[required]),
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self { index })
        } else {
            Err(problems)
        }
    }

    /// Turns one record into a registration form. Values are looked up by
    /// column; a bad `sex` is reported as a field error.
    pub fn to_input<'a>(&self, record: &'a [&'a str]) -> Result<PatientInput, FieldError> {
        let get = |col: usize| -> Option<&str> {
            self.index[col]
                .and_then(|i| record.get(i).copied())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let sex = match get(3) {
            None => Sex::Unknown,
            Some(s) => Sex::parse(s).ok_or_else(|| {
                FieldError::new(
                    "sex",
                    FieldCode::UnknownSex,
                    "must be female, male, other or unknown",
                )
            })?,
        };
        Ok(PatientInput {
            family_name: get(0).unwrap_or_default().to_owned(),
            given_name: get(1).unwrap_or_default().to_owned(),
            middle_name: get(2).map(str::to_owned),
            sex: Some(sex),
            birth_date: get(4).map(str::to_owned),
            estimated_age: None,
            phones: get(5).map(|p| vec![p.to_owned()]).unwrap_or_default(),
            national_id: get(6).map(str::to_owned),
            address: get(7).map(str::to_owned),
            ..Default::default()
        })
    }
}

/// Whether a header is shaped like a column name: lower-case letters,
/// digits and `_`, as every documented column is.
fn is_column_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_may_come_in_any_order_and_subset() {
        let map = ColumnMap::from_header(["given_name", "family_name", "phone"]).unwrap();
        let input = map
            .to_input(&["Анна", "Иванова", "+7 912 000 00 00"])
            .unwrap();
        assert_eq!(input.family_name, "Иванова");
        assert_eq!(input.phones, ["+7 912 000 00 00"]);
        assert_eq!(input.sex, Some(Sex::Unknown));
    }

    #[test]
    fn every_unknown_and_missing_column_is_named_at_once() {
        let problems =
            ColumnMap::from_header(["family_name", "givenname", "Иванова Анна"]).unwrap_err();
        let got: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("column.givenname", "unknown_column"),
                // Not shaped like a column name: named by position only.
                ("column.3", "unknown_column"),
                ("column.given_name", "missing_column"),
            ]
        );
        assert!(problems.iter().all(|p| !p.message.contains("Иванова")));
        assert!(ColumnMap::from_header(["family_name"]).is_err());
        // The column a file of refused rows carries is accepted.
        assert!(ColumnMap::from_header(["family_name", "given_name", ERROR_COLUMN]).is_ok());
    }

    #[test]
    fn a_bad_sex_is_a_field_error() {
        let map = ColumnMap::from_header(COLUMNS).unwrap();
        let err = map
            .to_input(&["A", "B", "", "dragon", "", "", "", ""])
            .unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code.as_str()),
            ("sex", "unknown_sex")
        );
        assert!(!err.message.contains("dragon"));
    }
}
