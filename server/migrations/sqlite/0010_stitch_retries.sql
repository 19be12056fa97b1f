-- Failed stitches are retried with backoff while the service runs, and parked after a limit.
ALTER TABLE interactions ADD COLUMN stitch_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE interactions ADD COLUMN retry_at_ms INTEGER;
