-- A delivery row keeps the facts of the record it sends under its revision,
-- one column each, instead of the record's wire JSON: the wire record is
-- rebuilt from them (registry/adapter.rs, by the row's format version),
-- byte for byte what format 1 sent. The learner, the course and the hours
-- stay in national_id, course_code and hours_tenths. `format` is null
-- exactly when the row holds no record (never eligible, or withdrawn).
ALTER TABLE deliveries ADD COLUMN format INTEGER;
ALTER TABLE deliveries ADD COLUMN course_name TEXT;
ALTER TABLE deliveries ADD COLUMN completed_on TEXT;
-- lifelong only
ALTER TABLE deliveries ADD COLUMN learning_mode INTEGER;
ALTER TABLE deliveries ADD COLUMN digital_tenths INTEGER;
ALTER TABLE deliveries ADD COLUMN classroom_tenths INTEGER;
ALTER TABLE deliveries ADD COLUMN category_code TEXT;
-- enved only
ALTER TABLE deliveries ADD COLUMN enved_account TEXT;
ALTER TABLE deliveries ADD COLUMN service_unit_code TEXT;

-- Upgrade in place: every stored record becomes its facts, taken from the
-- bytes that were sent (they may have landed under the key), so a resend
-- after the upgrade carries the same bytes.
UPDATE deliveries SET
    format = 1,
    national_id = payload ->> '$.national_id',
    course_code = payload ->> '$.course_code',
    hours_tenths = CAST(ROUND(CAST(payload ->> '$.hours' AS REAL) * 10) AS INTEGER),
    course_name = payload ->> '$.course_name',
    completed_on = payload ->> '$.completed_on',
    learning_mode = CASE WHEN registry = 'lifelong' THEN payload ->> '$.learning_mode' END,
    digital_tenths = CASE WHEN registry = 'lifelong'
        THEN CAST(ROUND(CAST(payload ->> '$.digital_hours' AS REAL) * 10) AS INTEGER) END,
    classroom_tenths = CASE WHEN registry = 'lifelong'
        THEN CAST(ROUND(CAST(payload ->> '$.classroom_hours' AS REAL) * 10) AS INTEGER) END,
    category_code = CASE WHEN registry = 'lifelong' THEN payload ->> '$.category_code' END,
    enved_account = CASE WHEN registry = 'enved' THEN payload ->> '$.enved_account' END,
    service_unit_code = CASE WHEN registry = 'enved' THEN payload ->> '$.service_unit_code' END
WHERE payload IS NOT NULL;

ALTER TABLE deliveries DROP COLUMN payload;
