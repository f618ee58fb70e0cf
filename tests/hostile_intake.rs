//! `hoursync import` fed what a careless user or a hostile file holds: a
//! NUL escape, a million malformed lines, one line of 50 MB, a byte-order
//! mark, a completion dated in year 9999. Each ends in a line refused by
//! number (or accepted, for the mark) with the rest applied, the same on
//! both backends, in memory bounded by a line and not by the file.

#[macro_use]
mod common;

use common::*;
use hoursync::intake::{MAX_ERRORS_KEPT, MAX_LINE_BYTES};
use serde_json::json;
use std::path::Path;

fn unit(n: usize) -> String {
    json!({"type": "unit", "code": format!("U{n}"), "name": format!("unit {n}")}).to_string()
}

/// `hoursync import FILE` as a process: its exit code, stdout, stderr and
/// peak resident memory in KiB.
///
/// The peak is the kernel's high-water mark of the process's own memory
/// (`VmHWM`), read every few milliseconds until it exits: the child's
/// `ru_maxrss` would also count the test process it was forked from. A
/// growth in the last milliseconds before exit could be missed, which can
/// only let a check pass, never fail it wrongly.
async fn import_process(
    env: &TestEnv,
    sim: &hoursync::simulator::Simulator,
    file: &Path,
    extra_env: &[(&str, &str)],
) -> (i32, String, String, u64) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hoursync"));
    cmd.arg("import")
        .arg(file)
        .envs(env.env_vars(sim))
        .envs(extra_env.iter().copied())
        .env_remove("RUST_LOG")
        .current_dir(env.dir.path())
        .stdout(std::fs::File::create(env.path("import.out")).unwrap())
        .stderr(std::fs::File::create(env.path("import.err")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let (status, peak_kib) = tokio::task::spawn_blocking(move || {
        let mut peak = 0;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, peak);
            }
            let hwm = std::fs::read_to_string(&status_file)
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    })
    .await
    .unwrap();
    let read = |name| std::fs::read_to_string(env.path(name)).unwrap();
    (
        status.code().expect("import exited"),
        read("import.out"),
        read("import.err"),
        peak_kib,
    )
}

const REJECTED: i32 = hoursync::cli::EXIT_REJECTED as i32;

async fn a_nul_escape_refuses_its_line_by_number_and_the_other_ten_are_applied(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Default::default()).await;
    let mut lines: Vec<String> = (1..=11).map(unit).collect();
    lines[5] = r#"{"type":"unit","code":"U6","name":"a\u0000b"}"#.into();
    let file = env.write("nul.jsonl", &lines);

    let (code, out, err, _) = import_process(&env, &sim, &file, &[]).await;
    assert_eq!(code, REJECTED, "{out}{err}");
    assert!(
        err.contains("nul.jsonl:6: name contains a NUL character"),
        "{err}"
    );
    let refused = err.lines().filter(|l| l.contains("nul.jsonl:")).count();
    assert_eq!(refused, 1, "{err}");
    assert!(out.contains("11 lines read, 10 applied"), "{out}");
    let counts = env.store().await.table_counts().await.unwrap();
    assert_eq!(counts.units, 10);
}

async fn a_million_malformed_lines_report_the_first_errors_and_count_the_rest_in_bounded_memory(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Default::default()).await;
    let file = env.path("junk.jsonl");
    let mut text = unit(1) + "\n";
    text.push_str(&"{\"x\n".repeat(1_000_000));
    text.push_str(&(unit(2) + "\n"));
    std::fs::write(&file, text).unwrap();

    let (code, out, err, peak_kib) = import_process(&env, &sim, &file, &[]).await;
    assert_eq!(code, REJECTED, "{out}");
    assert!(
        out.contains("1000002 lines read, 2 applied (2 rows changed), 1000000 rejected"),
        "{out}"
    );
    // Only what the import printed about the file (a loaded machine may
    // add a slow-statement warning).
    let printed: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("junk.jsonl:") || l.starts_with("… and"))
        .collect();
    assert_eq!(printed.len(), MAX_ERRORS_KEPT + 1);
    assert!(
        printed[0].contains("junk.jsonl:2: not valid JSON"),
        "{}",
        printed[0]
    );
    assert_eq!(
        printed[MAX_ERRORS_KEPT],
        format!("… and {} more rejected lines", 1_000_000 - MAX_ERRORS_KEPT)
    );
    // Keeping every error took 200 MB (release build); a few thousand
    // kept errors and one line of buffer take a fraction of this bound.
    assert!(
        peak_kib < 64 * 1024,
        "import peaked at {} MiB",
        peak_kib / 1024
    );
}

async fn a_line_longer_than_the_limit_is_refused_by_number_without_being_held_whole(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Default::default()).await;
    let file = env.path("big.jsonl");
    let huge = "x".repeat(50 * 1024 * 1024);
    let big = json!({"type": "unit", "code": "BIG", "name": huge});
    std::fs::write(&file, format!("{}\n{big}\n{}\n", unit(1), unit(3))).unwrap();

    let (code, out, err, peak_kib) = import_process(&env, &sim, &file, &[]).await;
    assert_eq!(code, REJECTED, "{out}");
    assert!(
        err.contains(&format!(
            "big.jsonl:2: line is longer than {MAX_LINE_BYTES} bytes"
        )),
        "{err}"
    );
    assert!(out.contains("3 lines read, 2 applied"), "{out}");
    assert_eq!(env.store().await.table_counts().await.unwrap().units, 2);
    // Reading the 50 MB line whole peaked at 520 MB.
    assert!(
        peak_kib < 64 * 1024,
        "import peaked at {} MiB",
        peak_kib / 1024
    );
}

async fn a_byte_order_mark_is_accepted_and_a_completion_in_year_9999_is_refused_unless_allowed(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Default::default()).await;
    let fixture = env.write("fixture.jsonl", &common::fixture::lines());
    cli_ok(&env, &sim, &["import", fixture.to_str().unwrap()]).await;

    let far = common::fixture::completion(
        "c-far",
        "a1",
        "ALL",
        "9999-12-31T00:00:00+08:00",
        "completed",
    );
    let file = env.path("bom.jsonl");
    std::fs::write(&file, format!("\u{FEFF}{}\n{far}\n", unit(7))).unwrap();
    let (code, out, err, _) = import_process(&env, &sim, &file, &[]).await;
    assert_eq!(code, REJECTED, "{out}{err}");
    assert!(!err.contains("bom.jsonl:1:"), "the mark is accepted: {err}");
    assert!(
        err.contains("bom.jsonl:2: completed_at 9999-12-31T00:00:00+08:00 lies more than 1 day(s)")
            && err.contains("intake.max_future_days"),
        "{err}"
    );
    assert!(out.contains("1 applied"), "{out}");

    // A deployment that means it may allow it.
    let allow = [("HOURSYNC_INTAKE__MAX_FUTURE_DAYS", "3000000")];
    let (code, out, err, _) = import_process(&env, &sim, &file, &allow).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 applied"), "{out}");
}

backend_tests!(
    a_nul_escape_refuses_its_line_by_number_and_the_other_ten_are_applied,
    a_million_malformed_lines_report_the_first_errors_and_count_the_rest_in_bounded_memory,
    a_line_longer_than_the_limit_is_refused_by_number_without_being_held_whole,
    a_byte_order_mark_is_accepted_and_a_completion_in_year_9999_is_refused_unless_allowed,
);
