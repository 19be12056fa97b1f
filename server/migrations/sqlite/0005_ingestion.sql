-- Ingestion (DESIGN.md §5): a closed contact and the recordings of its call sessions meet in an
-- interaction, which is stitched into one file, archived, and only then cleared from the buffer.

-- state: 'collecting' (inputs may still arrive), 'archived' (stitched, stored, verified),
-- 'failed' (stitching or archiving failed; error says why; retried after a restart).
ALTER TABLE interactions ADD COLUMN state TEXT NOT NULL DEFAULT 'collecting';
ALTER TABLE interactions ADD COLUMN archive_key TEXT;
ALTER TABLE interactions ADD COLUMN archive_sha256 TEXT;
ALTER TABLE interactions ADD COLUMN archive_bytes INTEGER;
ALTER TABLE interactions ADD COLUMN archived_ms INTEGER;
-- What the stitched file lacks: 'screen', 'audio', or NULL.
ALTER TABLE interactions ADD COLUMN missing TEXT;
ALTER TABLE interactions ADD COLUMN error TEXT;
CREATE INDEX interactions_state ON interactions (state);

-- The contacts whose screen belongs to an interaction (a contact with calls in several sessions
-- belongs to each).
CREATE TABLE interaction_contacts (
    interaction_id TEXT NOT NULL REFERENCES interactions (id),
    contact_id     TEXT NOT NULL,
    PRIMARY KEY (interaction_id, contact_id)
);
CREATE INDEX interaction_contacts_contact ON interaction_contacts (contact_id);

-- A recording's audio transcoded to Opus (media::audio), or why it could not be.
ALTER TABLE recordings ADD COLUMN opus_path TEXT;
ALTER TABLE recordings ADD COLUMN transcode_error TEXT;
-- When the buffer's copy (MP3, Opus) was removed after the archive was verified.
ALTER TABLE recordings ADD COLUMN cleared_ms INTEGER;

-- When a closed SCN file was linked to its interactions, and when it was removed after archiving.
ALTER TABLE scn_files ADD COLUMN linked_ms INTEGER;
ALTER TABLE scn_files ADD COLUMN cleared_ms INTEGER;
