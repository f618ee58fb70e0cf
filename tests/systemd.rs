//! The daemon as a systemd service: it tells systemd when it is ready,
//! pings the watchdog and says when it stops (Type=notify), and the unit
//! file passes `systemd-analyze verify` and rates an exposure of at most
//! 2.0 in `systemd-analyze security`.

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
        let n = tokio::time::timeout(Duration::from_secs(30), socket.recv(&mut buf)).await.expect("a notification").unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    assert_eq!(next().await.trim(), "READY=1");
    assert_eq!(next().await.trim(), "WATCHDOG=1");
    assert_eq!(next().await.trim(), "WATCHDOG=1", "the watchdog keeps being pinged");
    let pid = daemon.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
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

/// The unit with ExecStart pointing at the binary under test, so `verify`
/// finds it.
fn unit_under_test(env: &TestEnv) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/hoursync.service")).unwrap();
    let path = env.path("hoursync.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/hoursync", env!("CARGO_BIN_EXE_hoursync"))).unwrap();
    path
}

fn systemd_analyze(args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new("systemd-analyze").args(args).output() {
        Ok(out) => Some(out),
        Err(_) => {
            eprintln!("SKIPPED: systemd-analyze not installed");
            None
        }
    }
}

#[tokio::test]
async fn the_unit_file_verifies_and_is_sandboxed_to_an_exposure_of_at_most_2() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let unit = unit_under_test(&env);
    let unit = unit.to_str().unwrap();
    let Some(verify) = systemd_analyze(&["verify", unit]) else { return };
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert!(verify.status.success() && !said.contains("hoursync.service"), "systemd-analyze verify: {said}");
    let Some(security) = systemd_analyze(&["security", "--offline=true", unit]) else { return };
    let text = String::from_utf8_lossy(&security.stdout);
    let level = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for hoursync.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{text}");
}
