//! Fixed-rate pacing: a total rate split evenly across publishers with staggered phases.
//!
//! Publisher `i` of `n` sends its `k`-th message (0-based) at
//! `start + i * 1e9 / rate + ceil(k * n * 1e9 / rate)` nanoseconds, so the publishers together
//! produce one message every `1e9 / rate` ns and no two of them fire at the same instant.
//! All arithmetic is integer, so the schedule never drifts.

const NS: u128 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    /// Time of this publisher's first message (ns on the bench clock), phase included.
    start_ns: u64,
    /// Total messages per second across all publishers.
    total_rate: u64,
    /// Number of publishers sharing `total_rate`.
    publishers: u64,
}

impl Pacer {
    /// Pacer for publisher `index` of `publishers` sharing `total_rate` msg/s from `t0_ns`.
    pub fn new(t0_ns: u64, total_rate: u64, publishers: u64, index: u64) -> Pacer {
        assert!(total_rate > 0 && publishers > 0 && index < publishers);
        let phase = (index as u128 * NS / total_rate as u128) as u64;
        Pacer {
            start_ns: t0_ns + phase,
            total_rate,
            publishers,
        }
    }

    /// Scheduled send time of message `k` (0-based).
    pub fn due_at(&self, k: u64) -> u64 {
        let num = k as u128 * self.publishers as u128 * NS;
        let off = num.div_ceil(self.total_rate as u128);
        self.start_ns
            .saturating_add(u64::try_from(off).unwrap_or(u64::MAX))
    }

    /// How many messages are due by `now_ns` in total (sent or not).
    pub fn due_count(&self, now_ns: u64) -> u64 {
        if now_ns < self.start_ns {
            return 0;
        }
        let elapsed = (now_ns - self.start_ns) as u128;
        let n = elapsed * self.total_rate as u128 / (self.publishers as u128 * NS) + 1;
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Of `room` messages a sender that has produced `produced` could send at `now`, how many
    /// are due; and when none is, the time the next one is due.
    pub fn limit(&self, room: usize, produced: u64, now_ns: u64) -> (usize, Option<u64>) {
        let due = self.due_count(now_ns).saturating_sub(produced);
        let n = room.min(usize::try_from(due).unwrap_or(usize::MAX));
        (n, (n == 0 && room > 0).then(|| self.due_at(produced)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_publisher_evenly_spaced() {
        let p = Pacer::new(1_000, 1_000, 1, 0);
        assert_eq!(p.due_at(0), 1_000);
        assert_eq!(p.due_at(1), 1_000 + 1_000_000);
        assert_eq!(p.due_at(10), 1_000 + 10_000_000);
        assert_eq!(p.due_count(999), 0);
        assert_eq!(p.due_count(1_000), 1);
        assert_eq!(p.due_count(1_000 + 999_999), 1);
        assert_eq!(p.due_count(1_000 + 1_000_000), 2);
    }

    #[test]
    fn due_count_and_due_at_agree() {
        let p = Pacer::new(5, 7_777, 3, 2);
        for k in 0..10_000 {
            let t = p.due_at(k);
            assert_eq!(p.due_count(t), k + 1, "k={k}");
            assert_eq!(p.due_count(t - 1), k, "k={k}");
        }
    }

    #[test]
    fn limit_to_what_is_due() {
        let p = Pacer::new(0, 1_000, 1, 0); // one message per ms from 0
        assert_eq!(p.limit(32, 0, 0), (1, None));
        assert_eq!(p.limit(32, 1, 500_000), (0, Some(1_000_000)));
        assert_eq!(
            p.limit(32, 1, 5_000_000),
            (5, None),
            "five due, behind schedule"
        );
        assert_eq!(p.limit(2, 1, 5_000_000), (2, None), "bounded by room");
        assert_eq!(
            p.limit(0, 1, 500_000),
            (0, None),
            "no room: nothing to wait for"
        );
    }

    #[test]
    fn total_rate_is_split_and_phases_staggered() {
        // 10k msg/s over 100 publishers: 100 msg/s each, phases 100 µs apart.
        let pacers: Vec<Pacer> = (0..100).map(|i| Pacer::new(0, 10_000, 100, i)).collect();
        let firsts: Vec<u64> = pacers.iter().map(|p| p.due_at(0)).collect();
        for (i, f) in firsts.iter().enumerate() {
            assert_eq!(*f, i as u64 * 100_000);
        }
        // Within any one second exactly 10,000 messages are due across all publishers.
        let one_s = 1_000_000_000u64;
        let total: u64 = pacers.iter().map(|p| p.due_count(one_s - 1)).sum();
        assert_eq!(total, 10_000);
        let total2: u64 = pacers.iter().map(|p| p.due_count(2 * one_s - 1)).sum();
        assert_eq!(total2, 20_000);
        // The aggregate stream is evenly spaced: merged send times are 100 µs apart.
        let mut all: Vec<u64> = pacers
            .iter()
            .flat_map(|p| (0..5).map(|k| p.due_at(k)))
            .collect();
        all.sort_unstable();
        for w in all.windows(2) {
            assert_eq!(w[1] - w[0], 100_000);
        }
    }

    #[test]
    fn fractional_per_publisher_rate() {
        // 100 msg/s over 3 publishers: 33.3 msg/s each, no drift over a long run.
        let pacers: Vec<Pacer> = (0..3).map(|i| Pacer::new(0, 100, 3, i)).collect();
        let t = 3_600 * 1_000_000_000u64 - 1;
        let total: u64 = pacers.iter().map(|p| p.due_count(t)).sum();
        assert_eq!(total, 360_000);
    }
}
