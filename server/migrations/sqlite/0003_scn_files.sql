-- The call buffer: one SCN file per recorded contact (DESIGN.md §4 life cycle).
-- state: 'tentative' (ringing), 'kept' (answered), 'deleted' (not answered: file removed),
-- 'closed' (ended cleanly: waits for ingestion).
CREATE TABLE scn_files (
    contact    TEXT    PRIMARY KEY,
    agent      TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('tentative', 'kept', 'deleted', 'closed')),
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    bytes      INTEGER NOT NULL DEFAULT 0,
    frames     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX scn_files_state ON scn_files (state);
