-- No query looks deliveries up by national ID (a person's records are found
-- through their completions), and every index costs each scan write.
DROP INDEX deliveries_person;
-- The gauge sweep counts by registry, state and reason: cover it.
DROP INDEX deliveries_state;
CREATE INDEX deliveries_counts ON deliveries (registry, state, reason);
