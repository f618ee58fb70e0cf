//! The command line: the clap definitions and the dispatch to one module
//! per command. `main` only calls [`main`] here; each command is a thin call
//! into the library, starting from [`App`].

mod audit;
mod calendar;
mod config;
mod deliveries;
mod generate;
mod history;
mod import;
mod reconcile;
mod resync;
mod retry;
mod scan;
#[cfg(feature = "dev-tools")]
mod simulate;
mod sla;
mod status;

pub use resync::ResyncArgs;
#[cfg(feature = "dev-tools")]
pub use simulate::SimulateArgs;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::domain::mask_ids_in;
use crate::startup::App;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Exit code of `import` when some lines were rejected.
pub const EXIT_REJECTED: u8 = 3;
/// Exit code of a command that only reads, when the configured database
/// does not exist or lacks this version's migrations (nothing was created
/// or migrated).
pub const EXIT_NO_DATABASE: u8 = 4;

#[derive(Parser, Debug)]
#[command(
    name = "hoursync",
    version,
    about = "Delivers certified learning hours to the registries that count them, exactly once.",
    after_help = "Exit codes: 0 done; 1 failed (the message says why); 2 bad usage; \
                  3 import: some lines were rejected (the others were applied); \
                  4 a command that only reads (status, deliveries, history, audit, sla, \
                  calendar show, resync --dry-run) found no database at the configured URL, \
                  or one this version has not migrated: nothing was created or changed."
)]
pub struct Cli {
    /// Configuration file. Without it and HOURSYNC_CONFIG: ./config/hoursync.toml
    /// when present, else /etc/hoursync/hoursync.toml when present, else built-in
    /// defaults (`hoursync config show` says which).
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
    /// The effective configuration and where each value came from.
    #[command(subcommand)]
    Config(ConfigCommand),
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
        /// Print a JSON array (the API's delivery objects, IDs masked) instead of a table.
        #[arg(long)]
        json: bool,
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
    #[cfg(feature = "dev-tools")]
    /// Serve the registry simulator (REGISTRY-API.md) for tests and demos.
    Simulate(SimulateArgs),
    #[cfg(feature = "dev-tools")]
    /// Generate a realistic data set, start the simulator and the daemon on
    /// SQLite, and report what reached each registry.
    Demo(crate::demo::DemoArgs),
    /// Copy a whole database into an empty one (e.g. SQLite to PostgreSQL) and verify the counts.
    MigrateData(crate::migrate_data::MigrateDataArgs),
    #[cfg(feature = "dev-tools")]
    /// Measure import, scan and end-to-end drain throughput and peak memory.
    Bench(crate::bench::BenchArgs),
    /// Print the shell completion script (for packaging).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Write the man pages, hoursync.1 and hoursync-COMMAND.1, into DIR (for packaging).
    #[command(hide = true)]
    Man { dir: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML (URL passwords hidden), each
    /// value followed by its source: default, the file, or an environment variable.
    Show {
        #[arg(long)]
        json: bool,
    },
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
    Show {
        /// `{"years": [{year, days_off, working_days}], "covered_until"}`.
        #[arg(long)]
        json: bool,
    },
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
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Generated from the definitions alone: no configuration needed.
    match &cli.command {
        Command::Completions { shell } => {
            generate::completions(*shell);
            return ExitCode::SUCCESS;
        }
        Command::Man { dir } => {
            return match generate::man(dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let named = match matches.value_source("config") {
        Some(clap::parser::ValueSource::EnvVariable) => crate::config::Origin::EnvVar,
        _ => crate::config::Origin::Flag,
    };
    let layered = match Config::load_layered(cli.config.as_deref().map(|p| (p, named))) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Config(ConfigCommand::Show { json }) = cli.command {
        return match config::show(&layered, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = layered.config;
    crate::telemetry::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(execute(cli.command, config));
    // The last log lines (e.g. "stopped") before the process ends.
    crate::telemetry::flush(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            // Not `eprintln!`, which panics when stderr is gone: the exit
            // code says it failed either way.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                mask_ids_in(&format!("{e:#}"))
            );
            if e.downcast_ref::<crate::startup::NoDatabase>().is_some() {
                ExitCode::from(EXIT_NO_DATABASE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let clock: SharedClock = Arc::new(SystemClock);
    let open = |config| App::open(config, clock.clone());
    // Commands that only read never create or migrate a database.
    let read = |config| App::read_only(config, clock.clone());
    match command {
        Command::Config(_) | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled before the runtime starts")
        }
        Command::Run => crate::daemon::run(config, clock, cancel_on_signal()).await?,
        Command::Migrate => {
            open(config).await?;
            println!("migrations applied");
        }
        Command::Import { strict, files } => {
            return import::run(open(config).await?, strict, files).await;
        }
        Command::Scan => scan::run(open(config).await?).await?,
        Command::Status { json, national_id } => {
            status::run(config, clock, json, &national_id).await?
        }
        Command::Calendar(CalendarCommand::Import { dry_run, file }) => {
            calendar::import(open(config).await?, &file, dry_run).await?
        }
        Command::Calendar(CalendarCommand::Show { json }) => {
            calendar::show(read(config).await?, json).await?
        }
        Command::Sla(SlaCommand::Due { from }) => sla::due(config, clock, &from).await?,
        Command::Sla(SlaCommand::Report {
            registry,
            since,
            json,
            limit,
        }) => sla::report(read(config).await?, registry, since, json, limit).await?,
        Command::Resync(args) => resync::run(args, config, clock).await?,
        Command::Deliveries {
            state,
            registry,
            limit,
            json,
        } => deliveries::run(config, clock, state.as_deref(), registry, limit, json).await?,
        Command::Retry { delivery_id } => retry::run(open(config).await?, delivery_id).await?,
        Command::Reconcile {
            registry,
            since,
            all,
            json,
        } => reconcile::run(open(config).await?, registry, since, all, json).await?,
        Command::History { delivery_id, json } => {
            history::run(read(config).await?, delivery_id, json).await?
        }
        Command::Audit { limit } => audit::run(read(config).await?, limit).await?,
        #[cfg(feature = "dev-tools")]
        Command::Simulate(args) => simulate::run(args).await?,
        #[cfg(feature = "dev-tools")]
        Command::Demo(args) => crate::demo::run(args, config).await?,
        Command::MigrateData(args) => {
            crate::migrate_data::run(args).await?;
        }
        #[cfg(feature = "dev-tools")]
        Command::Bench(args) => crate::bench::run(args, config).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A token cancelled on SIGTERM or SIGINT.
fn cancel_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        crate::daemon::shutdown_signal().await;
        signal.cancel();
    });
    shutdown
}

/// Who a command run on the host acts as, for the audit trail.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
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
