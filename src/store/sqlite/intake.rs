//! The intake: applying chunks of learning data, stamped with a change sequence, on SQLite.

use super::*;

#[async_trait]
impl IntakeStore for SqliteStore {
    async fn known_keys(&self, wanted: &KeyQuery) -> Result<KnownKeys> {
        let mut known = KnownKeys::default();
        for chunk in wanted.persons.chunks(10_000) {
            let whole: Vec<&str> = chunk.iter().map(NationalId::expose).collect();
            let rows = sqlx::query("SELECT national_id FROM persons WHERE national_id IN (SELECT value FROM jsonb_each(?1))")
                .bind(serde_json::to_string(&whole).unwrap())
                .fetch_all(&self.pool)
                .await?;
            for r in rows {
                known.persons.insert(nid(&r.text(0)?)?);
            }
        }
        for chunk in wanted.accounts.chunks(10_000) {
            let rows = sqlx::query(
                "SELECT account_id, kind, national_id FROM accounts WHERE account_id IN (SELECT value FROM jsonb_each(?1))",
            )
            .bind(serde_json::to_string(chunk).unwrap())
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                known.accounts.insert(
                    r.get(0),
                    KnownAccount {
                        kind: r.get(1),
                        national_id: nid(&r.text(2)?)?,
                    },
                );
            }
        }
        for chunk in wanted.courses.chunks(10_000) {
            let rows = sqlx::query("SELECT course_code FROM courses WHERE course_code IN (SELECT value FROM jsonb_each(?1))")
                .bind(serde_json::to_string(chunk).unwrap())
                .fetch_all(&self.pool)
                .await?;
            known
                .courses
                .extend(rows.iter().map(|r| r.get::<String, _>(0)));
        }
        Ok(known)
    }

    async fn apply_intake(&self, chunk: &IntakeChunk, now_ms: i64) -> Result<u64> {
        if chunk.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let seq: i64 = sqlx::query_scalar(
            "UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut changed = 0;
        let rows = super::rowmap::intake_rows(chunk);
        for (sql, of, counted) in INTAKE {
            let json = rows[of as usize].as_str();
            if json == "[]" {
                continue;
            }
            // Unused parameters are allowed: the course-hours rewrites take
            // the sequence but not the time.
            let touched = sqlx::query(sql)
                .bind(json)
                .bind(seq)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if counted {
                changed += touched;
            }
        }
        if changed == 0 {
            // Nothing differed: leave the change sequence where it was.
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(changed)
    }
}

/// The statements of an intake chunk, in order: each reads one of the
/// arrays of [`super::rowmap::intake_rows`] as its JSON parameter and says
/// whether the rows it touches count as changed. An upsert only touches a
/// row whose content differs, so importing the same data twice changes
/// nothing and advances no sequence. A course's certified hours live in
/// `course_hours`, one row per registry: a course whose hours differ is
/// stamped like any changed course (the scan finds its completions
/// through `courses.seq`), then the hours of every course stamped in this
/// transaction are written anew; those rows are not counted again.
const INTAKE: [(&str, IntakeRows, bool); 8] = [
    (UPSERT_UNITS, IntakeRows::Units, true),
    (UPSERT_PERSONS, IntakeRows::Persons, true),
    (UPSERT_ACCOUNTS, IntakeRows::Accounts, true),
    (UPSERT_COURSES, IntakeRows::Courses, true),
    (STAMP_COURSES_WITH_NEW_HOURS, IntakeRows::Courses, true),
    (DELETE_REWRITTEN_HOURS, IntakeRows::Courses, false),
    (INSERT_REWRITTEN_HOURS, IntakeRows::Courses, false),
    (UPSERT_COMPLETIONS, IntakeRows::Completions, true),
];

const UPSERT_UNITS: &str = "
INSERT INTO units (code, name, seq, changed_at)
SELECT j.value->>0, j.value->>1, ?2, ?3 FROM jsonb_each(?1) AS j WHERE true
ON CONFLICT (code) DO UPDATE SET name = excluded.name, seq = excluded.seq, changed_at = excluded.changed_at
WHERE units.name IS NOT excluded.name";

const UPSERT_PERSONS: &str = "
INSERT INTO persons (national_id, personnel_category, enved_account, service_unit_code, seq, changed_at)
SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, ?2, ?3 FROM jsonb_each(?1) AS j WHERE true
ON CONFLICT (national_id) DO UPDATE SET
    personnel_category = excluded.personnel_category, enved_account = excluded.enved_account,
    service_unit_code = excluded.service_unit_code, seq = excluded.seq, changed_at = excluded.changed_at
WHERE persons.personnel_category IS NOT excluded.personnel_category
   OR persons.enved_account IS NOT excluded.enved_account
   OR persons.service_unit_code IS NOT excluded.service_unit_code";

const UPSERT_ACCOUNTS: &str = "
INSERT INTO accounts (account_id, national_id, kind, identity, bound_to, seq, changed_at)
SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, ?2, ?3 FROM jsonb_each(?1) AS j WHERE true
ON CONFLICT (account_id) DO UPDATE SET
    national_id = excluded.national_id, kind = excluded.kind, identity = excluded.identity,
    bound_to = excluded.bound_to, seq = excluded.seq, changed_at = excluded.changed_at
WHERE accounts.national_id IS NOT excluded.national_id OR accounts.kind IS NOT excluded.kind
   OR accounts.identity IS NOT excluded.identity OR accounts.bound_to IS NOT excluded.bound_to";

const UPSERT_COURSES: &str = "
INSERT INTO courses (course_code, name, learning_mode, category_code, digital_tenths, classroom_tenths,
                     seq, changed_at)
SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5, ?2, ?3
FROM jsonb_each(?1) AS j WHERE true
ON CONFLICT (course_code) DO UPDATE SET
    name = excluded.name, learning_mode = excluded.learning_mode, category_code = excluded.category_code,
    digital_tenths = excluded.digital_tenths, classroom_tenths = excluded.classroom_tenths,
    seq = excluded.seq, changed_at = excluded.changed_at
WHERE courses.name IS NOT excluded.name OR courses.learning_mode IS NOT excluded.learning_mode
   OR courses.category_code IS NOT excluded.category_code
   OR courses.digital_tenths IS NOT excluded.digital_tenths OR courses.classroom_tenths IS NOT excluded.classroom_tenths";

/// Stamps a course not stamped yet in this transaction whose certified
/// hours (element 6, an object of registry to tenths, keys in name order)
/// differ from its `course_hours` rows: a figure added, removed or changed.
/// Both sides are rendered by SQLite's JSON, keys in the same order, so
/// equal hours compare as equal text; should the renderings ever part, a
/// course would be stamped for nothing, never left unstamped. One range
/// read of the primary key per course keeps a re-import cheap.
const STAMP_COURSES_WITH_NEW_HOURS: &str = "
UPDATE courses SET seq = ?2, changed_at = ?3
FROM jsonb_each(?1) AS j
WHERE courses.course_code = j.value->>0 AND courses.seq <> ?2
  AND j.value->6 IS NOT (SELECT json_group_object(h.registry, h.tenths ORDER BY h.registry)
                         FROM course_hours h WHERE h.course_code = courses.course_code)";

/// The hours of the chunk's courses stamped in this transaction (new,
/// changed, or with new hours), removed to be inserted as they are now.
/// `CROSS JOIN` keeps the chunk as the outer loop, each course found by its
/// key: driven by `courses_seq` instead, SQLite would scan the whole chunk
/// once per stamped course.
const DELETE_REWRITTEN_HOURS: &str = "
DELETE FROM course_hours WHERE course_code IN (
    SELECT k.course_code FROM jsonb_each(?1) AS j CROSS JOIN courses k ON k.course_code = j.value->>0
    WHERE k.seq = ?2)";

const INSERT_REWRITTEN_HOURS: &str = "
INSERT INTO course_hours (course_code, registry, tenths)
SELECT k.course_code, e.key, e.value
FROM jsonb_each(?1) AS j CROSS JOIN courses k ON k.course_code = j.value->>0
CROSS JOIN jsonb_each(j.value, '$[6]') AS e
WHERE k.seq = ?2";

const UPSERT_COMPLETIONS: &str = "
INSERT INTO completions (completion_id, account_id, course_code, completed_at, completed_on, status, seq, changed_at)
SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5, ?2, ?3
FROM jsonb_each(?1) AS j WHERE true
ON CONFLICT (completion_id) DO UPDATE SET
    account_id = excluded.account_id, course_code = excluded.course_code, completed_at = excluded.completed_at,
    completed_on = excluded.completed_on, status = excluded.status, seq = excluded.seq, changed_at = excluded.changed_at
WHERE completions.account_id IS NOT excluded.account_id OR completions.course_code IS NOT excluded.course_code
   OR completions.completed_at IS NOT excluded.completed_at OR completions.status IS NOT excluded.status";
