//! A circuit breaker per authorizer: after `threshold` consecutive failures it opens and
//! refuses calls for `cool_down`; then it lets calls through again (half-open), and the first
//! result decides: a success closes it, a failure opens it for another cool-down.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct Breaker {
    threshold: u32,
    cool_down: Duration,
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub(super) fn new(threshold: u32, cool_down: Duration) -> Breaker {
        Breaker {
            // A threshold of 0 would never let a call through.
            threshold: threshold.max(1),
            cool_down,
            consecutive_failures: 0,
            open_until: None,
        }
    }

    /// Whether a call may go out at `now`; when not, the number of failures that opened it.
    pub(super) fn admit(&self, now: Instant) -> Result<(), u32> {
        match self.open_until {
            Some(until) if now < until => Err(self.consecutive_failures),
            _ => Ok(()),
        }
    }

    /// Records the result of a call that ended at `now`.
    pub(super) fn record(&mut self, failed: bool, now: Instant) {
        if !failed {
            self.consecutive_failures = 0;
            self.open_until = None;
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= self.threshold {
            self.open_until = Some(now + self.cool_down);
        }
    }
}
