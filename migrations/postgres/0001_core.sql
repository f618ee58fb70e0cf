-- hoursync core schema (PostgreSQL). The same tables as the SQLite schema:
-- every instant is a BIGINT of milliseconds since the epoch (UTC), hours are
-- BIGINT tenths, so both backends hold and return the same values.

-- The change sequence. Intake takes the next value with UPDATE … RETURNING,
-- which locks this row until commit: intake transactions commit in sequence
-- order, so a scan that reads the committed value never misses a change.
CREATE TABLE change_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO change_seq (id, value) VALUES (1, 0);

CREATE TABLE units (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX units_seq ON units (seq);

CREATE TABLE persons (
    national_id        TEXT PRIMARY KEY,
    personnel_category TEXT,
    enved_account      TEXT,
    service_unit_code  TEXT,
    seq                BIGINT NOT NULL,
    changed_at         BIGINT NOT NULL
);
CREATE INDEX persons_seq ON persons (seq);
CREATE INDEX persons_unit ON persons (service_unit_code);

CREATE TABLE accounts (
    account_id  TEXT PRIMARY KEY,
    national_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    identity    TEXT,
    bound_to    TEXT,
    seq         BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL
);
CREATE INDEX accounts_seq ON accounts (seq);
CREATE INDEX accounts_person ON accounts (national_id);
CREATE INDEX accounts_bound ON accounts (bound_to) WHERE bound_to IS NOT NULL;

CREATE TABLE courses (
    course_code      TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    learning_mode    BIGINT NOT NULL,
    category_code    TEXT NOT NULL,
    digital_tenths   BIGINT NOT NULL,
    classroom_tenths BIGINT NOT NULL,
    lifelong_tenths  BIGINT,
    teacher_tenths   BIGINT,
    enved_tenths     BIGINT,
    seq              BIGINT NOT NULL,
    changed_at       BIGINT NOT NULL
);
CREATE INDEX courses_seq ON courses (seq);

CREATE TABLE completions (
    id            BIGSERIAL PRIMARY KEY,
    completion_id TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    course_code   TEXT NOT NULL,
    completed_at  BIGINT NOT NULL,
    completed_on  TEXT NOT NULL,
    status        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    changed_at    BIGINT NOT NULL
);
CREATE INDEX completions_seq ON completions (seq);
CREATE INDEX completions_account ON completions (account_id);
CREATE INDEX completions_course ON completions (course_code);

CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    completion_id   TEXT NOT NULL,
    registry        TEXT NOT NULL,
    national_id     TEXT NOT NULL,
    course_code     TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT,
    hours_tenths    BIGINT,
    revision        BIGINT NOT NULL DEFAULT 1,
    idempotency_key TEXT,
    payload         TEXT,
    eligible_since  BIGINT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_error      TEXT,
    receipt_id      TEXT,
    delivered_at    BIGINT,
    credited_tenths BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    updated_at      BIGINT NOT NULL,
    UNIQUE (completion_id, registry)
);
CREATE INDEX deliveries_due ON deliveries (registry, next_attempt_at)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_person ON deliveries (national_id);
CREATE INDEX deliveries_state ON deliveries (state, registry);

CREATE TABLE cursors (
    name        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    last_run_at BIGINT
);
