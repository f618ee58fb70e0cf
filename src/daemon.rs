//! `hoursync run`: the scheduled scan, one dispatch loop per registry, and
//! shutdown on SIGTERM/SIGINT. Shutdown is an input (a
//! `CancellationToken`): loops stop taking work, in-flight batches get
//! `dispatch.shutdown_grace_ms` to finish, and anything abandoned is safe
//! because its lease expires and it is resent under the same key.

use crate::clock::SharedClock;
use crate::config::{Config, redact_url};
use crate::db_health::{DbHealth, Task};
use crate::dispatch::{DispatchOutcome, DispatchSettings, Dispatcher};
use crate::progress::{Beat, Progress};
use crate::registries::Registries;
use crate::scan::scan_as_leader;
use crate::startup::App;
use crate::store::SharedStore;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// A started daemon: where its admin server listens, and its supervisor.
pub struct Running {
    pub admin_addr: std::net::SocketAddr,
    pub state: crate::admin::SharedState,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until the daemon has stopped (after `shutdown` was cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("daemon supervisor")?
    }
}

/// Runs until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    start(config, clock, shutdown).await?.wait().await
}

/// Starts everything and returns once the daemon is ready: migrations
/// applied, admin server listening, scheduler running.
///
/// Everything that can refuse the configuration is checked first (see
/// [`Preflight`]): a daemon that cannot run exits before it writes to the
/// database or sends a single request.
pub async fn start(
    config: Config,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    crate::metrics::install()?;
    let triggers = Triggers {
        scan: Arc::new(Notify::new()),
        reconcile: Arc::new(Notify::new()),
    };
    let preflight = Preflight::check(&config, &triggers).await?;
    let mut app = App::open(config, clock).await?;
    app.registries = preflight.registries;
    let owner = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
    let tracker = TaskTracker::new();
    let progress = Arc::new(Progress::default());
    let db_health = DbHealth::new();
    let (admin_addr, state) = serve_admin(
        &app,
        preflight.admin_tokens,
        preflight.admin_listener,
        progress.clone(),
        &tracker,
        &shutdown,
        &db_health,
    )?;
    spawn_dispatchers(&app, &owner, &progress, &tracker, &shutdown, &db_health);
    let scheduler = start_scheduler(preflight.jobs).await?;
    let App {
        config,
        store,
        registries,
        clock,
    } = app;
    let worker = |name: &str| Worker {
        store: store.clone(),
        clock: clock.clone(),
        owner: owner.clone(),
        beat: progress.register(name, None),
        shutdown: shutdown.clone(),
    };
    tracker.spawn(scan_loop(
        worker("scan"),
        config.dispatch.lease_ms as i64,
        triggers.scan.clone(),
        db_health,
    ));
    tracker.spawn(reconcile_loop(
        worker("reconcile"),
        config.clone(),
        registries.clone(),
        triggers.reconcile.clone(),
    ));
    tracker.spawn(crate::monitor::gauge_loop(
        store,
        clock,
        config.sla.at_risk_ms(),
        shutdown.clone(),
    ));
    tracker.spawn(reload_on_sighup(
        Reloadable {
            config: config.clone(),
            state: state.clone(),
            registries,
            scheduler: scheduler.clone(),
            triggers,
        },
        shutdown.clone(),
    ));
    state.set_started();
    // systemd (Type=notify): ready once migrations ran and the scheduler
    // started; watchdog pings from the runtime itself, so a wedged runtime
    // gets restarted. Without NOTIFY_SOCKET these are no-ops.
    notify(sd_notify::NotifyState::Ready);
    if let Some(every) = sd_notify::watchdog_enabled() {
        tracker.spawn(watchdog(every / 2, shutdown.clone()));
    }
    // Whether `sslmode` gave TLS: `prefer` (sqlx's default) falls back to
    // plain text without a word. Bounded: a database that stopped
    // answering must not hold the start up.
    let asked = tokio::time::timeout(Duration::from_secs(2), state.store.encrypted()).await;
    let database_tls = match asked {
        Ok(Ok(Some(true))) => "on",
        Ok(Ok(Some(false))) => "off",
        Ok(Ok(None)) => "local file",
        _ => "unknown",
    };
    info!(owner, admin = %admin_addr, database = %redact_url(&config.database.url), database_tls, scan = %config.schedule.scan, reconcile = %config.schedule.reconcile,
          timezone = %config.schedule.timezone, "hoursync running");

    let task = tokio::spawn(supervise(
        shutdown,
        scheduler,
        tracker,
        config.dispatch.shutdown_grace(),
    ));
    Ok(Running {
        admin_addr,
        state,
        task,
    })
}

/// What `run` checks, reads and binds before it touches the database or a
/// registry: the configuration's values, the cron expressions, the admin
/// tokens file, every enabled registry's token file and client, and the
/// admin port. A mistake in any of them used to surface only after the
/// database was migrated and the first batches were sent.
struct Preflight {
    jobs: Vec<Job>,
    admin_tokens: crate::admin::auth::Tokens,
    admin_listener: tokio::net::TcpListener,
    registries: Registries,
}

impl Preflight {
    async fn check(config: &Config, triggers: &Triggers) -> anyhow::Result<Self> {
        // `Config::load` validated already; a configuration built in code
        // (tests, the demo, the bench) is checked here.
        config.validate()?;
        let jobs = cron_jobs(config, triggers)?;
        let admin_tokens = crate::admin::auth::Tokens::load(&config.admin.tokens_file)
            .with_context(|| format!("admin.tokens_file {}", config.admin.tokens_file.display()))?;
        let registries = Registries::from_config(config)?;
        check_descriptors(config, open_files_limit())?;
        let admin_listener = tokio::net::TcpListener::bind(&config.admin.listen)
            .await
            .with_context(|| format!("admin.listen {}", config.admin.listen))?;
        Ok(Self {
            jobs,
            admin_tokens,
            admin_listener,
            registries,
        })
    }
}

/// File descriptors `run` keeps for its own work beyond the admin server's
/// connections: the database pool, SQLite's files, the registry clients'
/// connections, the listener, the log.
pub const DESCRIPTORS_KEPT_FOR_WORK: usize = 128;

/// Refuses an `admin.max_connections` that would leave the daemon's own
/// work fewer than [`DESCRIPTORS_KEPT_FOR_WORK`] (plus the database pool)
/// of the process's `limit` of open files: with every descriptor taken by
/// admin connections, the scan could not open its database file.
fn check_descriptors(config: &Config, limit: Option<u64>) -> anyhow::Result<()> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let needed = config.admin.max_connections as u64
        + DESCRIPTORS_KEPT_FOR_WORK as u64
        + u64::from(config.database.max_connections);
    if needed > limit {
        anyhow::bail!(
            "admin.max_connections ({}) leaves too few of this process's {limit} file descriptors \
             for its own work (it keeps {} plus database.max_connections): lower it, or raise \
             the limit (LimitNOFILE= in the unit, ulimit -n)",
            config.admin.max_connections,
            DESCRIPTORS_KEPT_FOR_WORK
        );
    }
    Ok(())
}

/// The soft limit of open files (`Max open files` in /proc/self/limits);
/// `None` when unknown or unlimited.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One dispatch loop per enabled registry.
fn spawn_dispatchers(
    app: &App,
    owner: &str,
    progress: &Progress,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    db_health: &Arc<DbHealth>,
) {
    let config = &app.config;
    for registry in app.registries.iter() {
        let settings = DispatchSettings {
            registry: registry.kind,
            tuning: registry.tuning.clone(),
            lease_ms: config.dispatch.lease_ms,
            auth_recheck_ms: config.dispatch.auth_recheck_ms,
            token_file: Some(registry.token_file.clone()),
            retry: config.retry.clone(),
        };
        let dispatcher = Dispatcher::new(
            app.store.clone(),
            app.clock.clone(),
            registry.client.clone(),
            settings,
            owner.to_string(),
        );
        // A turn claims, sends and records one batch: its request times out
        // before the lease ends, so a turn past two leases is stuck.
        let bound = Duration::from_millis(config.dispatch.lease_ms.saturating_mul(2));
        tracker.spawn(dispatch_loop(
            dispatcher,
            app.clock.clone(),
            config.dispatch.idle_poll(),
            progress.register(format!("dispatch {}", registry.kind), Some(bound)),
            db_health.clone(),
            shutdown.clone(),
        ));
    }
}

/// Serves the admin server on its bound listener until shutdown.
fn serve_admin(
    app: &App,
    tokens: crate::admin::auth::Tokens,
    listener: tokio::net::TcpListener,
    progress: Arc<Progress>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    db_health: &Arc<DbHealth>,
) -> anyhow::Result<(std::net::SocketAddr, crate::admin::SharedState)> {
    let config = &app.config;
    let state = Arc::new(crate::admin::AdminState {
        store: app.store.clone(),
        clock: app.clock.clone(),
        tokens: std::sync::RwLock::new(Arc::new(tokens)),
        started: Default::default(),
        open_health: config.admin.open_health,
        at_risk: config.sla.at_risk(),
        registries: app.registries.clone(),
        progress,
        db_health: db_health.clone(),
        ui: crate::admin::ui::UiState::new(config.admin.session_idle()),
    });
    let admin_addr = listener.local_addr()?;
    let limits = crate::admin::conn::Limits::from_config(&config.admin);
    tracker.spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            if let Err(e) = crate::admin::serve(listener, state, limits, shutdown).await {
                error!(error = %e, "admin server stopped");
            }
        }
    });
    Ok((admin_addr, state))
}

/// The cron scheduler and the ids of its jobs, which SIGHUP replaces.
type SharedScheduler = Arc<tokio::sync::Mutex<(JobScheduler, Vec<uuid::Uuid>)>>;

async fn start_scheduler(jobs: Vec<Job>) -> anyhow::Result<SharedScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    let mut job_ids = Vec::new();
    for job in jobs {
        job_ids.push(scheduler.add(job).await.context("scheduling a job")?);
    }
    scheduler.start().await.context("starting the scheduler")?;
    Ok(Arc::new(tokio::sync::Mutex::new((scheduler, job_ids))))
}

/// Waits for shutdown, then stops taking work and gives in-flight batches
/// `grace` to finish.
async fn supervise(
    shutdown: CancellationToken,
    scheduler: SharedScheduler,
    tracker: TaskTracker,
    grace: Duration,
) -> anyhow::Result<()> {
    shutdown.cancelled().await;
    info!("shutting down: no new work; waiting for in-flight batches");
    notify(sd_notify::NotifyState::Stopping);
    scheduler.lock().await.0.shutdown().await.ok();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(
            grace_ms = grace.as_millis() as u64,
            "in-flight work abandoned; its leases expire and it is resent under the same keys"
        );
    }
    info!("stopped");
    Ok(())
}

fn notify(state: sd_notify::NotifyState) {
    if let Err(e) = sd_notify::notify(&[state]) {
        warn!(error = %e, "could not notify systemd");
    }
}

async fn watchdog(every: Duration, shutdown: CancellationToken) {
    loop {
        notify(sd_notify::NotifyState::Watchdog);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// What SIGHUP may change while the daemon runs.
struct Reloadable {
    config: Config,
    state: crate::admin::SharedState,
    registries: Registries,
    scheduler: SharedScheduler,
    triggers: Triggers,
}

/// SIGHUP reads the configuration again and applies, without stopping
/// anything in flight: the admin tokens, every registry's token, rate and
/// batch size, and the scan schedule. What else changed (database, listen
/// address, …) needs a restart, and the log says so.
async fn reload_on_sighup(mut r: Reloadable, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup.recv() => {}
        }
        match Config::load(r.config.source.as_deref()) {
            Ok(new) => reload(&mut r, new).await,
            Err(e) => {
                error!(error = %e, "SIGHUP: configuration not reloaded; the running one stays")
            }
        }
    }
}

async fn reload(r: &mut Reloadable, new: Config) {
    match crate::admin::auth::Tokens::load(&new.admin.tokens_file) {
        Ok(t) => r.state.replace_tokens(t),
        Err(e) => error!(error = %e, "SIGHUP: admin tokens not reloaded"),
    }
    r.registries.reload(&new);
    if new.schedule != r.config.schedule {
        match cron_jobs(&new, &r.triggers) {
            Ok(jobs) => {
                let mut guard = r.scheduler.lock().await;
                let (scheduler, current) = &mut *guard;
                let mut added = Vec::new();
                for job in jobs {
                    match scheduler.add(job).await {
                        Ok(id) => added.push(id),
                        Err(e) => {
                            error!(error = %e, "SIGHUP: new schedule not added; the old one stays");
                            for id in &added {
                                scheduler.remove(id).await.ok();
                            }
                            added.clear();
                            break;
                        }
                    }
                }
                if !added.is_empty() {
                    for id in current.iter() {
                        scheduler.remove(id).await.ok();
                    }
                    *current = added;
                }
            }
            Err(e) => error!(error = %e, "SIGHUP: new schedule refused; the old one stays"),
        }
    }
    let needs_restart =
        new.database != r.config.database || new.admin.listen != r.config.admin.listen;
    if needs_restart {
        warn!("SIGHUP: database or admin.listen changed; that takes a restart");
    }
    info!(scan = %new.schedule.scan, "SIGHUP: tokens, rates, batch sizes and schedule reloaded");
    r.config = new;
}

/// What the cron jobs poke.
struct Triggers {
    scan: Arc<Notify>,
    reconcile: Arc<Notify>,
}

/// The cron triggers of the scan and the reconcile, read in
/// `schedule.timezone`. They only poke their loops: a scan missed while the
/// daemon was down is caught up by the next one, because the scan reads
/// everything after its stored cursor.
fn cron_jobs(config: &Config, triggers: &Triggers) -> anyhow::Result<Vec<Job>> {
    let tz = config.schedule.timezone()?;
    let job = |(name, expr): (&str, &str), trigger: Arc<Notify>| {
        Job::new_async_tz(expr, tz, move |_, _| {
            let trigger = trigger.clone();
            Box::pin(async move { trigger.notify_one() })
        })
        .map_err(|e| {
            anyhow::anyhow!("schedule.{name} {expr:?} is not a six-field cron expression: {e}")
        })
    };
    let [scan, reconcile] = config.schedule.crons();
    Ok(vec![
        job(scan, triggers.scan.clone())?,
        job(reconcile, triggers.reconcile.clone())?,
    ])
}

/// What a scheduled loop works with, and its [`Beat`].
struct Worker {
    store: SharedStore,
    clock: SharedClock,
    /// This daemon, as the leases name it.
    owner: String,
    beat: Beat,
    shutdown: CancellationToken,
}

/// Reconciles on every trigger, on the daemon that takes the reconcile
/// lease; purges the attempt history first.
async fn reconcile_loop(
    worker: Worker,
    config: Config,
    registries: Registries,
    trigger: Arc<Notify>,
) {
    let Worker {
        store,
        clock,
        owner,
        beat,
        shutdown,
    } = worker;
    loop {
        beat.idle();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = trigger.notified() => {}
        }
        beat.busy();
        // Long enough for a night's lookups; released when done.
        let ttl_ms = 6 * 3_600_000;
        match store
            .try_lease(
                crate::reconcile::RECONCILE_LEASE,
                &owner,
                clock.now_ms(),
                ttl_ms,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                error!(error = %e, "reconcile skipped: the database did not answer");
                continue;
            }
        }
        let opts = crate::reconcile::nightly_options(&config.reconcile, clock.now_ms());
        let run = crate::reconcile::run_audited(
            store.as_ref(),
            clock.as_ref(),
            &registries,
            opts,
            config.history.retention(),
            "schedule",
        );
        tokio::select! {
            _ = shutdown.cancelled() => {}
            result = run => if let Err(e) = result {
                error!(error = %e, "reconcile failed; the next night tries again");
            }
        }
        store
            .release_lease(crate::reconcile::RECONCILE_LEASE, &owner)
            .await
            .ok();
    }
}

/// Scans on start and on every trigger, when this daemon can take the scan
/// lease (several daemons on one PostgreSQL database scan one at a time).
async fn scan_loop(worker: Worker, ttl_ms: i64, trigger: Arc<Notify>, db_health: Arc<DbHealth>) {
    let Worker {
        store,
        clock,
        owner,
        beat,
        shutdown,
    } = worker;
    loop {
        beat.busy();
        let scanned = scan_as_leader(store.as_ref(), clock.as_ref(), &owner, ttl_ms).await;
        beat.idle();
        if let Err(e) = &scanned {
            error!(error = %e, retryable = e.is_retryable(), "scan failed; the next trigger retries from the same cursor");
        }
        db_health.report(Task::Scan, scanned.as_ref().map(|_| ()));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = trigger.notified() => {}
        }
    }
}

/// The longest pause after database errors: short, so that work resumes
/// within seconds of the database coming back.
const STORE_ERROR_PAUSE_MAX: Duration = Duration::from_secs(5);

async fn dispatch_loop(
    mut d: Dispatcher,
    clock: SharedClock,
    idle: Duration,
    beat: Beat,
    db_health: Arc<DbHealth>,
    shutdown: CancellationToken,
) {
    let mut store_errors = 0u32;
    let task = Task::Dispatch(d.registry());
    while !shutdown.is_cancelled() {
        beat.busy();
        let outcome = d.dispatch_once().await;
        beat.idle();
        db_health.report(task, outcome.as_ref().map(|_| ()));
        let pause = match outcome {
            Ok(DispatchOutcome::Sent(_)) => {
                store_errors = 0;
                continue;
            }
            Ok(DispatchOutcome::Idle) => idle,
            Ok(DispatchOutcome::Held { until_ms }) => {
                Duration::from_millis((until_ms - clock.now_ms()).clamp(10, 60_000) as u64)
            }
            Err(e) => {
                store_errors += 1;
                error!(registry = %d.registry(), error = %e, "dispatch could not use the database");
                (idle * store_errors).min(STORE_ERROR_PAUSE_MAX)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "hoursync".into())
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_connections_must_leave_descriptors_for_the_work() {
        let mut config = Config::default();
        check_descriptors(&config, None).unwrap();
        check_descriptors(&config, Some(1024)).unwrap();
        config.admin.max_connections = 1000;
        let err = check_descriptors(&config, Some(1024))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("admin.max_connections (1000)") && err.contains("1024"),
            "{err}"
        );
        check_descriptors(&config, Some(4096)).unwrap();
    }

    #[test]
    fn this_process_has_a_descriptor_limit() {
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}
