-- PostgreSQL's 0011 leaves room on deliveries' pages for claims to update
-- rows in place; SQLite rewrites only the indexes whose columns change, so
-- it needs nothing. Kept so both backends count the same migrations.
SELECT 1;
