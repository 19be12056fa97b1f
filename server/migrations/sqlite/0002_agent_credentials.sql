-- Per-agent credential: SHA-256 (hex) of a random 256-bit secret given to the agent once.
ALTER TABLE agents ADD COLUMN credential_sha256 TEXT;
