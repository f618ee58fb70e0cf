//! The durable retry policy, a pure function: when the next attempt of a
//! record may happen, given how many attempts it has had. The answer is
//! stored in the row, so a restart keeps the schedule.

use crate::config::RetryConfig;
use std::time::Duration;

/// Delay before attempt `attempts + 1`, after `attempts` failures (≥ 1):
/// exponential from `base_ms`, capped at `max_ms`, with jitter spreading it
/// over the upper half so that records failed together do not return
/// together; never shorter than the registry's `Retry-After`.
pub fn next_delay(
    cfg: &RetryConfig,
    attempts: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exp = attempts.saturating_sub(1).min(40);
    let ceiling = cfg.base_ms.saturating_mul(1u64 << exp).min(cfg.max_ms);
    let jitter = jitter.clamp(0.0, 1.0);
    let ms = ceiling / 2 + ((ceiling - ceiling / 2) as f64 * jitter) as u64;
    Duration::from_millis(ms).max(retry_after.unwrap_or_default())
}

/// Whether a record that has now failed `attempts` times should stop.
pub fn give_up(cfg: &RetryConfig, attempts: u32) -> bool {
    attempts >= cfg.max_attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RetryConfig {
        RetryConfig {
            base_ms: 1_000,
            max_ms: 60_000,
            max_attempts: 5,
        }
    }

    #[test]
    fn delays_grow_exponentially_within_their_jitter_band_and_stop_at_the_cap() {
        for (attempt, ceiling) in [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (7, 60_000),
            (30, 60_000),
        ] {
            let lo = next_delay(&cfg(), attempt, None, 0.0).as_millis() as u64;
            let hi = next_delay(&cfg(), attempt, None, 1.0).as_millis() as u64;
            assert_eq!((lo, hi), (ceiling / 2, ceiling), "attempt {attempt}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let d = next_delay(&cfg(), 1, Some(Duration::from_secs(30)), 0.5);
        assert_eq!(d, Duration::from_secs(30));
    }

    #[test]
    fn gives_up_after_max_attempts() {
        assert!(!give_up(&cfg(), 4));
        assert!(give_up(&cfg(), 5));
    }
}
