//! Where the scan's time goes, stage by stage, summed over every pass since
//! the last [`take`]: `hoursync bench` reads and prints it. The scan itself
//! never reads it; the sums are process-wide, so passes running at the same
//! time (tests) add into the same figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A stage of a scan pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The change window and the changed (and flagged) completions.
    Find,
    /// The office calendar, for the due times.
    Calendar,
    /// The facts of a chunk's completions.
    Facts,
    /// The chunk's existing delivery rows (locked, on PostgreSQL).
    Existing,
    /// The decisions and their due times, in Rust.
    Plan,
    /// Writing the decisions.
    Write,
    /// Committing the chunk.
    Commit,
    /// The cursor, and the statistics refreshed after a large pass.
    Finish,
}

const STAGES: [Stage; 8] = [
    Stage::Find,
    Stage::Calendar,
    Stage::Facts,
    Stage::Existing,
    Stage::Plan,
    Stage::Write,
    Stage::Commit,
    Stage::Finish,
];

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Self::Find => "find",
            Self::Calendar => "calendar",
            Self::Facts => "facts",
            Self::Existing => "existing",
            Self::Plan => "plan",
            Self::Write => "write",
            Self::Commit => "commit",
            Self::Finish => "finish",
        }
    }
}

static NANOS: [AtomicU64; STAGES.len()] = [const { AtomicU64::new(0) }; STAGES.len()];

/// Adds the time since `started` to `stage`, and returns now, where the
/// next stage starts.
pub fn lap(stage: Stage, started: Instant) -> Instant {
    let now = Instant::now();
    let nanos = u64::try_from((now - started).as_nanos()).unwrap_or(u64::MAX);
    NANOS[stage as usize].fetch_add(nanos, Ordering::Relaxed);
    now
}

/// The seconds of each stage since the last call, in pass order; starts
/// the sums over.
pub fn take() -> Vec<(&'static str, f64)> {
    STAGES
        .iter()
        .map(|&s| {
            let nanos = NANOS[s as usize].swap(0, Ordering::Relaxed);
            (s.name(), nanos as f64 / 1e9)
        })
        .collect()
}
