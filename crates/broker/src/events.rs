//! AWS IoT Core's lifecycle events (reference §8), always on: presence
//! (`$aws/events/presence/{connected,disconnected}/<clientId>`) and subscriptions
//! (`$aws/events/subscriptions/{subscribed,unsubscribed}/<clientId>`), published as QoS 1,
//! not retained, to whoever may subscribe to and receive them. Clients whose id contains `+`
//! or `#` get none, as on AWS; refused CONNECTs get none (they never connected).
//!
//! `principalIdentifier` is the certificate id for device certificates and
//! `anonymous:<listener name>` for clients of an anonymous listener. `sessionIdentifier` is a
//! random UUID per connection. `versionNumber` is shared by a connection's connected and
//! disconnected events and grows per client id (with gaps); it starts again from 0 once the
//! client id has been offline for an hour, as AWS's does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::auth::{Identity, Principal};
use crate::message::unix_ms;

/// Why a connection ended, as AWS names it in `disconnectReason` (lifecycle events and
/// GetConnection).
///
/// | reason | when |
/// |---|---|
/// | `CLIENT_INITIATED_DISCONNECT` | the client sent DISCONNECT |
/// | `CONNECTION_LOST` | the stream ended or failed without a DISCONNECT (a WebSocket close frame included: the WebSocket bridge ends the stream alike for both) |
/// | `MQTT_KEEP_ALIVE_TIMEOUT` | nothing arrived within 1.5 keep-alive periods |
/// | `CLIENT_ERROR` | a protocol error: malformed or oversize packet, second CONNECT, invalid topic, … |
/// | `DUPLICATE_CLIENTID` | a new connection with the same client id took the session over |
/// | `AUTH_ERROR` | the certificate was revoked or deactivated, or the policies stopped allowing `iot:Connect`, while connected |
/// | `FORBIDDEN_ACCESS` | `--compat aws`: a 3.1.1 PUBLISH or SUBSCRIBE the policies deny closes the connection |
/// | `THROTTLED` | more unacknowledged inbound QoS 1/2 messages than the receive maximum (AWS's quota of 100 in flight) |
/// | `SERVER_INITIATED_DISCONNECT` | the server shuts down |
/// | `SERVER_ERROR` | a durable write failed |
/// | `API_INITIATED_DISCONNECT` | the DeleteConnection API ([`crate::Broker::delete_connection`]) |
/// | `CUSTOMAUTH_TTL_EXPIRATION` | a custom authorizer's `disconnectAfterInSeconds` ran out (MQTT 5: DISCONNECT 0xA0, Maximum connect time) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisconnectReason {
    ClientInitiated,
    ConnectionLost,
    KeepAliveTimeout,
    ClientError,
    DuplicateClientId,
    AuthError,
    ForbiddenAccess,
    Throttled,
    ServerInitiated,
    ServerError,
    ApiInitiated,
    CustomAuthTtlExpiration,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientInitiated => "CLIENT_INITIATED_DISCONNECT",
            DisconnectReason::ConnectionLost => "CONNECTION_LOST",
            DisconnectReason::KeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            DisconnectReason::ClientError => "CLIENT_ERROR",
            DisconnectReason::DuplicateClientId => "DUPLICATE_CLIENTID",
            DisconnectReason::AuthError => "AUTH_ERROR",
            DisconnectReason::ForbiddenAccess => "FORBIDDEN_ACCESS",
            DisconnectReason::Throttled => "THROTTLED",
            DisconnectReason::ServerInitiated => "SERVER_INITIATED_DISCONNECT",
            DisconnectReason::ServerError => "SERVER_ERROR",
            DisconnectReason::ApiInitiated => "API_INITIATED_DISCONNECT",
            DisconnectReason::CustomAuthTtlExpiration => "CUSTOMAUTH_TTL_EXPIRATION",
        }
    }

    /// Why a connection the server closed on request (a [`crate::session::Kick`]) ended,
    /// from the DISCONNECT reason code of the request.
    pub fn of_kick(code: u8) -> DisconnectReason {
        use ferrocore_mqtt::reason;
        match code {
            reason::SESSION_TAKEN_OVER => DisconnectReason::DuplicateClientId,
            reason::NOT_AUTHORIZED => DisconnectReason::AuthError,
            reason::ADMINISTRATIVE_ACTION => DisconnectReason::ApiInitiated,
            // Only custom authorizers' lifetimes close connections with it.
            reason::MAXIMUM_CONNECT_TIME => DisconnectReason::CustomAuthTtlExpiration,
            _ => DisconnectReason::ServerInitiated,
        }
    }
}

/// A lifecycle event to publish: topic and JSON payload.
pub(crate) struct Announcement {
    pub topic: String,
    pub payload: String,
}

/// What a connection's lifecycle events say about it.
pub(crate) struct Presence {
    client_id: Arc<str>,
    session_identifier: String,
    principal_identifier: String,
    version: u64,
}

impl Presence {
    /// The presence of a connection that was just accepted (its version number taken from
    /// `versions`); `None` for client ids that get no lifecycle events.
    pub fn start(
        versions: &PresenceVersions,
        client_id: &Arc<str>,
        principal: &Principal,
        session_identifier: String,
    ) -> Option<Presence> {
        if client_id.contains(['+', '#']) {
            return None;
        }
        let principal_identifier = match &principal.identity {
            Identity::Certificate(id) | Identity::Custom(id) => id.to_string(),
            Identity::Anonymous(listener) => format!("anonymous:{listener}"),
            Identity::Admin | Identity::Nobody => String::new(),
        };
        Some(Presence {
            client_id: client_id.clone(),
            session_identifier,
            principal_identifier,
            version: versions.connected(client_id, Instant::now()),
        })
    }

    pub fn connected(&self, ip: IpAddr) -> Announcement {
        let mut payload = self.head("connected");
        payload.insert("ipAddress".into(), ip.to_canonical().to_string().into());
        payload.insert("versionNumber".into(), self.version.into());
        self.announce("presence/connected", payload)
    }

    /// The connection ended (its version number is released in `versions`); `thing` is the
    /// thing its policies were decided with.
    pub fn disconnected(
        &self,
        versions: &PresenceVersions,
        reason: DisconnectReason,
        thing: Option<&str>,
    ) -> Announcement {
        versions.disconnected(&self.client_id, Instant::now());
        let mut payload = self.head("disconnected");
        payload.insert(
            "clientInitiatedDisconnect".into(),
            (reason == DisconnectReason::ClientInitiated).into(),
        );
        payload.insert("disconnectReason".into(), reason.as_str().into());
        payload.insert("versionNumber".into(), self.version.into());
        if let Some(thing) = thing {
            payload.insert("thingName".into(), thing.into());
        }
        self.announce("presence/disconnected", payload)
    }

    /// `topics` were subscribed (granted) or unsubscribed.
    pub fn subscriptions(&self, subscribed: bool, topics: &[&str]) -> Announcement {
        let kind = if subscribed {
            "subscribed"
        } else {
            "unsubscribed"
        };
        let mut payload = self.head(kind);
        payload.insert("topics".into(), topics.into());
        self.announce(&format!("subscriptions/{kind}"), payload)
    }

    /// The fields every event has.
    fn head(&self, event_type: &str) -> Map<String, Value> {
        let mut payload = Map::new();
        payload.insert("clientId".into(), (*self.client_id).into());
        payload.insert("timestamp".into(), unix_ms().into());
        payload.insert("eventType".into(), event_type.into());
        payload.insert(
            "sessionIdentifier".into(),
            self.session_identifier.as_str().into(),
        );
        payload.insert(
            "principalIdentifier".into(),
            self.principal_identifier.as_str().into(),
        );
        payload
    }

    fn announce(&self, kind: &str, payload: Map<String, Value>) -> Announcement {
        Announcement {
            topic: format!("$aws/events/{kind}/{}", self.client_id),
            payload: Value::Object(payload).to_string(),
        }
    }
}

/// How long a client id may stay offline before its version numbers start again.
const VERSIONS_KEPT_OFFLINE: Duration = Duration::from_secs(3600);

/// Entries [`PresenceVersions`] holds before it first looks for ones to drop.
const VERSIONS_PRUNE_FLOOR: usize = 1024;

/// The lifecycle version number of each client id that is connected or was within the last
/// hour. Bounded by that: entries offline longer are dropped when the map has grown to twice
/// its size after the last pruning (amortized constant time per connect).
pub(crate) struct PresenceVersions {
    inner: Mutex<VersionMap>,
}

struct VersionMap {
    by_client: HashMap<Arc<str>, Versioned>,
    prune_at: usize,
}

struct Versioned {
    version: u64,
    /// Open connections with this client id (a takeover briefly makes two).
    connections: u32,
    offline_since: Option<Instant>,
}

impl Versioned {
    fn forgotten(&self, now: Instant) -> bool {
        self.offline_since
            .is_some_and(|at| now.saturating_duration_since(at) >= VERSIONS_KEPT_OFFLINE)
    }
}

impl Default for PresenceVersions {
    fn default() -> Self {
        PresenceVersions {
            inner: Mutex::new(VersionMap {
                by_client: HashMap::new(),
                prune_at: VERSIONS_PRUNE_FLOOR,
            }),
        }
    }
}

impl PresenceVersions {
    /// A connection of `client_id` was accepted: its version number.
    pub fn connected(&self, client_id: &Arc<str>, now: Instant) -> u64 {
        let mut map = self.inner.lock();
        if map.by_client.len() >= map.prune_at {
            map.by_client.retain(|_, v| !v.forgotten(now));
            map.prune_at = (map.by_client.len() * 2).max(VERSIONS_PRUNE_FLOOR);
        }
        match map.by_client.get_mut(client_id) {
            Some(v) if !v.forgotten(now) => {
                v.version += 1;
                v.connections += 1;
                v.offline_since = None;
                v.version
            }
            _ => {
                map.by_client.insert(
                    client_id.clone(),
                    Versioned {
                        version: 0,
                        connections: 1,
                        offline_since: None,
                    },
                );
                0
            }
        }
    }

    /// A connection of `client_id` ended.
    pub fn disconnected(&self, client_id: &str, now: Instant) {
        if let Some(v) = self.inner.lock().by_client.get_mut(client_id) {
            v.connections = v.connections.saturating_sub(1);
            if v.connections == 0 {
                v.offline_since = Some(now);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().by_client.len()
    }
}

/// A random (version 4) UUID in its usual text form.
pub(crate) fn random_uuid() -> String {
    let mut b: u128 = rand::random();
    b = (b & !(0xF << 76)) | (0x4 << 76);
    b = (b & !(0x3 << 62)) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        b >> 96,
        (b >> 80) & 0xFFFF,
        (b >> 64) & 0xFFFF,
        (b >> 48) & 0xFFFF,
        b & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let id = random_uuid();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
        assert_ne!(random_uuid(), id);
    }

    #[test]
    fn versions_grow_per_client_id_and_start_again_after_an_hour_offline() {
        let v = PresenceVersions::default();
        let t0 = Instant::now();
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        assert_eq!(v.connected(&a, t0), 0);
        assert_eq!(v.connected(&b, t0), 0);
        v.disconnected(&a, t0);
        assert_eq!(v.connected(&a, t0 + Duration::from_secs(60)), 1);
        // A takeover: two connections, then the old one ends; still online.
        assert_eq!(v.connected(&a, t0 + Duration::from_secs(61)), 2);
        v.disconnected(&a, t0 + Duration::from_secs(62));
        assert_eq!(v.connected(&a, t0 + Duration::from_secs(7200)), 3);
        v.disconnected(&a, t0 + Duration::from_secs(7200));
        v.disconnected(&a, t0 + Duration::from_secs(7200));
        assert_eq!(v.connected(&a, t0 + Duration::from_secs(7200 + 3600)), 0);
    }

    #[test]
    fn versions_of_long_offline_client_ids_are_dropped() {
        let v = PresenceVersions::default();
        let t0 = Instant::now();
        for i in 0..5000 {
            let id: Arc<str> = format!("c{i}").into();
            v.connected(&id, t0);
            v.disconnected(&id, t0);
        }
        assert!(v.len() >= 5000, "kept while offline less than an hour");
        let later = t0 + VERSIONS_KEPT_OFFLINE;
        for i in 0..5000 {
            let id: Arc<str> = format!("d{i}").into();
            v.connected(&id, later);
        }
        assert!(v.len() < 10_000, "the c* ids were dropped: {}", v.len());
        assert!(v.len() >= 5000, "online ones are kept");
    }
}
