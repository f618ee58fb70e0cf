-- Every row the scan writes went into deliveries_counts, which served one
-- query: the gauge sweep's count by registry, state and reason. The same
-- sweep already reads the whole table for its SLA counts (no index serves
-- those), every 15 seconds, so a second full read costs it about as much;
-- the index cost every scan write, every claim and every outcome. Every
-- other query on deliveries walks the id, the completion or a due index.
DROP INDEX deliveries_counts;
