//! The one search box: MRN, phone, birth date or name parts in any order.
//!
//! Names are found through `search_token`, a `(token, patient_key)` index
//! whose primary key makes a prefix search one range scan. Each query term
//! matches a patient when it is a prefix of one of their folded name parts
//! (`n:`) or of a Latin skeleton of one (`s:`), so `ivan` finds `Иванов`.
//! The rarest term drives the scan; the others are checked per candidate
//! against the candidate row's own `search_keys`. When nothing matches, each term
//! is replaced by vocabulary words within one edit and the search runs again.

use clinic_domain::patient::{PatientSummary, parse_date};
use clinic_domain::{mrn, phone, text};
use sqlx::{QueryBuilder, Sqlite};

use crate::patients::{PatientRow, SELECT_PATIENT};
use crate::{Result, Store};

/// Most results a search returns.
pub const MAX_RESULTS: u32 = 100;
/// Candidates fetched per requested result, before ranking: enough to rank
/// well, few enough that loading and scoring them stays cheap.
const CANDIDATES_PER_RESULT: usize = 3;
/// Query terms considered; more words rarely narrow a search further.
const MAX_TERMS: usize = 4;

/// The half-open range of index keys that start with `prefix`.
pub(crate) fn prefix_range(prefix: &str) -> (String, String) {
    (prefix.to_owned(), format!("{prefix}\u{10FFFF}"))
}

/// The range holding exactly `token`.
fn exact_range(token: &str) -> (String, String) {
    (token.to_owned(), format!("{token}\u{1}"))
}

/// One query term: the key ranges any of which it may match, best first.
#[derive(Debug, Clone)]
struct Term {
    folded: String,
    ranges: Vec<(String, String)>,
}

impl Term {
    fn prefix(folded: &str) -> Term {
        let mut ranges = vec![prefix_range(&format!("n:{folded}"))];
        if let Some(sk) = text::skeleton(folded) {
            ranges.push(prefix_range(&format!("s:{sk}")));
        }
        Term {
            folded: folded.to_owned(),
            ranges,
        }
    }

    /// The same word matched only whole (exactly, or by whole skeleton).
    fn exact(folded: &str) -> Term {
        let mut ranges = vec![exact_range(&format!("n:{folded}"))];
        if let Some(sk) = text::skeleton(folded) {
            ranges.push(exact_range(&format!("s:{sk}")));
        }
        Term {
            folded: folded.to_owned(),
            ranges,
        }
    }
}

/// Pushes `(token >= ? AND token < ?) OR …` for a term's ranges.
fn push_ranges(qb: &mut QueryBuilder<'_, Sqlite>, column: &str, term: &Term) {
    qb.push("(");
    for (i, (lo, hi)) in term.ranges.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push(format_args!("({column} >= "));
        qb.push_bind(lo.clone());
        qb.push(format_args!(" AND {column} < "));
        qb.push_bind(hi.clone());
        qb.push(")");
    }
    qb.push(")");
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
            let sql = format!(
                "{SELECT_PATIENT} WHERE p.birth_date = ? AND p.status = 'active' \
                 ORDER BY p.family_name, p.given_name LIMIT ?"
            );
            let rows: Vec<PatientRow> = sqlx::query_as(&sql)
                .bind(date.to_string())
                .bind(limit as i64)
                .fetch_all(self.pool())
                .await?;
            return rows.iter().map(PatientRow::to_summary).collect();
        }
        if looks_like_phone(query) {
            let (lo, hi) = prefix_range(&format!("p:{}", phone::match_key(query)));
            let keys: Vec<i64> = sqlx::query_scalar(
                "SELECT patient_key FROM search_token WHERE token >= ? AND token < ? LIMIT ?",
            )
            .bind(lo)
            .bind(hi)
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?;
            let mut rows = self.summaries_by_key(&keys).await?;
            rows.sort_by(|a, b| a.family_name.cmp(&b.family_name));
            return rows.iter().map(PatientRow::to_summary).collect();
        }
        let compact = mrn::compact(query);
        if looks_like_mrn_prefix(&compact) {
            let (lo, hi) = prefix_range(&compact);
            let sql = format!(
                "{SELECT_PATIENT} WHERE p.mrn_compact >= ? AND p.mrn_compact < ? AND p.status = 'active' \
                 ORDER BY p.mrn_compact LIMIT ?"
            );
            let rows: Vec<PatientRow> = sqlx::query_as(&sql)
                .bind(lo)
                .bind(hi)
                .bind(limit as i64)
                .fetch_all(self.pool())
                .await?;
            if !rows.is_empty() {
                return rows.iter().map(PatientRow::to_summary).collect();
            }
        }
        self.search_names(query, limit).await
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
                Some(r) if r.status == "merged" => {
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

    async fn search_names(&self, query: &str, limit: usize) -> Result<Vec<PatientSummary>> {
        let mut words: Vec<String> = text::folded_tokens(query);
        // Longer words are more selective; keep the most telling ones.
        words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        words.truncate(MAX_TERMS);
        if words.is_empty() {
            return Ok(Vec::new());
        }
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
        let rows = self.summaries_by_key(&keys).await?;
        let mut scored: Vec<(i32, String, PatientRow)> = rows
            .into_iter()
            .map(|r| (score(&r, &words), sort_key(&r), r))
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(limit)
            .map(|(_, _, r)| r.to_summary())
            .collect()
    }

    /// Keys of the patients matching every term, driven by the rarest one.
    async fn candidates(&self, terms: &[Term], want: i64) -> Result<Vec<i64>> {
        let mut counted = Vec::with_capacity(terms.len());
        for t in terms {
            counted.push((self.capped_count(t).await?, t));
        }
        if counted.iter().any(|(n, _)| *n == 0) {
            return Ok(Vec::new());
        }
        counted.sort_by_key(|(n, _)| *n);
        let (_, driver) = counted[0];
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(if counted.len() > 1 {
            "SELECT DISTINCT d.patient_key FROM search_token d \
             JOIN patients p ON p.key = d.patient_key WHERE "
        } else {
            "SELECT DISTINCT d.patient_key FROM search_token d WHERE "
        });
        push_ranges(&mut qb, "d.token", driver);
        for (_, other) in &counted[1..] {
            qb.push(" AND EXISTS (SELECT 1 FROM json_each(p.search_keys) o WHERE ");
            push_ranges(&mut qb, "o.value", other);
            qb.push(")");
        }
        qb.push(" LIMIT ");
        qb.push_bind(want);
        Ok(qb.build_query_scalar().fetch_all(self.pool()).await?)
    }

    /// How many index keys a term matches, counting no further than 2,000.
    async fn capped_count(&self, term: &Term) -> Result<i64> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM search_token WHERE ");
        push_ranges(&mut qb, "token", term);
        qb.push(" LIMIT 2000)");
        Ok(qb.build_query_scalar().fetch_one(self.pool()).await?)
    }

    /// Replaces each term that matches nothing by the vocabulary words
    /// within one edit of it; `None` when some term has no such word.
    async fn typo_terms(&self, terms: &[Term]) -> Result<Option<Vec<Term>>> {
        let mut out = Vec::with_capacity(terms.len());
        for term in terms {
            if self.capped_count(term).await? > 0 {
                out.push(term.clone());
                continue;
            }
            if term.folded.chars().count() < 3 {
                return Ok(None);
            }
            let mut ranges = Vec::new();
            let mut keys = vec![format!("n:{}", term.folded)];
            if let Some(sk) = text::skeleton(&term.folded) {
                keys.push(format!("s:{sk}"));
            }
            for key in keys {
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
                            ranges.push(exact_range(&word));
                        }
                    }
                }
            }
            if ranges.is_empty() {
                return Ok(None);
            }
            ranges.sort();
            ranges.dedup();
            ranges.truncate(64);
            out.push(Term {
                folded: term.folded.clone(),
                ranges,
            });
        }
        Ok(Some(out))
    }
}

/// Ranks a candidate: per query word, an exact name part scores 5, a Latin
/// skeleton match 4, a prefix 3, a skeleton prefix 2, a whole part within
/// one edit 1, and anything else (a typo in a prefix) 0.
fn score(row: &PatientRow, words: &[String]) -> i32 {
    let parts: Vec<String> = [
        Some(&row.family_name),
        Some(&row.given_name),
        row.middle_name.as_ref(),
    ]
    .into_iter()
    .flatten()
    .flat_map(|n| text::folded_tokens(n))
    .collect();
    let skeletons: Vec<String> = parts.iter().filter_map(|p| text::skeleton(p)).collect();
    words
        .iter()
        .map(|w| {
            let wsk = text::skeleton(w);
            if parts.iter().any(|p| p == w) {
                5
            } else if wsk.as_ref().is_some_and(|s| skeletons.contains(s)) {
                4
            } else if parts.iter().any(|p| p.starts_with(w.as_str())) {
                3
            } else if wsk
                .as_ref()
                .is_some_and(|s| skeletons.iter().any(|k| k.starts_with(s.as_str())))
            {
                2
            } else if parts.iter().any(|p| text::within_one_edit(p, w)) {
                1
            } else {
                0
            }
        })
        .sum()
}

/// Orders equally good matches by name.
fn sort_key(row: &PatientRow) -> String {
    text::fold(&format!("{} {}", row.family_name, row.given_name))
}

/// Digits with phone punctuation, at least five digits, no letters.
fn looks_like_phone(q: &str) -> bool {
    let digits = q.chars().filter(char::is_ascii_digit).count();
    // Every all-digit string of that length passes `validate` too.
    digits >= 5 && phone::validate(q).is_ok()
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
