-- The history made lean: one row per request (when, what, its request id,
-- its HTTP status, an error shared by all its records) and per record only
-- what support reads (the delivery, its revision, the result, and an error
-- of its own, such as a registry's rejection message). The old `attempts`
-- repeated the request's columns on every record of a batch and kept three
-- index entries per record; a record now has one (plus a BRIN entry).
CREATE TABLE requests (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    action      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    http_status BIGINT,
    error       TEXT
);
CREATE TABLE request_records (
    delivery_id BIGINT NOT NULL,
    request     BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    result      TEXT NOT NULL,
    error       TEXT
);

-- A record's history, read by delivery; also the key a copy pages by. A
-- request names a delivery once.
CREATE UNIQUE INDEX request_records_delivery ON request_records (delivery_id, request);

-- Every kept attempt moves over, in its order; one request row per request
-- (its records' errors stay theirs).
INSERT INTO requests (at, action, request_id, http_status)
SELECT at, action, request_id, http_status
FROM (SELECT min(id) AS first, at, action, request_id, http_status
      FROM attempts GROUP BY at, action, request_id, http_status) AS q
ORDER BY first;
INSERT INTO request_records (delivery_id, request, revision, result, error)
SELECT a.delivery_id, q.id, a.revision, a.result, a.error
FROM attempts a
JOIN requests q ON q.request_id = a.request_id AND q.at = a.at AND q.action = a.action
               AND q.http_status IS NOT DISTINCT FROM a.http_status
WHERE true
ORDER BY a.id
ON CONFLICT DO NOTHING;
DROP TABLE attempts;
-- The nightly purge reads by time and by request; rows arrive in order of both.
CREATE INDEX requests_at ON requests USING brin (at);
CREATE INDEX request_records_request ON request_records USING brin (request);
