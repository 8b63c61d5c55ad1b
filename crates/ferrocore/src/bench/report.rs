//! Progress bar, CPU / RSS sampling at the phase edges, and the final summary: a text block, one
//! machine-readable `key=value` line (the format of peer-baselines §5) or one JSON object.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferrocore_mqtt::ProtocolVersion;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use super::auth::{self, CustomAuth};
use super::load::{LoadOutcome, Observer, RunOutcome, Shared, Timeline};
use super::ramp::{RampObserver, RampOutcome};
use super::shadow::{ShadowMode, ShadowOutcome};
use super::stats::{self, CpuSample, Percentiles, cpu_pct, now_ns};
use super::{BenchArgs, Plan};

/// connect-storm's unmeasured pass before the ramp (`--warm-up-pass`).
pub struct WarmUp {
    pub ok: u64,
    pub attempted: u64,
    /// Requests the bench's authorizer function answered during the pass.
    pub auth_requests: Option<u64>,
}

/// Keeps the error list printable.
const MAX_ERRORS_SHOWN: usize = 10;

/// Samples the broker and this process at the edges of the measured phase and drives the
/// progress bar.
pub struct Sampler {
    broker_pid: Option<u32>,
    bar: ProgressBar,
    shared: Option<Arc<Shared>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    broker_cpu: [Option<CpuSample>; 2],
    self_cpu: [Option<CpuSample>; 2],
    /// Broker RSS before the ramp (connection scenarios).
    pub rss_before_kb: Option<u64>,
    /// Broker RSS at the end of the window, or after the settle time for idle.
    pub rss_after_kb: Option<u64>,
    pub sock_before_kb: Option<u64>,
    pub sock_after_kb: Option<u64>,
}

impl Sampler {
    pub fn new(broker_pid: Option<u32>, show_progress: bool) -> Sampler {
        let target = if show_progress {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if let Ok(style) = ProgressStyle::with_template("{prefix:>7} [{bar:20}] {pos}/{len}{msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix("connect");
        Sampler {
            broker_pid,
            bar,
            shared: None,
            ticker: None,
            broker_cpu: [None; 2],
            self_cpu: [None; 2],
            rss_before_kb: None,
            rss_after_kb: None,
            sock_before_kb: None,
            sock_after_kb: None,
        }
    }

    pub fn attach(&mut self, shared: Arc<Shared>) {
        self.shared = Some(shared);
    }

    pub fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }

    fn cpu(&mut self, i: usize) {
        self.broker_cpu[i] = self.broker_pid.and_then(|p| stats::cpu_sample(Some(p)));
        self.self_cpu[i] = stats::cpu_sample(None);
    }

    fn broker_rss(&self) -> Option<u64> {
        self.broker_pid.and_then(stats::rss_kb)
    }

    pub fn broker_cpu_pct(&self) -> Option<f64> {
        cpu_pct(self.broker_cpu[0], self.broker_cpu[1])
    }

    pub fn loadgen_cpu_pct(&self) -> Option<f64> {
        cpu_pct(self.self_cpu[0], self.self_cpu[1])
    }
}

impl Observer for Sampler {
    fn setup_progress(&mut self, ready: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(ready);
    }

    fn started(&mut self, tl: Timeline) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        if self.bar.is_hidden() {
            return;
        }
        let bar = self.bar.clone();
        bar.set_length((tl.end - tl.t0) / 1_000_000_000);
        bar.set_position(0);
        self.ticker = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let (mut last_sent, mut last_recv, mut last_t) = (0u64, 0u64, now_ns());
            loop {
                tick.tick().await;
                let now = now_ns();
                if now >= tl.end {
                    break;
                }
                let phase = if now < tl.w0 {
                    "warm-up"
                } else if now < tl.w1 {
                    "measure"
                } else {
                    "drain"
                };
                let sent = shared.sent.load(Ordering::Relaxed);
                let recv = shared.recv.load(Ordering::Relaxed);
                let dt = (now - last_t).max(1) as f64 / 1e9;
                bar.set_prefix(phase);
                bar.set_position(now.saturating_sub(tl.t0) / 1_000_000_000);
                bar.set_message(format!(
                    " s  sent {}/s  recv {}/s  errors {}",
                    compact((sent - last_sent) as f64 / dt),
                    compact((recv - last_recv) as f64 / dt),
                    shared.errors.load(Ordering::Relaxed)
                ));
                (last_sent, last_recv, last_t) = (sent, recv, now);
            }
        }));
    }

    fn window_start(&mut self) {
        self.cpu(0);
    }

    fn window_end(&mut self) {
        self.cpu(1);
        self.rss_after_kb = self.broker_rss();
    }
}

impl RampObserver for Sampler {
    fn progress(&mut self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    fn ramp_start(&mut self) {
        self.rss_before_kb = self.broker_rss();
        self.sock_before_kb = stats::tcp_sockstat_kb();
        self.cpu(0);
    }

    fn ramp_end(&mut self) {
        self.cpu(1);
        self.rss_after_kb = self.broker_rss();
        self.sock_after_kb = stats::tcp_sockstat_kb();
        self.bar.set_prefix("hold");
    }

    fn settled(&mut self) {
        self.rss_after_kb = self.broker_rss();
        self.sock_after_kb = stats::tcp_sockstat_kb();
    }

    fn pinging(&mut self) {
        self.bar.set_prefix("ping");
        self.bar.set_position(0);
    }
}

#[derive(Debug, Clone)]
enum Val {
    U(u64),
    F(f64, usize),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::U(v) => v.to_string(),
            Val::F(v, prec) => format!("{v:.prec$}"),
        }
    }

    fn json(&self) -> Value {
        match self {
            Val::U(v) => Value::from(*v),
            Val::F(v, prec) => {
                let r: f64 = format!("{v:.prec$}").parse().unwrap_or(*v);
                Value::from(r)
            }
        }
    }
}

/// The outcome of one run.
pub struct Report {
    label: String,
    header: String,
    fields: Vec<(&'static str, Val)>,
    body: String,
    errors: Vec<String>,
    pub setup_failed: bool,
}

impl Report {
    pub fn new(a: &BenchArgs, plan: &Plan, addr: SocketAddr) -> Report {
        let version = match a.mqtt_version {
            ProtocolVersion::V5 => "MQTT 5",
            _ => "MQTT 3.1.1",
        };
        let transport = match (a.tls, a.cert_file.is_some()) {
            (true, true) => "mTLS",
            (true, false) => "TLS",
            (false, _) => "TCP",
        };
        let custom_auth = a.custom_auth.map_or(String::new(), |kind| {
            format!(
                ", custom authentication through the bench's {} ({})",
                auth::kind_name(kind),
                a.authorizer
                    .as_ref()
                    .map_or("the default authorizer".to_owned(), |n| format!(
                        "authorizer {n}"
                    ))
            )
        });
        let who = match plan.scenario {
            super::Scenario::ConnectStorm | super::Scenario::Idle => {
                format!(
                    "{} connections, {} connects in flight{custom_auth}{}",
                    plan.clients,
                    a.connect_concurrency,
                    if a.warm_up_pass {
                        ", after a warm-up pass with the same client ids"
                    } else {
                        ""
                    }
                )
            }
            super::Scenario::ShadowUpdate | super::Scenario::ShadowDelta => format!(
                "{} things, {}, {} updates, {} in flight per thing, {}, QoS {}, documents ≥ {} B",
                plan.things.len(),
                plan.shadow_name
                    .as_ref()
                    .map_or("classic shadows".to_owned(), |n| format!(
                        "named shadow {n}"
                    )),
                match plan.shadow_mode() {
                    Some(ShadowMode::Desired) => "desired (from an app per thing)",
                    _ => "reported",
                },
                plan.inflight,
                rate_text(a.rate, "updates/s", "as fast as answered"),
                a.qos,
                a.payload_size,
            ),
            _ => format!(
                "{} pub → {} sub, QoS {}, {} B, {}{}",
                plan.pub_topics.len(),
                plan.sub_filters.len(),
                a.qos,
                a.payload_size,
                rate_text(a.rate, "msg/s", "unthrottled"),
                if a.qos > 0 {
                    format!(", {} in flight", plan.inflight)
                } else {
                    String::new()
                }
            ),
        };
        let session = if a.clean_session {
            ""
        } else {
            ", persistent sessions"
        };
        Report {
            label: plan.label.clone(),
            header: format!(
                "ferrocore bench {}: {who}, {version}, {transport} {addr}{session}",
                super::scenario_name(plan.scenario)
            ),
            fields: Vec::new(),
            body: String::new(),
            errors: Vec::new(),
            setup_failed: false,
        }
    }

    fn push(&mut self, k: &'static str, v: Val) {
        self.fields.push((k, v));
    }

    fn push_opt(&mut self, k: &'static str, v: Option<Val>) {
        if let Some(v) = v {
            self.push(k, v);
        }
    }

    /// Takes a timed run's setup state and errors; returns its counts, latency and timeline.
    fn take_run<C>(&mut self, o: RunOutcome<C>) -> (C, Percentiles, Option<Timeline>) {
        self.setup_failed = o.setup_failed;
        self.errors = o.errors;
        (o.counts, o.latency, o.timeline)
    }

    pub fn set_load(&mut self, o: LoadOutcome, s: &Sampler) {
        let (c, l, timeline) = self.take_run(o);
        let bcpu = s.broker_cpu_pct();
        let lcpu = s.loadgen_cpu_pct();
        let pct = |v: f64| Val::U(v.round() as u64);
        // Latency needs messages sent in the window and received; loss needs messages sent in
        // the window. Undefined figures are left out rather than printed as 0.
        let has_lat = l.count > 0;
        let has_sent = c.expected() > 0;
        let lat = |v: f64| has_lat.then_some(Val::F(v, 3));
        let loss = |v: f64| has_sent.then_some(Val::F(v, 2));
        self.push("msgs_per_s", Val::U(c.delivered_per_s().round() as u64));
        self.push_opt("p50_ms", lat(l.p50_ms));
        self.push_opt("p99_ms", lat(l.p99_ms));
        self.push_opt("loss_pct", loss(c.loss_pct()));
        self.push_opt("broker_cpu_pct", bcpu.map(pct));
        self.push_opt("loadgen_cpu_pct", lcpu.map(pct));
        self.push("sent_per_s", Val::U(c.sent_per_s().round() as u64));
        self.push_opt("p999_ms", lat(l.p999_ms));
        self.push_opt("max_ms", lat(l.max_ms));
        self.push_opt("unreceived_pct", loss(c.unreceived_pct()));
        self.push("samples", Val::U(l.count));
        self.push_opt("broker_rss_kb", s.rss_after_kb.map(Val::U));
        self.push("errors", Val::U(self.errors.len() as u64));

        let Some(mut b) = self.window_body(timeline, s) else {
            return;
        };
        let _ = writeln!(b, "  sent        {} msg/s", group(c.sent_per_s()));
        let _ = writeln!(
            b,
            "  delivered   {} msg/s at the subscribers{}",
            group(c.delivered_per_s()),
            if c.fanout > 1 {
                format!(" (fan-out ×{})", c.fanout)
            } else {
                String::new()
            }
        );
        if has_sent {
            let _ = writeln!(
                b,
                "  dropped     {:.2} %  (of the window's messages, {:.2} % unreceived when the drain ended)",
                c.loss_pct(),
                c.unreceived_pct()
            );
        } else {
            let _ = writeln!(
                b,
                "  dropped     n/a: no PUBLISH was fully written during the window"
            );
        }
        latency_line(
            &mut b,
            "",
            &l,
            "no message sent during the window was received",
        );
        self.set_body(b, s, bcpu, lcpu, s.rss_after_kb);
    }

    /// The body of a run with a measurement window: the window's line, or the setup failure
    /// (then the body is complete and `None` is returned).
    fn window_body(&mut self, timeline: Option<Timeline>, s: &Sampler) -> Option<String> {
        let mut b = String::new();
        if self.setup_failed {
            let _ = writeln!(
                b,
                "  setup failed: not every client could connect and subscribe"
            );
            self.set_body(b, s, None, None, None);
            return None;
        }
        if let Some(tl) = timeline {
            let secs = |a: u64, b: u64| (b - a) as f64 / 1e9;
            let _ = writeln!(
                b,
                "  window      {:.1} s after {:.1} s warm-up, then {:.1} s drain",
                secs(tl.w0, tl.w1),
                secs(tl.t0, tl.w0),
                secs(tl.w1, tl.end)
            );
        }
        Some(b)
    }

    pub fn set_shadow(&mut self, mode: ShadowMode, o: ShadowOutcome, s: &Sampler) {
        let (c, l, timeline) = self.take_run(o);
        let bcpu = s.broker_cpu_pct();
        let lcpu = s.loadgen_cpu_pct();
        let pct = |v: f64| Val::U(v.round() as u64);
        let window_s = timeline.map_or(0.0, |tl| (tl.w1 - tl.w0) as f64 / 1e9);
        let per_s = |n: u64| {
            if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            }
        };
        // As for the load scenarios, undefined figures are left out rather than printed as 0.
        let has_lat = l.count > 0;
        let has_sent = c.sent_window > 0;
        let lat = |v: f64| has_lat.then_some(Val::F(v, 3));
        let answer = match mode {
            ShadowMode::Reported => "accepted",
            ShadowMode::Desired => "delta",
        };
        self.push(
            "msgs_per_s",
            Val::U(per_s(c.timed_window(mode)).round() as u64),
        );
        self.push_opt("p50_ms", lat(l.p50_ms));
        self.push_opt("p99_ms", lat(l.p99_ms));
        self.push_opt(
            "unanswered_pct",
            has_sent.then_some(Val::F(c.unanswered_pct(mode), 2)),
        );
        self.push_opt("broker_cpu_pct", bcpu.map(pct));
        self.push_opt("loadgen_cpu_pct", lcpu.map(pct));
        self.push("sent_per_s", Val::U(per_s(c.sent_window).round() as u64));
        self.push_opt("p90_ms", lat(l.p90_ms));
        self.push_opt("p999_ms", lat(l.p999_ms));
        self.push_opt("max_ms", lat(l.max_ms));
        if mode == ShadowMode::Desired {
            self.push(
                "accepted_per_s",
                Val::U(per_s(c.accepted_window).round() as u64),
            );
        }
        self.push("rejected", Val::U(c.rejected_of_window_sends));
        self.push("timed_out", Val::U(c.timed_out));
        self.push("samples", Val::U(l.count));
        self.push_opt("broker_rss_kb", s.rss_after_kb.map(Val::U));
        self.push("errors", Val::U(self.errors.len() as u64));

        let Some(mut b) = self.window_body(timeline, s) else {
            return;
        };
        let _ = writeln!(b, "  updates     {}/s sent", group(per_s(c.sent_window)));
        let _ = writeln!(
            b,
            "  accepted    {}/s durable updates (update/accepted read during the window)",
            group(per_s(c.accepted_window))
        );
        if mode == ShadowMode::Desired {
            let _ = writeln!(
                b,
                "  deltas      {}/s at the devices (update/delta read during the window)",
                group(per_s(c.deltas_window))
            );
        }
        if has_sent {
            let _ = writeln!(
                b,
                "  unanswered  {:.2} % of the window's updates had no {answer} when the drain ended; {} rejected, {} timed out",
                c.unanswered_pct(mode),
                group(c.rejected_of_window_sends as f64),
                group(c.timed_out as f64)
            );
        } else {
            let _ = writeln!(
                b,
                "  unanswered  n/a: no update was fully written during the window"
            );
        }
        if let Some(r) = &c.rejection {
            let _ = writeln!(b, "  rejection   {r}");
        }
        latency_line(
            &mut b,
            &format!("publish → {answer}: "),
            &l,
            "no update sent during the window was answered",
        );
        self.set_body(b, s, bcpu, lcpu, s.rss_after_kb);
    }

    /// `auth`: the authorizer function the bench served and the requests it answered during
    /// the measured ramp.
    pub fn set_ramp(
        &mut self,
        o: RampOutcome,
        s: &Sampler,
        warm_up: Option<WarmUp>,
        auth: Option<(CustomAuth, u64)>,
    ) {
        self.errors = o.errors.clone();
        let bcpu = s.broker_cpu_pct();
        let lcpu = s.loadgen_cpu_pct();
        let pct = |v: f64| Val::U(v.round() as u64);
        let l = o.connect_latency;
        self.push("msgs_per_s", Val::U(o.connacks_per_s().round() as u64));
        self.push("p50_ms", Val::F(l.p50_ms, 3));
        self.push("p99_ms", Val::F(l.p99_ms, 3));
        self.push("ok", Val::U(o.ok));
        self.push_opt("alive", o.alive.map(Val::U));
        self.push_opt("broker_cpu_pct", bcpu.map(pct));
        let per_conn = |a: Option<u64>, b: Option<u64>| -> Option<f64> {
            let (a, b) = (a?, b?);
            (o.ok > 0).then(|| (b as f64 - a as f64) / o.ok as f64)
        };
        self.push_opt("rss_before_kb", s.rss_before_kb.map(Val::U));
        self.push_opt("rss_after_kb", s.rss_after_kb.map(Val::U));
        let rss_per = per_conn(s.rss_before_kb, s.rss_after_kb);
        self.push_opt("rss_kb_per_conn", rss_per.map(|v| Val::F(v, 2)));
        self.push_opt("loadgen_cpu_pct", lcpu.map(pct));
        self.push("max_ms", Val::F(l.max_ms, 3));
        // Connections (full handshakes with --tls) per second of broker CPU.
        let per_core = bcpu
            .filter(|c| *c > 0.0)
            .map(|c| o.connacks_per_s() / (c / 100.0));
        self.push_opt("conn_per_core_s", per_core.map(pct));
        self.push_opt("sockmem_before_kb", s.sock_before_kb.map(Val::U));
        self.push_opt("sockmem_after_kb", s.sock_after_kb.map(Val::U));
        let sock_per = per_conn(s.sock_before_kb, s.sock_after_kb);
        self.push_opt("sockmem_kb_per_conn", sock_per.map(|v| Val::F(v, 2)));
        self.push("failed", Val::U(o.failed));
        self.push("errors", Val::U(self.errors.len() as u64));
        self.push_opt("auth_requests", auth.map(|(_, n)| Val::U(n)));
        if let Some(w) = &warm_up {
            self.push("warmup_ok", Val::U(w.ok));
            self.push_opt("warmup_auth_requests", w.auth_requests.map(Val::U));
        }

        let mut b = String::new();
        let _ = writeln!(
            b,
            "  connected   {} of {} in {:.2} s: {} CONNACK/s",
            o.ok,
            o.ok + o.failed,
            o.ramp.as_secs_f64(),
            group(o.connacks_per_s())
        );
        let _ = writeln!(
            b,
            "  connect     p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
        );
        if let Some(w) = &warm_up {
            let requests = w.auth_requests.map_or(String::new(), |n| {
                format!(", {} authorizer requests", group(n as f64))
            });
            let _ = writeln!(
                b,
                "  warm-up     {} of {} connected before the ramp{requests}",
                w.ok, w.attempted
            );
        }
        if let Some((kind, n)) = auth {
            let _ = writeln!(
                b,
                "  authorizer  {} {} during the ramp ({:.2} per connect)",
                group(n as f64),
                auth::requests_name(kind),
                if o.ok > 0 {
                    n as f64 / o.ok as f64
                } else {
                    0.0
                }
            );
        }
        if let Some(v) = per_core {
            let _ = writeln!(
                b,
                "  per core    {} connections per second of broker CPU",
                group(v)
            );
        }
        if let Some(alive) = o.alive {
            let _ = writeln!(b, "  alive       {alive} of {} answered PINGREQ", o.ok);
        }
        if let (Some(a), Some(z)) = (s.rss_before_kb, s.rss_after_kb) {
            let _ = writeln!(
                b,
                "  broker RSS  {} → {} KB: {:.2} KB per connection",
                group(a as f64),
                group(z as f64),
                rss_per.unwrap_or(0.0)
            );
        }
        if let (Some(a), Some(z)) = (s.sock_before_kb, s.sock_after_kb) {
            let _ = writeln!(
                b,
                "  socket mem  {} → {} KB (/proc/net/sockstat TCP, both ends): {:.2} KB per connection",
                group(a as f64),
                group(z as f64),
                sock_per.unwrap_or(0.0)
            );
        }
        self.set_body(b, s, bcpu, lcpu, None);
    }

    /// Sets the body to `b` followed by the broker, load generator and error lines.
    fn set_body(
        &mut self,
        mut b: String,
        s: &Sampler,
        bcpu: Option<f64>,
        lcpu: Option<f64>,
        rss: Option<u64>,
    ) {
        if let Some(pid) = s.broker_pid {
            let cpu = bcpu.map_or("n/a".to_owned(), |v| format!("{v:.0} %"));
            let rss = rss.map_or(String::new(), |v| format!("  RSS {} KB", group(v as f64)));
            let _ = writeln!(
                b,
                "  broker      CPU {cpu}{rss}  (pid {pid}; 100 % = one core)"
            );
        }
        if let Some(v) = lcpu {
            let _ = writeln!(b, "  load gen    CPU {v:.0} %");
        }
        let _ = writeln!(b, "  errors      {}", self.errors.len());
        for e in self.errors.iter().take(MAX_ERRORS_SHOWN) {
            let _ = writeln!(b, "    {e}");
        }
        if self.errors.len() > MAX_ERRORS_SHOWN {
            let _ = writeln!(b, "    … and {} more", self.errors.len() - MAX_ERRORS_SHOWN);
        }
        self.body = b;
    }

    pub fn first_error(&self) -> Option<&str> {
        self.errors.first().map(String::as_str)
    }

    pub fn text(&self) -> String {
        format!("{}\n{}", self.header, self.body)
    }

    /// `scenario=p2p msgs_per_s=61089 p50_ms=25.759 …`
    pub fn line(&self) -> String {
        let mut l = format!("scenario={}", self.label);
        for (k, v) in &self.fields {
            let _ = write!(l, " {k}={}", v.text());
        }
        l
    }

    pub fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("scenario".into(), Value::from(self.label.clone()));
        for (k, v) in &self.fields {
            m.insert((*k).into(), v.json());
        }
        m.insert("description".into(), Value::from(self.header.clone()));
        m.insert("setup_failed".into(), Value::from(self.setup_failed));
        let errs: Vec<Value> = self
            .errors
            .iter()
            .take(MAX_ERRORS_SHOWN)
            .map(|e| Value::from(e.clone()))
            .collect();
        m.insert("error_samples".into(), Value::from(errs));
        m.insert("line".into(), Value::from(self.line()));
        Value::Object(m)
    }
}

/// `unthrottled`, or `1,000 msg/s`.
fn rate_text(rate: u64, unit: &str, unthrottled: &str) -> String {
    if rate == 0 {
        unthrottled.to_owned()
    } else {
        format!("{} {unit}", group(rate as f64))
    }
}

/// `  latency     <what>p50 0.332 ms  p90 …  p99 …  p99.9 …  max …  (1,000 samples)`, or why
/// there are no samples.
fn latency_line(b: &mut String, what: &str, l: &Percentiles, missing: &str) {
    let _ = if l.count > 0 {
        writeln!(
            b,
            "  latency     {what}p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  ({} samples)",
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            group(l.count as f64)
        )
    } else {
        writeln!(b, "  latency     n/a: {missing}")
    };
}

/// `950`, `12.3k`, `1.02M`: short enough for the progress line.
pub fn compact(v: f64) -> String {
    if v < 1e3 {
        format!("{v:.0}")
    } else if v < 1e6 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.2}M", v / 1e6)
    }
}

/// `1234567.8` → `1,234,568`.
pub fn group(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Counts;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0.0), "0");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(1000.0), "1,000");
        assert_eq!(group(184_275.4), "184,275");
        assert_eq!(group(2_507_500.0), "2,507,500");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(12_345.0), "12.3k");
        assert_eq!(compact(1_020_199.0), "1.02M");
    }

    #[test]
    fn machine_line_matches_the_baseline_format() {
        let mut r = Report {
            label: "p2p".into(),
            header: String::new(),
            fields: Vec::new(),
            body: String::new(),
            errors: Vec::new(),
            setup_failed: false,
        };
        let o = LoadOutcome {
            counts: Counts {
                sent_window: 610_890,
                delivered_window: 610_890,
                delivered_of_window_sends: 610_890,
                fanout: 1,
                window: Duration::from_secs(10),
            },
            latency: Percentiles {
                count: 610_890,
                p50_ms: 25.759,
                p90_ms: 35.0,
                p99_ms: 41.631,
                p999_ms: 50.0,
                max_ms: 60.0,
            },
            ..Default::default()
        };
        r.set_load(o, &Sampler::new(None, false));
        let line = r.line();
        assert!(
            line.starts_with(
                "scenario=p2p msgs_per_s=61089 p50_ms=25.759 p99_ms=41.631 loss_pct=0.00 "
            ),
            "{line}"
        );
        assert!(
            !line.contains("broker_cpu_pct"),
            "no broker pid, no broker CPU: {line}"
        );
        let j = r.json();
        assert_eq!(j["msgs_per_s"], 61089);
        assert_eq!(j["p99_ms"], 41.631);
        assert_eq!(j["scenario"], "p2p");

        // Nothing sent in the window: no latency, no loss, instead of zeros.
        let mut r2 = Report {
            fields: Vec::new(),
            ..r
        };
        let o = LoadOutcome {
            counts: Counts {
                delivered_window: 1_000,
                fanout: 500,
                window: Duration::from_secs(1),
                ..Counts::default()
            },
            ..Default::default()
        };
        r2.set_load(o, &Sampler::new(None, false));
        let line = r2.line();
        assert!(
            line.starts_with("scenario=p2p msgs_per_s=1000 sent_per_s=0 "),
            "{line}"
        );
        assert!(
            !line.contains("p50_ms") && !line.contains("loss_pct"),
            "{line}"
        );
    }
}
