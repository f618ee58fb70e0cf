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

/// One refresh of every gauge.
pub async fn sweep(
    store: &SharedStore,
    clock: &SharedClock,
    at_risk_ms: i64,
) -> Result<(), StoreError> {
    let now = clock.now_ms();
    let counts = store.delivery_counts().await?;
    let sla = store
        .sla_counts(now, at_risk_ms, SlaFilter::default())
        .await?;
    let oldest = store.oldest_undelivered().await?;
    for registry in RegistryKind::ALL {
        let r = registry.as_str();
        let of = |state: State| {
            counts
                .iter()
                .filter(|c| c.registry == registry && c.state == state)
                .map(|c| c.count)
                .sum::<i64>()
        };
        for state in [
            State::Pending,
            State::Retrying,
            State::Failed,
            State::Rejected,
            State::Correcting,
            State::Withdrawing,
        ] {
            crate::metrics::backlog(r, state.as_str(), of(state).max(0) as u64);
        }
        for reason in Reason::ALL {
            let n: i64 = counts
                .iter()
                .filter(|c| {
                    c.registry == registry
                        && c.state == State::Ineligible
                        && c.reason.as_deref() == Some(reason.as_str())
                })
                .map(|c| c.count)
                .sum();
            crate::metrics::ineligible(r, reason.as_str(), n.max(0) as u64);
        }
        let sla_of = |s: &str| {
            sla.iter()
                .filter(|c| c.registry == registry && c.sla == s)
                .map(|c| c.count)
                .sum::<i64>()
                .max(0) as u64
        };
        crate::metrics::sla(r, sla_of("at_risk"), sla_of("breached"));
        let age = oldest
            .iter()
            .find(|(reg, _)| *reg == registry)
            .map_or(0, |(_, since)| (now - since).max(0));
        crate::metrics::oldest_undelivered(r, age as f64 / 1000.0);
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
