//! The Device Shadow service: answers the reserved MQTT topics and the HTTPS API, keeps
//! shadows durable in the store.
//!
//! Requests for one shadow run one at a time, in the order they arrived (an update published
//! twice in a row is applied in that order), by a worker that exists only while the shadow has
//! requests queued. Every answer that reports a change (`accepted`, `delta`, `documents`) is
//! published only after the change is durable, so nothing a client was told is lost in a crash.
//! Shadows of different things proceed in parallel, and their writes share group commits.
//!
//! Which topics an operation publishes, whichever way it arrived (MQTT or HTTPS):
//! - update: `update/accepted`, `update/delta` (when desired still differs from reported) and
//!   `update/documents`; over MQTT a refusal goes to `update/rejected`, over HTTPS it is the
//!   HTTP error only;
//! - delete: `delete/accepted` (MQTT refusals: `delete/rejected`);
//! - get: answers only the requester: `get/accepted` / `get/rejected` over MQTT, the body
//!   over HTTPS.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferrocore_broker::{Broker, PublishOrigin, TopicService};
use ferrocore_store::{ShadowRecord, Store, WriteOp};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::document::{self, Limits, RequestError, Shadow, ShadowError};
use crate::topic::{Operation, ShadowKey, parse_request_topic};

/// How long a deleted shadow's version is remembered: re-created sooner, it continues the
/// numbering (AWS: 48 hours).
pub const VERSION_MEMORY: Duration = Duration::from_secs(48 * 3600);

#[derive(Debug, Clone)]
pub struct ShadowConfig {
    pub limits: Limits,
    /// Longest shadow name (AWS: 64).
    pub max_shadow_name: usize,
    /// Requests one MQTT client may have in progress; more are rejected with 429 (AWS: 10).
    pub max_inflight_per_client: usize,
    /// Requests queued in all, beyond which new ones are rejected with 429: bounds memory
    /// when HTTPS callers publish to shadow topics faster than the store commits.
    pub max_queued: usize,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            limits: Limits::default(),
            max_shadow_name: 64,
            max_inflight_per_client: 10,
            max_queued: 10_000,
        }
    }
}

/// Where the service reads the time (epoch); tests move it.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Where a request's answer goes.
enum Reply {
    /// Published on the shadow's `accepted` / `rejected` topics; the client's in-flight count
    /// is released when done.
    Mqtt {
        client: Option<Arc<str>>,
    },
    Http(oneshot::Sender<Result<Vec<u8>, RequestError>>),
}

struct Job {
    op: Operation,
    payload: Bytes,
    reply: Reply,
}

pub struct ShadowService {
    me: Weak<ShadowService>,
    broker: Weak<Broker>,
    store: Store,
    config: ShadowConfig,
    clock: Clock,
    /// Requests waiting per shadow; a key is present exactly while its worker runs.
    queues: Mutex<HashMap<ShadowKey, VecDeque<Job>>>,
    queued: AtomicUsize,
    /// MQTT requests in progress per client id.
    inflight: Mutex<HashMap<Arc<str>, usize>>,
}

impl ShadowService {
    /// Starts the service and installs it as the broker's topic service.
    pub fn start(broker: &Arc<Broker>, store: Store, config: ShadowConfig) -> Arc<ShadowService> {
        ShadowService::start_with_clock(broker, store, config, Arc::new(SystemTime::now))
    }

    pub fn start_with_clock(
        broker: &Arc<Broker>,
        store: Store,
        config: ShadowConfig,
        clock: Clock,
    ) -> Arc<ShadowService> {
        let service = Arc::new_cyclic(|me| ShadowService {
            me: me.clone(),
            broker: Arc::downgrade(broker),
            store,
            config,
            clock,
            queues: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            inflight: Mutex::new(HashMap::new()),
        });
        broker.set_topic_service(service.clone());
        service
    }

    pub fn config(&self) -> &ShadowConfig {
        &self.config
    }

    /// The shadow document (HTTPS GetThingShadow).
    pub async fn get(&self, key: ShadowKey) -> Result<Vec<u8>, RequestError> {
        self.call(key, Operation::Get, Bytes::new()).await
    }

    /// Applies an update (HTTPS UpdateThingShadow); the answer is the accepted document.
    pub async fn update(&self, key: ShadowKey, payload: Bytes) -> Result<Vec<u8>, RequestError> {
        self.call(key, Operation::Update, payload).await
    }

    /// Deletes the shadow (HTTPS DeleteThingShadow); the answer is `{version, timestamp}`.
    pub async fn delete(&self, key: ShadowKey) -> Result<Vec<u8>, RequestError> {
        self.call(key, Operation::Delete, Bytes::new()).await
    }

    /// Names of the thing's named shadows in byte-wise order, strictly after `after`.
    pub async fn list_named(
        &self,
        thing: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, ShadowError> {
        self.store
            .list_shadow_names(thing, after, limit)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, thing, "listing named shadows failed");
                ShadowError::internal()
            })
    }

    /// The current time in epoch seconds.
    pub fn now_secs(&self) -> u64 {
        epoch_ms(&self.clock) / 1000
    }

    async fn call(
        &self,
        key: ShadowKey,
        op: Operation,
        payload: Bytes,
    ) -> Result<Vec<u8>, RequestError> {
        let (tx, rx) = oneshot::channel();
        if !self.enqueue(key, op, payload, Reply::Http(tx)) {
            return Err(RequestError {
                error: ShadowError::too_many_requests(),
                client_token: None,
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(RequestError {
                error: ShadowError::internal(),
                client_token: None,
            })
        })
    }

    /// Queues a request behind the shadow's earlier ones, starting its worker when idle.
    /// False when the service is at its queue limit.
    fn enqueue(&self, key: ShadowKey, op: Operation, payload: Bytes, reply: Reply) -> bool {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.config.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        let job = Job { op, payload, reply };
        let mut queues = self.queues.lock();
        if let Some(queue) = queues.get_mut(&key) {
            queue.push_back(job);
            return true;
        }
        queues.insert(key.clone(), VecDeque::from([job]));
        drop(queues);
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(async move { me.work(key).await });
        }
        true
    }

    /// Runs a shadow's requests until its queue is empty.
    async fn work(&self, key: ShadowKey) {
        loop {
            let job = {
                let mut queues = self.queues.lock();
                let Some(queue) = queues.get_mut(&key) else {
                    return;
                };
                match queue.pop_front() {
                    Some(job) => job,
                    None => {
                        queues.remove(&key);
                        return;
                    }
                }
            };
            self.queued.fetch_sub(1, Ordering::AcqRel);
            let result = self.run(&key, job.op, &job.payload).await;
            match job.reply {
                Reply::Http(tx) => {
                    let _ = tx.send(result);
                }
                Reply::Mqtt { client } => {
                    match result {
                        // Only a get's answer is left to publish: changes publish theirs.
                        Ok(answer) if job.op == Operation::Get => {
                            self.publish(&key, "get/accepted", answer);
                        }
                        Ok(_) => {}
                        Err(e) => self.reject(&key, job.op, &e),
                    }
                    if let Some(client) = client {
                        self.release(&client);
                    }
                }
            }
        }
    }

    /// Performs one request; what it publishes on success it has published when it returns.
    async fn run(
        &self,
        key: &ShadowKey,
        op: Operation,
        payload: &[u8],
    ) -> Result<Vec<u8>, RequestError> {
        match op {
            Operation::Get => {
                let client_token = document::request_client_token(payload);
                let answer = match self.load(key).await {
                    Ok(Current::Live(shadow)) => Ok(document::get_document(
                        &shadow,
                        client_token.as_deref(),
                        self.now_secs(),
                    )),
                    Ok(Current::Absent { .. }) => Err(not_found(key)),
                    Err(e) => Err(e),
                };
                with_token(answer, client_token)
            }
            Operation::Update => {
                let request = document::parse_update(payload, &self.config.limits)?;
                let client_token = request.client_token.clone();
                let answer = self.apply_update(key, &request).await;
                with_token(answer, client_token)
            }
            Operation::Delete => {
                let client_token = document::request_client_token(payload);
                let answer = self.apply_delete(key, client_token.as_deref()).await;
                with_token(answer, client_token)
            }
        }
    }

    async fn apply_update(
        &self,
        key: &ShadowKey,
        request: &document::UpdateRequest,
    ) -> Result<Vec<u8>, ShadowError> {
        let (current, absent_version) = match self.load(key).await? {
            Current::Live(shadow) => (Some(shadow), 0),
            Current::Absent { version } => (None, version),
        };
        let now_ms = epoch_ms(&self.clock);
        let outcome = document::apply_update(
            current.as_ref(),
            absent_version,
            request,
            now_ms / 1000,
            &self.config.limits,
        )?;
        self.save(
            key,
            outcome.shadow.version(),
            Some(outcome.shadow.to_bytes()),
            now_ms,
        )
        .await?;
        self.publish(key, "update/accepted", outcome.accepted.clone());
        if let Some(delta) = outcome.delta {
            self.publish(key, "update/delta", delta);
        }
        self.publish(key, "update/documents", outcome.documents);
        Ok(outcome.accepted)
    }

    async fn apply_delete(
        &self,
        key: &ShadowKey,
        client_token: Option<&str>,
    ) -> Result<Vec<u8>, ShadowError> {
        let Current::Live(shadow) = self.load(key).await? else {
            return Err(not_found(key));
        };
        let now_ms = epoch_ms(&self.clock);
        // The row stays as a tombstone with the version, which a re-created shadow continues.
        self.save(key, shadow.version(), None, now_ms).await?;
        let answer = document::delete_document(&shadow, client_token, now_ms / 1000);
        self.publish(key, "delete/accepted", answer.clone());
        Ok(answer)
    }

    /// The shadow as durably stored.
    async fn load(&self, key: &ShadowKey) -> Result<Current, ShadowError> {
        let record = self
            .store
            .get_shadow(&key.thing, key.stored_name())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, thing = %key.thing, "reading a shadow failed");
                ShadowError::internal()
            })?;
        let Some(record) = record else {
            return Ok(Current::Absent { version: 0 });
        };
        match &record.document {
            Some(bytes) => Shadow::from_bytes(bytes).map(Current::Live).map_err(|e| {
                tracing::error!(thing = %key.thing, shadow = key.stored_name(), error = %e, "unreadable shadow in the store");
                e
            }),
            None => {
                let deleted_for =
                    Duration::from_millis(epoch_ms(&self.clock).saturating_sub(record.updated_at_ms));
                if deleted_for < VERSION_MEMORY {
                    return Ok(Current::Absent {
                        version: record.version,
                    });
                }
                // Forgotten: the tombstone goes (a later write for this shadow is queued
                // behind this one, so it cannot be lost).
                drop(self.store.submit(vec![WriteOp::DeleteShadow {
                    thing_name: key.thing.clone(),
                    shadow_name: key.stored_name().to_owned(),
                }]));
                Ok(Current::Absent { version: 0 })
            }
        }
    }

    /// Writes the shadow (or its tombstone) and waits until it is durable.
    async fn save(
        &self,
        key: &ShadowKey,
        version: u64,
        document: Option<Vec<u8>>,
        now_ms: u64,
    ) -> Result<(), ShadowError> {
        let record = ShadowRecord {
            thing_name: key.thing.clone(),
            shadow_name: key.stored_name().to_owned(),
            version,
            document: document.map(Bytes::from),
            updated_at_ms: now_ms,
        };
        self.store
            .submit(vec![WriteOp::PutShadow(record)])
            .await
            .map_err(|e| {
                tracing::error!(error = %e, thing = %key.thing, "storing a shadow failed");
                ShadowError::internal()
            })
    }

    /// Publishes an answer on the shadow's topic `<prefix>/<suffix>`.
    fn publish(&self, key: &ShadowKey, suffix: &str, payload: Vec<u8>) {
        if let Some(broker) = self.broker.upgrade() {
            broker.publish_event(&format!("{}/{suffix}", key.topic_prefix()), payload);
        }
    }

    fn reject(&self, key: &ShadowKey, op: Operation, e: &RequestError) {
        let payload = e.error.to_json(e.client_token.as_deref(), self.now_secs());
        self.publish(key, &format!("{}/rejected", op.as_str()), payload);
    }

    /// Counts an MQTT request of `client`; false when it already has its maximum in progress.
    fn acquire(&self, client: &Arc<str>) -> bool {
        let mut inflight = self.inflight.lock();
        let n = inflight.entry(client.clone()).or_insert(0);
        if *n >= self.config.max_inflight_per_client {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, client: &Arc<str>) {
        let mut inflight = self.inflight.lock();
        if let Some(n) = inflight.get_mut(client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inflight.remove(client);
            }
        }
    }
}

impl TopicService for ShadowService {
    fn published(&self, topic: &str, payload: &Bytes, origin: &PublishOrigin) {
        let Some((key, op)) = parse_request_topic(topic, self.config.max_shadow_name) else {
            return;
        };
        let client = origin.client_id.clone();
        let refused = || RequestError {
            error: ShadowError::too_many_requests(),
            client_token: match op {
                Operation::Update => document::parse_update(payload, &self.config.limits)
                    .ok()
                    .and_then(|r| r.client_token),
                _ => document::request_client_token(payload),
            },
        };
        if let Some(c) = &client
            && !self.acquire(c)
        {
            self.reject(&key, op, &refused());
            return;
        }
        if !self.enqueue(
            key.clone(),
            op,
            payload.clone(),
            Reply::Mqtt {
                client: client.clone(),
            },
        ) {
            if let Some(c) = &client {
                self.release(c);
            }
            self.reject(&key, op, &refused());
        }
    }
}

enum Current {
    Live(Shadow),
    /// No shadow; a new one starts after `version`.
    Absent {
        version: u64,
    },
}

fn not_found(key: &ShadowKey) -> ShadowError {
    ShadowError::not_found(&key.thing, key.name.as_deref())
}

fn with_token(
    answer: Result<Vec<u8>, ShadowError>,
    client_token: Option<String>,
) -> Result<Vec<u8>, RequestError> {
    answer.map_err(|error| RequestError {
        error,
        client_token,
    })
}

fn epoch_ms(clock: &Clock) -> u64 {
    clock()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
