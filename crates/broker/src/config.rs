//! Broker settings and their defaults (AWS IoT Core's quotas where it has one).

use std::time::Duration;

/// Which behaviour to follow where AWS IoT Core departs from the MQTT specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    /// The MQTT specification: QoS 2, retained messages on wildcard subscriptions, SUBACK 0x80
    /// and an acknowledged but dropped PUBLISH on 3.1.1 policy denials.
    #[default]
    Mqtt,
    /// AWS IoT Core exactly: maximum QoS 1, retained messages only on exact-match filters,
    /// a PUBLISH or SUBSCRIBE denied by policy closes a 3.1.1 connection (MQTT 5 clients get
    /// reason code 0x87 in PUBACK / PUBREC / SUBACK, as on AWS), keep alive clamped to
    /// 30–1200 s, at most 8 topic aliases, and AWS's per-connection quotas ([`AWS_QUOTAS`]).
    Aws,
}

/// AWS IoT Core's per-connection quotas, enforced in [`Compat::Aws`] only (in the default mode
/// they would cap a benchmark, and the limits that keep the broker alive apply anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsQuotas {
    /// Beyond it a SUBSCRIBE's filter gets reason 0x97 (quota exceeded).
    pub subscriptions_per_connection: usize,
    /// Filters of one SUBSCRIBE beyond this many get 0x97.
    pub filters_per_subscribe: usize,
    /// Inbound PUBLISH packets per second; a faster client is read more slowly (delayed, as
    /// AWS delays excess traffic, never dropped).
    pub publishes_per_second: u32,
    /// Inbound bytes per second, paced the same way.
    pub inbound_bytes_per_second: u32,
    /// A CONNECT for a client id that connected less than this long ago is refused (0x9F).
    pub min_connect_interval: Duration,
}

/// AWS IoT Core's defaults (reference §10.2).
pub const AWS_QUOTAS: AwsQuotas = AwsQuotas {
    subscriptions_per_connection: 50,
    filters_per_subscribe: 8,
    publishes_per_second: 100,
    inbound_bytes_per_second: 512 * 1024,
    min_connect_interval: Duration::from_secs(1),
};

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub compat: Compat,
    /// Bytes in a client id.
    pub max_client_id_len: usize,
    /// Bytes in a PUBLISH payload.
    pub max_payload_size: usize,
    /// Bytes in any packet the broker accepts (fixed header included).
    pub max_packet_size: usize,
    pub topic_limits: ferrocore_mqtt::topic::TopicLimits,
    /// Session expiry for 3.1.1 persistent sessions, and the cap on MQTT 5's.
    pub default_session_expiry: Duration,
    pub max_session_expiry: Duration,
    /// QoS 1/2 messages in flight to one client at a time (also our MQTT 5 Receive Maximum).
    pub max_inflight: u16,
    /// Messages and bytes queued for one session (offline or slow); beyond them the oldest
    /// QoS 0 is dropped first, then new messages are refused.
    pub max_queued_messages: usize,
    pub max_queued_bytes: usize,
    /// Times a QoS 1/2 message is sent again on session resumption before it is dropped.
    pub max_redeliveries: u32,
    /// Topic aliases a client may use towards us (MQTT 5 Topic Alias Maximum).
    pub max_topic_aliases: u16,
    /// Server Keep Alive imposed when a client asks for none or for more (0: accept theirs).
    pub max_keep_alive: u16,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// The region and account of the resource ARNs policies are decided on
    /// (`arn:aws:iot:<region>:<account>:topic/...`).
    pub arns: ferrocore_policy::Arns,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            compat: Compat::Mqtt,
            max_client_id_len: 128,
            max_payload_size: 128 * 1024,
            max_packet_size: 128 * 1024 + 512,
            topic_limits: Default::default(),
            default_session_expiry: Duration::from_secs(3600),
            max_session_expiry: Duration::from_secs(7 * 24 * 3600),
            max_inflight: 100,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            max_redeliveries: 20,
            max_topic_aliases: 8,
            max_keep_alive: 0,
            connect_timeout: Duration::from_secs(10),
            arns: ferrocore_policy::Arns::new("us-east-1", "000000000000"),
        }
    }
}
