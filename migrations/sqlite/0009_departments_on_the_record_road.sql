-- Departments are the first kind on the generic record road
-- (clinic_domain::record). A name stays unique in the clinic, but the
-- central server is the authority on it: the write path checks it for the
-- user at once, and a pulled page must never fail on a name a local,
-- not yet accepted department holds (the server refuses that one and its
-- author sees why). So the table keeps an index on name, not a UNIQUE rule.
--
-- SQLite cannot drop a constraint, so the table is rebuilt. Migrations run
-- in a transaction with foreign keys on, where the old table cannot be
-- dropped while users refer to it: the references are set aside, the table
-- rebuilt, and the references put back.
CREATE TEMP TABLE user_departments_0009 AS
    SELECT id, department_id FROM users WHERE department_id IS NOT NULL;
UPDATE users SET department_id = NULL WHERE department_id IS NOT NULL;
CREATE TABLE departments_0009 (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    workstation_id  TEXT    NOT NULL
);
INSERT INTO departments_0009
    SELECT id, name, created_at, created_by, updated_at, updated_by, version, workstation_id
    FROM departments;
DROP TABLE departments;
ALTER TABLE departments_0009 RENAME TO departments;
CREATE INDEX departments_name ON departments (name);
UPDATE users SET department_id = (
    SELECT s.department_id FROM user_departments_0009 s WHERE s.id = users.id
) WHERE id IN (SELECT id FROM user_departments_0009);
DROP TABLE user_departments_0009;
