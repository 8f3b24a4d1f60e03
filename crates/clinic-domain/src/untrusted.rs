//! Rules for input from outside the process (an HTTP body, a pushed
//! mutation, a query string): what may be said back about it, and the text
//! no database may receive.
//!
//! A decoder's message often quotes the value it could not read (serde's
//! "unknown variant `Ivanova Maria`"); such a message would carry patient
//! data into stored outcomes and logs. [`describe_decode_error`] keeps the
//! field path, the rule and what was expected (all from the schema), and
//! drops every value.

use serde_json::Value;

/// The prefix axum puts before the serde message of a JSON body.
const AXUM_PREFIXES: [&str; 3] = [
    "Failed to deserialize the JSON body into the target type: ",
    "Failed to parse the request body as JSON: ",
    "Failed to deserialize query string: ",
];

/// Messages whose quoted name comes from the schema, never from the input.
const NAMED_FROM_SCHEMA: [&str; 2] = ["missing field `", "duplicate field `"];

/// A decoder's message (serde, serde_json, axum's rejections) with every
/// value taken out: the field path, the rule and what was expected stay.
///
/// `unknown variant `Ivanova`, expected one of `female`, `male`` becomes
/// `unknown variant, expected one of `female`, `male``.
pub fn describe_decode_error(message: &str) -> String {
    let mut rest = message.trim();
    for p in AXUM_PREFIXES {
        if let Some(r) = rest.strip_prefix(p) {
            rest = r;
        }
    }
    // serde_json's position suffix names no value.
    let (body, position) = match rest.rfind(" at line ") {
        Some(i) if rest[i..].contains(" column ") => (&rest[..i], &rest[i..]),
        _ => (rest, ""),
    };
    // serde_path_to_error (axum) puts `path: ` first; a path is field names
    // and indices only.
    let (path, body) = match body.split_once(": ") {
        Some((p, b)) if is_path(p) => (Some(p), b),
        _ => (None, body),
    };
    let rule = if NAMED_FROM_SCHEMA.iter().any(|p| body.starts_with(p))
        || unknown_field_name(body).is_some_and(looks_like_field_name)
    {
        // The name is cut at its closing backtick; nothing follows it.
        match body.match_indices('`').nth(1) {
            Some((end, _)) => body[..=end].to_owned(),
            None => "malformed".to_owned(),
        }
    } else {
        let (head, expected) = match body.find(", expected ") {
            Some(i) => (&body[..i], Some(&body[i + 2..])),
            None => (body, None),
        };
        let head = head
            .split(|c: char| matches!(c, '`' | '"' | '\'' | ':') || c.is_ascii_digit())
            .next()
            .unwrap_or("")
            .trim();
        let head = if head.is_empty() { "malformed" } else { head };
        // What was expected comes from the type, up to a decoder's "found".
        match expected.map(|e| e.split(", found").next().unwrap_or(e)) {
            Some(e) => format!("{head}, {e}"),
            None => head.to_owned(),
        }
    };
    match path {
        Some(p) => format!("{p}: {rule}{position}"),
        None => format!("{rule}{position}"),
    }
}

/// The name in serde's "unknown field `name`, expected ...".
fn unknown_field_name(body: &str) -> Option<&str> {
    body.strip_prefix("unknown field `")?.split('`').next()
}

/// An unknown field is named back when it is shaped like a field name
/// (`is_admin`), which helps an integrator; anything else (a name, a
/// number) could be data sent as a key, and is left out.
fn looks_like_field_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '?'))
}

/// Whether any string in `value` (keys included) holds a NUL character,
/// which PostgreSQL's text and jsonb cannot store.
pub fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Whether a JSON text holds an escaped NUL (`\u0000`) in a string. A raw
/// NUL byte is not valid JSON at all, so this finds every NUL a decoder
/// would produce, without decoding.
pub fn json_text_has_nul(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' {
            // An escape: `\u0000` is a NUL; any other escape is skipped
            // whole, so `\\u0000` (a backslash, then text) is not.
            if text.get(i + 1) == Some(&b'u') && text[i + 2..].len() >= 4 {
                if text[i + 2..i + 6].iter().all(|b| *b == b'0') {
                    return true;
                }
                i += 6;
            } else {
                i += 2;
            }
        } else {
            i += 1;
        }
    }
    false
}

/// An integer as JSON Schema counts one: `190` or `190.0` (a number whose
/// fraction is zero), so a client that writes integers as floats is not
/// refused for a value the document allows.
pub fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        // Strictly inside ±2^63: a literal just beyond the range (which
        // did not fit i64, so came here as a float) rounds to exactly
        // ±2^63 and is refused, not clamped to the nearest end.
        Some(f) if f.fract() == 0.0 && f > i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(D::Error::custom(
            // The part after ", expected" is kept whole by
            // describe_decode_error; the part before is cut at a digit.
            "not a whole number, expected a whole number in the signed 64-bit range",
        )),
    }
}

/// [`integer`] into a narrower type (`u16`, `u8`, `i64`...), or `null`;
/// a whole number outside the type's range is refused.
pub fn optional_integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    #[derive(serde::Deserialize)]
    struct Whole(#[serde(deserialize_with = "integer")] i64);
    let v: Option<Whole> = serde::Deserialize::deserialize(d)?;
    v.map(|w| T::try_from(w.0).map_err(|_| D::Error::custom("the whole number is out of range")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Patient {
        sex: Sex,
        height: u16,
        name: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Sex {
        Female,
        Male,
    }

    fn message(json: &str) -> String {
        let e = serde_json::from_str::<Patient>(json).unwrap_err();
        describe_decode_error(&e.to_string())
    }

    #[test]
    fn a_whole_number_written_as_a_float_is_whole() {
        #[derive(Debug, Deserialize)]
        struct Seq(#[serde(deserialize_with = "integer")] i64);
        // Parsed lossily, this lands half a unit off and reads as a fraction.
        for (json, n) in [
            ("4214157169231962.0", 4_214_157_169_231_962),
            ("190.0", 190),
            ("-24562529896.0", -24_562_529_896),
        ] {
            assert_eq!(serde_json::from_str::<Seq>(json).unwrap().0, n, "{json}");
        }
        let e = serde_json::from_str::<Seq>("1.5").unwrap_err();
        assert_eq!(
            describe_decode_error(&e.to_string()),
            "not a whole number, expected a whole number in the signed 64-bit range"
        );
        assert!(serde_json::from_str::<Seq>("1e19").is_err());
    }

    #[test]
    fn no_submitted_value_survives() {
        for (json, secret) in [
            (
                r#"{"sex":"Ivanova Maria 1980-03-21","height":1,"name":"x"}"#,
                "Ivanova",
            ),
            (r#"{"sex":"male","height":"Ivanova","name":"x"}"#, "Ivanova"),
            (r#"{"sex":"male","height":70000,"name":"x"}"#, "70000"),
            (
                r#"{"sex":"male","height":1,"name":"x","Ivanova":1}"#,
                "Ivanova",
            ),
            (r#"{"sex":"male","height":1,"name":12345678}"#, "12345678"),
        ] {
            let m = message(json);
            assert!(!m.contains(secret), "{m}");
            assert!(!m.is_empty());
        }
    }

    #[test]
    fn the_rule_and_what_was_expected_stay() {
        assert_eq!(
            message(r#"{"sex":"Ivanova","height":1,"name":"x"}"#),
            "unknown variant, expected `female` or `male` at line 1 column 16"
        );
        assert_eq!(
            message(r#"{"sex":"male","height":1}"#),
            "missing field `name` at line 1 column 25"
        );
        assert_eq!(
            describe_decode_error(
                "Failed to deserialize the JSON body into the target type: sex: unknown variant `Ivanova`, \
                 expected `female` or `male` at line 1 column 16"
            ),
            "sex: unknown variant, expected `female` or `male` at line 1 column 16"
        );
        assert_eq!(
            describe_decode_error("invalid type: string \"Ivanova\", expected u16"),
            "invalid type, expected u16"
        );
        assert_eq!(
            message(r#"{"sex":"male","height":1,"name":"x","is_admin":true}"#),
            "unknown field `is_admin` at line 1 column 46"
        );
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        #[derive(Deserialize)]
        struct Seq {
            #[serde(deserialize_with = "integer")]
            a: i64,
            #[serde(default, deserialize_with = "optional_integer")]
            b: Option<i64>,
            #[serde(default, deserialize_with = "optional_integer")]
            c: Option<u16>,
        }
        let s: Seq = serde_json::from_str(r#"{"a": 190.0, "b": 7, "c": 40.0}"#).unwrap();
        assert_eq!((s.a, s.b, s.c), (190, Some(7), Some(40)));
        assert!(serde_json::from_str::<Seq>(r#"{"a": 1, "c": 70000}"#).is_err());
        let s: Seq = serde_json::from_str(r#"{"a": -3, "b": null}"#).unwrap();
        assert_eq!((s.a, s.b), (-3, None));
        assert!(serde_json::from_str::<Seq>(r#"{"a": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Seq>(r#"{"a": 1e300}"#).is_err());
    }

    #[test]
    fn nul_is_found_in_values_keys_and_escaped_text() {
        assert!(contains_nul(
            &serde_json::json!({"a": ["x", "fe\u{0}male"]})
        ));
        assert!(contains_nul(&serde_json::json!({"a\u{0}": 1})));
        assert!(!contains_nul(&serde_json::json!({"a": ["x", 1, null]})));
        assert!(json_text_has_nul(br#"{"sex":"fe\u0000male"}"#));
        assert!(!json_text_has_nul(br#"{"sex":"fe\\u0000male"}"#));
        assert!(!json_text_has_nul(br#"{"sex":"\u00e9"}"#));
        assert!(json_text_has_nul(br#"{"sex":"\\\u0000"}"#));
    }

    #[test]
    fn a_whole_number_just_beyond_64_bits_is_refused_not_clamped() {
        #[derive(Debug, Deserialize)]
        struct Seq(#[serde(deserialize_with = "integer")] i64);
        for text in [
            "-9223372036854775809",
            "-9223372036854776000",
            "9223372036854775808",
            "-9223372036854775808.0",
        ] {
            assert!(serde_json::from_str::<Seq>(text).is_err(), "{text}");
        }
        assert_eq!(
            serde_json::from_str::<Seq>("-9223372036854775808")
                .unwrap()
                .0,
            i64::MIN
        );
        assert_eq!(
            serde_json::from_str::<Seq>("9223372036854775807")
                .unwrap()
                .0,
            i64::MAX
        );
        assert_eq!(
            serde_json::from_str::<Seq>("4214157169231962.0").unwrap().0,
            4214157169231962
        );
    }
}
