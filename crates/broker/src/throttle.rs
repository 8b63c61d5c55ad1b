//! Pacing of what one client sends (AWS mode): token buckets that let a second's worth through
//! at once and then say how long to stop reading. Excess traffic is delayed, never dropped.

use std::time::Duration;

use tokio::time::Instant;

use crate::AwsQuotas;

#[derive(Debug)]
struct TokenBucket {
    /// Tokens per second, and the most that accumulate (one second's worth).
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes `n` tokens, going into debt if need be; returns how long until the debt is paid.
    fn take(&mut self, n: f64, now: Instant) -> Duration {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        self.tokens -= n;
        if self.tokens >= 0.0 || self.rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The inbound quotas of one connection.
#[derive(Debug)]
pub(crate) struct Throttle {
    publishes: TokenBucket,
    bytes: TokenBucket,
}

impl Throttle {
    pub fn new(quotas: &AwsQuotas, now: Instant) -> Throttle {
        Throttle {
            publishes: TokenBucket::new(f64::from(quotas.publishes_per_second), now),
            bytes: TokenBucket::new(f64::from(quotas.inbound_bytes_per_second), now),
        }
    }

    /// Accounts for a chunk read from the client; returns how long to pause reading.
    pub fn charge(&mut self, publishes: u32, bytes: usize, now: Instant) -> Duration {
        let for_publishes = self.publishes.take(f64::from(publishes), now);
        let for_bytes = self.bytes.take(bytes as f64, now);
        for_publishes.max(for_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AWS_QUOTAS;

    #[test]
    fn a_seconds_worth_passes_then_excess_waits() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&AWS_QUOTAS, t0);
        assert_eq!(t.charge(100, 1000, t0), Duration::ZERO);
        // 50 more publishes: half a second of debt at 100/s.
        assert_eq!(t.charge(50, 0, t0), Duration::from_millis(500));
        // After the pause the debt is paid and a trickle passes.
        let t1 = t0 + Duration::from_millis(510);
        assert_eq!(t.charge(1, 0, t1), Duration::ZERO);
    }

    #[test]
    fn bytes_are_paced_too() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&AWS_QUOTAS, t0);
        let wait = t.charge(1, 2 * 512 * 1024, t0);
        assert_eq!(wait, Duration::from_secs(1));
    }

    #[test]
    fn idle_time_refills_at_most_one_second() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&AWS_QUOTAS, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(t.charge(100, 0, later), Duration::ZERO);
        assert!(
            t.charge(100, 0, later) > Duration::ZERO,
            "no hour-long burst"
        );
    }
}
