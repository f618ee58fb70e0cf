//! Talking to the registries: the HTTP client of REGISTRY-API.md, its
//! errors (typed by whether a retry can help), the retry policy and one
//! adapter per registry.

pub mod adapter;
mod client;
pub mod retry;

pub use client::{
    CorrectAnswer, Credited, RecordResult, RecordStatus, RegistryClient, SendError, WithdrawAnswer,
};

/// A client per enabled registry, with its rate limit (requests/s).
pub fn clients_from_config(
    config: &crate::config::Config,
) -> anyhow::Result<(
    crate::resync::Clients,
    std::collections::HashMap<crate::domain::RegistryKind, u32>,
)> {
    let mut clients = crate::resync::Clients::new();
    let mut rates = std::collections::HashMap::new();
    for (kind, rc) in config.registries.iter().filter(|(_, r)| r.enabled) {
        let token = crate::config::read_secret(&rc.token_file)?;
        let timeout = std::time::Duration::from_millis(rc.timeout_ms);
        clients.insert(
            *kind,
            std::sync::Arc::new(RegistryClient::new(*kind, &rc.base_url, token, timeout)?),
        );
        rates.insert(*kind, rc.rate_per_second);
    }
    Ok((clients, rates))
}
