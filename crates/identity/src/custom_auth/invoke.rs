//! Running an authorizer: from an authorizer record and what a connection presented to a
//! validated [`AuthorizerAnswer`] or a typed [`Denial`]. Every failure denies (fails closed).
//!
//! [`AuthorizerInvoker::authorize`] does, in order:
//!
//! 1. refuses an INACTIVE authorizer without calling anything;
//! 2. with signing enabled, requires the token and its signature and verifies the signature
//!    with the authorizer's keys before the function is called (as AWS does);
//! 3. answers from the cache if it can (see below);
//! 4. waits for one of the authorizer's [`InvokerConfig::max_concurrent_calls`] call slots,
//!    so that a burst (devices reconnecting after a restart, every connection of a changed
//!    authorizer asking again) is served in turn instead of refused; [`Denial::Busy`] when
//!    none frees up within [`InvokerConfig::timeout`];
//! 5. refuses at once while the authorizer's circuit breaker is open (after
//!    [`InvokerConfig::breaker_failures`] consecutive failures, for
//!    [`InvokerConfig::breaker_cool_down`]);
//! 6. calls the function with the request JSON, and validates its answer with
//!    [`AuthorizerAnswer::from_json_with`]: AWS's rules, or [`AnswerRules::BuiltIn`] when
//!    the function [is built in](AuthorizerFunction::is_built_in).
//!
//! Steps 4 to 6 together take at most [`InvokerConfig::timeout`] (5 s by default: AWS's
//! limit on a Lambda authorizer): a slow or hung function denies in bounded time, and never
//! holds more than its call slots.
//!
//! **The function** ([`AuthorizerFunction`]) is named by the record's
//! `authorizerFunctionArn`: an `http(s)://` URL is a [`Webhook`]; `ferrocore:function/<name>`
//! a built-in function declared under that name ([`BuiltInFunctions`]; an undeclared name
//! denies with [`Denial::UndeclaredFunction`]); a Lambda ARN denies with
//! [`Denial::LambdaFunction`].
//!
//! **The cache** holds answers across connections under
//! [`AuthorizerRequest::cache_key`]`(name, generation)`; answers to HTTPS requests (a
//! request without its MQTT part) only when the authorizer has `enableCachingForHttp`. The
//! generation is a number this invoker keeps per authorizer name and raises whenever it is
//! handed a record that differs from the one it saw last, and on every [`Change::Authorizer`]
//! of the registry it is subscribed to ([`AuthorizerInvoker::subscribe`]), which also drops
//! the entries at once: no answer outlives an update, deactivation or deletion of its
//! authorizer. An authenticated
//! answer is kept for its `refreshAfterInSeconds` (else [`InvokerConfig::default_cache_ttl`]),
//! an unauthenticated one for at most [`InvokerConfig::denial_cache_ttl`]; failures are never
//! cached (the breaker deals with them). A cached answer never outlives its
//! `disconnectAfterInSeconds` counted from when it was given: a hit gets it shortened by the
//! entry's age, and once that has run out the entry is a miss. At most
//! [`InvokerConfig::max_cached_answers`] entries. The token signature is checked before the
//! cache is consulted, so a cached answer is never given to a request whose signature does
//! not verify.
//!
//! Time comes from a [`Clock`], so tests move it instead of sleeping. Logs name the
//! authorizer and the reason, never a token, signature or password.

mod breaker;
mod cache;
mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Semaphore;

pub use webhook::{HttpUrl, Webhook, WebhookClient, WebhookOptions};

use super::{
    AnswerError, AnswerRules, AuthorizerAnswer, AuthorizerRequest, MAX_ANSWER_BYTES, ParsedKey,
    SignatureError, verify_token_signature,
};
use crate::registry::{
    AuthorizerFunction as NamedFunction, AuthorizerRecord, AuthorizerStatus, Change, Registry,
};
use breaker::Breaker;
use cache::AnswerCache;

/// Where time comes from (the cache's and the breaker's).
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The monotonic clock of the process.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What [`AuthorizerFunction::invoke`] returns.
pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, InvokeError>> + Send + 'a>>;

/// Something that answers authorizer requests: given AWS's authorizer event JSON, the body
/// of its answer (AWS's response JSON), validated by the caller.
pub trait AuthorizerFunction: Send + Sync {
    fn invoke<'a>(&'a self, request: &'a Value) -> InvokeFuture<'a>;

    /// Whether this is one of Ferrocore's built-in functions: its answers are validated by
    /// [`AnswerRules::BuiltIn`] (lifetimes from 1 s, a wider `principalId`) instead of AWS's
    /// rules for a Lambda's answer.
    fn is_built_in(&self) -> bool {
        false
    }

    /// A number that changes whenever the function's answer to the same request may have
    /// changed (its data read again): cached answers given under another generation are not
    /// used. Called before every cache lookup, so it must be cheap.
    fn generation(&self) -> u64 {
        0
    }
}

/// Why a function gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("the webhook URL cannot be used: {0}")]
    BadUrl(String),
    #[error(
        "plain http:// to {0}, which is not a loopback address, is refused; use https:// (or \
         allow plain http to other hosts in the server's configuration)"
    )]
    PlainHttpNotLoopback(String),
    #[error("the function could not be reached: {0}")]
    Unreachable(String),
    #[error("the function answered HTTP status {0}")]
    Status(u16),
    #[error("the function's answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    /// A built-in function ran and failed (a WebAssembly trap, fuel or memory exhausted).
    #[error("the function failed: {0}")]
    Failed(String),
}

impl InvokeError {
    /// Whether the error says the function is failing (rather than that it is configured so
    /// that it can never be called).
    fn is_failure(&self) -> bool {
        !matches!(
            self,
            InvokeError::BadUrl(_) | InvokeError::PlainHttpNotLoopback(_)
        )
    }
}

/// Why an authorizer gave no answer. The device is denied; the reason is for logs and for
/// TestInvokeAuthorizer, and never holds a token, signature or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("the authorizer is INACTIVE")]
    Inactive,
    #[error("the authorizer has signing enabled and no token was given")]
    MissingToken,
    #[error("the authorizer has signing enabled and no token signature was given")]
    MissingSignature,
    #[error("the token signature was not accepted: {0}")]
    BadSignature(SignatureError),
    #[error(
        "the authorizer's function is a Lambda function ARN, which cannot be invoked here; \
         point authorizerFunctionArn at a webhook URL or a built-in function"
    )]
    LambdaFunction,
    #[error(
        "no built-in authorizer function named '{0}' is declared in the server's configuration"
    )]
    UndeclaredFunction(String),
    #[error("the authorizer's function name is invalid: {0}")]
    InvalidFunctionName(String),
    #[error("{0}")]
    Function(InvokeError),
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the function's answer is invalid: {0}")]
    InvalidAnswer(AnswerError),
    #[error("the authorizer's {0} call slots stayed busy for the whole timeout")]
    Busy(usize),
    #[error(
        "the authorizer failed {0} times in a row; it is not called again until its cool-down ends"
    )]
    CircuitOpen(u32),
}

impl Denial {
    /// Whether the function failed to give an answer (down, slow, busy, broken), as opposed
    /// to the request or the authorizer's configuration being at fault: the difference
    /// between "try again later" and "not authorized".
    pub fn is_function_failure(&self) -> bool {
        match self {
            Denial::Function(InvokeError::BadUrl(_) | InvokeError::PlainHttpNotLoopback(_)) => {
                false
            }
            Denial::Function(_)
            | Denial::Timeout(_)
            | Denial::InvalidAnswer(_)
            | Denial::Busy(_)
            | Denial::CircuitOpen(_) => true,
            Denial::Inactive
            | Denial::MissingToken
            | Denial::MissingSignature
            | Denial::BadSignature(_)
            | Denial::LambdaFunction
            | Denial::UndeclaredFunction(_)
            | Denial::InvalidFunctionName(_) => false,
        }
    }
}

/// Limits and lifetimes of an [`AuthorizerInvoker`].
#[derive(Debug, Clone)]
pub struct InvokerConfig {
    /// The longest a function may take to answer.
    pub timeout: Duration,
    /// Calls of one authorizer in flight at once; more are denied.
    pub max_concurrent_calls: usize,
    /// Consecutive failures (no answer or an invalid one) that open an authorizer's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker denies without calling.
    pub breaker_cool_down: Duration,
    /// How long an authenticated answer without `refreshAfterInSeconds` is cached.
    pub default_cache_ttl: Duration,
    /// The longest an unauthenticated answer is cached.
    pub denial_cache_ttl: Duration,
    /// Answers cached at most (all authorizers together).
    pub max_cached_answers: usize,
    pub webhook: WebhookOptions,
}

impl Default for InvokerConfig {
    fn default() -> Self {
        InvokerConfig {
            timeout: Duration::from_secs(5),
            max_concurrent_calls: 64,
            breaker_failures: 5,
            breaker_cool_down: Duration::from_secs(30),
            default_cache_ttl: Duration::from_secs(60),
            denial_cache_ttl: Duration::from_secs(5),
            max_cached_answers: 10_000,
            webhook: WebhookOptions::default(),
        }
    }
}

/// The built-in authorizer functions of the server's configuration, by the `<name>` of
/// `ferrocore:function/<name>`.
#[derive(Default, Clone)]
pub struct BuiltInFunctions {
    functions: HashMap<String, Arc<dyn AuthorizerFunction>>,
}

impl BuiltInFunctions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `function` under `name`.
    pub fn insert(&mut self, name: impl Into<String>, function: Arc<dyn AuthorizerFunction>) {
        self.functions.insert(name.into(), function);
    }

    fn get(&self, name: &str) -> Option<Arc<dyn AuthorizerFunction>> {
        self.functions.get(name).cloned()
    }
}

/// Whether [`AuthorizerInvoker`] runs an authorizer for a device or for TestInvokeAuthorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Device,
    /// TestInvokeAuthorizer: bypasses the cache and also runs an INACTIVE authorizer.
    Test,
}

/// What the invoker keeps per authorizer, built from one version of its record.
struct Slot {
    record: AuthorizerRecord,
    generation: u64,
    keys: Vec<ParsedKey>,
    function: Result<Arc<dyn AuthorizerFunction>, Denial>,
    permits: Arc<Semaphore>,
    breaker: Mutex<Breaker>,
}

/// Runs authorizers; one per server, shared by every listener and the control plane.
pub struct AuthorizerInvoker {
    config: InvokerConfig,
    clock: Arc<dyn Clock>,
    built_ins: BuiltInFunctions,
    webhooks: Arc<WebhookClient>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The last generation given out per authorizer name; outlives the slots.
    generations: Mutex<HashMap<String, u64>>,
    cache: Mutex<AnswerCache>,
}

impl AuthorizerInvoker {
    pub fn new(config: InvokerConfig, built_ins: BuiltInFunctions) -> AuthorizerInvoker {
        AuthorizerInvoker::with_clock(config, built_ins, Arc::new(SystemClock))
    }

    pub fn with_clock(
        config: InvokerConfig,
        built_ins: BuiltInFunctions,
        clock: Arc<dyn Clock>,
    ) -> AuthorizerInvoker {
        AuthorizerInvoker {
            webhooks: Arc::new(WebhookClient::new(config.webhook.clone())),
            cache: Mutex::new(AnswerCache::new(config.max_cached_answers)),
            config,
            clock,
            built_ins,
            slots: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets an authorizer's cached answers and state on every change of it in `registry`.
    pub fn subscribe(self: &Arc<Self>, registry: &Registry) {
        let invoker: Weak<AuthorizerInvoker> = Arc::downgrade(self);
        registry.subscribe(Arc::new(move |changes: &[Change]| {
            let Some(invoker) = invoker.upgrade() else {
                return;
            };
            for change in changes {
                if let Change::Authorizer { name, .. } = change {
                    invoker.forget(name);
                }
            }
        }));
    }

    /// Drops what is known of authorizer `name`: its cached answers, breaker and keys.
    pub fn forget(&self, name: &str) {
        self.slots.lock().remove(name);
        self.next_generation(name);
        self.cache.lock().forget_authorizer(name);
    }

    /// Runs authorizer `record` for a device that presented `request` (and `token_signature`,
    /// the `x-amz-customauthorizer-signature` value, if any). An answer with
    /// `authenticated == false` is the authorizer's denial; the caller must check it.
    pub async fn authorize(
        &self,
        record: &AuthorizerRecord,
        request: AuthorizerRequest,
        token_signature: Option<&str>,
    ) -> Result<Arc<AuthorizerAnswer>, Denial> {
        self.run(record, request, token_signature, Purpose::Device)
            .await
    }

    /// TestInvokeAuthorizer: as [`authorize`](Self::authorize) but without the cache (neither
    /// read nor filled) and for an INACTIVE authorizer too, so that an authorizer can be
    /// tried before devices may use it (authorizers are created INACTIVE).
    pub async fn test_invoke(
        &self,
        record: &AuthorizerRecord,
        request: AuthorizerRequest,
        token_signature: Option<&str>,
    ) -> Result<Arc<AuthorizerAnswer>, Denial> {
        self.run(record, request, token_signature, Purpose::Test)
            .await
    }

    async fn run(
        &self,
        record: &AuthorizerRecord,
        mut request: AuthorizerRequest,
        token_signature: Option<&str>,
        purpose: Purpose,
    ) -> Result<Arc<AuthorizerAnswer>, Denial> {
        let result = self
            .run_checked(record, &mut request, token_signature, purpose)
            .await;
        if let Err(denial) = &result {
            tracing::info!(authorizer = %record.name, reason = %denial, "custom authorizer denied");
        }
        result
    }

    async fn run_checked(
        &self,
        record: &AuthorizerRecord,
        request: &mut AuthorizerRequest,
        token_signature: Option<&str>,
        purpose: Purpose,
    ) -> Result<Arc<AuthorizerAnswer>, Denial> {
        if purpose == Purpose::Device && record.status != AuthorizerStatus::Active {
            return Err(Denial::Inactive);
        }
        let slot = self.slot(record);
        request.signature_verified = false;
        if !record.signing_disabled {
            let token = request.token.as_deref().ok_or(Denial::MissingToken)?;
            let signature = token_signature.ok_or(Denial::MissingSignature)?;
            verify_token_signature(token, signature, &slot.keys).map_err(Denial::BadSignature)?;
            request.signature_verified = true;
        }
        let function = slot.function.clone()?;

        // Both generations in one number: each stays far below 2^32.
        let generation = slot.generation ^ function.generation().rotate_left(32);
        let key = request.cache_key(&record.name, generation);
        // HTTPS requests (no MQTT part) share answers only when the authorizer says so
        // (`enableCachingForHttp`, AWS's rule); MQTT connections always do.
        let cached = purpose == Purpose::Device
            && (request.mqtt.is_some() || record.enable_caching_for_http);
        if cached && let Some(answer) = self.cache.lock().get(&key, self.clock.now()) {
            return Ok(answer);
        }

        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let Ok(Ok(_permit)) =
            tokio::time::timeout_at(deadline, Arc::clone(&slot.permits).acquire_owned()).await
        else {
            return Err(Denial::Busy(self.config.max_concurrent_calls));
        };
        // Checked once a slot is ours, so that waiting requests see a breaker that opened
        // while they waited.
        slot.breaker
            .lock()
            .admit(self.clock.now())
            .map_err(Denial::CircuitOpen)?;
        let event = request.to_json();
        let rules = if function.is_built_in() {
            AnswerRules::BuiltIn
        } else {
            AnswerRules::Aws
        };
        let outcome = match tokio::time::timeout_at(deadline, function.invoke(&event)).await {
            Err(_) => Err(Denial::Timeout(self.config.timeout)),
            Ok(Err(error)) => Err(Denial::Function(error)),
            Ok(Ok(body)) => AuthorizerAnswer::from_json_with(&body, rules)
                .map(Arc::new)
                .map_err(Denial::InvalidAnswer),
        };
        let failed = match &outcome {
            Ok(_) => false,
            Err(Denial::Function(error)) => error.is_failure(),
            Err(_) => true,
        };
        slot.breaker.lock().record(failed, self.clock.now());

        let answer = outcome?;
        if cached {
            let ttl = if answer.authenticated {
                answer
                    .refresh_after
                    .unwrap_or(self.config.default_cache_ttl)
            } else {
                answer
                    .refresh_after
                    .map_or(self.config.denial_cache_ttl, |refresh| {
                        refresh.min(self.config.denial_cache_ttl)
                    })
            };
            let now = self.clock.now();
            self.cache
                .lock()
                .insert(key, &record.name, Arc::clone(&answer), now + ttl, now);
        }
        Ok(answer)
    }

    /// The slot of `record`, made anew (with a new generation) when the record differs from
    /// the one the current slot was made from.
    fn slot(&self, record: &AuthorizerRecord) -> Arc<Slot> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(&record.name)
            && slot.record == *record
        {
            return Arc::clone(slot);
        }
        let slot = Arc::new(self.make_slot(record));
        slots.insert(record.name.clone(), Arc::clone(&slot));
        drop(slots);
        self.cache.lock().forget_authorizer(&record.name);
        slot
    }

    fn make_slot(&self, record: &AuthorizerRecord) -> Slot {
        let keys = record
            .token_signing_public_keys
            .iter()
            .filter_map(|(key_name, pem)| match ParsedKey::from_pem(pem) {
                Ok(key) => Some(key),
                Err(error) => {
                    // Stored keys were validated; a key the parser no longer takes verifies
                    // nothing, and the other key (if any) still may.
                    tracing::warn!(authorizer = %record.name, key = %key_name, %error,
                        "token signing key unusable");
                    None
                }
            })
            .collect();
        Slot {
            record: record.clone(),
            generation: self.next_generation(&record.name),
            keys,
            function: self.function(record),
            permits: Arc::new(Semaphore::new(self.config.max_concurrent_calls)),
            breaker: Mutex::new(Breaker::new(
                self.config.breaker_failures,
                self.config.breaker_cool_down,
            )),
        }
    }

    fn function(&self, record: &AuthorizerRecord) -> Result<Arc<dyn AuthorizerFunction>, Denial> {
        match record.function() {
            Ok(NamedFunction::Webhook(url)) => Webhook::new(url, Arc::clone(&self.webhooks))
                .map(|webhook| Arc::new(webhook) as Arc<dyn AuthorizerFunction>)
                .map_err(Denial::Function),
            Ok(NamedFunction::BuiltIn(name)) => self
                .built_ins
                .get(name)
                .ok_or_else(|| Denial::UndeclaredFunction(name.to_owned())),
            Ok(NamedFunction::Lambda(_)) => Err(Denial::LambdaFunction),
            Err(error) => Err(Denial::InvalidFunctionName(error.to_string())),
        }
    }

    fn next_generation(&self, name: &str) -> u64 {
        let mut generations = self.generations.lock();
        let generation = generations.entry(name.to_owned()).or_insert(0);
        *generation += 1;
        *generation
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
