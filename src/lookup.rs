//! One lookup of a record at its registry (`GET /v1/records/{key}`), made
//! the way every request to a registry is made: it takes a slot of the
//! registry's pace shared by every daemon, a 429 holds every daemon's next
//! request to that registry and the lookup is tried again, and it shows in
//! the request histogram and `registry_up` like an upload. Reconcile and a
//! verifying resync both look up through here, so a night's reconcile or a
//! support person's `resync --verify` can not outrun `rate_per_second`.

use crate::clock::Clock;
use crate::registries::Registry;
use crate::registry::{Credited, RegistryClient, SendError};
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
        history.push(attempt(of, at, request_id, &result));
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

/// Looks every one of `ofs` up at `registry`, the answers in the order of
/// `ofs`, each try pushed onto `history`. At a registry with a pace of its
/// own, one after another through [`paced_lookup`]. At one without
/// (`rate_per_second` 0), all at once after one read of the hold: a
/// database round trip per lookup would otherwise bound the lookups, not
/// the registry. A burst's lookups answered 429 hold every daemon and are
/// tried again through [`paced_lookup`].
pub async fn lookups(
    store: &dyn Store,
    clock: &dyn Clock,
    registry: &Registry,
    ofs: &[LookupOf<'_>],
    history: &mut Vec<Attempt>,
) -> Result<Vec<Result<Option<Credited>, SendError>>, StoreError> {
    let mut answers = Vec::with_capacity(ofs.len());
    if registry.interval_ms() != 0 || ofs.len() < 2 {
        for of in ofs {
            answers.push(paced_lookup(store, clock, registry, of, history).await?);
        }
        return Ok(answers);
    }
    crate::dispatch::wait_for_slot(store, clock, registry.kind, 0).await?;
    let mut requests = tokio::task::JoinSet::new();
    for (i, of) in ofs.iter().enumerate() {
        let client = registry.client.clone();
        let key = of.idempotency_key.to_string();
        let kind = registry.kind;
        requests.spawn(async move {
            let lookup = async |c: &RegistryClient, id: &str| c.lookup(&key, id).await;
            let (request_id, result) =
                crate::dispatch::observed_request(kind, &client, lookup).await;
            (i, request_id, result)
        });
    }
    let mut sent = requests.join_all().await;
    sent.sort_by_key(|(i, _, _)| *i);
    let at = clock.now_ms();
    for ((_, request_id, result), of) in sent.into_iter().zip(ofs) {
        history.push(attempt(of, at, request_id, &result));
        match result {
            Err(SendError::RateLimited { retry_after }) => {
                let until = crate::dispatch::hold_until(clock.now_ms(), retry_after);
                store.hold_registry(registry.kind, until).await?;
                answers.push(paced_lookup(store, clock, registry, of, history).await?);
            }
            other => answers.push(other),
        }
    }
    Ok(answers)
}

/// The history line of one lookup.
fn attempt(
    of: &LookupOf<'_>,
    at: i64,
    request_id: String,
    result: &Result<Option<Credited>, SendError>,
) -> Attempt {
    let (http_status, word, error) = match result {
        Ok(Some(_)) => (Some(200), "found", None),
        Ok(None) => (Some(404), "not_found", None),
        Err(e) => (e.http_status(), e.history_result(), Some(e.to_string())),
    };
    Attempt {
        delivery_id: of.delivery_id,
        at,
        revision: of.revision,
        action: Action::Lookup.as_str().into(),
        request_id,
        http_status,
        result: word.into(),
        error,
    }
}
