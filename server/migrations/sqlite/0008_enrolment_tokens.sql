-- Enrolment tokens an administrator creates, lists and revokes: what installers carry to enrol
-- desktops. Only the SHA-256 of a token is kept; the token is shown once. The token generated
-- into <data_dir>/enrolment-token at first start is the row 'default' (unlimited, revocable).
CREATE TABLE enrolment_tokens (
    id TEXT PRIMARY KEY,
    token_sha256 BLOB NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires_at_ms INTEGER,          -- NULL: never
    max_uses INTEGER,               -- NULL: unlimited
    uses INTEGER NOT NULL DEFAULT 0,
    revoked_at_ms INTEGER,
    revoked_by TEXT,
    -- A token issued for one person: the desktops it enrols are that person's, no claim needed.
    person_id TEXT,
    email TEXT
);
