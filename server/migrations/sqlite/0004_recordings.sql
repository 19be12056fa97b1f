-- The recording adapter (webex/API.md §1): one durable job per Webex recording id, and the
-- interactions recordings consolidate into by normalised callSessionId.

CREATE TABLE interactions (
    id              TEXT    PRIMARY KEY,
    -- Normalised callSessionId (32 lower-case hex); 'recording:<id>' when Webex gave none.
    call_session_id TEXT    NOT NULL UNIQUE,
    start_ms        INTEGER,
    stop_ms         INTEGER,
    recordings      INTEGER NOT NULL DEFAULT 0,
    duration_s      INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX interactions_start ON interactions (start_ms);

-- state: 'pending' (to fetch; claimed by a lease), 'stored' (details, metadata and audio on disk),
-- 'parked' (failed max_attempts times or cannot succeed: waits for an operator).
CREATE TABLE recordings (
    id               TEXT    PRIMARY KEY,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'stored', 'parked')),
    source           TEXT    NOT NULL,
    discovered_ms    INTEGER NOT NULL,
    time_recorded_ms INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until_ms   INTEGER,
    last_error       TEXT,
    interaction_id   TEXT    REFERENCES interactions (id),
    call_session_id  TEXT,
    owner_id         TEXT,
    owner_email      TEXT,
    owner_type       TEXT,
    owner_name       TEXT,
    personality      TEXT,
    remote_number    TEXT,
    remote_name      TEXT,
    call_id          TEXT,
    create_time_ms   INTEGER,
    session_start_ms INTEGER,
    session_stop_ms  INTEGER,
    duration_s       INTEGER,
    size_bytes       INTEGER,
    audio_path       TEXT,
    audio_sha256     TEXT,
    audio_bytes      INTEGER,
    details          TEXT,
    metadata         TEXT,
    stored_ms        INTEGER
);
CREATE INDEX recordings_due ON recordings (state, next_attempt_ms);
CREATE INDEX recordings_interaction ON recordings (interaction_id);
CREATE INDEX recordings_time ON recordings (time_recorded_ms);

-- Small durable values of the adapter (the poll watermark).
CREATE TABLE adapter_state (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- A backfill walks [from_ms, to_ms) in windows of at most 30 days; window_from_ms and next_url
-- (the page to list next, exactly as Webex gave it) say where it is, so it resumes after a crash.
CREATE TABLE backfills (
    id             INTEGER PRIMARY KEY,
    from_ms        INTEGER NOT NULL,
    to_ms          INTEGER NOT NULL,
    window_from_ms INTEGER NOT NULL,
    next_url       TEXT,
    listed         INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL CHECK (state IN ('listing', 'listed', 'failed')),
    error          TEXT,
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL,
    UNIQUE (from_ms, to_ms)
);
