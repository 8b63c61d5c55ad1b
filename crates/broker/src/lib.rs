//! The MQTT broker: sessions, subscriptions, QoS, retained messages, wills. Listeners hand it
//! established byte streams (TCP, TLS or WebSocket) through [`Broker::serve`].
//!
//! Working state lives in memory; persistent sessions and retained messages are also written
//! to the [`Store`], and anything acknowledged to a client (PUBACK, PUBREC, SUBACK of a
//! persistent session) waits for that write to be durable.

mod auth;
mod config;
mod connection;
mod custom_auth;
mod data_plane;
mod events;
mod message;
mod session;
mod throttle;
mod trie;

pub use auth::{
    Authentication, CertificateAuthorizer, DENIALS_LOGGED_PER_MINUTE, Denials, Dependency, Grant,
};
pub use config::{AWS_QUOTAS, AwsQuotas, BrokerConfig, Compat};
pub use custom_auth::{
    CUSTOM_AUTH_METHOD, CustomAuthAttempt, CustomAuthDenied, CustomAuthProtocol,
    CustomAuthenticator, CustomGrant, HttpUpgrade,
};
pub use data_plane::{
    Caller, ConnectionStatus, HttpPublish, HttpPublishError, RetainedSummary, RetainedView,
};
pub use ferrocore_policy;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrocore_mqtt::{QoS, SubscriptionOptions, reason, topic};
use ferrocore_policy::{Action, Arns, PolicySet};
use ferrocore_store::{Commit, OutboundRecord, SessionRecord, Store, SubscriptionRecord, WriteOp};
use parking_lot::{Mutex, RwLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::auth::{Authz, ConnectionIndex, DenialCounters, Identity, Principal};
use crate::events::{Announcement, PresenceVersions};
use crate::message::{Message, unix_ms};
use crate::session::{Delivery, Enqueued, LastDisconnect, Session, SessionLimits};
use crate::trie::{Subscriber, Trie};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Store(#[from] ferrocore_store::StoreError),
}

/// Answers publishes to topics the server serves itself (AWS's device-shadow topics);
/// installed once with [`Broker::set_topic_service`].
pub trait TopicService: Send + Sync + 'static {
    /// Called for every authorized publish (MQTT PUBLISH, and HTTP publishes through
    /// [`Broker::publish_http`]) whose topic starts with `$aws/`, before it is routed to
    /// subscribers (it is still routed as usual). Must not block: spawn if work is needed.
    fn published(&self, topic: &str, payload: &bytes::Bytes, origin: &PublishOrigin);
}

/// Who published a message handed to a [`TopicService`].
#[derive(Debug, Clone)]
pub struct PublishOrigin {
    /// MQTT client id; `None` for HTTP publishes.
    pub client_id: Option<Arc<str>>,
}

/// Topics under this prefix are offered to the [`TopicService`].
pub(crate) const SERVICE_TOPIC_PREFIX: &str = "$aws/";

/// How a listener lets clients in.
#[derive(Debug, Clone, Default)]
pub struct ListenerAuth {
    /// The listener's name, for logs and `listeners.json`.
    pub name: String,
    /// Clients without credentials are admitted, with `anonymous_policy`.
    pub anonymous: bool,
    /// The policies anonymous clients get; `None`: everything is allowed (explicitly open
    /// development listeners). Decided in the context of the client id, source address and
    /// server name (`iot:ClientId`, `aws:SourceIp`, `iot:DomainName`).
    pub anonymous_policy: Option<Arc<PolicySet>>,
    /// Clients without a device certificate are decided by the custom authenticator
    /// ([`Authentication::custom`]), before (and instead of) `anonymous`.
    pub custom_auth: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    WebSocket,
    WebSocketTls,
}

/// What the TLS handshake established, when there was one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub server_name: Option<String>,
    pub alpn: Option<Vec<u8>>,
    /// DER certificates the client presented, end entity first.
    pub peer_certificates: Vec<Vec<u8>>,
    /// AWS's id of the end-entity certificate (lowercase hex SHA-256 of its DER), when the
    /// client presented one: the principal of an MQTT-over-TLS connection.
    pub peer_certificate_id: Option<String>,
}

/// Where a connection came from and how.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address (from PROXY protocol when the listener uses it).
    pub peer_addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub transport: Transport,
    pub tls: Option<TlsInfo>,
    /// The HTTP request that upgraded the connection, for MQTT over WebSocket: what a custom
    /// authorizer may read credentials from.
    pub http: Option<HttpUpgrade>,
    pub listener: Arc<ListenerAuth>,
}

/// What publishing a message did: the commit that makes its durable effects durable, and the
/// slow subscribers whose queues took it beyond their limits (its publisher waits for them).
pub(crate) struct Routed {
    pub commit: Option<Commit>,
    pub pressured: Vec<Arc<Session>>,
}

/// A retained message and when it was last set (Unix ms).
pub(crate) struct Retained {
    message: Arc<Message>,
    modified_at_ms: u64,
}

/// A session as a trie entry: compared by its unique key.
#[derive(Clone)]
pub(crate) struct SessionRef(Arc<Session>);

impl PartialEq for SessionRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

/// What a change of a domain configuration does to the connections made to its domain name
/// ([`Broker::server_name_changed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainChange {
    /// Close them: the domain is disabled or deleted, or its allowed authentication types or
    /// protocols changed.
    Close,
    /// Ask their custom authorizer again: the domain's default authorizer changed.
    Reauthenticate,
}

/// Connections asked to re-authenticate at once after their authorizer changed
/// ([`Broker::reauthenticate_authorizer`]); the rest follow in batches of this size.
pub const REAUTHENTICATION_BATCH: usize = 100;
/// The pause between two batches of [`REAUTHENTICATION_BATCH`] re-authentications: at most
/// 1,000 connections a second go back to a changed authorizer.
pub const REAUTHENTICATION_PAUSE: Duration = Duration::from_millis(100);

pub struct Broker {
    config: BrokerConfig,
    store: Store,
    limits: SessionLimits,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    trie: RwLock<Trie<SessionRef>>,
    /// By topic, in byte-wise order (ListRetainedMessages pages through it).
    retained: RwLock<BTreeMap<String, Retained>>,
    next_key: AtomicU64,
    connections: AtomicUsize,
    connections_closed: Notify,
    shutting_down: AtomicBool,
    /// AWS mode: when each client id last connected, for the per-client-id connect rate.
    recent_connects: Mutex<HashMap<Arc<str>, Instant>>,
    auth: Authentication,
    /// Open connections by what their authorization depends on (certificate, thing, groups,
    /// policies).
    index: Arc<ConnectionIndex>,
    denials: DenialCounters,
    topic_service: OnceLock<Arc<dyn TopicService>>,
    /// Lifecycle version numbers by client id.
    presence_versions: PresenceVersions,
}

/// An open connection, as [`Broker::connections_depending_on`] finds it, to be given its new
/// authorization with [`Broker::reauthorize`].
#[derive(Clone)]
pub struct OpenConnection(Arc<Principal>);

impl OpenConnection {
    pub fn client_id(&self) -> &str {
        self.0.client_id()
    }

    /// The certificate it authenticated with.
    pub fn certificate_id(&self) -> Option<&str> {
        self.0.certificate_id().map(|id| &**id)
    }
}

impl std::fmt::Debug for OpenConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenConnection")
            .field("client_id", &self.client_id())
            .field("principal", &self.0.identity)
            .finish()
    }
}

/// What [`Broker::reauthorize`] did to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reauthorized {
    /// The new policies are in force.
    Updated,
    /// `iot:Connect` is no longer allowed (or the certificate no longer may connect): the
    /// connection is being closed (MQTT 5: DISCONNECT 0x87).
    Disconnected,
}

impl Broker {
    /// Loads retained messages and persistent sessions from `store` and starts the broker's
    /// background tasks (session expiry). Only anonymous listeners admit clients; see
    /// [`Broker::start_with_auth`].
    pub async fn start(config: BrokerConfig, store: Store) -> Result<Arc<Broker>, BrokerError> {
        Broker::start_with_auth(config, store, Authentication::default()).await
    }

    /// [`Broker::start`] with ways to authenticate clients.
    pub async fn start_with_auth(
        config: BrokerConfig,
        store: Store,
        auth: Authentication,
    ) -> Result<Arc<Broker>, BrokerError> {
        let limits = SessionLimits {
            max_queued_messages: config.max_queued_messages,
            max_queued_bytes: config.max_queued_bytes,
            max_redeliveries: config.max_redeliveries,
        };
        let broker = Arc::new(Broker {
            config,
            store,
            limits,
            sessions: Mutex::new(HashMap::new()),
            trie: RwLock::new(Trie::default()),
            retained: RwLock::new(BTreeMap::new()),
            next_key: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            connections_closed: Notify::new(),
            shutting_down: AtomicBool::new(false),
            recent_connects: Mutex::new(HashMap::new()),
            auth,
            index: Arc::new(ConnectionIndex::default()),
            denials: DenialCounters::default(),
            topic_service: OnceLock::new(),
            presence_versions: PresenceVersions::default(),
        });
        broker.restore().await?;
        Ok(broker)
    }

    async fn restore(self: &Arc<Self>) -> Result<(), BrokerError> {
        let now = Instant::now();
        let mut corrupt = Vec::new();
        {
            let loaded = self.store.load_retained().await?;
            let mut retained = self.retained.write();
            for r in loaded {
                let topic = r.message.topic.clone();
                match Message::from_stored(r.message, now) {
                    Some(message) => {
                        retained.insert(
                            topic,
                            Retained {
                                message,
                                modified_at_ms: r.modified_at_ms,
                            },
                        );
                    }
                    None => corrupt.push(WriteOp::DeleteRetained { topic }),
                }
            }
        }
        let loaded = self.store.load_sessions().await?;
        let count = loaded.len();
        for l in loaded {
            let client_id: Arc<str> = l.session.client_id.as_str().into();
            let protocol = protocol_from_level(l.session.protocol);
            let session = Arc::new(Session::new(
                self.new_key(),
                client_id.clone(),
                protocol,
                l.session.expiry_interval,
            ));
            session.state.lock().last_disconnect =
                l.session.disconnected_at_ms.map(|at_ms| LastDisconnect {
                    at_ms,
                    reason: None,
                });
            let elapsed = l
                .session
                .disconnected_at_ms
                .map(|at| Duration::from_millis(unix_ms().saturating_sub(at)))
                .unwrap_or_default();
            {
                let mut state = session.state.lock();
                for s in &l.subscriptions {
                    let options = options_from_byte(s.options);
                    state
                        .subscriptions
                        .insert(s.filter.clone(), (options, s.subscription_id));
                }
                for o in l.outbound {
                    let OutboundRecord {
                        seq,
                        state: stage,
                        subscription_ids,
                        message,
                        ..
                    } = o;
                    let Some(message) = Message::from_stored(message, now) else {
                        corrupt.push(WriteOp::DeleteOutbound {
                            client_id: client_id.to_string(),
                            seq,
                        });
                        continue;
                    };
                    let qos = message.qos;
                    let retain = message.retain;
                    state.restore(
                        Delivery {
                            message,
                            qos,
                            retain,
                            subscription_ids,
                            seq,
                        },
                        stage,
                    );
                }
                state.inbound_qos2.extend(l.inbound_qos2);
            }
            {
                let mut trie = self.trie.write();
                for s in &l.subscriptions {
                    let (share, filter) = split_share(&s.filter);
                    trie.insert(
                        share,
                        filter,
                        Subscriber {
                            key: SessionRef(session.clone()),
                            options: options_from_byte(s.options),
                            subscription_id: s.subscription_id,
                        },
                    );
                }
            }
            self.sessions.lock().insert(client_id, session.clone());
            let expiry =
                Duration::from_secs(u64::from(l.session.expiry_interval)).saturating_sub(elapsed);
            self.schedule_expiry(&session, 0, expiry);
        }
        if !corrupt.is_empty() {
            tracing::warn!(
                records = corrupt.len(),
                "dropping unreadable records from the store"
            );
            self.store.submit(corrupt).await?;
        }
        tracing::info!(
            sessions = count,
            retained = self.retained.read().len(),
            "restored durable state"
        );
        Ok(())
    }

    /// Runs one client connection to its end.
    pub async fn serve<S>(self: &Arc<Self>, stream: S, info: ConnectionInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        self.connections.fetch_add(1, Ordering::AcqRel);
        connection::run(self.clone(), stream, info).await;
        if self.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.connections_closed.notify_waiters();
        }
    }

    /// Disconnects every client (MQTT 5: DISCONNECT 0x8B) and flushes durable state.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let closed = self.connections_closed.notified();
        let kicks: Vec<_> = self
            .sessions
            .lock()
            .values()
            .filter_map(|s| s.state.lock().attached.as_ref().map(|a| a.kick.clone()))
            .collect();
        for kick in kicks {
            kick.fire(reason::SERVER_SHUTTING_DOWN);
        }
        if self.connections.load(Ordering::Acquire) > 0 {
            let _ = tokio::time::timeout(Duration::from_secs(5), closed).await;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
    }

    /// Number of client connections being served.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Closes every connection authenticated by the device certificate `certificate_id`
    /// (revoked, deactivated, deleted): MQTT 5 clients get DISCONNECT 0x87 (not authorized)
    /// first, 3.1.1 clients are just disconnected, as AWS does; no will is published.
    /// Returns how many connections were told to close.
    ///
    /// A connection enters the index before its CONNECT checks the certificate, so a caller
    /// that changes the certificate's state first and then calls this never misses a
    /// connection: either the CONNECT's check sees the new state, or this sees the connection.
    pub fn disconnect_certificate(&self, certificate_id: &str) -> usize {
        let conns = self
            .index
            .lookup(&[Dependency::Certificate(certificate_id.to_owned())]);
        for c in &conns {
            c.kick().fire(reason::NOT_AUTHORIZED);
        }
        let n = conns.len();
        if n > 0 {
            tracing::info!(
                certificate_id,
                connections = n,
                "closing the connections of a certificate that is no longer authorized"
            );
        }
        n
    }

    /// Ids of the device certificates with open (or opening) connections.
    pub fn connected_certificates(&self) -> Vec<String> {
        self.index.certificate_ids()
    }

    /// Open (or opening) connections authenticated by `certificate_id`.
    pub fn certificate_connections(&self, certificate_id: &str) -> usize {
        self.index
            .count(&Dependency::Certificate(certificate_id.to_owned()))
    }

    /// The open (or opening) connections whose authorization depends on any of `changed`, to
    /// be re-authorized ([`Broker::reauthorize`]) after a registry change: call it once the
    /// change is visible to [`CertificateAuthorizer::authorize`]. A CONNECT that resolved its
    /// grant before the change and files itself after this call resolves it again, so no
    /// connection keeps an outdated grant.
    pub fn connections_depending_on(&self, changed: &[Dependency]) -> Vec<OpenConnection> {
        self.index.bump();
        self.index
            .lookup(changed)
            .into_iter()
            .map(OpenConnection)
            .collect()
    }

    /// Re-authenticates every open connection the custom authorizer `name` admitted, after it
    /// changed (deactivated, deleted, updated): each connection's authenticator is asked
    /// again with its original attempt, as at a `refresh_after`. A refusal closes the
    /// connection (MQTT 5: DISCONNECT 0x87, lifecycle `AUTH_ERROR`, no will); a grant puts its
    /// policies in force. Call it once the change is visible to the authenticator (and any
    /// cached answer of the authorizer is forgotten). Returns how many connections are asked
    /// about; the answers arrive asynchronously.
    ///
    /// The first [`REAUTHENTICATION_BATCH`] connections are asked at once, the others in
    /// batches of that size every [`REAUTHENTICATION_PAUSE`], so that a change of an
    /// authorizer with many connections does not send them all to it at the same moment
    /// (where its call slots and timeout would refuse, and so close, most of them).
    pub fn reauthenticate_authorizer(&self, name: &str) -> usize {
        let conns = self.connections_depending_on(&[Dependency::Authorizer(name.to_owned())]);
        let count = conns.len();
        self.reauthenticate_paced(conns);
        if count > 0 {
            tracing::info!(
                authorizer = name,
                connections = count,
                "re-authenticating the connections of a changed custom authorizer"
            );
        }
        count
    }

    /// Asks `conns` to re-authenticate: the first [`REAUTHENTICATION_BATCH`] at once, the
    /// others in batches of that size every [`REAUTHENTICATION_PAUSE`].
    fn reauthenticate_paced(&self, conns: Vec<OpenConnection>) {
        let mut batches: Vec<Vec<OpenConnection>> = conns
            .chunks(REAUTHENTICATION_BATCH)
            .map(<[OpenConnection]>::to_vec)
            .collect();
        let later = batches.split_off(batches.len().min(1));
        let ask = |batch: Vec<OpenConnection>| {
            for conn in &batch {
                conn.0.reauthenticate();
            }
        };
        batches.into_iter().for_each(ask);
        if !later.is_empty() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        for batch in later {
                            tokio::time::sleep(REAUTHENTICATION_PAUSE).await;
                            ask(batch);
                        }
                    });
                }
                Err(_) => later.into_iter().for_each(ask),
            }
        }
    }

    /// Applies a change of the domain configuration of `server_name` (a TLS server name) to the
    /// open connections made to it: [`DomainChange::Close`] closes them (MQTT 5: DISCONNECT
    /// 0x87, lifecycle `AUTH_ERROR`, no will), as when the domain is disabled or its allowed
    /// authentication or protocols changed, so that they connect again under the new rules;
    /// [`DomainChange::Reauthenticate`] asks the custom-authenticated ones again (paced like
    /// [`Broker::reauthenticate_authorizer`]), as when its default authorizer changed. Returns
    /// how many connections it concerned.
    pub fn server_name_changed(&self, server_name: &str, change: DomainChange) -> usize {
        let conns = self
            .connections_depending_on(&[Dependency::ServerName(server_name.to_ascii_lowercase())]);
        match change {
            DomainChange::Close => {
                for conn in &conns {
                    conn.0.kick().fire(reason::NOT_AUTHORIZED);
                }
            }
            DomainChange::Reauthenticate => {
                let custom = conns
                    .iter()
                    .filter(|conn| matches!(conn.0.identity, Identity::Custom(_)))
                    .cloned()
                    .collect();
                self.reauthenticate_paced(custom);
            }
        }
        if !conns.is_empty() {
            tracing::info!(
                server_name,
                connections = conns.len(),
                ?change,
                "a domain configuration changed"
            );
        }
        conns.len()
    }

    /// Puts `grant` in force on an open connection: its publishes, subscribes and deliveries
    /// are decided by it from now on, and it is filed under its new dependencies. When the
    /// grant is `None` (the certificate may not connect any more) or no longer allows
    /// `iot:Connect` (with the attributes of its CONNECT), the connection is closed: MQTT 5
    /// clients get DISCONNECT 0x87, and no will is published.
    ///
    /// Existing subscriptions stay, as on AWS: `iot:Receive`, decided for every delivery,
    /// governs what they still deliver. Messages already queued for the client are sent.
    pub fn reauthorize(&self, conn: &OpenConnection, grant: Option<Grant>) -> Reauthorized {
        let p = &conn.0;
        let Some(grant) = grant else {
            p.kick().fire(reason::NOT_AUTHORIZED);
            return Reauthorized::Disconnected;
        };
        self.install_grant(p, grant);
        if p.may_connect(&self.denials, &self.config.arns) {
            tracing::debug!(client_id = %p.client_id(), principal = %p.identity, "policies updated on an open connection");
            Reauthorized::Updated
        } else {
            tracing::info!(client_id = %p.client_id(), principal = %p.identity, "iot:Connect no longer allowed; closing the connection");
            p.kick().fire(reason::NOT_AUTHORIZED);
            Reauthorized::Disconnected
        }
    }

    /// Swaps in a grant's authorization and files the connection under its dependencies.
    pub(crate) fn install_grant(&self, p: &Arc<Principal>, grant: Grant) {
        let Grant {
            policies,
            thing,
            mut depends_on,
        } = grant;
        p.set_authz(Authz::new(policies, p.base().request(thing)));
        if let Some(id) = p.certificate_id() {
            depends_on.push(Dependency::Certificate(id.to_string()));
        }
        self.index.set(p, depends_on);
    }

    /// Policy denials since the start, by action.
    pub fn denials(&self) -> Denials {
        self.denials.snapshot()
    }

    /// Publishes a message the server itself originates (AWS's `$aws/events/...`): QoS 1,
    /// not retained, delivered to matching subscriptions like any other.
    pub fn publish_event(&self, topic: &str, payload: impl Into<bytes::Bytes>) {
        let publish = ferrocore_mqtt::Publish {
            qos: QoS::AtLeastOnce,
            topic: topic.to_owned(),
            payload: payload.into(),
            ..ferrocore_mqtt::Publish::default()
        };
        drop(self.publish(Arc::new(Message::from_publish(publish, None))));
    }

    /// Installs the service that answers publishes to `$aws/...` topics. Only the first
    /// installation counts; later ones are ignored with a warning.
    pub fn set_topic_service(&self, service: Arc<dyn TopicService>) {
        if self.topic_service.set(service).is_err() {
            tracing::warn!("a topic service is installed already; ignoring another one");
        }
    }

    /// Hands an authorized publish to `$aws/...` (the caller checked the prefix) to the topic
    /// service, if one is installed.
    pub(crate) fn offer_to_topic_service(
        &self,
        topic: &str,
        payload: &bytes::Bytes,
        client_id: Option<&Arc<str>>,
    ) {
        if let Some(service) = self.topic_service.get() {
            let origin = PublishOrigin {
                client_id: client_id.cloned(),
            };
            service.published(topic, payload, &origin);
        }
    }

    /// Publishes a lifecycle event.
    pub(crate) fn announce(&self, announcement: Announcement) {
        self.publish_event(&announcement.topic, announcement.payload);
    }

    /// Whether `client_id` connected less than AWS's minimum interval ago (else records now).
    pub(crate) fn connected_too_recently(&self, client_id: &Arc<str>) -> bool {
        let interval = config::AWS_QUOTAS.min_connect_interval;
        let now = Instant::now();
        let mut recent = self.recent_connects.lock();
        if recent.len() >= 4096 {
            recent.retain(|_, at| now.saturating_duration_since(*at) < interval);
        }
        match recent.get(client_id) {
            Some(at) if now.saturating_duration_since(*at) < interval => true,
            _ => {
                recent.insert(client_id.clone(), now);
                false
            }
        }
    }

    fn new_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The region and account of the resource ARNs policies are decided on.
    pub fn arns(&self) -> &Arns {
        &self.config.arns
    }

    /// Routes a message to every matching subscription and updates the retained store.
    /// Durable writes it causes are submitted in order; the returned commit (if any) resolves
    /// once all of them are durable.
    pub(crate) fn publish(&self, message: Arc<Message>) -> Routed {
        let mut commits = Vec::new();
        if message.retain {
            self.retain(&message, &mut commits);
        }
        let mut pressured = Vec::new();
        self.route(&message, &mut commits, &mut pressured);
        Routed {
            commit: commits.pop(),
            pressured,
        }
    }

    fn retain(&self, message: &Arc<Message>, commits: &mut Vec<Commit>) {
        let mut retained = self.retained.write();
        if message.payload.is_empty() {
            if retained.remove(&message.topic).is_some() {
                commits.push(self.store.submit(vec![WriteOp::DeleteRetained {
                    topic: message.topic.clone(),
                }]));
            }
        } else {
            let modified_at_ms = unix_ms();
            retained.insert(
                message.topic.clone(),
                Retained {
                    message: message.clone(),
                    modified_at_ms,
                },
            );
            commits.push(self.store.submit(vec![WriteOp::PutRetained(
                ferrocore_store::RetainedMessage {
                    message: message.to_stored(Instant::now()),
                    modified_at_ms,
                },
            )]));
        }
    }

    fn route(
        &self,
        message: &Arc<Message>,
        commits: &mut Vec<Commit>,
        pressured: &mut Vec<Arc<Session>>,
    ) {
        struct Target {
            session: Arc<Session>,
            qos: QoS,
            retain_as_published: bool,
            subscription_ids: Vec<u32>,
        }
        let mut targets: Vec<Target> = Vec::new();
        let mut add = |s: &Subscriber<SessionRef>| {
            if s.options.no_local && message.publisher == Some(s.key.0.key) {
                return;
            }
            targets.push(Target {
                session: s.key.0.clone(),
                qos: s.options.qos,
                retain_as_published: s.options.retain_as_published,
                subscription_ids: s.subscription_id.into_iter().collect(),
            });
        };
        {
            let trie = self.trie.read();
            let mut shared = Vec::new();
            trie.matches(&message.topic, &mut add, |g| shared.push(g));
            for g in shared {
                // Prefer a member that is connected, starting from the round-robin position.
                let n = g.members.len();
                let pick = (0..n)
                    .map(|i| &g.members[(g.start + i) % n])
                    .find(|m| m.key.0.state.lock().attached.is_some())
                    .unwrap_or(&g.members[g.start % n]);
                add(pick);
            }
        }
        if targets.is_empty() {
            return;
        }
        // Overlapping subscriptions of one session get one copy: the highest QoS and every
        // subscription identifier.
        targets.sort_unstable_by_key(|t| t.session.key);
        targets.dedup_by(|later, kept| {
            if later.session.key != kept.session.key {
                return false;
            }
            kept.qos = kept.qos.max(later.qos);
            kept.retain_as_published |= later.retain_as_published;
            kept.subscription_ids.append(&mut later.subscription_ids);
            true
        });
        with_arn_buffer(|buf| {
            let mut arn = TopicArn::new(&self.config.arns, &message.topic, buf);
            for t in targets {
                let delivery = Delivery {
                    message: message.clone(),
                    qos: t.qos.min(message.qos),
                    retain: message.retain && t.retain_as_published,
                    subscription_ids: t.subscription_ids,
                    seq: 0,
                };
                if self.deliver(&t.session, delivery, commits, &mut arn) == Enqueued::Pressured {
                    pressured.push(t.session);
                }
            }
        });
    }

    /// Offers a delivery to a session, if its principal may receive it (`iot:Receive`,
    /// decided here for every delivery; a denied one is skipped silently and never queued).
    /// `arn` is the topic ARN of `delivery`'s message.
    fn deliver(
        &self,
        session: &Session,
        delivery: Delivery,
        commits: &mut Vec<Commit>,
        arn: &mut TopicArn<'_>,
    ) -> Enqueued {
        let mut state = session.state.lock();
        let st = &mut *state;
        let authz = st.principal.authz();
        if !authz.is_unrestricted()
            && !st
                .receive_cache
                .contains(authz.id(), &delivery.message.topic)
        {
            if !st
                .principal
                .permits(&authz, &self.denials, Action::Receive, arn.get())
            {
                return Enqueued::Refused;
            }
            if authz.cacheable() {
                st.receive_cache.insert(&delivery.message.topic);
            }
        }
        drop(authz);
        let outcome = state.enqueue(
            &session.client_id,
            delivery,
            &self.limits,
            &self.store,
            commits,
        );
        if outcome != Enqueued::Refused
            && let Some(a) = &state.attached
        {
            a.outbox.wake.notify_one();
        }
        outcome
    }

    /// Adds a subscription for `session`. Returns the SUBACK reason code, the retained
    /// messages to send for it, and the store commit to wait for before acknowledging.
    /// The filter must be valid and authorized (the caller checked both).
    pub(crate) fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &str,
        mut options: SubscriptionOptions,
        subscription_id: Option<u32>,
        commits: &mut Vec<Commit>,
    ) -> (u8, Vec<Delivery>) {
        if self.config.compat == Compat::Aws {
            options.qos = options.qos.min(QoS::AtLeastOnce);
        }
        let (share, inner) = split_share(filter);
        let existed = {
            let mut state = session.state.lock();
            let existed = state
                .subscriptions
                .insert(filter.to_string(), (options, subscription_id))
                .is_some();
            if state.persistent() {
                commits.push(self.store.submit(vec![WriteOp::PutSubscription(
                    SubscriptionRecord {
                        client_id: session.client_id.to_string(),
                        filter: filter.to_string(),
                        options: options_to_byte(&options),
                        subscription_id,
                    },
                )]));
            }
            existed
        };
        self.trie.write().insert(
            share,
            inner,
            Subscriber {
                key: SessionRef(session.clone()),
                options,
                subscription_id,
            },
        );
        let send_retained = share.is_none()
            && match options.retain_handling {
                0 => true,
                1 => !existed,
                _ => false,
            }
            && (self.config.compat != Compat::Aws || !inner.contains(['+', '#']));
        let mut retained = Vec::new();
        if send_retained {
            let now = Instant::now();
            let mut offer = |m: &Arc<Message>| {
                if !m.is_expired(now) {
                    retained.push(Delivery {
                        message: m.clone(),
                        qos: options.qos.min(m.qos),
                        retain: true,
                        subscription_ids: subscription_id.into_iter().collect(),
                        seq: 0,
                    });
                }
            };
            let stored = self.retained.read();
            if topic::has_wildcards(inner) {
                stored
                    .values()
                    .filter(|r| topic::matches(inner, &r.message.topic))
                    .for_each(|r| offer(&r.message));
            } else if let Some(r) = stored.get(inner) {
                // A filter without wildcards matches its own topic only: a lookup.
                offer(&r.message);
            }
        }
        (options.qos as u8, retained)
    }

    /// Removes a subscription; returns whether it existed.
    pub(crate) fn unsubscribe(
        &self,
        session: &Arc<Session>,
        filter: &str,
        commits: &mut Vec<Commit>,
    ) -> bool {
        {
            let mut state = session.state.lock();
            if state.subscriptions.remove(filter).is_none() {
                return false;
            }
            if state.persistent() {
                commits.push(self.store.submit(vec![WriteOp::DeleteSubscription {
                    client_id: session.client_id.to_string(),
                    filter: filter.to_string(),
                }]));
            }
        }
        let (share, inner) = split_share(filter);
        self.trie
            .write()
            .remove(share, inner, &SessionRef(session.clone()));
        true
    }

    /// Queues retained deliveries after the SUBACK that asked for them.
    pub(crate) fn deliver_retained(&self, session: &Session, deliveries: Vec<Delivery>) {
        let mut commits = Vec::new();
        with_arn_buffer(|buf| {
            for d in deliveries {
                let message = d.message.clone();
                let mut arn = TopicArn::new(&self.config.arns, &message.topic, buf);
                self.deliver(session, d, &mut commits, &mut arn);
            }
        });
    }

    /// Ends a session: removes its subscriptions and its durable record.
    fn end_session(&self, session: &Arc<Session>) {
        let filters: Vec<String> = {
            let mut state = session.state.lock();
            state.ended = true;
            if state.persistent() {
                drop(self.store.submit(vec![WriteOp::DeleteSession {
                    client_id: session.client_id.to_string(),
                }]));
            }
            state.subscriptions.drain().map(|(f, _)| f).collect()
        };
        session.room.notify_waiters();
        let key = SessionRef(session.clone());
        let mut trie = self.trie.write();
        for f in filters {
            let (share, inner) = split_share(&f);
            trie.remove(share, inner, &key);
        }
    }

    /// Removes a session that nobody reattached to within its expiry interval.
    fn schedule_expiry(self: &Arc<Self>, session: &Arc<Session>, generation: u64, after: Duration) {
        let broker = Arc::downgrade(self);
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let mut sessions = broker.sessions.lock();
            let current = sessions
                .get(&session.client_id)
                .is_some_and(|s| Arc::ptr_eq(s, &session));
            let idle = {
                let state = session.state.lock();
                state.attached.is_none() && state.generation == generation
            };
            if current && idle {
                sessions.remove(&session.client_id);
                drop(sessions);
                tracing::debug!(client_id = %session.client_id, "session expired");
                broker.end_session(&session);
            }
        });
    }

    fn session_record(session: &Session, protocol: u8, expiry: u32, disconnected: bool) -> WriteOp {
        WriteOp::PutSession(SessionRecord {
            client_id: session.client_id.to_string(),
            protocol,
            expiry_interval: expiry,
            disconnected_at_ms: disconnected.then(unix_ms),
        })
    }
}

thread_local! {
    /// The buffer topic ARNs of deliveries are written into (one per routing thread).
    static ARN_BUFFER: Cell<String> = const { Cell::new(String::new()) };
}

/// Runs `f` with this thread's ARN buffer (a fresh one if it is already in use).
pub(crate) fn with_arn_buffer<R>(f: impl FnOnce(&mut String) -> R) -> R {
    let mut buf = ARN_BUFFER.take();
    let r = f(&mut buf);
    ARN_BUFFER.set(buf);
    r
}

/// A message's topic ARN for the `iot:Receive` decisions of its deliveries: written into a
/// reused buffer at most once, and only if some recipient has policies to decide.
pub(crate) struct TopicArn<'a> {
    arns: &'a Arns,
    topic: &'a str,
    buf: &'a mut String,
    built: bool,
}

impl<'a> TopicArn<'a> {
    pub fn new(arns: &'a Arns, topic: &'a str, buf: &'a mut String) -> Self {
        TopicArn {
            arns,
            topic,
            buf,
            built: false,
        }
    }

    pub fn get(&mut self) -> &str {
        if !self.built {
            self.arns.write_topic(self.topic, self.buf);
            self.built = true;
        }
        self.buf
    }
}

fn protocol_from_level(level: u8) -> ferrocore_mqtt::ProtocolVersion {
    match level {
        3 => ferrocore_mqtt::ProtocolVersion::V31,
        5 => ferrocore_mqtt::ProtocolVersion::V5,
        _ => ferrocore_mqtt::ProtocolVersion::V311,
    }
}

/// `$share/<group>/<filter>` → (Some(group), filter); anything else → (None, filter).
fn split_share(filter: &str) -> (Option<&str>, &str) {
    match topic::parse_shared(filter) {
        Some(Ok(s)) => (Some(s.group), s.filter),
        _ => (None, filter),
    }
}

fn options_to_byte(o: &SubscriptionOptions) -> u8 {
    (o.qos as u8)
        | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | (o.retain_handling << 4)
}

fn options_from_byte(b: u8) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::from_u8(b & 0b11).unwrap_or(QoS::AtLeastOnce),
        no_local: b & 0b100 != 0,
        retain_as_published: b & 0b1000 != 0,
        retain_handling: (b >> 4) & 0b11,
    }
}
