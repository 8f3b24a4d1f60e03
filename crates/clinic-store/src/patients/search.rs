//! The one search box: MRN, phone, national ID, birth date or name parts
//! in any order, optionally with a birth date.
//!
//! Names are found through `patient_name_fts`, an FTS5 index of each
//! patient's folded name parts (`n:`) and their Latin skeletons (`s:`):
//! each query word matches a patient when it starts one of their name parts
//! or its skeleton, so `ivan` finds `Иванов`, and one `MATCH` intersects
//! the words' posting lists. Whole-word matches are looked for first; when
//! nothing matches, each word is replaced by the vocabulary's words within
//! one edit and the search runs again. A birth date in a name query picks
//! the few patients born that day, and the names rank them.
//!
//! Numbers are found through `search_token`, a `(token, patient_key)`
//! B-tree, keyed reversed so that an ending is a prefix and a prefix one
//! range scan: phones (`p:`) and national IDs (`i:`); an MRN's sequence
//! digits (`m:`) are keyed as written. Both indexes are derived from the
//! row's `search_keys` by the write path (`patient_rows::index_patients`).

use chrono::NaiveDate;
use clinic_domain::patient::{PatientStatus, PatientSummary, parse_date};
use clinic_domain::{mrn, national_id, phone, text};

use crate::patients::rows::{PatientRow, SELECT_PATIENT};
use crate::{Result, Store};

/// Most results a search returns.
pub const MAX_RESULTS: u32 = 100;
/// Candidates fetched per requested result, before ranking: enough to rank
/// well, few enough that loading and scoring them stays cheap.
const CANDIDATES_PER_RESULT: usize = 3;
/// Query terms considered; more words rarely narrow a search further.
const MAX_TERMS: usize = 4;
/// Patients born on one day checked against a name and date query: a few
/// dozen share a birthday in a million, thousands only in bad data.
const BORN_ON_SAME_DAY: usize = 2_000;
/// Fewest digits searched as the ending of a phone.
const MIN_PHONE_DIGITS: usize = 5;

/// The half-open range of index keys that start with `prefix`.
pub(crate) fn prefix_range(prefix: &str) -> (String, String) {
    (prefix.to_owned(), format!("{prefix}\u{10FFFF}"))
}

/// The range holding exactly `token`.
fn exact_range(token: &str) -> (String, String) {
    (token.to_owned(), format!("{token}\u{1}"))
}

/// One index key a term may match: a whole token, or every token it starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    token: String,
    prefix: bool,
}

impl Key {
    /// The half-open range of `search_token` keys it matches.
    fn range(&self) -> (String, String) {
        if self.prefix {
            prefix_range(&self.token)
        } else {
            exact_range(&self.token)
        }
    }
}

/// One query term: the keys any of which it may match, best first.
#[derive(Debug, Clone)]
struct Term {
    folded: String,
    keys: Vec<Key>,
}

impl Term {
    /// The name parts and skeletons `folded` is the start of.
    fn prefix(folded: &str) -> Term {
        Term::of(folded, true)
    }

    /// The same word matched only whole (exactly, or by whole skeleton).
    fn exact(folded: &str) -> Term {
        Term::of(folded, false)
    }

    fn of(folded: &str, prefix: bool) -> Term {
        let mut keys = vec![Key {
            token: format!("n:{folded}"),
            prefix,
        }];
        if let Some(sk) = text::skeleton(folded) {
            keys.push(Key {
                token: format!("s:{sk}"),
                prefix,
            });
        }
        Term {
            folded: folded.to_owned(),
            keys,
        }
    }
}

impl Store {
    /// Searches active patients; best matches first, at most `limit`.
    pub async fn search(&self, query: &str, limit: u32) -> Result<Vec<PatientSummary>> {
        let limit = limit.clamp(1, MAX_RESULTS) as usize;
        let query = query.trim();
        if query.is_empty() || query.chars().count() > 200 {
            return Ok(Vec::new());
        }
        if let Some(m) = mrn::Mrn::parse(query) {
            return self.search_mrn(m.as_str()).await;
        }
        if let Some(date) = parse_date(query) {
            let rows = self.born_on(date, limit).await?;
            return rows.iter().map(PatientRow::to_summary).collect();
        }
        if looks_like_number(query) {
            let rows = self.search_number(query, limit).await?;
            return rows.iter().map(PatientRow::to_summary).collect();
        }
        let compact = mrn::compact(query);
        if looks_like_code(&compact) {
            let rows = self.search_code(&compact, limit).await?;
            if !rows.is_empty() {
                return rows.iter().map(PatientRow::to_summary).collect();
            }
        }
        let (names, date) = split_birth_date(query);
        self.search_names(&names, date, limit).await
    }

    /// Active patients born on `date`, by name.
    async fn born_on(&self, date: NaiveDate, limit: usize) -> Result<Vec<PatientRow>> {
        let sql = format!(
            "{SELECT_PATIENT} WHERE p.birth_date = ? AND p.status = 'active' \
             ORDER BY p.family_name, p.given_name LIMIT ?"
        );
        Ok(sqlx::query_as(&sql)
            .bind(date.to_string())
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?)
    }

    /// Keys of the patients with an index token in `[lo, hi)`, at most `limit`.
    async fn keys_in_range(&self, (lo, hi): (String, String), limit: usize) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT patient_key FROM search_token WHERE token >= ? AND token < ? LIMIT ?",
        )
        .bind(lo)
        .bind(hi)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?)
    }

    /// Rows for `groups` of keys, best group first, each patient once;
    /// within a group as its [`Order`] says.
    async fn rows_in_groups(
        &self,
        groups: Vec<(Vec<i64>, Order)>,
        limit: usize,
    ) -> Result<Vec<PatientRow>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (keys, order) in groups {
            let keys: Vec<i64> = keys.into_iter().filter(|k| seen.insert(*k)).collect();
            let mut rows = self.summaries_by_key(&keys).await?;
            match order {
                Order::ByName => rows.sort_by_cached_key(sort_key),
                Order::ByMrn => rows.sort_by(|a, b| a.mrn_compact.cmp(&b.mrn_compact)),
            }
            out.extend(rows);
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// A run of digits: the sequence of an MRN (`000053`), a national ID by
    /// its whole or its ending, a phone by its ending; in that order.
    async fn search_number(&self, query: &str, limit: usize) -> Result<Vec<PatientRow>> {
        let digits = phone::digits(query);
        let mut groups = Vec::with_capacity(3);
        if let Some(seq) = mrn::sequence_query(&digits) {
            groups.push((
                self.keys_in_range(exact_range(&format!("m:{seq}")), limit)
                    .await?,
                Order::ByName,
            ));
        }
        groups.push(self.by_national_id_ending(&digits, limit).await?);
        if digits.len() >= MIN_PHONE_DIGITS {
            let key = phone::match_key(query);
            groups.push((
                self.keys_in_range(prefix_range(&format!("p:{key}")), limit)
                    .await?,
                Order::ByName,
            ));
        }
        self.rows_in_groups(groups, limit).await
    }

    /// Letters and digits without spaces: the start of an MRN (`K7M-0001`),
    /// or a national ID with letters in it (a passport), by its ending.
    async fn search_code(&self, compact: &str, limit: usize) -> Result<Vec<PatientRow>> {
        let mut groups = Vec::with_capacity(2);
        if looks_like_mrn_prefix(compact) {
            let (lo, hi) = prefix_range(compact);
            let keys: Vec<i64> = sqlx::query_scalar(
                "SELECT key FROM patients WHERE mrn_compact >= ? AND mrn_compact < ? \
                 AND status = 'active' ORDER BY mrn_compact LIMIT ?",
            )
            .bind(lo)
            .bind(hi)
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?;
            groups.push((keys, Order::ByMrn));
        }
        groups.push(self.by_national_id_ending(compact, limit).await?);
        self.rows_in_groups(groups, limit).await
    }

    /// The patients whose national ID is `id` or ends with it.
    async fn by_national_id_ending(&self, id: &str, limit: usize) -> Result<(Vec<i64>, Order)> {
        let reversed = national_id::reversed(id);
        let keys = self
            .keys_in_range(prefix_range(&format!("i:{reversed}")), limit)
            .await?;
        Ok((keys, Order::ByName))
    }

    /// An exact MRN; a merged record's MRN leads to the record it was merged into.
    async fn search_mrn(&self, mrn: &str) -> Result<Vec<PatientSummary>> {
        let mut row: Option<PatientRow> = sqlx::query_as("SELECT * FROM patients WHERE mrn = ?")
            .bind(mrn)
            .fetch_optional(self.pool())
            .await?;
        // Follow merges (bounded, in case of a damaged chain).
        for _ in 0..8 {
            match &row {
                Some(r) if r.status == PatientStatus::Merged => {
                    row = sqlx::query_as("SELECT * FROM patients WHERE id = ?")
                        .bind(&r.merged_into)
                        .fetch_optional(self.pool())
                        .await?;
                }
                _ => break,
            }
        }
        row.iter().map(PatientRow::to_summary).collect()
    }

    /// Name parts in any order, narrowed to one birth date when the query
    /// had one (`smith 1970-01-01`).
    async fn search_names(
        &self,
        query: &str,
        born: Option<NaiveDate>,
        limit: usize,
    ) -> Result<Vec<PatientSummary>> {
        let mut words: Vec<String> = text::folded_tokens(query);
        // Longer words are more selective; keep the most telling ones.
        words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        words.truncate(MAX_TERMS);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let (rows, every_word) = match born {
            // A birth date is more selective than any name: a few dozen
            // patients share one even among millions, so check them all,
            // keeping those that every word matches.
            Some(date) => (self.born_on(date, BORN_ON_SAME_DAY).await?, true),
            None => {
                let keys = self.name_candidates(&words, limit).await?;
                (self.summaries_by_key(&keys).await?, false)
            }
        };
        let mut scored: Vec<(i32, String, PatientRow)> = rows
            .into_iter()
            .filter_map(|r| {
                let scores = name_scores(&r, &words);
                if every_word && scores.contains(&0) {
                    return None;
                }
                Some((scores.iter().sum(), sort_key(&r), r))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(limit)
            .map(|(_, _, r)| r.to_summary())
            .collect()
    }

    /// Keys of patients whose names match every word: whole words first,
    /// then prefixes when too few, then one-edit spellings when none.
    async fn name_candidates(&self, words: &[String], limit: usize) -> Result<Vec<i64>> {
        let want = (limit * CANDIDATES_PER_RESULT) as i64;
        // Whole-word matches rank first, and are the cheapest to find: look
        // for them first and fall back to prefixes only when too few.
        let exact: Vec<Term> = words.iter().map(|w| Term::exact(w)).collect();
        let mut keys = self.candidates(&exact, want).await?;
        if (keys.len() as i64) < want {
            let terms: Vec<Term> = words.iter().map(|w| Term::prefix(w)).collect();
            for key in self.candidates(&terms, want).await? {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            if keys.is_empty()
                && let Some(typo_terms) = self.typo_terms(&terms).await?
            {
                keys = self.candidates(&typo_terms, want).await?;
            }
        }
        Ok(keys)
    }

    /// Keys of the patients matching every term, at most `want`: one FTS5
    /// `MATCH`, whose AND intersects the terms' posting lists.
    async fn candidates(&self, terms: &[Term], want: i64) -> Result<Vec<i64>> {
        let expr = terms
            .iter()
            .map(|t| {
                let any: Vec<String> = t
                    .keys
                    .iter()
                    .map(|k| {
                        // Written without the colon, as indexed (sql.rs);
                        // quoted, so no query word is FTS5 syntax.
                        let token = k.token.replacen(':', "", 1).replace('"', "\"\"");
                        format!("\"{token}\"{}", if k.prefix { "*" } else { "" })
                    })
                    .collect();
                format!("({})", any.join(" OR "))
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        Ok(sqlx::query_scalar(
            "SELECT rowid FROM patient_name_fts WHERE patient_name_fts MATCH ? LIMIT ?",
        )
        .bind(expr)
        .bind(want)
        .fetch_all(self.pool())
        .await?)
    }

    /// Whether any patient's name (as the vocabulary knows it) matches
    /// one of the term's keys.
    async fn in_vocabulary(&self, term: &Term) -> Result<bool> {
        for key in &term.keys {
            let (lo, hi) = key.range();
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM search_vocab WHERE token >= ? AND token < ? LIMIT 1",
            )
            .bind(lo)
            .bind(hi)
            .fetch_optional(self.pool())
            .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Replaces each term that matches nothing by the vocabulary words
    /// within one edit of it; `None` when some term has no such word.
    async fn typo_terms(&self, terms: &[Term]) -> Result<Option<Vec<Term>>> {
        let mut out = Vec::with_capacity(terms.len());
        for term in terms {
            if self.in_vocabulary(term).await? {
                out.push(term.clone());
                continue;
            }
            if term.folded.chars().count() < 3 {
                return Ok(None);
            }
            let mut keys = Vec::new();
            let mut spellings = vec![format!("n:{}", term.folded)];
            if let Some(sk) = text::skeleton(&term.folded) {
                spellings.push(format!("s:{sk}"));
            }
            for key in spellings {
                let body: String = key.chars().skip(2).collect();
                let kind: String = key.chars().take(2).collect();
                // Skeletons shrink words ("zzzz" → "z"); too short a body
                // would be "one edit" from half the vocabulary.
                if body.chars().count() < 3 {
                    continue;
                }
                // A typo rarely hits the first letter; scan the words that
                // share it, and those starting with the second letter (for a
                // swap of the first two).
                let mut firsts: Vec<char> = body.chars().take(2).collect();
                firsts.dedup();
                for first in firsts {
                    let (lo, hi) = prefix_range(&format!("{kind}{first}"));
                    let words: Vec<String> = sqlx::query_scalar(
                        "SELECT token FROM search_vocab WHERE token >= ? AND token < ? LIMIT 50000",
                    )
                    .bind(lo)
                    .bind(hi)
                    .fetch_all(self.pool())
                    .await?;
                    for word in words {
                        // A word the term is within one edit of, or whose
                        // start is (the user typed part of a name).
                        let w: String = word.chars().skip(2).collect();
                        let head: String = w.chars().take(body.chars().count()).collect();
                        let long_enough = body.chars().count() >= 4;
                        if text::within_one_edit(&w, &body)
                            || (long_enough && text::within_one_edit(&head, &body))
                        {
                            keys.push(Key {
                                token: word,
                                prefix: false,
                            });
                        }
                    }
                }
            }
            if keys.is_empty() {
                return Ok(None);
            }
            keys.sort();
            keys.dedup();
            keys.truncate(64);
            out.push(Term {
                folded: term.folded.clone(),
                keys,
            });
        }
        Ok(Some(out))
    }
}

/// How well each query word matches a candidate, 0 for not at all. Per
/// word, the best of: an exact name part 5, a Latin skeleton match 4, a
/// prefix 3, a skeleton prefix 2, a whole part within one edit 1; times
/// three, plus 2 when that part is in the family name and 1 in the given
/// name, so that `Иванов` ranks the Ивановы above the Ивановичи.
fn name_scores(row: &PatientRow, words: &[String]) -> Vec<i32> {
    let parts: Vec<(String, Option<String>, i32)> = [
        (Some(&row.family_name), 2),
        (Some(&row.given_name), 1),
        (row.middle_name.as_ref(), 0),
    ]
    .into_iter()
    .filter_map(|(name, weight)| name.map(|n| (n, weight)))
    .flat_map(|(n, weight)| {
        text::folded_tokens(n).into_iter().map(move |p| {
            let sk = text::skeleton(&p);
            (p, sk, weight)
        })
    })
    .collect();
    words
        .iter()
        .map(|w| {
            let wsk = text::skeleton(w);
            parts
                .iter()
                .map(|(p, psk, weight)| {
                    let (same_skeleton, skeleton_prefix) = match (psk, &wsk) {
                        (Some(a), Some(b)) => (a == b, a.starts_with(b.as_str())),
                        _ => (false, false),
                    };
                    let base = if p == w {
                        5
                    } else if same_skeleton {
                        4
                    } else if p.starts_with(w.as_str()) {
                        3
                    } else if skeleton_prefix {
                        2
                    } else if text::within_one_edit(p, w) {
                        1
                    } else {
                        0
                    };
                    if base == 0 { 0 } else { base * 3 + weight }
                })
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Splits a birth date written as one word (`1970-01-01`, `01.01.1970`)
/// out of a name query: the rest of the query, and the date if any.
fn split_birth_date(query: &str) -> (String, Option<NaiveDate>) {
    let mut date = None;
    let mut rest = Vec::new();
    for word in query.split_whitespace() {
        match parse_date(word) {
            Some(d) if date.is_none() => date = Some(d),
            _ => rest.push(word),
        }
    }
    (rest.join(" "), date)
}

/// How the rows of one group of results are ordered.
#[derive(Clone, Copy)]
enum Order {
    /// By family and given name.
    ByName,
    /// By MRN, so that numbers being typed come in sequence.
    ByMrn,
}

/// Orders equally good matches by name.
fn sort_key(row: &PatientRow) -> String {
    text::fold(&format!("{} {}", row.family_name, row.given_name))
}

/// Digits with phone punctuation (spaces, dashes, brackets, a leading
/// `+`), at least [`national_id::MIN_SEARCH_CHARS`] digits, no letters: a
/// phone, a national ID or an MRN's sequence.
fn looks_like_number(q: &str) -> bool {
    phone::is_number_text(q) && phone::digits(q).len() >= national_id::MIN_SEARCH_CHARS
}

/// Letters and digits, at least four, with a digit: an MRN being typed or
/// a national ID with letters.
fn looks_like_code(compact: &str) -> bool {
    compact.chars().count() >= national_id::MIN_SEARCH_CHARS
        && compact.chars().all(char::is_alphanumeric)
        && compact.chars().any(|c| c.is_ascii_digit())
}

/// A letter followed by MRN characters and at least one digit: `K7M-0001`.
fn looks_like_mrn_prefix(compact: &str) -> bool {
    compact.len() >= 4
        && compact
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && compact.chars().all(|c| c.is_ascii_alphanumeric())
        && compact.chars().skip(3).any(|c| c.is_ascii_digit())
}
