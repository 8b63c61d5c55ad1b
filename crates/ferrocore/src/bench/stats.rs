//! The shared clock, process sampling from `/proc`, and the summary arithmetic.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on the bench's monotonic clock, shared by every task of the process.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// The tokio instant of a bench-clock time.
pub fn instant_at(ns: u64) -> tokio::time::Instant {
    tokio::time::Instant::from_std(epoch() + Duration::from_nanos(ns))
}

/// Nanoseconds since the Unix epoch (only to seed a run tag).
pub fn wall_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A latency histogram in nanoseconds (1 µs to 1 h, 3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3).expect("static histogram bounds")
}

/// Percentiles of a histogram in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Message counts of a throughput run, over the measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Messages whose send timestamp falls in the window (fully written to the socket).
    pub sent_window: u64,
    /// Messages read by subscribers during the window (by receive time).
    pub delivered_window: u64,
    /// Deliveries of messages sent in the window, read by the end of the drain.
    pub delivered_of_window_sends: u64,
    /// Subscribers that get each published message.
    pub fanout: u64,
    pub window: Duration,
}

impl Counts {
    pub fn sent_per_s(&self) -> f64 {
        per_s(self.sent_window, self.window)
    }

    pub fn delivered_per_s(&self) -> f64 {
        per_s(self.delivered_window, self.window)
    }

    /// Deliveries owed for the messages sent in the window.
    pub fn expected(&self) -> u64 {
        self.sent_window.saturating_mul(self.fanout)
    }

    /// Share of the offered deliveries that did not reach a subscriber during the window: the
    /// delivered rate against the sent rate times fan-out. In a saturated steady state this is
    /// what the broker discarded.
    pub fn loss_pct(&self) -> f64 {
        pct_missing(self.delivered_window, self.expected())
    }

    /// Share of the window's messages still unreceived when the drain ended (includes what sat
    /// in socket buffers; equals `loss_pct` whenever latency is below the drain time).
    pub fn unreceived_pct(&self) -> f64 {
        pct_missing(self.delivered_of_window_sends, self.expected())
    }
}

fn per_s(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

fn pct_missing(got: u64, expected: u64) -> f64 {
    if expected == 0 || got >= expected {
        0.0
    } else {
        100.0 * (expected - got) as f64 / expected as f64
    }
}

/// CPU time of a process, from `/proc/<pid>/stat` (all threads).
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    ticks: u64,
    at: Instant,
}

pub fn cpu_sample(pid: Option<u32>) -> Option<CpuSample> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let ticks = parse_stat_cpu_ticks(&text)?;
    Some(CpuSample {
        ticks,
        at: Instant::now(),
    })
}

/// CPU use between two samples in percent of one core.
pub fn cpu_pct(a: Option<CpuSample>, b: Option<CpuSample>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return None;
    }
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Some(100.0 * b.ticks.saturating_sub(a.ticks) as f64 / hz / wall)
}

/// utime + stime from the text of `/proc/<pid>/stat`. The command name may hold spaces and
/// parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the comm: state(3) ppid(4) ... utime(14) stime(15), so utime is the 12th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size in KB (`VmRSS`, what `ps -o rss=` prints).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vmrss_kb(&text)
}

pub fn parse_vmrss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Kernel memory held by TCP sockets in KB (`/proc/net/sockstat`, `TCP: ... mem <pages>`).
pub fn tcp_sockstat_kb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let pages = parse_sockstat_tcp_mem_pages(&text)?;
    Some(pages * rustix::param::page_size() as u64 / 1024)
}

pub fn parse_sockstat_tcp_mem_pages(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut it = line.split_ascii_whitespace();
    while let Some(k) = it.next() {
        if k == "mem" {
            return it.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_ms() {
        let mut h = latency_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000).expect("in range"); // 1..=1000 ms
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p90_ms - 900.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.p999_ms - 999.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
        assert_eq!(
            Percentiles::of(&latency_histogram()),
            Percentiles::default()
        );
    }

    #[test]
    fn sub_millisecond_resolution() {
        let mut h = latency_histogram();
        h.saturating_record(332_000);
        let p = Percentiles::of(&h);
        assert!((p.p50_ms - 0.332).abs() < 0.001, "{p:?}");
    }

    #[test]
    fn rates_and_loss() {
        let c = Counts {
            sent_window: 3_540_000,
            delivered_window: 1_842_750,
            delivered_of_window_sends: 1_000_000,
            fanout: 1,
            window: Duration::from_secs(10),
        };
        assert_eq!(c.sent_per_s(), 354_000.0);
        assert_eq!(c.delivered_per_s(), 184_275.0);
        assert!((c.loss_pct() - 47.94).abs() < 0.01);
        assert!(c.unreceived_pct() > c.loss_pct());

        let fanout = Counts {
            sent_window: 1_000,
            delivered_window: 500_000,
            delivered_of_window_sends: 500_000,
            fanout: 500,
            window: Duration::from_secs(1),
        };
        assert_eq!(fanout.loss_pct(), 0.0);
        // More delivered than expected (messages of the warm-up read in the window) is no loss.
        let over = Counts {
            delivered_window: 600_000,
            ..fanout
        };
        assert_eq!(over.loss_pct(), 0.0);
        assert_eq!(Counts::default().loss_pct(), 0.0);
    }

    #[test]
    fn parses_proc_stat() {
        let stat = "2903 (mosq (x) uitto) S 1 2903 2903 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 1 0 100 12345678 1000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(175));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        let me = std::fs::read_to_string("/proc/self/stat").expect("procfs");
        assert!(parse_stat_cpu_ticks(&me).is_some());
    }

    #[test]
    fn parses_rss_and_sockstat() {
        let status = "Name:\tmosquitto\nVmPeak:\t  20000 kB\nVmRSS:\t   9964 kB\nThreads:\t1\n";
        assert_eq!(parse_vmrss_kb(status), Some(9964));
        let sockstat =
            "sockets: used 300\nTCP: inuse 20 orphan 0 tw 3 alloc 25 mem 7\nUDP: inuse 2 mem 1\n";
        assert_eq!(parse_sockstat_tcp_mem_pages(sockstat), Some(7));
        assert!(rss_kb(std::process::id()).is_some());
    }
}
