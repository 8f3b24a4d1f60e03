-- The server's feed epoch: a new one after the server's database was
-- restored from a backup. The feed then starts again from what the backup
-- held, so a workstation that sees a new epoch pulls from the start and
-- pushes again what the server had acknowledged (the server keeps what it
-- still has, by mutation id). The cursor may go back only with a new epoch.
ALTER TABLE sync_state ADD COLUMN feed_epoch TEXT;

DROP TRIGGER sync_cursor_only_grows;
CREATE TRIGGER sync_cursor_only_grows BEFORE UPDATE OF cursor ON sync_state
WHEN NEW.cursor < OLD.cursor AND NEW.feed_epoch IS OLD.feed_epoch
BEGIN SELECT RAISE(ABORT, 'the sync cursor never goes back'); END;
