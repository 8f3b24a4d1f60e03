//! Bulk patient import: mapping CSV rows to registration forms, and the
//! report the CLI and the UI show.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::patient::{PatientInput, Sex};

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

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ImportRowError {
    /// The line in the file (the header is line 1).
    #[ts(type = "number")]
    pub line: u64,
    /// The column, when one is to blame.
    pub field: Option<String>,
    /// What is wrong.
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
    /// a header does not silently drop a column's data.
    pub fn from_header<'a>(header: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut index = [None; 8];
        for (i, name) in header.into_iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}');
            match COLUMNS.iter().position(|c| *c == name) {
                Some(col) => index[col] = Some(i),
                None => {
                    return Err(format!(
                        "unknown column '{name}'; expected {}",
                        COLUMNS.join(",")
                    ));
                }
            }
        }
        for required in [0, 1] {
            if index[required].is_none() {
                return Err(format!("the header has no '{}' column", COLUMNS[required]));
            }
        }
        Ok(Self { index })
    }

    /// Turns one record into a registration form. Values are looked up by
    /// column; a bad `sex` is reported as a field error.
    pub fn to_input<'a>(&self, record: &'a [&'a str]) -> Result<PatientInput, (String, String)> {
        let get = |col: usize| -> Option<&str> {
            self.index[col]
                .and_then(|i| record.get(i).copied())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let sex = match get(3) {
            None => Sex::Unknown,
            Some(s) => {
                Sex::parse(s).ok_or_else(|| ("sex".to_owned(), format!("unknown sex '{s}'")))?
            }
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
    fn unknown_or_missing_columns_are_refused() {
        assert!(ColumnMap::from_header(["family_name", "givenname"]).is_err());
        assert!(ColumnMap::from_header(["family_name"]).is_err());
    }

    #[test]
    fn a_bad_sex_is_a_field_error() {
        let map = ColumnMap::from_header(COLUMNS).unwrap();
        let err = map
            .to_input(&["A", "B", "", "dragon", "", "", "", ""])
            .unwrap_err();
        assert_eq!(err.0, "sex");
    }
}
