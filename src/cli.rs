//! The command line. `main` only calls [`main`] here; each command is a
//! thin call into the library.

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::domain::{NationalId, mask_ids_in};
use crate::intake::{ImportOptions, import_files};
use crate::startup::App;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Exit code of `import` when some lines were rejected.
pub const EXIT_REJECTED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "hoursync",
    version,
    about = "Delivers certified learning hours to the registries that count them, exactly once."
)]
pub struct Cli {
    /// Configuration file (default: config/hoursync.toml when present, else built-in defaults).
    #[arg(long, global = true, env = "HOURSYNC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: scheduled scans and continuous dispatch, until SIGTERM/SIGINT.
    Run,
    /// Apply database migrations and exit.
    Migrate,
    /// Import JSON Lines files of learning data (INTAKE.md).
    Import {
        /// Apply nothing of a file that has any bad line.
        #[arg(long)]
        strict: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run one scan pass now and print what it did.
    Scan,
    /// Show every completion × registry of one learner.
    Status {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        national_id: String,
    },
    /// The government office calendar the 3-working-day promise counts on.
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// The 3-working-day promise: due times and how each registry stands.
    #[command(subcommand)]
    Sla(SlaCommand),
    /// Judge a scope again from current data and queue what is not delivered
    /// (e.g. after fixing a learner's data); `--verify` also asks the registry.
    Resync(ResyncArgs),
    /// List deliveries by state and registry (IDs masked).
    Deliveries {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        registry: Option<crate::domain::RegistryKind>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put one failed or rejected delivery back in the queue.
    Retry { delivery_id: i64 },
    /// Look records up at the registries and repair drift, as the nightly
    /// job does: every record whose last outcome is unknown, and a sample of
    /// those credited since a date. Prints every repair.
    Reconcile {
        #[arg(long)]
        registry: Option<crate::domain::RegistryKind>,
        /// Delivered records credited since this date (YYYY-MM-DD, Asia/Taipei);
        /// default: `reconcile.days` ago.
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        /// Look up every delivered record since then, not a sample.
        #[arg(long)]
        all: bool,
        /// The whole report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every request made for one delivery: time, revision, action, HTTP
    /// status, result, request id and error (kept `history.retention_days`).
    History {
        delivery_id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show the audit trail: who resynced or retried what, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Serve the registry simulator (REGISTRY-API.md) for tests and demos.
    Simulate(SimulateArgs),
    /// Generate a realistic data set, start the simulator and the daemon on
    /// SQLite, and report what reached each registry.
    Demo(crate::demo::DemoArgs),
    /// Copy a whole database into an empty one (e.g. SQLite to PostgreSQL) and verify the counts.
    MigrateData(crate::migrate_data::MigrateDataArgs),
    /// Measure import, scan and end-to-end drain throughput and peak memory.
    Bench(crate::bench::BenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct ResyncArgs {
    #[arg(long)]
    pub national_id: Option<String>,
    #[arg(long)]
    pub course: Option<String>,
    #[arg(long)]
    pub registry: Option<crate::domain::RegistryKind>,
    /// First completion date (YYYY-MM-DD, Asia/Taipei), inclusive.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last completion date, inclusive.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Also look delivered records up at the registry and resend what it lacks.
    #[arg(long)]
    pub verify: bool,
    /// Only count what the scope covers.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum CalendarCommand {
    /// Load a year's official CSV (Big5 or UTF-8); a revised year replaces the stored one.
    Import {
        /// Show what would change without storing it.
        #[arg(long)]
        dry_run: bool,
        file: PathBuf,
    },
    /// List the stored years and how far the calendar reaches.
    Show,
}

#[derive(Subcommand, Debug)]
pub enum SlaCommand {
    /// Print when a record eligible at FROM is due (RFC 3339, +08:00).
    Due {
        #[arg(long)]
        from: String,
    },
    /// Count records by SLA state per registry and list the breached ones.
    Report {
        #[arg(long)]
        registry: Option<crate::domain::RegistryKind>,
        /// Only records eligible since this date (YYYY-MM-DD, Asia/Taipei).
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        #[arg(long)]
        json: bool,
        /// Breached records listed at most.
        #[arg(long, default_value_t = crate::sla_report::DEFAULT_LIMIT)]
        limit: usize,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::telemetry::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(execute(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", mask_ids_in(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let clock: SharedClock = Arc::new(SystemClock);
    match command {
        Command::Run => {
            let shutdown = CancellationToken::new();
            let signal = shutdown.clone();
            tokio::spawn(async move {
                crate::daemon::shutdown_signal().await;
                signal.cancel();
            });
            crate::daemon::run(config, clock, shutdown).await?;
        }
        Command::Migrate => {
            App::open(config, clock).await?;
            println!("migrations applied");
        }
        Command::Import { strict, files } => {
            let App { store, .. } = App::open(config, clock.clone()).await?;
            let opts = ImportOptions {
                strict,
                progress: true,
            };
            let report = import_files(store.as_ref(), clock.as_ref(), &files, opts).await?;
            for e in &report.errors {
                eprintln!("{e}");
            }
            if report.rejected > report.errors.len() {
                eprintln!(
                    "… and {} more rejected lines",
                    report.rejected - report.errors.len()
                );
            }
            for f in &report.files_skipped {
                eprintln!("{f}: nothing applied (--strict)");
            }
            println!(
                "{} lines read, {} applied ({} rows changed), {} rejected",
                report.lines, report.applied, report.changed, report.rejected
            );
            if report.rejected > 0 {
                return Ok(ExitCode::from(EXIT_REJECTED));
            }
        }
        Command::Scan => {
            let App { store, .. } = App::open(config, clock.clone()).await?;
            let report = crate::scan::scan_once(store.as_ref(), clock.as_ref()).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Status { json, national_id } => {
            let id = NationalId::parse(&national_id).map_err(|e| anyhow::anyhow!("{e}"))?;
            let App { store, config, .. } = App::open(config, clock.clone()).await?;
            let at_risk = config.sla.at_risk();
            let lines =
                crate::status::person_status(store.as_ref(), &id, clock.now_ms(), at_risk).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                print!("{}", crate::status::render_text(&id, &lines));
            }
        }
        Command::Calendar(CalendarCommand::Import { dry_run, file }) => {
            let App { store, .. } = App::open(config, clock.clone()).await?;
            let summary =
                crate::calendar::import(store.as_ref(), &file, dry_run, clock.now_ms()).await?;
            println!("{summary}");
        }
        Command::Calendar(CalendarCommand::Show) => {
            let App { store, .. } = App::open(config, clock.clone()).await?;
            let calendar = crate::calendar::load(store.as_ref()).await?;
            for y in calendar.years() {
                println!(
                    "{}: {} days off, {} working days",
                    y.year(),
                    y.days_off(),
                    y.working_days()
                );
            }
            match calendar.covered_until() {
                Some(d) => println!("covered until {d}"),
                None => println!("no calendar loaded: working days are counted Monday to Friday"),
            }
        }
        Command::Sla(SlaCommand::Due { from }) => {
            let from = chrono::DateTime::parse_from_rfc3339(&from).map_err(|e| {
                anyhow::anyhow!("--from {from:?} is not an RFC 3339 time with an offset: {e}")
            })?;
            let App { store, .. } = App::open(config, clock.clone()).await?;
            let calendar = crate::calendar::load(store.as_ref()).await?;
            let due = crate::sla::due_at(&calendar, from.to_utc());
            if due.fallback_used {
                eprintln!(
                    "warning: a date on the way is not in the loaded office calendar: counted Monday to Friday"
                );
            }
            println!("{}", due.at.to_rfc3339());
        }
        Command::Sla(SlaCommand::Report {
            registry,
            since,
            json,
            limit,
        }) => {
            let App { store, config, .. } = App::open(config, clock.clone()).await?;
            let since_ms = since.map(crate::clock::taipei_midnight_ms);
            let filter = crate::store::SlaFilter { registry, since_ms };
            let at_risk_ms = config.sla.at_risk_ms();
            let report =
                crate::sla_report::build(store.as_ref(), clock.now_ms(), at_risk_ms, filter, limit)
                    .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crate::sla_report::render_text(&report));
            }
        }
        Command::Resync(args) => resync(args, config, clock).await?,
        Command::Deliveries {
            state,
            registry,
            limit,
        } => {
            let wanted = match state.as_deref() {
                None => None,
                Some(s) => Some(
                    crate::store::State::parse(s)
                        .ok_or_else(|| anyhow::anyhow!("unknown state {s:?}"))?,
                ),
            };
            let App { store, .. } = App::open(config, clock.clone()).await?;
            let (mut after, mut shown) = (0, 0);
            while shown < limit {
                let page = store
                    .list_deliveries(wanted, registry, after, (limit - shown).min(500))
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                shown += page.len();
                for d in page {
                    println!(
                        "#{:<8} {:<9} {} {:<14} {:<16} {:<10} {:<22} attempts {:<3} {}",
                        d.id,
                        d.registry,
                        crate::domain::mask(&d.national_id),
                        d.course_code,
                        d.completion_id,
                        d.state.as_str(),
                        d.reason.as_deref().unwrap_or("-"),
                        d.attempts,
                        d.last_error.as_deref().unwrap_or("")
                    );
                }
            }
        }
        Command::Retry { delivery_id } => {
            let App { store, .. } = App::open(config, clock.clone()).await?;
            match crate::resync::retry_one(
                store.as_ref(),
                clock.as_ref(),
                &cli_actor(),
                delivery_id,
            )
            .await?
            {
                None => anyhow::bail!("no delivery {delivery_id}"),
                Some(Err(state)) => anyhow::bail!(
                    "delivery {delivery_id} is {}: only failed or rejected records are retried",
                    state.as_str()
                ),
                Some(Ok(was)) => println!("delivery {delivery_id}: {} -> pending", was.as_str()),
            }
        }
        Command::Reconcile {
            registry,
            since,
            all,
            json,
        } => {
            let app = App::open(config, clock.clone()).await?;
            let now = clock.now_ms();
            let mut opts = crate::reconcile::nightly_options(&app.config.reconcile, now);
            opts.registry = registry;
            if let Some(d) = since {
                opts.since_ms = crate::clock::taipei_midnight_ms(d);
            }
            if all {
                opts.sample_percent = 100.0;
            }
            let app = app.with_registries()?;
            let spinner = progress_spinner("reconcile: looking records up".into());
            let report = crate::reconcile::run_audited(
                app.store.as_ref(),
                clock.as_ref(),
                &app.registries,
                opts,
                app.config.history.retention(),
                &cli_actor(),
            )
            .await;
            spinner.finish_and_clear();
            let report = report?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for r in &report.repairs {
                    println!("{r}");
                }
                let checked: usize = report.checked.values().sum();
                println!(
                    "checked {checked}, repaired {}, lookup errors {}, skipped {} (a registry kept failing), changed meanwhile {}",
                    report.repairs.len(),
                    report.lookup_errors,
                    report.skipped.values().sum::<usize>(),
                    report.superseded
                );
            }
        }
        Command::History { delivery_id, json } => {
            let App { store, .. } = App::open(config, clock.clone()).await?;
            let Some(d) = store.delivery(delivery_id).await? else {
                anyhow::bail!("no delivery {delivery_id}");
            };
            let attempts = store.attempts_of(delivery_id).await?;
            if json {
                let lines: Vec<_> = attempts
                    .iter()
                    .map(crate::status::AttemptLine::from)
                    .collect();
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                println!(
                    "#{} {} {} {} {}: {}",
                    d.id,
                    d.registry,
                    crate::domain::mask(&d.national_id),
                    d.course_code,
                    d.completion_id,
                    d.state.as_str()
                );
                for a in &attempts {
                    let l = crate::status::AttemptLine::from(a);
                    println!(
                        "{} rev {:<3} {:<8} {:<4} {:<12} {} {}",
                        l.at,
                        l.revision,
                        l.action,
                        l.http_status.map_or("-".into(), |s| s.to_string()),
                        l.result,
                        l.request_id,
                        l.error.as_deref().unwrap_or("")
                    );
                }
                if attempts.is_empty() {
                    println!("(no attempts kept)");
                }
            }
        }
        Command::Audit { limit } => {
            let App { store, .. } = App::open(config, clock.clone()).await?;
            for e in store.list_audit(i64::MAX, limit).await? {
                let view = crate::admin::AuditView::from(e);
                println!("{}", serde_json::to_string(&view)?);
            }
        }
        Command::Simulate(args) => simulate(args).await?,
        Command::Demo(args) => crate::demo::run(args, config).await?,
        Command::MigrateData(args) => {
            crate::migrate_data::run(args).await?;
        }
        Command::Bench(args) => crate::bench::run(args, config).await?,
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: std::net::SocketAddr,
    /// File holding the bearer token the simulated registries accept.
    #[arg(long, default_value = "config/tokens/lifelong.token")]
    pub token_file: PathBuf,
    /// Requests per second each registry allows (0: unlimited).
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    #[arg(long, default_value_t = 40)]
    pub burst: u32,
    #[arg(long, default_value_t = 500)]
    pub max_batch: usize,
    /// Share of batches answered 503 without committing.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of batches committed, then answered by a dropped connection.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Delay added to every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let token = crate::config::read_secret(&args.token_file)?;
    let config = crate::simulator::SimConfig {
        token,
        max_batch: args.max_batch,
        rate_per_second: args.rate,
        burst: args.burst,
        faults: crate::simulator::Faults {
            error_rate: args.error_rate,
            drop_rate: args.drop_rate,
            latency_ms: args.latency_ms,
            reject_courses: Vec::new(),
        },
    };
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        crate::daemon::shutdown_signal().await;
        signal.cancel();
    });
    crate::simulator::run(args.listen, config, shutdown).await
}

/// Who a command run on the host acts as, for the audit trail.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn resync(args: ResyncArgs, config: Config, clock: SharedClock) -> anyhow::Result<()> {
    let req = crate::admin::ResyncRequest {
        national_id: args.national_id,
        course_code: args.course,
        registry: args.registry,
        completed_from: args.from,
        completed_to: args.to,
        dry_run: args.dry_run,
        verify: args.verify,
    };
    let scope = req.scope().map_err(|e| anyhow::anyhow!("{}", e.1))?;
    let app = App::open(config, clock.clone()).await?;
    if args.dry_run {
        let summary = crate::resync::dry_run(app.store.as_ref(), &scope).await?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let App {
        store, registries, ..
    } = if args.verify {
        app.with_registries()?
    } else {
        app
    };
    let planned = crate::resync::dry_run(store.as_ref(), &scope).await?;
    let id = crate::resync::open_audit(
        store.as_ref(),
        clock.as_ref(),
        &cli_actor(),
        &scope,
        args.verify,
    )
    .await?;
    let spinner = progress_spinner(format!(
        "resync {id}: {} completions, {} records{}",
        planned.completions,
        planned.records,
        if args.verify {
            ", verifying delivered records at the registries"
        } else {
            ""
        }
    ));
    let summary = crate::resync::run(
        store.as_ref(),
        clock.as_ref(),
        &registries,
        &scope,
        args.verify,
        id,
    )
    .await;
    spinner.finish_and_clear();
    let summary = summary?;
    eprintln!(
        "resync {id} done: {} requeued, {} missing at a registry",
        summary.requeued, summary.missing_at_registry
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// A spinner on a terminal (nothing otherwise) for work without a count.
fn progress_spinner(message: String) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}
