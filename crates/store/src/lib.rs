//! Durable state of the gateway: retained messages, persistent MQTT sessions, device shadows and
//! the records of the control-plane registry (things, groups, certificates, ...).
//!
//! The broker and the registry keep their working state in memory and use the store as a
//! write-ahead record they reload on start. Shadows are read one at a time instead
//! ([`Store::get_shadow`], [`Store::list_shadow_names`]): a fleet's shadows need not fit in
//! memory. Registry records are opaque documents keyed by
//! (kind, key): the registry serialises its own types, so the store does not depend on them and
//! a new kind of record needs no migration. Writes are submitted as operations, applied
//! strictly in submission order by one writer, and committed in groups (group commit): every
//! operation that arrives while a transaction is being written goes into the next one, so
//! durability costs latency, not throughput. [`Commit`] resolves once the operation is durable
//! at the configured [`Durability`].
//!
//! Failures: if a group's transaction fails, nothing of it is written and every [`Commit`] of
//! the group resolves with the error; the writer goes on with the next group (a transient
//! error such as a full disk does not stop the store), and [`Store::flush`] and
//! [`Store::close`] report that something submitted before them was not written.
//!
//! Rows of a client id without a session record (written before its `PutSession` or after its
//! `DeleteSession`) are kept but not loaded by [`Store::load_sessions`].
//!
//! Backends: SQLite ([`Store::open_sqlite`]). Every backend passes the suite in
//! `conformance` (feature `testing`); `cargo run --release -p ferrocore-store --features
//! testing --example store_bench` measures the group commit.

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

/// One durable record of the control-plane registry; the document is opaque to the store
/// (the registry serialises its own types, as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRecord {
    /// What the record is, e.g. "thing", "certificate" (at most 64 bytes; a rule for the
    /// caller, not checked by the store).
    pub kind: String,
    /// Unique within its kind.
    pub key: String,
    pub document: Bytes,
}

/// One device shadow as stored. The document is opaque to the store (the shadow service's JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowRecord {
    pub thing_name: String,
    /// "" for the classic (unnamed) shadow.
    pub shadow_name: String,
    pub version: u64,
    /// `None`: the shadow was deleted; the row keeps its version (AWS continues the numbering
    /// when a shadow is re-created soon after) and when it was deleted (`updated_at_ms`).
    pub document: Option<Bytes>,
    /// Unix time in milliseconds of the last change.
    pub updated_at_ms: u64,
}

/// One change to durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    PutRetained(RetainedMessage),
    DeleteRetained {
        topic: String,
    },
    /// Creates or replaces a session's attributes.
    PutSession(SessionRecord),
    /// Deletes a session with its subscriptions, outbound messages and inbound QoS 2 state.
    DeleteSession {
        client_id: String,
    },
    PutSubscription(SubscriptionRecord),
    DeleteSubscription {
        client_id: String,
        filter: String,
    },
    /// Adds a message to a session's outbound queue.
    PutOutbound(OutboundRecord),
    /// Changes the state of an outbound message.
    SetOutboundState {
        client_id: String,
        seq: u64,
        state: OutboundState,
    },
    /// Removes an outbound message (acknowledged, expired or dropped).
    DeleteOutbound {
        client_id: String,
        seq: u64,
    },
    /// Records an inbound QoS 2 packet id whose PUBREC was sent.
    PutInboundQos2 {
        client_id: String,
        packet_id: u16,
    },
    DeleteInboundQos2 {
        client_id: String,
        packet_id: u16,
    },
    /// Creates or replaces a registry record.
    PutRegistry(RegistryRecord),
    /// Deletes a registry record; deleting one that does not exist is not an error.
    DeleteRegistry {
        kind: String,
        key: String,
    },
    /// Creates or replaces a shadow, keyed by thing and shadow name; with `document: None` it
    /// is a tombstone (the shadow was deleted, its version is kept).
    PutShadow(ShadowRecord),
    /// Removes a shadow's row entirely, tombstone included; removing one that does not exist is
    /// not an error.
    DeleteShadow {
        thing_name: String,
        shadow_name: String,
    },
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
///
/// Dropping it does not cancel the write: the operations were handed to the writer when
/// [`Store::submit`] returned.
#[must_use = "a Commit only tells when the write is durable; drop it explicitly if that is not needed"]
pub struct Commit {
    state: CommitState,
}

enum CommitState {
    Pending(tokio::sync::oneshot::Receiver<Result<(), StoreError>>),
    Ready(Option<Result<(), StoreError>>),
}

impl Commit {
    fn ready(result: Result<(), StoreError>) -> Commit {
        Commit {
            state: CommitState::Ready(Some(result)),
        }
    }
}

impl std::future::Future for Commit {
    type Output = Result<(), StoreError>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        match &mut self.get_mut().state {
            CommitState::Pending(rx) => match std::pin::Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                // The writer stopped (closed) before it reached these operations.
                Poll::Ready(Err(_)) => Poll::Ready(Err(StoreError::Closed)),
                Poll::Pending => Poll::Pending,
            },
            CommitState::Ready(result) => {
                Poll::Ready(result.take().unwrap_or(Err(StoreError::Closed)))
            }
        }
    }
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit").finish_non_exhaustive()
    }
}

/// Counters of the writer, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Operations written by committed transactions.
    pub ops_committed: u64,
    /// Transactions (group commits) committed.
    pub groups_committed: u64,
    /// Transactions that failed (their operations' commits resolved with an error).
    pub groups_failed: u64,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    queue: tokio::sync::mpsc::UnboundedSender<writer::Msg>,
    closed: std::sync::atomic::AtomicBool,
    stats: std::sync::Arc<writer::Stats>,
    reader: Reader,
}

enum Reader {
    Sqlite(sqlx::SqlitePool),
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and starts its writer.
    pub async fn open_sqlite(
        path: &std::path::Path,
        durability: Durability,
    ) -> Result<Store, StoreError> {
        let (backend, pool) = sqlite::open(path, durability).await?;
        Ok(Store::start(backend, Reader::Sqlite(pool)))
    }

    fn start<B: writer::Backend>(backend: B, reader: Reader) -> Store {
        let (queue, rx) = tokio::sync::mpsc::unbounded_channel();
        let stats = std::sync::Arc::new(writer::Stats::default());
        tokio::spawn(writer::run(backend, rx, stats.clone()));
        Store {
            inner: std::sync::Arc::new(Inner {
                queue,
                closed: std::sync::atomic::AtomicBool::new(false),
                stats,
                reader,
            }),
        }
    }

    /// Queues `ops` to be written, in order, in the next group commit. The returned future
    /// may be dropped when the caller does not need to wait; the write still happens.
    pub fn submit(&self, ops: Vec<WriteOp>) -> Commit {
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Commit::ready(Err(StoreError::Closed));
        }
        let (done, rx) = tokio::sync::oneshot::channel();
        match self.inner.queue.send(writer::Msg::Submit { ops, done }) {
            Ok(()) => Commit {
                state: CommitState::Pending(rx),
            },
            Err(_) => Commit::ready(Err(StoreError::Closed)),
        }
    }

    /// Resolves once everything submitted before it is durable.
    ///
    /// Returns an error if any operation submitted before it (since the store was opened)
    /// failed to be written: such operations are never retried, so they are not durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (done, rx) = tokio::sync::oneshot::channel();
        self.inner
            .queue
            .send(writer::Msg::Flush { done })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn load_retained(&self) -> Result<Vec<RetainedMessage>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(pool) => sqlite::load_retained(pool).await,
        }
        .map_err(closed_pool)
    }

    pub async fn load_sessions(&self) -> Result<Vec<LoadedSession>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(pool) => sqlite::load_sessions(pool).await,
        }
        .map_err(closed_pool)
    }

    /// Every registry record, ordered by kind, then key.
    ///
    /// The order is byte-wise (Rust's `str` order), whatever the database's collation: the
    /// records are sorted here after loading, so every backend returns the same order.
    pub async fn load_registry(&self) -> Result<Vec<RegistryRecord>, StoreError> {
        let mut records = match &self.inner.reader {
            Reader::Sqlite(pool) => sqlite::load_registry(pool).await,
        }
        .map_err(closed_pool)?;
        // Already in this order from SQLite (binary collation); PostgreSQL's default
        // collation may order text by locale. Keys are unique, so unstable is exact.
        records.sort_unstable_by(|a, b| (&a.kind, &a.key).cmp(&(&b.kind, &b.key)));
        Ok(records)
    }

    /// The shadow `shadow_name` ("" for the classic one) of `thing_name`, tombstones included.
    ///
    /// Reads committed state only: it sees every write whose [`Commit`] resolved before the
    /// call, and nothing still queued.
    pub async fn get_shadow(
        &self,
        thing_name: &str,
        shadow_name: &str,
    ) -> Result<Option<ShadowRecord>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(pool) => sqlite::get_shadow(pool, thing_name, shadow_name).await,
        }
        .map_err(closed_pool)
    }

    /// Names of the live named shadows of `thing_name` (neither the classic shadow nor
    /// tombstones) in byte-wise order (Rust's `str` order), those strictly after `after` when
    /// given, at most `limit` of them. Reads committed state only, like [`Store::get_shadow`].
    ///
    /// The order, the `after` comparison and the limit are applied by the database (paging
    /// cannot be sorted afterwards): the name columns are byte-wise text in every dialect.
    pub async fn list_shadow_names(
        &self,
        thing_name: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        // "" is the classic shadow's name and below every other, so "after it" is "named".
        let after = after.unwrap_or("");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match &self.inner.reader {
            Reader::Sqlite(pool) => sqlite::list_shadow_names(pool, thing_name, after, limit).await,
        }
        .map_err(closed_pool)
    }

    /// Flushes and stops the writer.
    ///
    /// Everything submitted before is written first; later submissions resolve with
    /// [`StoreError::Closed`]. Closing an already closed store succeeds.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        let (done, rx) = tokio::sync::oneshot::channel();
        let result = match self.inner.queue.send(writer::Msg::Close { done }) {
            // The writer dropping `done` means another close stopped it first.
            Ok(()) => rx.await.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        match &self.inner.reader {
            Reader::Sqlite(pool) => pool.close().await,
        }
        result
    }

    /// Counters of the writer since the store was opened.
    pub fn stats(&self) -> StoreStats {
        self.inner.stats.snapshot()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn closed_pool(e: StoreError) -> StoreError {
    match e {
        StoreError::Database(sqlx::Error::PoolClosed) => StoreError::Closed,
        e => e,
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod plan;
mod schema;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;
mod writer;
