//! What the HTTPS data plane (AWS `iot-data`, reference §10.3) asks of the broker: who a
//! caller is and what it may do, HTTP publishes, retained messages, and the state of client
//! connections (GetConnection, ListSubscriptions, DeleteConnection).

use std::net::{IpAddr, SocketAddr};
use std::ops::Bound;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use ferrocore_mqtt::{PublishProperties, QoS, topic};
use ferrocore_policy::{Action, ConnectContext, ResourceKind};
use ferrocore_store::Commit;
use tokio::time::Instant;

use crate::auth::{Authz, Identity, Principal, RequestBase};
#[cfg(doc)]
use crate::custom_auth::CustomAuthProtocol;
use crate::custom_auth::{self, CustomAuthAttempt, CustomAuthDenied};
use crate::message::Message;
use crate::session::{Kick, KickOrder};
use crate::{Broker, SERVICE_TOPIC_PREFIX};

/// A caller of the HTTPS data plane and what it may do.
#[derive(Clone)]
pub struct Caller(Arc<Principal>);

static ADMIN: LazyLock<Arc<Principal>> = LazyLock::new(|| {
    Principal::new(
        Identity::Admin,
        0,
        RequestBase::default(),
        ConnectContext::default(),
        Authz::unrestricted(),
        Arc::new(Kick::default()),
    )
});

impl Caller {
    /// SigV4 admin credentials: every action allowed.
    pub fn admin() -> Caller {
        Caller(ADMIN.clone())
    }

    /// The certificate id when a device certificate authenticated it.
    pub fn certificate_id(&self) -> Option<&str> {
        self.0.certificate_id().map(|id| &**id)
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Caller").field(&self.0.identity).finish()
    }
}

/// A message published over HTTPS (iot-data Publish).
#[derive(Debug, Clone)]
pub struct HttpPublish {
    pub topic: String,
    pub qos: QoS,
    pub retain: bool,
    pub payload: Bytes,
    /// MQTT 5 properties (topic aliases and subscription identifiers are ignored).
    pub properties: PublishProperties,
}

/// Why an HTTP publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum HttpPublishError {
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("the payload is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("QoS 2 is not supported; use 0 or 1")]
    QosNotSupported,
    #[error("not authorized by the caller's policies")]
    Forbidden,
}

/// A retained message (GetRetainedMessage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedView {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    /// Unix time in milliseconds when it was last set.
    pub last_modified_ms: u64,
    /// MQTT 5 user properties, in order.
    pub user_properties: Vec<(String, String)>,
}

/// A retained message as ListRetainedMessages lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedSummary {
    pub topic: String,
    pub payload_size: usize,
    pub qos: u8,
    pub last_modified_ms: u64,
}

/// The connection and session state of a client id (GetConnection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStatus {
    pub client_id: String,
    pub connected: bool,
    /// Whether the session ends with the connection (3.1.1 clean session, MQTT 5 session
    /// expiry 0).
    pub clean_session: bool,
    /// The client's address and the server's, while connected.
    pub source: Option<SocketAddr>,
    pub target: Option<SocketAddr>,
    /// The keep alive in force (the client's, or the server's where it imposed one).
    pub keep_alive_secs: Option<u16>,
    /// Unix ms when the current connection was accepted.
    pub connected_since_ms: Option<u64>,
    /// Unix ms when the last connection ended, while disconnected.
    pub disconnected_since_ms: Option<u64>,
    /// Why the last connection ended, while disconnected (AWS's `disconnectReason`); unknown
    /// for sessions restored at start.
    pub disconnect_reason: Option<&'static str>,
    /// Seconds a persistent session outlives its connection.
    pub session_expiry_secs: Option<u32>,
    /// The thing the client's policies are decided with.
    pub thing_name: Option<String>,
}

impl Broker {
    /// A device calling over HTTPS with its certificate (`der`: the end entity): `None` when
    /// the certificate may not be used (the [`crate::CertificateAuthorizer`] says `None`) or
    /// no authorizer is configured. Its policies are the certificate's, asked for without a
    /// client id (none exists over HTTPS, so `iot:ClientId` is not set and thing variables
    /// come only from an exclusive thing association), decided with `aws:SourceIp` =
    /// `source_ip`, `iot:DomainName` = `server_name` and the certificate's `iot:Certificate.*`.
    pub fn certificate_caller(
        &self,
        certificate_id: &str,
        der: &[u8],
        source_ip: IpAddr,
        server_name: Option<&str>,
    ) -> Option<Caller> {
        let auth = self.auth.certificates.as_ref()?;
        let grant = auth.authorize(certificate_id, "")?;
        let base = RequestBase {
            client_id: Arc::from(""),
            source_ip: Some(source_ip),
            domain_name: server_name.map(str::to_owned),
            certificate: Some(auth.certificate_context(certificate_id, der)),
        };
        let authz = Authz::new(grant.policies, base.request(grant.thing));
        Some(Caller(Principal::new(
            Identity::Certificate(certificate_id.into()),
            0,
            base,
            ConnectContext::default(),
            authz,
            Arc::new(Kick::default()),
        )))
    }

    /// An HTTPS caller decided by the custom authenticator (`attempt` with
    /// [`CustomAuthProtocol::Http`] and the request in `http`): the grant's policies, its
    /// principal id, claims and context, decided as for a certificate caller (no client id,
    /// `aws:SourceIp` = the peer, `iot:DomainName` = the server name). Refused when there
    /// is no custom authenticator, or within the connect timeout like a CONNECT.
    pub async fn custom_caller(
        &self,
        attempt: CustomAuthAttempt,
    ) -> Result<Caller, CustomAuthDenied> {
        let Some(authenticator) = self.auth.custom.clone() else {
            return Err(CustomAuthDenied::NoAuthorizer);
        };
        let base = RequestBase {
            client_id: Arc::from(""),
            source_ip: Some(attempt.peer.ip()),
            domain_name: attempt.server_name.clone(),
            certificate: None,
        };
        let deadline = Instant::now() + self.config.connect_timeout;
        let grant = custom_auth::authenticate_within(&*authenticator, attempt, deadline).await?;
        let authz = Authz::new(grant.policies.clone(), grant.request(&base));
        Ok(Caller(Principal::new(
            Identity::Custom(grant.principal_id.as_str().into()),
            0,
            base,
            ConnectContext::default(),
            authz,
            Arc::new(Kick::default()),
        )))
    }

    /// Decides `action` on the resource ARN `resource` (or `"*"`) for `caller`; a denial is
    /// counted and logged like those of MQTT clients.
    pub fn caller_allowed(&self, caller: &Caller, action: Action, resource: &str) -> bool {
        let authz = caller.0.authz();
        caller.0.permits(&authz, &self.denials, action, resource)
    }

    /// Publishes for an HTTPS caller: checks the topic against the broker's topic limits and
    /// the payload against its size limit, decides `iot:Publish` (and `iot:RetainPublish`
    /// when retained), hands `$aws/` topics to the [`crate::TopicService`], and routes like an
    /// MQTT PUBLISH (a retained empty payload deletes the retained message). Returns the
    /// commit that makes its durable effects durable: await it before answering a QoS 1 or
    /// retained publish.
    pub fn publish_http(
        &self,
        caller: &Caller,
        publish: HttpPublish,
    ) -> Result<Option<Commit>, HttpPublishError> {
        let config = &self.config;
        topic::validate_topic_name(&publish.topic, &config.topic_limits)
            .map_err(|e| HttpPublishError::InvalidTopic(e.to_string()))?;
        if publish.payload.len() > config.max_payload_size {
            return Err(HttpPublishError::PayloadTooLarge {
                limit: config.max_payload_size,
            });
        }
        if publish.qos == QoS::ExactlyOnce {
            return Err(HttpPublishError::QosNotSupported);
        }
        let mut arn = String::new();
        let mut allowed = |action| {
            caller.0.allowed(
                &self.denials,
                &config.arns,
                action,
                ResourceKind::Topic,
                &publish.topic,
                &mut arn,
            )
        };
        if !allowed(Action::Publish) || (publish.retain && !allowed(Action::RetainPublish)) {
            return Err(HttpPublishError::Forbidden);
        }
        if publish.topic.starts_with(SERVICE_TOPIC_PREFIX) {
            self.offer_to_topic_service(&publish.topic, &publish.payload, None);
        }
        let message = Message::from_publish(
            ferrocore_mqtt::Publish {
                qos: publish.qos,
                retain: publish.retain,
                topic: publish.topic,
                payload: publish.payload,
                properties: publish.properties,
                ..ferrocore_mqtt::Publish::default()
            },
            None,
        );
        // Slow subscribers do not hold an HTTP publisher back: there is no acknowledgement
        // to delay, only the answer.
        Ok(self.publish(Arc::new(message)).commit)
    }

    /// The retained message on `topic`, unless it expired.
    pub fn retained_message(&self, topic: &str) -> Option<RetainedView> {
        let retained = self.retained.read();
        let r = retained.get(topic)?;
        let m = &r.message;
        if m.is_expired(Instant::now()) {
            return None;
        }
        Some(RetainedView {
            topic: m.topic.clone(),
            payload: m.payload.clone(),
            qos: m.qos as u8,
            last_modified_ms: r.modified_at_ms,
            user_properties: m.properties.user_properties.clone(),
        })
    }

    /// Retained messages (not expired) in byte-wise topic order, strictly after `after`, at
    /// most `limit`.
    pub fn retained_summaries(&self, after: Option<&str>, limit: usize) -> Vec<RetainedSummary> {
        let now = Instant::now();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.retained
            .read()
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|(_, r)| !r.message.is_expired(now))
            .take(limit)
            .map(|(topic, r)| RetainedSummary {
                topic: topic.clone(),
                payload_size: r.message.payload.len(),
                qos: r.message.qos as u8,
                last_modified_ms: r.modified_at_ms,
            })
            .collect()
    }

    /// The connection and session state of `client_id`: `None` when it is neither connected
    /// nor has a persistent session.
    pub fn connection_status(&self, client_id: &str) -> Option<ConnectionStatus> {
        let session = self.sessions.lock().get(client_id).cloned()?;
        let state = session.state.lock();
        if state.ended {
            return None;
        }
        let attached = state.attached.as_ref();
        let last_disconnect = state.last_disconnect.filter(|_| attached.is_none());
        Some(ConnectionStatus {
            client_id: client_id.to_owned(),
            connected: attached.is_some(),
            clean_session: !state.persistent(),
            source: attached.map(|a| a.peer_addr),
            target: attached.map(|a| a.local_addr),
            keep_alive_secs: attached.map(|a| a.keep_alive),
            connected_since_ms: attached.map(|a| a.connected_at_ms),
            disconnected_since_ms: last_disconnect.map(|d| d.at_ms),
            disconnect_reason: last_disconnect.and_then(|d| d.reason).map(|r| r.as_str()),
            session_expiry_secs: state.persistent().then_some(state.expiry),
            thing_name: state.principal.authz().thing_name().map(str::to_owned),
        })
    }

    /// The subscriptions of `client_id` (topic filter as subscribed, granted QoS) in filter
    /// order: `None` when it is neither connected nor has a persistent session.
    pub fn subscriptions(&self, client_id: &str) -> Option<Vec<(String, u8)>> {
        let session = self.sessions.lock().get(client_id).cloned()?;
        let state = session.state.lock();
        if state.ended {
            return None;
        }
        let mut subscriptions: Vec<(String, u8)> = state
            .subscriptions
            .iter()
            .map(|(filter, (options, _))| (filter.clone(), options.qos as u8))
            .collect();
        subscriptions.sort_unstable();
        Some(subscriptions)
    }

    /// AWS DeleteConnection: disconnects `client_id` (MQTT 5: DISCONNECT 0x98, administrative
    /// action), publishing its will unless `prevent_will`; ends its session when
    /// `clean_session`, else keeps it. Its disconnect reason is `API_INITIATED_DISCONNECT`.
    /// `false` when it is neither connected nor has a session.
    pub fn delete_connection(
        &self,
        client_id: &str,
        clean_session: bool,
        prevent_will: bool,
    ) -> bool {
        let mut sessions = self.sessions.lock();
        let Some(session) = sessions.get(client_id).cloned() else {
            return false;
        };
        {
            let state = session.state.lock();
            if state.ended {
                return false;
            }
            if let Some(a) = &state.attached {
                // The connection closes itself; it ends the session on its way out.
                a.kick.fire_with(KickOrder {
                    code: ferrocore_mqtt::reason::ADMINISTRATIVE_ACTION,
                    will: !prevent_will,
                    end_session: clean_session,
                });
                return true;
            }
        }
        if clean_session {
            sessions.remove(client_id);
            drop(sessions);
            self.end_session(&session);
        }
        true
    }
}
