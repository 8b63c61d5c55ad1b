//! An application message as the broker routes it: shared by every delivery.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferrocore_mqtt::{Packet, ProtocolVersion, Publish, PublishProperties, QoS};
use ferrocore_store::StoredMessage;
use tokio::time::Instant;

/// One published message. Deliveries hold it by `Arc`; the payload is never copied.
#[derive(Debug)]
pub(crate) struct Message {
    pub topic: String,
    pub payload: Bytes,
    /// The QoS it was published with (deliveries use the minimum of this and the grant).
    pub qos: QoS,
    pub retain: bool,
    /// MQTT 5 properties as received, minus topic alias and subscription identifiers.
    pub properties: PublishProperties,
    pub expires_at: Option<Instant>,
    /// The session that published it, for no-local; `None` for wills, retained, the API.
    pub publisher: Option<u64>,
    /// Its QoS 0 PUBLISH as encoded once for every subscriber whose delivery needs nothing
    /// of its own (index 0: MQTT 3.1/3.1.1, 1: MQTT 5); fan-out then copies bytes.
    wire: [OnceLock<Bytes>; 2],
}

impl Message {
    pub fn from_publish(mut publish: Publish, publisher: Option<u64>) -> Message {
        publish.properties.topic_alias = None;
        publish.properties.subscription_identifiers.clear();
        let expires_at = publish
            .properties
            .message_expiry_interval
            .map(|secs| Instant::now() + Duration::from_secs(u64::from(secs)));
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: publish.properties,
            expires_at,
            publisher,
            wire: Default::default(),
        }
    }

    /// The QoS 0 PUBLISH of this message without retain flag, topic alias, subscription
    /// identifiers or expiry, encoded on first use; empty if it cannot be encoded.
    pub fn shared_qos0_encoding(&self, version: ProtocolVersion) -> &Bytes {
        self.wire[usize::from(version.is_v5())].get_or_init(|| {
            let properties = if version.is_v5() {
                self.properties.clone()
            } else {
                PublishProperties::default()
            };
            let packet = Packet::Publish(Publish {
                topic: self.topic.clone(),
                payload: self.payload.clone(),
                properties,
                ..Publish::default()
            });
            let mut buf = BytesMut::new();
            match ferrocore_mqtt::encode(&packet, version, &mut buf) {
                Ok(()) => buf.freeze(),
                Err(_) => Bytes::new(),
            }
        })
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The Message Expiry Interval to forward: what is left of it, at least one second.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now).as_secs_f64().ceil();
            (left as u32).max(1)
        })
    }

    pub fn to_stored(&self, now: Instant) -> StoredMessage {
        StoredMessage {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            qos: self.qos as u8,
            retain: self.retain,
            properties: encode_properties(&self.properties),
            expires_at_ms: self
                .expires_at
                .map(|at| unix_ms() + at.saturating_duration_since(now).as_millis() as u64),
        }
    }

    /// Rebuilds a message loaded from the store; `None` if its properties do not decode.
    pub fn from_stored(stored: StoredMessage, now: Instant) -> Option<Arc<Message>> {
        let properties = decode_properties(&stored.properties)?;
        let expires_at = stored.expires_at_ms.map(|ms| {
            let left = ms.saturating_sub(unix_ms());
            now + Duration::from_millis(left)
        });
        Some(Arc::new(Message {
            topic: stored.topic,
            payload: stored.payload,
            qos: QoS::from_u8(stored.qos)?,
            retain: stored.retain,
            properties,
            expires_at,
            publisher: None,
            wire: Default::default(),
        }))
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Properties are kept in the store in their MQTT 5 wire form (as the properties of a
/// PUBLISH to topic "p" with an empty payload), so one codec serves the wire and the disk.
fn encode_properties(properties: &PublishProperties) -> Bytes {
    if *properties == PublishProperties::default() {
        return Bytes::new();
    }
    let packet = Packet::Publish(Publish {
        topic: "p".into(),
        properties: properties.clone(),
        ..Publish::default()
    });
    let mut buf = BytesMut::new();
    match ferrocore_mqtt::encode(&packet, ProtocolVersion::V5, &mut buf) {
        Ok(()) => buf.freeze(),
        Err(_) => Bytes::new(),
    }
}

fn decode_properties(bytes: &Bytes) -> Option<PublishProperties> {
    if bytes.is_empty() {
        return Some(PublishProperties::default());
    }
    let mut buf = BytesMut::from(&bytes[..]);
    match ferrocore_mqtt::decode(&mut buf, Some(ProtocolVersion::V5), usize::MAX) {
        Ok(Some(Packet::Publish(p))) => Some(p.properties),
        _ => None,
    }
}
