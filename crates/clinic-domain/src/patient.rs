//! Patients: the registration form, its validation, the stored record and
//! the shapes search and duplicate detection return.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::codes::wire_code;
use crate::error::{FieldCode, FieldError};
use crate::{phone, text};

/// Longest accepted name part, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest accepted address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 500;
/// Longest accepted free text (allergies, notes), in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Most phone numbers one patient may have.
pub const MAX_PHONES: usize = 5;
/// Oldest accepted birth year.
pub const MIN_BIRTH_YEAR: i32 = 1900;

/// A patient's sex as recorded at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Other.
    Other,
    /// Not known or not stated.
    Unknown,
}

impl Sex {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }

    /// Parses the stored form, or the first letter as CSV files write it
    /// (`F`, `M`, `O`, `U`, and Russian `Ж`/`М`).
    pub fn parse(s: &str) -> Option<Sex> {
        match text::fold(s.trim()).as_str() {
            "female" | "f" | "ж" | "жен" | "หญิง" => Some(Sex::Female),
            "male" | "m" | "м" | "муж" | "ชาย" => Some(Sex::Male),
            "other" | "o" => Some(Sex::Other),
            "unknown" | "u" | "" => Some(Sex::Unknown),
            _ => None,
        }
    }
}

/// The oldest estimated age accepted, in years (also the API document's
/// `maximum` for `estimated_age`).
pub const MAX_ESTIMATED_AGE: u16 = 125;

/// What reception types into the registration or edit form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct PatientInput {
    /// Family name (surname), any script.
    pub family_name: String,
    /// Given name, any script.
    pub given_name: String,
    /// Middle name or patronymic, optional.
    #[serde(default)]
    pub middle_name: Option<String>,
    /// Sex.
    pub sex: Option<Sex>,
    /// Date of birth, ISO `yyyy-mm-dd`, when known.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// Estimated age in whole years, when the date of birth is not known.
    #[serde(default, deserialize_with = "crate::untrusted::optional_integer")]
    pub estimated_age: Option<u16>,
    /// Phone numbers, most useful first.
    #[serde(default)]
    pub phones: Vec<String>,
    /// National id (passport, Thai citizen id, SNILS …).
    #[serde(default)]
    pub national_id: Option<String>,
    /// Postal address, may span lines.
    #[serde(default)]
    pub address: Option<String>,
    /// Emergency contact: name and relation.
    #[serde(default)]
    pub emergency_contact_name: Option<String>,
    /// Emergency contact's phone.
    #[serde(default)]
    pub emergency_contact_phone: Option<String>,
    /// Known allergies, free text for now.
    #[serde(default)]
    pub allergies: Option<String>,
    /// Notes.
    #[serde(default)]
    pub notes: Option<String>,
}

/// A registration form that passed validation: trimmed, with empty optional
/// fields as `None` and the birth date resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatientFields {
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Middle name or patronymic.
    pub middle_name: Option<String>,
    /// Sex.
    pub sex: Sex,
    /// Date of birth; for an estimated age, 1 July of the estimated year.
    pub birth_date: NaiveDate,
    /// Whether `birth_date` comes from an estimated age.
    pub birth_date_estimated: bool,
    /// Phone numbers as typed (trimmed).
    pub phones: Vec<String>,
    /// National id, upper-cased, spaces removed.
    pub national_id: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Emergency contact.
    pub emergency_contact_name: Option<String>,
    /// Emergency contact's phone.
    pub emergency_contact_phone: Option<String>,
    /// Allergies.
    pub allergies: Option<String>,
    /// Notes.
    pub notes: Option<String>,
}

impl PatientFields {
    /// These fields as the form holds them (the birth date as a date, never
    /// as an estimated age), to check them again by the form's rules.
    pub fn to_input(&self) -> PatientInput {
        PatientInput {
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            middle_name: self.middle_name.clone(),
            sex: Some(self.sex),
            birth_date: Some(self.birth_date.format("%Y-%m-%d").to_string()),
            estimated_age: None,
            phones: self.phones.clone(),
            national_id: self.national_id.clone(),
            address: self.address.clone(),
            emergency_contact_name: self.emergency_contact_name.clone(),
            emergency_contact_phone: self.emergency_contact_phone.clone(),
            allergies: self.allergies.clone(),
            notes: self.notes.clone(),
        }
    }
}

/// Whether a field allows line breaks.
#[derive(Clone, Copy, PartialEq)]
enum Lines {
    One,
    Many,
}

/// Longest reason a merge may give.
pub const MAX_MERGE_REASON_CHARS: usize = 500;

/// Checks the reason given for merging two records (why they are one
/// person): required, trimmed, at most [`MAX_MERGE_REASON_CHARS`], line
/// breaks allowed. A merge hides a record; the history must say why.
pub fn validate_merge_reason(reason: &str) -> Result<String, Vec<FieldError>> {
    let mut c = Checker::default();
    let out = c.text("reason", reason, MAX_MERGE_REASON_CHARS, Lines::Many);
    if out.is_none() {
        c.fail("reason", FieldCode::Required, "is required");
    }
    match out {
        Some(r) if c.errors.is_empty() => Ok(r),
        _ => Err(c.errors),
    }
}

/// Collects field errors while checking a form.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, field: &str, code: FieldCode, message: &str) {
        self.errors.push(FieldError::new(field, code, message));
    }

    fn fail_limit(&mut self, field: &str, code: FieldCode, message: &str, limit: usize) {
        self.errors
            .push(FieldError::new(field, code, message).with_limit(limit));
    }

    /// Trims `value` and checks length and characters; `None` when empty.
    fn text(&mut self, field: &str, value: &str, max: usize, lines: Lines) -> Option<String> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if value.chars().count() > max {
            self.fail_limit(
                field,
                FieldCode::TooLong,
                &format!("must be at most {max} characters"),
                max,
            );
        }
        let bad = value
            .chars()
            .any(|c| c.is_control() && !(lines == Lines::Many && matches!(c, '\n' | '\r' | '\t')));
        if bad {
            self.fail(
                field,
                FieldCode::ControlChars,
                "must not contain control characters",
            );
        }
        Some(value.to_owned())
    }

    fn optional(
        &mut self,
        field: &str,
        value: &Option<String>,
        max: usize,
        lines: Lines,
    ) -> Option<String> {
        value
            .as_deref()
            .and_then(|v| self.text(field, v, max, lines))
    }

    fn required_name(&mut self, field: &str, value: &str) -> String {
        match self.text(field, value, MAX_NAME_CHARS, Lines::One) {
            Some(v) if v.chars().any(char::is_alphabetic) => v,
            Some(v) => {
                self.fail(field, FieldCode::NoLetters, "must contain letters");
                v
            }
            None => {
                self.fail(field, FieldCode::Required, "is required");
                String::new()
            }
        }
    }

    fn phone(&mut self, field: &str, value: &str) -> Option<String> {
        let v = self.text(field, value, 32, Lines::One)?;
        match phone::validate(&v) {
            Ok(()) => {}
            Err(phone::PhoneError::BadCharacters) => self.fail(
                field,
                FieldCode::PhoneChars,
                "may contain only digits, spaces, + - ( ) .",
            ),
            Err(phone::PhoneError::BadLength) => {
                self.fail(field, FieldCode::PhoneLength, "must have 6 to 15 digits")
            }
        }
        Some(v)
    }
}

impl PatientInput {
    /// Validates the form as of `today` (the caller's local date). Returns
    /// the cleaned fields, or every problem at once, each tied to its field.
    pub fn validate(&self, today: NaiveDate) -> Result<PatientFields, Vec<FieldError>> {
        let mut c = Checker::default();
        let family_name = c.required_name("family_name", &self.family_name);
        let given_name = c.required_name("given_name", &self.given_name);
        let middle_name = c.optional("middle_name", &self.middle_name, MAX_NAME_CHARS, Lines::One);

        let sex = match self.sex {
            Some(sex) => sex,
            None => {
                c.fail("sex", FieldCode::Required, "is required");
                Sex::Unknown
            }
        };

        let birth_text = self
            .birth_date
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let (birth_date, birth_date_estimated) = match (birth_text, self.estimated_age) {
            (Some(s), _) => match parse_date(s) {
                Some(d) if d > today => {
                    c.fail(
                        "birth_date",
                        FieldCode::InFuture,
                        "must not be in the future",
                    );
                    (d, false)
                }
                Some(d) if d.year() < MIN_BIRTH_YEAR => {
                    c.fail("birth_date", FieldCode::TooOld, "must be in 1900 or later");
                    (d, false)
                }
                Some(d) => (d, false),
                None => {
                    c.fail(
                        "birth_date",
                        FieldCode::BadDate,
                        "must be a date like 1980-03-21 or 21.03.1980",
                    );
                    (today, false)
                }
            },
            (None, Some(age)) => {
                let year = today.year() - i32::from(age);
                if age > MAX_ESTIMATED_AGE || year < MIN_BIRTH_YEAR {
                    c.fail(
                        "estimated_age",
                        FieldCode::OutOfRange,
                        "must be between 0 and 125 years",
                    );
                    (today, true)
                } else {
                    let date = NaiveDate::from_ymd_opt(year, 7, 1).expect("1 July exists");
                    (date.min(today), true)
                }
            }
            (None, None) => {
                c.fail(
                    "birth_date",
                    FieldCode::Required,
                    "enter a date of birth or an estimated age",
                );
                (today, false)
            }
        };

        if self.phones.len() > MAX_PHONES {
            c.fail_limit(
                "phones",
                FieldCode::TooMany,
                "at most 5 phone numbers",
                MAX_PHONES,
            );
        }
        let phones = self
            .phones
            .iter()
            .enumerate()
            .filter_map(|(i, p)| c.phone(&format!("phones.{i}"), p))
            .collect();

        let national_id = c
            .optional("national_id", &self.national_id, 32, Lines::One)
            .map(|id| crate::national_id::compact(&id));
        if let Some(id) = &national_id
            && !id.chars().all(|ch| ch.is_alphanumeric() || ch == '/')
        {
            c.fail(
                "national_id",
                FieldCode::IdChars,
                "may contain only letters and digits",
            );
        }

        let address = c.optional("address", &self.address, MAX_ADDRESS_CHARS, Lines::Many);
        let emergency_contact_name = c.optional(
            "emergency_contact_name",
            &self.emergency_contact_name,
            MAX_NAME_CHARS * 2,
            Lines::One,
        );
        let emergency_contact_phone = self
            .emergency_contact_phone
            .as_deref()
            .and_then(|p| c.phone("emergency_contact_phone", p));
        let allergies = c.optional("allergies", &self.allergies, MAX_TEXT_CHARS, Lines::Many);
        let notes = c.optional("notes", &self.notes, MAX_TEXT_CHARS, Lines::Many);

        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        Ok(PatientFields {
            family_name,
            given_name,
            middle_name,
            sex,
            birth_date,
            birth_date_estimated,
            phones,
            national_id,
            address,
            emergency_contact_name,
            emergency_contact_phone,
            allergies,
            notes,
        })
    }
}

/// Parses a date typed as `yyyy-mm-dd` or `dd.mm.yyyy` (also `dd/mm/yyyy`).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d.%m.%Y"))
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .ok()
        .filter(|d| d.year() >= 1000)
}

wire_code! {
    /// Whether a patient record is in use, or was merged into another.
    pub enum PatientStatus {
        /// The record in use.
        Active = "active",
        /// Merged into another record; kept, read-only, for history.
        Merged = "merged",
    }
}

/// A patient's stored record, as the record screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Patient {
    /// Workstation-made UUID v7.
    pub id: Uuid,
    /// Medical record number, `PPP-NNNNNN-C`.
    pub mrn: String,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Middle name or patronymic.
    pub middle_name: Option<String>,
    /// Sex.
    pub sex: Sex,
    /// Date of birth (ISO).
    pub birth_date: NaiveDate,
    /// Whether the birth date is estimated from an age.
    pub birth_date_estimated: bool,
    /// Phones.
    pub phones: Vec<String>,
    /// National id.
    pub national_id: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Emergency contact.
    pub emergency_contact_name: Option<String>,
    /// Emergency contact's phone.
    pub emergency_contact_phone: Option<String>,
    /// Allergies.
    pub allergies: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Active, or merged into `merged_into`.
    pub status: PatientStatus,
    /// The record this one was merged into.
    pub merged_into: Option<Uuid>,
    /// Row version, raised by one on every change.
    #[ts(type = "number")]
    pub version: i64,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// Who created it (user name).
    pub created_by: String,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// Who last changed it (user name).
    pub updated_by: String,
    /// The workstation that made the last change.
    pub workstation_id: Uuid,
}

/// One line of a search result or duplicate list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PatientSummary {
    /// Patient id.
    pub id: Uuid,
    /// Medical record number.
    pub mrn: String,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Middle name or patronymic.
    pub middle_name: Option<String>,
    /// Sex.
    pub sex: Sex,
    /// Date of birth (ISO).
    pub birth_date: NaiveDate,
    /// Whether the birth date is estimated.
    pub birth_date_estimated: bool,
    /// The first phone, if any.
    pub phone: Option<String>,
    /// National id.
    pub national_id: Option<String>,
}

/// Why a registration looks like an existing patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DuplicateReason {
    /// Same national id.
    NationalId,
    /// A phone number in common.
    Phone,
    /// Same name (in any script, word order or case) and birth date.
    NameAndBirthDate,
}

/// An existing patient who may be the one being registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DuplicateCandidate {
    /// The existing patient.
    pub patient: PatientSummary,
    /// Every rule that matched.
    pub reasons: Vec<DuplicateReason>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_merge_needs_a_reason() {
        use super::validate_merge_reason;
        let code = |r: &str| validate_merge_reason(r).unwrap_err()[0].code;
        assert_eq!(code("   "), FieldCode::Required);
        assert_eq!(code(&"x".repeat(501)), FieldCode::TooLong);
        assert_eq!(code("same\u{0}person"), FieldCode::ControlChars);
        assert_eq!(
            validate_merge_reason("  Registered twice:\nsame passport  ").unwrap(),
            "Registered twice:\nsame passport"
        );
    }

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn valid() -> PatientInput {
        PatientInput {
            family_name: " ใจดี ".into(),
            given_name: "สมชาย".into(),
            sex: Some(Sex::Male),
            birth_date: Some("21.03.1980".into()),
            phones: vec!["+66 81 234 5678".into(), "  ".into()],
            national_id: Some("1 1037 02345 67 1".into()),
            ..Default::default()
        }
    }

    fn codes(input: &PatientInput) -> Vec<(String, String)> {
        input
            .validate(today())
            .expect_err("input must be refused")
            .into_iter()
            .map(|e| (e.field, e.code.as_str().to_owned()))
            .collect()
    }

    #[test]
    fn a_valid_form_is_cleaned() {
        let fields = valid().validate(today()).unwrap();
        assert_eq!(fields.family_name, "ใจดี");
        assert_eq!(
            fields.birth_date,
            NaiveDate::from_ymd_opt(1980, 3, 21).unwrap()
        );
        assert_eq!(
            fields.phones,
            ["+66 81 234 5678"],
            "blank phones are dropped"
        );
        assert_eq!(fields.national_id.as_deref(), Some("1103702345671"));
    }

    #[test]
    fn each_bad_value_is_reported_beside_its_field() {
        let mut input = valid();
        input.family_name = "   ".into();
        input.given_name = "А".repeat(5000);
        input.middle_name = Some("Ив\u{0000}анович".into());
        input.birth_date = Some("2030-01-01".into());
        input.phones = vec!["12ab".into()];
        let got = codes(&input);
        let want = [
            ("family_name", "required"),
            ("given_name", "too_long"),
            ("middle_name", "control_chars"),
            ("birth_date", "in_future"),
            ("phones.0", "phone_chars"),
        ];
        for (field, code) in want {
            assert!(
                got.contains(&(field.to_owned(), code.to_owned())),
                "expected {field}:{code} in {got:?}"
            );
        }
    }

    #[test]
    fn birth_dates_before_1900_and_garbage_are_refused() {
        let mut input = valid();
        input.birth_date = Some("1899-12-31".into());
        assert_eq!(codes(&input), [("birth_date".into(), "too_old".into())]);
        input.birth_date = Some("31.02.1980".into());
        assert_eq!(codes(&input), [("birth_date".into(), "bad_date".into())]);
    }

    #[test]
    fn an_estimated_age_gives_an_estimated_birth_date() {
        let mut input = valid();
        input.birth_date = None;
        input.estimated_age = Some(40);
        let fields = input.validate(today()).unwrap();
        assert!(fields.birth_date_estimated);
        assert_eq!(fields.birth_date.year(), 1986);
        input.estimated_age = Some(300);
        assert_eq!(
            codes(&input),
            [("estimated_age".into(), "out_of_range".into())]
        );
        input.estimated_age = None;
        assert_eq!(codes(&input), [("birth_date".into(), "required".into())]);
    }

    #[test]
    fn dates_parse_in_both_common_forms() {
        let d = NaiveDate::from_ymd_opt(1980, 3, 21);
        assert_eq!(parse_date("1980-03-21"), d);
        assert_eq!(parse_date("21.03.1980"), d);
        assert_eq!(parse_date("21/03/1980"), d);
        assert_eq!(parse_date("80-03-21"), None);
    }

    #[test]
    fn sex_parses_csv_spellings() {
        assert_eq!(Sex::parse("Ж"), Some(Sex::Female));
        assert_eq!(Sex::parse("m"), Some(Sex::Male));
        assert_eq!(Sex::parse(""), Some(Sex::Unknown));
        assert_eq!(Sex::parse("x"), None);
    }
}
