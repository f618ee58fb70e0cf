//! The intake: applying chunks of learning data, stamped with a change sequence, on PostgreSQL.

use super::*;

#[async_trait]
impl IntakeStore for PostgresStore {
    async fn known_keys(&self, wanted: &KeyQuery) -> Result<KnownKeys> {
        let mut known = KnownKeys::default();
        for chunk in wanted.persons.chunks(10_000) {
            let whole: Vec<&str> = chunk.iter().map(NationalId::expose).collect();
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT national_id FROM persons WHERE national_id = ANY($1)")
                    .bind(whole)
                    .fetch_all(&self.pool)
                    .await?;
            for r in rows {
                known.persons.insert(nid(&r)?);
            }
        }
        for chunk in wanted.accounts.chunks(10_000) {
            let rows = sqlx::query(
                "SELECT account_id, kind, national_id FROM accounts WHERE account_id = ANY($1)",
            )
            .bind(chunk)
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
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT course_code FROM courses WHERE course_code = ANY($1)")
                    .bind(chunk)
                    .fetch_all(&self.pool)
                    .await?;
            known.courses.extend(rows);
        }
        Ok(known)
    }

    async fn apply_intake(&self, chunk: &IntakeChunk, now_ms: i64) -> Result<u64> {
        if chunk.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        // Locks the sequence row until commit (see the migration).
        let seq: i64 = sqlx::query_scalar(
            "UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut changed = 0;
        let rows = super::rowmap::intake_rows(chunk);
        for (sql, of, params) in INTAKE {
            let json = rows[of as usize].as_str();
            if json == "[]" {
                continue;
            }
            let query = sqlx::query(sql).bind(json).bind(seq);
            let query = if params == Params::Stamp {
                query.bind(now_ms)
            } else {
                query
            };
            let touched = query.execute(&mut *tx).await?.rows_affected();
            if params == Params::Stamp {
                changed += touched;
            }
        }
        if changed == 0 {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(changed)
    }
}

const UPSERT_UNITS: &str = "
INSERT INTO units (code, name, seq, changed_at)
SELECT j->>0, j->>1, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (code) DO UPDATE SET name = excluded.name, seq = excluded.seq, changed_at = excluded.changed_at
WHERE units.name IS DISTINCT FROM excluded.name";

const UPSERT_PERSONS: &str = "
INSERT INTO persons (national_id, personnel_category, enved_account, service_unit_code, seq, changed_at)
SELECT j->>0, j->>1, j->>2, j->>3, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (national_id) DO UPDATE SET
    personnel_category = excluded.personnel_category, enved_account = excluded.enved_account,
    service_unit_code = excluded.service_unit_code, seq = excluded.seq, changed_at = excluded.changed_at
WHERE (persons.personnel_category, persons.enved_account, persons.service_unit_code)
      IS DISTINCT FROM (excluded.personnel_category, excluded.enved_account, excluded.service_unit_code)";

const UPSERT_ACCOUNTS: &str = "
INSERT INTO accounts (account_id, national_id, kind, identity, bound_to, seq, changed_at)
SELECT j->>0, j->>1, j->>2, j->>3, j->>4, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (account_id) DO UPDATE SET
    national_id = excluded.national_id, kind = excluded.kind, identity = excluded.identity,
    bound_to = excluded.bound_to, seq = excluded.seq, changed_at = excluded.changed_at
WHERE (accounts.national_id, accounts.kind, accounts.identity, accounts.bound_to)
      IS DISTINCT FROM (excluded.national_id, excluded.kind, excluded.identity, excluded.bound_to)";

/// The statements of an intake chunk, in order, with the array of
/// `intake_rows` each reads (see the SQLite twin for the course hours).
const INTAKE: [(&str, IntakeRows, Params); 8] = [
    (UPSERT_UNITS, IntakeRows::Units, Params::Stamp),
    (UPSERT_PERSONS, IntakeRows::Persons, Params::Stamp),
    (UPSERT_ACCOUNTS, IntakeRows::Accounts, Params::Stamp),
    (UPSERT_COURSES, IntakeRows::Courses, Params::Stamp),
    (
        STAMP_COURSES_WITH_NEW_HOURS,
        IntakeRows::Courses,
        Params::Stamp,
    ),
    (DELETE_REWRITTEN_HOURS, IntakeRows::Courses, Params::Rewrite),
    (INSERT_REWRITTEN_HOURS, IntakeRows::Courses, Params::Rewrite),
    (UPSERT_COMPLETIONS, IntakeRows::Completions, Params::Stamp),
];

const UPSERT_COURSES: &str = "
INSERT INTO courses (course_code, name, learning_mode, category_code, digital_tenths, classroom_tenths,
                     seq, changed_at)
SELECT j->>0, j->>1, (j->>2)::bigint, j->>3, (j->>4)::bigint, (j->>5)::bigint, $2, $3
FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (course_code) DO UPDATE SET
    name = excluded.name, learning_mode = excluded.learning_mode, category_code = excluded.category_code,
    digital_tenths = excluded.digital_tenths, classroom_tenths = excluded.classroom_tenths,
    seq = excluded.seq, changed_at = excluded.changed_at
WHERE (courses.name, courses.learning_mode, courses.category_code, courses.digital_tenths,
       courses.classroom_tenths)
      IS DISTINCT FROM (excluded.name, excluded.learning_mode, excluded.category_code, excluded.digital_tenths,
       excluded.classroom_tenths)";

/// Stamps a course not stamped yet in this transaction whose certified
/// hours (element 6, an object of registry to tenths) differ from its
/// `course_hours` rows; jsonb compares objects whatever their key order.
const STAMP_COURSES_WITH_NEW_HOURS: &str = "
UPDATE courses k SET seq = $2, changed_at = $3
FROM jsonb_array_elements($1::jsonb) AS j
WHERE k.course_code = j->>0 AND k.seq <> $2
  AND (SELECT COALESCE(jsonb_object_agg(h.registry, h.tenths), '{}'::jsonb)
       FROM course_hours h WHERE h.course_code = k.course_code) IS DISTINCT FROM j->6";

const DELETE_REWRITTEN_HOURS: &str = "
DELETE FROM course_hours h USING jsonb_array_elements($1::jsonb) AS j, courses k
WHERE k.course_code = j->>0 AND k.seq = $2 AND h.course_code = k.course_code";

const INSERT_REWRITTEN_HOURS: &str = "
INSERT INTO course_hours (course_code, registry, tenths)
SELECT k.course_code, e.key, e.value::bigint
FROM jsonb_array_elements($1::jsonb) AS j
JOIN courses k ON k.course_code = j->>0
CROSS JOIN LATERAL jsonb_each_text(j->6) AS e
WHERE k.seq = $2";

const UPSERT_COMPLETIONS: &str = "
INSERT INTO completions (completion_id, account_id, course_code, completed_at, completed_on, status, seq, changed_at)
SELECT j->>0, j->>1, j->>2, (j->>3)::bigint, j->>4, j->>5, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (completion_id) DO UPDATE SET
    account_id = excluded.account_id, course_code = excluded.course_code, completed_at = excluded.completed_at,
    completed_on = excluded.completed_on, status = excluded.status, seq = excluded.seq, changed_at = excluded.changed_at
WHERE (completions.account_id, completions.course_code, completions.completed_at, completions.status)
      IS DISTINCT FROM (excluded.account_id, excluded.course_code, excluded.completed_at, excluded.status)";
