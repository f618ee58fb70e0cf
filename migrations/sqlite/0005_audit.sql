-- Who changed what through the admin API or the CLI: every resync, retry
-- and calendar load. A resync's row also carries its progress and result.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    scope       TEXT NOT NULL,
    records     BIGINT NOT NULL DEFAULT 0,
    status      TEXT NOT NULL,
    result      TEXT,
    finished_at BIGINT
);
