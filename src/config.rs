//! Typed, layered configuration: built-in defaults (enough for `cargo run`
//! on a fresh machine with the embedded SQLite), then a TOML file, then
//! `HOURSYNC_<SECTION>__<KEY>` environment variables. Secrets are never in
//! here: a registry token is read from `token_file`, which must not be
//! readable by others.

use crate::domain::RegistryKind;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod search;
mod show;
pub use search::{Located, Origin, SYSTEM_CONFIG_PATH, locate};
pub use show::{Shown, show};

/// The file read when no file is named, if it exists in the working
/// directory (a checkout); then [`SYSTEM_CONFIG_PATH`].
pub const DEFAULT_CONFIG_PATH: &str = "config/hoursync.toml";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub schedule: ScheduleConfig,
    pub retry: RetryConfig,
    pub dispatch: DispatchConfig,
    pub log: LogConfig,
    pub calendar: CalendarConfig,
    pub sla: SlaConfig,
    pub reconcile: ReconcileConfig,
    pub history: HistoryConfig,
    pub intake: IntakeConfig,
    pub admin: AdminConfig,
    pub registries: BTreeMap<RegistryKind, RegistryConfig>,
    /// The file this configuration was read from, to read it again on SIGHUP.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin HTTP server (health, readiness, metrics, API).
    pub listen: String,
    /// Bearer tokens of the API, one per line: `NAME ROLE TOKEN` (role
    /// `support` or `ops`). Without the file the API answers 401 to all.
    pub tokens_file: PathBuf,
    /// Whether /healthz, /readyz and /metrics answer without a token.
    pub open_health: bool,
    /// Connections open at once at most; one arriving at the limit closes
    /// the one idle longest. Each is a file descriptor, and the database
    /// and the registry clients need theirs: keep it well under the
    /// process's limit (`LimitNOFILE=` in the unit).
    pub max_connections: usize,
    /// How long a request's line and headers may take to arrive once the
    /// server waits for them (also how long a keep-alive connection may
    /// sit between requests).
    pub header_read_timeout_ms: u64,
    /// A connection with no byte moving either way this long, while none
    /// of its requests is being handled, is closed.
    pub idle_timeout_ms: u64,
    /// A support console session (`/ui/`) unused this long is signed out.
    /// Sessions live in the daemon's memory: a restart signs everyone out.
    pub session_idle_minutes: u64,
}

impl AdminConfig {
    /// How long an unused console session lives.
    pub fn session_idle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.session_idle_minutes.saturating_mul(60))
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            tokens_file: PathBuf::from("config/tokens/admin.tokens"),
            open_health: true,
            max_connections: 256,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            session_idle_minutes: 480,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarConfig {
    /// Office calendar CSV files stored into an empty database on start
    /// (the shipped years); later years arrive by `hoursync calendar import`.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SlaConfig {
    /// A record not delivered this close to its due time is `at_risk`.
    pub at_risk_hours: u64,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("config/calendar"),
        }
    }
}

impl Default for SlaConfig {
    fn default() -> Self {
        Self { at_risk_hours: 24 }
    }
}

impl SlaConfig {
    /// How close to its due time an undelivered record is at risk.
    pub fn at_risk(&self) -> chrono::Duration {
        chrono::Duration::hours(self.at_risk_hours as i64)
    }

    /// [`at_risk`](Self::at_risk) in milliseconds, as the store counts it.
    pub fn at_risk_ms(&self) -> i64 {
        self.at_risk().num_milliseconds()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH?mode=rwc` (embedded default) or `postgres://…`
    /// (`?sslmode=require`, `verify-ca` or `verify-full` with
    /// `sslrootcert=PATH` for TLS). No password here: see `password_file`.
    pub url: String,
    /// PostgreSQL: a file holding the password (mode 0600 or 0400, like the
    /// token files; a relative name is looked up in `$CREDENTIALS_DIRECTORY`
    /// first). It is given to the connection, never pasted into the URL.
    /// Without it: `PGPASSWORD`, then `PGPASSFILE` or `~/.pgpass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    pub max_connections: u32,
    /// How long a writer waits for SQLite's lock before giving up.
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Zone the cron expressions are read in.
    pub timezone: String,
    /// Six-field cron expression (with seconds) for the scan.
    pub scan: String,
    /// Six-field cron expression for the reconcile (nightly lookups).
    pub reconcile: String,
}

impl ScheduleConfig {
    /// The zone the cron expressions are read in.
    pub fn timezone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.timezone.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "schedule.timezone {:?} is not a known time zone",
                self.timezone
            ))
        })
    }

    /// Each scheduled job's name (its key in `[schedule]`) and cron expression.
    pub fn crons(&self) -> [(&'static str, &str); 2] {
        [("scan", &self.scan), ("reconcile", &self.reconcile)]
    }
}

/// What the nightly reconcile looks up, besides every unknown outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Delivered records credited within this many days are sampled.
    pub days: u32,
    /// Per cent of those looked up each night (100: all). Each lookup is a
    /// request under the registry's rate limit, shared with uploads.
    pub sample_percent: f64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            days: 14,
            sample_percent: 10.0,
        }
    }
}

/// How long the attempt history is kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    pub retention_days: u32,
}

impl ReconcileConfig {
    /// How far back delivered records are sampled.
    pub fn window(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.days))
    }
}

impl HistoryConfig {
    /// How long an attempt is kept.
    pub fn retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.retention_days))
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

/// What `hoursync import` accepts beyond INTAKE.md's own rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// A completion dated more than this many days after the import's time
    /// is refused: a completion can not lie in the future, and a date such
    /// as year 9999 is a typo or garbage that would otherwise sit in the
    /// SLA figures forever. A day of slack absorbs clocks and zones.
    pub max_future_days: u32,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self { max_future_days: 1 }
    }
}

/// The durable retry policy: delay = min(max, base · 2^(attempt-1)), with
/// full jitter on the upper half, never shorter than a `Retry-After`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    pub base_ms: u64,
    pub max_ms: u64,
    /// After this many failed attempts a delivery is `failed` and waits for a person.
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// How long a claimed batch stays ours; a crashed daemon's rows come
    /// back after this. Must exceed the registry timeout.
    pub lease_ms: u64,
    /// Pause between polls when nothing is due.
    pub idle_poll_ms: u64,
    /// How often the token file of a registry that answered 401/403 is re-read.
    pub auth_recheck_ms: u64,
    /// How long in-flight batches may take to finish on shutdown.
    pub shutdown_grace_ms: u64,
}

impl DispatchConfig {
    pub fn idle_poll(&self) -> Duration {
        Duration::from_millis(self.idle_poll_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    pub enabled: bool,
    pub base_url: String,
    pub token_file: PathBuf,
    pub max_batch: usize,
    pub rate_per_second: u32,
    pub timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://hoursync.db?mode=rwc".into(),
            password_file: None,
            max_connections: 8,
            busy_timeout_ms: 30_000,
        }
    }
}

impl DatabaseConfig {
    /// The password of `password_file`, if one is configured.
    pub fn password(&self) -> Result<Option<String>, SecretError> {
        self.password_file.as_deref().map(read_secret).transpose()
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            timezone: "Asia/Taipei".into(),
            scan: "0 */5 * * * *".into(),
            reconcile: "0 30 2 * * *".into(),
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            base_ms: 30_000,
            max_ms: 21_600_000,
            max_attempts: 20,
        }
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            lease_ms: 60_000,
            idle_poll_ms: 1_000,
            auth_recheck_ms: 30_000,
            shutdown_grace_ms: 8_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl RegistryConfig {
    /// How long one request to the registry may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    fn default_for(kind: RegistryKind) -> Self {
        Self {
            enabled: true,
            base_url: format!("http://127.0.0.1:8700/{kind}"),
            token_file: PathBuf::from(format!("config/tokens/{kind}.token")),
            max_batch: 500,
            rate_per_second: 20,
            timeout_ms: 10_000,
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self::default_for(RegistryKind::Lifelong)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database: DatabaseConfig::default(),
            schedule: ScheduleConfig::default(),
            retry: RetryConfig::default(),
            dispatch: DispatchConfig::default(),
            log: LogConfig::default(),
            calendar: CalendarConfig::default(),
            sla: SlaConfig::default(),
            reconcile: ReconcileConfig::default(),
            history: HistoryConfig::default(),
            intake: IntakeConfig::default(),
            admin: AdminConfig::default(),
            source: None,
            registries: RegistryKind::ALL
                .into_iter()
                .map(|k| (k, RegistryConfig::default_for(k)))
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error(transparent)]
    Figment(#[from] Box<figment::Error>),
}

/// A configuration with the layers it was merged from, so `hoursync
/// config show` can say where each value came from.
pub struct Layered {
    pub config: Config,
    pub figment: Figment,
    pub located: Located,
}

impl Config {
    /// Loads defaults, then `path` (or the file found as [`locate`] says),
    /// then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_layered(path.map(|p| (p, Origin::Flag))).map(|l| l.config)
    }

    /// [`Config::load`], keeping the layers; `named` is the file given on
    /// the command line or by `HOURSYNC_CONFIG`, and which of the two.
    pub fn load_layered(named: Option<(&Path, Origin)>) -> Result<Layered, ConfigError> {
        let located = locate(named, Path::exists)?;
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = &located.path {
            fig = fig.merge(Toml::file(p));
        }
        // Only HOURSYNC_<SECTION>__<KEY> is configuration: other HOURSYNC_
        // variables (HOURSYNC_CONFIG, the tests' own) are not keys.
        fig = fig.merge(
            Env::prefixed("HOURSYNC_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        );
        let mut config: Config = fig.extract().map_err(Box::new)?;
        // A registry table named in TOML replaces its defaults field by field
        // through figment; fill any registry not named at all.
        for kind in RegistryKind::ALL {
            config
                .registries
                .entry(kind)
                .or_insert_with(|| RegistryConfig::default_for(kind));
        }
        config.validate()?;
        config.source = located.path.clone();
        Ok(Layered {
            config,
            figment: fig,
            located,
        })
    }

    /// Refuses values the daemon cannot work with, naming the key.
    /// [`Config::load`] calls it; so does `run` for a configuration built
    /// in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        self.schedule.timezone()?;
        if self.retry.max_attempts == 0
            || self.retry.base_ms == 0
            || self.retry.max_ms < self.retry.base_ms
        {
            return bad(
                "retry: max_attempts and base_ms must be positive and max_ms ≥ base_ms".into(),
            );
        }
        if !(0.0..=100.0).contains(&self.reconcile.sample_percent) {
            return bad(format!(
                "reconcile.sample_percent ({}) must be between 0 and 100",
                self.reconcile.sample_percent
            ));
        }
        if self.history.retention_days == 0 {
            return bad("history.retention_days must be at least 1".into());
        }
        self.validate_edges()?;
        for (kind, r) in &self.registries {
            if r.max_batch == 0 || r.max_batch > 500 {
                return bad(format!(
                    "registries.{kind}.max_batch must be between 1 and 500"
                ));
            }
            if let Err(why) = http_url(&r.base_url) {
                return bad(format!(
                    "registries.{kind}.base_url {:?} {why}",
                    redact_url(&r.base_url)
                ));
            }
            at_least(
                &format!("registries.{kind}.timeout_ms"),
                r.timeout_ms,
                MIN_TIMEOUT_MS,
                "a request needs time to be answered",
            )?;
            if r.lease_too_short(self.dispatch.lease_ms) {
                return bad(format!(
                    "dispatch.lease_ms ({}) must be longer than registries.{kind}.timeout_ms ({})",
                    self.dispatch.lease_ms, r.timeout_ms
                ));
            }
        }
        Ok(())
    }
}

/// The shortest registry timeout: below it every request fails before a
/// registry can answer, and each failure costs an attempt.
const MIN_TIMEOUT_MS: u64 = 100;
/// The shortest pause between polls: 0 turns an idle dispatcher into a
/// loop that spins on the database.
const MIN_IDLE_POLL_MS: u64 = 10;

impl Config {
    /// The database, dispatch, log and admin keys.
    fn validate_edges(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|k| url.starts_with(k)) {
            return Err(ConfigError::Invalid(format!(
                "database.url {:?} is neither sqlite://… nor postgres://…",
                redact_url(url)
            )));
        }
        if self.database.password_file.is_some() && url.starts_with("sqlite:") {
            return Err(ConfigError::Invalid(
                "database.password_file is for PostgreSQL; a SQLite database has no password"
                    .into(),
            ));
        }
        at_least(
            "database.max_connections",
            u64::from(self.database.max_connections),
            1,
            "the daemon needs a connection",
        )?;
        at_least(
            "dispatch.idle_poll_ms",
            self.dispatch.idle_poll_ms,
            MIN_IDLE_POLL_MS,
            "a shorter pause spins on the database",
        )?;
        at_least(
            "dispatch.auth_recheck_ms",
            self.dispatch.auth_recheck_ms,
            MIN_IDLE_POLL_MS,
            "a shorter pause hammers a registry that refuses our token",
        )?;
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "log.format {:?} must be \"text\" or \"json\"",
                self.log.format
            )));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::Invalid(format!(
                "log.level {:?} is not a log filter: {e}",
                self.log.level
            )));
        }
        if self.admin.listen.trim().is_empty() {
            return Err(ConfigError::Invalid("admin.listen is empty".into()));
        }
        at_least(
            "admin.max_connections",
            self.admin.max_connections as u64,
            1,
            "the admin server needs a connection",
        )?;
        at_least(
            "admin.header_read_timeout_ms",
            self.admin.header_read_timeout_ms,
            MIN_TIMEOUT_MS,
            "a request needs time to arrive",
        )?;
        at_least(
            "admin.idle_timeout_ms",
            self.admin.idle_timeout_ms,
            MIN_TIMEOUT_MS,
            "an answer needs time to be read",
        )?;
        at_least(
            "admin.session_idle_minutes",
            self.admin.session_idle_minutes,
            1,
            "a console session would end at once",
        )?;
        Ok(())
    }
}

/// Refuses `value` below `min`, naming the key and why.
fn at_least(key: &str, value: u64, min: u64, why: &str) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::Invalid(format!(
            "{key} ({value}) must be at least {min}: {why}"
        )));
    }
    Ok(())
}

/// Whether `raw` is an absolute http(s) URL with a host; why not otherwise.
fn http_url(raw: &str) -> Result<(), &'static str> {
    let url = reqwest::Url::parse(raw).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http:// or https:// URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    Ok(())
}

impl RegistryConfig {
    fn lease_too_short(&self, lease_ms: u64) -> bool {
        lease_ms <= self.timeout_ms
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "secret file {0} has mode {1:04o}: it must be readable by its owner only; run `chmod 600` on it"
    )]
    TooOpen(PathBuf, u32),
    #[error("secret file {0} is empty")]
    Empty(PathBuf),
}

/// Reads a secret (a bearer token) from a file, refusing one that any
/// other user can use: mode 0600 or stricter (0400, systemd's credentials),
/// not group-readable, since a group is more people than the daemon. A
/// relative path is looked up in `$CREDENTIALS_DIRECTORY` first (systemd's
/// `LoadCredential`), then as given.
pub fn read_secret(path: &Path) -> Result<String, SecretError> {
    let path = resolve_credential(path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&path).map_err(|source| SecretError::Read {
            path: path.clone(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen(path, mode));
        }
    }
    let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read {
        path: path.clone(),
        source,
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(SecretError::Empty(path));
    }
    Ok(token)
}

/// Writes a secret file that only its owner can read, as [`read_secret`]
/// demands (the demo's and the benchmark's generated tokens).
pub fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut f, secret.as_bytes())
}

/// A URL without its passwords, for messages and logs (see [`crate::redact`]).
pub use crate::redact::redact_url;

fn resolve_credential(path: &Path) -> PathBuf {
    if path.is_relative()
        && let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY")
    {
        let candidate = Path::new(&dir).join(path.file_name().unwrap_or(path.as_os_str()));
        if candidate.exists() {
            return candidate;
        }
    }
    path.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_describe_the_embedded_setup() {
        let c = Config::default();
        assert!(c.database.url.starts_with("sqlite://"));
        assert_eq!(c.registries.len(), 3);
        assert_eq!(
            c.registries[&RegistryKind::Teacher].base_url,
            "http://127.0.0.1:8700/teacher"
        );
        c.validate().unwrap();
    }

    #[test]
    fn a_toml_file_overrides_defaults_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(
            &path,
            "[retry]\nmax_attempts = 3\n[registries.enved]\nmax_batch = 100\n",
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.retry.base_ms, 30_000);
        assert_eq!(c.registries[&RegistryKind::Enved].max_batch, 100);
        assert_eq!(c.registries[&RegistryKind::Enved].rate_per_second, 20);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(&path, "[retry]\nmax_atempts = 3\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("max_atempts"), "{err}");
        std::fs::write(&path, "[registries.lifelong]\nmax_batch = 900\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("max_batch"), "{err}");
    }

    #[test]
    fn accessors_give_the_configured_values_in_their_units() {
        let c = Config::default();
        assert_eq!(c.sla.at_risk(), chrono::Duration::hours(24));
        assert_eq!(c.sla.at_risk_ms(), 24 * 3_600_000);
        assert_eq!(c.dispatch.idle_poll(), Duration::from_secs(1));
        assert_eq!(c.dispatch.shutdown_grace(), Duration::from_secs(8));
        assert_eq!(c.reconcile.window(), chrono::Duration::days(14));
        assert_eq!(c.history.retention(), chrono::Duration::days(90));
        assert_eq!(
            c.registries[&RegistryKind::Lifelong].timeout(),
            Duration::from_secs(10)
        );
        assert_eq!(c.schedule.timezone().unwrap(), chrono_tz::Asia::Taipei);
        assert_eq!(c.schedule.crons()[0], ("scan", "0 */5 * * * *"));
    }

    #[test]
    fn an_unknown_time_zone_is_refused_by_name() {
        let mut c = Config::default();
        c.schedule.timezone = "Mars/Olympus".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn a_token_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.token");
        std::fs::write(&path, "secret\n").unwrap();
        for open in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
            let err = read_secret(&path).unwrap_err();
            assert!(
                matches!(err, SecretError::TooOpen(_, m) if m == open),
                "{err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("t.token") && msg.contains(&format!("{open:04o}")),
                "{msg}"
            );
        }
        for closed in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(closed)).unwrap();
            assert_eq!(read_secret(&path).unwrap(), "secret");
        }
    }

    #[test]
    fn the_example_file_loads_and_shows_the_defaults() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/hoursync.example.toml"
        ));
        let mut loaded = Config::load(Some(path)).unwrap();
        loaded.source = None;
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn unusable_values_are_refused_by_key_name() {
        type Spoil = fn(&mut Config);
        let cases: [(&str, Spoil); 17] = [
            ("registries.lifelong.base_url", |c| {
                c.registries
                    .get_mut(&RegistryKind::Lifelong)
                    .unwrap()
                    .base_url = "not a url".into()
            }),
            ("registries.teacher.base_url", |c| {
                c.registries
                    .get_mut(&RegistryKind::Teacher)
                    .unwrap()
                    .base_url = String::new()
            }),
            ("registries.enved.base_url", |c| {
                c.registries.get_mut(&RegistryKind::Enved).unwrap().base_url =
                    "ftp://registry.example/enved".into()
            }),
            ("registries.lifelong.base_url", |c| {
                c.registries
                    .get_mut(&RegistryKind::Lifelong)
                    .unwrap()
                    .base_url = "http://".into()
            }),
            ("registries.enved.timeout_ms", |c| {
                c.registries
                    .get_mut(&RegistryKind::Enved)
                    .unwrap()
                    .timeout_ms = 0
            }),
            ("dispatch.idle_poll_ms", |c| c.dispatch.idle_poll_ms = 0),
            ("dispatch.auth_recheck_ms", |c| {
                c.dispatch.auth_recheck_ms = 0
            }),
            ("database.url", |c| c.database.url = "mysql://db/hs".into()),
            ("database.max_connections", |c| {
                c.database.max_connections = 0
            }),
            ("database.password_file", |c| {
                c.database.password_file = Some("db.password".into())
            }),
            ("log.format", |c| c.log.format = "xml".into()),
            ("log.level", |c| c.log.level = "loud,,=[".into()),
            ("admin.listen", |c| c.admin.listen = " ".into()),
            ("admin.max_connections", |c| c.admin.max_connections = 0),
            ("admin.header_read_timeout_ms", |c| {
                c.admin.header_read_timeout_ms = 0
            }),
            ("admin.idle_timeout_ms", |c| c.admin.idle_timeout_ms = 5),
            ("admin.session_idle_minutes", |c| {
                c.admin.session_idle_minutes = 0
            }),
        ];
        for (key, spoil) in cases {
            let mut c = Config::default();
            spoil(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let mut c = Config::default();
        c.registries.get_mut(&RegistryKind::Enved).unwrap().base_url =
            "https://registry.example:8443/enved/".into();
        c.validate().unwrap();
    }

    #[test]
    fn a_refused_database_url_is_named_without_its_passwords() {
        let mut c = Config::default();
        c.database.url = "mysql://app:hunter1@db/hs?password=hunter2&sslmode=require".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("mysql://***@db/hs?password=***&sslmode=require"),
            "{err}"
        );
        assert!(!err.contains("hunter"), "{err}");
    }
}
