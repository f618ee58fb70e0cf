//! `hoursync import` as INTAKE.md describes it: line-numbered errors, bad
//! lines never applied, `--strict`, re-imports that change nothing, and no
//! whole national ID in what it prints.

#[macro_use]
mod common;

use common::fixture::{self, id};
use common::*;
use hoursync::intake::{ImportOptions, import_files};
use hoursync::store::TableCounts;
use serde_json::json;

/// A file with one valid line around each kind of bad line.
fn bad_file_lines() -> Vec<String> {
    vec![
        json!({"type": "person", "national_id": id(9), "personnel_category": null}).to_string(), // 1 ok
        "{\"type\": \"person\", \"national_id\": ".to_string(),                                  // 2 malformed
        json!({"type": "person", "national_id": "B100000019"}).to_string(),                      // 3 check digit
        json!({"type": "course", "course_code": "NEG", "name": "n", "learning_mode": 1, "category_code": "A",
               "digital_hours": "-1.0", "classroom_hours": "0.0", "certified": {}}).to_string(),  // 4 negative
        fixture::completion("c-x", "no-such-account", "ALL", fixture::AT, "completed"),          // 5 dangling
        json!({"type": "account", "account_id": "a9", "national_id": id(9), "kind": "line"}).to_string(), // 6 enum
        json!({"type": "person", "national_id": id(1), "personnel_category": "1"}).to_string(),  // 7 bad update
        fixture::completion("c-late", "a1", "LATER", fixture::AT, "completed"),                  // 8 ok: course below
        json!({"type": "course", "course_code": "LATER", "name": "n", "learning_mode": 2, "category_code": "A",
               "digital_hours": "0.0", "classroom_hours": "3.0", "certified": {"lifelong": "3.0"}}).to_string(), // 9 ok
    ]
}

async fn counts(env: &TestEnv) -> TableCounts {
    env.store().await.table_counts().await.unwrap()
}

async fn bad_lines_are_reported_by_number_and_leave_the_database_as_it_was(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let before = counts(&env).await;

    let report = import(&store, &[env.write("bad.jsonl", &bad_file_lines())]).await;
    let lines: Vec<usize> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7]);
    let reason = |n: usize| {
        report
            .errors
            .iter()
            .find(|e| e.line == n)
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason(2).contains("not valid JSON"), "{}", reason(2));
    assert!(
        reason(3).contains("check digit") && !reason(3).contains("B100000019"),
        "{}",
        reason(3)
    );
    assert!(reason(4).contains("negative"), "{}", reason(4));
    assert!(reason(5).contains("no-such-account"), "{}", reason(5));
    assert!(reason(6).contains("unknown account kind"), "{}", reason(6));
    assert!(reason(7).contains("personnel_category"), "{}", reason(7));
    assert!(report.errors.iter().all(|e| e.file.ends_with("bad.jsonl")));

    let after = counts(&env).await;
    assert_eq!(after.persons, before.persons + 1, "only the valid person");
    assert_eq!(after.courses, before.courses + 1, "only the valid course");
    assert_eq!(
        after.completions,
        before.completions + 1,
        "the completion naming a course further down"
    );
    assert_eq!(after.accounts, before.accounts);

    // Person 1 keeps category 10: the bad update on line 7 was not applied.
    hoursync::scan::scan_once(store.as_ref(), clock().as_ref())
        .await
        .unwrap();
    let status = hoursync::status::person_status(
        store.as_ref(),
        &hoursync::domain::NationalId::parse(&id(1)).unwrap(),
        0,
        chrono::Duration::hours(24),
    )
    .await
    .unwrap();
    let teacher = status
        .iter()
        .find(|l| l.completion_id == "c1" && l.registry.as_str() == "teacher")
        .unwrap();
    assert_eq!(teacher.state, "pending");
}

async fn strict_mode_applies_nothing_of_a_file_with_a_bad_line(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let before = counts(&env).await;
    let opts = ImportOptions {
        strict: true,
        ..Default::default()
    };
    let bad = env.write("bad.jsonl", &bad_file_lines());
    let report = import_files(store.as_ref(), clock().as_ref(), &[bad], opts)
        .await
        .unwrap();
    assert_eq!(report.rejected, 6);
    assert_eq!(report.files_skipped.len(), 1);
    assert_eq!(counts(&env).await, before);

    // A clean file is applied whole under --strict.
    let good = env.write(
        "good.jsonl",
        &bad_file_lines()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| [0, 7, 8].contains(i))
            .map(|(_, l)| l)
            .collect::<Vec<_>>(),
    );
    let report = import_files(store.as_ref(), clock().as_ref(), &[good], opts)
        .await
        .unwrap();
    assert_eq!((report.rejected, report.applied), (0, 3));
}

async fn importing_the_same_file_twice_changes_nothing_and_a_real_change_is_seen(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let file = env.write("fixture.jsonl", &fixture::lines());
    let first = import(&store, std::slice::from_ref(&file)).await;
    assert!(first.changed > 0);
    let seq = counts(&env).await.change_seq;
    let second = import(&store, &[file]).await;
    assert_eq!(second.changed, 0);
    assert_eq!(
        counts(&env).await.change_seq,
        seq,
        "an identical import advances no change sequence"
    );
    let change = import(
        &store,
        &[env.write(
            "c.jsonl",
            &[fixture::account("a3", 3, "mygov", Some("civil_servant"))],
        )],
    )
    .await;
    assert_eq!(change.changed, 1);
}

async fn a_certificate_must_bind_to_a_real_account_of_the_same_person(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let lines = vec![
        json!({"type": "account", "account_id": "x1", "national_id": id(2), "kind": "certificate", "bound_to": "a1"}).to_string(),
        json!({"type": "account", "account_id": "x2", "national_id": id(1), "kind": "certificate", "bound_to": "a6f"}).to_string(),
        json!({"type": "account", "account_id": "x3", "national_id": id(1), "kind": "certificate", "bound_to": "nope"}).to_string(),
        json!({"type": "account", "account_id": "x4", "national_id": id(77), "kind": "member"}).to_string(),
    ];
    let report = import(&store, &[env.write("certs.jsonl", &lines)]).await;
    let reasons: Vec<&str> = report.errors.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].contains("another person"));
    assert!(reasons[1].contains("facebook"));
    assert!(reasons[2].contains("no valid account"));
    assert!(reasons[3].contains("no person") && !reasons[3].contains(&id(77)));
}

async fn the_import_command_names_each_bad_line_masks_ids_and_exits_non_zero(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Default::default()).await;
    let fixture_file = env.write("fixture.jsonl", &fixture::lines());
    cli_ok(&env, &sim, &["import", fixture_file.to_str().unwrap()]).await;

    let bad = env.write("bad.jsonl", &bad_file_lines());
    let out = env
        .command(&sim, &["import", bad.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(hoursync::cli::EXIT_REJECTED))
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for n in [2, 3, 4, 5, 6, 7] {
        assert!(
            stderr.contains(&format!("bad.jsonl:{n}: ")),
            "line {n} missing in: {stderr}"
        );
    }
    assert!(stdout.contains("6 rejected"), "{stdout}");
    for whole in [id(1), id(9), "B100000019".to_string()] {
        assert!(
            !stderr.contains(&whole) && !stdout.contains(&whole),
            "a whole ID was printed"
        );
    }

    let before = counts(&env).await;
    let out = env
        .command(&sim, &["import", "--strict", bad.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(hoursync::cli::EXIT_REJECTED))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing applied"));
    assert_eq!(counts(&env).await, before);
}

backend_tests!(
    bad_lines_are_reported_by_number_and_leave_the_database_as_it_was,
    strict_mode_applies_nothing_of_a_file_with_a_bad_line,
    importing_the_same_file_twice_changes_nothing_and_a_real_change_is_seen,
    a_certificate_must_bind_to_a_real_account_of_the_same_person,
    the_import_command_names_each_bad_line_masks_ids_and_exits_non_zero,
);
