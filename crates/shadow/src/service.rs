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
    /// Shadows kept in memory after use, so that the next request needs no store read.
    pub max_cached: usize,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            limits: Limits::default(),
            max_shadow_name: 64,
            max_inflight_per_client: 10,
            max_queued: 10_000,
            max_cached: 10_000,
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

/// A request applied in memory: its answer, and what it publishes once it is durable.
struct Done {
    body: Vec<u8>,
    /// (topic suffix, payload), in order.
    publish: Vec<(&'static str, Vec<u8>)>,
}

/// Requests of one shadow applied and saved together at most.
const MAX_BATCH: usize = 64;

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
    /// Durable state of recently used shadows. A shadow's entry is taken out while its
    /// worker runs and put back after each durable batch, so it never holds what the store
    /// does not (one node; several nodes sharing a store will need invalidation).
    cache: Mutex<HashMap<ShadowKey, Current>>,
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
            cache: Mutex::new(HashMap::new()),
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

    /// Runs a shadow's requests until its queue is empty, in batches: the requests waiting
    /// are applied in order to the state in memory, saved with one write, and answered once
    /// that write is durable.
    async fn work(&self, key: ShadowKey) {
        loop {
            let jobs: Vec<Job> = {
                let mut queues = self.queues.lock();
                let Some(queue) = queues.get_mut(&key) else {
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&key);
                    return;
                }
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            self.queued.fetch_sub(jobs.len(), Ordering::AcqRel);
            let results = self.run_batch(&key, &jobs).await;
            for (job, result) in jobs.into_iter().zip(results) {
                self.answer(&key, job, result);
            }
        }
    }

    async fn run_batch(&self, key: &ShadowKey, jobs: &[Job]) -> Vec<Result<Done, RequestError>> {
        let failed = |error: &ShadowError| -> Vec<Result<Done, RequestError>> {
            jobs.iter()
                .map(|j| {
                    Err(RequestError {
                        error: error.clone(),
                        client_token: document::request_client_token(&j.payload),
                    })
                })
                .collect()
        };
        let mut current = match self.current(key).await {
            Ok(current) => current,
            Err(e) => return failed(&e),
        };
        let now_ms = epoch_ms(&self.clock);
        let mut changed = false;
        let results: Vec<_> = jobs
            .iter()
            .map(|j| {
                let result = self.step(key, &mut current, j.op, &j.payload, now_ms);
                changed |= result.is_ok() && j.op != Operation::Get;
                result
            })
            .collect();
        if changed && let Err(e) = self.save(key, &current, now_ms).await {
            // Nothing of the batch is done; memory may hold what the store does not.
            return failed(&e);
        }
        self.remember(key.clone(), current);
        results
    }

    /// Applies one request to the shadow's state in memory.
    fn step(
        &self,
        key: &ShadowKey,
        current: &mut Current,
        op: Operation,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Done, RequestError> {
        let limits = &self.config.limits;
        let now = now_ms / 1000;
        match op {
            Operation::Get => {
                let client_token = document::request_client_token(payload);
                match current {
                    Current::Live(shadow) => Ok(Done {
                        body: document::get_document(shadow, client_token.as_deref(), now),
                        publish: Vec::new(),
                    }),
                    Current::Deleted { .. } | Current::Absent => Err(RequestError {
                        error: not_found(key),
                        client_token,
                    }),
                }
            }
            Operation::Update => {
                let request = document::parse_update(payload, limits)?;
                let (live, absent_version) = match &*current {
                    Current::Live(shadow) => (Some(shadow), 0),
                    Current::Deleted { version, .. } => (None, *version),
                    Current::Absent => (None, 0),
                };
                let outcome = document::apply_update(live, absent_version, &request, now, limits)
                    .map_err(|error| RequestError {
                    error,
                    client_token: request.client_token.clone(),
                })?;
                *current = Current::Live(outcome.shadow);
                let mut publish = vec![("update/accepted", outcome.accepted.clone())];
                if let Some(delta) = outcome.delta {
                    publish.push(("update/delta", delta));
                }
                publish.push(("update/documents", outcome.documents));
                Ok(Done {
                    body: outcome.accepted,
                    publish,
                })
            }
            Operation::Delete => {
                let client_token = document::request_client_token(payload);
                let Current::Live(shadow) = &*current else {
                    return Err(RequestError {
                        error: not_found(key),
                        client_token,
                    });
                };
                let body = document::delete_document(shadow, client_token.as_deref(), now);
                // The tombstone keeps the version, which a re-created shadow continues.
                *current = Current::Deleted {
                    version: shadow.version(),
                    at_ms: now_ms,
                };
                Ok(Done {
                    body: body.clone(),
                    publish: vec![("delete/accepted", body)],
                })
            }
        }
    }

    /// Publishes what a done request publishes, then answers its caller.
    fn answer(&self, key: &ShadowKey, job: Job, result: Result<Done, RequestError>) {
        // The request stops counting before its answer goes out: a client that sends its
        // next request on reading the answer must find the room free.
        if let Reply::Mqtt {
            client: Some(client),
        } = &job.reply
        {
            self.release(client);
        }
        let result = result.map(|done| {
            for (suffix, payload) in done.publish {
                self.publish(key, suffix, payload);
            }
            done.body
        });
        match job.reply {
            Reply::Http(tx) => {
                let _ = tx.send(result);
            }
            Reply::Mqtt { .. } => match result {
                // A get answers on MQTT only when asked on MQTT.
                Ok(body) if job.op == Operation::Get => {
                    self.publish(key, "get/accepted", body);
                }
                Ok(_) => {}
                Err(e) => self.reject(key, job.op, &e),
            },
        }
    }

    /// The shadow's state: from memory when this node wrote or read it last (its worker is
    /// the only writer), else from the store.
    async fn current(&self, key: &ShadowKey) -> Result<Current, ShadowError> {
        let cached = self.cache.lock().remove(key);
        let current = match cached {
            Some(current) => current,
            None => self.load(key).await?,
        };
        let now_ms = epoch_ms(&self.clock);
        Ok(match current {
            Current::Deleted { at_ms, .. }
                if Duration::from_millis(now_ms.saturating_sub(at_ms)) >= VERSION_MEMORY =>
            {
                // Forgotten: the tombstone goes (a later write for this shadow is queued
                // behind this one, so it cannot be lost).
                drop(self.store.submit(vec![WriteOp::DeleteShadow {
                    thing_name: key.thing.clone(),
                    shadow_name: key.stored_name().to_owned(),
                }]));
                Current::Absent
            }
            other => other,
        })
    }

    /// Keeps a shadow's durable state in memory, forgetting another one when full.
    fn remember(&self, key: ShadowKey, current: Current) {
        let mut cache = self.cache.lock();
        if cache.len() >= self.config.max_cached
            && let Some(other) = cache.keys().next().cloned()
        {
            cache.remove(&other);
        }
        if self.config.max_cached > 0 {
            cache.insert(key, current);
        }
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
            return Ok(Current::Absent);
        };
        match &record.document {
            Some(bytes) => Shadow::from_bytes(bytes).map(Current::Live).map_err(|e| {
                tracing::error!(thing = %key.thing, shadow = key.stored_name(), error = %e, "unreadable shadow in the store");
                e
            }),
            None => Ok(Current::Deleted {
                version: record.version,
                at_ms: record.updated_at_ms,
            }),
        }
    }

    /// Writes the shadow (or its tombstone) and waits until it is durable.
    async fn save(
        &self,
        key: &ShadowKey,
        current: &Current,
        now_ms: u64,
    ) -> Result<(), ShadowError> {
        let (version, document, updated_at_ms) = match current {
            Current::Live(shadow) => (
                shadow.version(),
                Some(Bytes::from(shadow.to_bytes())),
                now_ms,
            ),
            Current::Deleted { version, at_ms } => (*version, None, *at_ms),
            // Never saved: a batch that changed nothing writes nothing.
            Current::Absent => return Ok(()),
        };
        let record = ShadowRecord {
            thing_name: key.thing.clone(),
            shadow_name: key.stored_name().to_owned(),
            version,
            document,
            updated_at_ms,
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
        let (key, op) = match parse_request_topic(topic, self.config.max_shadow_name) {
            None => return,
            Some(Ok(request)) => request,
            Some(Err(invalid)) => {
                let client_token = document::request_client_token(payload);
                let answer = ShadowError::new(400, invalid.message)
                    .to_json(client_token.as_deref(), self.now_secs());
                if let Some(broker) = self.broker.upgrade() {
                    broker.publish_event(&format!("{topic}/rejected"), answer);
                }
                return;
            }
        };
        let client = origin.client_id.clone();
        let refused = || RequestError {
            error: ShadowError::too_many_requests(),
            client_token: document::request_client_token(payload),
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
    /// Deleted at `at_ms` (epoch): re-created within [`VERSION_MEMORY`], it continues after
    /// `version`.
    Deleted {
        version: u64,
        at_ms: u64,
    },
    /// Never existed, or deleted long ago.
    Absent,
}

fn not_found(key: &ShadowKey) -> ShadowError {
    ShadowError::not_found(&key.thing, key.name.as_deref())
}

fn epoch_ms(clock: &Clock) -> u64 {
    clock()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
