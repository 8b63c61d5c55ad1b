//! Custom authentication in-process: a fake custom authenticator decides CONNECTs of
//! listeners that accept custom auth; its grants' lifetimes run on tokio's paused clock.

#![allow(clippy::unwrap_used)] // a failed set-up step should fail the test loudly

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrocore_broker::ferrocore_policy::PolicySet;
use ferrocore_broker::{
    Authentication, Broker, BrokerConfig, CUSTOM_AUTH_METHOD, CertificateAuthorizer,
    ConnectionInfo, CustomAuthAttempt, CustomAuthDenied, CustomAuthenticator, CustomGrant, Grant,
    ListenerAuth, TlsInfo, Transport,
};
use ferrocore_mqtt::*;
use ferrocore_store::{Durability, Store};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const ARN: &str = "arn:aws:iot:us-east-1:000000000000";

fn policy(statements: &str) -> Arc<PolicySet> {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.replace("{ARN}", ARN)
    );
    Arc::new(PolicySet::parse([("authorizer-policy", doc.as_str())]).unwrap())
}

/// Connect as `alice*`, publish under `alice/`.
fn alice_policy() -> Arc<PolicySet> {
    policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/alice*"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/alice/*"}"#,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Alice with password "pw" is allowed, everyone else denied.
    Normal,
    /// Everyone is denied.
    DenyAll,
    Unavailable,
    /// Never answers.
    Silent,
}

/// A custom authenticator that knows one user, counts its calls and keeps the last attempt.
struct FakeAuthorizer {
    mode: Mutex<Mode>,
    /// The authorizer its grants name as deciding.
    authorizer: Mutex<String>,
    policies: Mutex<Arc<PolicySet>>,
    /// The grants' claims (`ferrocore:Claims.*`).
    claims: Mutex<BTreeMap<String, Vec<String>>>,
    disconnect_after: Option<Duration>,
    refresh_after: Option<Duration>,
    calls: AtomicUsize,
    last: Mutex<Option<CustomAuthAttempt>>,
}

impl FakeAuthorizer {
    fn new(disconnect_after: Option<Duration>, refresh_after: Option<Duration>) -> Arc<Self> {
        Arc::new(FakeAuthorizer {
            mode: Mutex::new(Mode::Normal),
            authorizer: Mutex::new("a".to_owned()),
            policies: Mutex::new(alice_policy()),
            claims: Mutex::new(BTreeMap::new()),
            disconnect_after,
            refresh_after,
            calls: AtomicUsize::new(0),
            last: Mutex::new(None),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl CustomAuthenticator for FakeAuthorizer {
    fn authenticate(
        &self,
        attempt: CustomAuthAttempt,
    ) -> Pin<Box<dyn Future<Output = Result<CustomGrant, CustomAuthDenied>> + Send>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let alice = attempt.username.as_deref() == Some("alice")
            && attempt.password.as_deref() == Some(b"pw".as_slice());
        *self.last.lock() = Some(attempt);
        let answer = match *self.mode.lock() {
            Mode::Silent => return Box::pin(std::future::pending()),
            Mode::Unavailable => Err(CustomAuthDenied::Unavailable("down".into())),
            Mode::DenyAll => Err(CustomAuthDenied::NotAuthorized("revoked".into())),
            Mode::Normal if alice => Ok(CustomGrant {
                principal_id: "alice".into(),
                policies: self.policies.lock().clone(),
                disconnect_after: self.disconnect_after,
                refresh_after: self.refresh_after,
                authorizer: Some(self.authorizer.lock().clone()),
                claims: self.claims.lock().clone(),
                context: BTreeMap::from([("site".to_owned(), "lyon".to_owned())]),
            }),
            Mode::Normal => Err(CustomAuthDenied::NotAuthorized("unknown user".into())),
        };
        Box::pin(std::future::ready(answer))
    }
}

/// Every certificate may connect with no policies; counts the checks.
#[derive(Default)]
struct Certificates {
    checked: AtomicUsize,
}

impl CertificateAuthorizer for Certificates {
    fn authorize(&self, _certificate_id: &str, _client_id: &str) -> Option<Grant> {
        self.checked.fetch_add(1, Ordering::SeqCst);
        Some(Grant {
            policies: policy(r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}"#),
            thing: None,
            depends_on: Vec::new(),
        })
    }
}

struct Harness {
    broker: Arc<Broker>,
    authorizer: Arc<FakeAuthorizer>,
    certificates: Arc<Certificates>,
    _dir: tempfile::TempDir,
}

async fn harness(authorizer: Arc<FakeAuthorizer>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db"), Durability::Process)
        .await
        .unwrap();
    let certificates = Arc::new(Certificates::default());
    let broker = Broker::start_with_auth(
        BrokerConfig {
            connect_timeout: Duration::from_secs(5),
            ..BrokerConfig::default()
        },
        store,
        Authentication {
            certificates: Some(certificates.clone()),
            custom: Some(authorizer.clone()),
        },
    )
    .await
    .unwrap();
    // Paused only now: the store's pool keeps real-time timers while opening.
    tokio::time::pause();
    Harness {
        broker,
        authorizer,
        certificates,
        _dir: dir,
    }
}

fn listener(custom_auth: bool, anonymous: bool) -> ConnectionInfo {
    let addr: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    ConnectionInfo {
        peer_addr: addr,
        local_addr: addr,
        transport: Transport::Tls,
        tls: Some(TlsInfo {
            server_name: Some("iot.example.com".into()),
            ..TlsInfo::default()
        }),
        http: None,
        listener: Arc::new(ListenerAuth {
            name: "mqtts".into(),
            anonymous,
            anonymous_policy: None,
            custom_auth,
        }),
    }
}

struct Client {
    io: DuplexStream,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Client {
    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        encode(&p, self.version, &mut out).unwrap();
        self.io.write_all(&out).await.unwrap();
    }

    /// `None` on timeout or when the server closed the stream.
    async fn try_recv(&mut self, wait: Duration) -> Option<Packet> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(p) = decode(&mut self.buf, Some(self.version), usize::MAX).unwrap() {
                    return Some(p);
                }
                if self.io.read_buf(&mut self.buf).await.ok()? == 0 {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    async fn recv(&mut self) -> Packet {
        self.try_recv(Duration::from_secs(10))
            .await
            .expect("no packet within 10 s")
    }

    /// Publishes at QoS 1; the PUBACK's reason code.
    async fn publish(&mut self, topic: &str, packet_id: u16) -> u8 {
        self.send(Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            topic: topic.into(),
            packet_id,
            payload: Bytes::from_static(b"x"),
            ..Publish::default()
        }))
        .await;
        match self.recv().await {
            Packet::PubAck(r) => r.reason,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

fn connect_packet(
    version: ProtocolVersion,
    id: &str,
    username: &str,
    password: &'static [u8],
) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 0,
        client_id: id.into(),
        username: Some(username.into()),
        password: Some(Bytes::from_static(password)),
        ..Connect::default()
    }
}

async fn connect(
    broker: &Arc<Broker>,
    info: ConnectionInfo,
    connect: Connect,
) -> (Client, ConnAck) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let b = broker.clone();
    tokio::spawn(async move { b.serve(server, info).await });
    let mut c = Client {
        io: client,
        buf: BytesMut::new(),
        version: connect.protocol,
    };
    c.send(Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Packet::ConnAck(a) => (c, a),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

async fn alice(h: &Harness) -> (Client, ConnAck) {
    connect(
        &h.broker,
        listener(true, false),
        connect_packet(ProtocolVersion::V5, "alice-1", "alice", b"pw"),
    )
    .await
}

/// An allow-all client subscribed to the presence events.
async fn observer(broker: &Arc<Broker>) -> Client {
    let mut info = listener(false, true);
    info.transport = Transport::Tcp;
    info.tls = None;
    let mut c = Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        client_id: "observer".into(),
        ..Connect::default()
    };
    c.keep_alive = 0;
    let (mut o, ack) = connect(broker, info, c).await;
    assert_eq!(ack.code, reason::SUCCESS);
    o.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(
            "$aws/events/presence/#".into(),
            SubscriptionOptions::default(),
        )],
        ..Subscribe::default()
    }))
    .await;
    assert!(matches!(o.recv().await, Packet::SubAck(_)));
    o
}

async fn next_event(o: &mut Client) -> (String, Value) {
    match o.recv().await {
        Packet::Publish(p) => (p.topic, serde_json::from_slice(&p.payload).unwrap()),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn allowed_client_connects_and_publishes_under_the_returned_policies() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let mut o = observer(&h.broker).await;
    let (mut c, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(c.publish("alice/temp", 1).await, reason::SUCCESS);
    assert_eq!(c.publish("bob/temp", 2).await, reason::NOT_AUTHORIZED);

    let attempt = h.authorizer.last.lock().clone().unwrap();
    assert_eq!(attempt.client_id, "alice-1");
    assert_eq!(attempt.server_name.as_deref(), Some("iot.example.com"));
    assert_eq!(attempt.transport, Transport::Tls);
    assert_eq!(attempt.listener, "mqtts");
    assert_eq!(attempt.peer, "192.0.2.7:40000".parse().unwrap());
    assert!(
        !format!("{attempt:?}").contains("pw"),
        "the password is never shown"
    );

    let (topic, e) = next_event(&mut o).await;
    assert_eq!(topic, "$aws/events/presence/connected/alice-1");
    assert_eq!(e["principalIdentifier"], "alice");
    assert_eq!(e["sessionIdentifier"], attempt.connection_id.as_str());
    assert_eq!(h.authorizer.calls(), 1);
}

#[tokio::test]
async fn connect_is_still_decided_by_the_returned_policies() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let (_c, ack) = connect(
        &h.broker,
        listener(true, false),
        connect_packet(ProtocolVersion::V5, "mallory", "alice", b"pw"),
    )
    .await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    assert_eq!(h.broker.denials().connect, 1);
}

#[tokio::test]
async fn denied_and_unavailable_are_refused_for_v5_and_v3_without_events() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let mut o = observer(&h.broker).await;
    for (version, code) in [
        (ProtocolVersion::V5, reason::NOT_AUTHORIZED),
        (ProtocolVersion::V311, reason::v3::NOT_AUTHORIZED),
    ] {
        let (_c, ack) = connect(
            &h.broker,
            listener(true, false),
            connect_packet(version, "alice-2", "alice", b"wrong"),
        )
        .await;
        assert_eq!(ack.code, code);
    }
    *h.authorizer.mode.lock() = Mode::Unavailable;
    for (version, code) in [
        (ProtocolVersion::V5, reason::SERVER_UNAVAILABLE),
        (ProtocolVersion::V311, reason::v3::SERVER_UNAVAILABLE),
    ] {
        let (_c, ack) = connect(
            &h.broker,
            listener(true, false),
            connect_packet(version, "alice-3", "alice", b"pw"),
        )
        .await;
        assert_eq!(ack.code, code);
    }
    assert_eq!(h.authorizer.calls(), 4);
    // Refused CONNECTs never connected: no presence events.
    assert!(o.try_recv(Duration::from_millis(100)).await.is_none());
}

#[tokio::test]
async fn the_authorizer_is_bounded_by_the_connect_timeout() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    *h.authorizer.mode.lock() = Mode::Silent;
    let started = tokio::time::Instant::now();
    let (_c, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SERVER_UNAVAILABLE);
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn a_certificate_client_never_reaches_the_authenticator() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let mut info = listener(true, false);
    info.tls = Some(TlsInfo {
        peer_certificates: vec![vec![0x30]],
        peer_certificate_id: Some("ab".repeat(32)),
        ..TlsInfo::default()
    });
    // Credentials the authenticator would accept do not matter: the certificate decides.
    let (_c, ack) = connect(
        &h.broker,
        info,
        connect_packet(ProtocolVersion::V5, "anything", "alice", b"pw"),
    )
    .await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(h.authorizer.calls(), 0);
    assert_eq!(h.certificates.checked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_listener_without_custom_auth_refuses_without_asking() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let (_c, ack) = connect(
        &h.broker,
        listener(false, false),
        connect_packet(ProtocolVersion::V5, "alice-1", "alice", b"pw"),
    )
    .await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    assert_eq!(h.authorizer.calls(), 0);
}

#[tokio::test]
async fn disconnect_after_closes_with_maximum_connect_time() {
    let h = harness(FakeAuthorizer::new(Some(Duration::from_secs(300)), None)).await;
    let mut o = observer(&h.broker).await;
    let started = tokio::time::Instant::now();
    let (mut c, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(
        next_event(&mut o).await.0,
        "$aws/events/presence/connected/alice-1"
    );
    match c.try_recv(Duration::from_secs(400)).await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, reason::MAXIMUM_CONNECT_TIME),
        other => panic!("expected DISCONNECT 0xA0, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(300));
    let (topic, e) = next_event(&mut o).await;
    assert_eq!(topic, "$aws/events/presence/disconnected/alice-1");
    assert_eq!(e["disconnectReason"], "CUSTOMAUTH_TTL_EXPIRATION");
    assert_eq!(e["clientInitiatedDisconnect"], false);
    assert_eq!(h.authorizer.calls(), 1);
}

#[tokio::test]
async fn refresh_after_asks_again_and_applies_the_new_policies() {
    let h = harness(FakeAuthorizer::new(None, Some(Duration::from_secs(300)))).await;
    let (mut c, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(c.publish("alice/temp", 1).await, reason::SUCCESS);
    // The next answer allows only alice/other/*.
    *h.authorizer.policies.lock() = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/alice*"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/alice/other/*"}"#,
    );
    tokio::time::sleep(Duration::from_secs(301)).await;
    assert_eq!(h.authorizer.calls(), 2);
    assert_eq!(c.publish("alice/temp", 2).await, reason::NOT_AUTHORIZED);
    assert_eq!(c.publish("alice/other/x", 3).await, reason::SUCCESS);
    // The refresh was asked with the original attempt.
    let attempt = h.authorizer.last.lock().clone().unwrap();
    assert_eq!(attempt.username.as_deref(), Some("alice"));
    assert_eq!(attempt.password.as_deref(), Some(b"pw".as_slice()));
    // And again after the next interval.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(h.authorizer.calls(), 3);
}

#[tokio::test]
async fn a_refresh_that_no_longer_allows_connect_closes() {
    let h = harness(FakeAuthorizer::new(None, Some(Duration::from_secs(300)))).await;
    let (mut c, _) = alice(&h).await;
    *h.authorizer.policies.lock() =
        policy(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/alice/*"}"#);
    match c.try_recv(Duration::from_secs(400)).await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
}

/// The authorizer answers `mode` from the first refresh on: the connection closes with 0x87
/// and `AUTH_ERROR`.
async fn failing_refresh_closes(mode: Mode) {
    let h = harness(FakeAuthorizer::new(None, Some(Duration::from_secs(300)))).await;
    let mut o = observer(&h.broker).await;
    let (mut c, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(
        next_event(&mut o).await.0,
        "$aws/events/presence/connected/alice-1"
    );
    *h.authorizer.mode.lock() = mode;
    match c.try_recv(Duration::from_secs(400)).await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    let (topic, e) = next_event(&mut o).await;
    assert_eq!(topic, "$aws/events/presence/disconnected/alice-1");
    assert_eq!(e["disconnectReason"], "AUTH_ERROR");
    assert_eq!(h.authorizer.calls(), 2);
}

#[tokio::test]
async fn a_denied_refresh_closes() {
    failing_refresh_closes(Mode::DenyAll).await;
}

#[tokio::test]
async fn an_unavailable_refresh_closes() {
    failing_refresh_closes(Mode::Unavailable).await;
}

#[tokio::test]
async fn an_unanswered_refresh_closes() {
    failing_refresh_closes(Mode::Silent).await;
}

/// Alice connecting with the custom authentication method, her password as its data.
async fn alice_reauthenticable(h: &Harness) -> Client {
    let mut c = connect_packet(ProtocolVersion::V5, "alice-1", "alice", b"");
    c.password = None;
    c.properties.authentication_method = Some(CUSTOM_AUTH_METHOD.into());
    c.properties.authentication_data = Some(Bytes::from_static(b"pw"));
    let (c, ack) = connect(&h.broker, listener(true, false), c).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some(CUSTOM_AUTH_METHOD)
    );
    c
}

fn reauthenticate(token: &'static [u8]) -> Packet {
    Packet::Auth(Auth {
        reason: reason::REAUTHENTICATE,
        properties: AuthProperties {
            authentication_method: Some(CUSTOM_AUTH_METHOD.into()),
            authentication_data: Some(Bytes::from_static(token)),
            ..AuthProperties::default()
        },
    })
}

#[tokio::test]
async fn auth_reauthenticates_and_applies_the_new_policies() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let mut c = alice_reauthenticable(&h).await;
    assert_eq!(c.publish("alice/temp", 1).await, reason::SUCCESS);
    *h.authorizer.policies.lock() = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/alice*"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/alice/other/*"}"#,
    );
    c.send(reauthenticate(b"pw")).await;
    match c.recv().await {
        Packet::Auth(a) => {
            assert_eq!(a.reason, reason::SUCCESS);
            assert_eq!(
                a.properties.authentication_method.as_deref(),
                Some(CUSTOM_AUTH_METHOD)
            );
        }
        other => panic!("expected AUTH 0x00, got {other:?}"),
    }
    assert_eq!(h.authorizer.calls(), 2);
    assert_eq!(c.publish("alice/temp", 2).await, reason::NOT_AUTHORIZED);
    assert_eq!(c.publish("alice/other/x", 3).await, reason::SUCCESS);
}

#[tokio::test]
async fn a_denied_reauthentication_closes() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let mut c = alice_reauthenticable(&h).await;
    c.send(reauthenticate(b"stolen")).await;
    match c.recv().await {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
}

#[tokio::test]
async fn auth_without_the_custom_method_is_a_protocol_error() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let (mut c, ack) = alice(&h).await;
    assert!(ack.properties.authentication_method.is_none());
    c.send(reauthenticate(b"pw")).await;
    match c.recv().await {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::PROTOCOL_ERROR),
        other => panic!("expected DISCONNECT 0x82, got {other:?}"),
    }
    assert_eq!(h.authorizer.calls(), 1);
}

#[tokio::test]
async fn a_changed_authorizer_reauthenticates_the_connections_it_admitted_at_once() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let mut o = observer(&h.broker).await;
    let (mut by_a, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SUCCESS);
    *h.authorizer.authorizer.lock() = "b".to_owned();
    let (mut by_b, ack) = connect(
        &h.broker,
        listener(true, false),
        connect_packet(ProtocolVersion::V5, "alice-2", "alice", b"pw"),
    )
    .await;
    assert_eq!(ack.code, reason::SUCCESS);
    // alice-1's refreshes are answered by `a` again, as its attempt names it.
    *h.authorizer.authorizer.lock() = "a".to_owned();
    next_event(&mut o).await;
    next_event(&mut o).await;
    assert_eq!(h.broker.reauthenticate_authorizer("unknown"), 0);

    // An updated authorizer: its new answer is in force on its connections only.
    *h.authorizer.policies.lock() = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/alice*"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/alice/other/*"}"#,
    );
    assert_eq!(h.broker.reauthenticate_authorizer("a"), 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(h.authorizer.calls(), 3);
    assert_eq!(by_a.publish("alice/temp", 1).await, reason::NOT_AUTHORIZED);
    assert_eq!(by_a.publish("alice/other/x", 2).await, reason::SUCCESS);
    assert_eq!(by_b.publish("alice/temp", 1).await, reason::SUCCESS);

    // A deactivated authorizer: its connections close with 0x87 and AUTH_ERROR.
    *h.authorizer.mode.lock() = Mode::DenyAll;
    assert_eq!(h.broker.reauthenticate_authorizer("a"), 1);
    match by_a.try_recv(Duration::from_secs(1)).await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    let (topic, e) = next_event(&mut o).await;
    assert_eq!(topic, "$aws/events/presence/disconnected/alice-1");
    assert_eq!(e["disconnectReason"], "AUTH_ERROR");
    assert_eq!(h.authorizer.calls(), 4);
    // The other authorizer's connection was not asked about and stays open.
    assert!(by_b.try_recv(Duration::from_secs(1)).await.is_none());
    assert_eq!(by_b.publish("alice/temp", 2).await, reason::SUCCESS);
    // The closed connection left the index.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(h.broker.reauthenticate_authorizer("a"), 0);
}

#[tokio::test]
async fn principal_id_claims_and_context_decide_in_the_returned_policies() {
    let h = harness(FakeAuthorizer::new(None, Some(Duration::from_secs(300)))).await;
    // Publish under <principal id>/ only with the scope "write" from the site "lyon".
    *h.authorizer.policies.lock() = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/alice*"},
           {"Effect":"Allow","Action":"iot:Publish",
            "Resource":"{ARN}:topic/${ferrocore:PrincipalId}/*",
            "Condition":{"ForAnyValue:StringEquals":{"ferrocore:Claims.scope":"write"},
                         "StringEquals":{"ferrocore:Context.site":"lyon"}}}"#,
    );
    *h.authorizer.claims.lock() = BTreeMap::from([(
        "scope".to_owned(),
        vec!["read".to_owned(), "write".to_owned()],
    )]);
    let (mut c, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(c.publish("alice/temp", 1).await, reason::SUCCESS);
    assert_eq!(c.publish("bob/temp", 2).await, reason::NOT_AUTHORIZED);

    // The refresh's grant brings a token without the scope: its claims replace the old ones.
    *h.authorizer.claims.lock() = BTreeMap::from([("scope".to_owned(), vec!["read".to_owned()])]);
    tokio::time::sleep(Duration::from_secs(301)).await;
    assert_eq!(h.authorizer.calls(), 2);
    assert_eq!(c.publish("alice/temp", 3).await, reason::NOT_AUTHORIZED);
}

#[tokio::test]
async fn many_connections_go_back_to_a_changed_authorizer_in_paced_batches() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let mut clients = Vec::new();
    for i in 0..250 {
        let (c, ack) = connect(
            &h.broker,
            listener(true, false),
            connect_packet(ProtocolVersion::V5, &format!("alice-{i}"), "alice", b"pw"),
        )
        .await;
        assert_eq!(ack.code, reason::SUCCESS);
        clients.push(c);
    }
    assert_eq!(h.authorizer.calls(), 250);
    assert_eq!(h.broker.reauthenticate_authorizer("a"), 250);
    let batch = ferrocore_broker::REAUTHENTICATION_BATCH;
    let pause = ferrocore_broker::REAUTHENTICATION_PAUSE;
    tokio::time::sleep(pause / 2).await;
    assert_eq!(h.authorizer.calls(), 250 + batch, "the first batch at once");
    tokio::time::sleep(pause).await;
    assert_eq!(h.authorizer.calls(), 250 + 2 * batch);
    tokio::time::sleep(pause).await;
    assert_eq!(h.authorizer.calls(), 500, "then the rest");
    for c in &mut clients {
        assert!(
            c.try_recv(Duration::from_millis(1)).await.is_none(),
            "still connected"
        );
    }
}

#[tokio::test]
async fn a_refresh_answered_by_another_authorizer_follows_that_one() {
    let h = harness(FakeAuthorizer::new(None, None)).await;
    let (_alice, ack) = alice(&h).await;
    assert_eq!(ack.code, reason::SUCCESS);
    // The next answer names another authorizer (as when a domain's default changed).
    *h.authorizer.authorizer.lock() = "b".to_owned();
    assert_eq!(h.broker.reauthenticate_authorizer("a"), 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(h.authorizer.calls(), 2);
    assert_eq!(h.broker.reauthenticate_authorizer("a"), 0);
    assert_eq!(h.broker.reauthenticate_authorizer("b"), 1);
}
