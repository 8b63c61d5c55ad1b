//! Who a connection is and what it may do.
//!
//! Every connection has a [`Principal`]: its identity (an anonymous client of a listener, a
//! device certificate) and its authorization — the IoT policies in force for it
//! ([`PolicySet`], compiled) with the [`Request`] context they are decided in (client id,
//! source address, server name, the attached thing, the certificate's fields), built once at
//! CONNECT. The broker asks it at every enforcement point of AWS IoT Core (reference §1.2):
//!
//! | action | resource | when |
//! |---|---|---|
//! | `iot:Connect` | `client/<clientId>` | CONNECT, with `iot:ConnectAttributes` (`PersistentConnect`, `LastWill`) and `iot:LastWillTopic`; again whenever the policies change |
//! | `iot:Publish` | `topic/<will topic>` | CONNECT with a will (and `iot:RetainPublish` for a retained will); again when the will is published |
//! | `iot:Publish` | `topic/<name>` | every PUBLISH |
//! | `iot:RetainPublish` | `topic/<name>` | every PUBLISH with RETAIN=1 (besides `iot:Publish`) |
//! | `iot:Subscribe` | `topicfilter/<filter>` | each filter of a SUBSCRIBE, as sent (`$share/<group>/...` included) |
//! | `iot:Receive` | `topic/<name>` | every delivery (retained ones too; shared subscriptions: the topic itself) |
//!
//! The authorization sits behind an [`ArcSwap`], so a policy change reaches an open connection
//! by swapping it ([`crate::Broker::reauthorize`]); the [`ConnectionIndex`] finds the
//! connections a change concerns by what their authorization was resolved from
//! ([`Dependency`]). Denials are counted per action ([`Denials`]) and logged with the
//! principal, action, resource and the deciding statement, at most
//! [`DENIALS_LOGGED_PER_MINUTE`] per connection and minute (then a count of the rest).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use ferrocore_policy::{
    Action, Arns, CertificateContext, ConnectContext, Decision, PolicySet, Request, ResourceKind,
    ThingContext,
};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::custom_auth::CustomAuthenticator;
use crate::session::Kick;

/// What a connection's authorization was resolved from, so that a change to any of them
/// reaches it: its certificate (status, attached policies, attached things), the thing it
/// connected as (attributes, type, groups), the thing groups whose policies it inherits, and
/// the policies themselves (versions); for a custom-authenticated connection, the custom
/// authorizer that admitted it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    /// A certificate id.
    Certificate(String),
    /// A thing name.
    Thing(String),
    /// A thing group name.
    ThingGroup(String),
    /// A policy name.
    Policy(String),
    /// A custom authorizer's name: its change (deactivated, deleted, updated) re-authenticates
    /// the connections it admitted ([`crate::Broker::reauthenticate_authorizer`]).
    Authorizer(String),
    /// The TLS server name (SNI, lowercase) the client connected to: its domain
    /// configuration's change reaches the connection ([`crate::Broker::server_name_changed`]).
    /// Every indexed connection with a server name is filed under it.
    ServerName(String),
}

/// The policies in force for a device and the thing context they are decided in, as the
/// registry resolves them for a certificate and client id.
#[derive(Debug, Clone)]
pub struct Grant {
    pub policies: Arc<PolicySet>,
    /// The thing attached to the certificate whose name is the client id (or the exclusively
    /// attached thing), for the `iot:Connection.Thing.*` variables.
    pub thing: Option<ThingContext>,
    /// What the grant was resolved from; the certificate itself is always added.
    pub depends_on: Vec<Dependency>,
}

/// Authenticates and authorizes devices by X.509 certificate, asked at every MQTT CONNECT that
/// presents one (the TLS handshake checked it already, but a resumed TLS session skips that
/// check and the status may have changed since), and again for open connections when the
/// registry changes what their grant depends on.
pub trait CertificateAuthorizer: Send + Sync + 'static {
    /// The policies in force for `certificate_id` (AWS's id: lowercase hex SHA-256 of the DER)
    /// connecting as `client_id`, or `None` when the certificate may not connect at all (not
    /// registered, not ACTIVE, its CA not ACTIVE, revoked). A certificate without policies gets
    /// an empty set: every action, `iot:Connect` included, is denied.
    fn authorize(&self, certificate_id: &str, client_id: &str) -> Option<Grant>;

    /// The values of the `iot:Certificate.*` variables, read from the end-entity certificate
    /// (`der`) once per connection. The default knows only the id.
    fn certificate_context(&self, certificate_id: &str, der: &[u8]) -> CertificateContext {
        let _ = der;
        CertificateContext {
            id: Some(certificate_id.to_owned()),
            ..CertificateContext::default()
        }
    }
}

/// How the broker authenticates clients beyond anonymous listeners.
#[derive(Clone, Default)]
pub struct Authentication {
    /// Device certificates: a client that presented one over MQTT-over-TLS connects as that
    /// certificate, with the policies this grants. Without it, certificates are not accepted
    /// and only anonymous listeners admit clients.
    pub certificates: Option<Arc<dyn CertificateAuthorizer>>,
    /// Custom authorizers: on listeners that accept custom authentication
    /// ([`crate::ListenerAuth::custom_auth`]), a client that presented no device certificate
    /// over MQTT-over-TLS is admitted or refused by this.
    pub custom: Option<Arc<dyn CustomAuthenticator>>,
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authentication")
            .field("certificates", &self.certificates.is_some())
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

/// Policy denials since the broker started, by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Denials {
    pub connect: u64,
    pub publish: u64,
    pub retain_publish: u64,
    pub subscribe: u64,
    pub receive: u64,
    /// The HTTPS data plane's own actions (retained messages, connections, shadows, jobs).
    pub data_plane: u64,
}

impl Denials {
    pub fn total(&self) -> u64 {
        self.connect
            + self.publish
            + self.retain_publish
            + self.subscribe
            + self.receive
            + self.data_plane
    }
}

/// The counters behind [`Denials`].
#[derive(Default)]
pub(crate) struct DenialCounters {
    counts: [AtomicU64; 6],
}

impl DenialCounters {
    fn count(&self, action: Action) {
        let i = match action {
            Action::Connect => 0,
            Action::Publish => 1,
            Action::RetainPublish => 2,
            Action::Subscribe => 3,
            Action::Receive => 4,
            _ => 5,
        };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Denials {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        Denials {
            connect: c(0),
            publish: c(1),
            retain_publish: c(2),
            subscribe: c(3),
            receive: c(4),
            data_plane: c(5),
        }
    }
}

/// Denials logged per connection and minute; the rest are counted and summarised.
pub const DENIALS_LOGGED_PER_MINUTE: u32 = 5;
const DENIAL_LOG_WINDOW: Duration = Duration::from_secs(60);

/// Who a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// A client without credentials on an anonymous listener (its name).
    Anonymous(Arc<str>),
    /// A device certificate (its AWS id).
    Certificate(Arc<str>),
    /// A client a custom authorizer admitted (the `principalId` it answered).
    Custom(Arc<str>),
    /// The SigV4 admin credentials (HTTPS data plane): everything is allowed.
    Admin,
    /// No identity: a session restored from the store before its client reconnects. Its
    /// queue takes every message; they are checked when a client attaches.
    Nobody,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Anonymous(listener) => write!(f, "anonymous (listener {listener})"),
            Identity::Certificate(id) => write!(f, "certificate {id}"),
            Identity::Custom(id) => write!(f, "custom principal {id}"),
            Identity::Admin => f.write_str("admin credentials"),
            Identity::Nobody => f.write_str("nobody"),
        }
    }
}

/// A connection's authorization: policies and the context they are decided in.
pub(crate) struct Authz {
    /// Unique per authorization ever made: what [`AllowedTopics`] entries were decided with.
    id: u64,
    policies: Arc<PolicySet>,
    request: Request,
    /// Everything is allowed without evaluating anything: an allow-all anonymous listener, or
    /// a restored session waiting for its client.
    unrestricted: bool,
}

static NEXT_AUTHZ_ID: AtomicU64 = AtomicU64::new(1);

impl Authz {
    pub fn unrestricted() -> Authz {
        Authz {
            id: NEXT_AUTHZ_ID.fetch_add(1, Ordering::Relaxed),
            policies: Arc::new(PolicySet::default()),
            request: Request::new(),
            unrestricted: true,
        }
    }

    pub fn new(policies: Arc<PolicySet>, request: Request) -> Authz {
        Authz {
            id: NEXT_AUTHZ_ID.fetch_add(1, Ordering::Relaxed),
            policies,
            request,
            unrestricted: false,
        }
    }

    pub fn is_unrestricted(&self) -> bool {
        self.unrestricted
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The thing the policies are decided with (`iot:Connection.Thing.*`).
    pub fn thing_name(&self) -> Option<&str> {
        self.request.thing().map(|t| t.name.as_str())
    }

    /// Whether decisions may be remembered: they depend on nothing but the resource (no
    /// time conditions).
    pub fn cacheable(&self) -> bool {
        !self.policies.uses_time()
    }

    fn decide(&self, action: Action, resource: &str, request: &Request) -> Decision {
        if self.policies.uses_time() {
            // Rare (time conditions): a copy with the time set.
            let mut r = request.clone();
            r.set_time(SystemTime::now());
            self.policies.evaluate(action, resource, &r)
        } else {
            self.policies.evaluate(action, resource, request)
        }
    }
}

/// What a connection's [`Request`] is built from, kept to rebuild it when its thing changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestBase {
    /// Empty for HTTPS callers, which have none: `iot:ClientId` is then not set.
    pub client_id: Arc<str>,
    pub source_ip: Option<IpAddr>,
    pub domain_name: Option<String>,
    pub certificate: Option<CertificateContext>,
}

impl RequestBase {
    pub fn request(&self, thing: Option<ThingContext>) -> Request {
        let mut r = Request::new();
        if !self.client_id.is_empty() {
            r = r.with_client_id(&*self.client_id);
        }
        if let Some(ip) = self.source_ip {
            r = r.with_source_ip(ip);
        }
        if let Some(d) = &self.domain_name {
            r = r.with_domain_name(d.clone());
        }
        if let Some(c) = &self.certificate {
            r = r.with_certificate(c.clone());
        }
        if let Some(t) = thing {
            r = r.with_thing(t);
        }
        r
    }
}

#[derive(Default)]
struct DenialLog {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// The authenticated identity of a connection and what it may do.
pub(crate) struct Principal {
    pub identity: Identity,
    pub conn_id: u64,
    base: RequestBase,
    /// What the CONNECT asked for, for re-deciding `iot:Connect` when the policies change.
    connect: ConnectContext,
    authz: ArcSwap<Authz>,
    kick: Arc<Kick>,
    log: Mutex<DenialLog>,
    /// The index keys this connection is filed under (see [`ConnectionIndex`]).
    deps: Mutex<Vec<Dependency>>,
    /// Custom authentication: the authorizer that admitted the connection changed, so its
    /// supervisor asks the authenticator again (a permit is kept until it does).
    authorizer_changed: Notify,
}

static NOBODY: LazyLock<Arc<Principal>> = LazyLock::new(|| {
    Arc::new(Principal {
        identity: Identity::Nobody,
        conn_id: 0,
        base: RequestBase::default(),
        connect: ConnectContext::default(),
        authz: ArcSwap::from_pointee(Authz::unrestricted()),
        kick: Arc::new(Kick::default()),
        log: Mutex::new(DenialLog::default()),
        deps: Mutex::new(Vec::new()),
        authorizer_changed: Notify::new(),
    })
});

impl Principal {
    pub fn new(
        identity: Identity,
        conn_id: u64,
        base: RequestBase,
        connect: ConnectContext,
        authz: Authz,
        kick: Arc<Kick>,
    ) -> Arc<Principal> {
        Arc::new(Principal {
            identity,
            conn_id,
            base,
            connect,
            authz: ArcSwap::from_pointee(authz),
            kick,
            log: Mutex::new(DenialLog::default()),
            deps: Mutex::new(Vec::new()),
            authorizer_changed: Notify::new(),
        })
    }

    /// The principal of a session restored from the store, until its client reconnects.
    pub fn nobody() -> Arc<Principal> {
        NOBODY.clone()
    }

    pub fn client_id(&self) -> &Arc<str> {
        &self.base.client_id
    }

    pub fn certificate_id(&self) -> Option<&Arc<str>> {
        match &self.identity {
            Identity::Certificate(id) => Some(id),
            _ => None,
        }
    }

    pub fn kick(&self) -> &Arc<Kick> {
        &self.kick
    }

    pub fn base(&self) -> &RequestBase {
        &self.base
    }

    /// The current authorization (a cheap guard; reload after a swap to see the new one).
    pub fn authz(&self) -> arc_swap::Guard<Arc<Authz>> {
        self.authz.load()
    }

    pub fn set_authz(&self, authz: Authz) {
        self.authz.store(Arc::new(authz));
    }

    /// Tells the connection's custom-authentication supervisor to ask the authenticator again
    /// (the authorizer that admitted it changed).
    pub fn reauthenticate(&self) {
        self.authorizer_changed.notify_one();
    }

    /// Resolves once [`Principal::reauthenticate`] was called (since the last time it resolved).
    pub async fn reauthentication_requested(&self) {
        self.authorizer_changed.notified().await;
    }

    /// Whether `action` on `name` (of `kind`) is allowed; the ARN is written into `buf` (a
    /// reused buffer) only when there is something to decide. Denials are counted and logged.
    pub fn allowed(
        &self,
        counters: &DenialCounters,
        arns: &Arns,
        action: Action,
        kind: ResourceKind,
        name: &str,
        buf: &mut String,
    ) -> bool {
        let authz = self.authz.load();
        if authz.unrestricted {
            return true;
        }
        arns.write(kind, name, buf);
        self.permits(&authz, counters, action, buf)
    }

    /// [`Principal::allowed`] for an action on a topic, remembering allowed topics in `cache`
    /// (a hit costs a string comparison or a hash lookup instead of building the ARN and
    /// evaluating). Denials are never cached: each is evaluated, counted and logged.
    #[allow(clippy::too_many_arguments)]
    pub fn allowed_topic(
        &self,
        cache: &mut AllowedTopics,
        counters: &DenialCounters,
        arns: &Arns,
        action: Action,
        topic: &str,
        buf: &mut String,
    ) -> bool {
        let authz = self.authz.load();
        if authz.unrestricted || cache.contains(authz.id, topic) {
            return true;
        }
        arns.write(ResourceKind::Topic, topic, buf);
        let allowed = self.permits(&authz, counters, action, buf);
        if allowed && authz.cacheable() {
            cache.insert(topic);
        }
        allowed
    }

    /// Decides `action` on the ARN `resource` with `authz` (this principal's, loaded by the
    /// caller); a denial is counted and logged.
    pub fn permits(
        &self,
        authz: &Authz,
        counters: &DenialCounters,
        action: Action,
        resource: &str,
    ) -> bool {
        if authz.unrestricted {
            return true;
        }
        let decision = authz.decide(action, resource, &authz.request);
        if decision.is_allowed() {
            return true;
        }
        counters.count(action);
        self.log_denial(authz, action, resource, decision);
        false
    }

    /// `iot:Connect` on `client/<clientId>` with the CONNECT's attributes.
    pub fn may_connect(&self, counters: &DenialCounters, arns: &Arns) -> bool {
        let authz = self.authz.load();
        if authz.unrestricted {
            return true;
        }
        let resource = arns.client(&self.base.client_id);
        let mut request = authz.request.clone();
        request.set_connect(Some(self.connect.clone()));
        let decision = authz.decide(Action::Connect, &resource, &request);
        if decision.is_allowed() {
            return true;
        }
        counters.count(Action::Connect);
        self.log_denial(&authz, Action::Connect, &resource, decision);
        false
    }

    fn log_denial(&self, authz: &Authz, action: Action, resource: &str, decision: Decision) {
        let now = Instant::now();
        let mut log = self.log.lock();
        if log
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= DENIAL_LOG_WINDOW)
        {
            if log.suppressed > 0 {
                tracing::info!(
                    client_id = %self.base.client_id,
                    principal = %self.identity,
                    suppressed = log.suppressed,
                    "more policy denials for this connection in the last minute, not logged one by one"
                );
            }
            *log = DenialLog {
                window_start: Some(now),
                logged: 0,
                suppressed: 0,
            };
        }
        if log.logged >= DENIALS_LOGGED_PER_MINUTE {
            log.suppressed += 1;
            return;
        }
        log.logged += 1;
        drop(log);
        let statement = match decision
            .statement()
            .and_then(|id| authz.policies.statement(id))
        {
            Some(s) => s.to_string(),
            None => "no statement allows it".to_owned(),
        };
        tracing::info!(
            client_id = %self.base.client_id,
            principal = %self.identity,
            action = %action,
            resource,
            decision = decision.as_aws_str(),
            statement,
            "denied by policy"
        );
    }

    /// Logs how many denials went unlogged (at the end of the connection).
    pub fn flush_denial_log(&self) {
        let mut log = self.log.lock();
        if log.suppressed > 0 {
            tracing::info!(
                client_id = %self.base.client_id,
                principal = %self.identity,
                suppressed = log.suppressed,
                "more policy denials for this connection, not logged one by one"
            );
        }
        *log = DenialLog::default();
    }
}

/// Topics recently allowed for one action under one authorization (a per-connection cache in
/// front of the policy evaluation on the hot paths: a device publishes to, and a subscriber
/// receives from, few topics again and again). Bounded: cleared when full; emptied when the
/// authorization changes. Only allowed decisions are kept, so every denial is still evaluated,
/// counted and logged.
#[derive(Default)]
pub(crate) struct AllowedTopics {
    /// [`Authz::id`] of the entries.
    authz: u64,
    /// The topic allowed last (the commonest hit: one topic over and over).
    last: Option<Box<str>>,
    set: HashSet<Box<str>, BuildHasherDefault<Fnv>>,
}

/// Topics an [`AllowedTopics`] holds at most (then it starts over).
const MAX_ALLOWED_TOPICS: usize = 64;

impl AllowedTopics {
    /// Whether `topic` was allowed under authorization `authz` (forgets everything when the
    /// authorization changed).
    pub fn contains(&mut self, authz: u64, topic: &str) -> bool {
        if self.authz != authz {
            self.authz = authz;
            self.last = None;
            self.set = HashSet::default();
            return false;
        }
        self.last.as_deref() == Some(topic) || self.set.contains(topic)
    }

    /// Remembers `topic` as allowed under the authorization last passed to `contains`.
    pub fn insert(&mut self, topic: &str) {
        if self.set.len() >= MAX_ALLOWED_TOPICS {
            self.set.clear();
        }
        let topic: Box<str> = topic.into();
        self.set.insert(topic.clone());
        self.last = Some(topic);
    }
}

/// FNV-1a: fast on short keys. The set is bounded, so colliding topics a client chooses cost
/// at most a scan of [`MAX_ALLOWED_TOPICS`] entries.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Open connections by what their authorization depends on, so that a registry change reaches
/// exactly the connections it concerns: a revoked certificate's (closed), those of a changed
/// policy, thing or group (re-authorized).
///
/// Lost updates are excluded by an epoch: whoever is about to look connections up after a
/// change bumps it first ([`ConnectionIndex::bump`]), and a CONNECT resolves its grant again
/// until the epoch stayed the same from before its resolution to after it filed itself.
#[derive(Default)]
pub(crate) struct ConnectionIndex {
    by_key: Mutex<HashMap<Dependency, HashMap<u64, Arc<Principal>>>>,
    epoch: AtomicU64,
}

impl ConnectionIndex {
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Files `principal` under exactly `deps` (replacing what it was filed under), and under
    /// its server name.
    pub fn set(&self, principal: &Arc<Principal>, mut deps: Vec<Dependency>) {
        if let Some(name) = &principal.base.domain_name {
            deps.push(Dependency::ServerName(name.to_ascii_lowercase()));
        }
        deps.sort();
        deps.dedup();
        let mut by_key = self.by_key.lock();
        let mut filed = principal.deps.lock();
        for old in filed.iter() {
            if deps.binary_search(old).is_err()
                && let Some(conns) = by_key.get_mut(old)
            {
                conns.remove(&principal.conn_id);
                if conns.is_empty() {
                    by_key.remove(old);
                }
            }
        }
        for new in &deps {
            if filed.binary_search(new).is_err() {
                by_key
                    .entry(new.clone())
                    .or_default()
                    .insert(principal.conn_id, principal.clone());
            }
        }
        *filed = deps;
    }

    pub fn remove(&self, principal: &Principal) {
        let mut by_key = self.by_key.lock();
        let mut filed = principal.deps.lock();
        for key in filed.drain(..) {
            if let Some(conns) = by_key.get_mut(&key) {
                conns.remove(&principal.conn_id);
                if conns.is_empty() {
                    by_key.remove(&key);
                }
            }
        }
    }

    /// The connections filed under any of `keys`, each once.
    pub fn lookup(&self, keys: &[Dependency]) -> Vec<Arc<Principal>> {
        let by_key = self.by_key.lock();
        let mut found: HashMap<u64, Arc<Principal>> = HashMap::new();
        for key in keys {
            if let Some(conns) = by_key.get(key) {
                for (id, p) in conns {
                    found.entry(*id).or_insert_with(|| p.clone());
                }
            }
        }
        found.into_values().collect()
    }

    pub fn count(&self, key: &Dependency) -> usize {
        self.by_key.lock().get(key).map_or(0, HashMap::len)
    }

    pub fn certificate_ids(&self) -> Vec<String> {
        self.by_key
            .lock()
            .keys()
            .filter_map(|k| match k {
                Dependency::Certificate(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A connection's place in the [`ConnectionIndex`], removed when dropped.
pub(crate) struct Indexed {
    pub index: Arc<ConnectionIndex>,
    pub principal: Arc<Principal>,
}

impl Drop for Indexed {
    fn drop(&mut self) {
        self.index.remove(&self.principal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_topics_are_forgotten_when_the_authorization_changes_and_bounded() {
        let mut c = AllowedTopics::default();
        assert!(!c.contains(1, "a"));
        c.insert("a");
        assert!(c.contains(1, "a"));
        c.insert("b");
        assert!(c.contains(1, "a") && c.contains(1, "b") && !c.contains(1, "c"));
        // Another authorization: nothing is known.
        assert!(!c.contains(2, "a"));
        assert!(!c.contains(2, "b"));
        for i in 0..MAX_ALLOWED_TOPICS {
            c.insert(&format!("t/{i}"));
        }
        assert!(c.set.len() <= MAX_ALLOWED_TOPICS);
        c.insert("one more");
        assert!(c.set.len() <= MAX_ALLOWED_TOPICS);
        assert!(c.contains(2, "one more"));
    }

    #[test]
    fn fnv_matches_its_reference_values() {
        let hash = |s: &str| {
            let mut h = Fnv::default();
            h.write(s.as_bytes());
            h.finish()
        };
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
