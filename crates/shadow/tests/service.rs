//! The shadow service over a real broker and store: devices speak MQTT to the reserved topics
//! through an in-memory stream, applications call the HTTPS-side methods.

#![allow(clippy::unwrap_used)] // a failed set-up step should fail the test loudly

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferrocore_broker::{Broker, BrokerConfig, ConnectionInfo, ListenerAuth, Transport};
use ferrocore_mqtt::*;
use ferrocore_shadow::service::Clock;
use ferrocore_shadow::{ShadowConfig, ShadowKey, ShadowService};
use ferrocore_store::{Durability, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

struct Harness {
    broker: Arc<Broker>,
    shadows: Arc<ShadowService>,
    store: Store,
    /// Epoch seconds the service's clock reads.
    now: Arc<AtomicU64>,
    dir: tempfile::TempDir,
}

const START: u64 = 1_800_000_000;

async fn harness(config: ShadowConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(START));
    let (broker, shadows, store) = start(&dir, config, &now).await;
    Harness {
        broker,
        shadows,
        store,
        now,
        dir,
    }
}

async fn start(
    dir: &tempfile::TempDir,
    config: ShadowConfig,
    now: &Arc<AtomicU64>,
) -> (Arc<Broker>, Arc<ShadowService>, Store) {
    let store = Store::open_sqlite(&dir.path().join("t.db"), Durability::Process)
        .await
        .unwrap();
    let broker = Broker::start(BrokerConfig::default(), store.clone())
        .await
        .unwrap();
    let clock_now = now.clone();
    let clock: Clock =
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(clock_now.load(Ordering::Relaxed)));
    let shadows = ShadowService::start_with_clock(&broker, store.clone(), config, clock);
    (broker, shadows, store)
}

fn classic(thing: &str) -> ShadowKey {
    ShadowKey {
        thing: thing.into(),
        name: None,
    }
}

fn named(thing: &str, name: &str) -> ShadowKey {
    ShadowKey {
        thing: thing.into(),
        name: Some(name.into()),
    }
}

/// An MQTT 5 client over an in-memory stream to the broker (anonymous, allow-all listener).
struct Device {
    io: DuplexStream,
    buf: BytesMut,
    next_id: u16,
}

impl Device {
    async fn connect(broker: &Arc<Broker>, id: &str) -> Device {
        let (client, server) = tokio::io::duplex(1 << 20);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let info = ConnectionInfo {
            peer_addr: addr,
            local_addr: addr,
            transport: Transport::Tcp,
            tls: None,
            http: None,
            listener: Arc::new(ListenerAuth {
                name: "test".into(),
                anonymous: true,
                anonymous_policy: None,
                custom_auth: false,
            }),
        };
        let b = broker.clone();
        tokio::spawn(async move { b.serve(server, info).await });
        let mut d = Device {
            io: client,
            buf: BytesMut::new(),
            next_id: 1,
        };
        d.send(Packet::Connect(Box::new(Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: id.into(),
            ..Connect::default()
        })))
        .await;
        assert!(matches!(d.recv().await, Packet::ConnAck(a) if a.code == 0));
        d
    }

    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        encode(&p, ProtocolVersion::V5, &mut out).unwrap();
        self.io.write_all(&out).await.unwrap();
    }

    async fn recv(&mut self) -> Packet {
        loop {
            if let Some(p) = decode(&mut self.buf, Some(ProtocolVersion::V5), 1 << 20).unwrap() {
                return p;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_buf(&mut self.buf))
                .await
                .expect("no packet within 10 s")
                .unwrap();
            assert!(n > 0, "the broker closed the connection");
        }
    }

    async fn subscribe(&mut self, filter: &str) {
        let packet_id = self.id();
        self.send(Packet::Subscribe(Subscribe {
            packet_id,
            filters: vec![(
                filter.into(),
                SubscriptionOptions {
                    qos: QoS::AtMostOnce,
                    ..SubscriptionOptions::default()
                },
            )],
            ..Subscribe::default()
        }))
        .await;
        assert!(matches!(self.recv().await, Packet::SubAck(_)));
    }

    async fn publish(&mut self, topic: &str, payload: Value) {
        let payload = if payload.is_null() {
            Bytes::new()
        } else {
            Bytes::from(payload.to_string())
        };
        self.publish_raw(topic, payload).await;
    }

    async fn publish_raw(&mut self, topic: &str, payload: Bytes) {
        self.send(Packet::Publish(Publish {
            qos: QoS::AtMostOnce,
            topic: topic.into(),
            payload,
            ..Publish::default()
        }))
        .await;
    }

    /// The next message on a topic ending in one of `suffixes` (others are skipped: the
    /// device also receives its own requests through its wildcard subscription).
    async fn answer(&mut self, suffixes: &[&str]) -> (String, Value) {
        loop {
            if let Packet::Publish(p) = self.recv().await
                && suffixes.iter().any(|s| p.topic.ends_with(s))
            {
                return (p.topic, serde_json::from_slice(&p.payload).unwrap());
            }
        }
    }

    fn id(&mut self) -> u16 {
        self.next_id += 1;
        self.next_id
    }
}

#[tokio::test]
async fn desired_delta_reported_cycle_over_mqtt() {
    let h = harness(ShadowConfig::default()).await;
    let mut d = Device::connect(&h.broker, "lamp").await;
    d.subscribe("$aws/things/lamp/shadow/#").await;
    let prefix = "$aws/things/lamp/shadow";

    d.publish(
        &format!("{prefix}/update"),
        json!({"state": {"desired": {"color": "red", "level": 3}}, "clientToken": "t1"}),
    )
    .await;
    let (_, accepted) = d.answer(&["/update/accepted"]).await;
    assert_eq!(accepted["state"]["desired"]["color"], "red");
    assert_eq!(accepted["version"], 1);
    assert_eq!(accepted["clientToken"], "t1");
    let (_, delta) = d.answer(&["/update/delta"]).await;
    assert_eq!(delta["state"], json!({"color": "red", "level": 3}));
    let (_, docs) = d.answer(&["/update/documents"]).await;
    assert_eq!(docs["current"]["version"], 1);
    assert_eq!(docs["current"]["state"]["desired"]["level"], 3);

    d.publish(
        &format!("{prefix}/update"),
        json!({"state": {"reported": {"color": "red", "level": 3}}}),
    )
    .await;
    let (_, accepted) = d.answer(&["/update/accepted"]).await;
    assert_eq!(accepted["version"], 2);
    let (_, docs) = d.answer(&["/update/documents", "/update/delta"]).await;
    assert_eq!(
        docs["current"]["version"], 2,
        "no delta once reported matches: {docs}"
    );

    d.publish(&format!("{prefix}/get"), json!({"clientToken": "g"}))
        .await;
    let (_, got) = d.answer(&["/get/accepted"]).await;
    assert_eq!(got["state"]["reported"]["color"], "red");
    assert_eq!(got["clientToken"], "g");
    assert!(got["state"].get("delta").is_none(), "{got}");

    // A stale version is refused with 409 and the token echoed.
    d.publish(
        &format!("{prefix}/update"),
        json!({"state": {"desired": {"color": "blue"}}, "version": 1, "clientToken": "old"}),
    )
    .await;
    let (_, rejected) = d.answer(&["/update/rejected"]).await;
    assert_eq!(rejected["code"], 409);
    assert_eq!(rejected["clientToken"], "old");

    d.publish(&format!("{prefix}/delete"), Value::Null).await;
    let (_, deleted) = d.answer(&["/delete/accepted"]).await;
    assert_eq!(deleted["version"], 2);
    d.publish(&format!("{prefix}/get"), Value::Null).await;
    let (_, rejected) = d.answer(&["/get/rejected"]).await;
    assert_eq!(rejected["code"], 404);
}

#[tokio::test]
async fn named_shadows_are_separate_and_listed() {
    let h = harness(ShadowConfig::default()).await;
    let mut d = Device::connect(&h.broker, "pump").await;
    d.subscribe("$aws/things/pump/shadow/name/+/update/accepted")
        .await;
    for name in ["config", "alarms"] {
        d.publish(
            &format!("$aws/things/pump/shadow/name/{name}/update"),
            json!({"state": {"reported": {"name": name}}}),
        )
        .await;
        let (topic, accepted) = d.answer(&["/update/accepted"]).await;
        assert_eq!(
            topic,
            format!("$aws/things/pump/shadow/name/{name}/update/accepted")
        );
        assert_eq!(accepted["version"], 1);
    }
    h.shadows
        .update(
            classic("pump"),
            Bytes::from_static(br#"{"state":{"reported":{"x":1}}}"#),
        )
        .await
        .unwrap();
    let names = h.shadows.list_named("pump", None, 10).await.unwrap();
    assert_eq!(names, ["alarms", "config"], "classic shadow not listed");
    let got = h.shadows.get(named("pump", "config")).await.unwrap();
    let got: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(got["state"]["reported"]["name"], "config");
}

#[tokio::test]
async fn https_updates_publish_accepted_delta_and_documents() {
    let h = harness(ShadowConfig::default()).await;
    let mut app = Device::connect(&h.broker, "app").await;
    app.subscribe("$aws/things/fan/shadow/update/+").await;
    let body = h
        .shadows
        .update(
            classic("fan"),
            Bytes::from_static(br#"{"state":{"desired":{"speed":2}},"clientToken":"h"}"#),
        )
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["state"]["desired"]["speed"], 2);
    assert_eq!(body["clientToken"], "h");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (topic, _) = app
            .answer(&["/update/accepted", "/update/delta", "/update/documents"])
            .await;
        seen.push(topic.rsplit('/').next().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["accepted", "delta", "documents"]);

    let e = h.shadows.get(classic("nothing-here")).await.unwrap_err();
    assert_eq!(e.error.code, 404);
    let e = h
        .shadows
        .update(classic("fan"), Bytes::from_static(b"{not json"))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, 400);
}

#[tokio::test]
async fn updates_from_one_device_apply_in_order() {
    let h = harness(ShadowConfig::default()).await;
    let mut d = Device::connect(&h.broker, "counter").await;
    d.subscribe("$aws/things/counter/shadow/update/accepted")
        .await;
    // Within the in-flight limit, published back to back without waiting.
    for i in 1..=10 {
        d.publish(
            "$aws/things/counter/shadow/update",
            json!({"state": {"reported": {"n": i}}}),
        )
        .await;
    }
    for i in 1..=10 {
        let (_, accepted) = d.answer(&["/update/accepted"]).await;
        assert_eq!(accepted["state"]["reported"]["n"], i);
        assert_eq!(accepted["version"], i);
    }
}

#[tokio::test]
async fn a_full_queue_rejects_with_429() {
    let h = harness(ShadowConfig {
        max_queued: 0,
        ..ShadowConfig::default()
    })
    .await;
    let mut d = Device::connect(&h.broker, "busy").await;
    d.subscribe("$aws/things/busy/shadow/update/rejected").await;
    d.publish(
        "$aws/things/busy/shadow/update",
        json!({"state": {"reported": {"a": 1}}, "clientToken": "q"}),
    )
    .await;
    let (_, rejected) = d.answer(&["/update/rejected"]).await;
    assert_eq!(rejected["code"], 429);
    assert_eq!(rejected["clientToken"], "q");
}

#[tokio::test]
async fn a_recreated_shadow_continues_its_version_for_48_hours() {
    let h = harness(ShadowConfig::default()).await;
    let update = || Bytes::from_static(br#"{"state":{"reported":{"on":true}}}"#);
    let version =
        |body: Vec<u8>| serde_json::from_slice::<Value>(&body).unwrap()["version"].clone();
    h.shadows.update(classic("t"), update()).await.unwrap();
    h.shadows.update(classic("t"), update()).await.unwrap();
    let deleted = h.shadows.delete(classic("t")).await.unwrap();
    assert_eq!(version(deleted), 2);
    assert_eq!(
        h.shadows.delete(classic("t")).await.unwrap_err().error.code,
        404
    );
    assert_eq!(
        version(h.shadows.update(classic("t"), update()).await.unwrap()),
        3
    );

    // Forgotten after 48 hours: the tombstone is removed when next read.
    h.shadows.delete(classic("other")).await.unwrap_err();
    h.shadows.update(classic("gone"), update()).await.unwrap();
    h.shadows.delete(classic("gone")).await.unwrap();
    h.shadows.delete(classic("t")).await.unwrap();
    h.now.fetch_add(49 * 3600, Ordering::Relaxed);
    assert_eq!(
        h.shadows.get(classic("gone")).await.unwrap_err().error.code,
        404
    );
    h.store.flush().await.unwrap();
    assert_eq!(h.store.get_shadow("gone", "").await.unwrap(), None);
    assert_eq!(
        version(h.shadows.update(classic("t"), update()).await.unwrap()),
        1
    );
}

#[tokio::test]
async fn accepted_updates_survive_a_restart() {
    let h = harness(ShadowConfig::default()).await;
    h.shadows
        .update(
            named("door", "lock"),
            Bytes::from_static(br#"{"state":{"desired":{"locked":true}}}"#),
        )
        .await
        .unwrap();
    let Harness {
        broker, dir, now, ..
    } = h;
    broker.shutdown().await;
    drop(broker);
    let (_broker, shadows, _store) = start(&dir, ShadowConfig::default(), &now).await;
    let got: Value =
        serde_json::from_slice(&shadows.get(named("door", "lock")).await.unwrap()).unwrap();
    assert_eq!(got["state"]["desired"]["locked"], true);
    assert_eq!(got["state"]["delta"]["locked"], true);
    assert_eq!(got["version"], 1);
    assert!(SystemTime::now() > UNIX_EPOCH);
}

#[tokio::test]
async fn requests_queued_together_are_answered_each_in_order() {
    // Back-to-back requests of one shadow are applied as one batch when they queue up
    // behind a commit: each is still decided on the state its predecessors left.
    for max_cached in [0, 10] {
        let h = harness(ShadowConfig {
            max_cached,
            ..ShadowConfig::default()
        })
        .await;
        let mut d = Device::connect(&h.broker, "batch").await;
        d.subscribe("$aws/things/batch/shadow/update/accepted")
            .await;
        d.subscribe("$aws/things/batch/shadow/update/rejected")
            .await;
        let topic = "$aws/things/batch/shadow/update";
        d.publish(
            topic,
            json!({"state": {"reported": {"n": 1}}, "clientToken": "a"}),
        )
        .await;
        d.publish(
            topic,
            json!({"state": {"reported": {"n": 2}}, "version": 1, "clientToken": "b"}),
        )
        .await;
        d.publish(
            topic,
            json!({"state": {"reported": {"n": 3}}, "version": 1, "clientToken": "c"}),
        )
        .await;
        d.publish(topic, json!({"state": "not an object", "clientToken": "d"}))
            .await;
        d.publish(
            topic,
            json!({"state": {"reported": {"n": 5}}, "clientToken": "e"}),
        )
        .await;
        let mut answers = Vec::new();
        for _ in 0..5 {
            let (topic, body) = d.answer(&["/accepted", "/rejected"]).await;
            answers.push((
                topic.rsplit('/').next().unwrap().to_owned(),
                body["clientToken"].as_str().unwrap().to_owned(),
                body.get("version").or(body.get("code")).cloned().unwrap(),
            ));
        }
        let expected = [
            ("accepted", "a", json!(1)),
            ("accepted", "b", json!(2)),
            ("rejected", "c", json!(409)),
            ("rejected", "d", json!(400)),
            ("accepted", "e", json!(3)),
        ];
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(t, c, v)| (t.to_owned(), c.to_owned(), v))
            .collect();
        assert_eq!(answers, expected, "max_cached {max_cached}");
        let got: Value =
            serde_json::from_slice(&h.shadows.get(classic("batch")).await.unwrap()).unwrap();
        assert_eq!(got["state"]["reported"]["n"], 5);
        assert_eq!(got["version"], 3);
    }
}

#[tokio::test]
async fn requests_naming_an_invalid_shadow_are_refused_with_400() {
    let h = harness(ShadowConfig::default()).await;
    let mut d = Device::connect(&h.broker, "dev").await;
    d.subscribe("$aws/things/dev/shadow/name/+/update/rejected")
        .await;
    let long = "n".repeat(65);
    d.publish(
        &format!("$aws/things/dev/shadow/name/{long}/update"),
        json!({"state": {"reported": {"a": 1}}, "clientToken": "x"}),
    )
    .await;
    let (topic, rejected) = d.answer(&["/update/rejected"]).await;
    assert_eq!(
        topic,
        format!("$aws/things/dev/shadow/name/{long}/update/rejected")
    );
    assert_eq!(rejected["code"], 400);
    assert_eq!(rejected["clientToken"], "x");
    assert!(
        h.shadows
            .list_named("dev", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
