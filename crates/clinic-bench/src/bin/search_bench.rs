//! `search_bench`: latency of the one search box over a large store, per
//! kind of query.
//!
//! ```text
//! cargo run -p clinic-bench --release --bin search_bench -- [--patients N] [--db PATH]
//!     [--queries Q] [--seed S] [--rebuild]
//! ```
//!
//! Builds (or reuses, when it holds exactly N patients) a database of N
//! patients (default 1,000,000) from `clinic_store::demo::patients(seed)`,
//! written through the real write path (`Store::commit_batch`, batches of
//! 5,000 `Mutation::PatientCreate`). Then draws a seeded mix of queries
//! from the stored rows — name parts, 2–5 character prefixes, two words in
//! either order, Latin spellings of Cyrillic names, one-typo names, MRNs,
//! MRN sequence digits, phones in another format, birth dates as
//! dd.mm.yyyy, national IDs whole, formatted or by their last digits, a
//! family name with a birth date — warms up, and times each
//! `Store::search(q, 20)`. Prints:
//!
//! ```text
//! bench: patient_search_p50_ms <v> ms
//! bench: patient_search_p95_ms <v> ms
//! bench: patient_search_<kind>_p95_ms <v> ms
//! bench: patient_search_worst_kind_p95_ms <v> ms
//! ```
//!
//! and, on stderr, p50/p95/max per query kind and the slowest queries.
//! (Commit 1481f62 ran the same mix through the earlier B-tree name index
//! and FTS5 side by side; the README has both.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use clinic_domain::text;
use clinic_store::{Actor, Mutation, OpenOptions, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

const USAGE: &str = "usage: search_bench [--patients N] [--db PATH] [--queries Q] [--seed S] [--rebuild]
  --patients N  patients in the database (default 1000000)
  --db PATH     database file (default $CARGO_TARGET_DIR/bench/search-<N>.db, else /tmp/clinic-bench/…)
  --queries Q   timed queries (default 2400, at least 2000 recommended)
  --seed S      seed of the generator and the query mix (default 2026)
  --rebuild     rebuild the database even if it exists";

/// Rows per write transaction, as the import uses.
const BATCH: usize = 5_000;
/// Results asked for, as the UI's search box asks.
const LIMIT: u32 = 20;

struct Options {
    patients: usize,
    db: Option<PathBuf>,
    queries: usize,
    seed: u64,
    rebuild: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        patients: 1_000_000,
        db: None,
        queries: 2_400,
        seed: 2026,
        rebuild: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--patients" => o.patients = num(&value("--patients")?)?,
            "--db" => o.db = Some(PathBuf::from(value("--db")?)),
            "--queries" => o.queries = num(&value("--queries")?)?,
            "--seed" => o.seed = num(&value("--seed")?)?,
            "--rebuild" => o.rebuild = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if o.patients == 0 {
        return Err("--patients must be at least 1".into());
    }
    Ok(o)
}

fn num<T: FromStr>(s: &str) -> Result<T, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {s}"))
}

fn default_db(patients: usize) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| PathBuf::from(d).join("bench"))
        .unwrap_or_else(|| PathBuf::from("/tmp/clinic-bench"));
    dir.join(format!("search-{patients}.db"))
}

fn remove_db(path: &Path) {
    for ext in ["", "-wal", "-shm", ".lock"] {
        let mut p = path.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Opens the bench database, building it unless it already holds exactly `n` patients.
async fn prepare(path: &Path, o: &Options, explicit: bool) -> Result<Store, String> {
    if path.exists() && !o.rebuild {
        let store = Store::open(
            path,
            OpenOptions {
                create: false,
                exclusive: false,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let count = store.patient_count().await.map_err(|e| e.to_string())?;
        if count == o.patients as i64 {
            eprintln!("reusing {} ({count} patients)", path.display());
            return Ok(store);
        }
        store.close().await;
        if explicit {
            return Err(format!(
                "{} holds {count} patients, not {}; pass --rebuild to replace it",
                path.display(),
                o.patients
            ));
        }
    }
    remove_db(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let store = Store::open(
        path,
        OpenOptions {
            create: true,
            exclusive: false,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let actor = Actor::system("search_bench");
    let today = clinic_store::patients::today();
    let started = Instant::now();
    let mut generator = clinic_store::demo::patients(o.seed);
    let mut done = 0;
    while done < o.patients {
        let n = BATCH.min(o.patients - done);
        let batch: Vec<Mutation> = generator
            .by_ref()
            .take(n)
            .map(|input| Mutation::PatientCreate {
                id: uuid::Uuid::now_v7(),
                fields: input.validate(today).expect("demo patients are valid"),
            })
            .collect();
        store
            .commit_batch(&actor, batch)
            .await
            .map_err(|e| e.to_string())?;
        done += n;
        if done % 100_000 == 0 || done == o.patients {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "built {done} patients in {secs:.0} s ({:.0} rows/s)",
                done as f64 / secs
            );
        }
    }
    Ok(store)
}

/// A stored patient the queries are drawn from.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Sample {
    mrn: String,
    family_name: String,
    given_name: String,
    middle_name: Option<String>,
    birth_date: String,
    phones: String,
    national_id: Option<String>,
}

impl Sample {
    fn is_cyrillic(&self) -> bool {
        self.family_name
            .chars()
            .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c))
    }

    fn name_parts(&self) -> Vec<&str> {
        [
            Some(self.family_name.as_str()),
            Some(self.given_name.as_str()),
            self.middle_name.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn phone(&self) -> Option<String> {
        let list: Vec<String> = serde_json_lite(&self.phones);
        list.into_iter().next()
    }
}

/// The phones column is a JSON array of strings without escapes (digits and
/// separators only), so a tiny reader does.
fn serde_json_lite(s: &str) -> Vec<String> {
    s.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|p| p.trim().trim_matches('"').to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    NameFull,
    NamePrefix,
    TwoWords,
    Latin,
    Typo,
    Mrn,
    Phone,
    BirthDate,
    NationalId,
    NameAndDate,
    MrnDigits,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::NameFull,
        Kind::NamePrefix,
        Kind::TwoWords,
        Kind::Latin,
        Kind::Typo,
        Kind::Mrn,
        Kind::Phone,
        Kind::BirthDate,
        Kind::NationalId,
        Kind::NameAndDate,
        Kind::MrnDigits,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::NameFull => "name_full",
            Kind::NamePrefix => "name_prefix",
            Kind::TwoWords => "two_words",
            Kind::Latin => "latin_of_cyrillic",
            Kind::Typo => "one_typo",
            Kind::Mrn => "mrn",
            Kind::Phone => "phone",
            Kind::BirthDate => "birth_date",
            Kind::NationalId => "national_id",
            Kind::NameAndDate => "name_and_birth_date",
            Kind::MrnDigits => "mrn_digits",
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One edit away from `word`, never at the first letter.
fn typo(rng: &mut StdRng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() < 4 {
        return word.to_owned();
    }
    let i = rng.gen_range(1..chars.len() - 1);
    match rng.gen_range(0..4) {
        0 => {
            chars.remove(i);
        }
        1 => chars.swap(i, i + 1),
        2 => {
            let c = chars[rng.gen_range(0..chars.len())];
            chars.insert(i, c);
        }
        _ => {
            let j = (i + 1 + rng.gen_range(0..chars.len() - 1)) % chars.len();
            chars[i] = chars[j];
        }
    }
    chars.into_iter().collect()
}

/// The same number written the other way: local for international and back,
/// or bare digits.
fn reformat_phone(rng: &mut StdRng, phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if rng.gen_bool(0.4) {
        return digits;
    }
    if let Some(rest) = phone.strip_prefix("+7") {
        let d: String = rest.chars().filter(char::is_ascii_digit).collect();
        return format!("8 ({}) {}-{}-{}", &d[..3], &d[3..6], &d[6..8], &d[8..]);
    }
    if let Some(rest) = phone.strip_prefix("+44") {
        let d: String = rest.chars().filter(char::is_ascii_digit).collect();
        return format!("0{} {}", &d[..4], &d[4..]);
    }
    if let Some(rest) = digits.strip_prefix('0') {
        return format!("+66 {}-{}-{}", &rest[..2], &rest[2..5], &rest[5..]);
    }
    digits
}

fn make_query(rng: &mut StdRng, kind: Kind, samples: &[Sample]) -> String {
    let pick = |rng: &mut StdRng, want_cyrillic: bool| -> Sample {
        loop {
            let s = samples.choose(rng).expect("samples").clone();
            if !want_cyrillic || s.is_cyrillic() {
                return s;
            }
        }
    };
    match kind {
        Kind::NameFull => {
            let s = pick(rng, false);
            s.name_parts().choose(rng).expect("names").to_string()
        }
        Kind::NamePrefix => {
            let s = pick(rng, false);
            let part = *s.name_parts().choose(rng).expect("names");
            let len = rng.gen_range(2..=5).min(part.chars().count());
            part.chars().take(len).collect()
        }
        Kind::TwoWords => {
            let s = pick(rng, false);
            if rng.gen_bool(0.5) {
                format!("{} {}", s.family_name, s.given_name)
            } else {
                format!("{} {}", s.given_name, s.family_name)
            }
        }
        Kind::Latin => {
            let s = pick(rng, true);
            let family = capitalise(&text::transliterate(&text::fold(&s.family_name)));
            if rng.gen_bool(0.5) {
                family
            } else {
                format!(
                    "{} {family}",
                    capitalise(&text::transliterate(&text::fold(&s.given_name)))
                )
            }
        }
        Kind::Typo => {
            let s = pick(rng, false);
            let part = if s.family_name.chars().count() >= 4 {
                &s.family_name
            } else {
                &s.given_name
            };
            typo(rng, part)
        }
        Kind::Mrn => {
            let s = pick(rng, false);
            if rng.gen_bool(0.5) {
                s.mrn
            } else {
                s.mrn.replace('-', "").to_lowercase()
            }
        }
        Kind::Phone => loop {
            if let Some(p) = pick(rng, false).phone() {
                break reformat_phone(rng, &p);
            }
        },
        Kind::BirthDate => dotted_date(&pick(rng, false).birth_date),
        // The whole number as printed on a Thai card, bare, or its last
        // four to six digits.
        Kind::NationalId => loop {
            let Some(id) = pick(rng, false).national_id else {
                continue;
            };
            break match rng.gen_range(0..3) {
                0 if id.len() == 13 => format!(
                    "{}-{}-{}-{}-{}",
                    &id[..1],
                    &id[1..5],
                    &id[5..10],
                    &id[10..12],
                    &id[12..]
                ),
                1 => id.clone(),
                _ => id[id.len() - rng.gen_range(4..=6)..].to_owned(),
            };
        },
        Kind::NameAndDate => {
            let s = pick(rng, false);
            let date = if rng.gen_bool(0.5) {
                s.birth_date.clone()
            } else {
                dotted_date(&s.birth_date)
            };
            format!("{} {date}", s.family_name)
        }
        Kind::MrnDigits => {
            let s = pick(rng, false);
            s.mrn.split('-').nth(1).unwrap_or_default().to_owned()
        }
    }
}

/// `yyyy-mm-dd` as `dd.mm.yyyy`, the way Russian desks write dates.
fn dotted_date(iso: &str) -> String {
    let (y, rest) = iso.split_at(4);
    let (m, d) = (&rest[1..3], &rest[4..6]);
    format!("{d}.{m}.{y}")
}

/// Seeded sample rows, read through a separate read-only connection.
async fn draw_samples(
    pool: &SqlitePool,
    rng: &mut StdRng,
    n: usize,
) -> Result<Vec<Sample>, sqlx::Error> {
    let max: i64 = sqlx::query_scalar("SELECT max(rowid) FROM patients")
        .fetch_one(pool)
        .await?;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let rowid = rng.gen_range(1..=max);
        let row: Option<Sample> = sqlx::query_as(
            "SELECT mrn, family_name, given_name, middle_name, birth_date, phones, national_id \
             FROM patients WHERE rowid = ?",
        )
        .bind(rowid)
        .fetch_optional(pool)
        .await?;
        out.extend(row);
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(o).await {
        eprintln!("search_bench: {e}");
        std::process::exit(1);
    }
}

async fn run(o: Options) -> Result<(), String> {
    let explicit = o.db.is_some();
    let path = o.db.clone().unwrap_or_else(|| default_db(o.patients));
    let store = prepare(&path, &o, explicit).await?;

    let reader = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&path).read_only(true))
        .await
        .map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0x5EA2C4);
    let samples = draw_samples(&reader, &mut rng, 4_000)
        .await
        .map_err(|e| e.to_string())?;
    reader.close().await;

    let mut mix = |n: usize| -> Vec<(Kind, String)> {
        (0..n)
            .map(|i| {
                let kind = Kind::ALL[i % Kind::ALL.len()];
                (kind, make_query(&mut rng, kind, &samples))
            })
            .collect()
    };
    let warmup = mix(400);
    let mut queries = mix(o.queries);
    queries.shuffle(&mut rng);

    for (_, q) in &warmup {
        store.search(q, LIMIT).await.map_err(|e| e.to_string())?;
    }
    let mut timings: Vec<Timing> = Vec::with_capacity(queries.len());
    for (kind, q) in &queries {
        let t = Instant::now();
        let found = store.search(q, LIMIT).await.map_err(|e| e.to_string())?;
        timings.push(Timing {
            ms: t.elapsed().as_secs_f64() * 1000.0,
            kind: *kind,
            query: q.clone(),
            found: found.len(),
        });
    }
    store.close().await;
    eprintln!(
        "{} queries over {} patients ({})",
        queries.len(),
        o.patients,
        path.display(),
    );
    report(&timings);
    Ok(())
}

/// One timed search.
#[derive(Clone)]
struct Timing {
    ms: f64,
    kind: Kind,
    query: String,
    found: usize,
}

/// Prints the percentiles, overall and per kind, as `bench:` lines, and
/// the slowest queries on stderr.
fn report(timings: &[Timing]) {
    let name = |metric: &str| format!("patient_search_{metric}");
    let mut all: Vec<f64> = timings.iter().map(|t| t.ms).collect();
    all.sort_by(f64::total_cmp);
    let mut by_kind: BTreeMap<Kind, Vec<&Timing>> = BTreeMap::new();
    for t in timings {
        by_kind.entry(t.kind).or_default().push(t);
    }
    let mut worst = 0.0_f64;
    for (kind, v) in &by_kind {
        let mut ms: Vec<f64> = v.iter().map(|x| x.ms).collect();
        ms.sort_by(f64::total_cmp);
        let misses = v.iter().filter(|x| x.found == 0).count();
        let p95 = percentile(&ms, 95.0);
        worst = worst.max(p95);
        eprintln!(
            "  kind {:<20} n={:<4} p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms  empty {misses}",
            kind.name(),
            ms.len(),
            percentile(&ms, 50.0),
            p95,
            ms.last().copied().unwrap_or(f64::NAN),
        );
        println!(
            "bench: {} {p95:.2} ms",
            name(&format!("{}_p95_ms", kind.name()))
        );
    }
    let mut slowest: Vec<&Timing> = timings.iter().collect();
    slowest.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    eprintln!("  slowest queries:");
    for t in slowest.iter().take(8) {
        eprintln!(
            "    {:>8.2} ms  {:<20} {:>3} results  {:?}",
            t.ms,
            t.kind.name(),
            t.found,
            t.query
        );
    }
    println!("bench: {} {:.2} ms", name("p50_ms"), percentile(&all, 50.0));
    println!("bench: {} {:.2} ms", name("p95_ms"), percentile(&all, 95.0));
    println!("bench: {} {worst:.2} ms", name("worst_kind_p95_ms"));
}
