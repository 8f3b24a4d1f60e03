-- Audit entries that concern a record other than the one in their own
-- entity_id column. A bulk import writes one audit entry per batch whose
-- `after` lists every patient it created (`{"patients": [{"id": …}, …]}`);
-- each of those patients gets a link here to that entry and to its position
-- (`item`) in the list, so the patient's history still shows its creation.
-- The entry itself is hash-chained; the verifier checks that every patient
-- it names has its link. Append-only like audit_log.
CREATE TABLE audit_link (
    entity_id  TEXT    NOT NULL,
    seq        INTEGER NOT NULL REFERENCES audit_log(seq),
    item       INTEGER NOT NULL,
    PRIMARY KEY (entity_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER audit_link_no_update BEFORE UPDATE ON audit_link
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_link_no_delete BEFORE DELETE ON audit_link
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
