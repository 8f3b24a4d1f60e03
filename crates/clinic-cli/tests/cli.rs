//! Runs the real `clinic` binary on real temporary SQLite files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const HEADER: &str = "family_name,given_name,middle_name,sex,birth_date,phone,national_id,address";

/// Line 1 is the header; the bad rows are on lines 5, 7 and 8.
const PATIENTS_CSV: &str = "\
family_name,given_name,middle_name,sex,birth_date,phone,national_id,address
Иванов,Пётр,Сергеевич,M,1980-03-21,+7 912 345-67-89,4510123456,\"ул. Ленина, д. 5\"
ใจดี,สมศักดิ์,,M,1975-01-02,081 234 5678,1103702345671,99/1 ถนนสุขุมวิท
Smith,John,,M,1990-12-01,+44 7700 900123,,12 High Street
,Anna,,F,1990-01-01,,,
Петрова,Анна,Ивановна,Ж,1985-06-15,,,
Jones,Mary,,F,2999-01-01,,,
Brown,Paul,,M,1970-02-02,call me maybe,,
Сидоров,Алексей,,M,1966-07-07,8 (913) 111-22-33,,
";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn clinic(db: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("USER", "tester")
        .output()
        .expect("the clinic binary runs");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn search_json(db: &Path, query: &str) -> Vec<Value> {
    let r = clinic(db, &["search", query, "--json"]);
    assert_eq!(r.code, 0, "search {query:?} failed: {}", r.stderr);
    serde_json::from_str::<Vec<Value>>(&r.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", r.stdout))
}

fn family_names(found: &[Value]) -> Vec<String> {
    found
        .iter()
        .map(|p| p["family_name"].as_str().unwrap().to_owned())
        .collect()
}

/// A database with the sample patients imported.
fn imported() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "patients.csv", PATIENTS_CSV);
    let db = dir.path().join("clinic.db");
    let r = clinic(&db, &["import-patients", csv.to_str().unwrap()]);
    assert_eq!(r.code, 0, "import failed: {}\n{}", r.stdout, r.stderr);
    (dir, db)
}

async fn raw(db: &Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

#[test]
fn import_reports_counts_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "patients.csv", PATIENTS_CSV);
    let db = dir.path().join("clinic.db");
    let r = clinic(&db, &["import-patients", csv.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.contains(&"rows: 8"), "{}", r.stdout);
    assert!(lines.contains(&"imported: 5"), "{}", r.stdout);
    assert!(lines.contains(&"rejected: 3"), "{}", r.stdout);
    assert!(
        lines.contains(&"line 5: family_name: is required"),
        "{}",
        r.stdout
    );
    assert!(
        lines.contains(&"line 7: birth_date: must not be in the future"),
        "{}",
        r.stdout
    );
    assert!(
        lines.iter().any(|l| l.starts_with("line 8: phone: ")),
        "malformed phone on line 8: {}",
        r.stdout
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("line ")).count(),
        3,
        "{}",
        r.stdout
    );
    // Not a terminal: progress is one line per 10%, ending at 100%.
    assert!(r.stderr.contains("(100%)"), "{}", r.stderr);

    let found = search_json(&db, "Иванов");
    assert_eq!(
        family_names(&found)[0],
        "Иванов",
        "the exact family name ranks first"
    );
    assert!(found[0]["mrn"].as_str().is_some_and(|m| m.len() == 12));
}

#[test]
fn a_wrong_header_or_missing_file_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clinic.db");
    let bad = write(
        dir.path(),
        "bad.csv",
        "family_name,given_name,blood_group\nIvanov,Petr,A+\n",
    );
    let r = clinic(&db, &["import-patients", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown column 'blood_group'"),
        "{}",
        r.stderr
    );
    assert!(!db.exists(), "a wrong file must not create a database");

    let missing = dir.path().join("nope.csv");
    let r = clinic(&db, &["import-patients", missing.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
    assert!(!db.exists());
}

#[test]
fn a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "patients.csv", PATIENTS_CSV);
    let db = dir.path().join("clinic.db");

    // Without a database: the report, and still no file.
    let r = clinic(
        &db,
        &["import-patients", csv.to_str().unwrap(), "--dry-run"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("dry run: nothing was written"));
    assert!(r.stdout.contains("imported: 5"), "{}", r.stdout);
    assert!(!db.exists(), "a dry run must not create the database");

    // With a database: nothing is added.
    let other = write(
        dir.path(),
        "other.csv",
        &format!("{HEADER}\nOrlov,Pavel,,M,1960-01-01,,,\n"),
    );
    assert_eq!(
        clinic(&db, &["import-patients", other.to_str().unwrap()]).code,
        0
    );
    let r = clinic(
        &db,
        &["import-patients", csv.to_str().unwrap(), "--dry-run"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        search_json(&db, "Иванов").is_empty(),
        "the dry run imported rows"
    );
    assert!(search_json(&db, "smith").is_empty());
    assert_eq!(search_json(&db, "orlov").len(), 1);
}

#[test]
fn search_finds_across_scripts_and_formats() {
    let (_dir, db) = imported();

    // A Thai patient by part of the given name.
    let found = search_json(&db, "สมศ");
    assert_eq!(family_names(&found), ["ใจดี"]);
    for key in ["id", "mrn", "family_name", "given_name", "birth_date"] {
        assert!(!found[0][key].is_null(), "{key} missing in {}", found[0]);
    }
    assert_eq!(found[0]["birth_date"], "1975-01-02");

    // A Russian patient by the Latin spelling, any case. (Петрова Анна
    // Ивановна matches the prefix too, through her patronymic, but ranks below.)
    assert_eq!(
        family_names(&search_json(&db, "ivanov")),
        ["Иванов", "Петрова"]
    );
    // Both words are prefixes of Петрова Анна Ивановна's names too; the exact one wins.
    assert_eq!(family_names(&search_json(&db, "IVANOV petr"))[0], "Иванов");

    // By phone written differently: +7 912 345-67-89 as 8 912 3456789 and bare digits.
    assert_eq!(family_names(&search_json(&db, "8 912 3456789")), ["Иванов"]);
    assert_eq!(family_names(&search_json(&db, "79123456789")), ["Иванов"]);
    // The Thai local number in international form.
    assert_eq!(family_names(&search_json(&db, "+66 81 234 5678")), ["ใจดี"]);

    // By birth date as typed at reception.
    assert_eq!(family_names(&search_json(&db, "15.06.1985")), ["Петрова"]);

    // By MRN, from the JSON of another search.
    let mrn = search_json(&db, "smith")[0]["mrn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(family_names(&search_json(&db, &mrn)), ["Smith"]);

    // The table form, and a query that finds nothing.
    let r = clinic(&db, &["search", "Петрова Анна"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("Петрова") && r.stdout.contains("Ивановна"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 patient(s)"), "{}", r.stdout);
    let r = clinic(&db, &["search", "zzzzqqq"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("no patients found"));
    assert_eq!(search_json(&db, "zzzzqqq").len(), 0);
}

#[test]
fn commands_refuse_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    for args in [
        vec!["search", "x"],
        vec!["audit", "verify"],
        vec!["backup", "b.db"],
    ] {
        let r = clinic(&db, &args);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(
            r.stderr.contains("no database at"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(!db.exists(), "{args:?} created a database");
    }
}

#[tokio::test]
async fn audit_verify_detects_tampering() {
    let (_dir, db) = imported();
    let r = clinic(&db, &["audit", "verify"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Workstation init, the import's one mutation (all 5 patients), its summary.
    assert_eq!(r.stdout.trim(), "audit chain intact: 3 entries");

    let pool = raw(&db).await;
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET user_name = 'someone else' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let r = clinic(&db, &["audit", "verify"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.starts_with("audit chain BROKEN at entry 2: "),
        "{}",
        r.stdout
    );
}

#[test]
fn imported_rows_are_audited_as_the_cli_user() {
    let (_dir, db) = imported();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let names: Vec<String> = rt.block_on(async {
        let pool = raw(&db).await;
        let names =
            sqlx::query_scalar("SELECT DISTINCT user_name FROM audit_log WHERE entity = 'patient'")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        names
    });
    assert_eq!(names, ["cli: tester"]);
}

#[tokio::test]
async fn backup_and_restore_round_trip() {
    let (dir, db) = imported();
    let backup = dir.path().join("backup.db");
    let r = clinic(&db, &["backup", backup.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(backup.exists());

    // A second backup over the first is refused.
    let r = clinic(&db, &["backup", backup.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);

    // Change the live database after the backup, then restore.
    let more = write(
        dir.path(),
        "more.csv",
        &format!("{HEADER}\nOrlov,Pavel,,M,1960-01-01,,,\n"),
    );
    assert_eq!(
        clinic(&db, &["import-patients", more.to_str().unwrap()]).code,
        0
    );
    assert_eq!(search_json(&db, "orlov").len(), 1);

    let r = clinic(&db, &["restore", backup.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kept_line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("the previous database was kept as "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let kept = PathBuf::from(kept_line.trim_start_matches("the previous database was kept as "));
    assert!(kept.exists(), "{}", kept.display());

    let count = |path: PathBuf| async move {
        let pool = raw(&path).await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM patients")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    };
    assert_eq!(count(db.clone()).await, 5);
    assert_eq!(count(backup.clone()).await, 5);
    assert_eq!(
        count(kept).await,
        6,
        "the replaced file keeps the later patient"
    );
    assert!(search_json(&db, "orlov").is_empty());
    let r = clinic(&db, &["audit", "verify"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.starts_with("audit chain intact: "));

    // A missing backup is a clear error.
    let r = clinic(
        &db,
        &["restore", dir.path().join("nope.db").to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
}

/// On a workstation enrolled with a central server the CLI's import is
/// refused with a message that says what to do, and writes nothing: the
/// server must know who imported (no clinic account here).
#[tokio::test]
async fn import_is_refused_once_the_workstation_is_enrolled() {
    let (dir, db) = imported();
    // What enrolment leaves in the file (the sync suite enrols for real).
    let pool = raw(&db).await;
    sqlx::query(
        "INSERT INTO sync_state (singleton, server_url, clinic_code, clinic_id) \
         VALUES (1, 'https://clinic.example', 'central', '0190f0c0-0000-7000-8000-000000000001')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let more = write(
        dir.path(),
        "more.csv",
        &format!("{HEADER}\nOrlov,Pavel,,M,1960-01-01,,,\n"),
    );
    let r = clinic(&db, &["import-patients", more.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("syncs with a central server"),
        "{}",
        r.stderr
    );
    assert!(search_json(&db, "orlov").is_empty(), "nothing was written");
}

/// Another program (here a plain SQLite connection) still has a change in
/// the database's WAL when it is restored: the change stays with the kept
/// copy instead of being deleted with the WAL.
#[tokio::test]
async fn a_restore_keeps_the_replaced_files_wal_with_it() {
    let (dir, db) = imported();
    let backup = dir.path().join("backup.db");
    assert_eq!(clinic(&db, &["backup", backup.to_str().unwrap()]).code, 0);
    let other = raw(&db).await;
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(&other)
        .await
        .unwrap();
    sqlx::query("UPDATE workstation SET name = 'held in the WAL'")
        .execute(&other)
        .await
        .unwrap();
    let r = clinic(&db, &["restore", backup.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    other.close().await;
    let kept = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("the previous database was kept as "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let pool = raw(&kept).await;
    let name: String = sqlx::query_scalar("SELECT name FROM workstation")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(name, "held in the WAL");
}

#[test]
fn a_file_that_is_not_a_database_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clinic.db");
    // Deterministic noise that cannot start with the SQLite header.
    let bytes: Vec<u8> = (0u32..8192)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &bytes).unwrap();
    let csv = write(dir.path(), "patients.csv", PATIENTS_CSV);
    for args in [
        vec!["search", "ivanov"],
        vec!["audit", "verify"],
        vec!["backup", dir.path().join("b.db").to_str().unwrap()],
        vec!["import-patients", csv.to_str().unwrap()],
    ] {
        let r = clinic(&db, &args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stdout);
        assert!(r.stderr.contains("damaged"), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the file's bytes changed"
    );
    assert!(!dir.path().join("clinic.db-wal").exists());

    // Restoring a damaged file as a backup is refused too.
    let good_dir = tempfile::tempdir().unwrap();
    let good = good_dir.path().join("good.db");
    let r = clinic(&good, &["restore", db.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}
