//! The periodic sweep that turns database state into gauges: backlog by
//! state, ineligible records by reason, SLA at risk and breached, the
//! oldest undelivered record, how far the office calendar reaches. Every
//! daemon sweeps; the values describe the shared database, so dashboards
//! take `max` across instances.

use crate::clock::SharedClock;
use crate::domain::RegistryKind;
use crate::eligibility::Reason;
use crate::store::{SharedStore, SlaFilter, State, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the gauges are refreshed.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);

pub async fn gauge_loop(
    store: SharedStore,
    clock: SharedClock,
    at_risk_ms: i64,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = sweep(&store, &clock, at_risk_ms).await {
            tracing::warn!(error = %e, "could not refresh the gauges");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}

/// The states counted as backlog, in the order pages show them.
pub const BACKLOG_STATES: [State; 6] = [
    State::Pending,
    State::Retrying,
    State::Failed,
    State::Rejected,
    State::Correcting,
    State::Withdrawing,
];

/// One registry's gauges, as the sweep sets them and the console's
/// overview shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryFigures {
    pub registry: RegistryKind,
    /// Records by state, in the order of [`BACKLOG_STATES`].
    pub backlog: [i64; 6],
    pub at_risk: i64,
    pub breached: i64,
    /// Age of the oldest undelivered record, 0 when there is none.
    pub oldest_undelivered_ms: i64,
}

/// The database's side of the gauges, from one set of queries.
#[derive(Debug)]
pub struct Figures {
    pub now_ms: i64,
    pub counts: Vec<crate::store::StateCount>,
    pub registries: Vec<RegistryFigures>,
}

/// Reads what the gauges show: the sweep sets them from this, and the
/// console's overview shows it, so both give the same figures.
pub async fn figures(
    store: &SharedStore,
    clock: &SharedClock,
    at_risk_ms: i64,
) -> Result<Figures, StoreError> {
    let now = clock.now_ms();
    let counts = store.delivery_counts().await?;
    let sla = store
        .sla_counts(now, at_risk_ms, SlaFilter::default())
        .await?;
    let oldest = store.oldest_undelivered().await?;
    let registries = RegistryKind::ALL
        .into_iter()
        .map(|registry| {
            let of = |state: State| {
                counts
                    .iter()
                    .filter(|c| c.registry == registry && c.state == state)
                    .map(|c| c.count)
                    .sum::<i64>()
                    .max(0)
            };
            let sla_of = |s: &str| {
                sla.iter()
                    .filter(|c| c.registry == registry && c.sla == s)
                    .map(|c| c.count)
                    .sum::<i64>()
                    .max(0)
            };
            RegistryFigures {
                registry,
                backlog: BACKLOG_STATES.map(of),
                at_risk: sla_of("at_risk"),
                breached: sla_of("breached"),
                oldest_undelivered_ms: oldest
                    .iter()
                    .find(|(reg, _)| *reg == registry)
                    .map_or(0, |(_, since)| (now - since).max(0)),
            }
        })
        .collect();
    Ok(Figures {
        now_ms: now,
        counts,
        registries,
    })
}

/// One refresh of every gauge.
pub async fn sweep(
    store: &SharedStore,
    clock: &SharedClock,
    at_risk_ms: i64,
) -> Result<(), StoreError> {
    let f = figures(store, clock, at_risk_ms).await?;
    for g in &f.registries {
        let r = g.registry.as_str();
        for (state, n) in BACKLOG_STATES.iter().zip(g.backlog) {
            crate::metrics::backlog(r, state.as_str(), n as u64);
        }
        for reason in Reason::ALL {
            let n: i64 = f
                .counts
                .iter()
                .filter(|c| {
                    c.registry == g.registry
                        && c.state == State::Ineligible
                        && c.reason.as_deref() == Some(reason.as_str())
                })
                .map(|c| c.count)
                .sum();
            crate::metrics::ineligible(r, reason.as_str(), n.max(0) as u64);
        }
        crate::metrics::sla(r, g.at_risk as u64, g.breached as u64);
        crate::metrics::oldest_undelivered(r, g.oldest_undelivered_ms as f64 / 1000.0);
    }
    let calendar = crate::calendar::load(store.as_ref()).await?;
    if let Some(until) = calendar.covered_until() {
        let end = until.and_hms_opt(23, 59, 59).expect("valid time");
        let end = end
            .and_local_timezone(chrono_tz::Asia::Taipei)
            .earliest()
            .map_or(0, |t| t.timestamp());
        crate::metrics::calendar_covered_until(end as f64);
    }
    Ok(())
}
