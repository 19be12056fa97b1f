-- An archived interaction re-stitched with a recording that arrived late is a new version of its
-- file; the version counts them (1: the first stitch).
ALTER TABLE interactions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
-- Recordings not yet in the archive, looked for every ingestion tick.
CREATE INDEX recordings_uncleared ON recordings (interaction_id) WHERE cleared_ms IS NULL AND state = 'stored';
