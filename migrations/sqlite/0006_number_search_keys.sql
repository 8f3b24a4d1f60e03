-- Patients are now also found by their national ID (the whole number or
-- its last digits, however it is written) and by the digits of their MRN's
-- sequence: two more kinds of search key, `i:` (the compact national ID,
-- reversed, so that an ending is a prefix) and `m:` (the sequence digits).
-- The write path adds them from now on (clinic-store's keys_of_parts);
-- existing active records get them here, in their search_keys and in
-- search_token alike.

CREATE TEMP TABLE new_keys (patient_key INTEGER NOT NULL, token TEXT NOT NULL);
CREATE INDEX new_keys_by_patient ON new_keys (patient_key);

-- SQLite has no reverse(): peel one character at a time.
WITH RECURSIVE peel(patient_key, rest, reversed) AS (
    SELECT key, national_id, '' FROM patients
    WHERE status = 'active' AND national_id IS NOT NULL AND national_id <> ''
    UNION ALL
    SELECT patient_key, substr(rest, 2), substr(rest, 1, 1) || reversed FROM peel WHERE rest <> ''
)
INSERT INTO new_keys (patient_key, token)
SELECT patient_key, 'i:' || reversed FROM peel WHERE rest = '';

-- PPP-NNNNNN-C: the sequence is everything between the two hyphens.
INSERT INTO new_keys (patient_key, token)
SELECT key, 'm:' || substr(mrn, 5, length(mrn) - 6) FROM patients
WHERE status = 'active' AND mrn GLOB '???-[0-9][0-9][0-9][0-9][0-9][0-9]*-?';

INSERT OR IGNORE INTO search_token (token, patient_key)
SELECT token, patient_key FROM new_keys ORDER BY 1, 2;

-- The stored array stays sorted, as the write path writes it.
UPDATE patients SET search_keys = (
    SELECT json_group_array(value) FROM (
        SELECT j.value AS value FROM json_each(patients.search_keys) j
        UNION
        SELECT n.token FROM new_keys n WHERE n.patient_key = patients.key
        ORDER BY 1
    )
)
WHERE key IN (SELECT patient_key FROM new_keys);

DROP TABLE new_keys;
