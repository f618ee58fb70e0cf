-- hoursync core schema (SQLite). Every instant is an INTEGER of
-- milliseconds since the epoch (UTC), the same on both backends; hours are
-- INTEGER tenths, never floats.

-- The change sequence: each intake transaction takes the next value and
-- stamps every row it changes with it, so a scan reads only what changed.
CREATE TABLE change_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO change_seq (id, value) VALUES (1, 0);

CREATE TABLE units (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
);
CREATE INDEX units_seq ON units (seq);

CREATE TABLE persons (
    national_id        TEXT PRIMARY KEY,
    personnel_category TEXT,
    enved_account      TEXT,
    service_unit_code  TEXT,
    seq                INTEGER NOT NULL,
    changed_at         INTEGER NOT NULL
);
CREATE INDEX persons_seq ON persons (seq);
CREATE INDEX persons_unit ON persons (service_unit_code);

CREATE TABLE accounts (
    account_id  TEXT PRIMARY KEY,
    national_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    identity    TEXT,
    bound_to    TEXT,
    seq         INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX accounts_seq ON accounts (seq);
CREATE INDEX accounts_person ON accounts (national_id);
CREATE INDEX accounts_bound ON accounts (bound_to) WHERE bound_to IS NOT NULL;

CREATE TABLE courses (
    course_code      TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    learning_mode    INTEGER NOT NULL,
    category_code    TEXT NOT NULL,
    digital_tenths   INTEGER NOT NULL,
    classroom_tenths INTEGER NOT NULL,
    lifelong_tenths  INTEGER,
    teacher_tenths   INTEGER,
    enved_tenths     INTEGER,
    seq              INTEGER NOT NULL,
    changed_at       INTEGER NOT NULL
);
CREATE INDEX courses_seq ON courses (seq);

CREATE TABLE completions (
    id            INTEGER PRIMARY KEY,
    completion_id TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    course_code   TEXT NOT NULL,
    completed_at  INTEGER NOT NULL,
    -- the completion date in Asia/Taipei, as the registries want it
    completed_on  TEXT NOT NULL,
    status        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    changed_at    INTEGER NOT NULL
);
CREATE INDEX completions_seq ON completions (seq);
CREATE INDEX completions_account ON completions (account_id);
CREATE INDEX completions_course ON completions (course_code);

-- One row per (completion, registry): the decision and the delivery.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    completion_id   TEXT NOT NULL,
    registry        TEXT NOT NULL,
    national_id     TEXT NOT NULL,
    course_code     TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT,
    hours_tenths    INTEGER,
    revision        INTEGER NOT NULL DEFAULT 1,
    idempotency_key TEXT,
    -- the record exactly as it is sent, idempotency key included
    payload         TEXT,
    eligible_since  INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    receipt_id      TEXT,
    delivered_at    INTEGER,
    -- the hours the registry credited, to spot a change made while in flight
    credited_tenths INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    updated_at      INTEGER NOT NULL,
    UNIQUE (completion_id, registry)
);
CREATE INDEX deliveries_due ON deliveries (registry, next_attempt_at)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_person ON deliveries (national_id);
CREATE INDEX deliveries_state ON deliveries (state, registry);

-- Where each incremental job has read up to.
CREATE TABLE cursors (
    name        TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    last_run_at INTEGER
);
