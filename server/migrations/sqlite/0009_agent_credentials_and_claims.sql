-- An agent's credential revoked by an administrator (its hash is cleared: nothing matches it).
ALTER TABLE agents ADD COLUMN credential_revoked_at_ms INTEGER;
-- The email a desktop claimed at enrolment: not trusted until an administrator maps the agent.
ALTER TABLE agents ADD COLUMN claimed_email TEXT;
