//! The one search box on a real database.

use crate::support::{TestDb, fields};

async fn seeded() -> TestDb {
    let db = TestDb::new().await;
    let mut batch = Vec::new();
    let people = [
        (
            "Иванов",
            "Пётр",
            Some("Сергеевич"),
            "1980-03-21",
            "+7 912 345-67-89",
        ),
        ("Ёлкина", "Анна", None, "1991-07-02", "+7 900 111 22 33"),
        ("ใจดี", "สมชาย", None, "1975-06-01", "081 234 5678"),
        ("สุขสวัสดิ์", "มาลี", None, "1988-12-12", "089 765 4321"),
        ("Müller", "José", None, "1966-02-02", "+49 30 1234567"),
        ("Smith", "Ivan", None, "2001-01-01", "+44 7700 900123"),
    ];
    for (family, given, middle, birth, phone) in people {
        let mut f = fields(family, given, birth);
        f.middle_name = middle.map(str::to_owned);
        f.phones = vec![phone.to_owned()];
        f.national_id = national_id_of(family).map(str::to_owned);
        batch.push(f);
    }
    // Noise, so that ranking matters.
    for input in clinic_store::demo::patients(7).take(300) {
        batch.push(input.validate(clinic_store::patients::today()).unwrap());
    }
    db.register_all(batch).await;
    db
}

/// The seeded people's national IDs, as validation stores them: a Thai
/// citizen ID, a Russian SNILS, a passport with letters.
fn national_id_of(family: &str) -> Option<&'static str> {
    match family {
        "ใจดี" => Some("1100700123456"),
        "Иванов" => Some("11223344595"),
        "Müller" => Some("C01X00T47"),
        _ => None,
    }
}

async fn names(db: &TestDb, q: &str) -> Vec<String> {
    db.store
        .search(q, 20)
        .await
        .unwrap()
        .into_iter()
        .map(|p| format!("{} {}", p.family_name, p.given_name))
        .collect()
}

#[tokio::test]
async fn names_are_found_in_any_script_case_and_order() {
    let db = seeded().await;
    let somchai = names(&db, "สมช").await;
    assert!(
        somchai.contains(&"ใจดี สมชาย".to_owned()),
        "Thai by the start of the given name: {somchai:?}"
    );
    assert!(somchai.iter().all(|n| n.contains("สมช")), "{somchai:?}");
    assert!(
        names(&db, "ใจ").await.contains(&"ใจดี สมชาย".to_owned()),
        "Thai by the start of the family name"
    );
    assert_eq!(
        names(&db, "елкина").await.first().map(String::as_str),
        Some("Ёлкина Анна"),
        "ё = е"
    );
    assert_eq!(
        names(&db, "ИВАНОВ пётр").await.first().map(String::as_str),
        Some("Иванов Пётр")
    );
    assert_eq!(
        names(&db, "пет ива").await.first().map(String::as_str),
        Some("Иванов Пётр"),
        "prefixes in any order"
    );
    assert_eq!(
        names(&db, "ivanov petr").await.first().map(String::as_str),
        Some("Иванов Пётр"),
        "Latin spelling of Cyrillic"
    );
    let ivanov = names(&db, "ivanov").await;
    assert!(
        ivanov[..3].iter().all(|n| n.starts_with("Иванов ")),
        "the exact family name first: {ivanov:?}"
    );
    assert_eq!(
        names(&db, "muller jose").await.first().map(String::as_str),
        Some("Müller José"),
        "diacritics ignored"
    );
    assert!(names(&db, "zzzzqqq").await.is_empty());
}

#[tokio::test]
async fn exact_matches_rank_before_prefixes() {
    let db = seeded().await;
    let found = names(&db, "ivan").await;
    // "Smith Ivan" matches "ivan" exactly; "Иванов" only as a prefix (via its skeleton).
    let smith = found.iter().position(|n| n == "Smith Ivan").unwrap();
    let ivanov = found.iter().position(|n| n == "Иванов Пётр").unwrap();
    assert!(smith < ivanov, "{found:?}");
}

#[tokio::test]
async fn one_typo_is_forgiven_when_nothing_matches_exactly() {
    let db = seeded().await;
    let typo = names(&db, "Ивнаов").await;
    assert!(
        typo.contains(&"Иванов Пётр".to_owned()),
        "swapped letters: {typo:?}"
    );
    assert!(
        typo[0].starts_with("Иванов"),
        "whole-name typos rank before patronymics: {typo:?}"
    );
    assert!(
        names(&db, "สมชาบ").await.contains(&"ใจดี สมชาย".to_owned()),
        "a wrong Thai letter"
    );
}

#[tokio::test]
async fn phones_dates_and_mrns_are_recognised() {
    let db = seeded().await;
    assert_eq!(
        names(&db, "8 (912) 345 67 89").await,
        ["Иванов Пётр"],
        "phone in another format"
    );
    assert_eq!(names(&db, "0812345678").await, ["ใจดี สมชาย"]);
    assert!(
        names(&db, "21.03.1980")
            .await
            .contains(&"Иванов Пётр".to_owned())
    );
    assert!(
        names(&db, "1980-03-21")
            .await
            .contains(&"Иванов Пётр".to_owned())
    );
    let p = db.store.search("Müller", 1).await.unwrap().remove(0);
    assert_eq!(
        db.store.search(&p.mrn.to_lowercase(), 5).await.unwrap()[0].id,
        p.id,
        "MRN in any case"
    );
    assert_eq!(
        db.store.search(&p.mrn.replace('-', ""), 5).await.unwrap()[0].id,
        p.id,
        "MRN without hyphens"
    );
}

#[tokio::test]
async fn hostile_queries_are_plain_text() {
    let db = seeded().await;
    for q in [
        "'; DROP TABLE patients; --",
        "%",
        "_",
        "\u{0000}",
        "a\"b",
        // FTS5 query syntax, which must reach the index as plain words.
        "NEAR(иван петр)",
        "ivan* OR petr",
        "\"",
        "-ivan ^petr",
        "ivan:petr",
        "{family}: ivan",
        &"я".repeat(5000),
    ] {
        db.store.search(q, 20).await.unwrap();
    }
    assert!(db.store.patient_count().await.unwrap() > 300);
}

#[tokio::test]
async fn national_ids_are_found_whole_or_by_their_ending_in_any_format() {
    let db = seeded().await;
    for q in [
        "1100700123456",
        "1 1007 00123 45 6",
        "1-1007-00123-45-6",
        "23456",
        "3456",
    ] {
        assert_eq!(
            names(&db, q).await.first().map(String::as_str),
            Some("ใจดี สมชาย"),
            "{q}"
        );
    }
    for q in ["112-233-445 95", "11223344595", "445 95"] {
        assert_eq!(
            names(&db, q).await.first().map(String::as_str),
            Some("Иванов Пётр"),
            "{q}"
        );
    }
    for q in ["C01X00T47", "c01x00t47", "00T47"] {
        assert_eq!(names(&db, q).await, ["Müller José"], "{q}");
    }
    // The middle of a number is not its ending.
    assert!(
        !names(&db, "0070012")
            .await
            .contains(&"ใจดี สมชาย".to_owned())
    );
}

#[tokio::test]
async fn a_birth_date_narrows_a_name() {
    let db = seeded().await;
    let mut f = fields("Smith", "John", "1970-01-01");
    f.phones = vec![];
    let other = fields("Smith", "John", "1985-05-05");
    db.register_all(vec![f, other]).await;
    for q in [
        "smith 1970-01-01",
        "01.01.1970 smith",
        "John Smith 01/01/1970",
        "smth 1970-01-01",
    ] {
        let found = db.store.search(q, 20).await.unwrap();
        let who: Vec<_> = found
            .iter()
            .map(|p| format!("{} {} {}", p.family_name, p.given_name, p.birth_date))
            .collect();
        assert_eq!(who, ["Smith John 1970-01-01"], "{q}");
    }
    assert!(
        names(&db, "ivanov 1970-01-01").await.is_empty(),
        "another birth date"
    );
    assert_eq!(names(&db, "ivan 21.03.1980").await, ["Иванов Пётр"]);
}

#[tokio::test]
async fn a_family_name_ranks_above_a_patronymic() {
    let db = TestDb::new().await;
    let mut batch = Vec::new();
    for (family, given, middle) in [
        ("Петров", "Иван", Some("Иванович")),
        // Sorts first by name: only the ranking puts it after the Ивановы.
        ("Абрамова", "Мария", Some("Ивановна")),
        ("Иванов", "Олег", None),
        ("Иванова", "Анна", Some("Петровна")),
        ("Ивановский", "Борис", None),
        ("Алексеев", "Иван", None),
    ] {
        let mut f = fields(family, given, "1980-01-01");
        f.middle_name = middle.map(str::to_owned);
        batch.push(f);
    }
    db.register_all(batch).await;
    let found = names(&db, "Иванов").await;
    assert_eq!(
        found[0], "Иванов Олег",
        "the exact family name first: {found:?}"
    );
    let families: Vec<&str> = found.iter().map(|n| n.split(' ').next().unwrap()).collect();
    let last_family = families
        .iter()
        .rposition(|f| f.starts_with("Иванов"))
        .unwrap();
    let first_other = families
        .iter()
        .position(|f| !f.starts_with("Иванов"))
        .unwrap();
    assert!(
        last_family < first_other,
        "family names before patronymics: {found:?}"
    );
    // A prefix of a family name beats the same prefix of a patronymic.
    let prefix = names(&db, "Ивано").await;
    let families: Vec<&str> = prefix
        .iter()
        .map(|n| n.split(' ').next().unwrap())
        .collect();
    assert_eq!(families.len(), 5, "{prefix:?}");
    assert!(
        families[..3].iter().all(|f| f.starts_with("Иванов")),
        "family names before patronymics: {prefix:?}"
    );
}

#[tokio::test]
async fn an_mrn_is_found_by_its_sequence_digits() {
    let db = seeded().await;
    let p = db.store.search("Müller", 1).await.unwrap().remove(0);
    // `K7M-000005-X`: the six digits, or the last four as a label cut short.
    let seq = p.mrn.split('-').nth(1).unwrap().to_owned();
    for q in [seq.clone(), seq[2..].to_owned()] {
        let found = db.store.search(&q, 20).await.unwrap();
        assert_eq!(found.first().map(|f| f.id), Some(p.id), "{q}: {found:?}");
    }
}
