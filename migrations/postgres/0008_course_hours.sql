-- A course's certified hours per registry, one row per (course, registry),
-- instead of a column per registry (see the SQLite twin for the rules).
CREATE TABLE course_hours (
    course_code TEXT NOT NULL,
    registry    TEXT NOT NULL,
    tenths      BIGINT NOT NULL,
    PRIMARY KEY (course_code, registry)
);

-- Upgrade in place: every course keeps its figures; nothing is stamped.
INSERT INTO course_hours (course_code, registry, tenths)
SELECT course_code, 'lifelong', lifelong_tenths FROM courses WHERE lifelong_tenths IS NOT NULL
UNION ALL
SELECT course_code, 'teacher', teacher_tenths FROM courses WHERE teacher_tenths IS NOT NULL
UNION ALL
SELECT course_code, 'enved', enved_tenths FROM courses WHERE enved_tenths IS NOT NULL;

ALTER TABLE courses
    DROP COLUMN lifelong_tenths,
    DROP COLUMN teacher_tenths,
    DROP COLUMN enved_tenths;
