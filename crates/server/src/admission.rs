//! Admission control at accept: a global connection cap and a per-IP connect rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Open connections on all listeners together.
    pub max_connections: usize,
    /// New connections per second per IP address (IPv6: per /64); bursts up to the same
    /// number. 0: no limit. Loopback addresses are never limited.
    pub max_connect_rate_per_ip: u32,
    /// Time for the TLS handshake and the PROXY protocol header.
    pub tls_handshake_timeout: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections: 100_000,
            max_connect_rate_per_ip: 1000,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Shared by every listener of a server.
pub struct Admission {
    config: AdmissionConfig,
    connections: Arc<Semaphore>,
    rate: Option<Mutex<RateLimiter>>,
}

/// Held by a connection for its lifetime; dropping it frees a connection slot.
pub struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Admission {
        let max = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let rate = (config.max_connect_rate_per_ip > 0).then(|| {
            Mutex::new(RateLimiter::new(
                f64::from(config.max_connect_rate_per_ip),
                RATE_TABLE_CAPACITY,
            ))
        });
        Admission {
            config,
            connections: Arc::new(Semaphore::new(max)),
            rate,
        }
    }

    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// A slot for a new connection, or `None` when the server is full.
    pub fn try_admit(&self) -> Option<ConnectionSlot> {
        self.connections
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| ConnectionSlot { _permit: p })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.config
            .max_connections
            .saturating_sub(self.connections.available_permits())
    }

    /// Whether `ip` may open one more connection now (takes a token when it may). Loopback
    /// addresses are not limited: they are this host's own clients (tests, benchmarks, a
    /// local proxy that does not send the PROXY protocol, where every client would share one
    /// bucket).
    pub fn allow_ip(&self, ip: IpAddr) -> bool {
        if ip.is_loopback() || ip.to_canonical().is_loopback() {
            return true;
        }
        match &self.rate {
            None => true,
            Some(r) => r.lock().allow(ip, Instant::now()),
        }
    }
}

/// IP addresses tracked at once; beyond it idle entries are forgotten first.
const RATE_TABLE_CAPACITY: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per source address (IPv6 grouped by /64), in a table of bounded size.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    capacity: usize,
    buckets: HashMap<IpKey, Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

fn key_of(ip: IpAddr) -> IpKey {
    match ip {
        IpAddr::V4(v4) => IpKey::V4(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpKey::V4(v4.octets()),
            None => {
                let o = v6.octets();
                IpKey::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        },
    }
}

impl RateLimiter {
    /// `rate` tokens per second, bursts of up to `rate` (at least 1), at most `capacity`
    /// addresses tracked.
    pub fn new(rate: f64, capacity: usize) -> RateLimiter {
        RateLimiter {
            rate,
            burst: rate.max(1.0),
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Takes a token for `ip` at time `now` if one is available.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = key_of(ip);
        if let Some(b) = self.buckets.get_mut(&key) {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return true;
            }
            return false;
        }
        if self.buckets.len() >= self.capacity {
            // A full bucket is the same as no bucket: forget those first.
            let (rate, burst) = (self.rate, self.burst);
            self.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
            if self.buckets.len() >= self.capacity {
                // More addresses are busy than we track: start over rather than refuse new
                // addresses (the connection cap still holds).
                self.buckets.clear();
            }
        }
        self.buckets.insert(
            key,
            Bucket {
                tokens: self.burst - 1.0,
                last: now,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn bucket_refills() {
        let mut r = RateLimiter::new(2.0, 16);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let t0 = Instant::now();
        assert!(r.allow(ip, t0));
        assert!(r.allow(ip, t0));
        assert!(!r.allow(ip, t0));
        // Another address is not affected.
        assert!(r.allow(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), t0));
        assert!(r.allow(ip, t0 + Duration::from_millis(500)));
        assert!(!r.allow(ip, t0 + Duration::from_millis(500)));
    }

    #[test]
    fn ipv6_grouped_by_64_and_mapped_v4_as_v4() {
        let mut r = RateLimiter::new(1.0, 16);
        let t0 = Instant::now();
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let b: Ipv6Addr = "2001:db8:1:2::ffff".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        assert!(r.allow(IpAddr::V6(a), t0));
        assert!(!r.allow(IpAddr::V6(b), t0));
        let v4 = Ipv4Addr::new(192, 0, 2, 1);
        assert!(r.allow(IpAddr::V4(v4), t0));
        assert!(!r.allow(IpAddr::V6(v4.to_ipv6_mapped()), t0));
    }

    #[test]
    fn table_stays_bounded() {
        let mut r = RateLimiter::new(1.0, 100);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            r.allow(IpAddr::V4(Ipv4Addr::from(i)), t0);
            assert!(r.tracked() <= 100);
        }
        // Refilled entries are dropped first when the table is full.
        let later = t0 + Duration::from_secs(5);
        r.allow(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), later);
        assert_eq!(r.tracked(), 1);
    }

    #[test]
    fn loopback_is_not_rate_limited() {
        let a = Admission::new(AdmissionConfig {
            max_connect_rate_per_ip: 1,
            ..Default::default()
        });
        for _ in 0..10 {
            assert!(a.allow_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            assert!(a.allow_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
            assert!(a.allow_ip(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())));
        }
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert!(a.allow_ip(other));
        assert!(!a.allow_ip(other));
    }

    #[test]
    fn connection_cap() {
        let a = Admission::new(AdmissionConfig {
            max_connections: 2,
            ..Default::default()
        });
        let s1 = a.try_admit();
        let s2 = a.try_admit();
        assert!(s1.is_some() && s2.is_some());
        assert!(a.try_admit().is_none());
        assert_eq!(a.open_connections(), 2);
        drop(s1);
        assert!(a.try_admit().is_some());
    }
}
