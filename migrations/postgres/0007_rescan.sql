-- A row whose facts changed while its upload's outcome was unknown (a
-- request in flight, or a lost answer) keeps the bytes sent under its key
-- until the registry's answer is known; this flag then brings the row back
-- to the scan, which turns the change into a correction (or a refreshed
-- upload, if the registry never took it). Few rows carry it at a time.
ALTER TABLE deliveries ADD COLUMN rescan BIGINT NOT NULL DEFAULT 0;
CREATE INDEX deliveries_rescan ON deliveries (completion_id) WHERE rescan = 1;
