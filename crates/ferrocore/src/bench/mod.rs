//! `ferrocore bench`: the MQTT load generator.
//!
//! Measures the way `../shared/reference/peer-baselines.md` measured Mosquitto and rumqttd: one
//! tokio task per simulated client with its own socket, the workspace codec on the wire,
//! publishers stamping a monotonic send time into the first 8 payload bytes, subscribers
//! recording receive − send in an HDR histogram, a warm-up, a measurement window and a drain.

mod auth;
mod conn;
mod load;
mod pace;
mod ramp;
mod report;
mod shadow;
mod stats;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use clap::{ArgAction, ValueEnum};
use ferrocore_mqtt::{ProtocolVersion, QoS};

use report::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Connect N clients with C connects in flight; CONNACK/s and connect latency.
    ConnectStorm,
    /// P publishers → 1 subscriber on `<prefix>/#`.
    FanIn,
    /// 1 publisher → S subscribers on one topic.
    FanOut,
    /// N publisher/subscriber pairs, each pair on its own topic.
    P2p,
    /// Hold N idle connections: broker RSS per connection, then PINGREQ on every one.
    Idle,
    /// N things, each a device publishing `reported` updates to its shadow: durable updates
    /// per second and publish → `update/accepted` latency.
    ShadowUpdate,
    /// N things, each an app publishing `desired` updates and a device reading
    /// `update/delta`: publish → delta latency and deltas per second.
    ShadowDelta,
}

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Scenarios and how they are measured: bench/README.md.")]
pub struct BenchArgs {
    /// Scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Broker host name or IP address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port [default: 1883, or 8883 with --tls].
    #[arg(long)]
    pub port: Option<u16>,
    /// Connect over TLS (rustls, aws-lc-rs; session resumption disabled: every connection is a
    /// full handshake).
    #[arg(long)]
    pub tls: bool,
    /// PEM file with the CA certificate(s) that sign the broker's certificate.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (the handshake signature is still verified).
    #[arg(long)]
    pub insecure: bool,
    /// TLS server name (SNI and verification) [default: --host].
    #[arg(long)]
    pub server_name: Option<String>,
    /// ALPN protocol to offer (repeatable), e.g. `mqtt` or `x-amzn-mqtt-ca`.
    #[arg(long)]
    pub alpn: Vec<String>,
    /// Client certificate chain (PEM) every connection presents (mTLS); needs --key-file.
    #[arg(long, requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of --cert-file.
    #[arg(long, requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// connect-storm / idle: authenticate through a custom authorizer whose function the
    /// bench serves itself on --auth-server (bench/README.md, *Custom authentication*).
    #[arg(long, value_enum, requires = "auth_server")]
    pub custom_auth: Option<auth::CustomAuth>,
    /// Address on which the bench serves the authorizer function, e.g. 127.0.0.1:9001: the
    /// webhook at http://127.0.0.1:9001/, or the issuer http://127.0.0.1:9001 of the `jwt`
    /// built-in (tokens with `aud` ferrocore-bench).
    #[arg(long)]
    pub auth_server: Option<SocketAddr>,
    /// Authorizer the clients name in their username (`x-amz-customauthorizer-name`)
    /// [default: none named: the listener's or the account's default authorizer].
    #[arg(long)]
    pub authorizer: Option<String>,
    /// `--custom-auth jwt`: the issuer's RSA signing key (PKCS#8 PEM) [default: a new
    /// RSA-2048 key]; benches run one after another against one server should share it, as
    /// the server refetches the JWKS for a new key at most every 10 s.
    #[arg(long)]
    pub jwt_key_file: Option<PathBuf>,
    /// connect-storm: connect and disconnect every client once before the measured ramp, with
    /// the same client ids and credentials, so the authorizer's answers are cached (warm cache).
    #[arg(long)]
    pub warm_up_pass: bool,

    /// MQTT protocol version: 3.1.1 or 5.
    #[arg(long, default_value = "3.1.1", value_parser = parse_version)]
    pub mqtt_version: ProtocolVersion,
    /// QoS of publishes and subscriptions.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload bytes per message (at least 8: the send timestamp; from 16 on a run tag too).
    /// Shadow scenarios pad their update documents to at least this size.
    #[arg(long, default_value_t = 64)]
    pub payload_size: usize,

    /// Connections for connect-storm and idle [default: 1000].
    #[arg(long)]
    pub clients: Option<usize>,
    /// Publishers for fan-in [default: 50] and fan-out [default: 1].
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Subscribers for fan-out [default: 500] and fan-in [default: 1].
    #[arg(long)]
    pub subscribers: Option<usize>,
    /// Publisher/subscriber pairs for p2p [default: 100].
    #[arg(long)]
    pub pairs: Option<usize>,
    /// Things (shadows) for the shadow scenarios [default: 100].
    #[arg(long)]
    pub things: Option<usize>,
    /// Use this named shadow of every thing instead of its classic shadow.
    #[arg(long)]
    pub shadow_name: Option<String>,

    /// Maximum unacknowledged QoS 1/2 PUBLISH packets per publisher [default: 16]; shadow
    /// scenarios: updates per thing awaiting their answer [default: 1; AWS allows 10 per
    /// connection and answers more with 429].
    #[arg(long)]
    pub inflight: Option<u16>,
    /// Total messages per second over all publishers (shadow scenarios: updates over all
    /// things), split evenly with staggered phases; 0 = unthrottled (32 PUBLISH per write, as
    /// fast as TCP accepts; shadow scenarios: as fast as answers free in-flight slots).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Warm-up before the measurement window (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Measurement window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time after the window during which subscribers still read (publishers have stopped).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Idle: how long to hold the connections after the ramp before sampling RSS and pinging.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub settle: Duration,

    /// Connects (TCP + TLS + CONNECT/CONNACK) in flight at once.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Bound on each connect, SUBACK, PINGRESP and shadow answer wait.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Local source addresses, comma-separated, used round-robin; `127.0.0.2..5` means
    /// 127.0.0.2 to 127.0.0.5.
    #[arg(long, value_delimiter = ',')]
    pub bind_addrs: Vec<String>,

    /// Broker process id: sample its CPU (/proc/<pid>/stat) and RSS.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Clean session (3.1.1) / clean start (5); `--clean-session false` for persistent sessions.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub clean_session: bool,
    /// MQTT 5 session expiry interval in seconds with --clean-session false.
    #[arg(long, default_value_t = 3600)]
    pub session_expiry: u32,
    /// Keep-alive in seconds sent in CONNECT (raised to cover the run if needed).
    #[arg(long, default_value_t = 300)]
    pub keep_alive: u16,

    /// First topic level of every topic the bench uses.
    #[arg(long, default_value = "bench")]
    pub topic_prefix: String,
    /// Client id prefix [default: fcb<pid>]; fixed ids let persistent sessions resume.
    #[arg(long)]
    pub client_id_prefix: Option<String>,
    /// Scenario name in the machine-readable line [default: fanin, fanout, p2p, connect or
    /// idle, with -tls when --tls].
    #[arg(long)]
    pub label: Option<String>,
    /// Tokio worker threads [default: one per core].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of the text summary; no progress bar.
    #[arg(long)]
    pub json: bool,
}

fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "3.1.1" | "311" | "4" => Ok(ProtocolVersion::V311),
        "5" | "5.0" => Ok(ProtocolVersion::V5),
        _ => Err(format!("unsupported MQTT version {s:?} (use 3.1.1 or 5)")),
    }
}

/// `10`, `10s`, `1.5s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    if !v.is_finite() || v < 0.0 || v * mult > 1e7 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// `127.0.0.2`, `::1`, or a last-octet range `127.0.0.2..5`.
pub fn parse_bind_addrs(items: &[String]) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if let Some((first, last)) = item.split_once("..") {
            let first: Ipv4Addr = first
                .parse()
                .with_context(|| format!("bad address in {item:?}"))?;
            let last: u8 = last
                .parse()
                .with_context(|| format!("bad range end in {item:?}"))?;
            let o = first.octets();
            ensure!(last >= o[3], "empty range {item:?}");
            out.extend((o[3]..=last).map(|x| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], x))));
        } else {
            out.push(
                item.parse()
                    .with_context(|| format!("bad address {item:?}"))?,
            );
        }
    }
    Ok(out)
}

/// The validated shape of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub scenario: Scenario,
    pub label: String,
    pub port: u16,
    pub qos: QoS,
    /// Topic of each publisher.
    pub pub_topics: Vec<String>,
    /// Filter of each subscriber.
    pub sub_filters: Vec<String>,
    /// Subscribers receiving each published message.
    pub fanout: u64,
    /// Connections of connect-storm / idle.
    pub clients: usize,
    /// Thing names of the shadow scenarios.
    pub things: Vec<String>,
    pub shadow_name: Option<String>,
    /// Unacknowledged publishes per publisher, or updates awaiting an answer per thing.
    pub inflight: u16,
    pub bind: Vec<IpAddr>,
    pub keep_alive: u16,
    pub client_id_prefix: String,
}

impl Plan {
    pub fn connections(&self) -> usize {
        let per_thing = match self.shadow_mode() {
            Some(shadow::ShadowMode::Desired) => 2,
            _ => 1,
        };
        self.clients
            + self.pub_topics.len()
            + self.sub_filters.len()
            + self.things.len() * per_thing
    }

    /// The kind of updates of a shadow scenario.
    pub fn shadow_mode(&self) -> Option<shadow::ShadowMode> {
        match self.scenario {
            Scenario::ShadowUpdate => Some(shadow::ShadowMode::Reported),
            Scenario::ShadowDelta => Some(shadow::ShadowMode::Desired),
            _ => None,
        }
    }
}

pub fn validate(a: &BenchArgs) -> anyhow::Result<Plan> {
    use Scenario::*;
    let s = a.scenario;
    let load = matches!(s, FanIn | FanOut | P2p);
    let shadows = matches!(s, ShadowUpdate | ShadowDelta);
    let only = |set: bool, flag: &str, ok: bool| -> anyhow::Result<()> {
        ensure!(!set || ok, "{flag} does not apply to {}", scenario_name(s));
        Ok(())
    };
    only(
        a.clients.is_some(),
        "--clients",
        matches!(s, ConnectStorm | Idle),
    )?;
    only(a.pairs.is_some(), "--pairs", s == P2p)?;
    only(
        a.publishers.is_some(),
        "--publishers",
        matches!(s, FanIn | FanOut),
    )?;
    only(
        a.subscribers.is_some(),
        "--subscribers",
        matches!(s, FanIn | FanOut),
    )?;
    only(a.things.is_some(), "--things", shadows)?;
    only(a.shadow_name.is_some(), "--shadow-name", shadows)?;
    only(a.inflight.is_some(), "--inflight", load || shadows)?;
    only(a.rate != 0, "--rate", load || shadows)?;
    only(a.qos != 0, "--qos", load || shadows)?;
    only(
        a.custom_auth.is_some(),
        "--custom-auth",
        matches!(s, ConnectStorm | Idle),
    )?;
    only(a.warm_up_pass, "--warm-up-pass", s == ConnectStorm)?;
    ensure!(
        a.custom_auth.is_some() || (a.auth_server.is_none() && a.authorizer.is_none()),
        "--auth-server and --authorizer need --custom-auth"
    );
    ensure!(
        a.jwt_key_file.is_none() || a.custom_auth == Some(auth::CustomAuth::Jwt),
        "--jwt-key-file needs --custom-auth jwt"
    );
    ensure!(
        a.custom_auth.is_none() || a.cert_file.is_none(),
        "--custom-auth and --cert-file exclude each other: a client that presents a \
         certificate is authenticated by it alone"
    );
    if let Some(name) = &a.authorizer {
        ensure!(
            valid_authorizer_name(name),
            "--authorizer must be 1 to 128 of a-z A-Z 0-9 _ - = , @ (AWS's authorizer name rule)"
        );
    }
    ensure!(
        !shadows || a.qos <= 1,
        "the shadow scenarios publish and subscribe at --qos 0 or 1"
    );
    if !a.tls {
        ensure!(
            a.ca_file.is_none()
                && !a.insecure
                && a.server_name.is_none()
                && a.alpn.is_empty()
                && a.cert_file.is_none(),
            "--ca-file, --insecure, --server-name, --alpn and --cert-file need --tls"
        );
    } else {
        ensure!(
            a.ca_file.is_some() || a.insecure,
            "--tls needs --ca-file <PEM> (or --insecure)"
        );
    }
    ensure!(
        (8..=1_000_000).contains(&a.payload_size),
        "--payload-size must be 8..=1000000 (the first 8 bytes carry the send timestamp)"
    );
    let inflight = a.inflight.unwrap_or(if shadows { 1 } else { 16 });
    ensure!(inflight >= 1, "--inflight must be at least 1");
    ensure!(
        a.connect_concurrency >= 1,
        "--connect-concurrency must be at least 1"
    );
    ensure!(
        !a.connect_timeout.is_zero(),
        "--connect-timeout must be positive"
    );
    ensure!(
        !a.duration.is_zero() || !(load || shadows),
        "--duration must be positive"
    );
    ensure!(a.threads != Some(0), "--threads must be at least 1");
    ensure!(
        !a.topic_prefix.is_empty() && !a.topic_prefix.contains(['#', '+']),
        "--topic-prefix must be a non-empty topic level without wildcards"
    );
    let qos = QoS::from_u8(a.qos).ok_or_else(|| anyhow!("bad QoS"))?;
    let positive = |v: Option<usize>, default: usize, flag: &str| -> anyhow::Result<usize> {
        let v = v.unwrap_or(default);
        ensure!(v >= 1, "{flag} must be at least 1");
        Ok(v)
    };
    let p = &a.topic_prefix;
    let client_id_prefix = a
        .client_id_prefix
        .clone()
        .unwrap_or_else(|| format!("fcb{}", std::process::id()));
    let things = if shadows {
        thing_names(&client_id_prefix, positive(a.things, 100, "--things")?)?
    } else {
        Vec::new()
    };
    if let Some(name) = &a.shadow_name {
        ensure!(
            valid_shadow_name(name),
            "--shadow-name must be 1 to 64 of a-z A-Z 0-9 $ : _ - (AWS's shadow name rule)"
        );
    }
    let (pub_topics, sub_filters, fanout, clients) = match s {
        ConnectStorm | Idle => (vec![], vec![], 0, positive(a.clients, 1000, "--clients")?),
        ShadowUpdate | ShadowDelta => (vec![], vec![], 0, 0),
        FanIn => {
            let np = positive(a.publishers, 50, "--publishers")?;
            let ns = positive(a.subscribers, 1, "--subscribers")?;
            let pubs = (0..np).map(|i| format!("{p}/{i}")).collect();
            (pubs, vec![format!("{p}/#"); ns], ns as u64, 0)
        }
        FanOut => {
            let np = positive(a.publishers, 1, "--publishers")?;
            let ns = positive(a.subscribers, 500, "--subscribers")?;
            let topic = format!("{p}/fanout");
            (vec![topic.clone(); np], vec![topic; ns], ns as u64, 0)
        }
        P2p => {
            let n = positive(a.pairs, 100, "--pairs")?;
            let topics: Vec<String> = (0..n).map(|i| format!("{p}/p2p/{i}")).collect();
            (topics.clone(), topics, 1, 0)
        }
    };
    let bind = parse_bind_addrs(&a.bind_addrs)?;
    let port = a.port.unwrap_or(if a.tls { 8883 } else { 1883 });
    // Publishers and subscribers never PINGREQ: the keep-alive must outlast the run.
    let run_s = (a.warmup + a.duration + a.drain + a.settle + a.connect_timeout).as_secs() + 60;
    let keep_alive = if a.keep_alive != 0 && (a.keep_alive as u64) < run_s {
        run_s.min(u16::MAX as u64) as u16
    } else {
        a.keep_alive
    };
    let base = match s {
        ConnectStorm => "connect",
        FanIn => "fanin",
        FanOut => "fanout",
        P2p => "p2p",
        Idle => "idle",
        ShadowUpdate => "shadow-update",
        ShadowDelta => "shadow-delta",
    };
    let label = a.label.clone().unwrap_or_else(|| {
        let transport = match (a.custom_auth, &a.cert_file) {
            (Some(kind), _) => format!("-{}", auth::kind_name(kind)),
            (None, Some(_)) => "-mtls".to_owned(),
            (None, None) if a.tls => "-tls".to_owned(),
            (None, None) => String::new(),
        };
        let warm = if a.warm_up_pass { "-warm" } else { "" };
        format!("{base}{transport}{warm}")
    });
    ensure!(
        !label.contains(char::is_whitespace),
        "--label must not contain spaces"
    );
    Ok(Plan {
        scenario: s,
        label,
        port,
        qos,
        pub_topics,
        sub_filters,
        fanout,
        clients,
        things,
        shadow_name: a.shadow_name.clone(),
        inflight,
        bind,
        keep_alive,
        client_id_prefix,
    })
}

/// `<prefix>-t0` … : the names of `n` things, which are also their devices' client ids; an
/// app of `shadow-delta` connects as `<thing>-app`.
fn thing_names(prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-t{i}")).collect();
    let longest = names.last().map_or(0, String::len);
    ensure!(
        prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
            && longest + "-app".len() <= 128,
        "thing names ({prefix}-t<n>) must be at most 124 of a-z A-Z 0-9 : _ - (AWS's thing \
         name rule, and room for -app in a client id): choose another --client-id-prefix"
    );
    Ok(names)
}

/// AWS's authorizer name rule: 1 to 128 of `[\w=,@-]`; it goes into a username's query.
fn valid_authorizer_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b',' | b'@'))
}

/// AWS's shadow name rule: 1 to 64 of `[$a-zA-Z0-9:_-]`.
fn valid_shadow_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b':' | b'_' | b'-'))
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::ConnectStorm => "connect-storm",
        Scenario::FanIn => "fan-in",
        Scenario::FanOut => "fan-out",
        Scenario::P2p => "p2p",
        Scenario::Idle => "idle",
        Scenario::ShadowUpdate => "shadow-update",
        Scenario::ShadowDelta => "shadow-delta",
    }
}

/// Raises the open-files soft limit to the hard limit; returns the resulting soft limit.
fn raise_nofile() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
    getrlimit(Resource::Nofile).current
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = validate(&args)?;
    stats::epoch();
    let nofile = raise_nofile();
    if let Some(limit) = nofile
        && (plan.connections() as u64 + 64) > limit
    {
        bail!(
            "{} connections need more than the open-files limit of {limit}",
            plan.connections()
        );
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = args.threads {
        rt.worker_threads(t);
    }
    let rt = rt.build()?;
    let report = rt.block_on(run_async(&args, &plan))?;
    if args.json {
        println!("{}", serde_json::to_string(&report.json())?);
    } else {
        print!("{}", report.text());
        println!("{}", report.line());
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    if report.setup_failed {
        bail!(
            "setup failed: {}",
            report.first_error().unwrap_or("unknown error")
        );
    }
    Ok(())
}

async fn run_async(args: &BenchArgs, plan: &Plan) -> anyhow::Result<Report> {
    let addr: SocketAddr = tokio::net::lookup_host((args.host.as_str(), plan.port))
        .await
        .with_context(|| format!("resolve {}", args.host))?
        .next()
        .ok_or_else(|| anyhow!("{} resolves to no address", args.host))?;
    // The authorizer function serves before the first connect and stops with the run.
    let auth_server = match (args.custom_auth, args.auth_server) {
        (Some(kind), Some(at)) => {
            Some(auth::AuthServer::start(kind, at, args.jwt_key_file.as_deref()).await?)
        }
        _ => None,
    };
    let tls = if args.tls {
        let client_cert =
            args.cert_file
                .as_deref()
                .zip(args.key_file.as_deref())
                .map(|(cert_file, key_file)| conn::ClientCert {
                    cert_file,
                    key_file,
                });
        let config = conn::tls_config(
            args.ca_file.as_deref(),
            args.insecure,
            &args.alpn,
            client_cert,
        )?;
        let name = args
            .server_name
            .clone()
            .unwrap_or_else(|| args.host.clone());
        let name = rustls::pki_types::ServerName::try_from(name).context("bad TLS server name")?;
        Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
    } else {
        None
    };
    let dialer = Arc::new(conn::Dialer {
        addr,
        bind: plan.bind.clone(),
        tls,
        version: args.mqtt_version,
        keep_alive: plan.keep_alive,
        clean_session: args.clean_session,
        session_expiry: args.session_expiry,
        timeout: args.connect_timeout,
        login: auth_server
            .as_ref()
            .map(|server| server.login(args.authorizer.as_deref(), plan.clients))
            .transpose()?,
    });
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let mut report = Report::new(args, plan, addr);
    let mut obs = report::Sampler::new(args.broker_pid, show_progress);
    match plan.scenario {
        Scenario::FanIn | Scenario::FanOut | Scenario::P2p => {
            let shared = Arc::new(load::Shared::new(run_tag()));
            obs.attach(shared.clone());
            let spec = load::LoadSpec {
                run: run_spec(args, plan, dialer),
                payload_size: args.payload_size,
                pub_topics: plan.pub_topics.clone(),
                sub_filters: plan.sub_filters.clone(),
                fanout: plan.fanout,
                client_id_prefix: plan.client_id_prefix.clone(),
            };
            let outcome = load::run(spec, shared, &mut obs).await;
            obs.finish();
            report.set_load(outcome, &obs);
        }
        Scenario::ConnectStorm | Scenario::Idle => {
            let spec = ramp::RampSpec {
                dialer,
                clients: plan.clients,
                connect_concurrency: args.connect_concurrency,
                client_id_prefix: plan.client_id_prefix.clone(),
                idle_settle: (plan.scenario == Scenario::Idle).then_some(args.settle),
                ping_timeout: args.connect_timeout,
            };
            // Requests the authorizer function has answered so far.
            let requests = || auth_server.as_ref().map(auth::AuthServer::requests);
            let since = |before: Option<u64>| requests().zip(before).map(|(now, b)| now - b);
            let warm_up = if args.warm_up_pass {
                let before = requests();
                let outcome = ramp::run(spec.clone(), &mut ramp::Unobserved).await;
                Some(report::WarmUp {
                    ok: outcome.ok,
                    attempted: outcome.ok + outcome.failed,
                    auth_requests: since(before),
                })
            } else {
                None
            };
            let before = requests();
            let outcome = ramp::run(spec, &mut obs).await;
            let auth = args.custom_auth.zip(since(before));
            obs.finish();
            report.set_ramp(outcome, &obs, warm_up, auth);
        }
        Scenario::ShadowUpdate | Scenario::ShadowDelta => {
            let shared = Arc::new(load::Shared::new(run_tag()));
            obs.attach(shared.clone());
            let mode = plan
                .shadow_mode()
                .ok_or_else(|| anyhow!("not a shadow scenario"))?;
            let spec = shadow::ShadowSpec {
                run: run_spec(args, plan, dialer),
                mode,
                things: plan.things.clone(),
                shadow_name: plan.shadow_name.clone(),
                min_document_size: args.payload_size,
            };
            let outcome = shadow::run(spec, shared, &mut obs).await;
            obs.finish();
            report.set_shadow(mode, outcome, &obs);
        }
    }
    Ok(report)
}

fn run_spec(args: &BenchArgs, plan: &Plan, dialer: Arc<conn::Dialer>) -> load::RunSpec {
    load::RunSpec {
        dialer,
        qos: plan.qos,
        inflight: plan.inflight,
        rate: args.rate,
        warmup: args.warmup,
        duration: args.duration,
        drain: args.drain,
        connect_concurrency: args.connect_concurrency,
    }
}

/// Tells this run's messages from those of another run on the same broker.
fn run_tag() -> u64 {
    ((std::process::id() as u64) << 32) ^ stats::wall_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn args(cmdline: &str) -> BenchArgs {
        let argv = std::iter::once("bench").chain(cmdline.split_whitespace());
        Cli::try_parse_from(argv).expect("parses").args
    }

    fn plan(cmdline: &str) -> anyhow::Result<Plan> {
        validate(&args(cmdline))
    }

    #[test]
    fn defaults_per_scenario() {
        let p = plan("fan-in").expect("valid");
        assert_eq!(p.pub_topics.len(), 50);
        assert_eq!(p.pub_topics[7], "bench/7");
        assert_eq!(p.sub_filters, vec!["bench/#".to_owned()]);
        assert_eq!(
            (p.fanout, p.port, p.label.as_str(), p.qos),
            (1, 1883, "fanin", QoS::AtMostOnce)
        );

        let p = plan("fan-out").expect("valid");
        assert_eq!(
            (p.pub_topics.len(), p.sub_filters.len(), p.fanout),
            (1, 500, 500)
        );
        assert!(p.sub_filters.iter().all(|f| f == &p.pub_topics[0]));

        let p = plan("p2p --qos 1 --pairs 3").expect("valid");
        assert_eq!(p.pub_topics, p.sub_filters);
        assert_eq!(p.pub_topics[2], "bench/p2p/2");
        assert_eq!((p.fanout, p.qos), (1, QoS::AtLeastOnce));

        let p = plan("idle --tls --insecure --clients 10000").expect("valid");
        assert_eq!(
            (p.clients, p.port, p.label.as_str()),
            (10_000, 8883, "idle-tls")
        );
        assert_eq!(p.connections(), 10_000);
        assert_eq!(plan("connect-storm").expect("valid").label, "connect");
    }

    #[test]
    fn shadow_plans() {
        let p = plan("shadow-update --client-id-prefix dev").expect("valid");
        assert_eq!(p.things.len(), 100);
        assert_eq!((p.things[7].as_str(), p.inflight), ("dev-t7", 1));
        assert_eq!(p.shadow_mode(), Some(shadow::ShadowMode::Reported));
        assert_eq!((p.connections(), p.label.as_str()), (100, "shadow-update"));
        assert!(p.pub_topics.is_empty() && p.sub_filters.is_empty());

        let p = plan("shadow-delta --things 3 --inflight 10 --qos 1 --rate 500 --shadow-name cfg")
            .expect("valid");
        assert_eq!(p.shadow_mode(), Some(shadow::ShadowMode::Desired));
        assert_eq!(
            (p.connections(), p.inflight, p.qos),
            (6, 10, QoS::AtLeastOnce)
        );
        assert_eq!(p.shadow_name.as_deref(), Some("cfg"));
        assert_eq!(plan("p2p").expect("valid").inflight, 16);

        assert!(plan("shadow-update --qos 2").is_err());
        assert!(plan("shadow-update --things 0").is_err());
        assert!(plan("shadow-update --shadow-name a/b").is_err());
        assert!(plan(&format!("shadow-update --shadow-name {}", "n".repeat(65))).is_err());
        assert!(plan("shadow-update --client-id-prefix dev/1").is_err());
        // The longest client id, `<prefix>-t99-app`, may have 128 bytes.
        let prefix = |n: usize| format!("shadow-delta --client-id-prefix {}", "d".repeat(n));
        assert!(plan(&prefix(120)).is_ok());
        assert!(plan(&prefix(121)).is_err());
        assert!(plan("p2p --things 3").is_err());
        assert!(plan("fan-in --shadow-name cfg").is_err());
        assert!(plan("idle --inflight 3").is_err());
    }

    #[test]
    fn rejects_flags_of_other_scenarios() {
        assert!(plan("fan-in --pairs 3").is_err());
        assert!(plan("p2p --publishers 3").is_err());
        assert!(plan("idle --rate 10").is_err());
        assert!(plan("connect-storm --qos 1").is_err());
        assert!(plan("fan-out --clients 3").is_err());
        assert!(plan("p2p --pairs 0").is_err());
    }

    #[test]
    fn rejects_bad_values() {
        assert!(plan("p2p --payload-size 7").is_err());
        assert!(plan("p2p --inflight 0").is_err());
        assert!(plan("p2p --connect-concurrency 0").is_err());
        assert!(plan("p2p --duration 0s").is_err());
        assert!(plan("p2p --tls").is_err(), "TLS without a CA or --insecure");
        assert!(
            plan("p2p --ca-file x.pem").is_err(),
            "--ca-file without --tls"
        );
        assert!(plan("p2p --topic-prefix a/#").is_err());
        let mut a = args("p2p");
        a.label = Some("p2p lat".into());
        assert!(validate(&a).is_err());
        a.label = Some("p2p-lat".into());
        assert_eq!(validate(&a).expect("valid").label, "p2p-lat");
        assert!(Cli::try_parse_from(["bench", "p2p", "--qos", "3"]).is_err());
        assert!(Cli::try_parse_from(["bench", "p2p", "--mqtt-version", "6"]).is_err());
        assert!(Cli::try_parse_from(["bench", "p2p", "--warmup", "soon"]).is_err());
    }

    #[test]
    fn custom_auth_and_client_certificates() {
        let p = plan("connect-storm --tls --insecure --custom-auth webhook --auth-server 127.0.0.1:9 --authorizer bench-hook --warm-up-pass").expect("valid");
        assert_eq!(p.label, "connect-webhook-warm");
        let p = plan("idle --custom-auth webhook --auth-server 127.0.0.1:9").expect("valid");
        assert_eq!(p.label, "idle-webhook");
        let p = plan("connect-storm --tls --insecure --cert-file c.pem --key-file k.pem")
            .expect("valid");
        assert_eq!(p.label, "connect-mtls");

        // The function needs an address, and only connection scenarios authenticate this way.
        assert!(
            Cli::try_parse_from(["bench", "connect-storm", "--custom-auth", "webhook"]).is_err()
        );
        assert!(plan("p2p --custom-auth webhook --auth-server 127.0.0.1:9").is_err());
        assert!(plan("idle --warm-up-pass").is_err());
        assert!(plan("connect-storm --authorizer hook").is_err());
        assert!(plan("connect-storm --auth-server 127.0.0.1:9").is_err());
        let jwt = "connect-storm --custom-auth jwt --auth-server 127.0.0.1:9";
        assert!(plan(&format!("{jwt} --jwt-key-file k.pem")).is_ok());
        assert!(
            plan(
                "connect-storm --custom-auth webhook --auth-server 127.0.0.1:9 --jwt-key-file k.pem"
            )
            .is_err()
        );
        // The authorizer's name goes into the username's query: AWS's name rule only.
        let named = |name: &str| {
            plan(&format!(
                "connect-storm --custom-auth webhook --auth-server 127.0.0.1:9 --authorizer {name}"
            ))
        };
        assert!(named("a=b,c@d_e-f").is_ok());
        assert!(named("hook&token=x").is_err());
        assert!(named(&"h".repeat(129)).is_err());
        // A certificate alone decides, so it and custom authentication exclude each other.
        assert!(plan("connect-storm --tls --insecure --cert-file c.pem --key-file k.pem --custom-auth webhook --auth-server 127.0.0.1:9").is_err());
        assert!(
            plan("connect-storm --cert-file c.pem --key-file k.pem").is_err(),
            "without --tls"
        );
        assert!(
            Cli::try_parse_from([
                "bench",
                "connect-storm",
                "--tls",
                "--insecure",
                "--cert-file",
                "c.pem"
            ])
            .is_err()
        );
    }

    #[test]
    fn versions_and_sessions() {
        assert_eq!(
            args("p2p --mqtt-version 5").mqtt_version,
            ProtocolVersion::V5
        );
        assert_eq!(args("p2p").mqtt_version, ProtocolVersion::V311);
        assert!(args("p2p").clean_session);
        assert!(!args("p2p --clean-session false").clean_session);
    }

    #[test]
    fn keep_alive_covers_the_run() {
        assert_eq!(plan("p2p").expect("valid").keep_alive, 300);
        let p = plan("p2p --duration 600s").expect("valid");
        assert!(p.keep_alive as u64 > 600 + 2);
        assert_eq!(plan("p2p --keep-alive 0").expect("valid").keep_alive, 0);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn bind_address_ranges() {
        let v = parse_bind_addrs(&["127.0.0.2..5".into(), "10.0.0.1".into()]).expect("valid");
        let want: Vec<IpAddr> = [
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.4",
            "127.0.0.5",
            "10.0.0.1",
        ]
        .iter()
        .map(|s| s.parse().expect("ip"))
        .collect();
        assert_eq!(v, want);
        assert!(parse_bind_addrs(&["127.0.0.5..2".into()]).is_err());
        assert!(parse_bind_addrs(&["nope".into()]).is_err());
        let p = plan("idle --bind-addrs 127.0.0.2..3,127.0.0.9").expect("valid");
        assert_eq!(p.bind.len(), 3);
    }
}
