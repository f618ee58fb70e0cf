//! The registries this deployment delivers to, built once from the
//! configuration: for each enabled one its HTTP client, its tuning (rate
//! and batch size) and its token file. The daemon's dispatch loops, the
//! admin API's verifying resyncs, reconcile and the CLI share this one
//! value, so which registries are reached, and how, is decided in one
//! place; SIGHUP updates it in place.

use crate::config::{Config, read_secret};
use crate::dispatch::Tuning;
use crate::domain::RegistryKind;
use crate::registry::RegistryClient;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::error;

/// One enabled registry, as reached from here. No `Debug`: the client
/// holds the registry's token.
#[derive(Clone)]
pub struct Registry {
    pub kind: RegistryKind,
    pub client: Arc<RegistryClient>,
    /// Rate and batch size, which SIGHUP may change.
    pub tuning: Arc<Tuning>,
    /// Read again on SIGHUP, and by a dispatcher whose token was refused.
    pub token_file: PathBuf,
}

/// The enabled registries. Cloning shares the clients and their tuning.
#[derive(Clone, Default)]
pub struct Registries {
    by_kind: BTreeMap<RegistryKind, Registry>,
}

impl Registry {
    /// Milliseconds between two requests at the current rate; 0 when
    /// unlimited.
    pub fn interval_ms(&self) -> i64 {
        crate::dispatch::interval_ms(self.tuning.rate_per_second.load(Ordering::Relaxed))
    }
}

/// Names the enabled registries only: a client holds a token.
impl std::fmt::Debug for Registries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kind.keys()).finish()
    }
}

impl Registries {
    /// A client for every enabled registry, its token read from its file.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mut by_kind = BTreeMap::new();
        for (kind, rc) in config.registries.iter().filter(|(_, r)| r.enabled) {
            let token = read_secret(&rc.token_file)
                .with_context(|| format!("registry {kind}: token_file"))?;
            let client = RegistryClient::new(*kind, &rc.base_url, token, rc.timeout())
                .with_context(|| format!("registry {kind}: HTTP client"))?;
            let registry = Registry {
                kind: *kind,
                client: Arc::new(client),
                tuning: Tuning::new(rc.rate_per_second, rc.max_batch),
                token_file: rc.token_file.clone(),
            };
            by_kind.insert(*kind, registry);
        }
        Ok(Self { by_kind })
    }

    /// The enabled registries, in the order of [`RegistryKind`].
    pub fn iter(&self) -> impl Iterator<Item = &Registry> {
        self.by_kind.values()
    }

    pub fn get(&self, kind: RegistryKind) -> Option<&Registry> {
        self.by_kind.get(&kind)
    }

    pub fn client(&self, kind: RegistryKind) -> Option<&Arc<RegistryClient>> {
        self.get(kind).map(|r| &r.client)
    }

    /// Applies what a reloaded configuration may change while requests are
    /// in flight: every registry's token, rate and batch size. Which
    /// registries are enabled, and where they are, takes a restart.
    pub fn reload(&self, new: &Config) {
        for r in self.iter() {
            let Some(rc) = new.registries.get(&r.kind) else {
                continue;
            };
            match read_secret(&rc.token_file) {
                Ok(token) => r.client.set_token(token),
                Err(e) => {
                    error!(registry = %r.kind, error = %e, "SIGHUP: registry token not reloaded")
                }
            }
            r.tuning.set(rc.rate_per_second, rc.max_batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_token(dir: &std::path::Path) -> Config {
        let token_file = dir.join("t.token");
        crate::config::write_secret(&token_file, "secret").unwrap();
        let mut config = Config::default();
        for r in config.registries.values_mut() {
            r.token_file = token_file.clone();
        }
        config
    }

    #[test]
    fn only_enabled_registries_get_a_client() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_with_token(dir.path());
        config
            .registries
            .get_mut(&RegistryKind::Teacher)
            .unwrap()
            .enabled = false;
        let registries = Registries::from_config(&config).unwrap();
        let kinds: Vec<_> = registries.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, vec![RegistryKind::Lifelong, RegistryKind::Enved]);
        assert!(registries.client(RegistryKind::Teacher).is_none());
    }

    #[test]
    fn a_missing_token_file_names_its_registry() {
        let mut config = Config::default();
        for r in config.registries.values_mut() {
            r.token_file = PathBuf::from("/nonexistent/hoursync.token");
        }
        let err = Registries::from_config(&config).unwrap_err();
        assert!(format!("{err:#}").contains("token_file"), "{err:#}");
    }

    #[test]
    fn a_reload_changes_rates_and_batch_sizes_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_with_token(dir.path());
        let registries = Registries::from_config(&config).unwrap();
        let shared = registries.clone();
        let lifelong = config.registries.get_mut(&RegistryKind::Lifelong).unwrap();
        lifelong.rate_per_second = 4;
        lifelong.max_batch = 7;
        registries.reload(&config);
        let lifelong = shared.get(RegistryKind::Lifelong).unwrap();
        // (1000 ms + the 10 ms margin) / 4, rounded up
        assert_eq!(lifelong.interval_ms(), 253);
        assert_eq!(lifelong.tuning.max_batch.load(Ordering::Relaxed), 7);
    }
}
