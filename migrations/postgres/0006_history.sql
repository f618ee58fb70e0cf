-- Corrections (PUT) and withdrawals (DELETE) are dispatch work too: the due
-- index covers every state dispatch claims.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (registry, next_attempt_at)
    WHERE state IN ('pending', 'retrying', 'correcting', 'withdrawing');

-- Every request made for a delivery (upload, correction, withdrawal,
-- lookup) and what came of it, for support's "what happened to this
-- record?". Rows older than history.retention_days are purged.
CREATE TABLE attempts (
    id          BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    action      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    http_status BIGINT,
    result      TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
-- Only the nightly purge reads by time, and rows arrive in time order: a
-- BRIN index costs next to nothing per insert.
CREATE INDEX attempts_at ON attempts USING brin (at);
