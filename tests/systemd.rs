//! The daemon as a systemd service: it tells systemd when it is ready,
//! pings the watchdog and says when it stops (Type=notify), and the unit
//! file (and the Debian package's) passes `systemd-analyze verify` and
//! rates an exposure of at most 1.5 in `systemd-analyze security`.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_notifies_ready_watchdog_and_stopping() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let sim = simulator(Default::default()).await;
    let socket_path = env.path("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut daemon = env
        .command(&sim, &["run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut next = async || {
        let n = tokio::time::timeout(Duration::from_secs(30), socket.recv(&mut buf))
            .await
            .expect("a notification")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    assert_eq!(next().await.trim(), "READY=1");
    assert_eq!(next().await.trim(), "WATCHDOG=1");
    assert_eq!(
        next().await.trim(),
        "WATCHDOG=1",
        "the watchdog keeps being pinged"
    );
    let pid = daemon.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut stopping = false;
    for _ in 0..10 {
        if next().await.trim() == "STOPPING=1" {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    assert!(daemon.wait().await.unwrap().success());
}

/// The unit (`systemd/` or `packaging/`) with ExecStart pointing at the
/// binary under test, so `verify` finds it.
fn unit_under_test(env: &TestEnv, dir: &str) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(format!(
        "{}/{dir}/hoursync.service",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let path = env.path(&format!("{dir}/hoursync.service"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let bin = env!("CARGO_BIN_EXE_hoursync");
    let unit = unit
        .replace("/usr/local/bin/hoursync", bin)
        .replace("/usr/bin/hoursync", bin);
    std::fs::write(&path, unit).unwrap();
    path
}

fn systemd_analyze(args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new("systemd-analyze")
        .args(args)
        .output()
    {
        Ok(out) => Some(out),
        Err(_) => {
            eprintln!("SKIPPED: systemd-analyze not installed");
            None
        }
    }
}

#[tokio::test]
async fn both_units_verify_and_are_sandboxed_to_an_exposure_of_at_most_1_5() {
    let env = TestEnv::new(Backend::Sqlite).await;
    for dir in ["systemd", "packaging"] {
        unit_verifies_with_an_exposure_of_at_most_1_5(&unit_under_test(&env, dir));
    }
}

fn unit_verifies_with_an_exposure_of_at_most_1_5(unit: &std::path::Path) {
    let unit = unit.to_str().unwrap();
    let Some(verify) = systemd_analyze(&["verify", unit]) else {
        return;
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        verify.status.success() && !said.contains("hoursync.service"),
        "systemd-analyze verify: {said}"
    );
    let Some(security) = systemd_analyze(&["security", "--offline=true", unit]) else {
        return;
    };
    let text = String::from_utf8_lossy(&security.stdout);
    let level = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for hoursync.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(level <= 1.5, "{unit}: exposure {level} > 1.5:\n{text}");
}

/// The admin server's connection limit is sized against this: without it
/// the default of 1,024 descriptors is all the daemon has.
#[test]
fn the_unit_sets_a_descriptor_limit_that_leaves_room_beside_the_admin_connections() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/hoursync.service"
    ))
    .unwrap();
    let limit: usize = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("LimitNOFILE= in the unit")
        .trim()
        .parse()
        .unwrap();
    let admin = hoursync::config::Config::default().admin.max_connections;
    assert!(
        limit >= admin + hoursync::daemon::DESCRIPTORS_KEPT_FOR_WORK,
        "LimitNOFILE={limit} leaves too little beside {admin} admin connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_tokens_batch_sizes_and_the_scan_schedule_without_a_restart() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let sim = simulator(Default::default()).await;
    let store = env.store().await;
    import(
        &store,
        &[env.write("fixture.jsonl", &common::fixture::lines())],
    )
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tokens = env.path("admin.tokens");
    let config = env.path("hoursync.toml");
    let write_config = |scan: &str, max_batch: usize, rate: u32| {
        let text = format!(
            "[schedule]\nscan = \"{scan}\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\ntokens_file = \"{}\"\n\
             [registries.lifelong]\nmax_batch = {max_batch}\nrate_per_second = {rate}\n",
            tokens.display()
        );
        std::fs::write(&config, text).unwrap();
    };
    // One lifelong record per request, one request a second, scans only at start.
    write_config("0 0 0 1 1 *", 1, 1);
    let mut cmd = env.command(&sim, &["--config", config.to_str().unwrap(), "run"]);
    for key in [
        "HOURSYNC_SCHEDULE__SCAN",
        "HOURSYNC_ADMIN__LISTEN",
        "HOURSYNC_ADMIN__TOKENS_FILE",
        "HOURSYNC_REGISTRIES__LIFELONG__RATE_PER_SECOND",
    ] {
        cmd.env_remove(key);
    }
    let mut daemon = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the first lifelong record",
        || async { !sim.credited("lifelong").is_empty() },
    )
    .await;

    let http = reqwest::Client::new();
    let records = format!(
        "http://127.0.0.1:{port}/api/v1/people/{}/records",
        common::fixture::id(1)
    );
    const NEW: &str = "a-brand-new-support-token";
    assert_eq!(
        http.get(&records)
            .bearer_auth(NEW)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // New tokens, any batch size, scans every second; then SIGHUP.
    std::fs::write(&tokens, format!("carol support {NEW}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_config("* * * * * *", 500, 0);
    let pid = daemon.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );

    wait_for(
        Duration::from_secs(30),
        "the new token to be accepted",
        || async {
            http.get(&records)
                .bearer_auth(NEW)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "all four lifelong records",
        || async { sim.credited("lifelong").len() == 4 },
    )
    .await;
    let requests = sim.stats().registry("lifelong").batch_requests;
    assert!(
        requests <= 3,
        "after the reload the rest went in one batch, not one request each: {requests}"
    );

    // The new schedule scans: a conversion goes out without a restart.
    import(
        &store,
        &[env.write(
            "conv.jsonl",
            &[common::fixture::account(
                "a3",
                3,
                "mygov",
                Some("civil_servant"),
            )],
        )],
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "the converted learner's hours",
        || async {
            sim.credited("lifelong")
                .iter()
                .any(|c| c.record["national_id"] == common::fixture::id(3).as_str())
        },
    )
    .await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}
