-- Corrections (PUT) and withdrawals (DELETE) are dispatch work too: the due
-- index covers every state dispatch claims.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (registry, next_attempt_at)
    WHERE state IN ('pending', 'retrying', 'correcting', 'withdrawing');

-- Every request made for a delivery (upload, correction, withdrawal,
-- lookup) and what came of it, for support's "what happened to this
-- record?". Rows older than history.retention_days are purged.
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    action      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    http_status INTEGER,
    result      TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
-- No index on `at`: only the nightly purge reads by time, and a scan then
-- is cheaper than an index entry on every insert.
