//! Shared harness of the whole-app tests: a fresh database per test, the
//! registry simulator as a real HTTP peer on port 0, the daemon in-process
//! or as a real process, and a few waiting helpers.
#![allow(dead_code)]

pub mod browser;
pub mod console;
pub mod fixture;
pub mod ops;

use hoursync::clock::{SharedClock, SystemClock};
use hoursync::config::Config;
use hoursync::intake::{ImportOptions, ImportReport, import_files};
use hoursync::simulator::{Faults, SimConfig, Simulator};
use hoursync::store::{SharedStore, State};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token-1c9f";

/// The shipped office calendar (2026).
pub fn calendar_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/calendar"))
}

/// The database a test runs on. Every whole-app and store test runs once
/// per backend (see [`backend_tests!`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("HOURSYNC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Backend {
    /// Whether PostgreSQL tests can run. Under CI (`CI=true`) an unreachable
    /// server fails the test; elsewhere the test says it is skipped.
    pub async fn postgres_ready() -> bool {
        let url = postgres_admin_url();
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await;
        match attempt {
            Ok(Ok(pool)) => {
                pool.close().await;
                true
            }
            failure => {
                let why = match failure {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "PostgreSQL is required under CI: {url}: {why}"
                );
                eprintln!(
                    "SKIPPED: PostgreSQL not reachable at {url} ({why}); set HOURSYNC_TEST_POSTGRES_URL"
                );
                false
            }
        }
    }
}

/// Runs each named `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::common::Backend::postgres_ready().await {
                        super::$name($crate::common::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

/// A temporary directory with a database of its own, a token file and data
/// files. A PostgreSQL database is dropped with it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub db_url: String,
    pub token_file: PathBuf,
    pg_database: Option<String>,
}

impl TestEnv {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("registry.token");
        std::fs::write(&token_file, TOKEN).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (db_url, pg_database) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("hoursync.db").display()
                ),
                None,
            ),
            Backend::Postgres => {
                let name = format!("hs_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&postgres_admin_url())
                    .await
                    .expect("PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let base = postgres_admin_url();
                let server = &base[..base.rfind('/').expect("URL with a database")];
                (format!("{server}/{name}"), Some(name))
            }
        };
        Self {
            dir,
            backend,
            db_url,
            token_file,
            pg_database,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, lines: &[String]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    /// A configuration for fast tests: scans every second, quick retries,
    /// short leases, every registry pointing at `sim`.
    pub fn config(&self, sim: &Simulator) -> Config {
        let mut c = Config::default();
        c.database.url = self.db_url.clone();
        c.database.max_connections = 4;
        c.calendar.dir = calendar_dir();
        c.admin.listen = "127.0.0.1:0".into();
        c.admin.tokens_file = self.dir.path().join("admin.tokens");
        c.schedule.scan = "* * * * * *".into();
        c.retry.base_ms = 50;
        c.retry.max_ms = 400;
        c.retry.max_attempts = 1000;
        c.dispatch.idle_poll_ms = 50;
        c.dispatch.lease_ms = 3_000;
        c.dispatch.shutdown_grace_ms = 3_000;
        for (kind, r) in c.registries.iter_mut() {
            r.base_url = sim.base_url(kind.as_str());
            r.token_file = self.token_file.clone();
            r.timeout_ms = 2_000;
            r.rate_per_second = 200;
        }
        c
    }

    /// The same configuration as environment variables, for a daemon or
    /// CLI started as its own process.
    pub fn env_vars(&self, sim: &Simulator) -> Vec<(String, String)> {
        let c = self.config(sim);
        let mut v = vec![
            ("HOURSYNC_DATABASE__URL".into(), c.database.url.clone()),
            (
                "HOURSYNC_CALENDAR__DIR".into(),
                c.calendar.dir.display().to_string(),
            ),
            ("HOURSYNC_ADMIN__LISTEN".into(), c.admin.listen.clone()),
            (
                "HOURSYNC_ADMIN__TOKENS_FILE".into(),
                c.admin.tokens_file.display().to_string(),
            ),
            (
                "HOURSYNC_DATABASE__MAX_CONNECTIONS".into(),
                c.database.max_connections.to_string(),
            ),
            ("HOURSYNC_SCHEDULE__SCAN".into(), c.schedule.scan.clone()),
            (
                "HOURSYNC_RETRY__BASE_MS".into(),
                c.retry.base_ms.to_string(),
            ),
            ("HOURSYNC_RETRY__MAX_MS".into(), c.retry.max_ms.to_string()),
            (
                "HOURSYNC_RETRY__MAX_ATTEMPTS".into(),
                c.retry.max_attempts.to_string(),
            ),
            (
                "HOURSYNC_DISPATCH__IDLE_POLL_MS".into(),
                c.dispatch.idle_poll_ms.to_string(),
            ),
            (
                "HOURSYNC_DISPATCH__LEASE_MS".into(),
                c.dispatch.lease_ms.to_string(),
            ),
            ("HOURSYNC_LOG__LEVEL".into(), "warn".into()),
        ];
        for (kind, r) in &c.registries {
            let k = kind.as_str().to_uppercase();
            v.push((
                format!("HOURSYNC_REGISTRIES__{k}__BASE_URL"),
                r.base_url.clone(),
            ));
            v.push((
                format!("HOURSYNC_REGISTRIES__{k}__TOKEN_FILE"),
                r.token_file.display().to_string(),
            ));
            v.push((
                format!("HOURSYNC_REGISTRIES__{k}__TIMEOUT_MS"),
                r.timeout_ms.to_string(),
            ));
            v.push((
                format!("HOURSYNC_REGISTRIES__{k}__RATE_PER_SECOND"),
                r.rate_per_second.to_string(),
            ));
        }
        v
    }

    pub async fn store(&self) -> SharedStore {
        let mut c = Config::default();
        c.database.url = self.db_url.clone();
        c.database.max_connections = 4;
        c.calendar.dir = calendar_dir();
        hoursync::startup::open_store(&c).await.expect("store")
    }

    /// `hoursync ARGS…` as a process, with this environment's settings.
    pub fn command(&self, sim: &Simulator, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoursync"));
        cmd.args(args)
            .envs(self.env_vars(sim))
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path());
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// `hoursync run` as a process of its own, each registry sending
    /// batches of at most `max_batch` records, at `rate` requests a second
    /// (the test configuration's rate without one). Its log is appended to
    /// [`TestEnv::daemon_logs`], to show why a daemon died.
    pub fn spawn_daemon(
        &self,
        sim: &Simulator,
        max_batch: usize,
        rate: Option<u32>,
    ) -> tokio::process::Child {
        let mut cmd = self.command(sim, &["run"]);
        for r in ["LIFELONG", "TEACHER", "ENVED"] {
            cmd.env(
                format!("HOURSYNC_REGISTRIES__{r}__MAX_BATCH"),
                max_batch.to_string(),
            );
            if let Some(rate) = rate {
                cmd.env(
                    format!("HOURSYNC_REGISTRIES__{r}__RATE_PER_SECOND"),
                    rate.to_string(),
                );
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("daemons.log"))
            .unwrap();
        cmd.stdout(Stdio::null()).stderr(log);
        cmd.spawn().expect("daemon process")
    }

    /// What the daemons started by [`TestEnv::spawn_daemon`] logged.
    pub fn daemon_logs(&self) -> String {
        std::fs::read_to_string(self.path("daemons.log")).unwrap_or_default()
    }

    /// `hoursync run` as a process whose admin server listens on a port of
    /// its own, with `extra` environment variables on top of this
    /// environment's; the process and the admin server's base URL. Its log
    /// is appended to [`TestEnv::daemon_logs`].
    pub fn spawn_serving_daemon(
        &self,
        sim: &Simulator,
        extra: &[(&str, String)],
    ) -> (tokio::process::Child, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("daemons.log"))
            .unwrap();
        let mut cmd = self.command(sim, &["run"]);
        cmd.env("HOURSYNC_ADMIN__LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        (
            cmd.spawn().expect("daemon process"),
            format!("http://127.0.0.1:{port}"),
        )
    }

    /// The database as an older hoursync left it: this build's migrations
    /// up to `version` only, then `sql` (several statements) run on it.
    pub async fn migrate_to(&self, version: i64, sql: Option<&str>) {
        let run = |sql: &str| sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()));
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.db_url).await.unwrap();
                sqlx::migrate!("migrations/sqlite")
                    .run_to(version, &pool)
                    .await
                    .unwrap();
                if let Some(sql) = sql {
                    run(sql).execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.db_url).await.unwrap();
                sqlx::migrate!("migrations/postgres")
                    .run_to(version, &pool)
                    .await
                    .unwrap();
                if let Some(sql) = sql {
                    run(sql).execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
        }
    }
}

pub async fn simulator(faults: Faults) -> Simulator {
    simulator_with(SimConfig {
        token: TOKEN.into(),
        faults,
        rate_per_second: 0,
        ..SimConfig::default()
    })
    .await
}

pub async fn simulator_with(config: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("simulator")
}

pub fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

pub async fn import(store: &SharedStore, files: &[PathBuf]) -> ImportReport {
    import_files(
        store.as_ref(),
        clock().as_ref(),
        files,
        ImportOptions::default(),
    )
    .await
    .expect("import")
}

/// The daemon running in this process until the returned token is cancelled.
pub struct InProcessDaemon {
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessDaemon {
    pub fn start(config: Config) -> Self {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hoursync::daemon::run(config, clock(), shutdown.clone()));
        Self { shutdown, task }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("daemon task").expect("daemon run");
    }
}

/// Polls `check` until it returns true, failing after `limit` with `what`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows dispatch still has work for (`pending`, `retrying`, `correcting`, `withdrawing`).
pub async fn open_deliveries(store: &SharedStore) -> i64 {
    count_where(store, |s| s.is_due_work()).await
}

pub async fn count_where(store: &SharedStore, f: impl Fn(State) -> bool) -> i64 {
    store
        .delivery_counts()
        .await
        .unwrap()
        .iter()
        .filter(|c| f(c.state))
        .map(|c| c.count)
        .sum()
}

/// Asserts that `registry` holds one record each of `learners`, every one
/// with `hours`: no record counted twice, none drifted from our figure.
pub fn assert_holds_our_hours(sim: &Simulator, registry: &str, learners: usize, hours: &str) {
    let held = sim.credited(registry);
    assert_eq!(held.len(), learners, "{registry}: one record each");
    let drifted: Vec<_> = held.iter().filter(|c| c.hours != hours).collect();
    assert!(
        drifted.is_empty(),
        "{registry}: {} record(s) hold other hours than ours: {:?}",
        drifted.len(),
        drifted.iter().map(|c| &c.hours).collect::<Vec<_>>()
    );
}

/// Drained: the scan has judged every change (its cursor reached the
/// change sequence: a scan interrupted by a crash resumes later, and no row
/// waits to be judged again) and nothing judged is left to send.
pub async fn wait_drained(store: &SharedStore, limit: Duration) {
    wait_for(limit, "the backlog to drain", || async {
        // In this order: a scan that judges a flagged row again clears its
        // flag in the write that makes it due (a correction), so the
        // counts read after the flags see that work. Read before them, a
        // row could be counted `delivered` (flagged), then judged and
        // unflagged before the flags are read: drained, with its
        // correction not sent.
        let (cursor, changes) = store.scan_window().await.unwrap();
        let judged_again = store.rescan_completions().await.unwrap().is_empty();
        let counts = store.delivery_counts().await.unwrap();
        cursor == changes
            && judged_again
            && !counts.is_empty()
            && counts.iter().all(|c| !c.state.is_due_work())
    })
    .await;
}

/// Nothing judged is left to send, whether or not a scan is still due: for
/// tests that run without scheduled scans on purpose.
pub async fn wait_nothing_left_to_send(store: &SharedStore, limit: Duration) {
    wait_for(limit, "nothing left to send", || async {
        let counts = store.delivery_counts().await.unwrap();
        !counts.is_empty() && counts.iter().all(|c| !c.state.is_due_work())
    })
    .await;
}

/// `hoursync ARGS…` run to success; its standard output. A failure shows
/// the command's standard error.
pub async fn cli_ok(env: &TestEnv, sim: &hoursync::simulator::Simulator, args: &[&str]) -> String {
    output_ok(&mut env.command(sim, args)).await
}

/// A command (from [`TestEnv::command`], perhaps with more settings) run to
/// success; its standard output. A failure shows its standard error.
pub async fn output_ok(cmd: &mut tokio::process::Command) -> String {
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd.as_std().get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `hoursync status --json ID` as the support desk runs it.
pub async fn status_json(
    env: &TestEnv,
    sim: &hoursync::simulator::Simulator,
    national_id: &str,
) -> Vec<serde_json::Value> {
    let stdout = cli_ok(env, sim, &["status", "--json", national_id]).await;
    assert!(
        !stdout.contains(national_id),
        "status printed a whole national ID"
    );
    serde_json::from_str(&stdout).unwrap()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let Some(name) = self.pg_database.take() else {
            return;
        };
        // Drop is not async: a thread of its own with a small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&postgres_admin_url()).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    admin.close().await;
                }
            })
        })
        .join();
    }
}
