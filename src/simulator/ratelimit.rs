//! The registry's request limits and the measurement that checks ours.
//!
//! A [`TokenBucket`] per registry is what the simulator enforces (the
//! contract's "rate limit per token"); a [`RequestWindow`] per registry
//! measures the busiest second a client produced, so a test can assert that
//! our dispatcher stays under a registry's limit instead of merely surviving
//! its 429s; a [`RetryAfterWatch`] per registry counts the requests that
//! arrive while a `Retry-After` it announced is still running.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A token bucket: `capacity` tokens, refilled at `rate` tokens a second.
/// A rate of 0 means unlimited.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. A zero `burst` with a non-zero rate would refuse every
    /// request, so the capacity is at least one token.
    pub fn new(rate_per_second: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate_per_second),
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token, or answers how many whole seconds (at least 1) the
    /// caller must wait until one is available: the `Retry-After` value.
    pub fn take(&mut self, now: Instant) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / self.rate;
        // Truncation is fine: the value is a small positive number of seconds.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let secs = wait.ceil() as u64;
        Err(secs.max(1))
    }
}

/// The arrival times of the last second's requests, and the most ever seen
/// within one second. A sliding window, so a burst straddling two calendar
/// seconds is counted whole.
#[derive(Debug, Default)]
pub struct RequestWindow {
    recent: VecDeque<Instant>,
    max: u64,
}

const WINDOW: Duration = Duration::from_secs(1);

impl RequestWindow {
    /// Records one request arriving at `now`.
    pub fn record(&mut self, now: Instant) {
        while let Some(&first) = self.recent.front() {
            if now.saturating_duration_since(first) >= WINDOW {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.push_back(now);
        self.max = self.max.max(self.recent.len() as u64);
    }

    /// The most requests received within any one-second window so far.
    pub fn max(&self) -> u64 {
        self.max
    }
}

/// The `Retry-After` windows a registry announced, and the requests that
/// arrived inside one. A window opens when the 429 is decided, before its
/// response is written, so it is never later than the client can learn of
/// it: a request arriving inside it was sent too early, or was already on
/// its way when the 429 was answered (which no client can recall).
#[derive(Debug, Default)]
pub struct RetryAfterWatch {
    until: Option<Instant>,
}

impl RetryAfterWatch {
    /// A 429 answered at `now` with `Retry-After: retry_after`. Windows that
    /// overlap are one window, ending at the later end.
    pub fn announce(&mut self, now: Instant, retry_after: Duration) {
        let end = now + retry_after;
        self.until = Some(self.until.map_or(end, |until| until.max(end)));
    }

    /// Whether a request arriving at `now` falls inside an announced window.
    pub fn is_early(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1, 2, t0);
        assert_eq!(bucket.take(t0), Ok(()));
        assert_eq!(bucket.take(t0), Ok(()));
        assert_eq!(bucket.take(t0), Err(1));
        assert_eq!(bucket.take(t0 + Duration::from_millis(1_000)), Ok(()));
    }

    #[test]
    fn retry_after_is_at_least_a_second_and_rate_zero_is_unlimited() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1, 1, t0);
        assert_eq!(bucket.take(t0), Ok(()));
        assert_eq!(bucket.take(t0 + Duration::from_millis(100)), Err(1));
        let mut slow = TokenBucket::new(0, 1, t0);
        for _ in 0..100 {
            assert_eq!(slow.take(t0), Ok(()), "rate 0 is unlimited");
        }
    }

    #[test]
    fn a_request_is_early_only_inside_an_announced_retry_after() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut watch = RetryAfterWatch::default();
        assert!(!watch.is_early(t0), "nothing announced yet");
        watch.announce(t0, ms(1_000));
        assert!(watch.is_early(t0));
        assert!(watch.is_early(t0 + ms(999)));
        assert!(
            !watch.is_early(t0 + ms(1_000)),
            "the window ends when Retry-After has elapsed"
        );
        watch.announce(t0 + ms(500), ms(1_000));
        watch.announce(t0 + ms(600), ms(100));
        assert!(
            watch.is_early(t0 + ms(1_499)),
            "a shorter later window does not cut an earlier one short"
        );
        assert!(!watch.is_early(t0 + ms(1_500)));
    }

    #[test]
    fn the_window_counts_a_burst_across_a_second_boundary() {
        let t0 = Instant::now();
        let mut w = RequestWindow::default();
        for ms in [900, 950, 1_000, 1_050, 1_100] {
            w.record(t0 + Duration::from_millis(ms));
        }
        assert_eq!(w.max(), 5);
        w.record(t0 + Duration::from_millis(3_000));
        assert_eq!(w.max(), 5);
        let mut w = RequestWindow::default();
        w.record(t0);
        w.record(t0 + Duration::from_millis(1_000));
        assert_eq!(
            w.max(),
            1,
            "requests exactly one second apart are not in one window"
        );
    }
}
