//! Demo data: a clinic with departments and staff, and patients with
//! realistic names in Russian, Thai and English. The same generator feeds
//! the benchmarks, so it is deterministic for a seed.

use chrono::NaiveDate;
use clinic_domain::FieldCode;
use clinic_domain::Role;
use clinic_domain::patient::{PatientInput, Sex};
use clinic_domain::record::Department;
use clinic_domain::sync::Entity;
use clinic_domain::user::Language;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::patients::today;
use crate::users::hash_password;
use crate::{Actor, Mutation};
use crate::{Result, Store, StoreError};

/// The password every demo user signs in with.
pub const DEMO_PASSWORD: &str = "Clinic-Demo-2026";

const RU_FAMILY_M: [&str; 24] = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Захаров",
];
const RU_GIVEN_M: [&str; 16] = [
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Артём",
    "Илья",
    "Кирилл",
    "Михаил",
    "Никита",
    "Матвей",
    "Роман",
    "Егор",
    "Юрий",
    "Пётр",
];
const RU_GIVEN_F: [&str; 16] = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Екатерина",
    "Светлана",
    "Юлия",
    "Анастасия",
    "Дарья",
    "Ксения",
    "Алёна",
    "Полина",
    "Софья",
];
const RU_PATRONYMIC_M: [&str; 8] = [
    "Александрович",
    "Дмитриевич",
    "Сергеевич",
    "Андреевич",
    "Иванович",
    "Петрович",
    "Михайлович",
    "Юрьевич",
];
const RU_PATRONYMIC_F: [&str; 8] = [
    "Александровна",
    "Дмитриевна",
    "Сергеевна",
    "Андреевна",
    "Ивановна",
    "Петровна",
    "Михайловна",
    "Юрьевна",
];
const TH_FAMILY: [&str; 20] = [
    "ใจดี",
    "สุขสวัสดิ์",
    "ศรีสุข",
    "วงศ์สวัสดิ์",
    "แสงทอง",
    "บุญมา",
    "ทองดี",
    "รัตนพันธ์",
    "พึ่งบุญ",
    "จันทร์เพ็ญ",
    "มั่นคง",
    "เพชรรัตน์",
    "สมบูรณ์",
    "ปัญญาดี",
    "ศักดิ์สิทธิ์",
    "กาญจนวงศ์",
    "ชัยมงคล",
    "เจริญผล",
    "นาคประเสริฐ",
    "อินทร์แก้ว",
];
const TH_GIVEN_M: [&str; 12] = [
    "สมชาย",
    "สมศักดิ์",
    "ประเสริฐ",
    "วิชัย",
    "สมพงษ์",
    "ธนากร",
    "ณัฐพล",
    "กิตติ",
    "อนุชา",
    "สุริยา",
    "ชัยวัฒน์",
    "พีระพงษ์",
];
const TH_GIVEN_F: [&str; 12] = [
    "สมหญิง",
    "มาลี",
    "สุดารัตน์",
    "วันเพ็ญ",
    "กนกวรรณ",
    "นภัสสร",
    "ศิริพร",
    "ปิยะนุช",
    "อรุณี",
    "จิราพร",
    "พรทิพย์",
    "ดวงใจ",
];
const EN_FAMILY: [&str; 20] = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Walker",
];
const EN_GIVEN_M: [&str; 12] = [
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Daniel",
    "Mark", "Paul", "Steven",
];
const EN_GIVEN_F: [&str; 12] = [
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Emily",
    "Laura",
    "Helen",
];
const RU_STREETS: [&str; 5] = [
    "ул. Ленина",
    "пр. Мира",
    "ул. Садовая",
    "ул. Гагарина",
    "наб. Невы",
];
const TH_STREETS: [&str; 4] = ["ถนนสุขุมวิท", "ถนนพหลโยธิน", "ถนนรัชดาภิเษก", "ถนนเพชรบุรี"];
const EN_STREETS: [&str; 4] = ["High Street", "Station Road", "Church Lane", "Park Avenue"];
/// Allergies, written in the patient's own script (an English patient
/// with a Russian allergy reads as a data error).
const RU_ALLERGIES: [&str; 3] = ["Пенициллин", "Латекс", "Аспирин"];
const TH_ALLERGIES: [&str; 3] = ["ถั่วลิสง", "เพนิซิลลิน", "แอสไพริน"];
const EN_ALLERGIES: [&str; 3] = ["Penicillin", "Latex", "Aspirin"];

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

/// A deterministic stream of realistic registrations: about 45% Russian,
/// 35% Thai and 20% English names, with phones, ids and addresses.
pub fn patients(seed: u64) -> impl Iterator<Item = PatientInput> {
    let mut rng = StdRng::seed_from_u64(seed);
    let today = today();
    std::iter::from_fn(move || Some(one(&mut rng, today)))
}

fn one(rng: &mut StdRng, today: NaiveDate) -> PatientInput {
    let female = rng.gen_bool(0.52);
    let script = rng.gen_range(0..100);
    let age_days = rng.gen_range(0..(95 * 365));
    let birth = today - chrono::Duration::days(age_days + 1);
    let (family, given, middle, phone, street) = if script < 45 {
        let mut family = pick(rng, &RU_FAMILY_M).to_owned();
        if female {
            family.push('а');
        }
        let given = pick(rng, if female { &RU_GIVEN_F } else { &RU_GIVEN_M }).to_owned();
        let middle = pick(
            rng,
            if female {
                &RU_PATRONYMIC_F
            } else {
                &RU_PATRONYMIC_M
            },
        )
        .to_owned();
        let phone = format!(
            "+7 9{:02} {:03}-{:02}-{:02}",
            rng.gen_range(0..100),
            rng.gen_range(0..1000),
            rng.gen_range(0..100),
            rng.gen_range(0..100)
        );
        let street = format!("{}, д. {}", pick(rng, &RU_STREETS), rng.gen_range(1..200));
        (family, given, Some(middle), phone, street)
    } else if script < 80 {
        let family = pick(rng, &TH_FAMILY).to_owned();
        let given = pick(rng, if female { &TH_GIVEN_F } else { &TH_GIVEN_M }).to_owned();
        let phone = format!(
            "0{}{} {:03} {:04}",
            rng.gen_range(6..10),
            rng.gen_range(0..10),
            rng.gen_range(0..1000),
            rng.gen_range(0..10000)
        );
        let street = format!(
            "{}/{} {} กรุงเทพฯ",
            rng.gen_range(1..300),
            rng.gen_range(1..20),
            pick(rng, &TH_STREETS)
        );
        (family, given, None, phone, street)
    } else {
        let family = pick(rng, &EN_FAMILY).to_owned();
        let given = pick(rng, if female { &EN_GIVEN_F } else { &EN_GIVEN_M }).to_owned();
        let phone = format!(
            "+44 7{:03} {:06}",
            rng.gen_range(0..1000),
            rng.gen_range(0..1_000_000)
        );
        let street = format!("{} {}", rng.gen_range(1..200), pick(rng, &EN_STREETS));
        (family, given, None, phone, street)
    };
    PatientInput {
        family_name: family,
        given_name: given,
        middle_name: middle,
        sex: Some(if female { Sex::Female } else { Sex::Male }),
        birth_date: Some(birth.to_string()),
        estimated_age: None,
        phones: vec![phone],
        national_id: rng.gen_bool(0.7).then(|| {
            format!(
                "{:013}",
                rng.gen_range(1_000_000_000_000u64..9_999_999_999_999)
            )
        }),
        address: Some(street),
        allergies: rng.gen_bool(0.1).then(|| {
            let list: &[&str] = match script {
                0..45 => &RU_ALLERGIES,
                45..80 => &TH_ALLERGIES,
                _ => &EN_ALLERGIES,
            };
            pick(rng, list).to_owned()
        }),
        ..Default::default()
    }
}

/// The demo clinic's departments.
const DEPARTMENTS: [&str; 4] = [
    "Therapy / Терапия / อายุรกรรม",
    "Paediatrics / Педиатрия / กุมารเวชกรรม",
    "Cardiology / Кардиология / หทัยวิทยา",
    "Radiology / Рентгенология / รังสีวิทยา",
];

/// The demo clinic's staff: user name, display name, role, language, department index.
const STAFF: [(&str, &str, Role, Language, Option<usize>); 7] = [
    (
        "dr.petrova",
        "Dr Elena Petrova",
        Role::Doctor,
        Language::Ru,
        Some(0),
    ),
    (
        "dr.somchai",
        "Dr Somchai Jaidee",
        Role::Doctor,
        Language::Th,
        Some(1),
    ),
    (
        "dr.walker",
        "Dr Helen Walker",
        Role::Doctor,
        Language::En,
        Some(2),
    ),
    (
        "dr.orlov",
        "Dr Pavel Orlov",
        Role::Doctor,
        Language::Ru,
        Some(3),
    ),
    (
        "nurse.malee",
        "Malee Srisuk",
        Role::Nurse,
        Language::Th,
        Some(0),
    ),
    (
        "reception.anna",
        "Anna Smirnova",
        Role::Reception,
        Language::Ru,
        None,
    ),
    (
        "imaging.tom",
        "Tom Harris",
        Role::ImagingOperator,
        Language::En,
        Some(3),
    ),
];

/// Loads the demo clinic into an empty database: departments, staff (all
/// with [`DEMO_PASSWORD`]) and `patients` patients. Returns the number of
/// patients created.
pub async fn load(store: &Store, actor: &Actor, patient_count: usize) -> Result<u64> {
    actor.require(clinic_domain::Permission::ImportPatients)?;
    if store.has_patients().await? {
        return Err(StoreError::field(
            "demo",
            FieldCode::NotEmpty,
            "demo data can only be loaded into an empty database",
        ));
    }
    let password_hash = {
        let pw = DEMO_PASSWORD.to_owned();
        tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))??
    };
    let mut batch = Vec::new();
    let departments: Vec<Uuid> = DEPARTMENTS.iter().map(|_| Uuid::now_v7()).collect();
    for (id, name) in departments.iter().zip(DEPARTMENTS) {
        batch.push(Mutation::RecordCreate {
            entity: Entity::Department,
            id: *id,
            fields: serde_json::json!(Department {
                name: (*name).to_owned()
            }),
        });
    }
    for (username, display, role, language, dept) in STAFF {
        if store.user_row_by_name(username).await?.is_some() {
            continue;
        }
        let id = Uuid::now_v7();
        batch.push(Mutation::UserCreate {
            id,
            username: username.to_owned(),
            display_name: display.to_owned(),
            role,
            language,
            password_hash: password_hash.clone(),
        });
        batch.push(Mutation::UserSetDepartment {
            id,
            department_id: dept.map(|d| departments[d]),
        });
    }
    let today = today();
    for input in patients(2026).take(patient_count) {
        let fields = input
            .validate(today)
            .map_err(|e| StoreError::Internal(format!("demo patient invalid: {e:?}")))?;
        batch.push(Mutation::PatientCreate {
            id: Uuid::now_v7(),
            fields,
        });
    }
    store.commit_batch(actor, batch).await?;
    Ok(patient_count as u64)
}

#[cfg(test)]
mod tests {
    /// Which script a text is written in: Cyrillic, Thai or Latin.
    fn script(s: &str) -> &'static str {
        if s.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)) {
            "cyrillic"
        } else if s.chars().any(|c| ('\u{0E00}'..='\u{0E7F}').contains(&c)) {
            "thai"
        } else {
            "latin"
        }
    }

    #[test]
    fn allergies_are_written_in_the_patients_own_script() {
        let mut seen = 0;
        for p in super::patients(11).take(3_000) {
            if let Some(a) = &p.allergies {
                seen += 1;
                assert_eq!(script(a), script(&p.family_name), "{} / {a}", p.family_name);
            }
        }
        assert!(seen > 100, "enough demo patients have allergies: {seen}");
    }
}
