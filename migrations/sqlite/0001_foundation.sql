-- The workstation's local store. Every table that holds records carries the
-- sync columns (created_at/by, updated_at/by, version, workstation_id), and
-- every write goes through the store's one write path, which also appends to
-- audit_log and (for synced records) to outbox in the same transaction.

-- This workstation: one row, made on first start.
CREATE TABLE workstation (
    singleton          INTEGER PRIMARY KEY CHECK (singleton = 1),
    id                 TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    mrn_prefix         TEXT    NOT NULL,
    mrn_next_seq       INTEGER NOT NULL DEFAULT 1 CHECK (mrn_next_seq >= 1),
    idle_lock_minutes  INTEGER NOT NULL DEFAULT 10 CHECK (idle_lock_minutes BETWEEN 1 AND 240),
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    version            INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id               TEXT    PRIMARY KEY,
    username         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    display_name     TEXT    NOT NULL,
    role             TEXT    NOT NULL CHECK (role IN ('admin','doctor','nurse','reception','imaging_operator')),
    language         TEXT    NOT NULL DEFAULT 'en' CHECK (language IN ('en','ru','th')),
    password_hash    TEXT    NOT NULL,
    disabled         INTEGER NOT NULL DEFAULT 0,
    failed_sign_ins  INTEGER NOT NULL DEFAULT 0,
    locked_until     TEXT,
    created_at       TEXT    NOT NULL,
    created_by       TEXT,
    updated_at       TEXT    NOT NULL,
    updated_by       TEXT,
    version          INTEGER NOT NULL DEFAULT 1,
    workstation_id   TEXT    NOT NULL
);

CREATE TABLE patients (
    id                       TEXT    PRIMARY KEY,
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
    merged_into              TEXT    REFERENCES patients(id),
    -- Folded, script-independent name key for duplicate detection.
    name_key                 TEXT    NOT NULL,
    created_at               TEXT    NOT NULL,
    created_by               TEXT    NOT NULL,
    updated_at               TEXT    NOT NULL,
    updated_by               TEXT    NOT NULL,
    version                  INTEGER NOT NULL DEFAULT 1,
    workstation_id           TEXT    NOT NULL
);
CREATE INDEX patients_birth_date ON patients (birth_date);
CREATE INDEX patients_national_id ON patients (national_id) WHERE national_id IS NOT NULL;
CREATE INDEX patients_name_key ON patients (name_key, birth_date);

-- Patients are never deleted: they are merged or amended.
CREATE TRIGGER patients_no_delete BEFORE DELETE ON patients
BEGIN SELECT RAISE(ABORT, 'patients are never deleted'); END;

-- Search index, derived from patients by the write path. Tokens carry a
-- kind prefix: 'n:' folded name part, 's:' Latin skeleton, 'p:' reversed
-- phone digits. Prefix search is a range scan on the primary key.
CREATE TABLE search_token (
    token       TEXT NOT NULL,
    patient_id  TEXT NOT NULL,
    PRIMARY KEY (token, patient_id)
) WITHOUT ROWID;
CREATE INDEX search_token_patient ON search_token (patient_id, token);

-- Distinct name tokens, for typo-tolerant search.
CREATE TABLE search_vocab (
    token TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Append-only, hash-chained audit trail.
CREATE TABLE audit_log (
    seq             INTEGER PRIMARY KEY,
    at              TEXT    NOT NULL,
    user_id         TEXT,
    user_name       TEXT    NOT NULL,
    workstation_id  TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    entity          TEXT    NOT NULL,
    entity_id       TEXT,
    before          TEXT,
    after           TEXT,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (entity_id, seq);
CREATE INDEX audit_log_user ON audit_log (user_id, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Mutations waiting to be pushed to the central server, in order.
CREATE TABLE outbox (
    seq                 INTEGER PRIMARY KEY,
    mutation_id         TEXT    NOT NULL UNIQUE,
    entity              TEXT    NOT NULL,
    entity_id           TEXT    NOT NULL,
    op                  TEXT    NOT NULL,
    base_version        INTEGER,
    payload             TEXT    NOT NULL,
    created_at          TEXT    NOT NULL,
    user_id             TEXT,
    -- pending until the server acknowledges the mutation id.
    status              TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending','applied','rejected','conflict')),
    outcome             TEXT
);
CREATE INDEX outbox_pending ON outbox (status, seq);

-- Clinic departments; scheduling and the queue refer to them.
CREATE TABLE departments (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    workstation_id  TEXT    NOT NULL
);
ALTER TABLE users ADD COLUMN department_id TEXT REFERENCES departments(id);
