//! One lookup of a record at its registry (`GET /v1/records/{key}`), made
//! the way every request to a registry is made: it takes a slot of the
//! registry's pace shared by every daemon, a 429 holds every daemon's next
//! request to that registry and the lookup is tried again, and it shows in
//! the request histogram and `registry_up` like an upload. Reconcile and a
//! verifying resync both look up through here, so a night's reconcile or a
//! support person's `resync --verify` can not outrun `rate_per_second`.

use crate::clock::Clock;
use crate::registries::Registry;
use crate::registry::{Credited, SendError};
use crate::store::{Action, Attempt, Store, StoreError};

/// How many times a lookup answered 429 is tried again before it counts as
/// an error.
pub const RATE_LIMIT_TRIES: u32 = 5;

/// What is looked up: a delivery's key under its revision.
pub struct LookupOf<'a> {
    pub delivery_id: i64,
    pub revision: i64,
    pub idempotency_key: &'a str,
}

/// Looks `of` up at `registry`, paced, each try pushed onto `history` (the
/// caller writes the history with its own changes). The outer error is the
/// database's (pacing lives there); the inner, the registry's answer after
/// the 429s were waited out.
pub async fn paced_lookup(
    store: &dyn Store,
    clock: &dyn Clock,
    registry: &Registry,
    of: &LookupOf<'_>,
    history: &mut Vec<Attempt>,
) -> Result<Result<Option<Credited>, SendError>, StoreError> {
    let mut tries = 0;
    loop {
        let (request_id, at, result) = crate::dispatch::paced_request(
            store,
            clock,
            registry.kind,
            registry.interval_ms(),
            &registry.client,
            async |client, id| client.lookup(of.idempotency_key, id).await,
        )
        .await?;
        let (http_status, word, error) = match &result {
            Ok(Some(_)) => (Some(200), "found", None),
            Ok(None) => (Some(404), "not_found", None),
            Err(e) => (e.http_status(), e.history_result(), Some(e.to_string())),
        };
        history.push(Attempt {
            delivery_id: of.delivery_id,
            at,
            revision: of.revision,
            action: Action::Lookup.as_str().into(),
            request_id,
            http_status,
            result: word.into(),
            error,
        });
        match result {
            Err(SendError::RateLimited { retry_after }) if tries < RATE_LIMIT_TRIES => {
                tries += 1;
                let until = crate::dispatch::hold_until(clock.now_ms(), retry_after);
                store.hold_registry(registry.kind, until).await?;
                tokio::time::sleep(retry_after).await;
            }
            other => return Ok(other),
        }
    }
}
