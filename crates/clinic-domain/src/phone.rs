//! Phone numbers: validation and the digit form they are searched by.

/// The longest phone number ITU E.164 allows, in digits.
const MAX_DIGITS: usize = 15;
/// Shorter than this is an extension or a typo, not a reachable number.
const MIN_DIGITS: usize = 6;

/// Why a phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneError {
    /// Letters or symbols other than `+ - ( ) . /` and spaces.
    BadCharacters,
    /// Fewer than 6 or more than 15 digits.
    BadLength,
}

/// The digits of `s`, in order; the form phones are indexed by.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Whether `s` is written like a number: digits with the usual separators
/// (spaces, `- ( ) . /`) and an optional leading `+`, nothing else. Phones
/// are, and the search box reads such text as a number of any kind.
pub fn is_number_text(s: &str) -> bool {
    let s = s.trim();
    s.strip_prefix('+')
        .unwrap_or(s)
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.' | '/'))
}

/// Checks a typed phone number: digits with the usual separators, an
/// optional leading `+`, and 6 to 15 digits.
pub fn validate(s: &str) -> Result<(), PhoneError> {
    if !is_number_text(s) {
        return Err(PhoneError::BadCharacters);
    }
    let n = digits(s).len();
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&n) {
        return Err(PhoneError::BadLength);
    }
    Ok(())
}

/// The reversed digits of a phone: indexing these lets a prefix search find
/// numbers by their ending, so `081 234 5678` finds `+66 81 234 5678`.
pub fn reversed_digits(s: &str) -> String {
    digits(s).chars().rev().collect()
}

/// Digits compared when deciding whether two phones are the same number:
/// local and international forms differ only before these.
pub const SIGNIFICANT_DIGITS: usize = 9;

/// The key phones are matched by: the last [`SIGNIFICANT_DIGITS`] digits,
/// reversed, so that a prefix search on it is a search by ending.
pub fn match_key(s: &str) -> String {
    reversed_digits(s)
        .chars()
        .take(SIGNIFICANT_DIGITS)
        .collect()
}

/// Whether two phones are the same number, written differently.
pub fn same_number(a: &str, b: &str) -> bool {
    let (a, b) = (match_key(a), match_key(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_formats() {
        for ok in [
            "+7 (912) 345-67-89",
            "081-234-5678",
            "02.123.4567",
            "+66812345678",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_malformed_numbers() {
        assert_eq!(validate("call me"), Err(PhoneError::BadCharacters));
        assert_eq!(validate("12+34567"), Err(PhoneError::BadCharacters));
        assert_eq!(validate("123"), Err(PhoneError::BadLength));
        assert_eq!(validate("1234567890123456"), Err(PhoneError::BadLength));
    }

    #[test]
    fn the_same_number_in_two_forms_is_recognised() {
        assert!(same_number("081 234 5678", "+66 81 234 5678"));
        assert!(same_number("8 (912) 345-67-89", "+7 912 345 67 89"));
        assert!(!same_number("081 234 5678", "081 234 5679"));
    }

    #[test]
    fn local_and_international_forms_share_an_ending() {
        let local = reversed_digits("081 234 5678");
        let intl = reversed_digits("+66 81 234 5678");
        assert!(intl.starts_with(&local[..9]));
    }
}
