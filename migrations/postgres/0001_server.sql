-- The central server's database. One server serves several clinics; every
-- clinic-owned row carries clinic_id and every query filters on it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Raised by the append-only tables' triggers.
CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME;
END $$;

CREATE TABLE clinics (
    id          uuid PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9-]{2,40}$'),
    name        text NOT NULL,
    -- Patients registered through the REST API get MRNs with this prefix;
    -- no workstation of the clinic may use it.
    mrn_prefix  text NOT NULL,
    mrn_next    bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The change feed's counter, one row per clinic. A writer takes its numbers
-- with UPDATE ... RETURNING just before commit, so the row lock orders
-- commits: a change can never become visible with a number below one that a
-- reader has already passed.
CREATE TABLE clinic_feed_counter (
    clinic_id  uuid PRIMARY KEY REFERENCES clinics(id),
    last_seq   bigint NOT NULL DEFAULT 0
);

CREATE TABLE users (
    id               uuid PRIMARY KEY,
    clinic_id        uuid NOT NULL REFERENCES clinics(id),
    username         text NOT NULL,
    display_name     text NOT NULL,
    role             text NOT NULL CHECK (role IN ('admin','doctor','nurse','reception','imaging_operator')),
    language         text NOT NULL DEFAULT 'en' CHECK (language IN ('en','ru','th')),
    password_hash    text NOT NULL,
    disabled         boolean NOT NULL DEFAULT false,
    failed_sign_ins  integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    version          bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_clinic_username ON users (clinic_id, lower(username));

-- Refresh tokens are stored as SHA-256 hashes. Each refresh replaces the
-- token with a new one of the same family; presenting a replaced token again
-- (a stolen copy) revokes the whole family.
CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY,
    family_id    uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES users(id),
    token_hash   text NOT NULL UNIQUE,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    replaced_at  timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE workstations (
    id          uuid PRIMARY KEY,
    clinic_id   uuid NOT NULL REFERENCES clinics(id),
    name        text NOT NULL,
    mrn_prefix  text NOT NULL,
    enrolled_by uuid NOT NULL REFERENCES users(id),
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (clinic_id, mrn_prefix)
);

CREATE TABLE departments (
    id          uuid PRIMARY KEY,
    clinic_id   uuid NOT NULL REFERENCES clinics(id),
    name        text NOT NULL,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    created_by  uuid NOT NULL,
    UNIQUE (clinic_id, name)
);

CREATE TABLE patients (
    id              uuid PRIMARY KEY,
    clinic_id       uuid NOT NULL REFERENCES clinics(id),
    mrn             text NOT NULL,
    -- The demographic fields as the protocol carries them (PatientData).
    data            jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active','merged')),
    merged_into     uuid REFERENCES patients(id),
    version         bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    created_by      uuid NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      uuid NOT NULL,
    workstation_id  uuid NOT NULL,
    UNIQUE (clinic_id, mrn)
);
CREATE INDEX patients_clinic ON patients (clinic_id, updated_at);
-- Patients are never deleted: they are merged or amended.
CREATE TRIGGER patients_no_delete BEFORE DELETE ON patients
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Values that lost a concurrent edit, for reception to review.
CREATE TABLE patient_conflicts (
    id            uuid PRIMARY KEY,
    clinic_id     uuid NOT NULL REFERENCES clinics(id),
    patient_id    uuid NOT NULL REFERENCES patients(id),
    field         text NOT NULL,
    base_value    jsonb NOT NULL,
    server_value  jsonb NOT NULL,
    client_value  jsonb NOT NULL,
    mutation_id   uuid NOT NULL,
    user_id       uuid NOT NULL,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    resolved_at   timestamptz,
    resolved_by   uuid
);
CREATE INDEX patient_conflicts_open ON patient_conflicts (clinic_id) WHERE resolved_at IS NULL;

-- Append-only clinical events (vitals, lab results; notes and more later).
-- The same id twice is applied once; a correction is a new event that
-- amends the old one.
CREATE TABLE clinical_events (
    id            uuid PRIMARY KEY,
    clinic_id     uuid NOT NULL REFERENCES clinics(id),
    patient_id    uuid NOT NULL REFERENCES patients(id),
    kind          text NOT NULL CHECK (kind IN ('vitals','lab_result')),
    data          jsonb NOT NULL,
    payload_hash  text NOT NULL,
    amends_id     uuid REFERENCES clinical_events(id),
    recorded_at   timestamptz NOT NULL,
    recorded_by   uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clinical_events_patient ON clinical_events (patient_id, kind, recorded_at);
CREATE TRIGGER clinical_events_append_only BEFORE UPDATE OR DELETE ON clinical_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Appointments (the scheduling issue adds the workflow): the server is the
-- authority, and the database itself makes a double booking impossible.
CREATE TABLE appointments (
    id          uuid PRIMARY KEY,
    clinic_id   uuid NOT NULL REFERENCES clinics(id),
    patient_id  uuid NOT NULL REFERENCES patients(id),
    doctor_id   uuid NOT NULL REFERENCES users(id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    status      text NOT NULL CHECK (status IN ('booked','arrived','done','cancelled','no_show')),
    version     bigint NOT NULL DEFAULT 1,
    EXCLUDE USING gist (doctor_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
        WHERE (status IN ('booked','arrived'))
);

-- Queue tickets (the queue issue adds the workflow): the printed number is
-- unique per clinic and day, even when issued offline (workstation prefix).
CREATE TABLE queue_tickets (
    id          uuid PRIMARY KEY,
    clinic_id   uuid NOT NULL REFERENCES clinics(id),
    day         date NOT NULL,
    display_no  text NOT NULL,
    patient_id  uuid REFERENCES patients(id),
    status      text NOT NULL,
    version     bigint NOT NULL DEFAULT 1,
    UNIQUE (clinic_id, day, display_no)
);

-- The change feed: every change a workstation must pull, in commit order.
CREATE TABLE change_log (
    clinic_id    uuid NOT NULL REFERENCES clinics(id),
    seq          bigint NOT NULL,
    entity       text NOT NULL,
    entity_id    uuid NOT NULL,
    version      bigint NOT NULL,
    data         jsonb NOT NULL,
    mutation_id  uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic_id, seq)
);

-- One stored outcome per client mutation id: a replayed push gets the same
-- answer and changes nothing.
CREATE TABLE mutation_results (
    mutation_id     uuid PRIMARY KEY,
    clinic_id       uuid NOT NULL REFERENCES clinics(id),
    workstation_id  uuid NOT NULL,
    user_id         uuid NOT NULL,
    client_seq      bigint NOT NULL,
    status          text NOT NULL CHECK (status IN ('applied','conflict','rejected')),
    code            text,
    message         text,
    conflicts       jsonb NOT NULL DEFAULT '[]',
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mutation_results_workstation ON mutation_results (workstation_id, client_seq);

-- Who did what, when, from which workstation. Append-only.
CREATE TABLE audit_log (
    seq             bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    clinic_id       uuid REFERENCES clinics(id),
    user_id         uuid,
    workstation_id  uuid,
    action          text NOT NULL,
    entity          text NOT NULL,
    entity_id       uuid,
    mutation_id     uuid,
    detail          jsonb
);
CREATE INDEX audit_log_entity ON audit_log (entity_id, seq);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
