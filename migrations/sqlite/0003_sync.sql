-- Sync with the central server.

-- The server this workstation syncs with, once an admin has enrolled it.
CREATE TABLE sync_state (
    singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
    server_url     TEXT    NOT NULL,
    clinic_code    TEXT    NOT NULL,
    clinic_id      TEXT,
    -- The last change-feed sequence number applied here; only grows.
    cursor         INTEGER NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    last_sync_at   TEXT,
    enrolled_at    TEXT
);
CREATE TRIGGER sync_cursor_only_grows BEFORE UPDATE OF cursor ON sync_state
WHEN NEW.cursor < OLD.cursor
BEGIN SELECT RAISE(ABORT, 'the sync cursor never goes back'); END;

-- Outbox bookkeeping: when the server acknowledged an entry, how many push
-- attempts it took, and the last transient error.
ALTER TABLE outbox ADD COLUMN acked_at TEXT;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
CREATE INDEX outbox_entity ON outbox (entity_id, status);

-- Users that came from the server, as opposed to ones made on this
-- workstation before it was enrolled.
ALTER TABLE users ADD COLUMN origin TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local','server'));

-- Values that lost a concurrent edit on the server, for reception to review.
CREATE TABLE patient_conflicts (
    id            TEXT    PRIMARY KEY,
    patient_id    TEXT    NOT NULL,
    field         TEXT    NOT NULL,
    base_value    TEXT    NOT NULL,
    server_value  TEXT    NOT NULL,
    client_value  TEXT    NOT NULL,
    mutation_id   TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    resolved_at   TEXT,
    -- 'server' or 'client' once settled.
    choice        TEXT,
    version       INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX patient_conflicts_open ON patient_conflicts (resolved_at, created_at);
