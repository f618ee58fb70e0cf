//! Logging setup: text for a terminal, JSON for collectors (`log.format`),
//! level from `log.level` unless `RUST_LOG` says otherwise. National IDs
//! never reach a log line whole: the domain type's `Display` masks them.
//! Lines go to stderr through [`sink`]: a log stream that breaks or stops
//! reading costs log lines (counted), never work or shutdown.

pub mod sink;

use crate::config::LogConfig;
use sink::LogSink;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// The process's log sink, once [`init`] ran.
static SINK: OnceLock<LogSink> = OnceLock::new();

pub fn init(cfg: &LogConfig) {
    // The scheduler logs its own life cycle at info; only its warnings matter here.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},tokio_cron_scheduler=warn", cfg.level)));
    let sink = SINK
        .get_or_init(|| LogSink::start(std::io::stderr(), sink::QUEUE_LINES))
        .clone();
    // A failed write is the sink's to count: the subscriber's own report
    // of it would go to the same broken stderr.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        .with_ansi(colour_on_stderr())
        .log_internal_errors(false);
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

/// Colour codes only for a person at a terminal who has not asked for
/// none (<https://no-color.org>: `NO_COLOR` set and not empty): in a file,
/// a pipe or the journal they are noise that breaks `grep`.
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Log lines dropped since the start (0 before [`init`]).
pub fn lines_dropped() -> u64 {
    SINK.get().map_or(0, |s| s.dropped().total())
}

/// Gives the queued log lines up to `limit` to reach stderr, before the
/// process exits.
pub fn flush(limit: Duration) {
    if let Some(sink) = SINK.get() {
        sink.flush(limit);
    }
}
