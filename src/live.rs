//! What the daemon last saw of each registry and of its own periodic work,
//! readable by the support console's overview.
//!
//! These values are gauges the daemon sets as things happen (registry up,
//! token refused, last successful scan and reconcile), not database state,
//! so there is no query to run again for the page. The Prometheus recorder
//! keeps them but cannot be read back; the recording functions of
//! [`crate::metrics`] therefore also write them here, from the same call,
//! so the page and `/metrics` cannot disagree. Process-wide like the
//! recorder itself: one daemon per process.

use crate::domain::RegistryKind;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

/// A registry's last known answer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLive {
    /// `None` until the daemon made a request to it.
    pub up: Option<bool>,
    /// The registry refused our token (401/403) on the last request.
    pub token_refused: bool,
}

/// 0 unknown, 1 up, 2 down.
static UP: [AtomicU8; 3] = [AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0)];
static REFUSED: [AtomicU8; 3] = [AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0)];
/// Unix milliseconds; 0 never.
static LAST_SCAN_MS: AtomicI64 = AtomicI64::new(0);
static LAST_RECONCILE_MS: AtomicI64 = AtomicI64::new(0);

fn slot(registry: &str) -> Option<usize> {
    RegistryKind::ALL
        .into_iter()
        .position(|r| r.as_str() == registry)
}

pub(crate) fn set_up(registry: &str, up: bool) {
    if let Some(i) = slot(registry) {
        UP[i].store(if up { 1 } else { 2 }, Ordering::Relaxed);
    }
}

pub(crate) fn set_token_refused(registry: &str, refused: bool) {
    if let Some(i) = slot(registry) {
        REFUSED[i].store(u8::from(refused), Ordering::Relaxed);
    }
}

pub(crate) fn set_last_scan(unix_seconds: f64) {
    LAST_SCAN_MS.store((unix_seconds * 1000.0) as i64, Ordering::Relaxed);
}

pub(crate) fn set_last_reconcile(unix_seconds: f64) {
    LAST_RECONCILE_MS.store((unix_seconds * 1000.0) as i64, Ordering::Relaxed);
}

/// What the daemon last saw of `registry`.
pub fn registry(registry: RegistryKind) -> RegistryLive {
    let i = slot(registry.as_str()).expect("every registry has a slot");
    RegistryLive {
        up: match UP[i].load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        },
        token_refused: REFUSED[i].load(Ordering::Relaxed) == 1,
    }
}

/// When the last scan succeeded (Unix ms), if one did in this process.
pub fn last_scan_ms() -> Option<i64> {
    Some(LAST_SCAN_MS.load(Ordering::Relaxed)).filter(|t| *t > 0)
}

/// When the last reconcile finished (Unix ms), if one did in this process.
pub fn last_reconcile_ms() -> Option<i64> {
    Some(LAST_RECONCILE_MS.load(Ordering::Relaxed)).filter(|t| *t > 0)
}
