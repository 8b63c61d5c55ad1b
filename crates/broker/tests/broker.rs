//! The broker driven in-process over in-memory streams by a codec-speaking test client:
//! protocol behaviour without sockets, and with tokio's paused clock where time matters.

#![allow(clippy::unwrap_used)] // a failed set-up step should fail the test loudly

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrocore_broker::ferrocore_policy::{PolicySet, ThingContext};
use ferrocore_broker::{
    Authentication, Broker, BrokerConfig, CertificateAuthorizer, Compat, ConnectionInfo,
    Dependency, Grant, ListenerAuth, Reauthorized, TlsInfo, Transport,
};
use ferrocore_mqtt::*;
use ferrocore_store::{Durability, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

struct Harness {
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

async fn harness(config: BrokerConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db"), Durability::Process)
        .await
        .unwrap();
    Harness {
        broker: Broker::start(config, store).await.unwrap(),
        _dir: dir,
    }
}

async fn restart(h: Harness, config: BrokerConfig) -> Harness {
    h.broker.shutdown().await;
    let Harness { broker, _dir } = h;
    drop(broker);
    let store = Store::open_sqlite(&_dir.path().join("t.db"), Durability::Process)
        .await
        .unwrap();
    Harness {
        broker: Broker::start(config, store).await.unwrap(),
        _dir,
    }
}

struct Client {
    io: DuplexStream,
    buf: BytesMut,
    version: ProtocolVersion,
}

fn info(anonymous: bool) -> ConnectionInfo {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    ConnectionInfo {
        peer_addr: addr,
        local_addr: addr,
        transport: Transport::Tcp,
        tls: None,
        http: None,
        listener: Arc::new(ListenerAuth {
            name: "test".into(),
            anonymous,
            anonymous_policy: None,
            custom_auth: false,
        }),
    }
}

fn open(broker: &Arc<Broker>, version: ProtocolVersion, anonymous: bool) -> Client {
    let (client, server) = tokio::io::duplex(1 << 20);
    let broker = broker.clone();
    tokio::spawn(async move { broker.serve(server, info(anonymous)).await });
    Client {
        io: client,
        buf: BytesMut::new(),
        version,
    }
}

fn connect_packet(version: ProtocolVersion, id: &str, clean: bool) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive: 60,
        client_id: id.into(),
        ..Connect::default()
    }
}

impl Client {
    async fn connect(broker: &Arc<Broker>, connect: Connect) -> (Client, ConnAck) {
        let mut c = open(broker, connect.protocol, true);
        c.send(Packet::Connect(Box::new(connect))).await;
        match c.recv().await {
            Packet::ConnAck(a) => (c, a),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn v5(broker: &Arc<Broker>, id: &str) -> Client {
        Client::connect(broker, connect_packet(ProtocolVersion::V5, id, true))
            .await
            .0
    }

    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        encode(&p, self.version, &mut out).unwrap();
        self.io.write_all(&out).await.unwrap();
    }

    async fn recv(&mut self) -> Packet {
        self.try_recv(Duration::from_secs(10))
            .await
            .expect("no packet within 10 s")
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

    async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubAck {
        self.subscribe_with(
            filter,
            SubscriptionOptions {
                qos,
                ..Default::default()
            },
            None,
        )
        .await
    }

    async fn subscribe_with(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) -> SubAck {
        self.send(Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(filter.into(), options)],
            properties: SubscribeProperties {
                subscription_identifier: id,
                ..Default::default()
            },
        }))
        .await;
        match self.recv().await {
            Packet::SubAck(a) => a,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    async fn publish(
        &mut self,
        topic: &str,
        payload: &str,
        qos: QoS,
        retain: bool,
        packet_id: u16,
    ) {
        self.send(Packet::Publish(Publish {
            qos,
            retain,
            topic: topic.into(),
            packet_id,
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            ..Publish::default()
        }))
        .await;
    }

    async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn qos0_qos1_qos2_delivery() {
    let h = harness(BrokerConfig::default()).await;
    let mut sub = Client::v5(&h.broker, "sub").await;
    assert_eq!(
        sub.subscribe("a/+", QoS::ExactlyOnce).await.reasons,
        vec![2]
    );
    let mut publ = Client::v5(&h.broker, "pub").await;

    publ.publish("a/0", "zero", QoS::AtMostOnce, false, 0).await;
    let p = sub.expect_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.qos),
        ("a/0", &b"zero"[..], QoS::AtMostOnce)
    );

    publ.publish("a/1", "one", QoS::AtLeastOnce, false, 7).await;
    assert!(matches!(
        publ.recv().await,
        Packet::PubAck(PubResp {
            packet_id: 7,
            reason: 0,
            ..
        })
    ));
    let p = sub.expect_publish().await;
    assert_eq!(p.qos, QoS::AtLeastOnce);
    sub.send(Packet::PubAck(PubResp {
        packet_id: p.packet_id,
        ..Default::default()
    }))
    .await;

    publ.publish("a/2", "two", QoS::ExactlyOnce, false, 8).await;
    assert!(matches!(
        publ.recv().await,
        Packet::PubRec(PubResp { packet_id: 8, .. })
    ));
    publ.send(Packet::PubRel(PubResp {
        packet_id: 8,
        ..Default::default()
    }))
    .await;
    assert!(matches!(
        publ.recv().await,
        Packet::PubComp(PubResp { packet_id: 8, .. })
    ));
    let p = sub.expect_publish().await;
    assert_eq!(p.qos, QoS::ExactlyOnce);
    sub.send(Packet::PubRec(PubResp {
        packet_id: p.packet_id,
        ..Default::default()
    }))
    .await;
    assert!(matches!(sub.recv().await, Packet::PubRel(PubResp { .. })));
    sub.send(Packet::PubComp(PubResp {
        packet_id: p.packet_id,
        ..Default::default()
    }))
    .await;
}

#[tokio::test]
async fn qos2_duplicate_publish_is_routed_once() {
    let h = harness(BrokerConfig::default()).await;
    let mut sub = Client::v5(&h.broker, "sub").await;
    sub.subscribe("d", QoS::AtMostOnce).await;
    let mut publ = Client::v5(&h.broker, "pub").await;
    for _ in 0..2 {
        publ.publish("d", "x", QoS::ExactlyOnce, false, 3).await;
        assert!(matches!(publ.recv().await, Packet::PubRec(_)));
    }
    sub.expect_publish().await;
    assert!(sub.try_recv(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn retained_set_replace_clear_and_retain_handling() {
    let h = harness(BrokerConfig::default()).await;
    let mut publ = Client::v5(&h.broker, "pub").await;
    publ.publish("r/1", "old", QoS::AtLeastOnce, true, 1).await;
    publ.recv().await;
    publ.publish("r/1", "new", QoS::AtLeastOnce, true, 2).await;
    publ.recv().await;
    publ.publish("r/2", "two", QoS::AtLeastOnce, true, 3).await;
    publ.recv().await;

    let mut sub = Client::v5(&h.broker, "sub").await;
    sub.subscribe("r/1", QoS::AtMostOnce).await;
    let p = sub.expect_publish().await;
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"new");

    // Retain handling 1: only when the subscription is new.
    let opts = SubscriptionOptions {
        retain_handling: 1,
        ..Default::default()
    };
    sub.subscribe_with("r/2", opts, None).await;
    sub.expect_publish().await;
    sub.subscribe_with("r/2", opts, None).await;
    assert!(sub.try_recv(Duration::from_millis(200)).await.is_none());
    // Retain handling 2: never.
    let opts = SubscriptionOptions {
        retain_handling: 2,
        ..Default::default()
    };
    sub.subscribe_with("r/#", opts, None).await;
    assert!(sub.try_recv(Duration::from_millis(200)).await.is_none());

    publ.publish("r/1", "", QoS::AtLeastOnce, true, 4).await;
    publ.recv().await;
    let mut late = Client::v5(&h.broker, "late").await;
    late.subscribe("r/+", QoS::AtMostOnce).await;
    let p = late.expect_publish().await;
    assert_eq!(p.topic, "r/2", "the cleared topic is gone");
    assert!(late.try_recv(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn aws_compat_skips_retained_on_wildcards_and_caps_qos() {
    let config = BrokerConfig {
        compat: Compat::Aws,
        ..BrokerConfig::default()
    };
    let h = harness(config).await;
    let (mut publ, ack) =
        Client::connect(&h.broker, connect_packet(ProtocolVersion::V5, "pub", true)).await;
    assert_eq!(ack.properties.maximum_qos, Some(1));
    publ.publish("w/1", "x", QoS::AtLeastOnce, true, 1).await;
    publ.recv().await;
    let mut sub = Client::v5(&h.broker, "sub").await;
    assert_eq!(
        sub.subscribe("w/+", QoS::ExactlyOnce).await.reasons,
        vec![1]
    );
    assert!(sub.try_recv(Duration::from_millis(200)).await.is_none());
    sub.subscribe("w/1", QoS::AtLeastOnce).await;
    assert!(sub.expect_publish().await.retain);
}

#[tokio::test]
async fn persistent_session_survives_restart() {
    let h = harness(BrokerConfig::default()).await;
    let (mut sub, ack) = Client::connect(
        &h.broker,
        connect_packet(ProtocolVersion::V311, "durable", false),
    )
    .await;
    assert!(!ack.session_present);
    sub.subscribe("q/#", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(Disconnect::default())).await;

    let mut publ = Client::connect(&h.broker, connect_packet(ProtocolVersion::V311, "p", true))
        .await
        .0;
    for i in 1..=20u16 {
        publ.publish("q/x", &i.to_string(), QoS::AtLeastOnce, false, i)
            .await;
        assert!(matches!(publ.recv().await, Packet::PubAck(_)));
    }
    publ.publish("q/retained", "kept", QoS::AtLeastOnce, true, 21)
        .await;
    publ.recv().await;

    let h = restart(h, BrokerConfig::default()).await;
    let (mut sub, ack) = Client::connect(
        &h.broker,
        connect_packet(ProtocolVersion::V311, "durable", false),
    )
    .await;
    assert!(ack.session_present);
    let mut got = Vec::new();
    for _ in 0..21 {
        let p = sub.expect_publish().await;
        got.push(String::from_utf8(p.payload.to_vec()).unwrap());
        sub.send(Packet::PubAck(PubResp {
            packet_id: p.packet_id,
            ..Default::default()
        }))
        .await;
    }
    let expected: Vec<String> = (1..=20)
        .map(|i: u16| i.to_string())
        .chain(["kept".to_string()])
        .collect();
    assert_eq!(got, expected, "every acknowledged message, in order");

    let mut fresh = Client::v5(&h.broker, "fresh").await;
    fresh.subscribe("q/retained", QoS::AtMostOnce).await;
    assert_eq!(&fresh.expect_publish().await.payload[..], b"kept");
}

#[tokio::test]
async fn clean_session_discards_state() {
    let h = harness(BrokerConfig::default()).await;
    let (mut c, _) =
        Client::connect(&h.broker, connect_packet(ProtocolVersion::V311, "c", false)).await;
    c.subscribe("x", QoS::AtLeastOnce).await;
    c.send(Packet::Disconnect(Disconnect::default())).await;
    let (mut c, ack) =
        Client::connect(&h.broker, connect_packet(ProtocolVersion::V311, "c", true)).await;
    assert!(!ack.session_present);
    let mut publ = Client::v5(&h.broker, "p").await;
    publ.publish("x", "m", QoS::AtMostOnce, false, 0).await;
    assert!(c.try_recv(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn takeover_closes_old_connection_with_0x8e() {
    let h = harness(BrokerConfig::default()).await;
    let mut first = Client::v5(&h.broker, "same").await;
    let _second = Client::v5(&h.broker, "same").await;
    match first.recv().await {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::SESSION_TAKEN_OVER),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}

#[tokio::test]
async fn will_on_abnormal_close_not_on_disconnect() {
    let h = harness(BrokerConfig::default()).await;
    let mut watcher = Client::v5(&h.broker, "w").await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;
    let will = LastWill {
        topic: "will/a".into(),
        payload: Bytes::from_static(b"gone"),
        ..LastWill::default()
    };

    let mut c = connect_packet(ProtocolVersion::V5, "a", true);
    c.will = Some(will.clone());
    let (polite, _) = Client::connect(&h.broker, c.clone()).await;
    let mut polite = polite;
    polite.send(Packet::Disconnect(Disconnect::default())).await;
    assert!(watcher.try_recv(Duration::from_millis(200)).await.is_none());

    let (rude, _) = Client::connect(&h.broker, c).await;
    drop(rude);
    assert_eq!(&watcher.expect_publish().await.payload[..], b"gone");
}

#[tokio::test]
async fn will_delay_is_cancelled_by_reconnect() {
    let h = harness(BrokerConfig::default()).await;
    let mut watcher = Client::v5(&h.broker, "w").await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;
    let mut c = connect_packet(ProtocolVersion::V5, "delayed", true);
    c.properties.session_expiry_interval = Some(100);
    c.will = Some(LastWill {
        topic: "will/d".into(),
        payload: Bytes::from_static(b"late"),
        properties: WillProperties {
            will_delay_interval: Some(2),
            ..Default::default()
        },
        ..LastWill::default()
    });
    let (first, _) = Client::connect(&h.broker, c.clone()).await;
    drop(first);
    c.clean_start = false;
    let (_again, ack) = Client::connect(&h.broker, c.clone()).await;
    assert!(ack.session_present);
    assert!(
        watcher.try_recv(Duration::from_secs(4)).await.is_none(),
        "reconnect cancelled the will"
    );

    // Without a reconnect the will goes out after its delay.
    let mut other = c.clone();
    other.client_id = "delayed2".into();
    other.clean_start = true;
    let (second, _) = Client::connect(&h.broker, other).await;
    drop(second);
    assert_eq!(&watcher.expect_publish().await.payload[..], b"late");
}

#[tokio::test]
async fn keep_alive_timeout_closes_with_0x8d() {
    let h = harness(BrokerConfig::default()).await;
    // Paused only now: the store's pool keeps real-time timers while opening.
    tokio::time::pause();
    let mut c = connect_packet(ProtocolVersion::V5, "ka", true);
    c.keep_alive = 2;
    let (mut client, _) = Client::connect(&h.broker, c).await;
    match client.try_recv(Duration::from_secs(10)).await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, reason::KEEP_ALIVE_TIMEOUT),
        other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_connection_is_dropped() {
    let h = harness(BrokerConfig {
        connect_timeout: Duration::from_secs(3),
        ..BrokerConfig::default()
    })
    .await;
    // Paused only now: the store's pool keeps real-time timers while opening.
    tokio::time::pause();
    let mut c = open(&h.broker, ProtocolVersion::V311, true);
    assert!(c.try_recv(Duration::from_secs(30)).await.is_none());
    assert_eq!(h.broker.connection_count(), 0);
}

#[tokio::test]
async fn non_anonymous_listener_refuses() {
    let h = harness(BrokerConfig::default()).await;
    let mut c = open(&h.broker, ProtocolVersion::V311, false);
    c.send(Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V311,
        "x",
        true,
    ))))
    .await;
    match c.recv().await {
        Packet::ConnAck(a) => assert_eq!(a.code, reason::v3::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn shared_subscription_delivers_to_one_member() {
    let h = harness(BrokerConfig::default()).await;
    let mut a = Client::v5(&h.broker, "a").await;
    let mut b = Client::v5(&h.broker, "b").await;
    a.subscribe("$share/g/s/#", QoS::AtMostOnce).await;
    b.subscribe("$share/g/s/#", QoS::AtMostOnce).await;
    let mut publ = Client::v5(&h.broker, "p").await;
    for i in 0..10 {
        publ.publish("s/x", &i.to_string(), QoS::AtMostOnce, false, 0)
            .await;
    }
    let mut count = 0;
    while a.try_recv(Duration::from_millis(200)).await.is_some() {
        count += 1;
    }
    while b.try_recv(Duration::from_millis(200)).await.is_some() {
        count += 1;
    }
    assert_eq!(count, 10);
}

#[tokio::test]
async fn v5_features_no_local_sub_ids_aliases_and_properties() {
    let h = harness(BrokerConfig::default()).await;
    let mut c = connect_packet(ProtocolVersion::V5, "me", true);
    c.properties.topic_alias_maximum = Some(4);
    let (mut me, ack) = Client::connect(&h.broker, c).await;
    assert_eq!(ack.properties.topic_alias_maximum, Some(8));
    let nl = SubscriptionOptions {
        no_local: true,
        ..Default::default()
    };
    me.subscribe_with("nl", nl, Some(5)).await;
    me.subscribe_with("t/#", SubscriptionOptions::default(), Some(6))
        .await;
    me.subscribe_with("t/+", SubscriptionOptions::default(), Some(7))
        .await;
    me.publish("nl", "own", QoS::AtMostOnce, false, 0).await;
    assert!(
        me.try_recv(Duration::from_millis(200)).await.is_none(),
        "no-local"
    );

    let mut other = Client::v5(&h.broker, "other").await;
    let props = PublishProperties {
        user_properties: vec![("b".into(), "1".into()), ("a".into(), "2".into())],
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(b"corr")),
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    for _ in 0..2 {
        other
            .send(Packet::Publish(Publish {
                topic: "t/x".into(),
                payload: Bytes::from_static(b"p"),
                properties: props.clone(),
                ..Publish::default()
            }))
            .await;
    }
    let first = me.expect_publish().await;
    let mut ids = first.properties.subscription_identifiers.clone();
    ids.sort_unstable();
    assert_eq!(ids, vec![6, 7], "one copy carrying both identifiers");
    assert_eq!(first.properties.user_properties, props.user_properties);
    assert_eq!(first.properties.response_topic, props.response_topic);
    assert_eq!(first.properties.correlation_data, props.correlation_data);
    assert_eq!(first.topic, "t/x");
    let alias = first
        .properties
        .topic_alias
        .expect("server assigns an alias");
    let second = me.expect_publish().await;
    assert_eq!(
        (second.topic.as_str(), second.properties.topic_alias),
        ("", Some(alias))
    );

    // Inbound alias.
    let mut watcher = Client::v5(&h.broker, "watch").await;
    watcher.subscribe("alias/in", QoS::AtMostOnce).await;
    let aliased = |topic: &str| {
        Packet::Publish(Publish {
            topic: topic.into(),
            payload: Bytes::from_static(b"z"),
            properties: PublishProperties {
                topic_alias: Some(3),
                ..Default::default()
            },
            ..Publish::default()
        })
    };
    other.send(aliased("alias/in")).await;
    other.send(aliased("")).await;
    assert_eq!(watcher.expect_publish().await.topic, "alias/in");
    assert_eq!(watcher.expect_publish().await.topic, "alias/in");
}

#[tokio::test]
async fn assigned_client_id_and_oversize_for_client() {
    let h = harness(BrokerConfig::default()).await;
    let (_c, ack) = Client::connect(&h.broker, connect_packet(ProtocolVersion::V5, "", true)).await;
    assert!(
        ack.properties
            .assigned_client_identifier
            .is_some_and(|id| !id.is_empty())
    );

    let mut small = connect_packet(ProtocolVersion::V5, "small", true);
    small.properties.maximum_packet_size = Some(64);
    let (mut small, _) = Client::connect(&h.broker, small).await;
    small.subscribe("big/#", QoS::AtMostOnce).await;
    let mut publ = Client::v5(&h.broker, "p").await;
    publ.publish("big/1", &"x".repeat(200), QoS::AtMostOnce, false, 0)
        .await;
    publ.publish("big/2", "ok", QoS::AtMostOnce, false, 0).await;
    assert_eq!(small.expect_publish().await.topic, "big/2");
}

#[tokio::test]
async fn message_expiry_drops_stale_queued_messages() {
    let h = harness(BrokerConfig::default()).await;
    let mut c = connect_packet(ProtocolVersion::V5, "exp", true);
    c.properties.session_expiry_interval = Some(600);
    let (mut sub, _) = Client::connect(&h.broker, c.clone()).await;
    sub.subscribe("e", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(Disconnect::default())).await;
    let mut publ = Client::v5(&h.broker, "p").await;
    for (expiry, body) in [(1, "short"), (100, "long")] {
        publ.send(Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            topic: "e".into(),
            packet_id: 1,
            payload: Bytes::from(body),
            properties: PublishProperties {
                message_expiry_interval: Some(expiry),
                ..Default::default()
            },
            ..Publish::default()
        }))
        .await;
        publ.recv().await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.clean_start = false;
    let (mut sub, _) = Client::connect(&h.broker, c).await;
    let p = sub.expect_publish().await;
    assert_eq!(&p.payload[..], b"long");
    assert!(
        p.properties
            .message_expiry_interval
            .is_some_and(|left| left < 100)
    );
}

#[tokio::test]
async fn malformed_and_out_of_order_packets_close_with_reason() {
    let h = harness(BrokerConfig::default()).await;
    // Not CONNECT first: closed without a reply.
    let mut c = open(&h.broker, ProtocolVersion::V5, true);
    c.io.write_all(&[0xC0, 0x00]).await.unwrap();
    assert!(c.try_recv(Duration::from_secs(5)).await.is_none());
    // A second CONNECT: protocol error.
    let mut c = Client::v5(&h.broker, "twice").await;
    c.send(Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V5,
        "twice",
        true,
    ))))
    .await;
    match c.recv().await {
        Packet::Disconnect(d) => {
            assert_eq!(d.reason, reason::PROTOCOL_ERROR);
            assert!(
                d.properties.reason_string.is_some(),
                "problem information by default"
            );
        }
        other => panic!("{other:?}"),
    }
    // Oversize remaining length: refused from the header.
    let mut c = Client::v5(&h.broker, "big").await;
    c.io.write_all(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F])
        .await
        .unwrap();
    match c.recv().await {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::PACKET_TOO_LARGE),
        other => panic!("{other:?}"),
    }
    // Unsupported protocol level: CONNACK 1.
    let mut c = open(&h.broker, ProtocolVersion::V311, true);
    c.io.write_all(&[0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 60, 0, 0])
        .await
        .unwrap();
    match c.recv().await {
        Packet::ConnAck(a) => assert_eq!(a.code, reason::v3::UNACCEPTABLE_PROTOCOL_VERSION),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn shutdown_sends_server_shutting_down() {
    let h = harness(BrokerConfig::default()).await;
    let mut c = Client::v5(&h.broker, "s").await;
    h.broker.shutdown().await;
    match c.recv().await {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::SERVER_SHUTTING_DOWN),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slow_subscriber_holds_back_qos1_publisher_without_loss() {
    let config = BrokerConfig {
        max_queued_messages: 5,
        ..BrokerConfig::default()
    };
    let h = harness(config).await;
    let mut c = connect_packet(ProtocolVersion::V5, "slow", true);
    c.properties.receive_maximum = Some(1);
    let (mut slow, _) = Client::connect(&h.broker, c).await;
    slow.subscribe("flow", QoS::AtLeastOnce).await;
    let mut publ = Client::v5(&h.broker, "fast").await;
    for i in 1..=8u16 {
        publ.publish("flow", &i.to_string(), QoS::AtLeastOnce, false, i)
            .await;
    }
    let mut acked = 0;
    while let Some(p) = publ.try_recv(Duration::from_millis(500)).await {
        assert!(matches!(p, Packet::PubAck(_)));
        acked += 1;
    }
    assert!(
        acked < 8,
        "acknowledgements are held while the subscriber's queue is over its limit"
    );

    let mut got = Vec::new();
    while got.len() < 8 {
        let p = slow.expect_publish().await;
        got.push(String::from_utf8(p.payload.to_vec()).unwrap());
        slow.send(Packet::PubAck(PubResp {
            packet_id: p.packet_id,
            ..Default::default()
        }))
        .await;
    }
    assert_eq!(
        got,
        (1..=8).map(|i| i.to_string()).collect::<Vec<_>>(),
        "nothing lost"
    );
    while acked < 8 {
        assert!(matches!(publ.recv().await, Packet::PubAck(_)));
        acked += 1;
    }
}

fn aws() -> BrokerConfig {
    BrokerConfig {
        compat: Compat::Aws,
        ..BrokerConfig::default()
    }
}

#[tokio::test]
async fn aws_quotas_on_subscriptions() {
    let h = harness(aws()).await;
    let mut c = Client::v5(&h.broker, "subs").await;
    let filters = (0..9)
        .map(|i| (format!("q/{i}"), SubscriptionOptions::default()))
        .collect();
    c.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters,
        ..Default::default()
    }))
    .await;
    let Packet::SubAck(ack) = c.recv().await else {
        panic!("expected SUBACK")
    };
    assert_eq!(ack.reasons[..8], [0; 8]);
    assert_eq!(
        ack.reasons[8],
        reason::QUOTA_EXCEEDED,
        "at most 8 filters per SUBSCRIBE"
    );
    for i in 8..50 {
        assert_eq!(
            c.subscribe(&format!("q/{i}"), QoS::AtMostOnce)
                .await
                .reasons,
            vec![0]
        );
    }
    assert_eq!(
        c.subscribe("q/50", QoS::AtMostOnce).await.reasons,
        vec![reason::QUOTA_EXCEEDED]
    );
    assert_eq!(
        c.subscribe("q/0", QoS::AtLeastOnce).await.reasons,
        vec![1],
        "replacing is fine"
    );
}

#[tokio::test]
async fn aws_connect_rate_per_client_id() {
    let h = harness(aws()).await;
    tokio::time::pause();
    let (_first, ack) =
        Client::connect(&h.broker, connect_packet(ProtocolVersion::V5, "r", true)).await;
    assert_eq!(ack.code, 0);
    let (_second, ack) =
        Client::connect(&h.broker, connect_packet(ProtocolVersion::V5, "r", true)).await;
    assert_eq!(ack.code, reason::CONNECTION_RATE_EXCEEDED);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_third, ack) =
        Client::connect(&h.broker, connect_packet(ProtocolVersion::V5, "r", true)).await;
    assert_eq!(ack.code, 0);
}

#[tokio::test]
async fn aws_pacing_delays_excess_publishes_without_dropping() {
    let h = harness(aws()).await;
    tokio::time::pause();
    let mut sub = Client::v5(&h.broker, "sub").await;
    sub.subscribe("pace", QoS::AtMostOnce).await;
    let mut publ = Client::v5(&h.broker, "pub").await;
    let start = tokio::time::Instant::now();
    let mut burst = BytesMut::new();
    for i in 0..250 {
        let p = Packet::Publish(Publish {
            topic: "pace".into(),
            payload: Bytes::from(i.to_string()),
            ..Publish::default()
        });
        encode(&p, ProtocolVersion::V5, &mut burst).unwrap();
    }
    encode(&Packet::PingReq, ProtocolVersion::V5, &mut burst).unwrap();
    publ.io.write_all(&burst).await.unwrap();
    assert!(matches!(publ.recv().await, Packet::PingResp));
    publ.publish("pace", "last", QoS::AtMostOnce, false, 0)
        .await;
    for _ in 0..250 {
        sub.expect_publish().await;
    }
    assert_eq!(
        &sub.expect_publish().await.payload[..],
        b"last",
        "nothing dropped"
    );
    // 250 publishes at 100/s with a one-second burst: 1.5 s of debt before the next read.
    assert!(
        start.elapsed() >= Duration::from_millis(1400),
        "paced: {:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Device certificates: the principal, the CONNECT check and the index of open connections.

/// Certificates the test declares active, with the policies each has (allow-all unless the
/// test gives some); optionally runs a hook inside the check (to interleave a revocation or a
/// policy change with a CONNECT).
#[derive(Default)]
struct TestCertificates {
    active: parking_lot::Mutex<std::collections::HashSet<String>>,
    policies: parking_lot::Mutex<std::collections::HashMap<String, Grant>>,
    checked: std::sync::atomic::AtomicUsize,
    #[allow(clippy::type_complexity)]
    during_check: parking_lot::Mutex<Option<Box<dyn FnMut(&str) + Send>>>,
}

impl TestCertificates {
    fn activate(&self, id: &str) {
        self.active.lock().insert(id.to_owned());
    }

    fn deactivate(&self, id: &str) {
        self.active.lock().remove(id);
    }

    /// Gives `id` these policy documents (name, JSON), a thing, and dependencies.
    fn grant(
        &self,
        id: &str,
        docs: &[(&str, &str)],
        thing: Option<ThingContext>,
        deps: Vec<Dependency>,
    ) {
        let set = PolicySet::parse(docs.iter().copied()).unwrap();
        self.policies.lock().insert(
            id.to_owned(),
            Grant {
                policies: Arc::new(set),
                thing,
                depends_on: deps,
            },
        );
    }

    fn current(&self, id: &str) -> Option<Grant> {
        if !self.active.lock().contains(id) {
            return None;
        }
        Some(
            self.policies
                .lock()
                .get(id)
                .cloned()
                .unwrap_or_else(|| Grant {
                    policies: Arc::new(PolicySet::allow_all("allow-all")),
                    thing: None,
                    depends_on: Vec::new(),
                }),
        )
    }
}

impl CertificateAuthorizer for TestCertificates {
    fn authorize(&self, certificate_id: &str, _client_id: &str) -> Option<Grant> {
        self.checked
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // What the check reads, read first: a hook running after it is a change the check
        // did not see.
        let grant = self.current(certificate_id);
        if let Some(hook) = self.during_check.lock().as_mut() {
            hook(certificate_id);
        }
        grant
    }
}

async fn cert_harness() -> (Harness, Arc<TestCertificates>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db"), Durability::Process)
        .await
        .unwrap();
    let certs = Arc::new(TestCertificates::default());
    let broker = Broker::start_with_auth(
        BrokerConfig::default(),
        store,
        Authentication {
            certificates: Some(certs.clone()),
            custom: None,
        },
    )
    .await
    .unwrap();
    (Harness { broker, _dir: dir }, certs)
}

fn info_with(anonymous: bool, transport: Transport, cert: Option<&str>) -> ConnectionInfo {
    ConnectionInfo {
        transport,
        tls: Some(TlsInfo {
            server_name: Some("localhost".into()),
            alpn: None,
            peer_certificates: cert.map(|_| vec![vec![0x30]]).unwrap_or_default(),
            peer_certificate_id: cert.map(str::to_owned),
        }),
        ..info(anonymous)
    }
}

/// Connects over TLS on a non-anonymous listener presenting certificate `cert`.
async fn connect_as(
    broker: &Arc<Broker>,
    cert: &str,
    version: ProtocolVersion,
    connect: Connect,
) -> (Client, ConnAck) {
    connect_with(
        broker,
        info_with(false, Transport::Tls, Some(cert)),
        version,
        connect,
    )
    .await
}

async fn connect_with(
    broker: &Arc<Broker>,
    info: ConnectionInfo,
    version: ProtocolVersion,
    connect: Connect,
) -> (Client, ConnAck) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let b = broker.clone();
    tokio::spawn(async move { b.serve(server, info).await });
    let mut c = Client {
        io: client,
        buf: BytesMut::new(),
        version,
    };
    c.send(Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Packet::ConnAck(a) => (c, a),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// Waits (generously) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn certificate_principal_may_connect_and_revocation_closes_every_connection() {
    let (h, certs) = cert_harness().await;
    certs.activate("cert-a");
    certs.activate("cert-b");
    let v5 = ProtocolVersion::V5;
    let v3 = ProtocolVersion::V311;
    let (mut a5, ack) = connect_as(&h.broker, "cert-a", v5, connect_packet(v5, "a5", true)).await;
    assert_eq!(ack.code, reason::SUCCESS);
    let (mut a3, ack) = connect_as(&h.broker, "cert-a", v3, connect_packet(v3, "a3", true)).await;
    assert_eq!(ack.code, reason::v3::ACCEPTED);
    let (mut b, _) = connect_as(&h.broker, "cert-b", v5, connect_packet(v5, "b", true)).await;
    assert_eq!(h.broker.certificate_connections("cert-a"), 2);
    let mut ids = h.broker.connected_certificates();
    ids.sort();
    assert_eq!(ids, ["cert-a", "cert-b"]);

    // An authenticated device may do everything until policies land.
    assert_eq!(a5.subscribe("dev/#", QoS::AtLeastOnce).await.reasons, [1]);
    b.publish("dev/x", "hi", QoS::AtMostOnce, false, 0).await;
    assert_eq!(&a5.expect_publish().await.payload[..], b"hi");

    certs.deactivate("cert-a");
    assert_eq!(h.broker.disconnect_certificate("cert-a"), 2);
    match a5.recv().await {
        Packet::Disconnect(d) => {
            assert_eq!(d.reason, reason::NOT_AUTHORIZED);
            assert!(d.properties.reason_string.is_some());
        }
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    assert!(
        a5.try_recv(Duration::from_secs(5)).await.is_none(),
        "closed"
    );
    // 3.1.1 has no DISCONNECT from the server: the connection just closes.
    assert!(a3.try_recv(Duration::from_secs(5)).await.is_none());
    eventually("index emptied", || {
        h.broker.certificate_connections("cert-a") == 0
    })
    .await;
    assert_eq!(h.broker.connected_certificates(), ["cert-b"]);
    // The other certificate's connection is untouched.
    b.send(Packet::PingReq).await;
    assert!(matches!(b.recv().await, Packet::PingResp));
    assert_eq!(h.broker.disconnect_certificate("cert-a"), 0);
}

#[tokio::test]
async fn connect_with_an_inactive_certificate_is_refused_and_leaves_no_index_entry() {
    let (h, certs) = cert_harness().await;
    let v5 = ProtocolVersion::V5;
    let v3 = ProtocolVersion::V311;
    let (_c, ack) = connect_as(&h.broker, "gone", v5, connect_packet(v5, "x", true)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    let (_c, ack) = connect_as(&h.broker, "gone", v3, connect_packet(v3, "y", true)).await;
    assert_eq!(ack.code, reason::v3::NOT_AUTHORIZED);
    assert_eq!(certs.checked.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(h.broker.connected_certificates().is_empty());

    // Even on an anonymous listener a presented certificate must be active.
    let (_c, ack) = connect_with(
        &h.broker,
        info_with(true, Transport::Tls, Some("gone")),
        v5,
        connect_packet(v5, "z", true),
    )
    .await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    // A refused CONNECT for another reason does not leave the certificate indexed either.
    certs.activate("ok");
    let (_c, ack) = connect_as(
        &h.broker,
        "ok",
        v5,
        connect_packet(v5, &"n".repeat(200), true),
    )
    .await;
    assert_eq!(ack.code, reason::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(h.broker.connected_certificates().is_empty());
}

#[tokio::test]
async fn certificates_count_only_over_mqtt_tls_and_only_with_a_check() {
    let (h, certs) = cert_harness().await;
    certs.activate("c");
    let v5 = ProtocolVersion::V5;
    // WebSocket clients are not authenticated by certificate (AWS: SigV4 or an authorizer).
    let (_c, ack) = connect_with(
        &h.broker,
        info_with(false, Transport::WebSocketTls, Some("c")),
        v5,
        connect_packet(v5, "ws", true),
    )
    .await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    // No certificate on a non-anonymous listener.
    let (_c, ack) = connect_with(
        &h.broker,
        info_with(false, Transport::Tls, None),
        v5,
        connect_packet(v5, "none", true),
    )
    .await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);

    // A broker that cannot check certificates accepts none.
    let plain = harness(BrokerConfig::default()).await;
    let (_c, ack) = connect_as(&plain.broker, "c", v5, connect_packet(v5, "p", true)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    // ... and treats a client of an anonymous listener as anonymous.
    let (_c, ack) = connect_with(
        &plain.broker,
        info_with(true, Transport::Tls, Some("c")),
        v5,
        connect_packet(v5, "anon", true),
    )
    .await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert!(plain.broker.connected_certificates().is_empty());
}

#[tokio::test]
async fn a_revocation_racing_a_connect_is_never_missed() {
    // The check reads the old state (active), then the revocation commits and its sweep runs
    // before the CONNECT finishes: the connection was indexed before the check, so the sweep
    // finds and closes it.
    let (h, certs) = cert_harness().await;
    certs.activate("racy");
    let weak = Arc::downgrade(&h.broker);
    let hook_certs = Arc::downgrade(&certs);
    let swept = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let swept_in_hook = swept.clone();
    *certs.during_check.lock() = Some(Box::new(move |id: &str| {
        if let (Some(certs), Some(broker)) = (hook_certs.upgrade(), weak.upgrade()) {
            certs.deactivate(id); // the registry commits the revocation...
            let n = broker.disconnect_certificate(id); // ...then its listener sweeps
            swept_in_hook.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        }
    }));
    let v5 = ProtocolVersion::V5;
    let (mut c, ack) = connect_as(&h.broker, "racy", v5, connect_packet(v5, "r", true)).await;
    assert_eq!(ack.code, reason::SUCCESS, "the check saw the old state");
    assert_eq!(
        swept.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the sweep saw the connection"
    );
    match c.recv().await {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    assert!(c.try_recv(Duration::from_secs(5)).await.is_none());

    // The other order: the revocation and its sweep before the CONNECT; the check sees it.
    *certs.during_check.lock() = None;
    let (_c, ack) = connect_as(&h.broker, "racy", v5, connect_packet(v5, "r2", true)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    eventually("index emptied", || {
        h.broker.connected_certificates().is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_revoked_connection_publishes_no_will() {
    let (h, certs) = cert_harness().await;
    certs.activate("w");
    let mut watcher = Client::v5(&h.broker, "watcher").await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;
    let v5 = ProtocolVersion::V5;
    let mut c = connect_packet(v5, "dev", true);
    c.will = Some(LastWill {
        topic: "will/dev".into(),
        payload: Bytes::from_static(b"gone"),
        ..LastWill::default()
    });
    let (mut dev, _) = connect_as(&h.broker, "w", v5, c).await;
    certs.deactivate("w");
    h.broker.disconnect_certificate("w");
    assert!(matches!(dev.recv().await, Packet::Disconnect(_)));
    assert!(watcher.try_recv(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn publish_event_reaches_dollar_aws_subscribers() {
    let h = harness(BrokerConfig::default()).await;
    let mut sub = Client::v5(&h.broker, "events").await;
    sub.subscribe("$aws/events/certificates/registered/+", QoS::AtLeastOnce)
        .await;
    let mut all = Client::v5(&h.broker, "hash").await;
    all.subscribe("#", QoS::AtLeastOnce).await;
    h.broker
        .publish_event("$aws/events/certificates/registered/abc", "{\"a\":1}");
    let p = sub.expect_publish().await;
    assert_eq!(p.topic, "$aws/events/certificates/registered/abc");
    assert_eq!(&p.payload[..], b"{\"a\":1}");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert!(!p.retain);
    // `#` does not match `$` topics [MQTT-4.7.2-1].
    assert!(all.try_recv(Duration::from_millis(200)).await.is_none());
}

// ---------------------------------------------------------------------------------------------
// IoT policies: every enforcement point, denial behaviour, live swaps, anonymous policies

const ARN: &str = "arn:aws:iot:us-east-1:000000000000";

/// A policy set of one document with `statements` (JSON objects, `{ARN}` replaced).
fn policy(statements: &str) -> Arc<PolicySet> {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.replace("{ARN}", ARN)
    );
    Arc::new(PolicySet::parse([("test-policy", doc.as_str())]).unwrap())
}

/// A client of an anonymous listener with `policies` (`None`: allow-all).
fn anonymous_info(policies: Option<Arc<PolicySet>>) -> ConnectionInfo {
    ConnectionInfo {
        listener: Arc::new(ListenerAuth {
            name: "anon".into(),
            anonymous: true,
            anonymous_policy: policies,
            custom_auth: false,
        }),
        ..info(true)
    }
}

async fn anonymous(
    broker: &Arc<Broker>,
    policies: &Arc<PolicySet>,
    version: ProtocolVersion,
    connect: Connect,
) -> (Client, ConnAck) {
    connect_with(
        broker,
        anonymous_info(Some(policies.clone())),
        version,
        connect,
    )
    .await
}

/// The reason code of the PUBACK (QoS 1) or PUBREC (QoS 2) the client gets next.
async fn publish_ack(c: &mut Client) -> u8 {
    match c.recv().await {
        Packet::PubAck(r) | Packet::PubRec(r) => r.reason,
        other => panic!("expected PUBACK or PUBREC, got {other:?}"),
    }
}

async fn subscribe_many(c: &mut Client, filters: &[&str]) -> Vec<u8> {
    c.send(Packet::Subscribe(Subscribe {
        packet_id: 7,
        filters: filters
            .iter()
            .map(|f| {
                (
                    (*f).to_owned(),
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        ..Default::default()
                    },
                )
            })
            .collect(),
        ..Default::default()
    }))
    .await;
    match c.recv().await {
        Packet::SubAck(a) => a.reasons,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// A device allowed to connect as `dev-*`, publish under `pub/`, retain under `pub/keep/`,
/// subscribe to filters under `sub/` and receive `sub/ok/...` only.
fn device_policy() -> Arc<PolicySet> {
    policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/dev-*"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/pub/*"},
           {"Effect":"Allow","Action":"iot:RetainPublish","Resource":"{ARN}:topic/pub/keep/*"},
           {"Effect":"Allow","Action":"iot:Subscribe","Resource":"{ARN}:topicfilter/sub/*"},
           {"Effect":"Allow","Action":"iot:Receive","Resource":"{ARN}:topic/sub/ok/*"},
           {"Sid":"NoSecrets","Effect":"Deny","Action":"iot:Publish","Resource":"{ARN}:topic/pub/secret"}"#,
    )
}

#[tokio::test]
async fn anonymous_policy_decides_connect_for_v5_and_v3() {
    let h = harness(BrokerConfig::default()).await;
    let p = device_policy();
    let v5 = ProtocolVersion::V5;
    let v3 = ProtocolVersion::V311;
    let (_c, ack) = anonymous(&h.broker, &p, v5, connect_packet(v5, "intruder", true)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    let (_c, ack) = anonymous(&h.broker, &p, v3, connect_packet(v3, "intruder", true)).await;
    assert_eq!(ack.code, reason::v3::NOT_AUTHORIZED);
    let (_c, ack) = anonymous(&h.broker, &p, v5, connect_packet(v5, "dev-1", true)).await;
    assert_eq!(ack.code, reason::SUCCESS);
    let (_c, ack) = anonymous(&h.broker, &p, v3, connect_packet(v3, "dev-2", true)).await;
    assert_eq!(ack.code, reason::v3::ACCEPTED);
    assert_eq!(h.broker.denials().connect, 2);
    // No policy named: everything is allowed.
    let (_c, ack) = connect_with(
        &h.broker,
        anonymous_info(None),
        v5,
        connect_packet(v5, "any", true),
    )
    .await;
    assert_eq!(ack.code, reason::SUCCESS);
}

#[tokio::test]
async fn v5_denials_get_reason_codes_and_denied_messages_go_nowhere() {
    let h = harness(BrokerConfig::default()).await;
    let p = device_policy();
    let v5 = ProtocolVersion::V5;
    let mut watcher = Client::v5(&h.broker, "watcher").await; // allow-all listener
    watcher.subscribe("#", QoS::AtLeastOnce).await;
    let (mut d, _) = anonymous(&h.broker, &p, v5, connect_packet(v5, "dev-1", true)).await;

    d.publish("pub/a", "ok", QoS::AtLeastOnce, false, 1).await;
    assert_eq!(publish_ack(&mut d).await, reason::SUCCESS);
    assert_eq!(watcher.expect_publish().await.topic, "pub/a");
    // Not covered: implicit deny. QoS 1 → PUBACK 0x87, QoS 2 → PUBREC 0x87, QoS 0 → dropped.
    d.publish("other/a", "no", QoS::AtLeastOnce, false, 2).await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    d.publish("other/b", "no", QoS::ExactlyOnce, false, 3).await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    d.publish("other/c", "no", QoS::AtMostOnce, false, 0).await;
    // Explicit deny beats the allow of pub/*.
    d.publish("pub/secret", "no", QoS::AtLeastOnce, false, 4)
        .await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    // RETAIN needs iot:RetainPublish too.
    d.publish("pub/a", "kept?", QoS::AtLeastOnce, true, 5).await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    d.publish("pub/keep/a", "kept", QoS::AtLeastOnce, true, 6)
        .await;
    assert_eq!(publish_ack(&mut d).await, reason::SUCCESS);
    let p2 = watcher.expect_publish().await;
    assert_eq!(
        (p2.topic.as_str(), &p2.payload[..]),
        ("pub/keep/a", &b"kept"[..])
    );
    assert!(
        watcher.try_recv(Duration::from_millis(200)).await.is_none(),
        "a denied PUBLISH reached a subscriber"
    );
    // The connection goes on.
    d.send(Packet::PingReq).await;
    assert!(matches!(d.recv().await, Packet::PingResp));

    // SUBSCRIBE: each filter on its own, as sent.
    assert_eq!(
        subscribe_many(&mut d, &["sub/#", "other/#", "sub/ok/+", "#"]).await,
        [1, reason::NOT_AUTHORIZED, 1, reason::NOT_AUTHORIZED]
    );
    let denials = h.broker.denials();
    assert_eq!(
        (denials.publish, denials.retain_publish, denials.subscribe),
        (4, 1, 2)
    );
}

#[tokio::test]
async fn receive_is_decided_for_every_delivery() {
    let h = harness(BrokerConfig::default()).await;
    let p = device_policy();
    let v5 = ProtocolVersion::V5;
    let mut publ = Client::v5(&h.broker, "publisher").await;
    // A retained message the device may not receive, and one it may.
    publ.publish("sub/no/r", "r1", QoS::AtLeastOnce, true, 1)
        .await;
    publish_ack(&mut publ).await;
    publ.publish("sub/ok/r", "r2", QoS::AtLeastOnce, true, 2)
        .await;
    publish_ack(&mut publ).await;

    let (mut d, _) = anonymous(&h.broker, &p, v5, connect_packet(v5, "dev-r", true)).await;
    assert_eq!(subscribe_many(&mut d, &["sub/#"]).await, [1]);
    let r = d.expect_publish().await;
    assert_eq!((r.topic.as_str(), r.retain), ("sub/ok/r", true));
    for (topic, qos) in [
        ("sub/no/x", QoS::AtMostOnce),
        ("sub/ok/x", QoS::AtMostOnce),
        ("sub/no/y", QoS::AtLeastOnce),
        ("sub/ok/y", QoS::AtLeastOnce),
    ] {
        publ.publish(topic, topic, qos, false, 3).await;
        if qos != QoS::AtMostOnce {
            publish_ack(&mut publ).await;
        }
    }
    assert_eq!(d.expect_publish().await.topic, "sub/ok/x");
    let y = d.expect_publish().await;
    assert_eq!(y.topic, "sub/ok/y");
    d.send(Packet::PubAck(PubResp {
        packet_id: y.packet_id,
        ..Default::default()
    }))
    .await;
    assert!(d.try_recv(Duration::from_millis(200)).await.is_none());
    assert_eq!(h.broker.denials().receive, 3);
}

#[tokio::test]
async fn v3_default_mode_acknowledges_and_drops_and_refuses_filters_with_0x80() {
    let h = harness(BrokerConfig::default()).await;
    let p = device_policy();
    let v3 = ProtocolVersion::V311;
    let mut watcher = Client::v5(&h.broker, "watcher").await;
    watcher.subscribe("#", QoS::AtLeastOnce).await;
    let (mut d, _) = anonymous(&h.broker, &p, v3, connect_packet(v3, "dev-3", true)).await;
    d.publish("other/a", "no", QoS::AtLeastOnce, false, 1).await;
    match d.recv().await {
        Packet::PubAck(r) => assert_eq!(r.packet_id, 1),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    d.publish("other/b", "no", QoS::ExactlyOnce, false, 2).await;
    assert!(matches!(d.recv().await, Packet::PubRec(r) if r.packet_id == 2));
    d.send(Packet::PubRel(PubResp {
        packet_id: 2,
        ..Default::default()
    }))
    .await;
    assert!(matches!(d.recv().await, Packet::PubComp(r) if r.packet_id == 2));
    d.publish("pub/a", "yes", QoS::AtLeastOnce, false, 3).await;
    assert!(matches!(d.recv().await, Packet::PubAck(_)));
    assert_eq!(watcher.expect_publish().await.topic, "pub/a");
    assert!(watcher.try_recv(Duration::from_millis(200)).await.is_none());
    assert_eq!(
        subscribe_many(&mut d, &["sub/a", "nope/#"]).await,
        [1, reason::v3::SUBACK_FAILURE]
    );
}

#[tokio::test]
async fn compat_aws_closes_a_v3_connection_on_denial_and_answers_v5_with_0x87() {
    let h = harness(aws()).await;
    let p = device_policy();
    let v3 = ProtocolVersion::V311;
    let v5 = ProtocolVersion::V5;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let id = format!("dev-pub-{}", qos as u8);
        let (mut d, _) = anonymous(&h.broker, &p, v3, connect_packet(v3, &id, true)).await;
        d.publish("other/a", "no", qos, false, 1).await;
        assert!(
            d.try_recv(Duration::from_secs(5)).await.is_none(),
            "a denied 3.1.1 PUBLISH (QoS {}) closes the connection",
            qos as u8
        );
    }
    let (mut d, _) = anonymous(&h.broker, &p, v3, connect_packet(v3, "dev-sub", true)).await;
    d.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![("nope/#".into(), SubscriptionOptions::default())],
        ..Default::default()
    }))
    .await;
    assert!(d.try_recv(Duration::from_secs(5)).await.is_none());

    // MQTT 5 has reason codes: AWS answers with them and keeps the connection.
    let (mut d, _) = anonymous(&h.broker, &p, v5, connect_packet(v5, "dev-5", true)).await;
    d.publish("other/a", "no", QoS::AtLeastOnce, false, 1).await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    assert_eq!(
        subscribe_many(&mut d, &["nope/#"]).await,
        [reason::NOT_AUTHORIZED]
    );
    d.send(Packet::PingReq).await;
    assert!(matches!(d.recv().await, Packet::PingResp));
}

#[tokio::test]
async fn connect_attributes_and_the_will_topic_are_decided_at_connect() {
    let h = harness(BrokerConfig::default()).await;
    // Clean sessions only; wills only on will/<clientId>, retained wills nowhere.
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/*",
            "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["LastWill"]}}},
           {"Effect":"Deny","Action":"iot:Connect","Resource":"{ARN}:client/*",
            "Condition":{"ArnLike":{"iot:LastWillTopic":"{ARN}:topic/forbidden/*"}}},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/will/${iot:ClientId}"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/forbidden/*"}"#,
    );
    let v5 = ProtocolVersion::V5;
    let v3 = ProtocolVersion::V311;
    let with_will = |version, id: &str, topic: &str, retain: bool| {
        let mut c = connect_packet(version, id, true);
        c.will = Some(LastWill {
            topic: topic.into(),
            payload: Bytes::from_static(b"bye"),
            retain,
            ..LastWill::default()
        });
        c
    };
    let (_c, ack) = anonymous(&h.broker, &p, v5, connect_packet(v5, "clean", true)).await;
    assert_eq!(ack.code, reason::SUCCESS);
    // PersistentConnect: 3.1.1 CleanSession=0, MQTT 5 session expiry > 0.
    let (_c, ack) = anonymous(&h.broker, &p, v3, connect_packet(v3, "p3", false)).await;
    assert_eq!(ack.code, reason::v3::NOT_AUTHORIZED);
    let mut c = connect_packet(v5, "p5", true);
    c.properties.session_expiry_interval = Some(60);
    let (_c, ack) = anonymous(&h.broker, &p, v5, c).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    // LastWill is allowed, on the client's own will topic.
    let (_c, ack) = anonymous(&h.broker, &p, v5, with_will(v5, "w1", "will/w1", false)).await;
    assert_eq!(ack.code, reason::SUCCESS);
    // iot:Publish on the will topic.
    let (_c, ack) = anonymous(&h.broker, &p, v5, with_will(v5, "w2", "will/w1", false)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    // ... and iot:RetainPublish for a retained will.
    let (_c, ack) = anonymous(&h.broker, &p, v3, with_will(v3, "w3", "will/w3", true)).await;
    assert_eq!(ack.code, reason::v3::NOT_AUTHORIZED);
    // iot:LastWillTopic in a Deny.
    let (_c, ack) = anonymous(&h.broker, &p, v5, with_will(v5, "w4", "forbidden/x", false)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    let d = h.broker.denials();
    assert_eq!((d.connect, d.publish, d.retain_publish), (3, 1, 1));
}

#[tokio::test]
async fn shared_subscriptions_are_decided_on_the_filter_as_sent() {
    let h = harness(BrokerConfig::default()).await;
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
           {"Effect":"Allow","Action":"iot:Subscribe","Resource":"{ARN}:topicfilter/$share/workers/jobs/*"},
           {"Effect":"Allow","Action":"iot:Receive","Resource":"{ARN}:topic/jobs/*"}"#,
    );
    let v5 = ProtocolVersion::V5;
    let (mut w, _) = anonymous(&h.broker, &p, v5, connect_packet(v5, "worker", true)).await;
    assert_eq!(
        subscribe_many(
            &mut w,
            &["$share/workers/jobs/#", "jobs/#", "$share/other/jobs/#"]
        )
        .await,
        [1, reason::NOT_AUTHORIZED, reason::NOT_AUTHORIZED]
    );
    let mut publ = Client::v5(&h.broker, "publisher").await;
    publ.publish("jobs/1", "j", QoS::AtMostOnce, false, 0).await;
    assert_eq!(w.expect_publish().await.topic, "jobs/1");
}

#[tokio::test]
async fn a_resumed_session_delivers_only_what_its_new_principal_may_receive() {
    let h = harness(BrokerConfig::default()).await;
    let v5 = ProtocolVersion::V5;
    let mut c = connect_packet(v5, "dev-q", false);
    c.properties.session_expiry_interval = Some(300);
    // First connected with allow-all: everything is queued while it is away.
    let (mut d, _) = connect_with(&h.broker, anonymous_info(None), v5, c.clone()).await;
    assert_eq!(subscribe_many(&mut d, &["sub/#"]).await, [1]);
    d.send(Packet::Disconnect(Disconnect::default())).await;
    drop(d);
    let mut publ = Client::v5(&h.broker, "publisher").await;
    for topic in ["sub/no/1", "sub/ok/1"] {
        publ.publish(topic, topic, QoS::AtLeastOnce, false, 1).await;
        publish_ack(&mut publ).await;
    }
    // Back with the device policy: the queue is decided again.
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
           {"Effect":"Allow","Action":"iot:Receive","Resource":"{ARN}:topic/sub/ok/*"}"#,
    );
    c.clean_start = false;
    let (mut d, ack) = anonymous(&h.broker, &p, v5, c).await;
    assert!(ack.session_present);
    assert_eq!(d.expect_publish().await.topic, "sub/ok/1");
    assert!(d.try_recv(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn denials_are_counted_every_time_and_the_connection_survives_a_flood() {
    let h = harness(BrokerConfig::default()).await;
    let p = device_policy();
    let v5 = ProtocolVersion::V5;
    let (mut d, _) = anonymous(&h.broker, &p, v5, connect_packet(v5, "dev-flood", true)).await;
    for i in 1..=200u16 {
        d.publish("other/x", "no", QoS::AtLeastOnce, false, i).await;
        assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    }
    assert_eq!(h.broker.denials().publish, 200);
}

/// A certificate-harness grant of one policy named `name`.
fn grant_of(name: &str, statements: &str, deps: Vec<Dependency>) -> Grant {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.replace("{ARN}", ARN)
    );
    Grant {
        policies: Arc::new(PolicySet::parse([(name, doc.as_str())]).unwrap()),
        thing: None,
        depends_on: deps,
    }
}

const CONNECT_AND_RECEIVE_ALL: &str = r#"{"Effect":"Allow","Action":["iot:Connect","iot:Subscribe","iot:Receive","iot:Publish"],"Resource":"*"}"#;

#[tokio::test]
async fn a_new_grant_swaps_into_an_open_connection() {
    let (h, certs) = cert_harness().await;
    certs.activate("c1");
    let policy_key = Dependency::Policy("p".into());
    *certs.policies.lock() = [(
        "c1".to_owned(),
        grant_of("p", CONNECT_AND_RECEIVE_ALL, vec![policy_key.clone()]),
    )]
    .into();
    let v5 = ProtocolVersion::V5;
    let (mut d, ack) = connect_as(&h.broker, "c1", v5, connect_packet(v5, "d1", true)).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(d.subscribe("t/#", QoS::AtLeastOnce).await.reasons, [1]);
    let mut publ = Client::v5(&h.broker, "publisher").await;
    publ.publish("t/a", "1", QoS::AtMostOnce, false, 0).await;
    assert_eq!(&d.expect_publish().await.payload[..], b"1");

    // The policy changes: Receive only t/ok/*.
    let conns = h
        .broker
        .connections_depending_on(std::slice::from_ref(&policy_key));
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].certificate_id(), Some("c1"));
    assert_eq!(conns[0].client_id(), "d1");
    let narrowed = grant_of(
        "p",
        r#"{"Effect":"Allow","Action":["iot:Connect","iot:Subscribe","iot:Publish"],"Resource":"*"},
           {"Effect":"Allow","Action":"iot:Receive","Resource":"{ARN}:topic/t/ok/*"}"#,
        vec![policy_key.clone(), Dependency::Thing("lamp".into())],
    );
    assert_eq!(
        h.broker.reauthorize(&conns[0], Some(narrowed)),
        Reauthorized::Updated
    );
    // The subscription stays; Receive governs what it delivers.
    publ.publish("t/a", "2", QoS::AtMostOnce, false, 0).await;
    publ.publish("t/ok/a", "3", QoS::AtMostOnce, false, 0).await;
    assert_eq!(&d.expect_publish().await.payload[..], b"3");
    // Filed under its new dependencies (and its certificate), no more under others.
    assert_eq!(
        h.broker
            .connections_depending_on(&[Dependency::Thing("lamp".into())])
            .len(),
        1
    );
    assert_eq!(
        h.broker
            .connections_depending_on(&[Dependency::Certificate("c1".into())])
            .len(),
        1
    );

    // Connect no longer allowed: closed with 0x87.
    let conns = h
        .broker
        .connections_depending_on(std::slice::from_ref(&policy_key));
    let no_connect = grant_of(
        "p",
        r#"{"Effect":"Allow","Action":"iot:Receive","Resource":"*"}"#,
        vec![policy_key.clone()],
    );
    assert_eq!(
        h.broker.reauthorize(&conns[0], Some(no_connect)),
        Reauthorized::Disconnected
    );
    match d.recv().await {
        Packet::Disconnect(x) => assert_eq!(x.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    assert!(d.try_recv(Duration::from_secs(5)).await.is_none());
    eventually("index emptied", || {
        h.broker
            .connections_depending_on(std::slice::from_ref(&policy_key))
            .is_empty()
    })
    .await;

    // A grant of None (the certificate may not connect any more) closes too.
    let (mut d2, _) = connect_as(&h.broker, "c1", v5, connect_packet(v5, "d2", true)).await;
    let conns = h
        .broker
        .connections_depending_on(std::slice::from_ref(&policy_key));
    assert_eq!(
        h.broker.reauthorize(&conns[0], None),
        Reauthorized::Disconnected
    );
    assert!(matches!(d2.recv().await, Packet::Disconnect(_)));
}

#[tokio::test]
async fn a_certificate_without_policies_may_not_even_connect() {
    let (h, certs) = cert_harness().await;
    certs.activate("bare");
    certs.grant("bare", &[], None, Vec::new());
    let v5 = ProtocolVersion::V5;
    let (_c, ack) = connect_as(&h.broker, "bare", v5, connect_packet(v5, "x", true)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    assert_eq!(h.broker.denials().connect, 1);
    assert!(h.broker.connected_certificates().is_empty());
}

#[tokio::test]
async fn thing_and_certificate_variables_come_from_the_grant() {
    let (h, certs) = cert_harness().await;
    certs.activate("cv");
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/${{iot:Connection.Thing.ThingName}}"}},
            {{"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/${{iot:CertificateId}}/${{iot:Connection.Thing.Attributes[site]}}/*"}}]}}"#
    );
    certs.grant(
        "cv",
        &[("thing-policy", doc.as_str())],
        Some(ThingContext::new("lamp-1").with_attribute("site", "s7")),
        Vec::new(),
    );
    let v5 = ProtocolVersion::V5;
    let (mut d, ack) = connect_as(&h.broker, "cv", v5, connect_packet(v5, "lamp-1", true)).await;
    assert_eq!(ack.code, reason::SUCCESS);
    d.publish("cv/s7/t", "x", QoS::AtLeastOnce, false, 1).await;
    assert_eq!(publish_ack(&mut d).await, reason::SUCCESS);
    d.publish("cv/s8/t", "x", QoS::AtLeastOnce, false, 2).await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
}

#[tokio::test]
async fn a_policy_change_racing_a_connect_is_never_missed() {
    // The grant is resolved from the old state; then the change commits and its listener
    // looks for the connections it concerns before the CONNECT filed itself under the
    // policy: the CONNECT sees that a change happened and resolves its grant again.
    let (h, certs) = cert_harness().await;
    certs.activate("racy");
    let key = Dependency::Policy("p".into());
    *certs.policies.lock() = [(
        "racy".to_owned(),
        grant_of("p", CONNECT_AND_RECEIVE_ALL, vec![key.clone()]),
    )]
    .into();
    let weak = Arc::downgrade(&h.broker);
    let hook_certs = Arc::downgrade(&certs);
    let hook_key = key.clone();
    let found = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let found_in_hook = found.clone();
    *certs.during_check.lock() = Some(Box::new(move |id: &str| {
        if let (Some(certs), Some(broker)) = (hook_certs.upgrade(), weak.upgrade()) {
            if found_in_hook.load(std::sync::atomic::Ordering::SeqCst) != usize::MAX {
                return; // only the first resolution races
            }
            // The registry commits the change: no more Receive...
            certs.policies.lock().insert(
                id.to_owned(),
                grant_of(
                    "p",
                    r#"{"Effect":"Allow","Action":["iot:Connect","iot:Subscribe"],"Resource":"*"}"#,
                    vec![hook_key.clone()],
                ),
            );
            // ... and its listener looks for the connections of the policy.
            let n = broker
                .connections_depending_on(std::slice::from_ref(&hook_key))
                .len();
            found_in_hook.store(n, std::sync::atomic::Ordering::SeqCst);
        }
    }));
    let v5 = ProtocolVersion::V5;
    let (mut d, ack) = connect_as(&h.broker, "racy", v5, connect_packet(v5, "r", true)).await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(
        found.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the listener ran before the connection was filed under the policy"
    );
    assert_eq!(
        certs.checked.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "resolved again"
    );
    assert_eq!(d.subscribe("t/#", QoS::AtMostOnce).await.reasons, [0]);
    let mut publ = Client::v5(&h.broker, "publisher").await;
    publ.publish("t/a", "x", QoS::AtMostOnce, false, 0).await;
    assert!(
        d.try_recv(Duration::from_millis(300)).await.is_none(),
        "the outdated grant (Receive allowed) stayed in force"
    );
}

#[tokio::test]
async fn a_will_no_longer_allowed_is_not_published() {
    let (h, certs) = cert_harness().await;
    certs.activate("w");
    let key = Dependency::Policy("p".into());
    *certs.policies.lock() = [(
        "w".to_owned(),
        grant_of("p", CONNECT_AND_RECEIVE_ALL, vec![key.clone()]),
    )]
    .into();
    let mut watcher = Client::v5(&h.broker, "watcher").await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;
    let v5 = ProtocolVersion::V5;
    let mut c = connect_packet(v5, "dev", true);
    c.will = Some(LastWill {
        topic: "will/dev".into(),
        payload: Bytes::from_static(b"gone"),
        ..LastWill::default()
    });
    let (dev, ack) = connect_as(&h.broker, "w", v5, c).await;
    assert_eq!(ack.code, reason::SUCCESS);
    let conns = h
        .broker
        .connections_depending_on(std::slice::from_ref(&key));
    h.broker.reauthorize(
        &conns[0],
        Some(grant_of(
            "p",
            r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}"#,
            vec![key],
        )),
    );
    drop(dev); // connection lost: the will would be published
    assert!(watcher.try_recv(Duration::from_millis(300)).await.is_none());
    assert_eq!(h.broker.denials().publish, 1);
}

#[tokio::test]
async fn remembered_publish_decisions_are_forgotten_by_a_swap() {
    let (h, certs) = cert_harness().await;
    certs.activate("pc");
    let key = Dependency::Policy("p".into());
    *certs.policies.lock() = [(
        "pc".to_owned(),
        grant_of("p", CONNECT_AND_RECEIVE_ALL, vec![key.clone()]),
    )]
    .into();
    let v5 = ProtocolVersion::V5;
    let (mut d, _) = connect_as(&h.broker, "pc", v5, connect_packet(v5, "pc", true)).await;
    for i in 1..=3 {
        d.publish("t/a", "x", QoS::AtLeastOnce, false, i).await;
        assert_eq!(publish_ack(&mut d).await, reason::SUCCESS);
    }
    // Many topics: the remembered set starts over, decisions stay right.
    for i in 0..200u16 {
        d.publish(&format!("t/{i}"), "x", QoS::AtLeastOnce, false, 10 + i)
            .await;
        assert_eq!(publish_ack(&mut d).await, reason::SUCCESS);
    }
    let conns = h
        .broker
        .connections_depending_on(std::slice::from_ref(&key));
    let only_b = grant_of(
        "p",
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/t/b"}"#,
        vec![key],
    );
    assert_eq!(
        h.broker.reauthorize(&conns[0], Some(only_b)),
        Reauthorized::Updated
    );
    d.publish("t/a", "x", QoS::AtLeastOnce, false, 300).await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    d.publish("t/b", "x", QoS::AtLeastOnce, false, 301).await;
    assert_eq!(publish_ack(&mut d).await, reason::SUCCESS);
    // A denied topic is evaluated (and counted) every time.
    d.publish("t/a", "x", QoS::AtLeastOnce, false, 302).await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    assert_eq!(h.broker.denials().publish, 2);
}

// ---------------------------------------------------------------------------------------------
// The topic service: publishes to `$aws/...` handed to the server's own services

/// Records what the broker hands it.
#[derive(Default)]
struct RecordingService {
    seen: parking_lot::Mutex<Vec<(String, Bytes, Option<String>)>>,
}

impl ferrocore_broker::TopicService for RecordingService {
    fn published(&self, topic: &str, payload: &Bytes, origin: &ferrocore_broker::PublishOrigin) {
        self.seen.lock().push((
            topic.to_owned(),
            payload.clone(),
            origin.client_id.as_deref().map(str::to_owned),
        ));
    }
}

#[tokio::test]
async fn the_topic_service_sees_authorized_dollar_aws_publishes_only() {
    let h = harness(BrokerConfig::default()).await;
    let service = Arc::new(RecordingService::default());
    h.broker.set_topic_service(service.clone());
    let mut watcher = Client::v5(&h.broker, "watcher").await;
    watcher
        .subscribe("$aws/things/+/shadow/#", QoS::AtMostOnce)
        .await;
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/$aws/things/lamp/*"}"#,
    );
    let v5 = ProtocolVersion::V5;
    let mut c = connect_packet(v5, "lamp", true);
    c.will = Some(LastWill {
        topic: "$aws/things/lamp/shadow/update".into(),
        payload: Bytes::from_static(b"will"),
        ..LastWill::default()
    });
    let (mut d, _) = anonymous(&h.broker, &p, v5, c).await;
    d.publish(
        "$aws/things/lamp/shadow/update",
        "{}",
        QoS::AtLeastOnce,
        false,
        1,
    )
    .await;
    assert_eq!(publish_ack(&mut d).await, reason::SUCCESS);
    // Still routed as usual.
    assert_eq!(
        watcher.expect_publish().await.topic,
        "$aws/things/lamp/shadow/update"
    );
    // Denied: neither handed over nor routed.
    d.publish(
        "$aws/things/other/shadow/update",
        "{}",
        QoS::AtLeastOnce,
        false,
        2,
    )
    .await;
    assert_eq!(publish_ack(&mut d).await, reason::NOT_AUTHORIZED);
    // Not under `$aws/`: not handed over.
    let mut plain = Client::v5(&h.broker, "plain").await;
    plain
        .publish("things/lamp", "x", QoS::AtLeastOnce, false, 1)
        .await;
    publish_ack(&mut plain).await;
    // Wills are not handed over.
    drop(d);
    assert_eq!(
        watcher.expect_publish().await.payload,
        Bytes::from_static(b"will")
    );
    let seen = service.seen.lock().clone();
    assert_eq!(
        seen,
        [(
            "$aws/things/lamp/shadow/update".to_owned(),
            Bytes::from_static(b"{}"),
            Some("lamp".to_owned())
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// The HTTPS data plane: callers, HTTP publishes, retained messages, connections

use ferrocore_broker::ferrocore_policy::Action;
use ferrocore_broker::{Caller, HttpPublish, HttpPublishError};

fn http(topic: &str, payload: &str, qos: QoS, retain: bool) -> HttpPublish {
    HttpPublish {
        topic: topic.into(),
        qos,
        retain,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        properties: PublishProperties::default(),
    }
}

fn https_caller(broker: &Broker, cert: &str) -> Option<Caller> {
    broker.certificate_caller(
        cert,
        &[0x30],
        "192.0.2.7".parse().unwrap(),
        Some("iot.example.com"),
    )
}

#[tokio::test]
async fn certificate_callers_get_the_certificates_policies_without_a_client_id() {
    let (h, certs) = cert_harness().await;
    assert!(https_caller(&h.broker, "unknown").is_none());
    certs.activate("hc");
    certs.grant(
        "hc",
        &[(
            "p",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Action":"iot:GetRetainedMessage","Resource":"{ARN}:topic/${{iot:ClientId}}/*"}},
                {{"Effect":"Allow","Action":"iot:GetRetainedMessage","Resource":"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/*"}},
                {{"Effect":"Allow","Action":"iot:ListRetainedMessages","Resource":"*","Condition":{{"IpAddress":{{"aws:SourceIp":"192.0.2.0/24"}}}}}},
                {{"Effect":"Allow","Action":"iot:DeleteConnection","Resource":"{ARN}:client/*","Condition":{{"StringEquals":{{"iot:DomainName":"iot.example.com"}}}}}}]}}"#
            ),
        )],
        Some(ThingContext::new("lamp")),
        Vec::new(),
    );
    let caller = https_caller(&h.broker, "hc").unwrap();
    assert_eq!(caller.certificate_id(), Some("hc"));
    let arns = h.broker.arns();
    assert!(
        h.broker
            .caller_allowed(&caller, Action::GetRetainedMessage, &arns.topic("lamp/x"))
    );
    assert!(
        !h.broker
            .caller_allowed(&caller, Action::GetRetainedMessage, &arns.topic("/x")),
        "iot:ClientId is not set over HTTPS"
    );
    assert!(
        h.broker
            .caller_allowed(&caller, Action::ListRetainedMessages, "*")
    );
    assert!(
        h.broker
            .caller_allowed(&caller, Action::DeleteConnection, &arns.client("c"))
    );
    assert!(
        !h.broker
            .caller_allowed(&caller, Action::GetThingShadow, &arns.thing("lamp"))
    );
    assert_eq!(h.broker.denials().data_plane, 2);
    let admin = Caller::admin();
    assert_eq!(admin.certificate_id(), None);
    assert!(
        h.broker
            .caller_allowed(&admin, Action::DeleteConnection, &arns.client("c"))
    );
    // A broker without certificate checks has no certificate callers.
    let plain = harness(BrokerConfig::default()).await;
    assert!(https_caller(&plain.broker, "hc").is_none());
}

#[tokio::test]
async fn http_publishes_are_authorized_validated_and_routed() {
    let (h, certs) = cert_harness().await;
    let service = Arc::new(RecordingService::default());
    h.broker.set_topic_service(service.clone());
    certs.activate("hp");
    certs.grant(
        "hp",
        &[(
            "p",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Action":"iot:Publish","Resource":["{ARN}:topic/pub/*","{ARN}:topic/$aws/things/lamp/shadow/update"]}},
                {{"Effect":"Allow","Action":"iot:RetainPublish","Resource":"{ARN}:topic/pub/keep/*"}}]}}"#
            ),
        )],
        None,
        Vec::new(),
    );
    let caller = https_caller(&h.broker, "hp").unwrap();
    let mut sub = Client::v5(&h.broker, "sub").await;
    sub.subscribe("pub/#", QoS::AtLeastOnce).await;

    // Allowed: routed with its properties.
    let mut p = http("pub/a", "hello", QoS::AtLeastOnce, false);
    p.properties.user_properties = vec![("k".into(), "v".into())];
    p.properties.content_type = Some("text/plain".into());
    let commit = h.broker.publish_http(&caller, p).unwrap();
    if let Some(c) = commit {
        c.await.unwrap();
    }
    let got = sub.expect_publish().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("pub/a", &b"hello"[..])
    );
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert_eq!(got.properties.user_properties, [("k".into(), "v".into())]);
    assert_eq!(got.properties.content_type.as_deref(), Some("text/plain"));
    sub.send(Packet::PubAck(PubResp {
        packet_id: got.packet_id,
        ..Default::default()
    }))
    .await;

    // Denied: not routed, counted.
    let denied = h
        .broker
        .publish_http(&caller, http("other/a", "x", QoS::AtMostOnce, false));
    assert!(matches!(denied, Err(HttpPublishError::Forbidden)));
    // Retained needs iot:RetainPublish too.
    let denied = h
        .broker
        .publish_http(&caller, http("pub/a", "x", QoS::AtMostOnce, true));
    assert!(matches!(denied, Err(HttpPublishError::Forbidden)));
    assert_eq!(h.broker.denials().publish, 1);
    assert_eq!(h.broker.denials().retain_publish, 1);
    assert!(sub.try_recv(Duration::from_millis(200)).await.is_none());
    let commit = h
        .broker
        .publish_http(&caller, http("pub/keep/a", "kept", QoS::AtMostOnce, true))
        .unwrap();
    commit
        .expect("a retained publish is durable")
        .await
        .unwrap();
    assert_eq!(&sub.expect_publish().await.payload[..], b"kept");
    assert_eq!(
        h.broker.retained_message("pub/keep/a").unwrap().payload,
        Bytes::from_static(b"kept")
    );
    // An empty retained payload deletes.
    h.broker
        .publish_http(&caller, http("pub/keep/a", "", QoS::AtMostOnce, true))
        .unwrap()
        .expect("the deletion is durable")
        .await
        .unwrap();
    assert!(h.broker.retained_message("pub/keep/a").is_none());
    sub.expect_publish().await;

    // `$aws/` topics are handed to the topic service, without a client id.
    h.broker
        .publish_http(
            &caller,
            http(
                "$aws/things/lamp/shadow/update",
                "{}",
                QoS::AtMostOnce,
                false,
            ),
        )
        .unwrap();
    assert_eq!(
        service.seen.lock().clone(),
        [(
            "$aws/things/lamp/shadow/update".to_owned(),
            Bytes::from_static(b"{}"),
            None
        )]
    );

    // Bad requests, whatever the policies.
    let admin = Caller::admin();
    for (topic, why) in [
        ("a/+", "wildcard"),
        ("", "empty"),
        ("a/b/c/d/e/f/g/h/i", "deep"),
    ] {
        match h
            .broker
            .publish_http(&admin, http(topic, "x", QoS::AtMostOnce, false))
        {
            Err(HttpPublishError::InvalidTopic(message)) => assert!(!message.is_empty(), "{why}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    let big = "x".repeat(128 * 1024 + 1);
    assert!(matches!(
        h.broker
            .publish_http(&admin, http("pub/a", &big, QoS::AtMostOnce, false)),
        Err(HttpPublishError::PayloadTooLarge { limit: 131072 })
    ));
    assert!(matches!(
        h.broker
            .publish_http(&admin, http("pub/a", "x", QoS::ExactlyOnce, false)),
        Err(HttpPublishError::QosNotSupported)
    ));
}

#[tokio::test]
async fn retained_messages_are_viewed_and_listed_in_pages() {
    let h = harness(BrokerConfig::default()).await;
    let admin = Caller::admin();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for (i, topic) in ["b/2", "a", "b/1", "c", "a/z", "B"].iter().enumerate() {
        let mut p = http(topic, &"x".repeat(i + 1), QoS::AtLeastOnce, true);
        p.properties.user_properties = vec![("n".into(), i.to_string())];
        h.broker
            .publish_http(&admin, p)
            .unwrap()
            .unwrap()
            .await
            .unwrap();
    }
    // An expired one is neither viewed nor listed.
    let mut p = http("expired", "x", QoS::AtMostOnce, true);
    p.properties.message_expiry_interval = Some(1);
    h.broker
        .publish_http(&admin, p)
        .unwrap()
        .unwrap()
        .await
        .unwrap();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(h.broker.retained_message("expired").is_none());

    let view = h.broker.retained_message("b/1").unwrap();
    assert_eq!(view.topic, "b/1");
    assert_eq!(&view.payload[..], b"xxx");
    assert_eq!(view.qos, 1);
    assert!(view.last_modified_ms >= before);
    assert_eq!(view.user_properties, [("n".into(), "2".into())]);
    assert!(h.broker.retained_message("b").is_none());

    let all: Vec<String> = h
        .broker
        .retained_summaries(None, 100)
        .into_iter()
        .map(|s| s.topic)
        .collect();
    assert_eq!(all, ["B", "a", "a/z", "b/1", "b/2", "c"], "byte-wise order");
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = h.broker.retained_summaries(after.as_deref(), 4);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|s| s.topic.clone());
        pages.push(page.into_iter().map(|s| s.topic).collect::<Vec<_>>());
    }
    assert_eq!(pages, [vec!["B", "a", "a/z", "b/1"], vec!["b/2", "c"]]);
    let first = &h.broker.retained_summaries(Some("a/y"), 1)[0];
    assert_eq!(
        (first.topic.as_str(), first.payload_size, first.qos),
        ("a/z", 5, 1)
    );
    assert!(first.last_modified_ms >= before);
}

#[tokio::test]
async fn retained_modification_times_survive_a_restart() {
    let h = harness(BrokerConfig::default()).await;
    let admin = Caller::admin();
    h.broker
        .publish_http(&admin, http("kept", "x", QoS::AtLeastOnce, true))
        .unwrap()
        .unwrap()
        .await
        .unwrap();
    let before = h.broker.retained_message("kept").unwrap();
    let h = restart(h, BrokerConfig::default()).await;
    assert_eq!(h.broker.retained_message("kept").unwrap(), before);
}

#[tokio::test]
async fn connection_status_and_subscriptions_of_connected_offline_and_unknown_clients() {
    let h = harness(BrokerConfig::default()).await;
    assert!(h.broker.connection_status("nobody").is_none());
    assert!(h.broker.subscriptions("nobody").is_none());

    let mut c = connect_packet(ProtocolVersion::V5, "dev", false);
    c.properties.session_expiry_interval = Some(600);
    c.keep_alive = 45;
    let (mut d, _) = Client::connect(&h.broker, c.clone()).await;
    d.subscribe("b/#", QoS::AtLeastOnce).await;
    d.subscribe("a/+", QoS::AtMostOnce).await;
    let s = h.broker.connection_status("dev").unwrap();
    assert_eq!(s.client_id, "dev");
    assert!(s.connected);
    assert!(!s.clean_session);
    assert_eq!(s.source, Some("127.0.0.1:1".parse().unwrap()));
    assert_eq!(s.target, Some("127.0.0.1:1".parse().unwrap()));
    assert_eq!(s.keep_alive_secs, Some(45));
    assert!(s.connected_since_ms.is_some());
    assert_eq!((s.disconnected_since_ms, s.disconnect_reason), (None, None));
    assert_eq!(s.session_expiry_secs, Some(600));
    assert_eq!(s.thing_name, None);
    assert_eq!(
        h.broker.subscriptions("dev").unwrap(),
        [("a/+".to_owned(), 0), ("b/#".to_owned(), 1)]
    );

    // Offline with its persistent session.
    d.send(Packet::Disconnect(Disconnect::default())).await;
    assert!(d.try_recv(Duration::from_secs(5)).await.is_none());
    let s = h.broker.connection_status("dev").unwrap();
    assert!(!s.connected);
    assert_eq!(
        (s.source, s.keep_alive_secs, s.connected_since_ms),
        (None, None, None)
    );
    assert!(s.disconnected_since_ms.is_some());
    assert_eq!(s.disconnect_reason, Some("CLIENT_INITIATED_DISCONNECT"));
    assert_eq!(h.broker.subscriptions("dev").unwrap().len(), 2);

    // A clean session is gone with its connection.
    let (mut clean, _) = Client::connect(
        &h.broker,
        connect_packet(ProtocolVersion::V311, "clean", true),
    )
    .await;
    let s = h.broker.connection_status("clean").unwrap();
    assert!(s.connected && s.clean_session);
    assert_eq!(s.session_expiry_secs, None);
    assert_eq!(h.broker.subscriptions("clean").unwrap(), []);
    clean.send(Packet::Disconnect(Disconnect::default())).await;
    assert!(clean.try_recv(Duration::from_secs(5)).await.is_none());
    eventually("clean session gone", || {
        h.broker.connection_status("clean").is_none()
    })
    .await;

    // After a restart the offline session is known; why it went is not.
    let h = restart(h, BrokerConfig::default()).await;
    let s = h.broker.connection_status("dev").unwrap();
    assert!(!s.connected && s.disconnected_since_ms.is_some());
    assert_eq!(s.disconnect_reason, None);
}

#[tokio::test]
async fn the_thing_of_a_certificate_connection_is_reported() {
    let (h, certs) = cert_harness().await;
    certs.activate("t");
    certs.grant(
        "t",
        &[("all", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#)],
        Some(ThingContext::new("lamp")),
        Vec::new(),
    );
    let v5 = ProtocolVersion::V5;
    let (_d, _) = connect_as(&h.broker, "t", v5, connect_packet(v5, "lamp", true)).await;
    assert_eq!(
        h.broker
            .connection_status("lamp")
            .unwrap()
            .thing_name
            .as_deref(),
        Some("lamp")
    );
}

/// A v5 client `id` with a will on `will/<id>` and a persistent session.
async fn persistent_with_will(broker: &Arc<Broker>, id: &str) -> Client {
    let mut c = connect_packet(ProtocolVersion::V5, id, false);
    c.properties.session_expiry_interval = Some(600);
    c.will = Some(LastWill {
        topic: format!("will/{id}"),
        payload: Bytes::from_static(b"gone"),
        ..LastWill::default()
    });
    let (mut d, ack) = Client::connect(broker, c).await;
    assert_eq!(ack.code, reason::SUCCESS);
    d.subscribe("keep/#", QoS::AtLeastOnce).await;
    d
}

async fn expect_disconnect(c: &mut Client) -> u8 {
    match c.recv().await {
        Packet::Disconnect(d) => d.reason,
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}

#[tokio::test]
async fn delete_connection_disconnects_with_0x98_and_keeps_or_ends_the_session() {
    let h = harness(BrokerConfig::default()).await;
    let mut watcher = Client::v5(&h.broker, "watcher").await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;
    assert!(!h.broker.delete_connection("nobody", true, false));

    // Session kept, will published.
    let mut d = persistent_with_will(&h.broker, "keep").await;
    assert!(h.broker.delete_connection("keep", false, false));
    assert_eq!(
        expect_disconnect(&mut d).await,
        reason::ADMINISTRATIVE_ACTION
    );
    assert!(d.try_recv(Duration::from_secs(5)).await.is_none(), "closed");
    assert_eq!(watcher.expect_publish().await.topic, "will/keep");
    let s = h.broker.connection_status("keep").unwrap();
    assert!(!s.connected);
    assert_eq!(s.disconnect_reason, Some("API_INITIATED_DISCONNECT"));
    assert_eq!(h.broker.subscriptions("keep").unwrap().len(), 1);

    // Session ended, will prevented.
    let mut d = persistent_with_will(&h.broker, "end").await;
    assert!(h.broker.delete_connection("end", true, true));
    assert_eq!(
        expect_disconnect(&mut d).await,
        reason::ADMINISTRATIVE_ACTION
    );
    assert!(d.try_recv(Duration::from_secs(5)).await.is_none());
    eventually("session ended", || {
        h.broker.connection_status("end").is_none()
    })
    .await;
    assert!(
        watcher.try_recv(Duration::from_millis(300)).await.is_none(),
        "no will"
    );

    // An offline persistent session: kept without cleanSession, ended with it.
    assert!(h.broker.delete_connection("keep", false, false));
    assert!(h.broker.connection_status("keep").is_some());
    assert!(h.broker.delete_connection("keep", true, false));
    assert!(h.broker.connection_status("keep").is_none());
    assert!(!h.broker.delete_connection("keep", true, false));

    // Ended sessions stay ended across a restart.
    let h = restart(h, BrokerConfig::default()).await;
    assert!(h.broker.connection_status("keep").is_none());
    assert!(h.broker.connection_status("end").is_none());
}

#[tokio::test]
async fn delete_connection_closes_a_v3_client_without_a_packet() {
    let h = harness(BrokerConfig::default()).await;
    let (mut d, _) =
        Client::connect(&h.broker, connect_packet(ProtocolVersion::V311, "v3", true)).await;
    assert!(h.broker.delete_connection("v3", false, false));
    assert!(d.try_recv(Duration::from_secs(5)).await.is_none());
    eventually("gone", || h.broker.connection_status("v3").is_none()).await;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle events: presence and subscriptions

use serde_json::Value;

/// A client of the allow-all listener watching `$aws/events/#` (its own subscribed event
/// consumed).
async fn observer(broker: &Arc<Broker>) -> Client {
    let mut o = Client::v5(broker, "observer").await;
    o.subscribe("$aws/events/#", QoS::AtMostOnce).await;
    let (topic, event) = next_event(&mut o).await;
    assert_eq!(topic, "$aws/events/subscriptions/subscribed/observer");
    assert_eq!(event["topics"], serde_json::json!(["$aws/events/#"]));
    o
}

async fn next_event(o: &mut Client) -> (String, Value) {
    let p = o.expect_publish().await;
    let event = serde_json::from_slice(&p.payload).unwrap();
    (p.topic, event)
}

/// The next event, which must be on `topic`.
async fn expect_event(o: &mut Client, topic: &str) -> Value {
    let (got, event) = next_event(o).await;
    assert_eq!(got, topic, "{event}");
    event
}

/// The next event, a disconnection of `client_id`: its reason.
async fn disconnect_reason(o: &mut Client, client_id: &str) -> String {
    let e = expect_event(o, &format!("$aws/events/presence/disconnected/{client_id}")).await;
    e["disconnectReason"].as_str().unwrap().to_owned()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn presence_and_subscription_events_carry_awss_fields() {
    let h = harness(BrokerConfig::default()).await;
    let mut o = observer(&h.broker).await;
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
           {"Effect":"Allow","Action":"iot:Subscribe","Resource":"{ARN}:topicfilter/ok/*"}"#,
    );
    let v5 = ProtocolVersion::V5;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (mut d, _) = anonymous(&h.broker, &p, v5, connect_packet(v5, "dev \"1\"", true)).await;

    let c = expect_event(&mut o, "$aws/events/presence/connected/dev \"1\"").await;
    assert_eq!(
        keys(&c),
        [
            "clientId",
            "eventType",
            "ipAddress",
            "principalIdentifier",
            "sessionIdentifier",
            "timestamp",
            "versionNumber"
        ]
    );
    assert_eq!(c["clientId"], "dev \"1\"");
    assert_eq!(c["eventType"], "connected");
    assert_eq!(c["principalIdentifier"], "anonymous:anon");
    assert_eq!(c["ipAddress"], "127.0.0.1");
    assert_eq!(c["versionNumber"], 0);
    assert!(c["timestamp"].as_u64().unwrap() >= before);
    let session = c["sessionIdentifier"].as_str().unwrap().to_owned();
    assert_eq!(session.len(), 36);
    assert_eq!(session.matches('-').count(), 4);

    // Only the granted filters.
    assert_eq!(
        subscribe_many(&mut d, &["ok/a", "no/b", "ok/c/#"]).await,
        [1, reason::NOT_AUTHORIZED, 1]
    );
    let s = expect_event(&mut o, "$aws/events/subscriptions/subscribed/dev \"1\"").await;
    assert_eq!(
        keys(&s),
        [
            "clientId",
            "eventType",
            "principalIdentifier",
            "sessionIdentifier",
            "timestamp",
            "topics"
        ]
    );
    assert_eq!(s["eventType"], "subscribed");
    assert_eq!(s["sessionIdentifier"], session.as_str());
    assert_eq!(s["principalIdentifier"], "anonymous:anon");
    assert_eq!(s["topics"], serde_json::json!(["ok/a", "ok/c/#"]));
    // Nothing granted: no event.
    assert_eq!(
        subscribe_many(&mut d, &["no/x"]).await,
        [reason::NOT_AUTHORIZED]
    );

    // Only the filters that were subscribed.
    d.send(Packet::Unsubscribe(Unsubscribe {
        packet_id: 9,
        filters: vec!["ok/a".into(), "never".into()],
        ..Default::default()
    }))
    .await;
    assert!(matches!(d.recv().await, Packet::UnsubAck(_)));
    let u = expect_event(&mut o, "$aws/events/subscriptions/unsubscribed/dev \"1\"").await;
    assert_eq!(u["eventType"], "unsubscribed");
    assert_eq!(u["topics"], serde_json::json!(["ok/a"]));
    assert_eq!(u["sessionIdentifier"], session.as_str());

    d.send(Packet::Disconnect(Disconnect::default())).await;
    let e = expect_event(&mut o, "$aws/events/presence/disconnected/dev \"1\"").await;
    assert_eq!(
        keys(&e),
        [
            "clientId",
            "clientInitiatedDisconnect",
            "disconnectReason",
            "eventType",
            "principalIdentifier",
            "sessionIdentifier",
            "timestamp",
            "versionNumber"
        ]
    );
    assert_eq!(e["eventType"], "disconnected");
    assert_eq!(e["clientInitiatedDisconnect"], true);
    assert_eq!(e["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
    assert_eq!(e["sessionIdentifier"], session.as_str());
    assert_eq!(
        e["versionNumber"], 0,
        "a connection's events share a version"
    );

    // The next connection: a new session identifier, a higher version.
    let (mut d, _) = anonymous(&h.broker, &p, v5, connect_packet(v5, "dev \"1\"", true)).await;
    let c = expect_event(&mut o, "$aws/events/presence/connected/dev \"1\"").await;
    assert_ne!(c["sessionIdentifier"], session.as_str());
    assert!(c["versionNumber"].as_u64().unwrap() > 0);
    d.send(Packet::Disconnect(Disconnect::default())).await;
    expect_event(&mut o, "$aws/events/presence/disconnected/dev \"1\"").await;

    // A refused CONNECT produces nothing.
    let deny = policy(r#"{"Effect":"Deny","Action":"iot:Connect","Resource":"*"}"#);
    let (_r, ack) = anonymous(&h.broker, &deny, v5, connect_packet(v5, "refused", true)).await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    assert!(o.try_recv(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn client_ids_with_wildcards_get_no_lifecycle_events() {
    let h = harness(BrokerConfig::default()).await;
    let mut o = observer(&h.broker).await;
    for id in ["a+b", "a#", "+"] {
        let (mut d, ack) =
            Client::connect(&h.broker, connect_packet(ProtocolVersion::V5, id, true)).await;
        assert_eq!(ack.code, reason::SUCCESS);
        d.subscribe("x", QoS::AtMostOnce).await;
        d.send(Packet::Disconnect(Disconnect::default())).await;
        assert!(d.try_recv(Duration::from_secs(5)).await.is_none());
    }
    assert!(o.try_recv(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn disconnect_reasons_of_the_client_the_network_and_the_protocol() {
    let h = harness(BrokerConfig {
        max_inflight: 2,
        ..BrokerConfig::default()
    })
    .await;
    let mut o = observer(&h.broker).await;
    let connect = |id: &str| connect_packet(ProtocolVersion::V5, id, true);
    let connected = |id: &str| format!("$aws/events/presence/connected/{id}");

    // Socket closed without DISCONNECT.
    let (d, _) = Client::connect(&h.broker, connect("lost")).await;
    expect_event(&mut o, &connected("lost")).await;
    drop(d);
    let e = expect_event(&mut o, "$aws/events/presence/disconnected/lost").await;
    assert_eq!(e["disconnectReason"], "CONNECTION_LOST");
    assert_eq!(e["clientInitiatedDisconnect"], false);

    // A second CONNECT, and a malformed packet.
    let (mut d, _) = Client::connect(&h.broker, connect("twice")).await;
    expect_event(&mut o, &connected("twice")).await;
    d.send(Packet::Connect(Box::new(connect("twice")))).await;
    assert_eq!(disconnect_reason(&mut o, "twice").await, "CLIENT_ERROR");
    let (mut d, _) = Client::connect(&h.broker, connect("garbled")).await;
    expect_event(&mut o, &connected("garbled")).await;
    d.io.write_all(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F])
        .await
        .unwrap();
    assert_eq!(disconnect_reason(&mut o, "garbled").await, "CLIENT_ERROR");

    // More unacknowledged inbound QoS 2 messages than the receive maximum.
    let (mut d, _) = Client::connect(&h.broker, connect("flood")).await;
    expect_event(&mut o, &connected("flood")).await;
    for id in 1..=3 {
        d.publish("f", "x", QoS::ExactlyOnce, false, id).await;
    }
    assert_eq!(disconnect_reason(&mut o, "flood").await, "THROTTLED");

    // Taken over by a new connection with the same client id.
    let (_first, _) = Client::connect(&h.broker, connect("dup")).await;
    let first = expect_event(&mut o, &connected("dup")).await;
    let (_second, _) = Client::connect(&h.broker, connect("dup")).await;
    let mut events = [next_event(&mut o).await, next_event(&mut o).await];
    events.sort_by(|a, b| a.0.cmp(&b.0));
    let (second, gone) = (&events[0].1, &events[1].1);
    assert_eq!(events[0].0, connected("dup"));
    assert_eq!(gone["disconnectReason"], "DUPLICATE_CLIENTID");
    assert_eq!(gone["sessionIdentifier"], first["sessionIdentifier"]);
    assert_eq!(gone["versionNumber"], first["versionNumber"]);
    assert!(second["versionNumber"].as_u64() > first["versionNumber"].as_u64());

    // The API.
    let (_d, _) = Client::connect(&h.broker, connect("api")).await;
    expect_event(&mut o, &connected("api")).await;
    assert!(h.broker.delete_connection("api", true, false));
    let e = expect_event(&mut o, "$aws/events/presence/disconnected/api").await;
    assert_eq!(e["disconnectReason"], "API_INITIATED_DISCONNECT");
    assert_eq!(e["clientInitiatedDisconnect"], false);
}

#[tokio::test]
async fn keep_alive_timeout_is_reported() {
    let h = harness(BrokerConfig::default()).await;
    let mut o = observer(&h.broker).await;
    // Paused only now: the store's pool keeps real-time timers while opening. The session
    // is clean: with the clock paused, a wait for the store would let it jump ahead.
    tokio::time::pause();
    let mut c = connect_packet(ProtocolVersion::V5, "sleepy", true);
    c.keep_alive = 2;
    let (_d, _) = Client::connect(&h.broker, c).await;
    expect_event(&mut o, "$aws/events/presence/connected/sleepy").await;
    assert_eq!(
        disconnect_reason(&mut o, "sleepy").await,
        "MQTT_KEEP_ALIVE_TIMEOUT"
    );
}

#[tokio::test]
async fn a_denied_v3_action_in_aws_mode_is_forbidden_access() {
    let h = harness(aws()).await;
    let mut o = observer(&h.broker).await;
    let p = device_policy();
    let v3 = ProtocolVersion::V311;
    let (mut d, _) = anonymous(&h.broker, &p, v3, connect_packet(v3, "dev-f", true)).await;
    expect_event(&mut o, "$aws/events/presence/connected/dev-f").await;
    d.publish("other/x", "no", QoS::AtLeastOnce, false, 1).await;
    let e = expect_event(&mut o, "$aws/events/presence/disconnected/dev-f").await;
    assert_eq!(e["disconnectReason"], "FORBIDDEN_ACCESS");
}

#[tokio::test]
async fn revocation_and_withdrawn_connect_are_auth_errors_with_the_certificate_and_thing() {
    let (h, certs) = cert_harness().await;
    let mut o = observer(&h.broker).await;
    certs.activate("rv");
    let key = Dependency::Policy("p".into());
    let mut grant = grant_of("p", CONNECT_AND_RECEIVE_ALL, vec![key.clone()]);
    grant.thing = Some(ThingContext::new("lamp"));
    certs.policies.lock().insert("rv".into(), grant);
    let v5 = ProtocolVersion::V5;

    let (_d, _) = connect_as(&h.broker, "rv", v5, connect_packet(v5, "lamp", true)).await;
    let c = expect_event(&mut o, "$aws/events/presence/connected/lamp").await;
    assert_eq!(c["principalIdentifier"], "rv");
    assert!(
        c.get("thingName").is_none(),
        "connected events name no thing"
    );
    assert_eq!(h.broker.disconnect_certificate("rv"), 1);
    let e = expect_event(&mut o, "$aws/events/presence/disconnected/lamp").await;
    assert_eq!(e["disconnectReason"], "AUTH_ERROR");
    assert_eq!(e["principalIdentifier"], "rv");
    assert_eq!(e["thingName"], "lamp");
    // Gone from the index (after its lingering close) before the next one connects.
    eventually("index emptied", || {
        h.broker.certificate_connections("rv") == 0
    })
    .await;

    let (_d, _) = connect_as(&h.broker, "rv", v5, connect_packet(v5, "lamp", true)).await;
    expect_event(&mut o, "$aws/events/presence/connected/lamp").await;
    let conns = h
        .broker
        .connections_depending_on(std::slice::from_ref(&key));
    let no_connect = grant_of(
        "p",
        r#"{"Effect":"Allow","Action":"iot:Receive","Resource":"*"}"#,
        vec![key],
    );
    assert_eq!(
        h.broker.reauthorize(&conns[0], Some(no_connect)),
        Reauthorized::Disconnected
    );
    assert_eq!(disconnect_reason(&mut o, "lamp").await, "AUTH_ERROR");
}

#[tokio::test]
async fn shutdown_is_a_server_initiated_disconnect() {
    let h = harness(BrokerConfig::default()).await;
    let mut c = connect_packet(ProtocolVersion::V5, "stays", false);
    c.properties.session_expiry_interval = Some(600);
    let (mut d, _) = Client::connect(&h.broker, c).await;
    h.broker.shutdown().await;
    assert_eq!(
        expect_disconnect(&mut d).await,
        reason::SERVER_SHUTTING_DOWN
    );
    let s = h.broker.connection_status("stays").unwrap();
    assert_eq!(s.disconnect_reason, Some("SERVER_INITIATED_DISCONNECT"));
}
