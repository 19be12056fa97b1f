-- Webex webhook deliveries, stored before they are answered; processed in `seq` order.
CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    body_sha256     TEXT    NOT NULL UNIQUE,   -- a redelivered body is a duplicate
    received_at_ms  INTEGER NOT NULL,
    resource        TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    processed_at_ms INTEGER,
    outcome         TEXT
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (seq) WHERE processed_at_ms IS NULL;

-- The agent directory: enrolled desktop agents and the Webex person each belongs to.
CREATE TABLE agents (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    person_id     TEXT    UNIQUE,
    email         TEXT    UNIQUE COLLATE NOCASE,
    created_at_ms INTEGER NOT NULL
);

-- Per Webex person: the call tracker and state machine (JSON), and when it next needs a tick.
CREATE TABLE agent_machines (
    person_id        TEXT    PRIMARY KEY,
    state            TEXT    NOT NULL,
    next_deadline_ms INTEGER,
    updated_at_ms    INTEGER NOT NULL
);
CREATE INDEX agent_machines_deadline ON agent_machines (next_deadline_ms) WHERE next_deadline_ms IS NOT NULL;

-- Contacts: one screen recording from the first Ringing to Agent Available.
CREATE TABLE contacts (
    id            TEXT    PRIMARY KEY,
    person_id     TEXT    NOT NULL,
    agent_id      TEXT,
    state         TEXT    NOT NULL,  -- recording | kept | discarded | closed
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    close_reason  TEXT
);
CREATE INDEX contacts_person_started ON contacts (person_id, started_at_ms);
CREATE INDEX contacts_started ON contacts (started_at_ms);

CREATE TABLE contact_calls (
    contact_id      TEXT NOT NULL REFERENCES contacts (id),
    call_id         TEXT NOT NULL,
    call_session_id TEXT,
    PRIMARY KEY (contact_id, call_id)
);
CREATE INDEX contact_calls_session ON contact_calls (call_session_id);

-- Stretches of a contact without screen, with the reason people read.
CREATE TABLE contact_gaps (
    contact_id TEXT    NOT NULL REFERENCES contacts (id),
    from_ms    INTEGER NOT NULL,
    to_ms      INTEGER,
    reason     TEXT    NOT NULL
);
CREATE INDEX contact_gaps_contact ON contact_gaps (contact_id);

-- Every normalised event, also for people with no enrolled agent and events that applied to no
-- contact (late, ignored): kept and shown, never dropped.
CREATE TABLE call_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_seq    INTEGER,
    person_id       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    at_ms           INTEGER NOT NULL,
    call_id         TEXT,
    call_session_id TEXT,
    contact_id      TEXT,
    note            TEXT
);
CREATE INDEX call_events_contact ON call_events (contact_id, at_ms);
CREATE INDEX call_events_person ON call_events (person_id, at_ms);

-- Who did what to which recording (deletions above all). Issue 7 chains these by hash.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT
);
