-- Hardening (issue 9).
--
-- 1. Access tokens carry the user's auth_version; disabling the account or
--    setting a new password bumps it, so every token issued before is
--    refused on its next request (each request reads the user's row).
ALTER TABLE users ADD COLUMN auth_version bigint NOT NULL DEFAULT 1;

-- 2. Records belong to one clinic, and so do their ids: the keys are
--    (clinic_id, id), so a create reusing another clinic's id is an
--    ordinary create here, and every reference (a merge, a clinical event,
--    a conflict, an appointment, a ticket) can only point inside the clinic.
ALTER TABLE patients DROP CONSTRAINT patients_pkey CASCADE;
ALTER TABLE patients ADD PRIMARY KEY (clinic_id, id);
ALTER TABLE patients ADD CONSTRAINT patients_merged_into_fkey
    FOREIGN KEY (clinic_id, merged_into) REFERENCES patients (clinic_id, id);
ALTER TABLE patient_conflicts ADD CONSTRAINT patient_conflicts_patient_fkey
    FOREIGN KEY (clinic_id, patient_id) REFERENCES patients (clinic_id, id);
ALTER TABLE appointments ADD CONSTRAINT appointments_patient_fkey
    FOREIGN KEY (clinic_id, patient_id) REFERENCES patients (clinic_id, id);
ALTER TABLE queue_tickets ADD CONSTRAINT queue_tickets_patient_fkey
    FOREIGN KEY (clinic_id, patient_id) REFERENCES patients (clinic_id, id);

ALTER TABLE clinical_events DROP CONSTRAINT clinical_events_pkey CASCADE;
ALTER TABLE clinical_events ADD PRIMARY KEY (clinic_id, id);
ALTER TABLE clinical_events ADD CONSTRAINT clinical_events_patient_fkey
    FOREIGN KEY (clinic_id, patient_id) REFERENCES patients (clinic_id, id);
ALTER TABLE clinical_events ADD CONSTRAINT clinical_events_amends_fkey
    FOREIGN KEY (clinic_id, amends_id) REFERENCES clinical_events (clinic_id, id);

-- 3. A mutation id belongs to one clinic (and, inside it, to the
--    workstation that first pushed it). content_hash is the SHA-256 of
--    what the mutation said; a reuse of the id with other content is
--    refused instead of answered with the stored outcome. Rows stored
--    before this migration have none and are answered as before.
ALTER TABLE mutation_results DROP CONSTRAINT mutation_results_pkey;
ALTER TABLE mutation_results ADD PRIMARY KEY (clinic_id, mutation_id);
ALTER TABLE mutation_results ADD COLUMN content_hash text;

ALTER TABLE departments DROP CONSTRAINT departments_pkey;
ALTER TABLE departments ADD PRIMARY KEY (clinic_id, id);
