-- A leaner search index, for bulk loads (CSV import, a first full pull).
--
-- Before: search_token held (token, patient uuid text) twice over, in its
-- primary key and in a (patient_id, token) index used to drop a patient's
-- tokens and to check a second query word. Half of every entry was the
-- 36-character id.
--
-- Now: patients get a stable integer key (an INTEGER PRIMARY KEY, which
-- VACUUM and VACUUM INTO keep, unlike an implicit rowid) and a
-- `search_keys` column, the JSON array of the record's tokens. search_token
-- is (token, patient_key) only; it is derived from search_keys by the write
-- path (clinic-store's sql::index_patients / reindex_patient), which also
-- checks a second query word against search_keys of the candidate row.

CREATE TABLE patients_new (
    key                      INTEGER PRIMARY KEY,
    id                       TEXT    NOT NULL UNIQUE,
    mrn                      TEXT    NOT NULL UNIQUE,
    mrn_compact              TEXT    NOT NULL UNIQUE,
    family_name              TEXT    NOT NULL,
    given_name               TEXT    NOT NULL,
    middle_name              TEXT,
    sex                      TEXT    NOT NULL CHECK (sex IN ('female','male','other','unknown')),
    birth_date               TEXT    NOT NULL,
    birth_date_estimated     INTEGER NOT NULL DEFAULT 0,
    phones                   TEXT    NOT NULL DEFAULT '[]',
    national_id              TEXT,
    address                  TEXT,
    emergency_contact_name   TEXT,
    emergency_contact_phone  TEXT,
    allergies                TEXT,
    notes                    TEXT,
    status                   TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active','merged')),
    -- Refers to its own table; the RENAME below makes it `patients(id)`.
    merged_into              TEXT    REFERENCES patients_new(id),
    -- Folded, script-independent name key for duplicate detection.
    name_key                 TEXT    NOT NULL,
    created_at               TEXT    NOT NULL,
    created_by               TEXT    NOT NULL,
    updated_at               TEXT    NOT NULL,
    updated_by               TEXT    NOT NULL,
    version                  INTEGER NOT NULL DEFAULT 1,
    workstation_id           TEXT    NOT NULL,
    -- The record's search tokens as a JSON array ('[]' once merged): the
    -- source search_token is derived from.
    search_keys              TEXT    NOT NULL DEFAULT '[]'
);

INSERT INTO patients_new (key, id, mrn, mrn_compact, family_name, given_name, middle_name, sex,
    birth_date, birth_date_estimated, phones, national_id, address, emergency_contact_name,
    emergency_contact_phone, allergies, notes, status, merged_into, name_key, created_at,
    created_by, updated_at, updated_by, version, workstation_id, search_keys)
SELECT p.rowid, p.id, p.mrn, p.mrn_compact, p.family_name, p.given_name, p.middle_name, p.sex,
    p.birth_date, p.birth_date_estimated, p.phones, p.national_id, p.address,
    p.emergency_contact_name, p.emergency_contact_phone, p.allergies, p.notes, p.status,
    p.merged_into, p.name_key, p.created_at, p.created_by, p.updated_at, p.updated_by, p.version,
    p.workstation_id,
    COALESCE((SELECT json_group_array(t.token) FROM search_token t WHERE t.patient_id = p.id), '[]')
FROM patients p ORDER BY p.rowid;

-- Nothing refers to the old table any more (patients_new refers to itself),
-- so its implicit DELETE breaks no foreign key; it fires no triggers.
DROP TABLE patients;
ALTER TABLE patients_new RENAME TO patients;
CREATE INDEX patients_birth_date ON patients (birth_date);
CREATE INDEX patients_national_id ON patients (national_id) WHERE national_id IS NOT NULL;
CREATE INDEX patients_name_key ON patients (name_key, birth_date);
CREATE TRIGGER patients_no_delete BEFORE DELETE ON patients
BEGIN SELECT RAISE(ABORT, 'patients are never deleted'); END;

DROP TABLE search_token;
CREATE TABLE search_token (
    token        TEXT    NOT NULL,
    patient_key  INTEGER NOT NULL,
    PRIMARY KEY (token, patient_key)
) WITHOUT ROWID;
INSERT INTO search_token (token, patient_key)
SELECT j.value, p.key FROM patients p, json_each(p.search_keys) j ORDER BY 1, 2;
