//! Registries end up right (issue 5): hours corrected after delivery go out
//! as a `PUT` under a new revision, revoked or decertified records are
//! withdrawn with `DELETE`, a reinstated record is credited again once, and
//! the reconcile repairs what a registry lost or holds wrongly. Everything
//! against the simulator over real HTTP, read back the way support reads it
//! (`hoursync status --json`, `hoursync history`, `hoursync reconcile`).

#[macro_use]
mod common;

use common::fixture::{account, completion, id, learners};
use common::*;
use hoursync::simulator::{Faults, Simulator};
use hoursync::store::State;
use serde_json::{Value, json};
use std::time::Duration;

const DRAIN: Duration = Duration::from_secs(90);

fn course(
    code: &str,
    lifelong: Option<&str>,
    teacher: Option<&str>,
    enved: Option<&str>,
) -> String {
    json!({"type": "course", "course_code": code, "name": format!("課程 {code}"), "learning_mode": 1,
           "category_code": "A1", "digital_hours": lifelong.unwrap_or("1.0"), "classroom_hours": "0.0",
           "certified": {"lifelong": lifelong, "teacher": teacher, "enved": enved}})
    .to_string()
}

/// One civil servant (category 10, env-ed account, known unit) with three
/// completions: c1 and c3 of K1 (certified 2.0 everywhere), c2 of K2
/// (lifelong 3.0 only).
fn base() -> Vec<String> {
    vec![
        json!({"type": "unit", "code": "U1", "name": "單位"}).to_string(),
        json!({"type": "person", "national_id": id(1), "personnel_category": "10",
               "enved_account": "EE-1", "service_unit_code": "U1"})
        .to_string(),
        account("a1", 1, "ecpa", Some("civil_servant")),
        course("K1", Some("2.0"), Some("2.0"), Some("2.0")),
        course("K2", Some("3.0"), None, None),
        completion("c1", "a1", "K1", "2026-11-20T10:00:00+08:00", "completed"),
        completion("c2", "a1", "K2", "2026-11-20T11:00:00+08:00", "completed"),
        completion("c3", "a1", "K1", "2026-11-21T10:00:00+08:00", "completed"),
    ]
}

/// The hours the simulator credits per completion of `registry`, and how
/// many records it holds for each.
fn credited(sim: &Simulator, registry: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = sim
        .credited(registry)
        .iter()
        .map(|c| {
            let on = c.record["completed_on"].as_str().unwrap().to_string();
            let course = c.record["course_code"].as_str().unwrap().to_string();
            (format!("{course}@{on}"), c.hours.clone())
        })
        .collect();
    v.sort();
    v
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The status line of one completion × registry.
fn line<'a>(status: &'a [Value], completion: &str, registry: &str) -> &'a Value {
    status
        .iter()
        .find(|l| l["completion_id"] == completion && l["registry"] == registry)
        .unwrap_or_else(|| panic!("no status line for {completion}/{registry}"))
}

/// `hoursync history ID --json`.
async fn history(env: &TestEnv, sim: &Simulator, delivery_id: i64) -> Vec<Value> {
    let out = cli_ok(env, sim, &["history", &delivery_id.to_string(), "--json"]).await;
    serde_json::from_str(&out).unwrap()
}

/// `hoursync reconcile --all --json`.
async fn reconcile(env: &TestEnv, sim: &Simulator) -> Value {
    let stdout = cli_ok(env, sim, &["reconcile", "--all", "--json"]).await;
    assert!(
        !stdout.contains(&id(1)),
        "reconcile printed a whole national ID"
    );
    serde_json::from_str(&stdout).unwrap()
}

/// The base data imported, the daemon running in this process and
/// everything delivered through a simulator with `faults`.
async fn delivered(
    backend: Backend,
    faults: Faults,
) -> (
    TestEnv,
    Simulator,
    hoursync::store::SharedStore,
    InProcessDaemon,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(faults).await;
    let store = env.store().await;
    import_lines(&env, &store, "base.jsonl", &base()).await;
    let daemon = InProcessDaemon::start(env.config(&sim));
    wait_drained(&store, DRAIN).await;
    (env, sim, store, daemon)
}

async fn import_lines(
    env: &TestEnv,
    store: &hoursync::store::SharedStore,
    name: &str,
    lines: &[String],
) {
    let file = env.write(name, lines);
    let report = import(store, &[file]).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
}

async fn corrections_withdrawals_and_reinstatement_leave_each_registry_with_one_right_record(
    backend: Backend,
) {
    // Every kind of request meets 503s and answers lost after the commit.
    let (env, sim, store, daemon) = delivered(
        backend,
        Faults {
            error_rate: 0.25,
            drop_rate: 0.15,
            ..Faults::default()
        },
    )
    .await;
    let receipts_before: Vec<String> = sim
        .credited("lifelong")
        .iter()
        .map(|c| c.receipt_id.clone())
        .collect();
    assert_eq!(
        credited(&sim, "lifelong"),
        pairs(&[
            ("K1@2026-11-20", "2.0"),
            ("K1@2026-11-21", "2.0"),
            ("K2@2026-11-20", "3.0")
        ])
    );

    // K1's lifelong hours are corrected: both K1 records, nothing else.
    import_lines(
        &env,
        &store,
        "fix.jsonl",
        &[course("K1", Some("3.5"), Some("2.0"), Some("2.0"))],
    )
    .await;
    wait_drained(&store, DRAIN).await;
    assert_eq!(
        credited(&sim, "lifelong"),
        pairs(&[
            ("K1@2026-11-20", "3.5"),
            ("K1@2026-11-21", "3.5"),
            ("K2@2026-11-20", "3.0")
        ]),
        "the registry holds the corrected figure and no second record"
    );
    let receipts_after: Vec<String> = sim
        .credited("lifelong")
        .iter()
        .map(|c| c.receipt_id.clone())
        .collect();
    assert_eq!(
        receipts_after, receipts_before,
        "corrected in place, same receipts"
    );
    assert_eq!(sim.stats().registry("lifelong").corrections, 2);
    assert_eq!(sim.stats().registry("teacher").corrections, 0);
    let status = status_json(&env, &sim, &id(1)).await;
    let c1 = line(&status, "c1", "lifelong");
    assert_eq!(c1["state"], "delivered");
    assert_eq!(c1["hours"], "3.5");
    let h = history(&env, &sim, c1["delivery_id"].as_i64().unwrap()).await;
    let landed: Vec<(i64, &str)> = h
        .iter()
        .filter(|a| {
            a["result"] == "accepted" || a["result"] == "duplicate" || a["result"] == "corrected"
        })
        .map(|a| {
            (
                a["revision"].as_i64().unwrap(),
                a["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(landed.contains(&(1, "upload")), "{h:?}");
    assert!(landed.contains(&(2, "correct")), "{h:?}");
    assert_eq!(c1["attempts"].as_i64().unwrap(), h.len() as i64);

    // c2 revoked; K1 loses its teacher certification.
    import_lines(
        &env,
        &store,
        "revoke.jsonl",
        &[
            completion("c2", "a1", "K2", "2026-11-20T11:00:00+08:00", "revoked"),
            course("K1", Some("3.5"), None, Some("2.0")),
        ],
    )
    .await;
    wait_drained(&store, DRAIN).await;
    assert_eq!(
        credited(&sim, "lifelong"),
        pairs(&[("K1@2026-11-20", "3.5"), ("K1@2026-11-21", "3.5")])
    );
    assert!(
        credited(&sim, "teacher").is_empty(),
        "decertified: withdrawn"
    );
    assert_eq!(credited(&sim, "enved").len(), 2, "env-ed untouched");
    let status = status_json(&env, &sim, &id(1)).await;
    assert_eq!(line(&status, "c2", "lifelong")["state"], "withdrawn");
    assert_eq!(
        line(&status, "c2", "lifelong")["reason"],
        "course_not_completed"
    );
    assert_eq!(line(&status, "c1", "teacher")["state"], "withdrawn");
    assert_eq!(
        line(&status, "c1", "teacher")["reason"],
        "course_not_certified"
    );
    assert!(line(&status, "c2", "lifelong")["sla"].is_null());

    // c2 reinstated: credited again, once, as a new record.
    import_lines(
        &env,
        &store,
        "reinstate.jsonl",
        &[completion(
            "c2",
            "a1",
            "K2",
            "2026-11-20T11:00:00+08:00",
            "completed",
        )],
    )
    .await;
    wait_drained(&store, DRAIN).await;
    assert_eq!(
        credited(&sim, "lifelong"),
        pairs(&[
            ("K1@2026-11-20", "3.5"),
            ("K1@2026-11-21", "3.5"),
            ("K2@2026-11-20", "3.0")
        ])
    );
    let status = status_json(&env, &sim, &id(1)).await;
    let c2 = line(&status, "c2", "lifelong");
    assert_eq!(c2["state"], "delivered");
    assert!(
        !receipts_before.contains(&c2["receipt_id"].as_str().unwrap().to_string()),
        "a new record, not the withdrawn one"
    );
    daemon.stop().await;
}

async fn corrections_and_withdrawals_meeting_lost_answers_or_5xx_are_retried_and_land_once(
    backend: Backend,
) {
    let (env, sim, store, daemon) = delivered(backend, Faults::default()).await;
    // Every PUT commits, then the connection drops: the outcome is unknown.
    sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    import_lines(
        &env,
        &store,
        "fix.jsonl",
        &[course("K2", Some("4.5"), None, None)],
    )
    .await;
    let status = status_json(&env, &sim, &id(1)).await;
    let c2 = line(&status, "c2", "lifelong")["delivery_id"]
        .as_i64()
        .unwrap();
    wait_for(DRAIN, "two unanswered corrections", || async {
        let h = history(&env, &sim, c2).await;
        h.iter()
            .filter(|a| a["action"] == "correct" && a["result"] == "unknown")
            .count()
            >= 2
    })
    .await;
    assert!(
        credited(&sim, "lifelong").contains(&("K2@2026-11-20".into(), "4.5".into())),
        "the first PUT was applied though its answer was lost"
    );
    sim.set_faults(Faults::default());
    wait_drained(&store, DRAIN).await;
    assert_eq!(
        credited(&sim, "lifelong"),
        pairs(&[
            ("K1@2026-11-20", "2.0"),
            ("K1@2026-11-21", "2.0"),
            ("K2@2026-11-20", "4.5")
        ])
    );
    assert_eq!(
        sim.stats().registry("lifelong").corrections,
        1,
        "resending the same revision changed nothing more"
    );
    let status = status_json(&env, &sim, &id(1)).await;
    assert_eq!(line(&status, "c2", "lifelong")["state"], "delivered");

    // Every request answers 503 while c3 is revoked.
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    import_lines(
        &env,
        &store,
        "revoke.jsonl",
        &[completion(
            "c3",
            "a1",
            "K1",
            "2026-11-21T10:00:00+08:00",
            "revoked",
        )],
    )
    .await;
    let c3 = line(&status, "c3", "enved")["delivery_id"]
        .as_i64()
        .unwrap();
    wait_for(DRAIN, "two withdrawals answered 503", || async {
        let h = history(&env, &sim, c3).await;
        h.iter()
            .filter(|a| a["action"] == "withdraw" && a["http_status"] == 503)
            .count()
            >= 2
    })
    .await;
    let status = status_json(&env, &sim, &id(1)).await;
    assert_eq!(line(&status, "c3", "enved")["state"], "withdrawing");
    assert_eq!(credited(&sim, "enved").len(), 2, "nothing withdrawn yet");
    sim.set_faults(Faults::default());
    wait_drained(&store, DRAIN).await;
    let status = status_json(&env, &sim, &id(1)).await;
    for (registry, left) in [("lifelong", 2), ("teacher", 1), ("enved", 1)] {
        assert_eq!(line(&status, "c3", registry)["state"], "withdrawn");
        assert_eq!(credited(&sim, registry).len(), left, "{registry}");
    }
    daemon.stop().await;
}

async fn a_daemon_killed_while_correcting_and_withdrawing_leaves_no_old_figure_and_no_second_record(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;
    let store = env.store().await;
    import_lines(&env, &store, "base.jsonl", &base()).await;
    let mut first = env.command(&sim, &["run"]);
    first
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut daemon = first.spawn().unwrap();
    wait_drained(&store, DRAIN).await;
    let requests_before = sim.stats().registry("lifelong").requests;
    // Slow answers, so the kill lands while requests are in flight.
    sim.set_faults(Faults {
        latency_ms: 700,
        ..Faults::default()
    });
    import_lines(
        &env,
        &store,
        "change.jsonl",
        &[
            course("K1", Some("1.5"), None, Some("2.0")),
            completion("c2", "a1", "K2", "2026-11-20T11:00:00+08:00", "revoked"),
        ],
    )
    .await;
    wait_for(DRAIN, "a correction or withdrawal in flight", || async {
        sim.stats().registry("lifelong").requests > requests_before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    daemon.start_kill().unwrap(); // SIGKILL
    daemon.wait().await.unwrap();
    sim.set_faults(Faults::default());
    let mut again = env.command(&sim, &["run"]);
    again
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut daemon = again.spawn().unwrap();
    wait_drained(&store, DRAIN).await;
    assert_eq!(
        credited(&sim, "lifelong"),
        pairs(&[("K1@2026-11-20", "1.5"), ("K1@2026-11-21", "1.5")])
    );
    assert!(credited(&sim, "teacher").is_empty());
    assert_eq!(
        credited(&sim, "enved"),
        pairs(&[("K1@2026-11-20", "2.0"), ("K1@2026-11-21", "2.0")])
    );
    daemon.start_kill().unwrap();
}

async fn reconcile_repairs_exactly_what_the_registry_lost_or_holds_wrongly_then_finds_nothing(
    backend: Backend,
) {
    let (env, sim, store, daemon) = delivered(backend, Faults::default()).await;
    let key_of = |registry: &str, course_on: &str| {
        sim.credited(registry)
            .into_iter()
            .find(|c| {
                format!(
                    "{}@{}",
                    c.record["course_code"].as_str().unwrap(),
                    c.record["completed_on"].as_str().unwrap()
                ) == course_on
            })
            .unwrap()
            .idempotency_key
    };
    assert!(sim.forget("lifelong", &key_of("lifelong", "K2@2026-11-20")));
    assert!(sim.forget("enved", &key_of("enved", "K1@2026-11-21")));
    assert!(sim.set_hours("teacher", &key_of("teacher", "K1@2026-11-20"), 90));

    let report = reconcile(&env, &sim).await;
    let mut repairs: Vec<(String, String, String)> = report["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["registry"].as_str().unwrap().to_string(),
                r["completion_id"].as_str().unwrap().to_string(),
                r["repair"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    repairs.sort();
    assert_eq!(
        repairs,
        vec![
            ("enved".into(), "c3".into(), "requeued".into()),
            ("lifelong".into(), "c2".into(), "requeued".into()),
            ("teacher".into(), "c1".into(), "corrected".into()),
        ],
        "{report}"
    );
    assert_eq!(report["checked"]["lifelong"], 3);
    assert_eq!(report["lookup_errors"], 0);
    wait_drained(&store, DRAIN).await;
    assert_eq!(
        credited(&sim, "lifelong"),
        pairs(&[
            ("K1@2026-11-20", "2.0"),
            ("K1@2026-11-21", "2.0"),
            ("K2@2026-11-20", "3.0")
        ])
    );
    assert_eq!(
        credited(&sim, "teacher"),
        pairs(&[("K1@2026-11-20", "2.0"), ("K1@2026-11-21", "2.0")])
    );
    assert_eq!(credited(&sim, "enved").len(), 2);

    let again = reconcile(&env, &sim).await;
    assert_eq!(again["repairs"], json!([]), "{again}");
    assert_eq!(again["checked"]["teacher"], 2);
    daemon.stop().await;
}

/// A registry that is down costs a reconcile a few failed lookups, not a
/// timeout per record: after five failures in a row its other records wait
/// for the next run, and the other registries are looked up as usual.
async fn a_reconcile_skips_a_registry_that_is_down_after_a_few_failed_lookups(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;
    let store = env.store().await;
    let data = env.path("generated.jsonl");
    hoursync::dataset::write(
        hoursync::dataset::DatasetSpec {
            persons: 4,
            completions_per_person: 3,
            courses: 6,
            seed: 5,
            profile: hoursync::dataset::Profile::AllEligible,
            offset: 0,
        },
        &data,
    )
    .unwrap();
    assert_eq!(import(&store, &[data]).await.rejected, 0);
    let daemon = InProcessDaemon::start(env.config(&sim));
    wait_drained(&store, DRAIN).await;
    daemon.stop().await;
    let enved = sim.credited("enved").len();
    assert!(enved > 5, "{enved}");

    let out = output_ok(env.command(&sim, &["reconcile", "--all", "--json"]).env(
        "HOURSYNC_REGISTRIES__ENVED__BASE_URL",
        "http://127.0.0.1:1/enved",
    ))
    .await;
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["lookup_errors"], 5, "{report}");
    assert_eq!(report["skipped"]["enved"], enved - 5, "{report}");
    assert_eq!(report["checked"]["enved"], 5, "{report}");
    assert_eq!(
        report["checked"]["lifelong"],
        sim.credited("lifelong").len(),
        "{report}"
    );
    assert_eq!(
        report["repairs"],
        json!([]),
        "a registry that did not answer is not repaired"
    );
}

/// The hours drift an independent check found: a batch is credited but its
/// answer lost; before the resend the course's hours change. The resend
/// must carry the bytes that landed (the registry answers `duplicate` for
/// them), and the change then goes out as a correction, so that every
/// record ends with our hours and no record twice.
async fn hours_changed_while_an_upload_outcome_is_unknown_end_as_a_correction_not_a_silent_drift(
    backend: Backend,
) {
    const LEARNERS: u32 = 30;
    let env = TestEnv::new(backend).await;
    // Every request commits, then its answer is lost.
    let sim = simulator(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    let lines = learners(
        LEARNERS,
        course("K1", Some("5.2"), Some("5.2"), Some("5.2")),
    );
    import_lines(&env, &store, "base.jsonl", &lines).await;
    let daemon = InProcessDaemon::start(env.config(&sim));
    let registries = ["lifelong", "teacher", "enved"];
    wait_for(
        DRAIN,
        "every record credited with its answer lost",
        || async {
            let retrying = count_where(&store, |s| s == State::Retrying).await;
            let held: usize = registries.iter().map(|r| sim.credited(r).len()).sum();
            held == 3 * LEARNERS as usize && retrying == 3 * i64::from(LEARNERS)
        },
    )
    .await;

    // The course's hours change while every outcome is still unknown.
    import_lines(
        &env,
        &store,
        "fix.jsonl",
        &[course("K1", Some("6.2"), Some("6.2"), Some("6.2"))],
    )
    .await;
    wait_for(DRAIN, "the scan to judge the change", || async {
        let (cursor, changes) = store.scan_window().await.unwrap();
        cursor == changes
    })
    .await;
    sim.set_faults(Faults::default());
    wait_drained(&store, DRAIN).await;
    daemon.stop().await;

    for registry in registries {
        assert_holds_our_hours(&sim, registry, LEARNERS as usize, "6.2");
        assert_eq!(
            sim.stats().registry(registry).corrections,
            u64::from(LEARNERS),
            "{registry}: the change went out as corrections"
        );
    }
    let status = status_json(&env, &sim, &id(7)).await;
    for registry in registries {
        let l = line(&status, "c7", registry);
        assert_eq!(
            (l["state"].as_str(), l["hours"].as_str()),
            (Some("delivered"), Some("6.2")),
            "{l}"
        );
    }
}

backend_tests!(
    a_reconcile_skips_a_registry_that_is_down_after_a_few_failed_lookups,
    corrections_withdrawals_and_reinstatement_leave_each_registry_with_one_right_record,
    corrections_and_withdrawals_meeting_lost_answers_or_5xx_are_retried_and_land_once,
    a_daemon_killed_while_correcting_and_withdrawing_leaves_no_old_figure_and_no_second_record,
    reconcile_repairs_exactly_what_the_registry_lost_or_holds_wrongly_then_finds_nothing,
    hours_changed_while_an_upload_outcome_is_unknown_end_as_a_correction_not_a_silent_drift,
);
