//! What every entry point starts from: the configuration, the store
//! (opened, migrated and given the shipped office calendar), the enabled
//! registries and the clock. The daemon, the CLI commands, the demo and the
//! bench all start here, so none of them opens a store or builds registry
//! clients its own way.

use crate::clock::SharedClock;
use crate::config::{Config, redact_url};
use crate::registries::Registries;
use crate::store::{self, SharedStore};
use anyhow::Context;
use tracing::info;

/// A started application, before any work.
pub struct App {
    pub config: Config,
    pub store: SharedStore,
    /// Empty after [`App::open`]: only what talks to a registry builds its
    /// clients (and so needs the token files).
    pub registries: Registries,
    pub clock: SharedClock,
}

impl App {
    /// The store, the registries and the clock: what talks to registries.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        Self::open(config, clock).await?.with_registries()
    }

    /// The store and the clock, for work that never talks to a registry:
    /// its token files need not exist.
    pub async fn open(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        Ok(Self {
            config,
            store,
            registries: Registries::default(),
            clock,
        })
    }

    /// The store as it is, for commands that only read: a database that
    /// does not exist is not created, and one that lacks this build's
    /// migrations is not migrated. Either is a [`NoDatabase`] error that
    /// names the (redacted) URL, so "where are my hours?" is never answered
    /// from a new, empty database next to wherever the command ran.
    pub async fn read_only(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let url = redact_url(&config.database.url);
        if !store::database_exists(&config.database.url)? {
            return Err(NoDatabase(format!("there is no database at {url}")).into());
        }
        let store = open_database(&config)
            .await
            .with_context(|| format!("opening database {url}"))?;
        let pending = store.pending_migrations().await?;
        if pending > 0 {
            return Err(NoDatabase(format!(
                "the database at {url} lacks {pending} of this version's migrations \
                 (empty, or of an older hoursync): run `hoursync migrate` against it, or start the \
                 service, which migrates"
            ))
            .into());
        }
        Ok(Self {
            config,
            store,
            registries: Registries::default(),
            clock,
        })
    }

    /// Adds a client for every enabled registry.
    pub fn with_registries(mut self) -> anyhow::Result<Self> {
        self.registries = Registries::from_config(&self.config)?;
        Ok(self)
    }
}

/// A read-only command found no database it could read: the wrong
/// configuration, most likely. Its own exit code
/// ([`crate::cli::EXIT_NO_DATABASE`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}. Point hoursync at the service's database: --config /etc/hoursync/hoursync.toml (or HOURSYNC_CONFIG), or HOURSYNC_DATABASE__URL"
)]
pub struct NoDatabase(pub String);

/// Connects to the configured database, with the password of
/// `database.password_file` if there is one.
async fn open_database(config: &Config) -> anyhow::Result<SharedStore> {
    let password = config.database.password()?;
    Ok(store::open_with_password(
        &config.database.url,
        password.as_deref(),
        config.database.max_connections,
        config.database.busy_timeout_ms,
    )
    .await?)
}

/// Opens the configured store, applies migrations and stores the shipped
/// office calendar into an empty database.
pub async fn open_store(config: &Config) -> anyhow::Result<SharedStore> {
    let store = open_database(config)
        .await
        .with_context(|| format!("opening database {}", redact_url(&config.database.url)))?;
    store.migrate().await?;
    let seeded = crate::calendar::seed_if_empty(
        store.as_ref(),
        &config.calendar.dir,
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .with_context(|| {
        format!(
            "loading the office calendar from {}",
            config.calendar.dir.display()
        )
    })?;
    if seeded > 0 {
        info!(years = seeded, dir = %config.calendar.dir.display(), "office calendar stored from the shipped files");
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use std::sync::Arc;

    fn config_in(dir: &std::path::Path) -> Config {
        let mut config = Config::default();
        config.database.url = format!("sqlite://{}?mode=rwc", dir.join("h.db").display());
        for r in config.registries.values_mut() {
            r.token_file = dir.join("missing.token");
        }
        config
    }

    #[tokio::test]
    async fn opening_needs_no_token_file_but_building_the_registries_does() {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(SystemClock);
        let app = App::open(config_in(dir.path()), clock.clone())
            .await
            .unwrap();
        assert_eq!(app.registries.iter().count(), 0);
        let Err(err) = App::build(config_in(dir.path()), clock).await else {
            panic!("registries built without their token files");
        };
        assert!(format!("{err:#}").contains("token_file"), "{err:#}");
    }
}
