//! Durable state of the gateway: retained messages and persistent MQTT sessions.
//!
//! The broker keeps its working state in memory and uses the store as a write-ahead record it
//! reloads on start. Writes are submitted as operations, applied strictly in submission order by
//! one writer, and committed in groups (group commit): every operation that arrives while a
//! transaction is being written goes into the next one, so durability costs latency, not
//! throughput. [`Commit`] resolves once the operation is durable at the configured
//! [`Durability`].

use bytes::Bytes;

/// How durable a committed write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of the process (written to the database's log, no fsync).
    #[default]
    Process,
    /// Also survives power loss (fsync at every group commit).
    Fsync,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("the store's writer has stopped")]
    Closed,
    #[error("corrupt record in the store: {0}")]
    Corrupt(String),
}

/// A message as it is kept for later delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 PUBLISH properties, opaque to the store (the broker encodes them).
    pub properties: Bytes,
    /// Unix time in milliseconds after which the message must not be delivered.
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    pub message: StoredMessage,
    /// Unix time in milliseconds of the last change.
    pub modified_at_ms: u64,
}

/// A persistent session's own attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub client_id: String,
    /// MQTT protocol level of the connection that created it (3, 4 or 5).
    pub protocol: u8,
    /// Seconds the session outlives its connection; `u32::MAX` for never.
    pub expiry_interval: u32,
    /// Unix time in milliseconds when its last connection closed; `None` while connected.
    pub disconnected_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub client_id: String,
    pub filter: String,
    /// The SUBSCRIBE options byte as on the wire (QoS, no-local, retain-as-published,
    /// retain handling).
    pub options: u8,
    pub subscription_id: Option<u32>,
}

/// Where an outbound message of a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundState {
    /// Not yet sent on the current connection.
    Queued,
    /// PUBLISH sent with this packet id, waiting for PUBACK / PUBREC.
    Published { packet_id: u16 },
    /// PUBREC received and PUBREL sent (QoS 2), waiting for PUBCOMP.
    Released { packet_id: u16 },
}

/// An outbound message of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    pub client_id: String,
    /// Position in the session's queue; assigned by the broker, increasing.
    pub seq: u64,
    pub state: OutboundState,
    /// Subscription identifiers to send with it (MQTT 5).
    pub subscription_ids: Vec<u32>,
    pub message: StoredMessage,
}

/// One change to durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    PutRetained(RetainedMessage),
    DeleteRetained { topic: String },
    /// Creates or replaces a session's attributes.
    PutSession(SessionRecord),
    /// Deletes a session with its subscriptions, outbound messages and inbound QoS 2 state.
    DeleteSession { client_id: String },
    PutSubscription(SubscriptionRecord),
    DeleteSubscription { client_id: String, filter: String },
    /// Adds a message to a session's outbound queue.
    PutOutbound(OutboundRecord),
    /// Changes the state of an outbound message.
    SetOutboundState { client_id: String, seq: u64, state: OutboundState },
    /// Removes an outbound message (acknowledged, expired or dropped).
    DeleteOutbound { client_id: String, seq: u64 },
    /// Records an inbound QoS 2 packet id whose PUBREC was sent.
    PutInboundQos2 { client_id: String, packet_id: u16 },
    DeleteInboundQos2 { client_id: String, packet_id: u16 },
}

/// Everything known about one persistent session, as loaded at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSession {
    pub session: SessionRecord,
    pub subscriptions: Vec<SubscriptionRecord>,
    /// Ordered by `seq`.
    pub outbound: Vec<OutboundRecord>,
    pub inbound_qos2: Vec<u16>,
}

/// Resolves when the operations it was returned for are durable.
pub struct Commit {
    _private: (),
}

impl std::future::Future for Commit {
    type Output = Result<(), StoreError>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        todo!("store")
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    _private: (),
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and starts its writer.
    pub async fn open_sqlite(path: &std::path::Path, durability: Durability) -> Result<Store, StoreError> {
        let _ = (path, durability);
        todo!("store")
    }

    /// Queues `ops` to be written, in order, in the next group commit. The returned future
    /// may be dropped when the caller does not need to wait; the write still happens.
    pub fn submit(&self, ops: Vec<WriteOp>) -> Commit {
        let _ = ops;
        todo!("store")
    }

    /// Resolves once everything submitted before it is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        todo!("store")
    }

    pub async fn load_retained(&self) -> Result<Vec<RetainedMessage>, StoreError> {
        todo!("store")
    }

    pub async fn load_sessions(&self) -> Result<Vec<LoadedSession>, StoreError> {
        todo!("store")
    }

    /// Flushes and stops the writer.
    pub async fn close(&self) -> Result<(), StoreError> {
        todo!("store")
    }
}
