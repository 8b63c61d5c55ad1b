//! Connection scenarios: `connect-storm` (how fast the broker accepts connections) and `idle`
//! (what an idle connection costs the broker, and whether each one stays alive).

use std::sync::Arc;
use std::time::Duration;

use ferrocore_mqtt::Packet;
use tokio::sync::{Semaphore, mpsc, watch};

use super::conn::{Dialer, packet_name};
use super::stats::{self, Percentiles, now_ns};

#[derive(Clone)]
pub struct RampSpec {
    pub dialer: Arc<Dialer>,
    pub clients: usize,
    pub connect_concurrency: usize,
    pub client_id_prefix: String,
    /// Hold the connections this long after the ramp, then PINGREQ each (idle); `None` for
    /// connect-storm, which disconnects right after the ramp.
    pub idle_settle: Option<Duration>,
    pub ping_timeout: Duration,
}

#[derive(Debug, Default)]
pub struct RampOutcome {
    pub ok: u64,
    pub failed: u64,
    pub ramp: Duration,
    pub connect_latency: Percentiles,
    /// Connections that answered PINGREQ (idle only).
    pub alive: Option<u64>,
    pub errors: Vec<String>,
}

impl RampOutcome {
    pub fn connacks_per_s(&self) -> f64 {
        let s = self.ramp.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }
}

pub trait RampObserver: Send {
    fn progress(&mut self, done: u64, total: u64);
    fn ramp_start(&mut self);
    fn ramp_end(&mut self);
    /// Idle only: the connections have been held for the settle time.
    fn settled(&mut self);
    fn pinging(&mut self);
}

/// Observes nothing: a ramp that is not measured (connect-storm's warm-up pass).
pub struct Unobserved;

impl RampObserver for Unobserved {
    fn progress(&mut self, _done: u64, _total: u64) {}
    fn ramp_start(&mut self) {}
    fn ramp_end(&mut self) {}
    fn settled(&mut self) {}
    fn pinging(&mut self) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Hold,
    Ping,
    Stop,
}

pub async fn run(spec: RampSpec, obs: &mut dyn RampObserver) -> RampOutcome {
    let n = spec.clients;
    let (cmd_tx, cmd_rx) = watch::channel(Cmd::Hold);
    let (conn_tx, mut conn_rx) = mpsc::channel::<Result<u64, String>>(n.max(1));
    let (ping_tx, mut ping_rx) = mpsc::channel::<Result<(), String>>(n.max(1));
    let permits = Arc::new(Semaphore::new(spec.connect_concurrency));
    let mut out = RampOutcome::default();
    let mut hist = stats::latency_histogram();

    obs.ramp_start();
    let start = now_ns();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let dialer = spec.dialer.clone();
        let permits = permits.clone();
        let conn_tx = conn_tx.clone();
        let ping_tx = ping_tx.clone();
        let mut cmd = cmd_rx.clone();
        let id = format!("{}-c{i}", spec.client_id_prefix);
        let ping_timeout = spec.ping_timeout;
        handles.push(tokio::spawn(async move {
            let res = {
                let _permit = permits.acquire().await;
                let t = now_ns();
                dialer.connect(i, &id).await.map(|c| (c, now_ns() - t))
            };
            let mut client = match res {
                Ok((c, lat)) => {
                    let _ = conn_tx.send(Ok(lat)).await;
                    c
                }
                Err(e) => {
                    let _ = conn_tx.send(Err(format!("{id}: {e:#}"))).await;
                    return;
                }
            };
            drop(conn_tx);
            loop {
                let c = *cmd.borrow_and_update();
                match c {
                    Cmd::Hold => {}
                    Cmd::Ping => {
                        let r = tokio::time::timeout(ping_timeout, async {
                            client.send(&Packet::PingReq).await?;
                            loop {
                                match client.recv().await? {
                                    Packet::PingResp => return anyhow::Ok(()),
                                    Packet::Publish(_) => continue,
                                    other => anyhow::bail!(
                                        "expected PINGRESP, got {}",
                                        packet_name(&other)
                                    ),
                                }
                            }
                        })
                        .await
                        .unwrap_or_else(|_| {
                            Err(anyhow::anyhow!("no PINGRESP within {ping_timeout:?}"))
                        });
                        let _ = ping_tx.send(r.map_err(|e| format!("{id}: {e:#}"))).await;
                        // Wait for Stop.
                        while *cmd.borrow_and_update() != Cmd::Stop {
                            if cmd.changed().await.is_err() {
                                break;
                            }
                        }
                        break;
                    }
                    Cmd::Stop => break,
                }
                if cmd.changed().await.is_err() {
                    break;
                }
            }
            client.disconnect().await;
        }));
    }
    drop(conn_tx);
    drop(ping_tx);

    let mut done = 0u64;
    while let Some(r) = conn_rx.recv().await {
        done += 1;
        match r {
            Ok(lat) => {
                out.ok += 1;
                hist.saturating_record(lat);
            }
            Err(e) => {
                out.failed += 1;
                out.errors.push(e);
            }
        }
        obs.progress(done, n as u64);
        if done == n as u64 {
            break;
        }
    }
    out.ramp = Duration::from_nanos(now_ns() - start);
    obs.ramp_end();
    out.connect_latency = Percentiles::of(&hist);

    if let Some(settle) = spec.idle_settle {
        tokio::time::sleep(settle).await;
        obs.settled();
        obs.pinging();
        let _ = cmd_tx.send(Cmd::Ping);
        let mut alive = 0u64;
        let mut answered = 0u64;
        // Each live task answers within the ping timeout.
        let deadline = tokio::time::Instant::now() + spec.ping_timeout + Duration::from_secs(2);
        while answered < out.ok {
            match tokio::time::timeout_at(deadline, ping_rx.recv()).await {
                Ok(Some(Ok(()))) => alive += 1,
                Ok(Some(Err(e))) => out.errors.push(e),
                Ok(None) | Err(_) => break,
            }
            answered += 1;
            obs.progress(answered, out.ok);
        }
        out.alive = Some(alive);
    }
    let _ = cmd_tx.send(Cmd::Stop);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for h in handles {
        let abort = h.abort_handle();
        if tokio::time::timeout_at(deadline, h).await.is_err() {
            abort.abort();
        }
    }
    out
}
