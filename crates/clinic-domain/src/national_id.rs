//! National identity numbers: Thai citizen ID, Russian SNILS, passport or
//! insurance policy number, a foreign passport.
//!
//! They are written with spaces, dashes or none (`1-1007-00123-45-6`,
//! `123-456-789 01`); one compact form is stored and searched, and its
//! reversed form is indexed so that a search by the last digits is a
//! prefix search.

/// The compact form stored and compared: separators (spaces, dashes, dots)
/// removed, letters upper-cased.
pub fn compact(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// The compact form reversed: the index key, so that the end of a number
/// is the start of its key.
pub fn reversed(s: &str) -> String {
    compact(s).chars().rev().collect()
}

/// Fewest characters searched by their ending: fewer would match too many.
pub const MIN_SEARCH_CHARS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_format_is_one_number() {
        for s in ["1100700123456", "1 1007 00123 45 6", "1-1007-00123-45-6"] {
            assert_eq!(compact(s), "1100700123456", "{s}");
        }
        assert_eq!(compact("123-456-789 01"), "12345678901");
        assert_eq!(compact("ab 123.456"), "AB123456");
        assert_eq!(reversed("12-34"), "4321");
    }
}
