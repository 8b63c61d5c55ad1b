//! The control-plane registry: things, thing types, thing groups, certificates, CA
//! certificates, policies, custom authorizers, server certificates, domain configurations and
//! the attachments between them, with AWS IoT's rules.
//!
//! Split in two so the rules are testable without I/O:
//! - operations (in the submodules) are pure functions of a [`RegistryState`] and a [`Ctx`]
//!   (time, ARNs) that either refuse with a [`RegistryError`] or return their answer and the
//!   [`Change`]s they make, without applying them;
//! - [`Registry`] is the live handle: it runs one operation at a time, makes its changes durable
//!   in the [`Store`] (as opaque JSON records), applies them to the in-memory state only once
//!   they are committed, and then tells its listeners (the index of open connections, events).
//!
//! Reads ([`Registry::read`]) take a short read lock and never wait for the store: the TLS
//! handshake checks certificates against the same state the control plane changes.

mod authorizers;
mod certificates;
mod device;
mod domains;
mod events;
mod policies;
mod things;

pub use authorizers::*;
pub use certificates::*;
pub use device::*;
pub use domains::*;
pub use events::*;
pub use policies::*;
pub use things::*;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use ferrocore_store::{RegistryRecord, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Why an operation was refused; each maps to the AWS exception an SDK raises for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{message}")]
    ResourceAlreadyExists {
        message: String,
        resource_id: Option<String>,
        resource_arn: Option<String>,
    },
    #[error("{0}")]
    VersionConflict(String),
    #[error("{0}")]
    CertificateState(String),
    #[error("{0}")]
    CertificateValidation(String),
    #[error("{0}")]
    CertificateConflict(String),
    #[error("{0}")]
    RegistrationCodeValidation(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// A policy document that is not a valid IoT policy (the message is
    /// [`ferrocore_policy::PolicyError`]'s).
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    VersionsLimitExceeded(String),
    #[error("{0}")]
    InternalFailure(String),
}

impl RegistryError {
    /// The AWS exception name (`x-amzn-ErrorType`).
    pub fn aws_error_code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequestException",
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::ResourceAlreadyExists { .. } => "ResourceAlreadyExistsException",
            Self::VersionConflict(_) => "VersionConflictException",
            Self::CertificateState(_) => "CertificateStateException",
            Self::CertificateValidation(_) => "CertificateValidationException",
            Self::CertificateConflict(_) => "CertificateConflictException",
            Self::RegistrationCodeValidation(_) => "RegistrationCodeValidationException",
            Self::DeleteConflict(_) => "DeleteConflictException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::MalformedPolicy(_) => "MalformedPolicyException",
            Self::VersionsLimitExceeded(_) => "VersionsLimitExceededException",
            Self::InternalFailure(_) => "InternalFailureException",
        }
    }

    /// The HTTP status AWS sends with [`Self::aws_error_code`] (botocore's `iot` model).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_)
            | Self::CertificateValidation(_)
            | Self::RegistrationCodeValidation(_)
            | Self::MalformedPolicy(_) => 400,
            Self::ResourceNotFound(_) => 404,
            Self::CertificateState(_) => 406,
            Self::ResourceAlreadyExists { .. }
            | Self::VersionConflict(_)
            | Self::CertificateConflict(_)
            | Self::DeleteConflict(_)
            | Self::VersionsLimitExceeded(_) => 409,
            Self::LimitExceeded(_) => 410,
            Self::InternalFailure(_) => 500,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest(message.into())
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::ResourceNotFound(message.into())
    }

    /// `ResourceAlreadyExistsException` naming the resource that exists.
    pub(crate) fn already_exists(message: impl Into<String>, id: &str, arn: String) -> Self {
        Self::ResourceAlreadyExists {
            message: message.into(),
            resource_id: Some(id.to_owned()),
            resource_arn: Some(arn),
        }
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        Self::InternalFailure(format!("the change could not be stored: {e}"))
    }
}

/// Builds the ARNs of one region and account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arns {
    pub region: String,
    pub account_id: String,
}

impl Arns {
    /// `arn:aws:iot:<region>:<account>:<resource>`, e.g. resource `thing/lamp`.
    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:iot:{}:{}:{resource}", self.region, self.account_id)
    }

    /// The resource part (`thing/lamp`) of an ARN of this region and account, or `None`.
    pub fn resource<'a>(&self, arn: &'a str) -> Option<&'a str> {
        arn.strip_prefix("arn:aws:iot:")?
            .strip_prefix(self.region.as_str())?
            .strip_prefix(':')?
            .strip_prefix(self.account_id.as_str())?
            .strip_prefix(':')
    }
}

/// What an operation may know besides the state: the time and the ARNs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Unix time in milliseconds.
    pub now_ms: i64,
    pub arns: Arns,
}

impl Ctx {
    /// `now` as AWS timestamps go in JSON bodies: epoch seconds.
    pub fn now_seconds(&self) -> f64 {
        millis_to_seconds(self.now_ms)
    }
}

pub fn millis_to_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A random UUID (version 4), as AWS resource ids are.
pub fn uuid_v4() -> Result<String, RegistryError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| RegistryError::InternalFailure("no randomness".into()))?;
    Ok(uuid_string(b, 4))
}

/// `b` as a UUID of `version` (RFC 9562 variant bits set).
pub(crate) fn uuid_string(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One change an operation makes; `None` deletes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Thing {
        name: String,
        new: Option<Thing>,
    },
    ThingType {
        name: String,
        new: Option<ThingType>,
    },
    ThingGroup {
        name: String,
        new: Option<ThingGroup>,
    },
    GroupMembership {
        group: String,
        thing: String,
        member: bool,
    },
    Certificate {
        id: String,
        new: Option<CertificateRecord>,
    },
    CaCertificate {
        id: String,
        new: Option<CaCertificateRecord>,
    },
    ThingPrincipal {
        thing: String,
        principal: String,
        new: Option<ThingPrincipal>,
    },
    /// The account's CA registration code (`GetRegistrationCode`).
    RegistrationCode {
        new: Option<String>,
    },
    /// A policy, with all its versions.
    Policy {
        name: String,
        new: Option<PolicyRecord>,
    },
    /// A policy attached to (or detached from) a target: a certificate ARN or a thing-group
    /// ARN.
    PolicyAttachment {
        policy: String,
        target: String,
        attached: bool,
    },
    /// The account's registry event configurations (`UpdateEventConfigurations`).
    EventConfigurations {
        new: EventConfigurations,
    },
    /// A custom authorizer.
    Authorizer {
        name: String,
        new: Option<AuthorizerRecord>,
    },
    /// The account's default authorizer (`SetDefaultAuthorizer`, `ClearDefaultAuthorizer`).
    DefaultAuthorizer {
        new: Option<String>,
    },
    /// An imported server certificate (keyed by its ACM ARN).
    ServerCertificate {
        arn: String,
        new: Option<ServerCertificateRecord>,
    },
    /// A domain configuration.
    DomainConfiguration {
        name: String,
        new: Option<DomainConfigurationRecord>,
    },
}

/// The empty answer (`{}`) of the operations that return nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

/// A thing's attachment of a principal (certificate ARN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingPrincipal {
    pub thing: String,
    pub principal: String,
    /// `EXCLUSIVE_THING`: the principal may be attached to this thing only.
    pub exclusive: bool,
}

/// Everything the registry holds. Maps are ordered so listings page stably by name or id.
#[derive(Debug, Clone, Default)]
pub struct RegistryState {
    pub things: BTreeMap<String, Thing>,
    pub thing_types: BTreeMap<String, ThingType>,
    pub thing_groups: BTreeMap<String, ThingGroup>,
    /// (group, thing) of static group memberships.
    pub group_things: BTreeSet<(String, String)>,
    /// (thing, group): the same memberships by thing.
    pub thing_groups_of: BTreeSet<(String, String)>,
    pub certificates: BTreeMap<String, CertificateRecord>,
    pub ca_certificates: BTreeMap<String, CaCertificateRecord>,
    /// (thing, principal) attachments.
    pub thing_principals: BTreeMap<(String, String), ThingPrincipal>,
    /// (principal, thing): the same attachments by principal.
    pub principal_things: BTreeSet<(String, String)>,
    pub registration_code: Option<String>,
    pub policies: BTreeMap<String, PolicyRecord>,
    /// (policy, target ARN) attachments.
    pub policy_targets: BTreeSet<(String, String)>,
    /// (target ARN, policy): the same attachments by target.
    pub target_policies: BTreeSet<(String, String)>,
    /// Which registry events are published; `None` until first updated (all off).
    pub event_configurations: Option<EventConfigurations>,
    pub authorizers: BTreeMap<String, AuthorizerRecord>,
    /// The name of the account's default authorizer.
    pub default_authorizer: Option<String>,
    /// Imported server certificates by ACM ARN.
    pub server_certificates: BTreeMap<String, ServerCertificateRecord>,
    /// Domain configurations by name (the built-in endpoint's only once updated).
    pub domain_configurations: BTreeMap<String, DomainConfigurationRecord>,
    /// The region and account of the ARNs the state holds (set by [`Registry::open`]).
    pub arns: Arns,
    /// Configured limits (not stored; [`Registry::set_policy_limits`]).
    pub policy_limits: PolicyLimits,
}

// Record kinds in the store.
const KIND_THING: &str = "thing";
const KIND_THING_TYPE: &str = "thing_type";
const KIND_THING_GROUP: &str = "thing_group";
const KIND_GROUP_MEMBER: &str = "group_member";
const KIND_CERTIFICATE: &str = "certificate";
const KIND_CA_CERTIFICATE: &str = "ca_certificate";
const KIND_THING_PRINCIPAL: &str = "thing_principal";
const KIND_REGISTRATION_CODE: &str = "registration_code";
const KIND_POLICY: &str = "policy";
const KIND_POLICY_ATTACHMENT: &str = "policy_attachment";
const KIND_EVENT_CONFIGURATIONS: &str = "event_configurations";
const KIND_AUTHORIZER: &str = "authorizer";
const KIND_DEFAULT_AUTHORIZER: &str = "default_authorizer";
const KIND_SERVER_CERTIFICATE: &str = "server_certificate";
const KIND_DOMAIN_CONFIGURATION: &str = "domain_configuration";

/// Separates the two names of a pair key; neither thing nor group names may contain it.
const PAIR_SEPARATOR: char = '\n';

/// A membership as stored: the pair is the key, the document is empty.
#[derive(Serialize, Deserialize)]
struct Membership {
    group: String,
    thing: String,
}

/// A policy attachment as stored (key: policy and target).
#[derive(Serialize, Deserialize)]
struct PolicyAttachment {
    policy: String,
    target: String,
}

impl RegistryState {
    /// Applies committed changes.
    pub fn apply(&mut self, changes: &[Change]) {
        for change in changes {
            self.apply_one(change);
        }
    }

    fn apply_one(&mut self, change: &Change) {
        fn set<V: Clone>(map: &mut BTreeMap<String, V>, key: &str, new: &Option<V>) {
            match new {
                Some(v) => {
                    map.insert(key.to_owned(), v.clone());
                }
                None => {
                    map.remove(key);
                }
            }
        }
        match change {
            Change::Thing { name, new } => set(&mut self.things, name, new),
            Change::ThingType { name, new } => set(&mut self.thing_types, name, new),
            Change::ThingGroup { name, new } => set(&mut self.thing_groups, name, new),
            Change::Certificate { id, new } => set(&mut self.certificates, id, new),
            Change::CaCertificate { id, new } => set(&mut self.ca_certificates, id, new),
            Change::GroupMembership {
                group,
                thing,
                member,
            } => {
                let by_group = (group.clone(), thing.clone());
                let by_thing = (thing.clone(), group.clone());
                if *member {
                    self.group_things.insert(by_group);
                    self.thing_groups_of.insert(by_thing);
                } else {
                    self.group_things.remove(&by_group);
                    self.thing_groups_of.remove(&by_thing);
                }
            }
            Change::ThingPrincipal {
                thing,
                principal,
                new,
            } => {
                let key = (thing.clone(), principal.clone());
                let reverse = (principal.clone(), thing.clone());
                match new {
                    Some(v) => {
                        self.thing_principals.insert(key, v.clone());
                        self.principal_things.insert(reverse);
                    }
                    None => {
                        self.thing_principals.remove(&key);
                        self.principal_things.remove(&reverse);
                    }
                }
            }
            Change::RegistrationCode { new } => self.registration_code = new.clone(),
            Change::Policy { name, new } => set(&mut self.policies, name, new),
            Change::PolicyAttachment {
                policy,
                target,
                attached,
            } => {
                let by_policy = (policy.clone(), target.clone());
                let by_target = (target.clone(), policy.clone());
                if *attached {
                    self.policy_targets.insert(by_policy);
                    self.target_policies.insert(by_target);
                } else {
                    self.policy_targets.remove(&by_policy);
                    self.target_policies.remove(&by_target);
                }
            }
            Change::EventConfigurations { new } => {
                self.event_configurations = Some(new.clone());
            }
            Change::Authorizer { name, new } => set(&mut self.authorizers, name, new),
            Change::DefaultAuthorizer { new } => self.default_authorizer = new.clone(),
            Change::ServerCertificate { arn, new } => set(&mut self.server_certificates, arn, new),
            Change::DomainConfiguration { name, new } => {
                set(&mut self.domain_configurations, name, new)
            }
        }
    }

    /// Rebuilds the state from the store's records.
    pub fn from_records(records: &[RegistryRecord]) -> Result<RegistryState, RegistryError> {
        fn doc<T: DeserializeOwned>(r: &RegistryRecord) -> Result<T, RegistryError> {
            serde_json::from_slice(&r.document).map_err(|e| {
                RegistryError::InternalFailure(format!(
                    "corrupt {} record {:?} in the store: {e}",
                    r.kind, r.key
                ))
            })
        }
        let mut state = RegistryState::default();
        let mut changes = Vec::with_capacity(records.len());
        for r in records {
            let key = r.key.clone();
            changes.push(match r.kind.as_str() {
                KIND_THING => Change::Thing {
                    name: key,
                    new: Some(doc(r)?),
                },
                KIND_THING_TYPE => Change::ThingType {
                    name: key,
                    new: Some(doc(r)?),
                },
                KIND_THING_GROUP => Change::ThingGroup {
                    name: key,
                    new: Some(doc(r)?),
                },
                KIND_GROUP_MEMBER => {
                    let m: Membership = doc(r)?;
                    Change::GroupMembership {
                        group: m.group,
                        thing: m.thing,
                        member: true,
                    }
                }
                KIND_CERTIFICATE => Change::Certificate {
                    id: key,
                    new: Some(doc(r)?),
                },
                KIND_CA_CERTIFICATE => Change::CaCertificate {
                    id: key,
                    new: Some(doc(r)?),
                },
                KIND_THING_PRINCIPAL => {
                    let p: ThingPrincipal = doc(r)?;
                    Change::ThingPrincipal {
                        thing: p.thing.clone(),
                        principal: p.principal.clone(),
                        new: Some(p),
                    }
                }
                KIND_REGISTRATION_CODE => Change::RegistrationCode { new: Some(doc(r)?) },
                KIND_POLICY => Change::Policy {
                    name: key,
                    new: Some(doc(r)?),
                },
                KIND_POLICY_ATTACHMENT => {
                    let a: PolicyAttachment = doc(r)?;
                    Change::PolicyAttachment {
                        policy: a.policy,
                        target: a.target,
                        attached: true,
                    }
                }
                KIND_EVENT_CONFIGURATIONS => Change::EventConfigurations { new: doc(r)? },
                KIND_AUTHORIZER => Change::Authorizer {
                    name: key,
                    new: Some(doc(r)?),
                },
                KIND_DEFAULT_AUTHORIZER => Change::DefaultAuthorizer { new: Some(doc(r)?) },
                KIND_SERVER_CERTIFICATE => Change::ServerCertificate {
                    arn: key,
                    new: Some(doc(r)?),
                },
                KIND_DOMAIN_CONFIGURATION => Change::DomainConfiguration {
                    name: key,
                    new: Some(doc(r)?),
                },
                // A kind written by a newer version: kept in the store, ignored here.
                _ => continue,
            });
        }
        state.apply(&changes);
        Ok(state)
    }
}

impl Change {
    /// The store operation that makes this change durable.
    fn write_op(&self) -> Result<WriteOp, RegistryError> {
        fn put<T: Serialize>(kind: &str, key: String, value: &T) -> Result<WriteOp, RegistryError> {
            let document = serde_json::to_vec(value)
                .map_err(|e| RegistryError::InternalFailure(format!("cannot encode: {e}")))?;
            Ok(WriteOp::PutRegistry(RegistryRecord {
                kind: kind.to_owned(),
                key,
                document: Bytes::from(document),
            }))
        }
        fn delete(kind: &str, key: String) -> Result<WriteOp, RegistryError> {
            Ok(WriteOp::DeleteRegistry {
                kind: kind.to_owned(),
                key,
            })
        }
        fn put_or_delete<T: Serialize>(
            kind: &str,
            key: &str,
            new: &Option<T>,
        ) -> Result<WriteOp, RegistryError> {
            match new {
                Some(v) => put(kind, key.to_owned(), v),
                None => delete(kind, key.to_owned()),
            }
        }
        fn pair(a: &str, b: &str) -> String {
            format!("{a}{PAIR_SEPARATOR}{b}")
        }
        match self {
            Change::Thing { name, new } => put_or_delete(KIND_THING, name, new),
            Change::ThingType { name, new } => put_or_delete(KIND_THING_TYPE, name, new),
            Change::ThingGroup { name, new } => put_or_delete(KIND_THING_GROUP, name, new),
            Change::Certificate { id, new } => put_or_delete(KIND_CERTIFICATE, id, new),
            Change::CaCertificate { id, new } => put_or_delete(KIND_CA_CERTIFICATE, id, new),
            Change::GroupMembership {
                group,
                thing,
                member,
            } => {
                let key = pair(group, thing);
                if *member {
                    let m = Membership {
                        group: group.clone(),
                        thing: thing.clone(),
                    };
                    put(KIND_GROUP_MEMBER, key, &m)
                } else {
                    delete(KIND_GROUP_MEMBER, key)
                }
            }
            Change::ThingPrincipal {
                thing,
                principal,
                new,
            } => put_or_delete(KIND_THING_PRINCIPAL, &pair(thing, principal), new),
            Change::RegistrationCode { new } => put_or_delete(KIND_REGISTRATION_CODE, "", new),
            Change::Policy { name, new } => put_or_delete(KIND_POLICY, name, new),
            Change::PolicyAttachment {
                policy,
                target,
                attached,
            } => {
                let key = pair(policy, target);
                if *attached {
                    let a = PolicyAttachment {
                        policy: policy.clone(),
                        target: target.clone(),
                    };
                    put(KIND_POLICY_ATTACHMENT, key, &a)
                } else {
                    delete(KIND_POLICY_ATTACHMENT, key)
                }
            }
            Change::EventConfigurations { new } => {
                put(KIND_EVENT_CONFIGURATIONS, String::new(), new)
            }
            Change::Authorizer { name, new } => put_or_delete(KIND_AUTHORIZER, name, new),
            Change::DefaultAuthorizer { new } => put_or_delete(KIND_DEFAULT_AUTHORIZER, "", new),
            Change::ServerCertificate { arn, new } => {
                put_or_delete(KIND_SERVER_CERTIFICATE, arn, new)
            }
            Change::DomainConfiguration { name, new } => {
                put_or_delete(KIND_DOMAIN_CONFIGURATION, name, new)
            }
        }
    }
}

/// Called with every committed batch of changes, in commit order, after the state has them.
pub type Listener = Arc<dyn Fn(&[Change]) + Send + Sync>;

/// Called with the registry events of every committed batch that announces any (their types
/// enabled), in commit order, after the [`Listener`]s.
pub type EventListener = Arc<dyn Fn(&[RegistryEvent]) + Send + Sync>;

/// The live registry: one writer at a time, durable before visible.
pub struct Registry {
    state: parking_lot::RwLock<RegistryState>,
    /// Serialises operations from reading the state to applying their committed changes.
    writer: tokio::sync::Mutex<()>,
    store: Store,
    arns: Arns,
    listeners: parking_lot::Mutex<Vec<Listener>>,
    event_listeners: parking_lot::Mutex<Vec<EventListener>>,
    /// Compiled policy versions ([`Registry::authorization`]).
    policy_cache: PolicyCache,
}

impl Registry {
    /// Loads the registry from `store`.
    pub async fn open(store: Store, arns: Arns) -> Result<Registry, RegistryError> {
        let records = store.load_registry().await?;
        let mut state = RegistryState::from_records(&records)?;
        state.arns = arns.clone();
        Ok(Registry {
            state: parking_lot::RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
            store,
            arns,
            listeners: parking_lot::Mutex::new(Vec::new()),
            event_listeners: parking_lot::Mutex::new(Vec::new()),
            policy_cache: PolicyCache::default(),
        })
    }

    /// Replaces the policy limits (AWS's quotas by default).
    pub fn set_policy_limits(&self, limits: PolicyLimits) {
        self.state.write().policy_limits = limits;
    }

    /// What a device connecting with `certificate_id` and `client_id` may do: AWS's
    /// applicable policy set ([`RegistryState::connection_policies`]), compiled from the
    /// cache (nothing is parsed twice), with the connection's thing and certificate
    /// variables and what the answer depends on. The lock is held only to resolve.
    pub fn authorization(
        &self,
        certificate_id: &str,
        client_id: &str,
    ) -> Result<ConnectionAuthorization, RegistryError> {
        let (resolved, pem) = self.read(|s| {
            (
                s.connection_policies(certificate_id, client_id),
                s.certificates.get(certificate_id).map(|c| c.pem.clone()),
            )
        });
        let certificate = pem.map(|pem| certificate_context(certificate_id, &pem));
        ConnectionAuthorization::compile(&self.policy_cache, resolved, certificate)
    }

    /// The cache of compiled policy versions.
    pub fn policy_cache(&self) -> &PolicyCache {
        &self.policy_cache
    }

    pub fn arns(&self) -> &Arns {
        &self.arns
    }

    /// A context for an operation at the current time.
    pub fn ctx(&self) -> Ctx {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Ctx {
            now_ms,
            arns: self.arns.clone(),
        }
    }

    /// Reads the state; keep `f` short (it holds a read lock that writers wait for).
    pub fn read<T>(&self, f: impl FnOnce(&RegistryState) -> T) -> T {
        f(&self.state.read())
    }

    /// Runs the operation `op`, then makes its changes durable, visible and known to the
    /// listeners before answering.
    pub async fn write<T>(
        &self,
        op: impl FnOnce(&RegistryState, &Ctx) -> Result<(T, Vec<Change>), RegistryError>,
    ) -> Result<T, RegistryError> {
        let _writer = self.writer.lock().await;
        let ctx = self.ctx();
        let (answer, changes, events) = {
            let state = self.state.read();
            let (answer, changes) = op(&state, &ctx)?;
            // From the state the changes replace (a deletion announces what was deleted);
            // published only once they are committed.
            let events = registry_events(&state, &changes, &ctx, uuid_v4)?;
            (answer, changes, events)
        };
        if changes.is_empty() {
            return Ok(answer);
        }
        let ops = changes
            .iter()
            .map(Change::write_op)
            .collect::<Result<Vec<_>, _>>()?;
        self.store.submit(ops).await?;
        self.state.write().apply(&changes);
        self.policy_cache.forget(&changes);
        let listeners = self.listeners.lock().clone();
        for listener in &listeners {
            listener(&changes);
        }
        if !events.is_empty() {
            let event_listeners = self.event_listeners.lock().clone();
            for listener in &event_listeners {
                listener(&events);
            }
        }
        Ok(answer)
    }

    /// Calls `listener` with every batch of changes committed from now on.
    pub fn subscribe(&self, listener: Listener) {
        self.listeners.lock().push(listener);
    }

    /// Calls `listener` with the registry events of every batch committed from now on.
    pub fn subscribe_events(&self, listener: EventListener) {
        self.event_listeners.lock().push(listener);
    }
}

/// Largest `maxResults` / `pageSize` of the listings (botocore's `RegistryMaxResults` and
/// `PageSize`).
pub const MAX_PAGE_SIZE: usize = 250;

/// A listing's page size: `given` (the parameter `name` in errors) from 1 to
/// [`MAX_PAGE_SIZE`], else `default`.
pub(crate) fn page_size<N>(
    given: Option<N>,
    default: usize,
    name: &str,
) -> Result<usize, RegistryError>
where
    N: Copy + std::fmt::Display + TryInto<usize>,
{
    let Some(n) = given else {
        return Ok(default);
    };
    match n.try_into() {
        Ok(size) if (1..=MAX_PAGE_SIZE).contains(&size) => Ok(size),
        _ => Err(RegistryError::invalid(format!(
            "{name} {n} is invalid: it must be between 1 and {MAX_PAGE_SIZE}."
        ))),
    }
}

/// Whether `s` is 1 to `max_len` ASCII letters, digits and bytes of `punctuation`.
pub(crate) fn is_name(s: &str, max_len: usize, punctuation: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max_len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || punctuation.contains(&b))
}

/// The entries of `map` after the key a pagination token names (all when there is none).
pub fn after_token<'a, V>(
    map: &'a BTreeMap<String, V>,
    token: Option<&str>,
) -> Result<impl Iterator<Item = (&'a String, &'a V)> + 'a, RegistryError> {
    use std::ops::Bound;
    let start = match token {
        Some(t) => Bound::Excluded(decode_token(t)?),
        None => Bound::Unbounded,
    };
    Ok(map.range((start, Bound::Unbounded)))
}

/// At most `limit` items of `items` (keyed, in order), and the token of the next page when
/// more remain. Tokens are the last key returned, hex encoded: opaque to clients and safe in a
/// query string.
pub fn page<'a, V: 'a>(
    items: impl Iterator<Item = (&'a String, &'a V)>,
    limit: usize,
) -> (Vec<&'a V>, Option<String>) {
    let mut out = Vec::new();
    let mut last = None;
    for (k, v) in items {
        if out.len() == limit {
            return (out, last.map(|k: &String| encode_token(k)));
        }
        out.push(v);
        last = Some(k);
    }
    (out, None)
}

pub fn encode_token(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_token(token: &str) -> Result<String, RegistryError> {
    let bad = || RegistryError::invalid("The pagination token is invalid.");
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
pub(crate) mod tests;
