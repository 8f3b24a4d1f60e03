//! Append-only clinical events: vital signs and lab results. An event is
//! never changed; a correction is a new event that names the one it amends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::error::{FieldCode, FieldError};

/// No clinical record is dated before this day: an earlier date is a typo
/// or a client's zero value, never a real measurement.
pub const EARLIEST_RECORD_DATE: chrono::NaiveDate =
    match chrono::NaiveDate::from_ymd_opt(1900, 1, 1) {
        Some(d) => d,
        None => panic!("a valid date"),
    };

/// A set of vital signs taken at one time. Every measurement is optional,
/// but at least one must be present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct Vitals {
    /// Body temperature, °C.
    #[serde(default)]
    pub temperature_c: Option<f64>,
    /// Pulse, beats per minute.
    #[serde(default, deserialize_with = "crate::untrusted::optional_integer")]
    pub pulse_bpm: Option<u16>,
    /// Systolic blood pressure, mmHg.
    #[serde(default, deserialize_with = "crate::untrusted::optional_integer")]
    pub systolic_mmhg: Option<u16>,
    /// Diastolic blood pressure, mmHg.
    #[serde(default, deserialize_with = "crate::untrusted::optional_integer")]
    pub diastolic_mmhg: Option<u16>,
    /// Respiratory rate, breaths per minute.
    #[serde(default, deserialize_with = "crate::untrusted::optional_integer")]
    pub respiratory_rate: Option<u16>,
    /// Oxygen saturation, %.
    #[serde(default, deserialize_with = "crate::untrusted::optional_integer")]
    pub spo2_pct: Option<u8>,
    /// Weight, kg.
    #[serde(default)]
    pub weight_kg: Option<f64>,
    /// Height, cm.
    #[serde(default)]
    pub height_cm: Option<f64>,
}

/// The physiologically possible range of each measurement, inclusive. The
/// validation below and the API document's `minimum`/`maximum` both come
/// from this table, so the two cannot drift.
pub const VITAL_RANGES: [(&str, f64, f64); 8] = [
    ("temperature_c", 25.0, 45.0),
    ("pulse_bpm", 20.0, 300.0),
    ("systolic_mmhg", 40.0, 300.0),
    ("diastolic_mmhg", 20.0, 200.0),
    ("respiratory_rate", 4.0, 80.0),
    ("spo2_pct", 50.0, 100.0),
    ("weight_kg", 0.3, 400.0),
    ("height_cm", 20.0, 260.0),
];

impl Vitals {
    /// Each measurement by its field name, in [`VITAL_RANGES`] order.
    fn measurements(&self) -> [(&'static str, Option<f64>); 8] {
        [
            ("temperature_c", self.temperature_c),
            ("pulse_bpm", self.pulse_bpm.map(f64::from)),
            ("systolic_mmhg", self.systolic_mmhg.map(f64::from)),
            ("diastolic_mmhg", self.diastolic_mmhg.map(f64::from)),
            ("respiratory_rate", self.respiratory_rate.map(f64::from)),
            ("spo2_pct", self.spo2_pct.map(f64::from)),
            ("weight_kg", self.weight_kg),
            ("height_cm", self.height_cm),
        ]
    }

    /// Checks every measurement against physiologically possible ranges.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut e = Vec::new();
        for ((field, value), (_, lo, hi)) in self.measurements().into_iter().zip(VITAL_RANGES) {
            if let Some(v) = value
                && !(lo..=hi).contains(&v)
            {
                e.push(FieldError::new(
                    field,
                    FieldCode::OutOfRange,
                    format!("must be between {lo} and {hi}"),
                ));
            }
        }
        if let (Some(s), Some(d)) = (self.systolic_mmhg, self.diastolic_mmhg)
            && d >= s
        {
            e.push(FieldError::new(
                "diastolic_mmhg",
                FieldCode::AboveSystolic,
                "must be below the systolic pressure",
            ));
        }
        let any = self.measurements().iter().any(|(_, v)| v.is_some());
        if !any {
            e.push(FieldError::new(
                "vitals",
                FieldCode::Required,
                "enter at least one measurement",
            ));
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}

/// One lab result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct LabResult {
    /// The test, e.g. "Haemoglobin".
    pub test: String,
    /// The result as reported, e.g. "13.5" or "negative".
    pub value: String,
    /// Unit, e.g. "g/dL".
    #[serde(default)]
    pub unit: Option<String>,
    /// Reference range as printed by the lab, e.g. "12–16".
    #[serde(default)]
    pub reference_range: Option<String>,
    /// Whether the lab flagged it abnormal.
    #[serde(default)]
    pub abnormal: bool,
}

impl LabResult {
    /// Checks lengths and control characters.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut e = Vec::new();
        let mut text = |field: &str, v: &str, required: bool, max: usize| {
            let v = v.trim();
            if required && v.is_empty() {
                e.push(FieldError::new(field, FieldCode::Required, "is required"));
            } else if v.chars().count() > max {
                e.push(
                    FieldError::new(
                        field,
                        FieldCode::TooLong,
                        format!("at most {max} characters"),
                    )
                    .with_limit(max),
                );
            } else if v.chars().any(char::is_control) {
                e.push(FieldError::new(
                    field,
                    FieldCode::ControlChars,
                    "contains control characters",
                ));
            }
        };
        text("test", &self.test, true, 200);
        text("value", &self.value, true, 200);
        text("unit", self.unit.as_deref().unwrap_or(""), false, 40);
        text(
            "reference_range",
            self.reference_range.as_deref().unwrap_or(""),
            false,
            100,
        );
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}

/// A recorded clinical event as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClinicalEvent {
    /// Made by the recording client; recording the same id twice is one event.
    pub id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// `vitals` or `lab_result`.
    pub kind: String,
    /// The measurements ([`Vitals`]) or the result ([`LabResult`]).
    pub data: serde_json::Value,
    /// The event this one corrects.
    #[serde(default)]
    pub amends_id: Option<Uuid>,
    /// When it was measured or reported.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it.
    pub recorded_by: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vitals() -> Vitals {
        Vitals {
            temperature_c: Some(36.6),
            pulse_bpm: Some(72),
            systolic_mmhg: Some(120),
            diastolic_mmhg: Some(80),
            respiratory_rate: None,
            spo2_pct: Some(98),
            weight_kg: None,
            height_cm: None,
        }
    }

    #[test]
    fn normal_vitals_pass_and_impossible_ones_are_named() {
        assert!(vitals().validate().is_ok());
        let bad = Vitals {
            temperature_c: Some(366.0),
            diastolic_mmhg: Some(130),
            ..vitals()
        };
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, vec!["temperature_c", "diastolic_mmhg"]);
    }

    #[test]
    fn empty_vitals_are_refused() {
        let none = Vitals {
            temperature_c: None,
            pulse_bpm: None,
            systolic_mmhg: None,
            diastolic_mmhg: None,
            respiratory_rate: None,
            spo2_pct: None,
            weight_kg: None,
            height_cm: None,
        };
        assert_eq!(none.validate().unwrap_err()[0].code, FieldCode::Required);
    }

    #[test]
    fn lab_results_need_a_test_and_a_value() {
        let r = LabResult {
            test: " ".into(),
            value: "13.5".into(),
            unit: Some("g/dL".into()),
            reference_range: None,
            abnormal: false,
        };
        assert_eq!(r.validate().unwrap_err()[0].field, "test");
    }
}
