//! Medical record numbers: `PPP-NNNNNN-C`.
//!
//! `PPP` is the workstation's prefix, `NNNNNN` its own sequence and `C` a
//! Luhn mod 32 check character over both, in Crockford's base-32 alphabet
//! (no `I`, `L`, `O`, `U`, so nothing reads as `1` or `0`). Two offline
//! workstations with different prefixes can never hand out the same number,
//! and a mistyped character is caught by the check.

use std::fmt;

/// Crockford's base-32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn code_point(c: char) -> Option<u32> {
    // Only ASCII: `as u8` would wrap a character like 'Ł' (U+0141) onto 'A'.
    if !c.is_ascii() {
        return None;
    }
    let c = c.to_ascii_uppercase() as u8;
    ALPHABET.iter().position(|a| *a == c).map(|p| p as u32)
}

/// The Luhn mod 32 check character for `payload` (alphabet characters only).
fn check_char(payload: &str) -> Option<char> {
    let n = 32;
    let mut factor = 2;
    let mut sum = 0;
    for c in payload.chars().rev() {
        let mut addend = factor * code_point(c)?;
        factor = if factor == 2 { 1 } else { 2 };
        addend = addend / n + addend % n;
        sum += addend;
    }
    let check = (n - sum % n) % n;
    Some(ALPHABET[check as usize] as char)
}

/// What [`MrnPrefix::parse`] accepts, as the API document's pattern: a
/// Crockford base-32 letter, two more base-32 characters, any case, with
/// white space around.
pub const PREFIX_PATTERN: &str =
    r"^\s*[A-HJKMNP-TV-Za-hjkmnp-tv-z][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{2}\s*$";

/// A workstation's three-character MRN prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrnPrefix(String);

impl MrnPrefix {
    /// Parses a prefix: exactly three characters of the base-32 alphabet.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_uppercase();
        // A letter first, so that no all-digit text (a phone number being
        // searched for) ever reads as an MRN.
        (s.len() == 3
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| code_point(c).is_some()))
        .then_some(Self(s))
    }

    /// A prefix from random bits; the caller supplies the randomness so this
    /// crate stays free of I/O. The first character is a letter, so a prefix
    /// never looks like part of the sequence.
    pub fn from_random(bits: u32) -> Self {
        let letters = &ALPHABET[10..];
        let a = letters[(bits % letters.len() as u32) as usize] as char;
        let b = ALPHABET[((bits >> 8) % 32) as usize] as char;
        let c = ALPHABET[((bits >> 16) % 32) as usize] as char;
        Self(format!("{a}{b}{c}"))
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated medical record number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mrn(String);

impl Mrn {
    /// The MRN for sequence number `seq` on the workstation with `prefix`.
    pub fn new(prefix: &MrnPrefix, seq: u64) -> Self {
        let digits = format!("{seq:06}");
        let check = check_char(&format!("{}{digits}", prefix.0))
            .expect("prefix and digits are in the alphabet");
        Self(format!("{}-{digits}-{check}", prefix.0))
    }

    /// Parses an MRN typed with or without hyphens and in any case; `None`
    /// when it is malformed or its check character does not match.
    pub fn parse(s: &str) -> Option<Self> {
        let compact = compact(s);
        if compact.len() < 5 || !compact.chars().all(|c| code_point(c).is_some()) {
            return None;
        }
        let (payload, check) = compact.split_at(compact.len() - 1);
        let (prefix, digits) = payload.split_at(3);
        MrnPrefix::parse(prefix)?;
        // At least the six digits every number is written with: a shorter
        // run is the start of a number being typed, even when its last
        // character happens to pass as a check character.
        if digits.len() < 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        (check_char(payload)? == check.chars().next()?)
            .then(|| Self(format!("{prefix}-{digits}-{check}")))
    }

    /// The MRN as printed: `PPP-NNNNNN-C`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digits an MRN's sequence is written with (`PPP-NNNNNN-C` → `NNNNNN`):
/// a card read aloud or a label cut short often gives only these.
pub fn sequence_of(mrn: &str) -> Option<&str> {
    let mut parts = mrn.split('-');
    let (_, seq, _) = (parts.next()?, parts.next()?, parts.next()?);
    (seq.len() >= 6 && seq.chars().all(|c| c.is_ascii_digit())).then_some(seq)
}

/// A typed run of digits as the sequence it may be: left-padded with zeros
/// to the six digits every number is written with, so `53` and `000053`
/// are the same sequence. `None` for zero, or more digits than any
/// workstation hands out.
pub fn sequence_query(digits: &str) -> Option<String> {
    let trimmed = digits.trim_start_matches('0');
    (!trimmed.is_empty() && trimmed.len() <= 12 && trimmed.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{trimmed:0>6}"))
}

/// `s` upper-cased with hyphens and spaces removed: the form MRNs are
/// indexed and searched by.
pub fn compact(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_numbers_parse_back() {
        let prefix = MrnPrefix::parse("k7m").unwrap();
        for seq in [1, 42, 999_999, 1_000_000] {
            let mrn = Mrn::new(&prefix, seq);
            assert_eq!(Mrn::parse(mrn.as_str()), Some(mrn.clone()));
            assert_eq!(
                Mrn::parse(&mrn.as_str().to_lowercase().replace('-', "")),
                Some(mrn)
            );
        }
        assert_eq!(Mrn::new(&prefix, 42).as_str().len(), "K7M-000042-X".len());
    }

    #[test]
    fn the_start_of_a_number_is_never_a_number() {
        // "ABC-0000" + any last character: whichever one happens to be a
        // valid check character, four digits are not a number.
        for c in ALPHABET.iter().map(|b| *b as char) {
            assert_eq!(Mrn::parse(&format!("ABC-0000{c}")), None, "ABC-0000{c}");
            assert_eq!(Mrn::parse(&format!("ABC00005{c}")), None);
        }
    }

    #[test]
    fn a_phone_number_is_never_a_number() {
        // "07913 047842" once passed the check by chance (1 in 32) and was
        // searched for as an MRN instead of a phone.
        assert_eq!(MrnPrefix::parse("079"), None);
        for last in 0..10 {
            assert_eq!(Mrn::parse(&format!("07913 04784{last}")), None);
            assert_eq!(Mrn::parse(&format!("7956447407{last}")), None);
        }
    }

    #[test]
    fn a_single_typo_fails_the_check() {
        let mrn = Mrn::new(&MrnPrefix::parse("ABC").unwrap(), 123_456);
        let s = mrn.as_str().to_owned();
        // Change each digit of the sequence in turn.
        for i in 4..10 {
            let mut bytes = s.clone().into_bytes();
            bytes[i] = if bytes[i] == b'9' { b'0' } else { bytes[i] + 1 };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(Mrn::parse(&typo), None, "{typo} must fail the check");
        }
        // Swap two neighbouring digits.
        let swapped = s.replacen("123", "213", 1);
        assert_eq!(Mrn::parse(&swapped), None);
    }

    #[test]
    fn the_sequence_is_found_however_it_is_typed() {
        let mrn = Mrn::new(&MrnPrefix::parse("K7M").unwrap(), 53);
        assert_eq!(sequence_of(mrn.as_str()), Some("000053"));
        assert_eq!(sequence_query("53").as_deref(), Some("000053"));
        assert_eq!(sequence_query("000053").as_deref(), Some("000053"));
        assert_eq!(sequence_query("1234567").as_deref(), Some("1234567"));
        assert_eq!(sequence_query("0000"), None);
        assert_eq!(sequence_of("not an mrn"), None);
    }

    #[test]
    fn different_prefixes_never_collide() {
        let a = Mrn::new(&MrnPrefix::parse("AAA").unwrap(), 7);
        let b = Mrn::new(&MrnPrefix::parse("AAB").unwrap(), 7);
        assert_ne!(a, b);
    }

    #[test]
    fn random_prefixes_are_valid() {
        for bits in [0, 1, 0xFFFF_FFFF, 0x1234_5678] {
            let p = MrnPrefix::from_random(bits);
            assert_eq!(MrnPrefix::parse(p.as_str()), Some(p.clone()));
            assert!(p.as_str().chars().next().unwrap().is_ascii_alphabetic());
        }
    }
}
