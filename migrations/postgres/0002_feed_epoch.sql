-- A clinic's feed epoch. `clinic-server new-epoch`, run after the database
-- was restored from a backup, gives every clinic a new one; a workstation
-- that pulls a page with another epoch than its cursor counts in pulls the
-- feed again from the start and pushes again what the server acknowledged,
-- since the restored copy may have lost it.
ALTER TABLE clinics ADD COLUMN feed_epoch uuid NOT NULL DEFAULT gen_random_uuid();
