-- A course's certified hours per registry, one row per (course, registry),
-- instead of a column per registry: a new registry is a new value of
-- `registry`, not a new column. A registry without a row did not certify
-- the course; a row of 0 is kept as the intake gave it (it too means "not
-- certified", but a re-import must compare equal). A change of any row
-- stamps its course (courses.seq), through which the scan finds the
-- course's completions. WITHOUT ROWID: the rows of one course sit together
-- under the primary key the scan and the intake read them by.
CREATE TABLE course_hours (
    course_code TEXT NOT NULL,
    registry    TEXT NOT NULL,
    tenths      INTEGER NOT NULL,
    PRIMARY KEY (course_code, registry)
) WITHOUT ROWID;

-- Upgrade in place: every course keeps its figures; nothing is stamped,
-- since nothing changed.
INSERT INTO course_hours (course_code, registry, tenths)
SELECT course_code, 'lifelong', lifelong_tenths FROM courses WHERE lifelong_tenths IS NOT NULL
UNION ALL
SELECT course_code, 'teacher', teacher_tenths FROM courses WHERE teacher_tenths IS NOT NULL
UNION ALL
SELECT course_code, 'enved', enved_tenths FROM courses WHERE enved_tenths IS NOT NULL;

-- No index, constraint or view names these columns, so SQLite (3.35 and
-- later) drops them in place.
ALTER TABLE courses DROP COLUMN lifelong_tenths;
ALTER TABLE courses DROP COLUMN teacher_tenths;
ALTER TABLE courses DROP COLUMN enved_tenths;
