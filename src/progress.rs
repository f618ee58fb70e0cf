//! Whether the daemon's work loops are making progress, for `/readyz`.
//!
//! A daemon whose loops died (a task that panicked) or hang inside one turn
//! still answers `/healthz` and still holds its leases' names, yet delivers
//! nothing: that must show as not ready. Each loop holds a [`Beat`]: it marks
//! a turn busy and idle again, and dropping it (the loop returning, or its
//! task unwinding from a panic) marks the loop stopped. A loop is stalled
//! when it stopped, or when one turn has been busy longer than its bound.
//!
//! Time here is the process's own monotonic time, not the `Clock`: the
//! question is how long this process has been stuck, whatever the
//! business clock says.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The work loops of one daemon.
#[derive(Debug)]
pub struct Progress {
    epoch: Instant,
    loops: Mutex<Vec<Arc<Loop>>>,
}

#[derive(Debug)]
struct Loop {
    name: String,
    /// A turn busy longer than this is stuck; `None`: turns may take any
    /// time (a scan of a large backlog, a night's reconcile).
    bound: Option<Duration>,
    /// Milliseconds since the epoch, plus one, at which the current turn
    /// started; 0 between turns.
    busy_since: AtomicU64,
    stopped: AtomicBool,
}

/// A loop's handle: its turns, and (when dropped) its end.
#[derive(Debug)]
pub struct Beat {
    epoch: Instant,
    inner: Arc<Loop>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            loops: Mutex::new(Vec::new()),
        }
    }
}

impl Progress {
    /// Registers a loop named `name` whose turns must end within `bound`.
    pub fn register(&self, name: impl Into<String>, bound: Option<Duration>) -> Beat {
        let inner = Arc::new(Loop {
            name: name.into(),
            bound,
            busy_since: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        self.loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(inner.clone());
        Beat {
            epoch: self.epoch,
            inner,
        }
    }

    /// What keeps the daemon from making progress, one line per loop; empty
    /// when every loop runs and no turn is past its bound.
    pub fn stalled(&self) -> Vec<String> {
        self.stalled_at(Instant::now())
    }

    fn stalled_at(&self, now: Instant) -> Vec<String> {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let loops = self
            .loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loops
            .iter()
            .filter_map(|l| {
                if l.stopped.load(Ordering::SeqCst) {
                    return Some(format!("{}: stopped", l.name));
                }
                let since = l.busy_since.load(Ordering::SeqCst);
                let bound = l.bound?;
                let busy = Duration::from_millis(now_ms.saturating_sub(since.checked_sub(1)?));
                (busy > bound).then(|| {
                    format!(
                        "{}: one turn busy for {} s (bound {} s)",
                        l.name,
                        busy.as_secs(),
                        bound.as_secs()
                    )
                })
            })
            .collect()
    }
}

impl Beat {
    /// A turn starts.
    pub fn busy(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.inner.busy_since.store(ms + 1, Ordering::SeqCst);
    }

    /// The turn ended; the loop waits for its next one.
    pub fn idle(&self) {
        self.inner.busy_since.store(0, Ordering::SeqCst);
    }
}

impl Drop for Beat {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_loops_within_their_bounds_are_not_stalled() {
        let p = Progress::default();
        let a = p.register("dispatch lifelong", Some(Duration::from_secs(10)));
        let _b = p.register("scan", None);
        a.busy();
        assert!(p.stalled().is_empty());
        a.idle();
        assert!(
            p.stalled_at(Instant::now() + Duration::from_secs(3600))
                .is_empty()
        );
    }

    #[test]
    fn a_turn_past_its_bound_is_stalled_until_it_ends() {
        let p = Progress::default();
        let a = p.register("dispatch lifelong", Some(Duration::from_secs(10)));
        let scan = p.register("scan", None);
        a.busy();
        scan.busy();
        let later = Instant::now() + Duration::from_secs(11);
        assert_eq!(
            p.stalled_at(later),
            ["dispatch lifelong: one turn busy for 11 s (bound 10 s)"]
        );
        a.idle();
        assert!(p.stalled_at(later).is_empty());
    }

    #[test]
    fn a_loop_whose_task_panicked_is_stopped() {
        let p = Arc::new(Progress::default());
        let beat = p.register("dispatch teacher", None);
        let joined = std::thread::spawn(move || {
            beat.busy();
            panic!("a bug in a turn");
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(p.stalled(), ["dispatch teacher: stopped"]);
    }
}
