//! Upgrading in place to delivery rows that keep a record's facts instead
//! of its wire JSON (migration 0009). A database at 0008, as the daemon
//! left it, with deliveries in every state, their attempts and an audit
//! entry, some records already credited by the registry, is migrated; every
//! learner's status, every attempt history and the audit trail read the
//! same before and after, and draining afterwards sends nothing twice:
//! what had landed is resent with the same record (the registry answers
//! `duplicate` and counts no other record under that key), a correction
//! and a withdrawal go out once each, and nothing credited is sent again.

mod common;

use common::fixture::{UNIT, id};
use common::*;
use hoursync::domain::{NationalId, RegistryKind};
use hoursync::registry::RegistryClient;
use hoursync::registry::adapter::idempotency_key;
use hoursync::simulator::Faults;
use hoursync::store::{Attempt, SharedStore, State};
use std::collections::BTreeMap;
use std::time::Duration;

/// The last migration whose delivery rows kept the wire JSON.
const BEFORE_RECORD_FACTS: i64 = 8;
const NOW: i64 = 1_796_000_000_000; // 2026-11-30
const COMPLETED_AT: i64 = 1_795_140_000_000; // 2026-11-20T10:00:00+08:00
const NAME: &str = r#"永續"發展"導論"#;
const DRAIN: Duration = Duration::from_secs(90);

/// A record exactly as format 1 sent it (golden files in tests/golden/).
fn old_record(n: u32, registry: RegistryKind, revision: i64, hours: &str) -> String {
    let key = idempotency_key(&format!("c{n}"), registry, revision);
    let course = if n == 1 { "K2" } else { "K1" };
    let common = format!(
        r#"{{"idempotency_key":"{key}","national_id":"{}","course_code":"{course}","course_name":"{}","completed_on":"2026-11-20","hours":"{hours}""#,
        id(n),
        NAME.replace('"', "\\\"")
    );
    match registry {
        RegistryKind::Lifelong => {
            let (digital, classroom) = if hours == "2.0" {
                ("1.0", "1.0")
            } else {
                ("1.5", "1.0")
            };
            format!(
                r#"{common},"learning_mode":3,"digital_hours":"{digital}","classroom_hours":"{classroom}","category_code":"A1"}}"#
            )
        }
        RegistryKind::Teacher => format!(r#"{common},"personnel_category":"10"}}"#),
        RegistryKind::Enved => {
            format!(r#"{common},"enved_account":"EE-{n}","service_unit_code":"{UNIT}"}}"#)
        }
    }
}

/// Credits `records` at the registry as the daemon before the upgrade did,
/// and gives back each one's receipt.
async fn credit(
    sim: &hoursync::simulator::Simulator,
    registry: RegistryKind,
    records: &[String],
) -> Vec<String> {
    let client = RegistryClient::new(
        registry,
        &sim.base_url(registry.as_str()),
        TOKEN.into(),
        Duration::from_secs(10),
    )
    .unwrap();
    let body = format!("{{\"records\":[{}]}}", records.join(","));
    let results = client
        .post_batch(body, &uuid::Uuid::new_v4().to_string())
        .await
        .unwrap();
    results
        .into_iter()
        .map(|r| r.receipt_id.expect("credited"))
        .collect()
}

fn sql_text(s: Option<&str>) -> String {
    s.map_or("NULL".into(), |s| format!("'{}'", s.replace('\'', "''")))
}

fn sql_int(i: Option<i64>) -> String {
    i.map_or("NULL".into(), |i| i.to_string())
}

/// One delivery row as 0008 stored it.
#[derive(Default)]
struct OldRow {
    n: u32,
    registry: Option<RegistryKind>,
    state: &'static str,
    reason: Option<&'static str>,
    hours_tenths: Option<i64>,
    revision: i64,
    payload: Option<String>,
    attempts: i64,
    last_error: Option<&'static str>,
    receipt_id: Option<String>,
    credited_tenths: Option<i64>,
    delivered: bool,
}

impl OldRow {
    fn insert(&self) -> String {
        let registry = self.registry.unwrap_or(RegistryKind::Lifelong);
        let course = if self.n == 1 { "K2" } else { "K1" };
        let sent = self.payload.is_some() || self.receipt_id.is_some();
        let key = sent.then(|| idempotency_key(&format!("c{}", self.n), registry, self.revision));
        let due = matches!(
            self.state,
            "pending" | "retrying" | "correcting" | "withdrawing"
        );
        format!(
            "INSERT INTO deliveries (completion_id, registry, national_id, course_code, state, reason,
                hours_tenths, revision, idempotency_key, payload, eligible_since, attempts, next_attempt_at,
                last_error, receipt_id, delivered_at, credited_tenths, lease_owner, lease_until, updated_at,
                due_at, rescan)
             VALUES ('c{n}', '{registry}', '{nid}', '{course}', '{state}', {reason}, {hours}, {revision},
                {key}, {payload}, {since}, {attempts}, {next}, {error}, {receipt}, {delivered_at},
                {credited}, NULL, NULL, {NOW}, {due_at}, 0);\n",
            n = self.n,
            nid = id(self.n),
            state = self.state,
            reason = sql_text(self.reason),
            hours = sql_int(self.hours_tenths),
            revision = self.revision,
            key = sql_text(key.as_deref()),
            payload = sql_text(self.payload.as_deref()),
            since = sql_int(self.hours_tenths.map(|_| COMPLETED_AT)),
            attempts = self.attempts,
            next = sql_int(due.then_some(NOW - 60_000)),
            error = sql_text(self.last_error),
            receipt = sql_text(self.receipt_id.as_deref()),
            delivered_at = sql_int(self.delivered.then_some(NOW - 3_600_000)),
            credited = sql_int(self.credited_tenths),
            due_at = sql_int(self.hours_tenths.map(|_| COMPLETED_AT + 5 * 86_400_000)),
        )
    }
}

/// The learning data, as 0008 stored it: ten learners, one completion
/// each; `c1` on K2 (certified everywhere), the others on K1 (lifelong
/// only); `c9` and `c10` revoked; learner 7 signed in with Google.
fn old_learning_data() -> String {
    let mut sql = format!(
        "UPDATE change_seq SET value = 1;
         INSERT INTO units (code, name, seq, changed_at) VALUES ('{UNIT}', '單位', 1, 1000);
         INSERT INTO courses (course_code, name, learning_mode, category_code, digital_tenths,
                              classroom_tenths, seq, changed_at)
         VALUES ('K1', {name}, 3, 'A1', 15, 10, 1, 1000), ('K2', {name}, 3, 'A1', 15, 10, 1, 1000);
         INSERT INTO course_hours (course_code, registry, tenths)
         VALUES ('K1', 'lifelong', 25), ('K2', 'lifelong', 25), ('K2', 'teacher', 25), ('K2', 'enved', 25);\n",
        name = sql_text(Some(NAME))
    );
    for n in 1..=10u32 {
        let (kind, identity) = if n == 7 {
            ("google", "NULL")
        } else {
            ("ecpa", "'civil_servant'")
        };
        let status = if n >= 9 { "revoked" } else { "completed" };
        let course = if n == 1 { "K2" } else { "K1" };
        sql.push_str(&format!(
            "INSERT INTO persons (national_id, personnel_category, enved_account, service_unit_code, seq, changed_at)
             VALUES ('{nid}', '10', 'EE-{n}', '{UNIT}', 1, 1000);
             INSERT INTO accounts (account_id, national_id, kind, identity, bound_to, seq, changed_at)
             VALUES ('a{n}', '{nid}', '{kind}', {identity}, NULL, 1, 1000);
             INSERT INTO completions (completion_id, account_id, course_code, completed_at, completed_on, status, seq, changed_at)
             VALUES ('c{n}', 'a{n}', '{course}', {COMPLETED_AT}, '2026-11-20', '{status}', 1, 1000);\n",
            nid = id(n),
        ));
    }
    sql
}

/// The attempt history as an older hoursync kept it (one `attempts` row
/// per record), by delivery, oldest first: what its `history` showed.
async fn old_history(env: &TestEnv) -> BTreeMap<i64, Vec<Attempt>> {
    type Row = (
        i64,
        i64,
        i64,
        String,
        String,
        Option<i64>,
        String,
        Option<String>,
    );
    const SQL: &str =
        "SELECT delivery_id, at, revision, action, request_id, http_status, result, error
                       FROM attempts ORDER BY id";
    let rows: Vec<Row> = match env.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.db_url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&pool).await.unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&env.db_url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&pool).await.unwrap()
        }
    };
    let mut history: BTreeMap<i64, Vec<Attempt>> = BTreeMap::new();
    for (delivery_id, at, revision, action, request_id, status, result, error) in rows {
        history.entry(delivery_id).or_default().push(Attempt {
            delivery_id,
            at,
            revision,
            action,
            request_id,
            http_status: status.map(|s| s as u16),
            result,
            error,
        });
    }
    history
}

/// What a support person and an auditor can read: every learner's status,
/// every delivery's attempt history (from `store`, or as `old` kept it),
/// the audit trail.
async fn everything_shown(
    store: &SharedStore,
    old: Option<&BTreeMap<i64, Vec<Attempt>>>,
) -> String {
    let mut shown = BTreeMap::new();
    for n in 1..=10 {
        let nid = NationalId::parse(&id(n)).unwrap();
        let lines =
            hoursync::status::person_status(store.as_ref(), &nid, NOW, chrono::Duration::hours(24))
                .await
                .unwrap();
        for l in &lines {
            let id = l.delivery_id.unwrap();
            let attempts = match old {
                Some(history) => history.get(&id).cloned().unwrap_or_default(),
                None => store.attempts_of(id).await.unwrap(),
            };
            shown.insert(
                format!("history {}", l.delivery_id.unwrap()),
                serde_json::to_string(&attempts).unwrap(),
            );
        }
        shown.insert(
            format!("status {n}"),
            serde_json::to_string(&lines).unwrap(),
        );
    }
    shown.insert(
        "audit".into(),
        serde_json::to_string(&store.list_audit(i64::MAX, 100).await.unwrap()).unwrap(),
    );
    serde_json::to_string_pretty(&shown).unwrap()
}

async fn a_database_of_every_delivery_state_upgraded_in_place_shows_the_same_and_sends_nothing_twice(
    backend: Backend,
) {
    use RegistryKind::*;
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;

    // What the registry credited before the upgrade: c2 (its answer was
    // lost: retrying), c4 (delivered), c8 at revision 1 with 2.0 hours (now
    // correcting to 2.5), c9 (revoked since: withdrawing).
    let landed = [
        old_record(2, Lifelong, 1, "2.5"),
        old_record(4, Lifelong, 1, "2.5"),
        old_record(8, Lifelong, 1, "2.0"),
        old_record(9, Lifelong, 1, "2.5"),
    ];
    let receipts = credit(&sim, Lifelong, &landed).await;
    let row = |n, state| OldRow {
        n,
        state,
        revision: 1,
        hours_tenths: Some(25),
        payload: Some(old_record(n, Lifelong, 1, "2.5")),
        ..OldRow::default()
    };
    let rows = vec![
        row(1, "pending"),
        OldRow {
            registry: Some(Teacher),
            payload: Some(old_record(1, Teacher, 1, "2.5")),
            ..row(1, "pending")
        },
        OldRow {
            registry: Some(Enved),
            payload: Some(old_record(1, Enved, 1, "2.5")),
            ..row(1, "pending")
        },
        OldRow {
            attempts: 2,
            last_error: Some("timed out after 10s"),
            ..row(2, "retrying")
        },
        OldRow {
            attempts: 1,
            last_error: Some("503 Service Unavailable"),
            ..row(3, "retrying")
        },
        OldRow {
            attempts: 1,
            receipt_id: Some(receipts[1].clone()),
            credited_tenths: Some(25),
            delivered: true,
            ..row(4, "delivered")
        },
        OldRow {
            attempts: 8,
            last_error: Some("503 Service Unavailable"),
            ..row(5, "failed")
        },
        OldRow {
            attempts: 1,
            reason: Some("unknown_person"),
            last_error: Some("unknown_person: not a learner of ours"),
            ..row(6, "rejected")
        },
        OldRow {
            reason: Some("social_login"),
            hours_tenths: None,
            payload: None,
            ..row(7, "ineligible")
        },
        OldRow {
            revision: 2,
            payload: Some(old_record(8, Lifelong, 2, "2.5")),
            receipt_id: Some(receipts[2].clone()),
            credited_tenths: Some(20),
            delivered: true,
            attempts: 0,
            ..row(8, "correcting")
        },
        OldRow {
            reason: Some("course_not_completed"),
            hours_tenths: None,
            payload: None,
            receipt_id: Some(receipts[3].clone()),
            credited_tenths: Some(25),
            delivered: true,
            ..row(9, "withdrawing")
        },
        OldRow {
            reason: Some("course_not_completed"),
            hours_tenths: None,
            payload: None,
            ..row(10, "withdrawn")
        },
    ];
    let mut sql = old_learning_data();
    for r in &rows {
        sql.push_str(&r.insert());
    }
    // Attempts: the ids are the rows' insertion order, from 1.
    sql.push_str(&format!(
        "INSERT INTO attempts (delivery_id, at, revision, action, request_id, http_status, result, error)
         VALUES (4, {a}, 1, 'upload', 'r-1', NULL, 'timeout', 'timed out after 10s'),
                (4, {b}, 1, 'upload', 'r-2', NULL, 'timeout', 'timed out after 10s'),
                (5, {a}, 1, 'upload', 'r-1', 503, 'server_error', '503 Service Unavailable'),
                (6, {a}, 1, 'upload', 'r-3', 200, 'accepted', NULL),
                (8, {a}, 1, 'upload', 'r-4', 200, 'rejected', 'unknown_person: not a learner of ours');
         INSERT INTO audit (at, actor, action, scope, records, status, result, finished_at)
         VALUES ({a}, 'api:ops', 'resync', '{{\"registry\":\"lifelong\"}}', 3, 'done', NULL, {b});\n",
        a = NOW - 7_200_000,
        b = NOW - 3_600_000,
    ));
    env.migrate_to(BEFORE_RECORD_FACTS, Some(&sql)).await;

    let old = hoursync::store::open(&env.db_url, 2, 5_000).await.unwrap();
    // Today's status counts a record's kept requests in `request_records`;
    // the old schema counted its `attempts` rows.
    let view = "CREATE VIEW request_records AS SELECT delivery_id FROM attempts";
    env.migrate_to(BEFORE_RECORD_FACTS, Some(view)).await;
    let history = old_history(&env).await;
    assert_eq!(
        history.values().map(Vec::len).sum::<usize>(),
        5,
        "every attempt read"
    );
    let before = everything_shown(&old, Some(&history)).await;
    env.migrate_to(BEFORE_RECORD_FACTS, Some("DROP VIEW request_records"))
        .await;
    old.migrate().await.unwrap();
    let after = everything_shown(&old, None).await;
    assert_eq!(before, after, "what support and audit read is unchanged");
    drop(old);

    let store = env.store().await;
    let daemon = InProcessDaemon::start(env.config(&sim));
    wait_drained(&store, DRAIN).await;
    wait_for(DRAIN, "the correction and the withdrawal", || async {
        count_where(&store, |s| {
            s == State::Correcting || s == State::Withdrawing
        })
        .await
            == 0
    })
    .await;
    daemon.stop().await;

    let stats = sim.stats();
    let lifelong = stats.registry("lifelong");
    assert_eq!(
        lifelong.resent_other_record, 0,
        "a resend after the upgrade carried other bytes than before it"
    );
    assert_eq!(lifelong.duplicates, 1, "c2, whose answer was lost, only");
    assert_eq!(
        (
            lifelong.records_accepted,
            lifelong.corrections,
            lifelong.withdrawals
        ),
        (4 + 2, 1, 1),
        "c1 and c3 uploaded once each, c8 corrected once, c9 withdrawn once"
    );
    let mut held: Vec<(String, String)> = sim
        .credited("lifelong")
        .into_iter()
        .map(|c| {
            (
                c.record["national_id"].as_str().unwrap().to_string(),
                c.hours,
            )
        })
        .collect();
    held.sort();
    let mut want: Vec<(String, String)> = [1, 2, 3, 4, 8]
        .iter()
        .map(|&n| (id(n), "2.5".to_string()))
        .collect();
    want.sort();
    assert_eq!(held, want, "one record per learner, with our hours");
    for registry in ["teacher", "enved"] {
        let r = stats.registry(registry);
        assert_eq!(
            (r.records_accepted, r.rejected, sim.credited(registry).len()),
            (1, 0, 1),
            "{registry}: c1 sent once and taken"
        );
    }
    let state = |n: u32| {
        let store = store.clone();
        async move {
            let nid = NationalId::parse(&id(n)).unwrap();
            hoursync::status::person_status(store.as_ref(), &nid, NOW, chrono::Duration::hours(24))
                .await
                .unwrap()
                .into_iter()
                .filter(|l| l.registry == Lifelong)
                .map(|l| l.state)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        state(5).await,
        ["failed"],
        "a failed record waits for a person"
    );
    assert_eq!(state(6).await, ["rejected"]);
    assert_eq!(state(9).await, ["withdrawn"]);
}

backend_tests!(
    a_database_of_every_delivery_state_upgraded_in_place_shows_the_same_and_sends_nothing_twice,
);
