//! A failing database host: PostgreSQL behind a network partition that
//! holds packets (not refuses them), and a SQLite file that can not be
//! written for a while. The daemon runs as a real process against the
//! simulator; it must say so on `/readyz` and in its log within seconds,
//! and once the database is back resume within seconds, sending nothing
//! twice and losing nothing.

#[macro_use]
mod common;

use common::*;
use hoursync::dataset::{DatasetSpec, Profile};
use hoursync::simulator::{Faults, Simulator};
use hoursync::store::State;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(120);

fn eligible_file(env: &TestEnv, name: &str, persons: usize, offset: usize) -> std::path::PathBuf {
    let path = env.path(name);
    let spec = DatasetSpec {
        persons,
        completions_per_person: 4,
        courses: 40,
        seed: 11 + offset as u64,
        profile: Profile::AllEligible,
        offset,
    };
    hoursync::dataset::write(spec, &path).unwrap();
    path
}

/// `hoursync run` as a process serving its admin API, logging at `info`
/// (the readiness changes are logged there), with `extra` variables.
fn spawn_daemon(
    env: &TestEnv,
    sim: &Simulator,
    extra: &[(&str, String)],
) -> (tokio::process::Child, String) {
    let mut vars = vec![("HOURSYNC_LOG__LEVEL", "info".to_string())];
    vars.extend(extra.iter().cloned());
    env.spawn_serving_daemon(sim, &vars)
}

/// `/readyz`'s status and body; `None` when it did not answer in 10 s.
async fn readyz(admin: &str) -> Option<(u16, String)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answer = http.get(format!("{admin}/readyz")).send().await.ok()?;
    let status = answer.status().as_u16();
    Some((status, answer.text().await.unwrap_or_default()))
}

async fn wait_ready(admin: &str, limit: Duration) {
    wait_for(limit, "/readyz to answer 200", || async {
        matches!(readyz(admin).await, Some((200, _)))
    })
    .await;
}

/// Polls `/readyz` until it answers 503; how long that took, and the body.
async fn time_to_unready(admin: &str, limit: Duration) -> (Duration, String) {
    let start = Instant::now();
    loop {
        if let Some((503, body)) = readyz(admin).await {
            return (start.elapsed(), body);
        }
        assert!(
            start.elapsed() < limit,
            "/readyz still not 503 after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn credited(sim: &Simulator) -> u64 {
    sim.stats()
        .registries
        .values()
        .map(|s| s.records_accepted)
        .sum()
}

fn duplicates(sim: &Simulator) -> u64 {
    sim.stats().registries.values().map(|s| s.duplicates).sum()
}

// ---------------------------------------------------------------------------
// PostgreSQL behind a partition

/// A TCP proxy that can stop forwarding: bytes are read and held, never
/// refused, as a partitioned network holds packets.
struct Proxy {
    addr: SocketAddr,
    hold: Arc<AtomicBool>,
}

async fn proxy(target: String) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = Arc::new(AtomicBool::new(false));
    let held = hold.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(&target).await else {
                continue;
            };
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::spawn(pump(in_read, out_write, held.clone()));
            tokio::spawn(pump(out_read, in_write, held.clone()));
        }
    });
    Proxy { addr, hold }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hold: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while hold.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_partition_turns_readyz_503_within_seconds_and_work_resumes_after_it() {
    if !Backend::postgres_ready().await {
        return;
    }
    let env = TestEnv::new(Backend::Postgres).await;
    let sim = simulator(Faults::default()).await;
    let store = env.store().await;
    import(&store, &[eligible_file(&env, "a.jsonl", 20, 0)]).await;

    // The daemon reaches the database only through the proxy.
    let (scheme_user, rest) = env.db_url.split_once('@').unwrap();
    let (server, database) = rest.split_once('/').unwrap();
    let proxy = proxy(server.to_string()).await;
    let url = format!("{scheme_user}@{}/{database}", proxy.addr);
    let (mut daemon, admin) = spawn_daemon(&env, &sim, &[("HOURSYNC_DATABASE__URL", url)]);
    wait_drained(&store, LIMIT).await;
    wait_ready(&admin, Duration::from_secs(30)).await;

    proxy.hold.store(true, Ordering::SeqCst);
    let (took, body) = time_to_unready(&admin, Duration::from_secs(40)).await;
    assert!(
        took < Duration::from_secs(6),
        "/readyz turned 503 only after {took:?}"
    );
    assert!(body.contains("did not answer"), "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = env.daemon_logs();
    assert!(
        logs.contains("not ready: the database check failed"),
        "no log line about the database: {logs}"
    );

    // The network heals: ready again, and new work goes out.
    proxy.hold.store(false, Ordering::SeqCst);
    wait_ready(&admin, Duration::from_secs(15)).await;
    import(&store, &[eligible_file(&env, "b.jsonl", 20, 20)]).await;
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let expected = 40 * 4 * 3;
    assert_eq!(credited(&sim), expected);
    assert_eq!(
        count_where(&store, |s| s == State::Delivered).await,
        expected as i64
    );
}

// ---------------------------------------------------------------------------
// SQLite not writable for a while

/// Makes files immutable (`chattr +i`) until dropped, even when the test
/// fails, so that the temporary directory can be removed.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn set(paths: &[std::path::PathBuf]) -> Self {
        chattr("+i", paths);
        Self(paths.to_vec())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        chattr("-i", &self.0);
    }
}

fn chattr(flag: &str, paths: &[std::path::PathBuf]) {
    let status = std::process::Command::new("chattr")
        .arg(flag)
        .args(paths)
        .status()
        .expect("chattr");
    assert!(status.success(), "chattr {flag} failed");
}

/// `chattr +i` needs root (CAP_LINUX_IMMUTABLE) and a file system that
/// knows the flag; without either the test says it is skipped.
fn can_make_immutable(dir: &std::path::Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, "x").unwrap();
    let ok = std::process::Command::new("chattr")
        .arg("+i")
        .arg(&probe)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        chattr("-i", std::slice::from_ref(&probe));
    } else {
        eprintln!("SKIPPED: chattr +i is not available here (needs root on ext4 or similar)");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_sqlite_file_is_reported_and_work_resumes_within_seconds_sending_nothing_twice()
 {
    let env = TestEnv::new(Backend::Sqlite).await;
    if !can_make_immutable(env.dir.path()) {
        return;
    }
    // Slow answers, so that batches are in flight when the file freezes.
    let sim = simulator(Faults {
        latency_ms: 150,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    import(&store, &[eligible_file(&env, "a.jsonl", 150, 0)]).await;
    let expected = 150 * 4 * 3;

    // A lease longer than the outage: the answers that arrive meanwhile
    // are recorded once the file is writable, not resent.
    let extra = [
        ("HOURSYNC_DISPATCH__LEASE_MS", "60000".to_string()),
        ("HOURSYNC_REGISTRIES__LIFELONG__MAX_BATCH", "10".to_string()),
        ("HOURSYNC_REGISTRIES__TEACHER__MAX_BATCH", "10".to_string()),
        ("HOURSYNC_REGISTRIES__ENVED__MAX_BATCH", "10".to_string()),
    ];
    let (mut daemon, admin) = spawn_daemon(&env, &sim, &extra);
    wait_for(LIMIT, "the drain to be under way", || async {
        credited(&sim) >= 200
    })
    .await;

    let db = env.path("hoursync.db");
    let frozen = Immutable::set(&[db.clone(), env.path("hoursync.db-wal")]);
    let (took, body) = time_to_unready(&admin, Duration::from_secs(20)).await;
    assert!(took < Duration::from_secs(10), "503 only after {took:?}");
    assert!(body.contains("failed"), "{body}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before_restore = credited(&sim);
    assert!(
        before_restore < expected,
        "drained before the file was restored"
    );
    drop(frozen);
    let restored = Instant::now();

    while credited(&sim) == before_restore {
        assert!(
            restored.elapsed() < Duration::from_secs(15),
            "nothing sent 15 s after the restore:\n{}",
            env.daemon_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = restored.elapsed();
    assert!(
        resumed < Duration::from_secs(10),
        "resumed after {resumed:?}"
    );
    wait_drained(&store, LIMIT).await;
    wait_ready(&admin, Duration::from_secs(10)).await;
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();

    assert_eq!(credited(&sim), expected, "every record sent");
    assert_eq!(duplicates(&sim), 0, "a record was sent twice");
    assert_eq!(
        count_where(&store, |s| s == State::Delivered).await,
        expected as i64
    );
    let errors: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("hoursync_database_errors_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(errors > 0.0, "database errors not counted:\n{metrics}");
    let logs = env.daemon_logs();
    assert!(
        !logs.contains("non-zero transaction depth"),
        "a connection went back to the pool inside a transaction:\n{logs}"
    );
}
