-- Coordination between daemons sharing one database.

-- Singleton duties (the scan): one holder at a time, until `until_ms`.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);

-- Per registry request pacing shared by all daemons: the next free request
-- slot, and a hold from a Retry-After answer.
CREATE TABLE registry_gates (
    registry   TEXT PRIMARY KEY,
    next_at    BIGINT NOT NULL,
    hold_until BIGINT NOT NULL DEFAULT 0
);
