//! The identity provider's signing keys: fetched on first use (OIDC discovery or a JWKS URL),
//! kept by `kid`, each with the one algorithm it may verify.
//!
//! - At most [`MAX_KEYS`] usable keys are kept (the first ones of the set).
//! - A key's algorithm is pinned: the JWK's `alg` if it has one (and it fits the key type),
//!   else derived from the key (`RSA` → RS256, `EC` P-256 → ES256, P-384 → ES384, `OKP`
//!   Ed25519 → EdDSA); a key whose algorithm is not among the accepted ones is dropped, as is
//!   every symmetric (`oct`) key, a key for encryption (`use: enc`) and one that does not parse.
//!   No HMAC key is ever made from a JWK, so an RS/HS confusion has nothing to verify with.
//! - Refetched when a token names an unknown `kid` or the set is older than [`MAX_KEY_AGE`];
//!   one fetch at a time (the others wait for it) and at most one per [`MIN_REFETCH_INTERVAL`],
//!   so tokens with made-up `kid`s cannot make the server hammer the provider. A failed
//!   refetch keeps the keys already known.
//! - A fetch failure with no usable answer is an [`InvokeError::Unreachable`]: the function
//!   failed (the device is told the server is unavailable, and the invoker's breaker counts it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrocore_identity::custom_auth::{Clock, InvokeError, WebhookClient};
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::Value;

use super::options::{KeySource, url_rule};

/// Usable keys kept at most.
pub(super) const MAX_KEYS: usize = 64;
/// The shortest time between two fetches.
pub(super) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Keys older than this are fetched again on next use.
pub(super) const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// The longest one fetch (discovery and JWKS) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(4);

/// A verification key and the one algorithm it verifies.
pub(super) struct PinnedKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// The keys of one fetch.
struct KeySet {
    keys: Vec<Arc<PinnedKey>>,
    fetched: Instant,
}

impl KeySet {
    /// The key named `kid`; without a `kid`, the only key for `algorithm`.
    fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<Arc<PinnedKey>> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.algorithm == algorithm);
                let only = candidates.next();
                candidates.next().map_or(only, |_| None)
            }
        }
        .cloned()
    }
}

/// When the last fetch was tried and why it failed, if it did.
#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

pub(super) struct KeyStore {
    source: KeySource,
    issuer: String,
    allow_http: bool,
    algorithms: Vec<Algorithm>,
    client: WebhookClient,
    clock: Arc<dyn Clock>,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Raised whenever a fetch brings another set of key ids than before (a key added or
    /// removed): cached answers of tokens checked with the old set are not used any more.
    generation: AtomicU64,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<FetchState>,
}

/// The members of an OIDC discovery document used here.
#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

impl KeyStore {
    pub(super) fn new(
        source: KeySource,
        issuer: String,
        allow_http: bool,
        algorithms: Vec<Algorithm>,
        client: WebhookClient,
        clock: Arc<dyn Clock>,
    ) -> KeyStore {
        KeyStore {
            source,
            issuer,
            allow_http,
            algorithms,
            client,
            clock,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            fetching: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The key for a token whose header names `kid` (if any) and `algorithm`. `Ok(None)`: no
    /// such key, even after a refetch (or a refetch is not due yet).
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Option<Arc<PinnedKey>>, InvokeError> {
        if let Some(key) = self.fresh_key(kid, algorithm) {
            return Ok(Some(key));
        }
        let mut state = self.fetching.lock().await;
        // Another call may have fetched while this one waited.
        if let Some(key) = self.fresh_key(kid, algorithm) {
            return Ok(Some(key));
        }
        let now = self.clock.now();
        let due = state
            .last_attempt
            .is_none_or(|last| now.saturating_duration_since(last) >= MIN_REFETCH_INTERVAL);
        let mut failed_now = false;
        if due {
            state.last_attempt = Some(now);
            match tokio::time::timeout(FETCH_TIMEOUT, self.fetch()).await {
                Ok(Ok(keys)) => {
                    state.last_error = None;
                    let kids = |keys: &[Arc<PinnedKey>]| {
                        let mut kids: Vec<Option<String>> =
                            keys.iter().map(|k| k.kid.clone()).collect();
                        kids.sort();
                        kids
                    };
                    let mut current = self.current.write();
                    let changed = current
                        .as_ref()
                        .is_some_and(|old| kids(&old.keys) != kids(&keys));
                    *current = Some(Arc::new(KeySet {
                        keys,
                        fetched: self.clock.now(),
                    }));
                    drop(current);
                    if changed {
                        self.generation.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(issuer = %self.issuer, %error, "jwt: fetching the signing keys failed");
                    state.last_error = Some(error);
                    failed_now = true;
                }
                Err(_) => {
                    let error = format!("no answer within {FETCH_TIMEOUT:?}");
                    tracing::warn!(issuer = %self.issuer, %error, "jwt: fetching the signing keys failed");
                    state.last_error = Some(error);
                    failed_now = true;
                }
            }
        }
        let current = self.current.read().clone();
        let found = current.as_ref().and_then(|set| set.find(kid, algorithm));
        match (found, current, &state.last_error) {
            (Some(key), _, _) => Ok(Some(key)),
            // Keys are known and the provider answered (or was asked recently): the key is
            // not among them.
            (None, Some(_), _) if !failed_now => Ok(None),
            (None, _, Some(error)) => Err(InvokeError::Unreachable(format!(
                "the identity provider's keys could not be fetched: {error}"
            ))),
            (None, _, None) => Ok(None),
        }
    }

    /// The key from a set fetched less than [`MAX_KEY_AGE`] ago.
    fn fresh_key(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<Arc<PinnedKey>> {
        let current = self.current.read();
        let set = current.as_ref()?;
        if self.clock.now().saturating_duration_since(set.fetched) >= MAX_KEY_AGE {
            return None;
        }
        set.find(kid, algorithm)
    }

    /// Fetches the key set: the discovery document first when keys are found by discovery.
    async fn fetch(&self) -> Result<Vec<Arc<PinnedKey>>, String> {
        let jwks_url = match &self.source {
            KeySource::Jwks(url) => url.clone(),
            KeySource::Discovery(url) => {
                let body = self.client.get(url).await.map_err(|e| e.to_string())?;
                let discovery: Discovery = serde_json::from_slice(&body)
                    .map_err(|e| format!("the discovery document is not valid: {e}"))?;
                if discovery.issuer.as_deref() != Some(self.issuer.as_str()) {
                    return Err(format!(
                        "the discovery document names the issuer {:?}, not {:?} (`issuer` must \
                         be the provider's issuer exactly)",
                        discovery.issuer.unwrap_or_default(),
                        self.issuer
                    ));
                }
                let jwks_uri = discovery
                    .jwks_uri
                    .ok_or("the discovery document has no jwks_uri")?;
                url_rule("jwks_uri (discovered)", &jwks_uri, self.allow_http)?
            }
        };
        let body = self
            .client
            .get(&jwks_url)
            .await
            .map_err(|e| e.to_string())?;
        self.parse_key_set(&body)
    }

    /// The usable keys of a JWKS document.
    fn parse_key_set(&self, body: &[u8]) -> Result<Vec<Arc<PinnedKey>>, String> {
        #[derive(Deserialize)]
        struct KeySetDocument {
            keys: Vec<Value>,
        }
        let document: KeySetDocument =
            serde_json::from_slice(body).map_err(|e| format!("the JWKS is not a key set: {e}"))?;
        let mut keys = Vec::new();
        let mut skipped = 0usize;
        for value in document.keys {
            let pinned = serde_json::from_value::<Jwk>(value)
                .ok()
                .and_then(|jwk| self.pin(&jwk));
            match pinned {
                Some(key) if keys.len() < MAX_KEYS => keys.push(Arc::new(key)),
                _ => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::debug!(issuer = %self.issuer, usable = keys.len(), skipped, "jwt: JWKS keys skipped (unusable, not for the accepted algorithms, or beyond the limit)");
        }
        if keys.is_empty() {
            tracing::warn!(issuer = %self.issuer, algorithms = ?self.algorithms, "jwt: the JWKS has no usable key for the accepted algorithms");
        }
        Ok(keys)
    }

    /// `jwk` as a key pinned to its algorithm, if it is a usable signature key.
    fn pin(&self, jwk: &Jwk) -> Option<PinnedKey> {
        let common = &jwk.common;
        if common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return None;
        }
        if common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return None;
        }
        let algorithm = pinned_algorithm(jwk)?;
        if !self.algorithms.contains(&algorithm) {
            return None;
        }
        Some(PinnedKey {
            kid: common.key_id.clone(),
            algorithm,
            key: DecodingKey::from_jwk(jwk).ok()?,
        })
    }
}

/// The one algorithm `jwk` may verify: its `alg` if that fits the key, else the key type's;
/// never an HMAC algorithm.
fn pinned_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let stated = match &jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
        Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
        Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        // HMAC or an encryption algorithm: not a signature key of ours.
        Some(_) => return None,
    };
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match stated {
            None => Some(Algorithm::RS256),
            Some(
                a @ (Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512),
            ) => Some(a),
            Some(_) => None,
        },
        AlgorithmParameters::EllipticCurve(ec) => {
            let by_curve = match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return None,
            };
            stated.is_none_or(|a| a == by_curve).then_some(by_curve)
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => stated
            .is_none_or(|a| a == Algorithm::EdDSA)
            .then_some(Algorithm::EdDSA),
        // Symmetric (`oct`) keys and anything else: never.
        _ => None,
    }
}

#[cfg(test)]
impl KeyStore {
    /// The number of keys held.
    pub(super) fn len(&self) -> usize {
        self.current.read().as_ref().map_or(0, |set| set.keys.len())
    }
}
