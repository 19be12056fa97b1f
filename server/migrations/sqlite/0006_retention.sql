-- Retention: an archived interaction older than the policy is deleted from the archive (audited)
-- unless it is on legal hold.
ALTER TABLE interactions ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;
ALTER TABLE interactions ADD COLUMN deleted_ms INTEGER;
