//! The intake: applying chunks of learning data, stamped with a change sequence.

use super::{Backend, Run, SqlStore};
use crate::domain::NationalId;
use crate::store::dialect::{Dialect, Sql};
use crate::store::rowmap::ReadRow as _;
use crate::store::rowmap::{IntakeRows, intake_rows, nid};
use crate::store::{IntakeChunk, IntakeStore, KeyQuery, KnownAccount, KnownKeys, Result};
use async_trait::async_trait;

static KNOWN_PERSONS: Sql = Sql::built(|d: Dialect| {
    format!(
        "SELECT national_id FROM persons WHERE {}",
        d.in_list("national_id", "$1")
    )
});

static KNOWN_ACCOUNTS: Sql = Sql::built(|d: Dialect| {
    format!(
        "SELECT account_id, kind, national_id FROM accounts WHERE {}",
        d.in_list("account_id", "$1")
    )
});

static KNOWN_COURSES: Sql = Sql::built(|d: Dialect| {
    format!(
        "SELECT course_code FROM courses WHERE {}",
        d.in_list("course_code", "$1")
    )
});

/// Takes the next change sequence; on PostgreSQL the row stays locked until
/// commit, so sequences commit in order (see the migration).
static NEXT_SEQ: Sql =
    Sql::text("UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value");

/// What an intake statement takes beyond its rows (PostgreSQL refuses a
/// parameter a statement does not use), and whether what it touches counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Params {
    /// The sequence and the time: it stamps the rows it changes, which
    /// count as changed.
    Stamp,
    /// The sequence only: it rewrites the hours of courses already
    /// stamped (and counted).
    Rewrite,
}

/// The statements of an intake chunk, in order: each reads one of the
/// arrays of [`intake_rows`] as its JSON parameter. An upsert only touches
/// a row whose content differs, so importing the same data twice changes
/// nothing and advances no sequence. A course's certified hours live in
/// `course_hours`, one row per registry: a course whose hours differ is
/// stamped like any changed course (the scan finds its completions through
/// `courses.seq`), then the hours of every course stamped in this
/// transaction are written anew; those rows are not counted again.
static INTAKE: [(&Sql, IntakeRows, Params); 8] = [
    (&UPSERT_UNITS, IntakeRows::Units, Params::Stamp),
    (&UPSERT_PERSONS, IntakeRows::Persons, Params::Stamp),
    (&UPSERT_ACCOUNTS, IntakeRows::Accounts, Params::Stamp),
    (&UPSERT_COURSES, IntakeRows::Courses, Params::Stamp),
    (
        &STAMP_COURSES_WITH_NEW_HOURS,
        IntakeRows::Courses,
        Params::Stamp,
    ),
    (
        &DELETE_REWRITTEN_HOURS,
        IntakeRows::Courses,
        Params::Rewrite,
    ),
    (
        &INSERT_REWRITTEN_HOURS,
        IntakeRows::Courses,
        Params::Rewrite,
    ),
    (&UPSERT_COMPLETIONS, IntakeRows::Completions, Params::Stamp),
];

/// The elements of each array [`intake_rows`] writes, as columns.
const UNIT: [(&str, &str); 2] = [("code", "text"), ("name", "text")];
const PERSON: [(&str, &str); 4] = [
    ("national_id", "text"),
    ("personnel_category", "text"),
    ("enved_account", "text"),
    ("service_unit_code", "text"),
];
const ACCOUNT: [(&str, &str); 5] = [
    ("account_id", "text"),
    ("national_id", "text"),
    ("kind", "text"),
    ("identity", "text"),
    ("bound_to", "text"),
];
const COURSE: [(&str, &str); 7] = [
    ("course_code", "text"),
    ("name", "text"),
    ("learning_mode", "bigint"),
    ("category_code", "text"),
    ("digital_tenths", "bigint"),
    ("classroom_tenths", "bigint"),
    ("hours", "jsonb"),
];
const COMPLETION: [(&str, &str); 6] = [
    ("completion_id", "text"),
    ("account_id", "text"),
    ("course_code", "text"),
    ("completed_at", "bigint"),
    ("completed_on", "text"),
    ("status", "text"),
];

/// An upsert of `columns` from the chunk's rows that touches a row only when
/// one of them, other than those `derived` from the others, differs.
fn upsert(
    d: Dialect,
    table: &str,
    key: &str,
    columns: &[(&str, &str)],
    derived: &[&str],
) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let set: Vec<String> = names
        .iter()
        .filter(|n| **n != key)
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    let differs: Vec<String> = names
        .iter()
        .filter(|n| **n != key && !derived.contains(n))
        .map(|n| format!("{table}.{n} IS DISTINCT FROM excluded.{n}"))
        .collect();
    format!(
        "INSERT INTO {table} ({cols}, seq, changed_at)
         SELECT {cols}, $2, $3 FROM {rows} WHERE true
         ON CONFLICT ({key}) DO UPDATE SET {set}, seq = excluded.seq, changed_at = excluded.changed_at
         WHERE {differs}",
        cols = names.join(", "),
        rows = d.json_tuples("$1", columns, "r"),
        set = set.join(", "),
        differs = differs.join(" OR "),
    )
}

static UPSERT_UNITS: Sql = Sql::built(|d| upsert(d, "units", "code", &UNIT, &[]));
static UPSERT_PERSONS: Sql = Sql::built(|d| upsert(d, "persons", "national_id", &PERSON, &[]));
static UPSERT_ACCOUNTS: Sql = Sql::built(|d| upsert(d, "accounts", "account_id", &ACCOUNT, &[]));
static UPSERT_COURSES: Sql = Sql::built(|d| upsert(d, "courses", "course_code", &COURSE[..6], &[]));
/// `completed_on` is the Taipei date of `completed_at`.
static UPSERT_COMPLETIONS: Sql = Sql::built(|d| {
    upsert(
        d,
        "completions",
        "completion_id",
        &COMPLETION,
        &["completed_on"],
    )
});

/// Stamps a course not stamped yet in this transaction whose certified
/// hours (an object of registry to tenths, keys in name order) differ from
/// its `course_hours` rows: a figure added, removed or changed. Should the
/// two renderings ever part, a course would be stamped for nothing, never
/// left unstamped. One range read of the primary key per course keeps a
/// re-import cheap.
static STAMP_COURSES_WITH_NEW_HOURS: Sql = Sql::built(|d| {
    format!(
        "UPDATE courses SET seq = $2, changed_at = $3
         FROM {}
         WHERE courses.course_code = r.course_code AND courses.seq <> $2
           AND r.hours IS DISTINCT FROM (SELECT {} FROM course_hours h
                                         WHERE h.course_code = courses.course_code)",
        d.json_tuples("$1", &COURSE, "r"),
        d.json_object_agg("h.registry", "h.tenths")
    )
});

/// The hours of the chunk's courses stamped in this transaction (new,
/// changed, or with new hours), removed to be inserted as they are now.
/// The chunk stays the outer loop, each course found by its key: driven by
/// `courses_seq` instead, SQLite would scan the whole chunk once per
/// stamped course.
static DELETE_REWRITTEN_HOURS: Sql = Sql::built(|d| {
    format!(
        "DELETE FROM course_hours WHERE course_code IN (
            SELECT k.course_code FROM {} {} courses k ON k.course_code = r.course_code
            WHERE k.seq = $2)",
        d.json_tuples("$1", &COURSE, "r"),
        d.join_in_order()
    )
});

static INSERT_REWRITTEN_HOURS: Sql = Sql::built(|d| {
    format!(
        "INSERT INTO course_hours (course_code, registry, tenths)
         SELECT k.course_code, e.key, CAST(e.value AS BIGINT)
         FROM {} {} courses k ON k.course_code = r.course_code
         CROSS JOIN {} AS e
         WHERE k.seq = $2",
        d.json_tuples("$1", &COURSE, "r"),
        d.join_in_order(),
        d.json_entries("r.hours")
    )
});

#[async_trait]
impl<B: Backend> IntakeStore for SqlStore<B> {
    async fn known_keys(&self, wanted: &KeyQuery) -> Result<KnownKeys> {
        let mut known = KnownKeys::default();
        let mut pool = self.db.pool();
        for chunk in wanted.persons.chunks(10_000) {
            let whole: Vec<&str> = chunk.iter().map(NationalId::expose).collect();
            let rows = pool
                .fetch_all(Self::sql(&KNOWN_PERSONS), args![whole.as_slice()])
                .await?;
            for r in rows {
                known.persons.insert(nid(&r.text(0)?)?);
            }
        }
        for chunk in wanted.accounts.chunks(10_000) {
            let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let rows = pool
                .fetch_all(Self::sql(&KNOWN_ACCOUNTS), args![keys.as_slice()])
                .await?;
            for r in rows {
                known.accounts.insert(
                    r.text(0)?,
                    KnownAccount {
                        kind: r.text(1)?,
                        national_id: nid(&r.text(2)?)?,
                    },
                );
            }
        }
        for chunk in wanted.courses.chunks(10_000) {
            let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let rows = pool
                .fetch_all(Self::sql(&KNOWN_COURSES), args![keys.as_slice()])
                .await?;
            for r in rows {
                known.courses.insert(r.text(0)?);
            }
        }
        Ok(known)
    }

    async fn apply_intake(&self, chunk: &IntakeChunk, now_ms: i64) -> Result<u64> {
        if chunk.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.begin().await?;
        let seq = tx.fetch_one(Self::sql(&NEXT_SEQ), &[]).await?.int(0)?;
        let mut changed = 0;
        let rows = intake_rows(chunk);
        for (sql, of, params) in &INTAKE {
            let json = rows[*of as usize].as_str();
            if json == "[]" {
                continue;
            }
            let touched = match params {
                Params::Stamp => tx.execute(Self::sql(sql), args![json, seq, now_ms]).await?,
                Params::Rewrite => tx.execute(Self::sql(sql), args![json, seq]).await?,
            };
            if *params == Params::Stamp {
                changed += touched;
            }
        }
        // Nothing differed: the transaction ends without a commit, and the
        // change sequence stays where it was.
        if changed > 0 {
            tx.finish().await?;
        }
        Ok(changed)
    }
}
