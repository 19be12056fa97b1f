-- An agent's credential revoked by an administrator (its hash is cleared: nothing matches it).
ALTER TABLE agents ADD COLUMN credential_revoked_at_ms INTEGER;
