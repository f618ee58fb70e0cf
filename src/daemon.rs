//! `hoursync run`: the scheduled scan, one dispatch loop per registry, and
//! shutdown on SIGTERM/SIGINT. Shutdown is an input (a
//! `CancellationToken`): loops stop taking work, in-flight batches get
//! `dispatch.shutdown_grace_ms` to finish, and anything abandoned is safe
//! because its lease expires and it is resent under the same key.

use crate::clock::SharedClock;
use crate::config::{Config, redact_url};
use crate::db_health::{DbHealth, Task};
use crate::dispatch::{DispatchOutcome, DispatchSettings, Dispatcher};
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
pub async fn start(
    config: Config,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    crate::metrics::install()?;
    let app = App::build(config, clock).await?;
    let owner = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
    let tracker = TaskTracker::new();
    let db_health = DbHealth::new();
    spawn_dispatchers(&app, &owner, &tracker, &shutdown, &db_health);
    let (admin_addr, state) = serve_admin(&app, &tracker, &shutdown, &db_health).await?;

    let triggers = Triggers {
        scan: Arc::new(Notify::new()),
        reconcile: Arc::new(Notify::new()),
    };
    let scheduler = start_scheduler(&app.config, &triggers).await?;
    let App {
        config,
        store,
        registries,
        clock,
    } = app;
    tracker.spawn(scan_loop(
        store.clone(),
        clock.clone(),
        owner.clone(),
        config.dispatch.lease_ms as i64,
        triggers.scan.clone(),
        db_health,
        shutdown.clone(),
    ));
    tracker.spawn(reconcile_loop(
        store.clone(),
        clock.clone(),
        owner.clone(),
        config.clone(),
        registries.clone(),
        triggers.reconcile.clone(),
        shutdown.clone(),
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
    info!(owner, admin = %admin_addr, database = %redact_url(&config.database.url), scan = %config.schedule.scan, reconcile = %config.schedule.reconcile,
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

/// One dispatch loop per enabled registry.
fn spawn_dispatchers(
    app: &App,
    owner: &str,
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
        tracker.spawn(dispatch_loop(
            dispatcher,
            app.clock.clone(),
            config.dispatch.idle_poll(),
            db_health.clone(),
            shutdown.clone(),
        ));
    }
}

/// Binds the admin server and serves it until shutdown.
async fn serve_admin(
    app: &App,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    db_health: &Arc<DbHealth>,
) -> anyhow::Result<(std::net::SocketAddr, crate::admin::SharedState)> {
    let config = &app.config;
    let tokens =
        crate::admin::auth::Tokens::load(&config.admin.tokens_file).context("admin.tokens_file")?;
    let state = Arc::new(crate::admin::AdminState {
        store: app.store.clone(),
        clock: app.clock.clone(),
        tokens: std::sync::RwLock::new(Arc::new(tokens)),
        started: Default::default(),
        open_health: config.admin.open_health,
        at_risk: config.sla.at_risk(),
        registries: app.registries.clone(),
        db_health: db_health.clone(),
    });
    let listener = tokio::net::TcpListener::bind(&config.admin.listen)
        .await
        .with_context(|| format!("admin.listen {}", config.admin.listen))?;
    let admin_addr = listener.local_addr()?;
    tracker.spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            if let Err(e) = crate::admin::serve(listener, state, shutdown).await {
                error!(error = %e, "admin server stopped");
            }
        }
    });
    Ok((admin_addr, state))
}

/// The cron scheduler and the ids of its jobs, which SIGHUP replaces.
type SharedScheduler = Arc<tokio::sync::Mutex<(JobScheduler, Vec<uuid::Uuid>)>>;

async fn start_scheduler(config: &Config, triggers: &Triggers) -> anyhow::Result<SharedScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    let mut job_ids = Vec::new();
    for job in cron_jobs(config, triggers)? {
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

/// Reconciles on every trigger, on the daemon that takes the reconcile
/// lease; purges the attempt history first.
async fn reconcile_loop(
    store: SharedStore,
    clock: SharedClock,
    owner: String,
    config: Config,
    registries: Registries,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = trigger.notified() => {}
        }
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
async fn scan_loop(
    store: SharedStore,
    clock: SharedClock,
    owner: String,
    ttl_ms: i64,
    trigger: Arc<Notify>,
    db_health: Arc<DbHealth>,
    shutdown: CancellationToken,
) {
    loop {
        let scanned = scan_as_leader(store.as_ref(), clock.as_ref(), &owner, ttl_ms).await;
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
    db_health: Arc<DbHealth>,
    shutdown: CancellationToken,
) {
    let mut store_errors = 0u32;
    let task = Task::Dispatch(d.registry());
    while !shutdown.is_cancelled() {
        let outcome = d.dispatch_once().await;
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
