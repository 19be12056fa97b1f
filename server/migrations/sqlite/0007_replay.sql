-- Replay (issue 7): local users with roles, their sessions, login throttling, and the audit log
-- chained by hash.

-- role: 'admin' (users, agents, settings), 'supervisor' (search, replay, export), 'auditor'
-- (the audit log, search, replay). password_hash is an argon2id PHC string.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    disabled_ms   INTEGER
);

-- A login session: the cookie carries the token, the table its SHA-256 (a copy of the database
-- opens no session). csrf is sent back in a header on every state-changing request.
CREATE TABLE user_sessions (
    token_sha256 TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id),
    csrf         TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);

-- Failed logins per username and per client address, for throttling.
CREATE TABLE login_failures (
    key     TEXT    NOT NULL,
    at_ms   INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at_ms);

-- The audit chain: each entry's hash covers its fields and the previous entry's hash
-- (store::audit). Entries written before this migration are chained when the store opens.
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;

-- Search: what people filter interactions on, kept on the interaction as its inputs arrive
-- (store::search); and where its stitched file's timeline starts, for the player.
ALTER TABLE interactions ADD COLUMN agents TEXT;          -- lower-case emails and names, '|'-separated
ALTER TABLE interactions ADD COLUMN remote_numbers TEXT;  -- as Webex gave them, ','-separated
ALTER TABLE interactions ADD COLUMN remote_digits TEXT;   -- the same, digits only
ALTER TABLE interactions ADD COLUMN direction TEXT;       -- 'inbound' | 'outbound'
ALTER TABLE interactions ADD COLUMN timeline_start_ms INTEGER;
ALTER TABLE interactions ADD COLUMN timeline_ms INTEGER;
ALTER TABLE interactions ADD COLUMN tracks TEXT;          -- JSON: the stitched file's tracks
CREATE INDEX interactions_state_start ON interactions (state, start_ms);
