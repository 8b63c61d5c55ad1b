//! One client connection: CONNECT, then a reader loop (this task) and a writer task.
//!
//! The reader decodes packets and acts on them; acknowledgements that promise durability wait,
//! in arrival order, for the store commit of what they acknowledge. The writer pulls control
//! packets from the connection's [`Outbox`] and deliveries from the session, encodes them into
//! one buffer and writes them with one call, so a busy connection sends many packets per
//! system call.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrocore_mqtt::{
    Auth, ConnAck, ConnAckProperties, Connect, DecodeError, Disconnect, DisconnectProperties,
    LastWill, Packet, ProtocolVersion, PubResp, Publish, PublishProperties, QoS, SubAck, UnsubAck,
    reason, topic,
};
use ferrocore_policy::{Action, ConnectContext, PolicySet, ResourceKind};
use ferrocore_store::{Commit, WriteOp};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::auth::{AllowedTopics, Authz, Dependency, Identity, Indexed, Principal, RequestBase};
use crate::custom_auth::{
    self, CUSTOM_AUTH_METHOD, CustomAuthAttempt, CustomAuthProtocol, Supervised,
};
use crate::events::{Announcement, DisconnectReason, Presence, random_uuid};
use crate::message::{Message, unix_ms};
use crate::session::{Attached, Delivery, Kick, LastDisconnect, Outbox, Outgoing, Session};
use crate::throttle::Throttle;
use crate::{
    AWS_QUOTAS, Broker, Compat, ConnectionInfo, Routed, SERVICE_TOPIC_PREFIX, Transport,
    with_arn_buffer,
};

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Control packets queued for the writer beyond which the reader stops reading, so a client
/// that floods without reading its acknowledgements is pushed back instead of growing memory.
const MAX_PENDING_CONTROL: usize = 1024;

/// The longest a QoS 1/2 publisher's acknowledgement waits for a slow subscriber's queue.
const MAX_PUBLISHER_HOLD: Duration = Duration::from_secs(10);

/// How a connection ends.
struct Close {
    /// MQTT 5 DISCONNECT reason code to send first, if any.
    reason: Option<u8>,
    /// Whether the will message is published.
    will: bool,
    why: &'static str,
    cause: DisconnectReason,
}

impl Close {
    /// The client broke the protocol.
    fn protocol(reason: u8, why: &'static str) -> Close {
        Close {
            reason: Some(reason),
            will: true,
            why,
            cause: DisconnectReason::ClientError,
        }
    }
}

type AckWait = Pin<Box<dyn Future<Output = Result<(), ferrocore_store::StoreError>> + Send>>;

/// An acknowledgement waiting for its commit, with retained deliveries to queue and a
/// lifecycle event to publish after it.
struct PendingAck {
    commit: Option<AckWait>,
    packet: Packet,
    then_deliver: Vec<Delivery>,
    then_announce: Option<Box<Announcement>>,
}

pub(crate) async fn run<S>(broker: Arc<Broker>, stream: S, info: ConnectionInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(256);
    let config = broker.config().clone();
    // The CONNECT must arrive and be decided (custom authorizers included) within this.
    let connect_deadline = Instant::now() + config.connect_timeout;
    let connect = match tokio::time::timeout_at(
        connect_deadline,
        read_connect(&mut reader, &mut buf, config.max_packet_size),
    )
    .await
    {
        Err(_) => {
            tracing::debug!(peer = %info.peer_addr, "no CONNECT within the connect timeout");
            return;
        }
        Ok(Err(DecodeError::UnsupportedProtocol(level))) => {
            tracing::debug!(peer = %info.peer_addr, level, "unsupported protocol level");
            // The version is unknown, so answer in the 3.1.1 form every version can read.
            let ack = ConnAck {
                code: reason::v3::UNACCEPTABLE_PROTOCOL_VERSION,
                ..ConnAck::default()
            };
            let _ = write_packet(&mut writer, &Packet::ConnAck(ack), ProtocolVersion::V311).await;
            return;
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %info.peer_addr, error = %e, "bad CONNECT");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(c))) => c,
    };
    let version = connect.protocol;
    let conn_id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let kick = Arc::new(Kick::default());
    let session_identifier = random_uuid();
    // `_indexed` keeps the connection in the index of open connections until it ends.
    let Admitted {
        principal,
        client_id,
        assigned,
        indexed: _indexed,
        supervised,
        reauthenticate,
    } = match admit(
        &connect,
        &info,
        &broker,
        AdmitContext {
            conn_id,
            kick: &kick,
            session_identifier: &session_identifier,
            deadline: connect_deadline,
        },
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(code) => {
            tracing::info!(peer = %info.peer_addr, listener = %info.listener.name, code, "CONNECT refused");
            let code = if version.is_v5() {
                code
            } else {
                reason::connack_v3_from_v5(code)
            };
            let refusal = Packet::ConnAck(ConnAck {
                code,
                ..ConnAck::default()
            });
            let _ = write_packet(&mut writer, &refusal, version).await;
            return;
        }
    };

    let keep_alive = effective_keep_alive(connect.keep_alive, &config);
    let max_expiry = u32::try_from(config.max_session_expiry.as_secs()).unwrap_or(u32::MAX);
    let requested_expiry = if version.is_v5() {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::try_from(config.default_session_expiry.as_secs()).unwrap_or(u32::MAX)
    };
    let expiry = requested_expiry.min(max_expiry);

    let outbox = Arc::new(Outbox::default());
    let client_receive_max = connect
        .properties
        .receive_maximum
        .unwrap_or(u16::MAX)
        .max(1);
    let (session, session_present, generation, commit) = attach(
        &broker,
        &client_id,
        &connect,
        Attached {
            conn_id,
            outbox: outbox.clone(),
            kick: kick.clone(),
            peer_addr: info.peer_addr,
            local_addr: info.local_addr,
            keep_alive,
            connected_at_ms: unix_ms(),
        },
        principal.clone(),
        expiry,
        usize::from(client_receive_max.min(config.max_inflight.max(1))),
    );
    if let Some(commit) = commit
        && let Err(e) = commit.await
    {
        tracing::error!(error = %e, "storing the session failed");
        let _ = write_packet(
            &mut writer,
            &Packet::ConnAck(ConnAck {
                code: if version.is_v5() {
                    reason::SERVER_UNAVAILABLE
                } else {
                    reason::v3::SERVER_UNAVAILABLE
                },
                ..ConnAck::default()
            }),
            version,
        )
        .await;
        detach(
            &broker,
            &session,
            conn_id,
            generation,
            None,
            expiry,
            DisconnectReason::ServerError,
        );
        return;
    }

    let mut properties = ConnAckProperties::default();
    if version.is_v5() {
        if expiry != requested_expiry {
            properties.session_expiry_interval = Some(expiry);
        }
        properties.receive_maximum = Some(config.max_inflight);
        if config.compat == Compat::Aws {
            properties.maximum_qos = Some(1);
        }
        properties.maximum_packet_size = u32::try_from(config.max_packet_size).ok();
        properties.assigned_client_identifier = assigned;
        if config.max_topic_aliases > 0 {
            properties.topic_alias_maximum = Some(config.max_topic_aliases);
        }
        if keep_alive != connect.keep_alive {
            properties.server_keep_alive = Some(keep_alive);
        }
        if reauthenticate.is_some() {
            // [MQTT-4.12.0-5]: the CONNECT's authentication method, accepted.
            properties.authentication_method = Some(CUSTOM_AUTH_METHOD.to_owned());
        }
    }
    let connack = Packet::ConnAck(ConnAck {
        session_present,
        code: reason::SUCCESS,
        properties,
    });
    if write_packet(&mut writer, &connack, version).await.is_err() {
        detach(
            &broker,
            &session,
            conn_id,
            generation,
            None,
            expiry,
            DisconnectReason::ConnectionLost,
        );
        return;
    }
    tracing::debug!(client_id = %client_id, peer = %info.peer_addr, ?version, session_present, "connected");
    let presence = Presence::start(
        &broker.presence_versions,
        &client_id,
        &principal,
        session_identifier,
    );
    if let Some(p) = &presence {
        broker.announce(p.connected(info.peer_addr.ip()));
    }

    let closed = Arc::new(AtomicBool::new(false));
    let writer_task = tokio::spawn(write_loop(
        writer,
        WriterState {
            broker: broker.clone(),
            session: session.clone(),
            outbox: outbox.clone(),
            closed: closed.clone(),
            conn_id,
            version,
            max_packet_size: connect
                .properties
                .maximum_packet_size
                .map_or(usize::MAX, |m| m as usize),
            alias_max: if version.is_v5() {
                connect.properties.topic_alias_maximum.unwrap_or(0)
            } else {
                0
            },
            aliases: HashMap::new(),
        },
    ));
    outbox.wake.notify_one();
    // Ends with the connection, however it ends.
    let _supervisor = supervised.map(|s| {
        AbortOnDrop(tokio::spawn(custom_auth::supervise(
            s,
            Arc::downgrade(&broker),
            outbox.clone(),
        )))
    });

    let mut conn = Connection {
        broker: broker.clone(),
        session: session.clone(),
        principal,
        presence,
        arn: String::new(),
        publish_cache: AllowedTopics::default(),
        version,
        outbox: outbox.clone(),
        will: connect.will.clone(),
        expiry,
        inbound_aliases: HashMap::new(),
        pending: VecDeque::new(),
        throttle: (config.compat == Compat::Aws)
            .then(|| Throttle::new(&AWS_QUOTAS, Instant::now())),
        publishes_read: 0,
        reauthenticate,
    };
    let close = conn
        .read_loop(&mut reader, &mut buf, &kick, keep_alive)
        .await;
    tracing::debug!(client_id = %client_id, reason = close.why, "connection closing");

    // The will is published in the name of the connection's principal: decided again with
    // the policies in force now.
    let will = match conn.will.take() {
        Some(w) if close.will && conn.may_publish_will(&w) => Some(w),
        _ => None,
    };
    conn.principal.flush_denial_log();
    detach(
        &broker,
        &session,
        conn_id,
        generation,
        will,
        conn.expiry,
        close.cause,
    );
    if let Some(p) = &conn.presence {
        let authz = conn.principal.authz();
        broker.announce(p.disconnected(&broker.presence_versions, close.cause, authz.thing_name()));
    }
    if let (Some(code), true) = (close.reason, version.is_v5()) {
        // Reason strings are problem information: sent unless the client asked for none.
        let reason_string = (connect.properties.request_problem_information != Some(0))
            .then(|| close.why.to_string());
        let properties = DisconnectProperties {
            reason_string,
            ..DisconnectProperties::default()
        };
        outbox.push(Packet::Disconnect(Disconnect {
            reason: code,
            properties,
        }));
    }
    closed.store(true, Ordering::Release);
    outbox.wake.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
    if close.reason.is_some() {
        linger(&mut reader).await;
    }
}

/// After a server-initiated close: the writer has half-closed the connection; read and discard
/// what the client still sends, briefly, so that closing with unread data (which makes the
/// kernel reset the connection) cannot destroy the DISCONNECT before the client reads it.
async fn linger<R: AsyncRead + Unpin>(reader: &mut R) {
    let drain = async {
        let mut scratch = [0u8; 1024];
        while let Ok(1..) = reader.read(&mut scratch).await {}
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// An accepted CONNECT: who it is from and the client id it gets.
struct Admitted {
    principal: Arc<Principal>,
    client_id: Arc<str>,
    /// The id we chose for a client that sent none (MQTT 5 Assigned Client Identifier).
    assigned: Option<String>,
    /// The connection's place in the index of open connections, when a certificate
    /// authenticated it.
    indexed: Option<Indexed>,
    /// A custom grant's lifetimes to enforce while the connection is open.
    supervised: Option<Supervised>,
    /// Where AUTH re-authentications go, when the client connected with
    /// [`CUSTOM_AUTH_METHOD`].
    reauthenticate: Option<mpsc::Sender<Option<Bytes>>>,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What [`admit`] needs beyond the CONNECT and the connection.
struct AdmitContext<'a> {
    conn_id: u64,
    kick: &'a Arc<Kick>,
    /// The connection's lifecycle `sessionIdentifier`, also a custom authorizer's
    /// `connectionMetadata.id`.
    session_identifier: &'a str,
    /// When the CONNECT must be decided by (bounds a custom authorizer).
    deadline: Instant,
}

/// Checks a CONNECT; the error is the MQTT 5 reason code refusing it.
///
/// A device certificate presented over MQTT-over-TLS (not WebSocket: AWS authenticates those
/// by SigV4 or authorizer) makes the principal when the broker can check certificates; on any
/// listener it must be allowed to connect, and it is never decided otherwise (no fallback).
/// Without one, a listener that accepts custom authentication asks the custom authenticator
/// (see [`crate::custom_auth`]); otherwise only an anonymous listener admits the client, with
/// the listener's policy. Then `iot:Connect` is decided on `client/<clientId>` with the
/// CONNECT's attributes, and `iot:Publish` (and `iot:RetainPublish` for a retained will) on
/// the will topic.
async fn admit(
    connect: &Connect,
    info: &ConnectionInfo,
    broker: &Broker,
    cx: AdmitContext<'_>,
) -> Result<Admitted, u8> {
    let AdmitContext {
        conn_id,
        kick,
        session_identifier,
        deadline,
    } = cx;
    let presented_certificate = info
        .tls
        .as_ref()
        .and_then(|t| t.peer_certificate_id.as_deref())
        .filter(|_| info.transport == Transport::Tls);
    let certificate = match (presented_certificate, &broker.auth.certificates) {
        (Some(id), Some(auth)) => Some((Arc::<str>::from(id), auth.clone())),
        _ => None,
    };
    let custom = match &broker.auth.custom {
        Some(authenticator) if presented_certificate.is_none() && info.listener.custom_auth => {
            Some(authenticator.clone())
        }
        _ => None,
    };
    if certificate.is_none() && custom.is_none() && !info.listener.anonymous {
        return Err(reason::NOT_AUTHORIZED);
    }
    let config = &broker.config;
    let (client_id, assigned): (Arc<str>, _) = if connect.client_id.is_empty() {
        if !connect.protocol.is_v5() && !connect.clean_start {
            return Err(reason::CLIENT_IDENTIFIER_NOT_VALID);
        }
        let id = format!(
            "auto-{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        (id.as_str().into(), Some(id))
    } else if connect.client_id.len() > config.max_client_id_len {
        return Err(reason::CLIENT_IDENTIFIER_NOT_VALID);
    } else {
        (connect.client_id.as_str().into(), None)
    };
    if let Some(will) = &connect.will {
        if topic::validate_topic_name(&will.topic, &config.topic_limits).is_err() {
            return Err(reason::TOPIC_NAME_INVALID);
        }
        if will.qos == QoS::ExactlyOnce && config.compat == Compat::Aws {
            return Err(reason::QOS_NOT_SUPPORTED);
        }
    }
    let connect_context = ConnectContext {
        persistent: if connect.protocol.is_v5() {
            connect.properties.session_expiry_interval.unwrap_or(0) > 0
        } else {
            !connect.clean_start
        },
        last_will_topic: connect.will.as_ref().map(|w| config.arns.topic(&w.topic)),
    };
    let mut base = RequestBase {
        client_id: client_id.clone(),
        source_ip: Some(info.peer_addr.ip()),
        domain_name: info.tls.as_ref().and_then(|t| t.server_name.clone()),
        certificate: None,
    };
    let mut supervised = None;
    let mut reauthenticate = None;
    let (principal, indexed) = match (certificate, custom) {
        (Some((id, auth)), _) => {
            if let Some(der) = info.tls.as_ref().and_then(|t| t.peer_certificates.first()) {
                base.certificate = Some(auth.certificate_context(&id, der));
            }
            let request = base.request(None);
            let principal = Principal::new(
                Identity::Certificate(id.clone()),
                conn_id,
                base,
                connect_context,
                Authz::new(Arc::new(PolicySet::default()), request),
                kick.clone(),
            );
            // Indexed before the grant is resolved: a revocation committed meanwhile is either
            // seen by `authorize` or finds this connection (Broker::disconnect_certificate).
            broker
                .index
                .set(&principal, vec![Dependency::Certificate(id.to_string())]);
            let indexed = Indexed {
                index: broker.index.clone(),
                principal: principal.clone(),
            };
            // A policy change committed while the grant was resolved reaches this connection
            // either through the grant or through the index: resolve again until no change
            // looked for connections meanwhile (Broker::connections_depending_on).
            loop {
                let epoch = broker.index.epoch();
                let Some(grant) = auth.authorize(&id, &client_id) else {
                    tracing::debug!(certificate_id = %id, "CONNECT refused: the certificate may not connect");
                    return Err(reason::NOT_AUTHORIZED);
                };
                broker.install_grant(&principal, grant);
                if broker.index.epoch() == epoch {
                    break;
                }
            }
            (principal, Some(indexed))
        }
        (None, Some(authenticator)) => {
            let reauthenticable = connect.protocol.is_v5()
                && connect.properties.authentication_method.as_deref() == Some(CUSTOM_AUTH_METHOD);
            let password = match &connect.properties.authentication_data {
                Some(data) if reauthenticable => Some(data.clone()),
                _ => connect.password.clone(),
            };
            let attempt = CustomAuthAttempt {
                username: connect.username.clone(),
                password,
                client_id: client_id.to_string(),
                server_name: base.domain_name.clone(),
                peer: info.peer_addr,
                transport: info.transport,
                listener: info.listener.name.clone(),
                http: info.http.clone(),
                connection_id: session_identifier.to_owned(),
                protocol: CustomAuthProtocol::Mqtt,
            };
            // A change of the authorizer while it decides (an answer of its old configuration
            // or cache) is caught by the epoch: the connection is then asked about again.
            let epoch = broker.index.epoch();
            let grant = match custom_auth::authenticate_within(
                &*authenticator,
                attempt.clone(),
                deadline,
            )
            .await
            {
                Ok(grant) => grant,
                Err(denied) => {
                    tracing::info!(peer = %info.peer_addr, client_id = %client_id, error = %denied, "custom authentication refused the CONNECT");
                    return Err(denied.connack_code());
                }
            };
            let now = Instant::now();
            let request = grant.request(&base);
            let principal = Principal::new(
                Identity::Custom(grant.principal_id.as_str().into()),
                conn_id,
                base,
                connect_context,
                Authz::new(grant.policies, request),
                kick.clone(),
            );
            let disconnect_at = grant.disconnect_after.map(|after| now + after);
            let refresh_at = grant
                .refresh_after
                .map(|after| custom_auth::refresh_due(now, after));
            let reauthentications = reauthenticable.then(|| {
                let (sender, receiver) = mpsc::channel(1);
                reauthenticate = Some(sender);
                receiver
            });
            let authorizer_watched = grant.authorizer.is_some();
            let indexed = grant.authorizer.map(|name| {
                broker
                    .index
                    .set(&principal, vec![Dependency::Authorizer(name)]);
                if broker.index.epoch() != epoch {
                    principal.reauthenticate();
                }
                Indexed {
                    index: broker.index.clone(),
                    principal: principal.clone(),
                }
            });
            if disconnect_at.is_some()
                || refresh_at.is_some()
                || reauthentications.is_some()
                || authorizer_watched
            {
                supervised = Some(Supervised {
                    authenticator,
                    attempt,
                    principal: principal.clone(),
                    disconnect_at,
                    refresh_at,
                    limit: broker.config.connect_timeout,
                    reauthentications,
                    authorizer_watched,
                });
            }
            (principal, indexed)
        }
        (None, None) => {
            let authz = match &info.listener.anonymous_policy {
                Some(policies) => Authz::new(policies.clone(), base.request(None)),
                None => Authz::unrestricted(),
            };
            let principal = Principal::new(
                Identity::Anonymous(info.listener.name.as_str().into()),
                conn_id,
                base,
                connect_context,
                authz,
                kick.clone(),
            );
            (principal, None)
        }
    };
    if !principal.may_connect(&broker.denials, &config.arns) {
        return Err(reason::NOT_AUTHORIZED);
    }
    if let Some(will) = &connect.will {
        let mut buf = String::new();
        if !may_publish(broker, &principal, None, &will.topic, will.retain, &mut buf) {
            return Err(reason::NOT_AUTHORIZED);
        }
    }
    if config.compat == Compat::Aws && broker.connected_too_recently(&client_id) {
        return Err(reason::CONNECTION_RATE_EXCEEDED);
    }
    Ok(Admitted {
        principal,
        client_id,
        assigned,
        indexed,
        supervised,
        reauthenticate,
    })
}

/// `iot:Publish` on `topic` (remembered in `cache` when there is one), and
/// `iot:RetainPublish` too when `retain`.
fn may_publish(
    broker: &Broker,
    principal: &Principal,
    cache: Option<&mut AllowedTopics>,
    topic: &str,
    retain: bool,
    buf: &mut String,
) -> bool {
    let arns = broker.arns();
    let publish = match cache {
        Some(cache) => {
            principal.allowed_topic(cache, &broker.denials, arns, Action::Publish, topic, buf)
        }
        None => principal.allowed(
            &broker.denials,
            arns,
            Action::Publish,
            ResourceKind::Topic,
            topic,
            buf,
        ),
    };
    publish
        && (!retain
            || principal.allowed(
                &broker.denials,
                arns,
                Action::RetainPublish,
                ResourceKind::Topic,
                topic,
                buf,
            ))
}

/// Reads until a whole CONNECT has arrived. `Ok(None)`: the client closed first.
async fn read_connect<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max_packet_size: usize,
) -> Result<Option<Box<Connect>>, DecodeError> {
    loop {
        match ferrocore_mqtt::decode(buf, None, max_packet_size)? {
            Some(Packet::Connect(c)) => return Ok(Some(c)),
            Some(_) => return Err(DecodeError::Protocol("the first packet must be CONNECT")),
            None => match reader.read_buf(buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            },
        }
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(
    writer: &mut W,
    packet: &Packet,
    version: ProtocolVersion,
) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    ferrocore_mqtt::encode(packet, version, &mut buf).map_err(std::io::Error::other)?;
    writer.write_all(&buf).await?;
    writer.flush().await
}

fn effective_keep_alive(requested: u16, config: &crate::BrokerConfig) -> u16 {
    if config.compat == Compat::Aws {
        return match requested {
            0 | 1201.. => 1200,
            1..30 => 30,
            k => k,
        };
    }
    match config.max_keep_alive {
        0 => requested,
        max if requested == 0 || requested > max => max,
        _ => requested,
    }
}

/// Attaches a connection to its session: resumes the existing one or starts a new one, and
/// closes any connection still attached to it (session takeover).
fn attach(
    broker: &Arc<Broker>,
    client_id: &Arc<str>,
    connect: &Connect,
    attached: Attached,
    principal: Arc<Principal>,
    expiry: u32,
    window: usize,
) -> (Arc<Session>, bool, u64, Option<Commit>) {
    let mut sessions = broker.sessions.lock();
    let existing = sessions.get(client_id).cloned();
    if let Some(old) = &existing
        && let Some(a) = &old.state.lock().attached
    {
        a.kick.fire(reason::SESSION_TAKEN_OVER);
    }
    let (session, present) = match existing {
        // A session that ends with its connection (clean session, expiry 0) is never
        // resumed, not even by a takeover that asks for it [MQTT-3.1.2-6].
        Some(old) if !connect.clean_start && old.state.lock().persistent() => (old, true),
        existing => {
            if let Some(old) = existing {
                sessions.remove(client_id);
                broker.end_session(&old);
            }
            let session = Arc::new(Session::new(
                broker.new_key(),
                client_id.clone(),
                connect.protocol,
                expiry,
            ));
            sessions.insert(client_id.clone(), session.clone());
            (session, false)
        }
    };
    let mut state = session.state.lock();
    state.attached = Some(attached);
    state.generation += 1;
    state.mark_unsent();
    state.window = window;
    state.protocol = connect.protocol;
    state.principal = principal;
    if present && !state.queue.is_empty() {
        // Queued for an earlier identity (or for nobody, after a restart): decided again.
        let principal = state.principal.clone();
        let authz = principal.authz();
        if !authz.is_unrestricted() {
            with_arn_buffer(|buf| {
                state.retain_queued(client_id, &broker.store, |d| {
                    broker.arns().write_topic(&d.message.topic, buf);
                    principal.permits(&authz, &broker.denials, Action::Receive, buf)
                });
            });
        }
    }
    let was_persistent = state.persistent();
    state.expiry = expiry;
    let commit = if expiry > 0 {
        Some(broker.store.submit(vec![Broker::session_record(
            &session,
            connect.protocol.level(),
            expiry,
            false,
        )]))
    } else if was_persistent {
        Some(broker.store.submit(vec![WriteOp::DeleteSession {
            client_id: client_id.to_string(),
        }]))
    } else {
        None
    };
    let generation = state.generation;
    drop(state);
    (session, present, generation, commit)
}

/// Detaches a closing connection from its session: ends a clean session, records when a
/// persistent one went offline and arms its expiry, and publishes (or schedules) the will.
fn detach(
    broker: &Arc<Broker>,
    session: &Arc<Session>,
    conn_id: u64,
    generation: u64,
    will: Option<LastWill>,
    expiry: u32,
    cause: DisconnectReason,
) {
    let mut sessions = broker.sessions.lock();
    let mut state = session.state.lock();
    let still_ours = state
        .attached
        .as_ref()
        .is_some_and(|a| a.conn_id == conn_id);
    let was_persistent = state.persistent();
    if still_ours {
        state.attached = None;
        state.expiry = expiry;
        state.last_disconnect = Some(LastDisconnect {
            at_ms: unix_ms(),
            reason: Some(cause),
        });
    }
    let ends = still_ours && expiry == 0;
    if ends && was_persistent {
        // Ended on the way out (MQTT 5 DISCONNECT with expiry 0, DeleteConnection with
        // cleanSession): its durable record goes too.
        drop(broker.store.submit(vec![WriteOp::DeleteSession {
            client_id: session.client_id.to_string(),
        }]));
    }
    if still_ours && !ends {
        drop(broker.store.submit(vec![Broker::session_record(
            session,
            state.protocol.level(),
            expiry,
            true,
        )]));
    }
    drop(state);
    // Publishers held back by this connection's queue need not wait for it any more.
    session.room.notify_waiters();
    if ends {
        if sessions
            .get(&session.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(&session.client_id);
        }
        drop(sessions);
        broker.end_session(session);
    } else {
        drop(sessions);
        if still_ours {
            broker.schedule_expiry(session, generation, Duration::from_secs(u64::from(expiry)));
        }
    }
    if let Some(will) = will {
        // The will waits for its delay, but no longer than the session lives; a client that
        // reconnects to the session first cancels it.
        let delay = will.properties.will_delay_interval.unwrap_or(0).min(expiry);
        if delay == 0 || ends {
            publish_will(broker, will);
        } else {
            let broker = Arc::downgrade(broker);
            let session = session.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                let resumed = session.state.lock().generation != generation;
                if !resumed {
                    publish_will(&broker, will);
                }
            });
        }
    }
}

fn publish_will(broker: &Broker, will: LastWill) {
    let p = will.properties;
    let publish = Publish {
        dup: false,
        qos: will.qos,
        retain: will.retain,
        topic: will.topic,
        packet_id: 0,
        payload: will.payload,
        properties: PublishProperties {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
            content_type: p.content_type,
            ..PublishProperties::default()
        },
    };
    drop(broker.publish(Arc::new(Message::from_publish(publish, None))));
}

/// The reader side of a connection.
struct Connection {
    broker: Arc<Broker>,
    session: Arc<Session>,
    principal: Arc<Principal>,
    /// What its lifecycle events say about it; `None` when it gets none.
    presence: Option<Presence>,
    /// Where resource ARNs are written for decisions (reused: no allocation per PUBLISH).
    arn: String,
    /// Topics this connection was allowed to publish to (`iot:Publish`).
    publish_cache: AllowedTopics,
    version: ProtocolVersion,
    outbox: Arc<Outbox>,
    will: Option<LastWill>,
    /// Current session expiry (a v5 DISCONNECT may change it).
    expiry: u32,
    inbound_aliases: HashMap<u16, String>,
    pending: VecDeque<PendingAck>,
    /// AWS mode's inbound quotas, and the PUBLISH packets counted since they last charged.
    throttle: Option<Throttle>,
    publishes_read: u32,
    /// Where AUTH re-authentications go (custom authentication with [`CUSTOM_AUTH_METHOD`]).
    reauthenticate: Option<mpsc::Sender<Option<Bytes>>>,
}

impl Connection {
    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        buf: &mut BytesMut,
        kick: &Kick,
        keep_alive: u16,
    ) -> Close {
        // A client must send something within one and a half keep-alive periods.
        let idle_limit =
            (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
        let idle = tokio::time::sleep(idle_limit.unwrap_or(Duration::from_secs(86400 * 365)));
        tokio::pin!(idle);
        let max_packet_size = self.broker.config.max_packet_size;
        let mut read_filled = false;
        loop {
            if let Some(order) = *kick.order.lock() {
                if order.end_session {
                    self.expiry = 0;
                }
                let cause = DisconnectReason::of_kick(order.code);
                let why = match cause {
                    DisconnectReason::AuthError => "no longer authorized",
                    DisconnectReason::DuplicateClientId => "session taken over",
                    DisconnectReason::ApiInitiated => "disconnected by the API",
                    DisconnectReason::CustomAuthTtlExpiration => {
                        "custom authorization lifetime over"
                    }
                    _ => "closed by the server",
                };
                return Close {
                    reason: Some(order.code),
                    will: order.will,
                    why,
                    cause,
                };
            }
            while self.pending.front().is_some_and(|p| p.commit.is_none()) {
                if let Some(ack) = self.pending.pop_front() {
                    self.release_ack(ack);
                }
            }
            let has_commit = self.pending.front().is_some();
            // A read that filled the buffer means a busy sender: read in large chunks then,
            // and keep idle connections' buffers small.
            if read_filled {
                buf.reserve(16 * 1024);
            }
            let spare = buf.capacity() - buf.len();
            tokio::select! {
                biased;
                _ = kick.notify.notified() => continue,
                result = wait_front(&mut self.pending), if has_commit => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "durable write failed; closing the connection");
                        return Close {
                            reason: Some(reason::UNSPECIFIED_ERROR),
                            will: true,
                            why: "store failure",
                            cause: DisconnectReason::ServerError,
                        };
                    }
                    if let Some(mut ack) = self.pending.pop_front() {
                        ack.commit = None;
                        self.release_ack(ack);
                    }
                }
                read = reader.read_buf(buf) => {
                    let bytes_read = match read {
                        Ok(0) => return Close { reason: None, will: true, why: "connection lost", cause: DisconnectReason::ConnectionLost },
                        Err(_) => return Close { reason: None, will: true, why: "read error", cause: DisconnectReason::ConnectionLost },
                        Ok(n) => n,
                    };
                    read_filled = bytes_read >= spare;
                    if let Some(limit) = idle_limit {
                        idle.as_mut().reset(Instant::now() + limit);
                    }
                    loop {
                        match ferrocore_mqtt::decode(buf, Some(self.version), max_packet_size) {
                            Ok(Some(packet)) => {
                                if let Err(close) = self.handle(packet) {
                                    return close;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(error = %e, "undecodable packet");
                                return Close::protocol(e.reason_code(), "malformed packet");
                            }
                        }
                    }
                    if !read_filled && buf.is_empty() && buf.capacity() > 1024 {
                        *buf = BytesMut::with_capacity(256);
                    }
                    wait_for_writer(&self.outbox, kick).await;
                    self.pace(bytes_read, kick).await;
                    if read_filled {
                        // A sender with more waiting yields after each chunk, so the writers
                        // that deliver what it publishes get their turn: ingest must not
                        // starve delivery (fan-in collapse).
                        tokio::task::yield_now().await;
                    }
                }
                _ = &mut idle, if idle_limit.is_some() => {
                    return Close {
                        reason: Some(reason::KEEP_ALIVE_TIMEOUT),
                        will: true,
                        why: "keep alive timeout",
                        cause: DisconnectReason::KeepAliveTimeout,
                    };
                }
            }
        }
    }

    fn release_ack(&mut self, ack: PendingAck) {
        self.outbox.push(ack.packet);
        if !ack.then_deliver.is_empty() {
            self.broker
                .deliver_retained(&self.session, ack.then_deliver);
        }
        if let Some(announcement) = ack.then_announce {
            self.broker.announce(*announcement);
        }
    }

    /// Sends `packet` once `commit` (if any) resolves and every acknowledgement before it went.
    fn ack(&mut self, commit: Option<AckWait>, packet: Packet, then_deliver: Vec<Delivery>) {
        self.queue_ack(PendingAck {
            commit,
            packet,
            then_deliver,
            then_announce: None,
        });
    }

    /// Sends `ack` once its commit (if any) resolves and every acknowledgement before it went.
    /// Queues a SUBACK (`subscribed`) or UNSUBACK, then the retained deliveries and the
    /// lifecycle event for `filters` (none when no filter was granted or removed).
    fn queue_subscription_ack(
        &mut self,
        commit: Option<Commit>,
        packet: Packet,
        then_deliver: Vec<Delivery>,
        subscribed: bool,
        filters: &[&str],
    ) {
        let then_announce = self
            .presence
            .as_ref()
            .filter(|_| !filters.is_empty())
            .map(|p| Box::new(p.subscriptions(subscribed, filters)));
        self.queue_ack(PendingAck {
            commit: durable(commit),
            packet,
            then_deliver,
            then_announce,
        });
    }

    fn queue_ack(&mut self, ack: PendingAck) {
        if ack.commit.is_none() && self.pending.is_empty() {
            self.release_ack(ack);
        } else {
            self.pending.push_back(ack);
        }
    }

    fn handle(&mut self, packet: Packet) -> Result<(), Close> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(r) | Packet::PubComp(r) => {
                let known = self.session.state.lock().complete(
                    &self.session.client_id,
                    r.packet_id,
                    &self.broker.store,
                );
                if known {
                    self.outbox.wake.notify_one();
                }
                Ok(())
            }
            Packet::PubRec(r) => {
                let known = self.session.state.lock().released(
                    &self.session.client_id,
                    r.packet_id,
                    &self.broker.store,
                );
                let reason = if known {
                    reason::SUCCESS
                } else {
                    reason::PACKET_IDENTIFIER_NOT_FOUND
                };
                if r.reason >= 0x80 {
                    // The client refused the message: the delivery ends here.
                    self.session.state.lock().complete(
                        &self.session.client_id,
                        r.packet_id,
                        &self.broker.store,
                    );
                    self.outbox.wake.notify_one();
                    return Ok(());
                }
                self.outbox.push(Packet::PubRel(PubResp {
                    packet_id: r.packet_id,
                    reason,
                    ..PubResp::default()
                }));
                Ok(())
            }
            Packet::PubRel(r) => {
                let (known, commit) = {
                    let mut state = self.session.state.lock();
                    let known = state.inbound_qos2.remove(&r.packet_id);
                    let commit = (known && state.persistent()).then(|| {
                        self.broker.store.submit(vec![WriteOp::DeleteInboundQos2 {
                            client_id: self.session.client_id.to_string(),
                            packet_id: r.packet_id,
                        }])
                    });
                    (known, commit)
                };
                let reason = if known {
                    reason::SUCCESS
                } else {
                    reason::PACKET_IDENTIFIER_NOT_FOUND
                };
                drop(commit);
                self.ack(
                    None,
                    Packet::PubComp(PubResp {
                        packet_id: r.packet_id,
                        reason,
                        ..PubResp::default()
                    }),
                    Vec::new(),
                );
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => {
                let mut commits = Vec::new();
                let mut removed = Vec::new();
                let reasons = u
                    .filters
                    .iter()
                    .map(|f| {
                        if self.broker.unsubscribe(&self.session, f, &mut commits) {
                            removed.push(f.as_str());
                            reason::SUCCESS
                        } else {
                            reason::NO_SUBSCRIPTION_EXISTED
                        }
                    })
                    .collect();
                let packet = Packet::UnsubAck(UnsubAck {
                    packet_id: u.packet_id,
                    reasons,
                    ..UnsubAck::default()
                });
                self.queue_subscription_ack(commits.pop(), packet, Vec::new(), false, &removed);
                Ok(())
            }
            Packet::PingReq => {
                self.ack(None, Packet::PingResp, Vec::new());
                Ok(())
            }
            Packet::Disconnect(d) => {
                if let Some(new_expiry) = d.properties.session_expiry_interval {
                    if self.expiry == 0 && new_expiry > 0 {
                        return Err(Close::protocol(
                            reason::PROTOCOL_ERROR,
                            "session expiry set on DISCONNECT",
                        ));
                    }
                    let max = u32::try_from(self.broker.config.max_session_expiry.as_secs())
                        .unwrap_or(u32::MAX);
                    self.expiry = new_expiry.min(max);
                }
                let will = d.reason == reason::DISCONNECT_WITH_WILL;
                Err(Close {
                    reason: None,
                    will,
                    why: "client disconnected",
                    cause: DisconnectReason::ClientInitiated,
                })
            }
            Packet::Auth(a) => self.on_auth(a),
            Packet::Connect(_) => Err(Close::protocol(reason::PROTOCOL_ERROR, "second CONNECT")),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Err(Close::protocol(
                    reason::PROTOCOL_ERROR,
                    "server-to-client packet from a client",
                ))
            }
        }
    }

    /// AUTH: re-authentication of a client that connected with [`CUSTOM_AUTH_METHOD`], decided
    /// beside the connection (see [`custom_auth::supervise`]); anything else breaks the
    /// protocol (no other enhanced authentication exists).
    fn on_auth(&mut self, a: Auth) -> Result<(), Close> {
        let Some(sender) = &self.reauthenticate else {
            return Err(Close::protocol(
                reason::PROTOCOL_ERROR,
                "AUTH without an authentication method",
            ));
        };
        if a.reason != reason::REAUTHENTICATE
            || a.properties.authentication_method.as_deref() != Some(CUSTOM_AUTH_METHOD)
        {
            return Err(Close::protocol(
                reason::PROTOCOL_ERROR,
                "AUTH other than a re-authentication with the CONNECT's method",
            ));
        }
        if sender.try_send(a.properties.authentication_data).is_err() {
            return Err(Close::protocol(
                reason::PROTOCOL_ERROR,
                "AUTH while a re-authentication is in progress",
            ));
        }
        Ok(())
    }

    fn on_publish(&mut self, mut p: Publish) -> Result<(), Close> {
        let config = &self.broker.config;
        if !p.properties.subscription_identifiers.is_empty() {
            return Err(Close::protocol(
                reason::PROTOCOL_ERROR,
                "subscription identifier in a client PUBLISH",
            ));
        }
        if let Some(alias) = p.properties.topic_alias.take() {
            if alias == 0 || alias > config.max_topic_aliases {
                return Err(Close::protocol(
                    reason::TOPIC_ALIAS_INVALID,
                    "topic alias out of range",
                ));
            }
            if p.topic.is_empty() {
                match self.inbound_aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        return Err(Close::protocol(
                            reason::PROTOCOL_ERROR,
                            "unknown topic alias",
                        ));
                    }
                }
            } else {
                self.inbound_aliases.insert(alias, p.topic.clone());
            }
        }
        if topic::validate_topic_name(&p.topic, &config.topic_limits).is_err() {
            return Err(Close::protocol(
                reason::TOPIC_NAME_INVALID,
                "invalid topic name",
            ));
        }
        if p.payload.len() > config.max_payload_size {
            return Err(Close::protocol(
                reason::PACKET_TOO_LARGE,
                "payload too large",
            ));
        }
        if p.qos == QoS::ExactlyOnce && config.compat == Compat::Aws {
            return Err(Close::protocol(
                reason::QOS_NOT_SUPPORTED,
                "QoS 2 is not supported in AWS mode",
            ));
        }
        let packet_id = p.packet_id;
        self.publishes_read += 1;
        if !may_publish(
            &self.broker,
            &self.principal,
            Some(&mut self.publish_cache),
            &p.topic,
            p.retain,
            &mut self.arn,
        ) {
            // 3.1.1 has no way to say no: AWS closes the connection, the specification
            // allows acknowledging and dropping the message (our default). MQTT 5 gets 0x87.
            if !self.version.is_v5() && config.compat == Compat::Aws {
                return Err(Close {
                    reason: None,
                    will: true,
                    why: "publish not authorized",
                    cause: DisconnectReason::ForbiddenAccess,
                });
            }
            let code = if self.version.is_v5() {
                reason::NOT_AUTHORIZED
            } else {
                reason::SUCCESS
            };
            self.ack_publish(p.qos, packet_id, None, code);
            return Ok(());
        }
        if p.qos != QoS::AtMostOnce {
            // One look at the inbound QoS 2 state answers both questions.
            let (awaiting_release, resent) = {
                let state = self.session.state.lock();
                (
                    state.inbound_qos2.len(),
                    state.inbound_qos2.contains(&packet_id),
                )
            };
            if p.qos == QoS::ExactlyOnce && resent {
                // A resent PUBLISH whose PUBREC was lost: acknowledge again, route once.
                self.ack_publish(p.qos, packet_id, None, reason::SUCCESS);
                return Ok(());
            }
            if self.pending.len() + awaiting_release >= usize::from(config.max_inflight) {
                return Err(Close {
                    reason: Some(reason::RECEIVE_MAXIMUM_EXCEEDED),
                    will: true,
                    why: "receive maximum exceeded",
                    cause: DisconnectReason::Throttled,
                });
            }
        }
        if p.topic.starts_with(SERVICE_TOPIC_PREFIX) {
            self.broker
                .offer_to_topic_service(&p.topic, &p.payload, Some(&self.session.client_id));
        }
        let qos = p.qos;
        let message = Arc::new(Message::from_publish(p, Some(self.session.key)));
        let Routed {
            mut commit,
            pressured,
        } = self.broker.publish(message);
        if qos == QoS::ExactlyOnce {
            let mut state = self.session.state.lock();
            state.inbound_qos2.insert(packet_id);
            if state.persistent() {
                commit = Some(self.broker.store.submit(vec![WriteOp::PutInboundQos2 {
                    client_id: self.session.client_id.to_string(),
                    packet_id,
                }]));
            }
        }
        let wait = hold_back(&self.broker, commit, pressured);
        self.ack_publish(qos, packet_id, wait, reason::SUCCESS);
        Ok(())
    }

    /// Whether the will may still be published (`iot:Publish`, and `iot:RetainPublish` for a
    /// retained will, with the policies in force now).
    fn may_publish_will(&mut self, will: &LastWill) -> bool {
        may_publish(
            &self.broker,
            &self.principal,
            None,
            &will.topic,
            will.retain,
            &mut self.arn,
        )
    }

    fn ack_publish(&mut self, qos: QoS, packet_id: u16, commit: Option<AckWait>, code: u8) {
        let resp = PubResp {
            packet_id,
            reason: code,
            ..PubResp::default()
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.ack(commit, Packet::PubAck(resp), Vec::new()),
            QoS::ExactlyOnce => self.ack(commit, Packet::PubRec(resp), Vec::new()),
        }
    }

    /// AWS mode: pauses reading for as long as the client is over its inbound quotas (the
    /// kick of a takeover or shutdown cuts the pause short).
    async fn pace(&mut self, bytes: usize, kick: &Kick) {
        let Some(throttle) = &mut self.throttle else {
            return;
        };
        let wait = throttle.charge(
            std::mem::take(&mut self.publishes_read),
            bytes,
            Instant::now(),
        );
        if wait.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = kick.notify.notified() => kick.notify.notify_one(),
        }
    }

    /// AWS mode: the `index`-th filter of a SUBSCRIBE is beyond AWS's quotas.
    fn over_subscription_quota(&self, index: usize, filter: &str) -> bool {
        if self.broker.config.compat != Compat::Aws {
            return false;
        }
        let state = self.session.state.lock();
        index >= AWS_QUOTAS.filters_per_subscribe
            || (!state.subscriptions.contains_key(filter)
                && state.subscriptions.len() >= AWS_QUOTAS.subscriptions_per_connection)
    }

    fn on_subscribe(&mut self, s: ferrocore_mqtt::Subscribe) -> Result<(), Close> {
        let mut commits = Vec::new();
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut granted = Vec::new();
        let mut retained = Vec::new();
        let subscription_id = s.properties.subscription_identifier;
        for (index, (filter, options)) in s.filters.iter().enumerate() {
            if options.no_local && filter.starts_with("$share/") {
                return Err(Close::protocol(
                    reason::PROTOCOL_ERROR,
                    "no-local on a shared subscription",
                ));
            }
            let (code, mut deliveries) = if self.over_subscription_quota(index, filter) {
                (reason::QUOTA_EXCEEDED, Vec::new())
            } else if topic::validate_topic_filter(filter, &self.broker.config.topic_limits)
                .is_err()
            {
                (reason::TOPIC_FILTER_INVALID, Vec::new())
            } else if !self.principal.allowed(
                &self.broker.denials,
                self.broker.arns(),
                Action::Subscribe,
                ResourceKind::TopicFilter,
                filter,
                &mut self.arn,
            ) {
                (reason::NOT_AUTHORIZED, Vec::new())
            } else {
                self.broker.subscribe(
                    &self.session,
                    filter,
                    *options,
                    subscription_id,
                    &mut commits,
                )
            };
            if code == reason::NOT_AUTHORIZED
                && !self.version.is_v5()
                && self.broker.config.compat == Compat::Aws
            {
                return Err(Close {
                    reason: None,
                    will: true,
                    why: "subscribe not authorized",
                    cause: DisconnectReason::ForbiddenAccess,
                });
            }
            if code < 0x80 {
                granted.push(filter.as_str());
            }
            let code = if code >= 0x80 && !self.version.is_v5() {
                reason::v3::SUBACK_FAILURE
            } else {
                code
            };
            reasons.push(code);
            retained.append(&mut deliveries);
        }
        let packet = Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            reasons,
            ..SubAck::default()
        });
        self.queue_subscription_ack(commits.pop(), packet, retained, true, &granted);
        Ok(())
    }
}

/// Stops reading while the writer is behind on control packets (a client not reading).
async fn wait_for_writer(outbox: &Outbox, kick: &Kick) {
    while outbox.pending() > MAX_PENDING_CONTROL {
        let drained = outbox.drained.notified();
        if outbox.pending() <= MAX_PENDING_CONTROL {
            break;
        }
        tokio::select! {
            _ = drained => {}
            _ = kick.notify.notified() => {
                // Leave the kick for the read loop to act on.
                kick.notify.notify_one();
                break;
            }
        }
    }
}

fn durable(commit: Option<Commit>) -> Option<AckWait> {
    commit.map(|c| Box::pin(c) as AckWait)
}

/// The wait before a PUBLISH is acknowledged: its durable writes, then room in the queues of
/// slow subscribers it overfilled. Holding the acknowledgement back is the flow control that
/// slows a QoS 1/2 publisher down to what its subscribers take, for at most
/// [`MAX_PUBLISHER_HOLD`] per message so that one stuck subscriber cannot stop publishers.
fn hold_back(
    broker: &Arc<Broker>,
    commit: Option<Commit>,
    pressured: Vec<Arc<Session>>,
) -> Option<AckWait> {
    if pressured.is_empty() {
        return durable(commit);
    }
    let broker = broker.clone();
    Some(Box::pin(async move {
        if let Some(commit) = commit {
            commit.await?;
        }
        for session in pressured {
            session
                .wait_for_room(&broker.limits, MAX_PUBLISHER_HOLD)
                .await;
        }
        Ok(())
    }))
}

/// Waits for the commit at the front of the queue (never resolves when there is none).
async fn wait_front(pending: &mut VecDeque<PendingAck>) -> Result<(), ferrocore_store::StoreError> {
    match pending.front_mut().and_then(|p| p.commit.as_mut()) {
        Some(commit) => commit.await,
        None => std::future::pending().await,
    }
}

struct WriterState {
    broker: Arc<Broker>,
    session: Arc<Session>,
    outbox: Arc<Outbox>,
    closed: Arc<AtomicBool>,
    conn_id: u64,
    version: ProtocolVersion,
    /// The client's Maximum Packet Size.
    max_packet_size: usize,
    /// The client's Topic Alias Maximum, and the aliases we assigned.
    alias_max: u16,
    aliases: HashMap<String, u16>,
}

async fn write_loop<W: AsyncWrite + Unpin>(mut writer: W, mut w: WriterState) {
    // Allocated on first use and released when a burst left it large: idle connections
    // hold no write buffer.
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    loop {
        w.outbox.take(&mut items);
        let now = Instant::now();
        let room = w.session.state.lock().take_sendable(
            &w.session.client_id,
            w.conn_id,
            &w.broker.limits,
            &w.broker.store,
            now,
            &mut items,
        );
        if room {
            w.session.room.notify_waiters();
        }
        if items.is_empty() {
            if w.closed.load(Ordering::Acquire) {
                break;
            }
            w.outbox.wake.notified().await;
            continue;
        }
        for item in items.drain(..) {
            w.encode(item, now, &mut buf);
        }
        if writer.write_all(&buf).await.is_err() || writer.flush().await.is_err() {
            return;
        }
        buf.clear();
        if buf.capacity() > 64 * 1024 {
            buf = BytesMut::new();
        }
        if items.capacity() > 1024 {
            items = Vec::new();
        }
    }
    let _ = writer.shutdown().await;
}

impl WriterState {
    fn encode(&mut self, item: Outgoing, now: Instant, buf: &mut BytesMut) {
        if let Outgoing::Publish {
            delivery,
            packet_id: 0,
            ..
        } = &item
            && self.alias_max == 0
            && delivery.subscription_ids.is_empty()
            && delivery.message.expires_at.is_none()
        {
            let wire = delivery.message.shared_qos0_encoding(self.version);
            if !wire.is_empty() && wire.len() <= self.max_packet_size {
                let start = buf.len();
                buf.extend_from_slice(wire);
                if delivery.retain {
                    buf[start] |= 0x01;
                }
            }
            return;
        }
        let packet = match item {
            Outgoing::Packet(p) => p,
            Outgoing::PubRel { packet_id } => Packet::PubRel(PubResp {
                packet_id,
                ..PubResp::default()
            }),
            Outgoing::Publish {
                delivery,
                packet_id,
                dup,
            } => match self.publish_packet(&delivery, packet_id, dup, now) {
                Some(p) => p,
                None => {
                    if packet_id != 0 {
                        // Too large for the client: discarded as if it had been acknowledged.
                        self.session.state.lock().complete(
                            &self.session.client_id,
                            packet_id,
                            &self.broker.store,
                        );
                    }
                    return;
                }
            },
        };
        if let Err(e) = ferrocore_mqtt::encode(&packet, self.version, buf) {
            tracing::warn!(error = %e, "could not encode an outgoing packet");
        }
    }

    /// Builds the PUBLISH for a delivery; `None` when it exceeds the client's maximum size.
    fn publish_packet(
        &mut self,
        delivery: &Delivery,
        packet_id: u16,
        dup: bool,
        now: Instant,
    ) -> Option<Packet> {
        let message = &delivery.message;
        let properties = if self.version.is_v5() {
            let mut p = message.properties.clone();
            p.message_expiry_interval = message.remaining_expiry(now);
            p.subscription_identifiers
                .clone_from(&delivery.subscription_ids);
            p
        } else {
            PublishProperties::default()
        };
        let mut publish = Publish {
            dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic: message.topic.clone(),
            packet_id,
            payload: message.payload.clone(),
            properties,
        };
        if self.max_packet_size < usize::MAX {
            let packet = Packet::Publish(publish);
            if ferrocore_mqtt::encoded_len(&packet, self.version) > self.max_packet_size {
                return None;
            }
            let Packet::Publish(p) = packet else {
                return None;
            };
            publish = p;
        }
        if self.alias_max > 0 {
            match self.aliases.get(&publish.topic) {
                Some(&alias) => {
                    publish.properties.topic_alias = Some(alias);
                    publish.topic.clear();
                }
                None if self.aliases.len() < usize::from(self.alias_max) => {
                    let alias = self.aliases.len() as u16 + 1;
                    self.aliases.insert(publish.topic.clone(), alias);
                    publish.properties.topic_alias = Some(alias);
                }
                None => {}
            }
        }
        Some(Packet::Publish(publish))
    }
}
