//! Settings of `ferrocore serve`.
//!
//! Every setting is a command-line flag, a `FERROCORE_*` environment variable and a key of the
//! TOML file named by `--config`; precedence is flag > environment > file > default. Flags and
//! environment variables are read by clap ([`ServeFlags`]); the file by [`FileConfig::parse`];
//! [`Settings::resolve`] merges them and checks the result. Every error is one line naming the
//! flag or key to fix.
//!
//! The file uses the flag names in snake_case (`max_connections = 1000`, `listen_mqtts =
//! "0.0.0.0:8883"`, `endpoint_names = ["iot.example.com"]`), durations as `"10s"` / `"500ms"` /
//! `"2m"` / `"1h"` / `"1d"` or whole seconds, sizes as bytes or `"128KiB"`, plus extra listeners:
//!
//! ```toml
//! [[listener]]
//! name = "lb"                # unique; default "listener-<n>"
//! address = "0.0.0.0:9883"   # ":0" picks a free port
//! transport = "mqtts"        # mqtt | mqtts | https | ws
//! tls = true                 # optional; only "mqtt" may change it (true makes it mqtts)
//! proxy_protocol = true      # a PROXY protocol v1/v2 header is required first
//! anonymous = false          # admit clients without credentials
//! anonymous_policy = "anon.json"  # their IoT policy (relative to this file); else allow-all
//! custom_auth = true         # clients without a device certificate go to custom authorizers
//! allow_plaintext_passwords = true  # needed with custom_auth on a plain (mqtt, ws) listener
//! default_authorizer = "fleet-a"    # with custom_auth: the authorizer of clients naming none
//! ```
//!
//! and built-in authorizer functions, named `ferrocore:function/<name>` by an authorizer's
//! `authorizerFunctionArn` (their kinds and options: the `ferrocore_authorizers` crate):
//!
//! ```toml
//! [[authorizer_function]]
//! name = "corp-idp"          # unique: 1-128 of A-Z a-z 0-9 - _
//! kind = "jwt"               # jwt | password | wasm
//! # ... the kind's own options; relative paths are relative to this file
//! ```
//!
//! **Custom authentication** (`custom_auth`; see [`crate::custom_auth`]) decides the clients
//! that present no device certificate by the account's custom authorizers; a client with a
//! certificate is decided by it alone. Where it is accepted:
//!
//! - `https` listeners (the built-in `--listen-https` one included): on by default, as on
//!   AWS's port 443: MQTT by TLS ALPN `mqtt` and MQTT over WebSocket at `/mqtt`; never MQTT by
//!   ALPN `x-amzn-mqtt-ca` (AWS's certificate-only protocol). `custom_auth = false` turns it
//!   off; an `anonymous` https listener has it off unless it says `custom_auth = true`.
//! - the built-in `--listen-mqtts` listener (8883): on, with or without ALPN and SNI (beyond
//!   AWS, which refuses custom authentication on 8883: fleets migrating from a broker with
//!   passwords); off with `--compat aws`, as on AWS. Declared `mqtts` listeners: off unless
//!   they say `custom_auth = true`.
//! - plain `mqtt` and `ws` listeners: only with `custom_auth = true` and
//!   `allow_plaintext_passwords = true` (tokens and passwords cross the network in clear);
//!   `serve` warns loudly at start.
//!
//! `custom_auth` and `anonymous` exclude each other: custom authentication decides every
//! client without a certificate, so an anonymous client would never get in.
//!
//! A client that names no authorizer (`x-amz-customauthorizer-name`) gets its listener's
//! `default_authorizer`, else the account's default authorizer (SetDefaultAuthorizer); one
//! that names an authorizer gets that one, on any listener (as AWS lets devices name any
//! authorizer of the account). So fleets that cannot name an authorizer (plain usernames from
//! another broker) can be told apart by the port they connect to.
//!
//! **Anonymous clients** (of `--dev`'s plain listener and of `anonymous = true` listeners) get
//! the IoT policy their listener names: its `anonymous_policy`, else the top-level
//! `anonymous_policy` / `--anonymous-policy FILE` / `FERROCORE_ANONYMOUS_POLICY`, else
//! everything is allowed (the listener is open on purpose; `serve` says so loudly). The file
//! is one policy document in the AWS IoT policy language (without AWS's 2048-character limit);
//! `${iot:ClientId}`, `${aws:SourceIp}` and `${iot:DomainName}` have values for anonymous
//! clients. It is read at start.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use clap::ValueEnum;
use ferrocore_broker::{BrokerConfig, Compat};
use ferrocore_identity::custom_auth::{InvokerConfig, WebhookOptions, check_authorizer_name};
use ferrocore_identity::registry::PolicyLimits;
use ferrocore_policy::{Arns, CompiledPolicy, ParseOptions, PolicySet};
use ferrocore_shadow::ShadowConfig;
use ferrocore_store::Durability;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::admission::AdmissionConfig;

/// A configuration error: one line naming the flag or key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Acknowledged state survives a crash of the process.
    Process,
    /// Acknowledged state also survives power loss (fsync per group commit).
    Fsync,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Process => Durability::Process,
            DurabilityArg::Fsync => Durability::Fsync,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompatArg {
    /// The MQTT specification.
    Mqtt,
    /// AWS IoT Core's deviations from it, exactly.
    Aws,
}

impl From<CompatArg> for Compat {
    fn from(c: CompatArg) -> Self {
        match c {
            CompatArg::Mqtt => Compat::Mqtt,
            CompatArg::Aws => Compat::Aws,
        }
    }
}

/// Flags (and their `FERROCORE_*` environment variables) of `ferrocore serve`. Every field is
/// optional so that the configuration file can fill what neither gives.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeFlags {
    /// TOML file with any of these settings (snake_case names, e.g. `max_connections = 1000`)
    /// and `[[listener]]` tables (name, address, transport = mqtt|mqtts|https|ws, tls,
    /// proxy_protocol, anonymous). Precedence: flag > environment > file > default.
    #[arg(long, env = "FERROCORE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory of the database, the server's CA, keys and certificates, and listeners.json
    /// (created mode 0700). [default: ./ferrocore-data] [config: data_dir]
    #[arg(long, env = "FERROCORE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// MQTT over TLS listener ("off" disables it; port 0 picks a free one).
    /// [default: 0.0.0.0:8883] [config: listen_mqtts]
    #[arg(
        long,
        env = "FERROCORE_LISTEN_MQTTS",
        value_name = "ADDR",
        help_heading = "Listeners"
    )]
    pub listen_mqtts: Option<String>,

    /// HTTPS listener: MQTT by ALPN (x-amzn-mqtt-ca, mqtt), MQTT over WebSocket at /mqtt and
    /// HTTP (x-amzn-http-ca, http/1.1, h2) on one port ("off" disables it).
    /// [default: 0.0.0.0:8443] [config: listen_https]
    #[arg(
        long,
        env = "FERROCORE_LISTEN_HTTPS",
        value_name = "ADDR",
        help_heading = "Listeners"
    )]
    pub listen_https: Option<String>,

    /// Plain-TCP MQTT listener, unencrypted; off unless given. [config: listen_mqtt]
    #[arg(
        long,
        env = "FERROCORE_LISTEN_MQTT",
        value_name = "ADDR",
        help_heading = "Listeners"
    )]
    pub listen_mqtt: Option<String>,

    /// Prometheus metrics at /metrics (plain HTTP; keep it on loopback), "off" disables it.
    /// When the default port is taken the server starts without metrics and says so.
    /// [default: 127.0.0.1:9464] [config: listen_metrics]
    #[arg(
        long,
        env = "FERROCORE_LISTEN_METRICS",
        value_name = "ADDR",
        help_heading = "Listeners"
    )]
    pub listen_metrics: Option<String>,

    /// Development mode: adds a plain MQTT listener on 127.0.0.1:1883 (or --listen-mqtt) whose
    /// anonymous clients may do anything (or what --anonymous-policy allows). Never use it in
    /// production. [config: dev]
    #[arg(
        long,
        env = "FERROCORE_DEV",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Listeners"
    )]
    pub dev: Option<bool>,

    /// IoT policy (a JSON policy document) for the clients of anonymous listeners that name
    /// none of their own (`anonymous_policy` in `[[listener]]`); without one they may do
    /// everything. [config: anonymous_policy]
    #[arg(
        long,
        env = "FERROCORE_ANONYMOUS_POLICY",
        value_name = "FILE",
        help_heading = "Listeners"
    )]
    pub anonymous_policy: Option<PathBuf>,

    /// Host name devices use to reach this server (repeatable, or comma-separated): put in the
    /// server certificate besides localhost, 127.0.0.1, ::1 and the host name.
    /// [config: endpoint_names]
    #[arg(
        long = "endpoint-name",
        env = "FERROCORE_ENDPOINT_NAME",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub endpoint_name: Vec<String>,

    /// What an acknowledgement guarantees. [default: process] [config: durability]
    #[arg(long, env = "FERROCORE_DURABILITY", value_enum, value_name = "LEVEL")]
    pub durability: Option<DurabilityArg>,

    /// Follow the MQTT specification, or reproduce AWS IoT Core's deviations exactly.
    /// [default: mqtt] [config: compat]
    #[arg(long, env = "FERROCORE_COMPAT", value_enum, value_name = "MODE")]
    pub compat: Option<CompatArg>,

    /// AWS region in ARNs, SigV4 credential scopes and `<data-dir>/aws-config`.
    /// [default: us-east-1] [config: region]
    #[arg(
        long,
        env = "FERROCORE_REGION",
        value_name = "REGION",
        help_heading = "AWS API"
    )]
    pub region: Option<String>,

    /// AWS account id (12 digits) in ARNs. [default: 000000000000] [config: account_id]
    #[arg(
        long,
        env = "FERROCORE_ACCOUNT_ID",
        value_name = "ID",
        help_heading = "AWS API"
    )]
    pub account_id: Option<String>,

    /// Admin access key id for SigV4 (with --admin-secret-access-key), instead of the one
    /// generated on first start into `<data-dir>/credentials`. [config: admin_access_key_id]
    #[arg(
        long,
        env = "FERROCORE_ADMIN_ACCESS_KEY_ID",
        value_name = "KEY",
        help_heading = "AWS API"
    )]
    pub admin_access_key_id: Option<String>,

    /// Admin secret access key (with --admin-access-key-id). Prefer the environment variable
    /// to keep it out of process listings. [config: admin_secret_access_key]
    #[arg(
        long,
        env = "FERROCORE_ADMIN_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "AWS API"
    )]
    pub admin_secret_access_key: Option<String>,

    /// Log filter in RUST_LOG syntax, e.g. "info" or "info,ferrocore_broker=debug".
    /// [default: $RUST_LOG, else info] [config: log_level]
    #[arg(long, env = "FERROCORE_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Open connections on all listeners together; beyond it new ones are closed at accept.
    /// [default: 100000] [config: max_connections]
    #[arg(
        long,
        env = "FERROCORE_MAX_CONNECTIONS",
        value_name = "N",
        help_heading = "Admission"
    )]
    pub max_connections: Option<usize>,

    /// New connections per second from one IP address (IPv6: one /64), bursts up to the same
    /// number; 0 turns the limit off; loopback is exempt. [default: 1000]
    /// [config: max_connect_rate_per_ip]
    #[arg(
        long,
        env = "FERROCORE_MAX_CONNECT_RATE_PER_IP",
        value_name = "N",
        help_heading = "Admission"
    )]
    pub max_connect_rate_per_ip: Option<u32>,

    /// Time a client has for the TLS handshake (and the PROXY header).
    /// [default: 10s] [config: tls_handshake_timeout]
    #[arg(long, env = "FERROCORE_TLS_HANDSHAKE_TIMEOUT", value_name = "DURATION", value_parser = parse_duration, help_heading = "Admission")]
    pub tls_handshake_timeout: Option<Duration>,

    /// Time a new connection has to send MQTT CONNECT (or HTTP request headers).
    /// [default: 10s] [config: connect_timeout]
    #[arg(long, env = "FERROCORE_CONNECT_TIMEOUT", value_name = "DURATION", value_parser = parse_duration, help_heading = "Admission")]
    pub connect_timeout: Option<Duration>,

    /// IoT policies one certificate may have attached (AWS's quota).
    /// [default: 10] [config: max_policies_per_certificate]
    #[arg(
        long,
        env = "FERROCORE_MAX_POLICIES_PER_CERTIFICATE",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_policies_per_certificate: Option<usize>,

    /// IoT policies one thing group may have attached (AWS's quota).
    /// [default: 2] [config: max_policies_per_thing_group]
    #[arg(
        long,
        env = "FERROCORE_MAX_POLICIES_PER_THING_GROUP",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_policies_per_thing_group: Option<usize>,

    /// Bytes in a client id. [default: 128] [config: max_client_id_len]
    #[arg(
        long,
        env = "FERROCORE_MAX_CLIENT_ID_LEN",
        value_name = "BYTES",
        help_heading = "Limits"
    )]
    pub max_client_id_len: Option<usize>,

    /// Bytes in a PUBLISH payload. [default: 128KiB] [config: max_payload_size]
    #[arg(long, env = "FERROCORE_MAX_PAYLOAD_SIZE", value_name = "SIZE", value_parser = parse_size, help_heading = "Limits")]
    pub max_payload_size: Option<usize>,

    /// Bytes of a device shadow's state (desired and reported, without metadata) after an
    /// update (AWS's quota). [default: 8KiB] [config: max_shadow_size]
    #[arg(long, env = "FERROCORE_MAX_SHADOW_SIZE", value_name = "SIZE", value_parser = parse_size, help_heading = "Limits")]
    pub max_shadow_size: Option<usize>,

    /// Levels of nesting in a shadow's desired or reported state (AWS's error message says 6).
    /// [default: 6] [config: max_shadow_depth]
    #[arg(
        long,
        env = "FERROCORE_MAX_SHADOW_DEPTH",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_shadow_depth: Option<usize>,

    /// Characters in a named shadow's name (AWS's limit). [default: 64] [config: max_shadow_name_len]
    #[arg(
        long,
        env = "FERROCORE_MAX_SHADOW_NAME_LEN",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_shadow_name_len: Option<usize>,

    /// Bytes in any MQTT packet. [default: max payload + 512] [config: max_packet_size]
    #[arg(long, env = "FERROCORE_MAX_PACKET_SIZE", value_name = "SIZE", value_parser = parse_size, help_heading = "Limits")]
    pub max_packet_size: Option<usize>,

    /// Bytes in a topic name or filter, outside the $aws/rules/<rule>/ and $share/<group>/
    /// prefixes. [default: 256] [config: max_topic_length]
    #[arg(
        long,
        env = "FERROCORE_MAX_TOPIC_LENGTH",
        value_name = "BYTES",
        help_heading = "Limits"
    )]
    pub max_topic_length: Option<usize>,

    /// Slashes in a topic name or filter, outside those prefixes. [default: 7]
    /// [config: max_topic_slashes]
    #[arg(
        long,
        env = "FERROCORE_MAX_TOPIC_SLASHES",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_topic_slashes: Option<usize>,

    /// Expiry of MQTT 3.1.1 persistent sessions. [default: 1h] [config: default_session_expiry]
    #[arg(long, env = "FERROCORE_DEFAULT_SESSION_EXPIRY", value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    pub default_session_expiry: Option<Duration>,

    /// Cap on the session expiry an MQTT 5 client asks for. [default: 7d]
    /// [config: max_session_expiry]
    #[arg(long, env = "FERROCORE_MAX_SESSION_EXPIRY", value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    pub max_session_expiry: Option<Duration>,

    /// QoS 1/2 messages in flight to one client (MQTT 5 Receive Maximum). [default: 100]
    /// [config: max_inflight]
    #[arg(
        long,
        env = "FERROCORE_MAX_INFLIGHT",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_inflight: Option<u16>,

    /// Messages queued for one offline or slow session. [default: 1000]
    /// [config: max_queued_messages]
    #[arg(
        long,
        env = "FERROCORE_MAX_QUEUED_MESSAGES",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_queued_messages: Option<usize>,

    /// Bytes queued for one offline or slow session. [default: 16MiB] [config: max_queued_bytes]
    #[arg(long, env = "FERROCORE_MAX_QUEUED_BYTES", value_name = "SIZE", value_parser = parse_size, help_heading = "Limits")]
    pub max_queued_bytes: Option<usize>,

    /// Times a QoS 1/2 message is sent again on session resumption before it is dropped.
    /// [default: 20] [config: max_redeliveries]
    #[arg(
        long,
        env = "FERROCORE_MAX_REDELIVERIES",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_redeliveries: Option<u32>,

    /// Topic aliases a client may use towards the server (MQTT 5). [default: 8]
    /// [config: max_topic_aliases]
    #[arg(
        long,
        env = "FERROCORE_MAX_TOPIC_ALIASES",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_topic_aliases: Option<u16>,

    /// Keep alive imposed on clients that ask for none or more; 0 accepts theirs.
    /// [default: 0] [config: max_keep_alive]
    #[arg(long, env = "FERROCORE_MAX_KEEP_ALIVE", value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    pub max_keep_alive: Option<Duration>,

    /// Longest a custom authorizer's function may take to answer; slower is a denial
    /// (CONNACK 0x88). [default: 5s] [config: authorizer_timeout]
    #[arg(long, env = "FERROCORE_AUTHORIZER_TIMEOUT", value_name = "DURATION", value_parser = parse_duration, help_heading = "Custom authorizers")]
    pub authorizer_timeout: Option<Duration>,

    /// Calls of one authorizer in flight at once; more wait for a free one within
    /// --authorizer-timeout, then are denied. [default: 64]
    /// [config: authorizer_max_concurrent_calls]
    #[arg(
        long,
        env = "FERROCORE_AUTHORIZER_MAX_CONCURRENT_CALLS",
        value_name = "N",
        help_heading = "Custom authorizers"
    )]
    pub authorizer_max_concurrent_calls: Option<usize>,

    /// Consecutive failures of an authorizer's function that open its circuit breaker.
    /// [default: 5] [config: authorizer_breaker_failures]
    #[arg(
        long,
        env = "FERROCORE_AUTHORIZER_BREAKER_FAILURES",
        value_name = "N",
        help_heading = "Custom authorizers"
    )]
    pub authorizer_breaker_failures: Option<u32>,

    /// How long an open circuit breaker denies without calling the function.
    /// [default: 30s] [config: authorizer_breaker_cool_down]
    #[arg(long, env = "FERROCORE_AUTHORIZER_BREAKER_COOL_DOWN", value_name = "DURATION", value_parser = parse_duration, help_heading = "Custom authorizers")]
    pub authorizer_breaker_cool_down: Option<Duration>,

    /// Authorizer answers kept across connections (all authorizers); 0 turns the cache off.
    /// [default: 10000] [config: authorizer_cache_entries]
    #[arg(
        long,
        env = "FERROCORE_AUTHORIZER_CACHE_ENTRIES",
        value_name = "N",
        help_heading = "Custom authorizers"
    )]
    pub authorizer_cache_entries: Option<usize>,

    /// PEM file of CA certificates trusted for https:// webhook authorizers besides the
    /// system's roots. [config: authorizer_webhook_ca]
    #[arg(
        long,
        env = "FERROCORE_AUTHORIZER_WEBHOOK_CA",
        value_name = "FILE",
        help_heading = "Custom authorizers"
    )]
    pub authorizer_webhook_ca: Option<PathBuf>,

    /// Allows webhook authorizers at plain http:// URLs of hosts that are not loopback
    /// addresses (tokens and passwords then cross the network in clear).
    /// [default: false] [config: authorizer_webhook_allow_plain_http]
    #[arg(long, env = "FERROCORE_AUTHORIZER_WEBHOOK_ALLOW_PLAIN_HTTP", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Custom authorizers")]
    pub authorizer_webhook_allow_plain_http: Option<bool>,
}

/// What a listener speaks once its connections are established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// MQTT directly on the stream.
    Mqtt,
    /// HTTP (WebSocket MQTT at `/mqtt`); with TLS, MQTT too when ALPN asks for it.
    Http,
}

/// A declared transport, as written in the configuration and `listeners.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportName {
    Mqtt,
    Mqtts,
    Https,
    Ws,
}

impl TransportName {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportName::Mqtt => "mqtt",
            TransportName::Mqtts => "mqtts",
            TransportName::Https => "https",
            TransportName::Ws => "ws",
        }
    }

    fn parse(s: &str) -> Option<TransportName> {
        match s {
            "mqtt" | "tcp" => Some(TransportName::Mqtt),
            "mqtts" | "tls" => Some(TransportName::Mqtts),
            "https" => Some(TransportName::Https),
            "ws" | "http" => Some(TransportName::Ws),
            _ => None,
        }
    }
}

/// One listener to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Unique name, for logs and `listeners.json`.
    pub name: String,
    pub address: SocketAddr,
    pub transport: TransportName,
    pub proxy_protocol: bool,
    /// Clients without credentials are admitted, with `anonymous_policy`.
    pub anonymous: bool,
    /// The policy anonymous clients get; `None`: everything is allowed.
    pub anonymous_policy: Option<AnonymousPolicy>,
    /// Clients without a device certificate are decided by custom authorizers (on `https`
    /// listeners only over ALPN `mqtt` and WebSocket; see the module documentation).
    pub custom_auth: bool,
    /// The authorizer of custom-authenticated clients that name none, before the account's
    /// default authorizer.
    pub default_authorizer: Option<String>,
    /// Where to change this listener, completing "cannot listen on ...; " (e.g. "choose
    /// another with --listen-mqtts").
    pub hint: String,
}

/// An anonymous listener's policy file, read and compiled.
#[derive(Clone)]
pub struct AnonymousPolicy {
    pub path: PathBuf,
    pub policies: Arc<PolicySet>,
}

impl PartialEq for AnonymousPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for AnonymousPolicy {}

impl std::fmt::Debug for AnonymousPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnonymousPolicy")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AnonymousPolicy {
    /// Reads and compiles the policy document at `path` (`from` names the setting in errors).
    /// The policy is named after the file in logs (`policy "anon.json" statement 1`).
    pub fn load(path: &Path, from: &str) -> Result<AnonymousPolicy, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{from}: cannot read the policy file {} ({e})",
                path.display()
            ))
        })?;
        let options = ParseOptions { max_chars: None };
        let doc = ferrocore_policy::parse_with(&text, &options)
            .map_err(|e| ConfigError(format!("{from}: {}: {e}", path.display())))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let compiled = CompiledPolicy::compile(name, &doc)
            .map_err(|e| ConfigError(format!("{from}: {}: {e}", path.display())))?;
        Ok(AnonymousPolicy {
            path: path.to_path_buf(),
            policies: Arc::new(PolicySet::new([Arc::new(compiled)])),
        })
    }
}

impl ListenerSpec {
    pub fn tls(&self) -> bool {
        matches!(self.transport, TransportName::Mqtts | TransportName::Https)
    }

    pub fn kind(&self) -> ListenerKind {
        match self.transport {
            TransportName::Mqtt | TransportName::Mqtts => ListenerKind::Mqtt,
            TransportName::Https | TransportName::Ws => ListenerKind::Http,
        }
    }
}

/// Everything `ferrocore serve` runs with, merged and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listeners: Vec<ListenerSpec>,
    /// As given (deduplicated); the server certificate adds localhost, the loopback addresses
    /// and the host name.
    pub endpoint_names: Vec<String>,
    pub durability: Durability,
    pub dev: bool,
    /// `None`: RUST_LOG, else `info`.
    pub log_level: Option<String>,
    pub broker: BrokerConfig,
    pub admission: AdmissionConfig,
    pub aws: AwsSettings,
    pub metrics: Option<MetricsListen>,
    pub policy_limits: PolicyLimits,
    pub shadow: ShadowConfig,
    /// The built-in authorizer functions (`[[authorizer_function]]`).
    pub authorizer_functions: Vec<AuthorizerFunctionSpec>,
    /// Limits of the custom authorizers' invoker (timeouts, concurrency, breaker, cache,
    /// webhook TLS).
    pub authorizer_invoker: InvokerConfig,
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen {
    pub address: SocketAddr,
    /// Given by flag, environment or file (a bind failure is then an error, not a warning).
    pub explicit: bool,
}

/// How the AWS-compatible APIs present themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: String,
    pub account_id: String,
    /// Fixed admin credentials (access key id, secret); `None`: generated on first start.
    pub admin_key: Option<(String, String)>,
}

pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

pub const DEFAULT_DATA_DIR: &str = "./ferrocore-data";
pub const DEFAULT_MQTTS: &str = "0.0.0.0:8883";
pub const DEFAULT_HTTPS: &str = "0.0.0.0:8443";
pub const DEFAULT_DEV_MQTT: &str = "127.0.0.1:1883";
pub const DEFAULT_METRICS: &str = "127.0.0.1:9464";
/// Largest MQTT packet: 4-byte remaining length maximum plus a 5-byte fixed header.
const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// The `[[listener]]` table as read from the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileListener {
    pub name: Option<String>,
    pub address: Option<String>,
    pub transport: Option<String>,
    pub tls: Option<bool>,
    pub proxy_protocol: Option<bool>,
    pub anonymous: Option<bool>,
    pub anonymous_policy: Option<String>,
    pub custom_auth: Option<bool>,
    pub allow_plaintext_passwords: Option<bool>,
    pub default_authorizer: Option<String>,
}

/// The configuration file, every key optional.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    /// The file's path, for messages.
    pub path: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub listen_mqtts: Option<String>,
    pub listen_https: Option<String>,
    pub listen_mqtt: Option<String>,
    pub listen_metrics: Option<String>,
    pub dev: Option<bool>,
    pub anonymous_policy: Option<String>,
    pub endpoint_names: Option<Vec<String>>,
    pub durability: Option<DurabilityArg>,
    pub compat: Option<CompatArg>,
    pub log_level: Option<String>,
    pub region: Option<String>,
    pub account_id: Option<String>,
    pub admin_access_key_id: Option<String>,
    pub admin_secret_access_key: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connect_rate_per_ip: Option<u32>,
    pub tls_handshake_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_policies_per_certificate: Option<usize>,
    pub max_policies_per_thing_group: Option<usize>,
    pub max_client_id_len: Option<usize>,
    pub max_payload_size: Option<usize>,
    pub max_shadow_size: Option<usize>,
    pub max_shadow_depth: Option<usize>,
    pub max_shadow_name_len: Option<usize>,
    pub max_packet_size: Option<usize>,
    pub max_topic_length: Option<usize>,
    pub max_topic_slashes: Option<usize>,
    pub default_session_expiry: Option<Duration>,
    pub max_session_expiry: Option<Duration>,
    pub max_inflight: Option<u16>,
    pub max_queued_messages: Option<usize>,
    pub max_queued_bytes: Option<usize>,
    pub max_redeliveries: Option<u32>,
    pub max_topic_aliases: Option<u16>,
    pub max_keep_alive: Option<Duration>,
    pub listeners: Vec<FileListener>,
    pub authorizer_functions: Vec<AuthorizerFunctionSpec>,
    pub authorizer_timeout: Option<Duration>,
    pub authorizer_max_concurrent_calls: Option<usize>,
    pub authorizer_breaker_failures: Option<u32>,
    pub authorizer_breaker_cool_down: Option<Duration>,
    pub authorizer_cache_entries: Option<usize>,
    pub authorizer_webhook_ca: Option<String>,
    pub authorizer_webhook_allow_plain_http: Option<bool>,
}

/// An `[[authorizer_function]]` table: a built-in authorizer function, built by `serve`
/// (`ferrocore_authorizers::build`), which checks the kind and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerFunctionSpec {
    /// The `<name>` of `ferrocore:function/<name>`.
    pub name: String,
    pub kind: String,
    /// The table without `name` and `kind`.
    pub options: toml::Table,
    /// The configuration file's directory: relative paths among the options start here.
    pub base_dir: PathBuf,
    /// Where the table is, for messages (`config file F: [[authorizer_function]] "name"`).
    pub context: String,
}

const TOP_KEYS: &[&str] = &[
    "data_dir",
    "listen_mqtts",
    "listen_https",
    "listen_mqtt",
    "listen_metrics",
    "dev",
    "anonymous_policy",
    "endpoint_names",
    "endpoint_name",
    "durability",
    "compat",
    "log_level",
    "region",
    "account_id",
    "admin_access_key_id",
    "admin_secret_access_key",
    "max_connections",
    "max_connect_rate_per_ip",
    "tls_handshake_timeout",
    "connect_timeout",
    "max_client_id_len",
    "max_policies_per_certificate",
    "max_policies_per_thing_group",
    "max_payload_size",
    "max_shadow_size",
    "max_shadow_depth",
    "max_shadow_name_len",
    "max_packet_size",
    "max_topic_length",
    "max_topic_slashes",
    "default_session_expiry",
    "max_session_expiry",
    "max_inflight",
    "max_queued_messages",
    "max_queued_bytes",
    "max_redeliveries",
    "max_topic_aliases",
    "max_keep_alive",
    "listener",
    "authorizer_function",
    "authorizer_timeout",
    "authorizer_max_concurrent_calls",
    "authorizer_breaker_failures",
    "authorizer_breaker_cool_down",
    "authorizer_cache_entries",
    "authorizer_webhook_ca",
    "authorizer_webhook_allow_plain_http",
];

const LISTENER_KEYS: &[&str] = &[
    "name",
    "address",
    "transport",
    "tls",
    "proxy_protocol",
    "anonymous",
    "anonymous_policy",
    "custom_auth",
    "allow_plaintext_passwords",
    "default_authorizer",
];

/// Reads typed values out of a TOML table, with errors naming the key.
struct TableReader<'a> {
    table: &'a toml::Table,
    ctx: String,
}

impl<'a> TableReader<'a> {
    fn get(&self, key: &str) -> Option<&'a toml::Value> {
        self.table.get(key)
    }

    fn fail<T>(&self, key: &str, expected: &str, got: &toml::Value) -> Result<T, ConfigError> {
        err(format!(
            "{}: `{key}` must be {expected}, not {}",
            self.ctx,
            describe(got)
        ))
    }

    fn check_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        for key in self.table.keys() {
            if !known.contains(&key.as_str()) {
                let hint = known
                    .iter()
                    .filter(|k| **k != "listener" && **k != "authorizer_function")
                    .min_by_key(|k| edit_distance(k, key))
                    .filter(|k| edit_distance(k, key) <= 3)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return err(format!("{}: unknown key `{key}`{hint}", self.ctx));
            }
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => self.fail(key, "a string", v),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => self.fail(key, "true or false", v),
        }
    }

    fn integer<T: TryFrom<i64>>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ toml::Value::Integer(i)) => match T::try_from(*i) {
                Ok(n) => Ok(Some(n)),
                Err(_) => self.fail(key, &format!("a whole number in 0..={}", max_of::<T>()), v),
            },
            Some(v) => self.fail(key, "a whole number", v),
        }
    }

    fn duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= 0 => {
                Ok(Some(Duration::from_secs(i.unsigned_abs())))
            }
            Some(toml::Value::String(s)) => match parse_duration(s) {
                Ok(d) => Ok(Some(d)),
                Err(e) => err(format!("{}: `{key}`: {e}", self.ctx)),
            },
            Some(v) => self.fail(key, "a duration like \"10s\" or whole seconds", v),
        }
    }

    fn size(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= 0 => match usize::try_from(*i) {
                Ok(n) => Ok(Some(n)),
                Err(_) => err(format!("{}: `{key}` is too large", self.ctx)),
            },
            Some(toml::Value::String(s)) => match parse_size(s) {
                Ok(n) => Ok(Some(n)),
                Err(e) => err(format!("{}: `{key}`: {e}", self.ctx)),
            },
            Some(v) => self.fail(key, "a size in bytes or like \"128KiB\"", v),
        }
    }

    fn choice<T: ValueEnum>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some(s) = self.string(key)? else {
            return Ok(None);
        };
        match T::from_str(&s, true) {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                let names: Vec<String> = T::value_variants()
                    .iter()
                    .filter_map(|v| {
                        v.to_possible_value()
                            .map(|p| format!("\"{}\"", p.get_name()))
                    })
                    .collect();
                err(format!(
                    "{}: `{key}` must be one of {}, not \"{s}\"",
                    self.ctx,
                    names.join(", ")
                ))
            }
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => out.push(s.clone()),
                        v => return self.fail(key, "a list of strings", v),
                    }
                }
                Ok(Some(out))
            }
            Some(v) => self.fail(key, "a list of strings", v),
        }
    }
}

fn max_of<T: TryFrom<i64>>() -> i64 {
    // The largest i64 that converts; binary search keeps this generic and cheap.
    let (mut lo, mut hi) = (0i64, i64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo) / 2 + 1;
        if T::try_from(mid).is_ok() {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    lo
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "a list".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

impl FileConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => FileConfig::parse(path, &text),
            Err(e) => err(format!(
                "cannot read config file {} ({e}); fix --config",
                path.display()
            )),
        }
    }

    /// Parses TOML `text`; `path` only names the file in messages.
    pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
        let shown = path.display();
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let e: toml::de::Error = e;
                let line = e
                    .span()
                    .map(|s| format!(" line {}", line_of(text, s.start)))
                    .unwrap_or_default();
                let msg = e.message().trim().replace('\n', " ");
                return err(format!("config file {shown}{line}: {msg}"));
            }
        };
        let r = TableReader {
            table: &table,
            ctx: format!("config file {shown}"),
        };
        r.check_keys(TOP_KEYS)?;
        if table.contains_key("endpoint_names") && table.contains_key("endpoint_name") {
            return err(format!(
                "config file {shown}: give `endpoint_names` or `endpoint_name`, not both"
            ));
        }
        let endpoint_names = match r.strings("endpoint_names")? {
            Some(v) => Some(v),
            None => r.strings("endpoint_name")?,
        };
        let mut listeners = Vec::new();
        match table.get("listener") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let toml::Value::Table(t) = item else {
                        return err(format!(
                            "config file {shown}: `listener` must be [[listener]] tables"
                        ));
                    };
                    let name_hint = match t.get("name") {
                        Some(toml::Value::String(n)) => format!(" (name = \"{n}\")"),
                        _ => String::new(),
                    };
                    let lr = TableReader {
                        table: t,
                        ctx: format!("config file {shown}: [[listener]] #{}{name_hint}", i + 1),
                    };
                    lr.check_keys(LISTENER_KEYS)?;
                    listeners.push(FileListener {
                        name: lr.string("name")?,
                        address: lr.string("address")?,
                        transport: lr.string("transport")?,
                        tls: lr.boolean("tls")?,
                        proxy_protocol: lr.boolean("proxy_protocol")?,
                        anonymous: lr.boolean("anonymous")?,
                        anonymous_policy: lr.string("anonymous_policy")?,
                        custom_auth: lr.boolean("custom_auth")?,
                        allow_plaintext_passwords: lr.boolean("allow_plaintext_passwords")?,
                        default_authorizer: lr.string("default_authorizer")?,
                    });
                }
            }
            Some(_) => {
                return err(format!(
                    "config file {shown}: `listener` must be [[listener]] tables"
                ));
            }
        }
        let authorizer_functions = parse_authorizer_functions(path, &table)?;
        Ok(FileConfig {
            path: path.to_path_buf(),
            data_dir: r.string("data_dir")?.map(PathBuf::from),
            listen_mqtts: r.string("listen_mqtts")?,
            listen_https: r.string("listen_https")?,
            listen_mqtt: r.string("listen_mqtt")?,
            listen_metrics: r.string("listen_metrics")?,
            dev: r.boolean("dev")?,
            anonymous_policy: r.string("anonymous_policy")?,
            endpoint_names,
            durability: r.choice("durability")?,
            compat: r.choice("compat")?,
            log_level: r.string("log_level")?,
            region: r.string("region")?,
            account_id: r.string("account_id")?,
            admin_access_key_id: r.string("admin_access_key_id")?,
            admin_secret_access_key: r.string("admin_secret_access_key")?,
            max_connections: r.integer("max_connections")?,
            max_connect_rate_per_ip: r.integer("max_connect_rate_per_ip")?,
            tls_handshake_timeout: r.duration("tls_handshake_timeout")?,
            connect_timeout: r.duration("connect_timeout")?,
            max_client_id_len: r.integer("max_client_id_len")?,
            max_policies_per_certificate: r.integer("max_policies_per_certificate")?,
            max_policies_per_thing_group: r.integer("max_policies_per_thing_group")?,
            max_payload_size: r.size("max_payload_size")?,
            max_shadow_size: r.size("max_shadow_size")?,
            max_shadow_depth: r.integer("max_shadow_depth")?,
            max_shadow_name_len: r.integer("max_shadow_name_len")?,
            max_packet_size: r.size("max_packet_size")?,
            max_topic_length: r.integer("max_topic_length")?,
            max_topic_slashes: r.integer("max_topic_slashes")?,
            default_session_expiry: r.duration("default_session_expiry")?,
            max_session_expiry: r.duration("max_session_expiry")?,
            max_inflight: r.integer("max_inflight")?,
            max_queued_messages: r.integer("max_queued_messages")?,
            max_queued_bytes: r.size("max_queued_bytes")?,
            max_redeliveries: r.integer("max_redeliveries")?,
            max_topic_aliases: r.integer("max_topic_aliases")?,
            max_keep_alive: r.duration("max_keep_alive")?,
            listeners,
            authorizer_functions,
            authorizer_timeout: r.duration("authorizer_timeout")?,
            authorizer_max_concurrent_calls: r.integer("authorizer_max_concurrent_calls")?,
            authorizer_breaker_failures: r.integer("authorizer_breaker_failures")?,
            authorizer_breaker_cool_down: r.duration("authorizer_breaker_cool_down")?,
            authorizer_cache_entries: r.integer("authorizer_cache_entries")?,
            authorizer_webhook_ca: r.string("authorizer_webhook_ca")?,
            authorizer_webhook_allow_plain_http: r
                .boolean("authorizer_webhook_allow_plain_http")?,
        })
    }
}

/// The `[[authorizer_function]]` tables of the file: each needs a valid, unique `name` and
/// a `kind`; the rest of the table is the kind's options.
fn parse_authorizer_functions(
    path: &Path,
    table: &toml::Table,
) -> Result<Vec<AuthorizerFunctionSpec>, ConfigError> {
    let shown = path.display();
    let items = match table.get("authorizer_function") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items,
        Some(_) => {
            return err(format!(
                "config file {shown}: `authorizer_function` must be [[authorizer_function]] tables"
            ));
        }
    };
    let base_dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut specs: Vec<AuthorizerFunctionSpec> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let toml::Value::Table(t) = item else {
            return err(format!(
                "config file {shown}: `authorizer_function` must be [[authorizer_function]] tables"
            ));
        };
        let r = TableReader {
            table: t,
            ctx: format!("config file {shown}: [[authorizer_function]] #{}", i + 1),
        };
        let Some(name) = r.string("name")? else {
            return err(format!(
                "{}: `name` is missing; authorizers name the function ferrocore:function/<name>",
                r.ctx
            ));
        };
        if name.is_empty()
            || name.len() > 128
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return err(format!(
                "{}: name \"{name}\" must be 1-128 of A-Z a-z 0-9 - _",
                r.ctx
            ));
        }
        if specs.iter().any(|f| f.name == name) {
            return err(format!(
                "{}: name \"{name}\" is used twice; names must be unique",
                r.ctx
            ));
        }
        let Some(kind) = r.string("kind")? else {
            return err(format!(
                "{}: `kind` is missing; use jwt, password or wasm",
                r.ctx
            ));
        };
        let mut options = t.clone();
        options.remove("name");
        options.remove("kind");
        specs.push(AuthorizerFunctionSpec {
            context: format!("config file {shown}: [[authorizer_function]] \"{name}\""),
            name,
            kind,
            options,
            base_dir: base_dir.clone(),
        });
    }
    Ok(specs)
}

/// A merged value and where it came from, for messages.
struct Picked<T> {
    value: T,
    from: String,
}

/// Flag (or its environment variable, which clap already folded in) over file over default.
fn pick<T>(
    flag: Option<T>,
    file: Option<T>,
    flag_name: &str,
    key: &str,
    file_path: &Path,
) -> Option<Picked<T>> {
    match (flag, file) {
        (Some(value), _) => Some(Picked {
            value,
            from: flag_name.to_owned(),
        }),
        (None, Some(value)) => Some(Picked {
            value,
            from: format!("`{key}` in {}", file_path.display()),
        }),
        (None, None) => None,
    }
}

fn pick_or<T>(
    flag: Option<T>,
    file: Option<T>,
    flag_name: &str,
    key: &str,
    file_path: &Path,
    default: T,
) -> Picked<T> {
    pick(flag, file, flag_name, key, file_path).unwrap_or_else(|| Picked {
        value: default,
        from: format!("{flag_name} (default)"),
    })
}

/// Parses a listen address: `host:port`, `[v6]:port`, or `:port` for every IPv4 interface.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        return match port.parse::<u16>() {
            Ok(p) => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p)),
            Err(_) => Err(format!("\"{s}\" is not an address like 0.0.0.0:8883")),
        };
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !s.contains(':') {
        return Err(format!(
            "\"{s}\" has no port; write it like 0.0.0.0:8883 (port 0 picks a free one)"
        ));
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("\"{s}\" resolves to no address")),
        Err(_) => Err(format!("\"{s}\" is not an address like 0.0.0.0:8883")),
    }
}

/// Parses `"10s"`, `"500ms"`, `"2m"`, `"1h"`, `"1d"` or whole seconds (`"10"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("\"{s}\" is not a duration like 10s, 500ms, 2m, 1h or 1d");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "" | "s" | "sec" | "secs" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" | "mins" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        "d" => Duration::from_secs(n.checked_mul(86_400).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok(d)
}

/// Parses a byte count: `131072`, `128K`/`128KiB` (1024), `128KB`/`128kB` (1000), likewise
/// M/MiB/MB and G/GiB/GB.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("\"{s}\" is not a size like 131072, 128KiB or 1MiB");
    let n: usize = num.parse().map_err(|_| bad())?;
    let mult: usize = match unit.trim() {
        "" | "B" | "b" => 1,
        "K" | "k" | "KiB" | "kiB" => 1 << 10,
        "KB" | "kB" => 1000,
        "M" | "MiB" => 1 << 20,
        "MB" => 1_000_000,
        "G" | "GiB" => 1 << 30,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// A host name or IP address acceptable in a certificate's subject alternative names.
pub fn valid_endpoint_name(name: &str) -> bool {
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    name.split('.').enumerate().all(|(i, label)| {
        (i == 0 && label == "*")
            || (!label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    })
}

fn valid_listener_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Settings {
    /// Reads the `--config` file (if any) and merges it under the flags and environment.
    pub fn from_flags(flags: ServeFlags) -> Result<Settings, ConfigError> {
        let file = match &flags.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Settings::resolve(flags, file)
    }

    /// Merges `flags` (flags and environment) over `file` over the defaults, and checks it.
    pub fn resolve(flags: ServeFlags, file: FileConfig) -> Result<Settings, ConfigError> {
        let fp = file.path.clone();
        let fp = fp.as_path();
        let authorizer_invoker = resolve_invoker_config(&flags, &file, fp)?;

        let data_dir = pick_or(
            flags.data_dir,
            file.data_dir,
            "--data-dir",
            "data_dir",
            fp,
            PathBuf::from(DEFAULT_DATA_DIR),
        )
        .value;
        if data_dir.as_os_str().is_empty() {
            return err("--data-dir is empty; name a directory");
        }
        let dev = pick_or(flags.dev, file.dev, "--dev", "dev", fp, false).value;

        // Endpoint names: the flag (repeatable) replaces the file's list.
        let names = if flags.endpoint_name.is_empty() {
            pick(
                None,
                file.endpoint_names,
                "--endpoint-name",
                "endpoint_names",
                fp,
            )
        } else {
            pick(
                Some(flags.endpoint_name),
                None,
                "--endpoint-name",
                "endpoint_names",
                fp,
            )
        };
        let mut endpoint_names: Vec<String> = Vec::new();
        if let Some(p) = names {
            for n in p.value {
                let n = n.trim().to_ascii_lowercase();
                if n.is_empty() {
                    continue;
                }
                if !valid_endpoint_name(&n) {
                    return err(format!(
                        "{}: \"{n}\" is not a host name or IP address",
                        p.from
                    ));
                }
                if !endpoint_names.contains(&n) {
                    endpoint_names.push(n);
                }
            }
        }

        let durability: Durability = pick_or(
            flags.durability,
            file.durability,
            "--durability",
            "durability",
            fp,
            DurabilityArg::Process,
        )
        .value
        .into();
        let compat: Compat = pick_or(
            flags.compat,
            file.compat,
            "--compat",
            "compat",
            fp,
            CompatArg::Mqtt,
        )
        .value
        .into();
        let log_level = pick(
            flags.log_level,
            file.log_level,
            "--log-level",
            "log_level",
            fp,
        )
        .map(|p| p.value);

        let aws = aws_settings(
            AwsInput {
                region: flags.region,
                account_id: flags.account_id,
                access_key_id: flags.admin_access_key_id,
                secret: flags.admin_secret_access_key,
            },
            AwsInput {
                region: file.region,
                account_id: file.account_id,
                access_key_id: file.admin_access_key_id,
                secret: file.admin_secret_access_key,
            },
            fp,
        )?;

        // Admission.
        let max_connections = pick_or(
            flags.max_connections,
            file.max_connections,
            "--max-connections",
            "max_connections",
            fp,
            100_000,
        );
        if max_connections.value == 0 || max_connections.value > tokio::sync::Semaphore::MAX_PERMITS
        {
            return err(format!(
                "{}: must be between 1 and {}",
                max_connections.from,
                tokio::sync::Semaphore::MAX_PERMITS
            ));
        }
        let rate = pick_or(
            flags.max_connect_rate_per_ip,
            file.max_connect_rate_per_ip,
            "--max-connect-rate-per-ip",
            "max_connect_rate_per_ip",
            fp,
            1000,
        )
        .value;
        let handshake = pick_or(
            flags.tls_handshake_timeout,
            file.tls_handshake_timeout,
            "--tls-handshake-timeout",
            "tls_handshake_timeout",
            fp,
            Duration::from_secs(10),
        );
        if handshake.value.is_zero() {
            return err(format!("{}: must be more than 0s", handshake.from));
        }
        let admission = AdmissionConfig {
            max_connections: max_connections.value,
            max_connect_rate_per_ip: rate,
            tls_handshake_timeout: handshake.value,
        };

        // Broker limits.
        let d = BrokerConfig::default();
        let connect_timeout = pick_or(
            flags.connect_timeout,
            file.connect_timeout,
            "--connect-timeout",
            "connect_timeout",
            fp,
            d.connect_timeout,
        );
        if connect_timeout.value.is_zero() {
            return err(format!("{}: must be more than 0s", connect_timeout.from));
        }
        let policies_per_certificate = pick_or(
            flags.max_policies_per_certificate,
            file.max_policies_per_certificate,
            "--max-policies-per-certificate",
            "max_policies_per_certificate",
            fp,
            PolicyLimits::default().max_policies_per_certificate,
        );
        let policies_per_group = pick_or(
            flags.max_policies_per_thing_group,
            file.max_policies_per_thing_group,
            "--max-policies-per-thing-group",
            "max_policies_per_thing_group",
            fp,
            PolicyLimits::default().max_policies_per_thing_group,
        );
        for limit in [&policies_per_certificate, &policies_per_group] {
            if limit.value == 0 {
                return err(format!("{}: must be at least 1", limit.from));
            }
        }
        let policy_limits = PolicyLimits {
            max_policies_per_certificate: policies_per_certificate.value,
            max_policies_per_thing_group: policies_per_group.value,
        };
        let shadow = shadow_config(
            ShadowInput {
                size: flags.max_shadow_size,
                depth: flags.max_shadow_depth,
                name_len: flags.max_shadow_name_len,
            },
            ShadowInput {
                size: file.max_shadow_size,
                depth: file.max_shadow_depth,
                name_len: file.max_shadow_name_len,
            },
            fp,
        )?;
        let client_id = pick_or(
            flags.max_client_id_len,
            file.max_client_id_len,
            "--max-client-id-len",
            "max_client_id_len",
            fp,
            d.max_client_id_len,
        );
        if client_id.value < 23 || client_id.value > 65_535 {
            return err(format!(
                "{}: must be between 23 (the MQTT minimum) and 65535",
                client_id.from
            ));
        }
        let payload = pick(
            flags.max_payload_size,
            file.max_payload_size,
            "--max-payload-size",
            "max_payload_size",
            fp,
        );
        let packet = pick(
            flags.max_packet_size,
            file.max_packet_size,
            "--max-packet-size",
            "max_packet_size",
            fp,
        );
        let (payload, packet) = match (payload, packet) {
            (Some(pl), Some(pk)) => (pl, pk),
            (Some(pl), None) => {
                let v = pl
                    .value
                    .saturating_add(512)
                    .max(d.max_packet_size)
                    .min(MQTT_MAX_PACKET);
                (
                    pl,
                    Picked {
                        value: v,
                        from: "--max-packet-size (default)".into(),
                    },
                )
            }
            (None, Some(pk)) => {
                let v = d.max_payload_size.min(pk.value);
                (
                    Picked {
                        value: v,
                        from: "--max-payload-size (default)".into(),
                    },
                    pk,
                )
            }
            (None, None) => (
                Picked {
                    value: d.max_payload_size,
                    from: "--max-payload-size (default)".into(),
                },
                Picked {
                    value: d.max_packet_size,
                    from: "--max-packet-size (default)".into(),
                },
            ),
        };
        if packet.value < 64 || packet.value > MQTT_MAX_PACKET {
            return err(format!(
                "{}: must be between 64 and {MQTT_MAX_PACKET} bytes",
                packet.from
            ));
        }
        if payload.value > packet.value {
            return err(format!(
                "{} ({} bytes) is larger than {} ({} bytes); raise the packet size or lower the payload size",
                payload.from, payload.value, packet.from, packet.value
            ));
        }
        let topic_len = pick_or(
            flags.max_topic_length,
            file.max_topic_length,
            "--max-topic-length",
            "max_topic_length",
            fp,
            d.topic_limits.max_length,
        );
        if topic_len.value == 0 || topic_len.value > 65_535 {
            return err(format!("{}: must be between 1 and 65535", topic_len.from));
        }
        let slashes = pick_or(
            flags.max_topic_slashes,
            file.max_topic_slashes,
            "--max-topic-slashes",
            "max_topic_slashes",
            fp,
            d.topic_limits.max_slashes,
        )
        .value;
        let def_expiry = pick_or(
            flags.default_session_expiry,
            file.default_session_expiry,
            "--default-session-expiry",
            "default_session_expiry",
            fp,
            d.default_session_expiry,
        );
        let max_expiry = pick_or(
            flags.max_session_expiry,
            file.max_session_expiry,
            "--max-session-expiry",
            "max_session_expiry",
            fp,
            d.max_session_expiry,
        );
        for p in [&def_expiry, &max_expiry] {
            if p.value.as_secs() > u64::from(u32::MAX) {
                return err(format!("{}: must be at most {} seconds", p.from, u32::MAX));
            }
        }
        if def_expiry.value > max_expiry.value {
            return err(format!(
                "{} is longer than {}",
                def_expiry.from, max_expiry.from
            ));
        }
        let inflight = pick_or(
            flags.max_inflight,
            file.max_inflight,
            "--max-inflight",
            "max_inflight",
            fp,
            d.max_inflight,
        );
        if inflight.value == 0 {
            return err(format!("{}: must be at least 1", inflight.from));
        }
        let queued = pick_or(
            flags.max_queued_messages,
            file.max_queued_messages,
            "--max-queued-messages",
            "max_queued_messages",
            fp,
            d.max_queued_messages,
        )
        .value;
        let queued_bytes = pick_or(
            flags.max_queued_bytes,
            file.max_queued_bytes,
            "--max-queued-bytes",
            "max_queued_bytes",
            fp,
            d.max_queued_bytes,
        )
        .value;
        let redeliveries = pick_or(
            flags.max_redeliveries,
            file.max_redeliveries,
            "--max-redeliveries",
            "max_redeliveries",
            fp,
            d.max_redeliveries,
        )
        .value;
        let aliases = pick_or(
            flags.max_topic_aliases,
            file.max_topic_aliases,
            "--max-topic-aliases",
            "max_topic_aliases",
            fp,
            d.max_topic_aliases,
        )
        .value;
        let keep_alive = pick_or(
            flags.max_keep_alive,
            file.max_keep_alive,
            "--max-keep-alive",
            "max_keep_alive",
            fp,
            Duration::from_secs(u64::from(d.max_keep_alive)),
        );
        let Ok(keep_alive_secs) = u16::try_from(keep_alive.value.as_secs()) else {
            return err(format!(
                "{}: must be at most 65535 seconds",
                keep_alive.from
            ));
        };
        let broker = BrokerConfig {
            compat,
            max_client_id_len: client_id.value,
            max_payload_size: payload.value,
            max_packet_size: packet.value,
            topic_limits: ferrocore_mqtt::topic::TopicLimits {
                max_length: topic_len.value,
                max_slashes: slashes,
            },
            default_session_expiry: def_expiry.value,
            max_session_expiry: max_expiry.value,
            max_inflight: inflight.value,
            max_queued_messages: queued,
            max_queued_bytes: queued_bytes,
            max_redeliveries: redeliveries,
            max_topic_aliases: aliases,
            max_keep_alive: keep_alive_secs,
            connect_timeout: connect_timeout.value,
            arns: Arns::new(&aws.region, &aws.account_id),
        };

        // The policy of anonymous clients, for anonymous listeners that name none.
        let anonymous_policy = match (flags.anonymous_policy, file.anonymous_policy) {
            (Some(path), _) => Some(AnonymousPolicy::load(&path, "--anonymous-policy")?),
            (None, Some(path)) => Some(AnonymousPolicy::load(
                &relative_to_file(fp, &path),
                &format!("`anonymous_policy` in {}", fp.display()),
            )?),
            (None, None) => None,
        };

        // Listeners: the flag shortcuts first, then [[listener]] tables.
        let mut listeners = Vec::new();
        let shortcut = |flag: Option<String>,
                        file: Option<String>,
                        flag_name: &str,
                        key: &str,
                        default: Option<&str>|
         -> Result<Option<SocketAddr>, ConfigError> {
            let p = match pick(flag, file, flag_name, key, fp) {
                Some(p) => p,
                None => match default {
                    Some(d) => Picked {
                        value: d.to_owned(),
                        from: flag_name.to_owned(),
                    },
                    None => return Ok(None),
                },
            };
            if matches!(p.value.trim(), "off" | "none" | "") {
                return Ok(None);
            }
            parse_listen_addr(&p.value)
                .map(Some)
                .map_err(|e| ConfigError(format!("{}: {e}", p.from)))
        };
        if let Some(address) = shortcut(
            flags.listen_mqtts,
            file.listen_mqtts,
            "--listen-mqtts",
            "listen_mqtts",
            Some(DEFAULT_MQTTS),
        )? {
            listeners.push(ListenerSpec {
                name: "mqtts".into(),
                address,
                transport: TransportName::Mqtts,
                proxy_protocol: false,
                anonymous: false,
                anonymous_policy: None,
                // Beyond AWS (which refuses it on 8883), except in AWS mode.
                custom_auth: compat != Compat::Aws,
                default_authorizer: None,
                hint: "choose another with --listen-mqtts".into(),
            });
        }
        if let Some(address) = shortcut(
            flags.listen_https,
            file.listen_https,
            "--listen-https",
            "listen_https",
            Some(DEFAULT_HTTPS),
        )? {
            listeners.push(ListenerSpec {
                name: "https".into(),
                address,
                transport: TransportName::Https,
                proxy_protocol: false,
                anonymous: false,
                anonymous_policy: None,
                // As AWS on 443: ALPN `mqtt` and WebSocket.
                custom_auth: true,
                default_authorizer: None,
                hint: "choose another with --listen-https".into(),
            });
        }
        let plain_default = if dev { Some(DEFAULT_DEV_MQTT) } else { None };
        if let Some(address) = shortcut(
            flags.listen_mqtt,
            file.listen_mqtt,
            "--listen-mqtt",
            "listen_mqtt",
            plain_default,
        )? {
            listeners.push(ListenerSpec {
                name: "mqtt".into(),
                address,
                transport: TransportName::Mqtt,
                proxy_protocol: false,
                anonymous: dev,
                anonymous_policy: anonymous_policy.clone().filter(|_| dev),
                custom_auth: false,
                default_authorizer: None,
                hint: "choose another with --listen-mqtt".into(),
            });
        }
        let metrics_explicit = flags.listen_metrics.is_some() || file.listen_metrics.is_some();
        let metrics = shortcut(
            flags.listen_metrics,
            file.listen_metrics,
            "--listen-metrics",
            "listen_metrics",
            Some(DEFAULT_METRICS),
        )?
        .map(|address| MetricsListen {
            address,
            explicit: metrics_explicit,
        });
        for (i, l) in file.listeners.into_iter().enumerate() {
            let mut spec = file_listener(i, l, fp)?;
            if spec.anonymous && spec.anonymous_policy.is_none() {
                spec.anonymous_policy = anonymous_policy.clone();
            }
            listeners.push(spec);
        }
        let mut seen = HashSet::new();
        for l in &listeners {
            if !seen.insert(l.name.as_str()) {
                return err(format!(
                    "config file {}: listener name \"{}\" is used twice; names must be unique (mqtts, https and mqtt are taken by the --listen-* flags)",
                    fp.display(),
                    l.name
                ));
            }
        }

        Ok(Settings {
            data_dir,
            listeners,
            endpoint_names,
            durability,
            dev,
            log_level,
            broker,
            admission,
            aws,
            metrics,
            policy_limits,
            shadow,
            authorizer_invoker,
            authorizer_functions: file.authorizer_functions,
        })
    }
}

/// The shadow limits as given by flags (or the environment), or by the file.
struct ShadowInput {
    size: Option<usize>,
    depth: Option<usize>,
    name_len: Option<usize>,
}

/// The shadow limits: AWS's unless given, each at least 1.
fn shadow_config(
    flags: ShadowInput,
    file: ShadowInput,
    fp: &Path,
) -> Result<ShadowConfig, ConfigError> {
    let d = ShadowConfig::default();
    let size = pick_or(
        flags.size,
        file.size,
        "--max-shadow-size",
        "max_shadow_size",
        fp,
        d.limits.max_state_bytes,
    );
    let depth = pick_or(
        flags.depth,
        file.depth,
        "--max-shadow-depth",
        "max_shadow_depth",
        fp,
        d.limits.max_depth,
    );
    let name = pick_or(
        flags.name_len,
        file.name_len,
        "--max-shadow-name-len",
        "max_shadow_name_len",
        fp,
        d.max_shadow_name,
    );
    for limit in [&size, &depth, &name] {
        if limit.value == 0 {
            return err(format!("{}: must be at least 1", limit.from));
        }
    }
    let mut config = d;
    config.limits.max_state_bytes = size.value;
    config.limits.max_depth = depth.value;
    config.max_shadow_name = name.value;
    Ok(config)
}

/// The AWS settings as given by flags (or the environment), or by the file.
struct AwsInput {
    region: Option<String>,
    account_id: Option<String>,
    access_key_id: Option<String>,
    secret: Option<String>,
}

fn aws_settings(flags: AwsInput, file: AwsInput, fp: &Path) -> Result<AwsSettings, ConfigError> {
    let region = pick_or(
        flags.region,
        file.region,
        "--region",
        "region",
        fp,
        DEFAULT_REGION.to_owned(),
    );
    let valid_region = !region.value.is_empty()
        && region.value.len() <= 32
        && region
            .value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_region {
        return err(format!(
            "{}: region must be like us-east-1 (lowercase letters, digits, '-')",
            region.from
        ));
    }
    let account = pick_or(
        flags.account_id,
        file.account_id,
        "--account-id",
        "account_id",
        fp,
        DEFAULT_ACCOUNT_ID.to_owned(),
    );
    if account.value.len() != 12 || !account.value.bytes().all(|b| b.is_ascii_digit()) {
        return err(format!(
            "{}: the account id must be 12 digits",
            account.from
        ));
    }
    let key = pick(
        flags.access_key_id,
        file.access_key_id,
        "--admin-access-key-id",
        "admin_access_key_id",
        fp,
    );
    let secret = pick(
        flags.secret,
        file.secret,
        "--admin-secret-access-key",
        "admin_secret_access_key",
        fp,
    );
    let admin_key = match (key, secret) {
        (None, None) => None,
        (Some(k), Some(s)) => {
            let valid_key = (16..=128).contains(&k.value.len())
                && k.value.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid_key {
                return err(format!(
                    "{}: an access key id is 16 to 128 letters and digits",
                    k.from
                ));
            }
            if s.value.len() < 16 || s.value.chars().any(char::is_whitespace) {
                return err(format!(
                    "{}: a secret access key is at least 16 characters, without spaces",
                    s.from
                ));
            }
            Some((k.value, s.value))
        }
        (Some(k), None) => return err(format!("{} needs --admin-secret-access-key too", k.from)),
        (None, Some(s)) => return err(format!("{} needs --admin-access-key-id too", s.from)),
    };
    Ok(AwsSettings {
        region: region.value,
        account_id: account.value,
        admin_key,
    })
}

fn file_listener(i: usize, l: FileListener, fp: &Path) -> Result<ListenerSpec, ConfigError> {
    let name = l.name.unwrap_or_else(|| format!("listener-{}", i + 1));
    let ctx = format!("config file {}: [[listener]] \"{name}\"", fp.display());
    if !valid_listener_name(&name) {
        return err(format!(
            "{ctx}: `name` may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    let Some(address) = l.address else {
        return err(format!(
            "{ctx}: `address` is missing (e.g. address = \"0.0.0.0:9883\")"
        ));
    };
    let address =
        parse_listen_addr(&address).map_err(|e| ConfigError(format!("{ctx}: `address`: {e}")))?;
    let Some(t) = l.transport else {
        return err(format!(
            "{ctx}: `transport` is missing (mqtt, mqtts, https or ws)"
        ));
    };
    let Some(mut transport) = TransportName::parse(&t) else {
        return err(format!(
            "{ctx}: `transport` must be one of \"mqtt\", \"mqtts\", \"https\", \"ws\", not \"{t}\""
        ));
    };
    match (transport, l.tls) {
        (TransportName::Mqtt, Some(true)) => transport = TransportName::Mqtts,
        (TransportName::Mqtts | TransportName::Https, Some(false)) => {
            return err(format!(
                "{ctx}: transport \"{t}\" is always TLS; use \"mqtt\" or \"ws\" for plain TCP"
            ));
        }
        (TransportName::Ws, Some(true)) => {
            return err(format!(
                "{ctx}: transport \"ws\" is plain; use \"https\" for WebSocket over TLS"
            ));
        }
        _ => {}
    }
    let anonymous = l.anonymous.unwrap_or(false);
    let anonymous_policy = match l.anonymous_policy {
        Some(_) if !anonymous => {
            return err(format!(
                "{ctx}: `anonymous_policy` is for anonymous listeners; add anonymous = true"
            ));
        }
        Some(path) => Some(AnonymousPolicy::load(
            &relative_to_file(fp, &path),
            &format!("{ctx}: `anonymous_policy`"),
        )?),
        None => None,
    };
    let custom_auth = listener_custom_auth(
        &ctx,
        transport,
        anonymous,
        l.custom_auth,
        l.allow_plaintext_passwords,
    )?;
    let default_authorizer = match l.default_authorizer {
        Some(_) if !custom_auth => {
            return err(format!(
                "{ctx}: `default_authorizer` is for listeners with custom authentication; add custom_auth = true"
            ));
        }
        Some(authorizer) => {
            check_authorizer_name(&authorizer).map_err(|problem| {
                ConfigError(format!("{ctx}: `default_authorizer`: the name {problem}"))
            })?;
            Some(authorizer)
        }
        None => None,
    };
    Ok(ListenerSpec {
        hint: format!(
            "choose another `address` for [[listener]] \"{name}\" in {}",
            fp.display()
        ),
        name,
        address,
        transport,
        proxy_protocol: l.proxy_protocol.unwrap_or(false),
        anonymous,
        anonymous_policy,
        custom_auth,
        default_authorizer,
    })
}

/// Whether a `[[listener]]` accepts custom authentication (see the module documentation).
fn listener_custom_auth(
    ctx: &str,
    transport: TransportName,
    anonymous: bool,
    declared: Option<bool>,
    allow_plaintext_passwords: Option<bool>,
) -> Result<bool, ConfigError> {
    let plain = matches!(transport, TransportName::Mqtt | TransportName::Ws);
    let custom_auth = match declared {
        Some(true) if anonymous => {
            return err(format!(
                "{ctx}: `custom_auth` and `anonymous` exclude each other (custom authorizers decide every client without a certificate); drop one"
            ));
        }
        Some(custom_auth) => custom_auth,
        None => transport == TransportName::Https && !anonymous,
    };
    match (plain, custom_auth, allow_plaintext_passwords) {
        (true, true, Some(true)) => Ok(true),
        (true, true, _) => err(format!(
            "{ctx}: custom_auth on a plain (non-TLS) listener sends tokens and passwords in clear; add allow_plaintext_passwords = true to accept that, or use transport \"mqtts\" / \"https\""
        )),
        (_, _, Some(true)) => err(format!(
            "{ctx}: `allow_plaintext_passwords` is for plain (mqtt, ws) listeners with custom_auth = true"
        )),
        _ => Ok(custom_auth),
    }
}

/// A path from the configuration file: relative ones are relative to the file's directory.
/// The custom authorizers' invoker limits from flags, file and defaults.
fn resolve_invoker_config(
    flags: &ServeFlags,
    file: &FileConfig,
    fp: &Path,
) -> Result<InvokerConfig, ConfigError> {
    let d = InvokerConfig::default();
    let timeout = pick_or(
        flags.authorizer_timeout,
        file.authorizer_timeout,
        "--authorizer-timeout",
        "authorizer_timeout",
        fp,
        d.timeout,
    );
    if timeout.value.is_zero() {
        return err(format!("{}: must be more than 0s", timeout.from));
    }
    let concurrent = pick_or(
        flags.authorizer_max_concurrent_calls,
        file.authorizer_max_concurrent_calls,
        "--authorizer-max-concurrent-calls",
        "authorizer_max_concurrent_calls",
        fp,
        d.max_concurrent_calls,
    );
    if concurrent.value == 0 {
        return err(format!("{}: must be at least 1", concurrent.from));
    }
    let failures = pick_or(
        flags.authorizer_breaker_failures,
        file.authorizer_breaker_failures,
        "--authorizer-breaker-failures",
        "authorizer_breaker_failures",
        fp,
        d.breaker_failures,
    );
    if failures.value == 0 {
        return err(format!("{}: must be at least 1", failures.from));
    }
    let cool_down = pick_or(
        flags.authorizer_breaker_cool_down,
        file.authorizer_breaker_cool_down,
        "--authorizer-breaker-cool-down",
        "authorizer_breaker_cool_down",
        fp,
        d.breaker_cool_down,
    );
    let cache_entries = pick_or(
        flags.authorizer_cache_entries,
        file.authorizer_cache_entries,
        "--authorizer-cache-entries",
        "authorizer_cache_entries",
        fp,
        d.max_cached_answers,
    );
    let ca = match (&flags.authorizer_webhook_ca, &file.authorizer_webhook_ca) {
        (Some(path), _) => Some((path.clone(), "--authorizer-webhook-ca".to_owned())),
        (None, Some(path)) => Some((
            relative_to_file(fp, path),
            format!("`authorizer_webhook_ca` in {}", fp.display()),
        )),
        (None, None) => None,
    };
    let extra_roots = match ca {
        None => Vec::new(),
        Some((path, from)) => load_ca_certificates(&path, &from)?,
    };
    let allow_plain_http = pick_or(
        flags.authorizer_webhook_allow_plain_http,
        file.authorizer_webhook_allow_plain_http,
        "--authorizer-webhook-allow-plain-http",
        "authorizer_webhook_allow_plain_http",
        fp,
        false,
    );
    Ok(InvokerConfig {
        timeout: timeout.value,
        max_concurrent_calls: concurrent.value,
        breaker_failures: failures.value,
        breaker_cool_down: cool_down.value,
        max_cached_answers: cache_entries.value,
        webhook: WebhookOptions {
            extra_roots,
            allow_plain_http: allow_plain_http.value,
        },
        ..d
    })
}

/// The CA certificates of a PEM file (at least one).
fn load_ca_certificates(
    path: &Path,
    from: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let fail = |why: String| err(format!("{from}: {}: {why}", path.display()));
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) => return fail(format!("cannot read it ({e})")),
    };
    let certificates: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certificates {
        Ok(certificates) if !certificates.is_empty() => Ok(certificates),
        Ok(_) => fail("holds no PEM CERTIFICATE block".into()),
        Err(e) => fail(format!("is not valid PEM ({e})")),
    }
}

fn relative_to_file(file: &Path, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        return p;
    }
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("131072"), Ok(131_072));
        assert_eq!(parse_size("128KiB"), Ok(131_072));
        assert_eq!(parse_size("128K"), Ok(131_072));
        assert_eq!(parse_size("1kB"), Ok(1000));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert!(parse_size("12 furlongs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_listen_addr("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()))
        );
        assert_eq!(parse_listen_addr(":8883").map(|a| a.port()), Ok(8883));
        assert_eq!(
            parse_listen_addr("[::1]:1883").map(|a| a.is_ipv6()),
            Ok(true)
        );
        assert!(parse_listen_addr("localhost:0").is_ok());
        assert!(parse_listen_addr("8883").is_err());
        assert!(parse_listen_addr("1.2.3.4:99999").is_err());
    }

    #[test]
    fn endpoint_names() {
        assert!(valid_endpoint_name("iot.example.com"));
        assert!(valid_endpoint_name("*.example.com"));
        assert!(valid_endpoint_name("10.0.0.1"));
        assert!(valid_endpoint_name("fe80::1"));
        assert!(!valid_endpoint_name("bad name"));
        assert!(!valid_endpoint_name("-x.com"));
        assert!(!valid_endpoint_name(""));
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("listen_mqtts", "listen_mqttz"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
