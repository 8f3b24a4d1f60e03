//! Text folding for search and duplicate detection.
//!
//! Names arrive in Cyrillic, Thai and Latin, typed by hurried people. Three
//! layers make them comparable:
//! - [`fold`]: lower case, `ё` → `е`, Latin and Cyrillic diacritics dropped.
//!   Thai vowel and tone marks are letters of the word and are kept.
//! - [`skeleton`]: a Latin spelling skeleton, so that `Иванов`, `Ivanov` and
//!   `Iwanow` meet, as do `Юрий` and `Yuriy`.
//! - [`tokens`]: splitting on spaces, hyphens and punctuation.

use unicode_normalization::UnicodeNormalization;

/// Folds `s` for comparison: NFKD, lower case, Latin/Cyrillic combining
/// diacritics removed (so `ё` = `е`, `é` = `e`, `й` = `и`), Thai untouched.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        // U+0300..U+036F are the combining diacritics used by Latin and
        // Cyrillic; Thai marks live in the Thai block and are kept.
        if ('\u{0300}'..='\u{036F}').contains(&c) {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Whether `c` belongs inside a name token (letters, digits, Thai marks).
/// The common scripts are checked by range first: the general Unicode
/// letter lookup is slow for Thai and Cyrillic.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || ('\u{0E00}'..='\u{0E7F}').contains(&c)
        || ('\u{0430}'..='\u{044F}').contains(&c)
        || (!c.is_ascii() && c.is_alphanumeric())
}

/// Splits folded text into tokens on anything that is not a letter or digit.
pub fn tokens(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !is_token_char(c))
        .filter(|t| !t.is_empty())
}

/// Folds `s` and splits it into tokens.
pub fn folded_tokens(s: &str) -> Vec<String> {
    tokens(&fold(s)).map(str::to_owned).collect()
}

/// Transliterates Cyrillic letters of already folded text to Latin; other
/// characters pass through.
pub fn transliterate(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len() + 4);
    for c in folded.chars() {
        let latin = match c {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' | 'ґ' => "g",
            'д' => "d",
            'е' | 'э' => "e",
            'є' => "ie",
            'ж' => "zh",
            'з' => "z",
            'и' | 'і' | 'ї' => "i",
            'й' => "i",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ъ' | 'ь' => "",
            'ы' => "y",
            'ю' => "iu",
            'я' => "ia",
            other => {
                out.push(other);
                continue;
            }
        };
        out.push_str(latin);
    }
    out
}

/// A Latin spelling skeleton of a folded token: Cyrillic is transliterated,
/// then spelling variants that transliteration systems disagree on are
/// merged (`y`/`j` → `i`, `kh` → `h`, `w` → `v`, `x` → `ks`, doubled letters
/// collapsed). Returns `None` for tokens with no Latin or Cyrillic letters
/// (Thai names, digits), which have no useful skeleton.
pub fn skeleton(folded_token: &str) -> Option<String> {
    let latin = transliterate(folded_token);
    if !latin.chars().any(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    const RULES: [(&str, &str); 14] = [
        ("shch", "sh"),
        ("sch", "sh"),
        ("tch", "ch"),
        ("kh", "h"),
        ("ck", "k"),
        ("ph", "f"),
        ("tz", "ts"),
        ("ye", "e"),
        ("yo", "o"),
        ("y", "i"),
        ("j", "i"),
        ("w", "v"),
        ("x", "ks"),
        ("q", "k"),
    ];
    let mut s = latin;
    for (from, to) in RULES {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if out.ends_with(c) && c.is_ascii_alphabetic() {
            continue;
        }
        out.push(c);
    }
    Some(out)
}

/// The key two registrations of the same person share: the skeletons (or,
/// for Thai, the folded forms) of the family and given name tokens, sorted so
/// that word order does not matter.
pub fn name_key(family: &str, given: &str) -> String {
    name_key_of_parts(&name_parts(family), &name_parts(given))
}

/// A name's folded tokens, each with its [`skeleton`]: what both the search
/// index and [`name_key`] are made of, so a caller that needs both folds
/// the name once.
pub fn name_parts(name: &str) -> Vec<(String, Option<String>)> {
    folded_tokens(name)
        .into_iter()
        .map(|t| {
            let sk = skeleton(&t);
            (t, sk)
        })
        .collect()
}

/// [`name_key`] from the family and given names' [`name_parts`].
pub fn name_key_of_parts(
    family: &[(String, Option<String>)],
    given: &[(String, Option<String>)],
) -> String {
    let mut parts: Vec<&str> = family
        .iter()
        .chain(given)
        .map(|(t, sk)| sk.as_deref().unwrap_or(t))
        .collect();
    parts.sort_unstable();
    parts.join(" ")
}

/// Whether `a` and `b` differ by at most one edit: an insertion, deletion,
/// substitution, or transposition of two neighbours.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    if prefix == short.len() {
        return true; // equal, or one trailing insertion
    }
    if short.len() == long.len() {
        // Substitution, or a transposition of neighbours.
        let rest = prefix + 1;
        if short[rest..] == long[rest..] {
            return true;
        }
        return rest < short.len()
            && short[prefix] == long[rest]
            && short[rest] == long[prefix]
            && short[rest + 1..] == long[rest + 1..];
    }
    // One insertion in the longer word at `prefix`.
    short[prefix..] == long[prefix + 1..]
}

/// Whether `s` contains any control character, tabs and newlines included.
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_chars_by_range_agree_with_unicode_letters() {
        for c in (0..0x3000).filter_map(char::from_u32) {
            let slow = c.is_alphanumeric() || ('\u{0E00}'..='\u{0E7F}').contains(&c);
            assert_eq!(is_token_char(c), slow, "{c:?}");
        }
    }

    #[test]
    fn fold_ignores_case_yo_and_diacritics() {
        assert_eq!(fold("Ёлкин"), "елкин");
        assert_eq!(fold("JOSÉ Müller"), "jose muller");
        assert_eq!(fold("ИВАНОВА"), "иванова");
    }

    #[test]
    fn fold_keeps_thai_marks() {
        let name = "สมศักดิ์";
        assert_eq!(
            fold(name),
            name,
            "Thai vowels and tone marks are part of the word"
        );
    }

    #[test]
    fn tokens_split_on_hyphens_and_spaces() {
        assert_eq!(
            folded_tokens("  Петрова-Водкина  Анна "),
            ["петрова", "водкина", "анна"]
        );
    }

    #[test]
    fn cyrillic_and_latin_spellings_share_a_skeleton() {
        let sk = |s: &str| skeleton(&fold(s)).unwrap();
        assert_eq!(sk("Иванов"), sk("Ivanov"));
        assert_eq!(sk("Юрий"), sk("Yuriy"));
        assert_eq!(sk("Сергеев"), sk("Sergeyev"));
        assert_eq!(sk("Хабибуллин"), sk("Khabibullin"));
        assert_eq!(sk("Щукин"), sk("Shchukin"));
        assert_ne!(sk("Иванов"), sk("Петров"));
        assert_eq!(skeleton("สมชาย"), None);
    }

    #[test]
    fn name_key_ignores_word_order_and_script() {
        assert_eq!(name_key("Иванов", "Пётр"), name_key("Petr", "IVANOV"));
        assert_eq!(name_key("ใจดี", "สมชาย"), name_key("สมชาย", "ใจดี"));
        assert_ne!(name_key("Иванов", "Пётр"), name_key("Иванов", "Павел"));
    }

    #[test]
    fn one_edit_covers_the_usual_typos() {
        assert!(within_one_edit("иванов", "иванов"));
        assert!(within_one_edit("иванов", "иваное"), "substitution");
        assert!(within_one_edit("иванов", "иванв"), "deletion");
        assert!(within_one_edit("иванов", "иваннов"), "insertion");
        assert!(within_one_edit("иванов", "иавнов"), "transposition");
        assert!(!within_one_edit("иванов", "иавноа"));
        assert!(!within_one_edit("иванов", "ив"));
    }

    #[test]
    fn control_characters_are_detected() {
        assert!(has_control_chars("Анна\u{0007}"));
        assert!(has_control_chars("a\tb"));
        assert!(!has_control_chars("สมชาย ใจดี"));
    }
}
