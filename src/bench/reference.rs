//! The reference line: a bare claim → batched POST → mark loop over the
//! records the daemon just drained (a copy of them, as never sent), to the
//! same simulator, in this process. What a drain costs with nothing but
//! its three statements and its request: the daemon's drain is judged
//! against it (PERFORMANCE.md, "The references").

use super::{fmt_int, verdict};
use crate::domain::RegistryKind;
use crate::registries::Registries;
use crate::registry::RecordStatus;
use crate::registry::adapter::{batch_body, wire_record};
use crate::store::bench_reference::{self, ReferenceTable};
use anyhow::Context;
use serde_json::json;
use std::time::Instant;

/// Records per claim: the registry's batch limit (REGISTRY-API.md).
const BATCH: usize = 500;
/// The daemon's drain should reach this share of the reference.
pub(super) const GOAL_RATIO: f64 = 0.7;

pub(super) struct Reference {
    pub records: u64,
    pub secs: f64,
    pub requests: u64,
}

impl Reference {
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.secs.max(1e-9)
    }

    /// Prints the line next to the daemon's figure and adds its keys.
    pub fn report(&self, drain_rate: f64, figures: &mut serde_json::Value) {
        let ratio = drain_rate / self.rate().max(1e-9);
        println!(
            "\nreference: a bare claim {BATCH} → one batched POST → mark delivered loop, one lane per registry, on a copy of the drained rows: {} records in {:.2} s = {} records/s ({} requests); the daemon's drain is {:.2}× of it (goal ≥ {GOAL_RATIO} {})",
            fmt_int(self.records),
            self.secs,
            fmt_int(self.rate() as u64),
            fmt_int(self.requests),
            ratio,
            verdict(ratio >= GOAL_RATIO)
        );
        figures["reference_records_per_s"] = json!(self.rate().round());
        figures["drain_to_reference"] = json!((ratio * 100.0).round() / 100.0);
    }
}

/// Runs the loop until the copy has nothing due; the copy's setup and
/// removal are not timed.
pub(super) async fn run(url: &str, registries: &Registries) -> anyhow::Result<Reference> {
    let lanes = registries.iter().count().max(1) as u32;
    let table = bench_reference::prepare(url, lanes)
        .await
        .context("copying the drained rows for the reference loop")?;
    let t = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for r in registries.iter() {
        runs.spawn(lane(table.clone(), r.kind, r.client.clone()));
    }
    let results = runs.join_all().await;
    let secs = t.elapsed().as_secs_f64();
    table.drop_table().await?;
    let mut reference = Reference {
        records: 0,
        secs,
        requests: 0,
    };
    for r in results {
        let (records, requests) = r?;
        reference.records += records;
        reference.requests += requests;
    }
    Ok(reference)
}

/// One registry's loop: (records marked delivered, requests).
async fn lane(
    table: ReferenceTable,
    kind: RegistryKind,
    client: std::sync::Arc<crate::registry::RegistryClient>,
) -> anyhow::Result<(u64, u64)> {
    let owner = format!("bench-reference-{kind}");
    let (mut records, mut requests) = (0, 0);
    loop {
        let now = now_ms();
        let claimed = table.claim(kind, &owner, now, now + 60_000, BATCH).await?;
        if claimed.is_empty() {
            return Ok((records, requests));
        }
        let wires: Vec<String> = claimed
            .iter()
            .map(|c| {
                wire_record(
                    c.record.as_ref().expect("a copied upload has its facts"),
                    &c.idempotency_key,
                )
            })
            .collect();
        let request_id = uuid::Uuid::new_v4().to_string();
        let results = client
            .post_batch(batch_body(wires.iter().map(String::as_str)), &request_id)
            .await
            .map_err(|e| anyhow::anyhow!("reference POST to {kind}: {e}"))?;
        requests += 1;
        let delivered: Vec<(i64, String, i64)> = claimed
            .iter()
            .zip(results)
            .filter(|(c, r)| {
                r.idempotency_key == c.idempotency_key
                    && matches!(r.status, RecordStatus::Accepted | RecordStatus::Duplicate)
            })
            .map(|(c, r)| {
                (
                    c.id,
                    r.receipt_id.unwrap_or_default(),
                    i64::from(c.hours_tenths),
                )
            })
            .collect();
        anyhow::ensure!(
            delivered.len() == claimed.len(),
            "the simulator did not credit every record of a reference batch"
        );
        records += table.mark_delivered(&delivered, now_ms()).await?;
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
