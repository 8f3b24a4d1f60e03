-- Departments are the first kind on the generic record road
-- (clinic_domain::record): editable, so they carry who changed them last.
ALTER TABLE departments ADD COLUMN updated_at timestamptz;
ALTER TABLE departments ADD COLUMN updated_by uuid;
UPDATE departments SET updated_at = created_at, updated_by = created_by;
ALTER TABLE departments ALTER COLUMN updated_at SET NOT NULL;
ALTER TABLE departments ALTER COLUMN updated_by SET NOT NULL;
