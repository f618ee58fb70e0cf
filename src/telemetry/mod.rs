//! Logging setup: text for a terminal, JSON for collectors (`log.format`),
//! level from `log.level` unless `RUST_LOG` says otherwise. National IDs
//! never reach a log line whole: the domain type's `Display` masks them.

use crate::config::LogConfig;
use tracing_subscriber::EnvFilter;

pub fn init(cfg: &LogConfig) {
    // The scheduler logs its own life cycle at info; only its warnings matter here.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},tokio_cron_scheduler=warn", cfg.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, or `demo` starting the daemon in-process) is harmless.
    let _ = if cfg.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
