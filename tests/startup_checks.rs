//! `hoursync run` refuses a configuration it cannot work with before it
//! touches the database or sends a request: every value is checked, the
//! token files read (their modes too) and the admin port bound first. Each
//! refusal exits 1 and names the key or the file.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Runs `hoursync run` with `settings` on top of the test configuration:
/// it must exit 1 naming `wanted`, before the database exists.
async fn refused(
    env: &TestEnv,
    sim: &hoursync::simulator::Simulator,
    settings: &[(&str, &str)],
    wanted: &str,
) {
    let mut cmd = env.command(sim, &["run"]);
    for (k, v) in settings {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{settings:?}: still running; it should have refused"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{settings:?}: {stderr}");
    assert!(
        stderr.contains(wanted),
        "{settings:?}: no {wanted:?} in: {stderr}"
    );
    assert!(
        !env.path("hoursync.db").exists(),
        "{settings:?}: the database was created before the refusal"
    );
}

fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_cannot_run_says_why_before_it_migrates_or_sends() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let sim = simulator(Default::default()).await;
    let tokens = env.path("admin.tokens");
    let tokens_text = "alice support support-token-0123456789\n";

    refused(
        &env,
        &sim,
        &[("HOURSYNC_SCHEDULE__SCAN", "every five minutes")],
        "schedule.scan",
    )
    .await;
    refused(
        &env,
        &sim,
        &[("HOURSYNC_SCHEDULE__RECONCILE", "0 61 2 * * *")],
        "schedule.reconcile",
    )
    .await;
    refused(
        &env,
        &sim,
        &[("HOURSYNC_REGISTRIES__LIFELONG__BASE_URL", "not a url")],
        "registries.lifelong.base_url",
    )
    .await;
    refused(
        &env,
        &sim,
        &[("HOURSYNC_REGISTRIES__TEACHER__BASE_URL", "")],
        "registries.teacher.base_url",
    )
    .await;
    refused(
        &env,
        &sim,
        &[("HOURSYNC_REGISTRIES__ENVED__TIMEOUT_MS", "0")],
        "registries.enved.timeout_ms",
    )
    .await;
    refused(
        &env,
        &sim,
        &[("HOURSYNC_DISPATCH__IDLE_POLL_MS", "0")],
        "dispatch.idle_poll_ms",
    )
    .await;

    // The admin port is taken.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap().to_string();
    refused(
        &env,
        &sim,
        &[("HOURSYNC_ADMIN__LISTEN", &taken)],
        "admin.listen",
    )
    .await;
    drop(busy);

    // The admin tokens file: readable by others, by its group, malformed.
    write_mode(&tokens, tokens_text, 0o644);
    refused(&env, &sim, &[], "0644").await;
    write_mode(&tokens, tokens_text, 0o640);
    refused(&env, &sim, &[], "admin.tokens").await;
    refused(&env, &sim, &[], "0640").await;
    write_mode(&tokens, "alice admin support-token-0123456789\n", 0o600);
    refused(&env, &sim, &[], "line 1").await;
    std::fs::remove_file(&tokens).unwrap();

    // A registry's token file readable by its group.
    std::fs::set_permissions(&env.token_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    refused(&env, &sim, &[], "registry.token").await;
    std::fs::set_permissions(&env.token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_admin_tokens_file_is_a_warning_and_the_daemon_runs() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let sim = simulator(Default::default()).await;
    let mut daemon = env.spawn_daemon(&sim, 500, None);
    wait_for(Duration::from_secs(30), "the warning", || async {
        env.daemon_logs()
            .contains("admin.tokens_file does not exist")
    })
    .await;
    wait_for(Duration::from_secs(30), "the database", || async {
        env.path("hoursync.db").exists()
    })
    .await;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "{}",
        env.daemon_logs()
    );
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}
