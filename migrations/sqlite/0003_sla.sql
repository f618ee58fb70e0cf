-- The 3-working-day promise: each eligible delivery's due instant, and the
-- office calendar it was computed from, shared by every daemon.
ALTER TABLE deliveries ADD COLUMN due_at INTEGER;
CREATE INDEX deliveries_open_due ON deliveries (registry, due_at)
    WHERE due_at IS NOT NULL AND state <> 'delivered';

-- One row per loaded year, as canonical UTF-8 CSV of the official format.
CREATE TABLE calendar_years (
    year      INTEGER PRIMARY KEY,
    csv       TEXT NOT NULL,
    loaded_at INTEGER NOT NULL
);
