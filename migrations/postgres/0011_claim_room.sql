-- A claim changes only the lease columns, which no index holds: with room
-- on the row's page the new row version stays there (a HOT update) and no
-- index of deliveries gets a new entry. Leave that room on new pages; a
-- table loaded before this takes it on its next rewrite (VACUUM FULL).
ALTER TABLE deliveries SET (fillfactor = 70);
