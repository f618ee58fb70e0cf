-- A delivery row keeps the facts of the record it sends under its revision
-- instead of the record's wire JSON (see the SQLite twin for the rules).
ALTER TABLE deliveries
    ADD COLUMN format BIGINT,
    ADD COLUMN course_name TEXT,
    ADD COLUMN completed_on TEXT,
    ADD COLUMN learning_mode BIGINT,
    ADD COLUMN digital_tenths BIGINT,
    ADD COLUMN classroom_tenths BIGINT,
    ADD COLUMN category_code TEXT,
    ADD COLUMN enved_account TEXT,
    ADD COLUMN service_unit_code TEXT;

-- Upgrade in place: the facts of every stored record, from the bytes sent.
UPDATE deliveries d SET
    format = 1,
    national_id = x.p ->> 'national_id',
    course_code = x.p ->> 'course_code',
    hours_tenths = round((x.p ->> 'hours')::numeric * 10)::bigint,
    course_name = x.p ->> 'course_name',
    completed_on = x.p ->> 'completed_on',
    learning_mode = CASE WHEN d.registry = 'lifelong' THEN (x.p ->> 'learning_mode')::bigint END,
    digital_tenths = CASE WHEN d.registry = 'lifelong'
        THEN round((x.p ->> 'digital_hours')::numeric * 10)::bigint END,
    classroom_tenths = CASE WHEN d.registry = 'lifelong'
        THEN round((x.p ->> 'classroom_hours')::numeric * 10)::bigint END,
    category_code = CASE WHEN d.registry = 'lifelong' THEN x.p ->> 'category_code' END,
    enved_account = CASE WHEN d.registry = 'enved' THEN x.p ->> 'enved_account' END,
    service_unit_code = CASE WHEN d.registry = 'enved' THEN x.p ->> 'service_unit_code' END
FROM (SELECT id, payload::jsonb AS p FROM deliveries WHERE payload IS NOT NULL) x
WHERE d.id = x.id;

ALTER TABLE deliveries DROP COLUMN payload;
