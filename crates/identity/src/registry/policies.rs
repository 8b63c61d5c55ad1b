//! IoT policies in the registry: the named, versioned policies, their attachments to
//! certificates and static thing groups, and the resolver that says which policies are in
//! force for a connection — the one the broker enforces and GetEffectivePolicies and
//! TestAuthorization answer with.
//!
//! **The applicable set** (AWS IoT developer guide, "Authorization" / thing groups; reference
//! §1.5) of a device connecting with certificate C and client id I is the default versions of:
//! - the policies attached to C, and
//! - the policies attached to the static groups of the connection's thing, and to all their
//!   ancestor groups.
//!
//! The connection's thing ([`RegistryState::connection_thing`]) is the thing C is attached to
//! with `EXCLUSIVE_THING`, else the thing named I if C is attached to it (non-exclusively):
//! with a non-exclusive association AWS takes the thing from the client id and requires it to
//! be attached to the principal.
//!
//! [`Registry::authorization`](super::Registry::authorization) compiles that set once per
//! connection from a cache of compiled policy versions, so nothing parses per connection, and
//! returns with it the [`Dependencies`] a change must touch to require recomputing it
//! ([`Change::dependency_keys`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ferrocore_policy::{
    Action, AltNameKind, CertificateContext, CompiledPolicy, Decision, DnField, Effect, Outcome,
    PolicySet, Request, ThingContext,
};
use serde::{Deserialize, Serialize};

use super::certificates::page_by_creation;
use super::{
    Arns, Change, Ctx, DEFAULT_PAGE_SIZE, Empty, MarkerPage, RegistryError, RegistryState, Tag,
    Thing, decode_token, encode_token, is_name, millis_to_seconds, uuid_v4, validate_name,
};

// ---------------------------------------------------------------------------------------------
// Stored records

/// One version of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionRecord {
    /// The document as given (validated with [`ferrocore_policy::parse`]).
    pub document: String,
    pub create_date_ms: i64,
}

/// A named policy with its versions (at most [`MAX_POLICY_VERSIONS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    pub name: String,
    pub versions: BTreeMap<u64, PolicyVersionRecord>,
    /// Always one of `versions`.
    pub default_version: u64,
    /// The id the next `CreatePolicyVersion` gets (ids are never reused within a policy).
    pub next_version: u64,
    pub creation_date_ms: i64,
    pub last_modified_date_ms: i64,
    /// A UUID, new on every change.
    pub generation_id: String,
}

impl PolicyRecord {
    /// The default version's document.
    pub fn default_document(&self) -> &str {
        self.versions
            .get(&self.default_version)
            .map_or("", |v| v.document.as_str())
    }
}

/// Versions a policy may have.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// Limits an installation may change (AWS's quotas by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyLimits {
    /// Policies attached to one certificate (AWS: 10, "Maximum number of policies that can be
    /// attached to a certificate or Amazon Cognito identity").
    pub max_policies_per_certificate: usize,
    /// Policies attached to one thing group (AWS: 2, thing-groups guide: "You can attach a
    /// maximum number of two policies to a group").
    pub max_policies_per_thing_group: usize,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        PolicyLimits {
            max_policies_per_certificate: 10,
            max_policies_per_thing_group: 2,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Targets

/// What a policy is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A certificate, by id.
    Certificate(&'a str),
    /// A static thing group, by name.
    ThingGroup(&'a str),
}

impl<'a> Target<'a> {
    /// The target an ARN of this region and account names (`cert/<id>`, `thinggroup/<name>`).
    pub fn parse(arns: &Arns, arn: &'a str) -> Option<Target<'a>> {
        let resource = arns.resource(arn)?;
        if let Some(id) = resource.strip_prefix("cert/") {
            Some(Target::Certificate(id))
        } else {
            resource.strip_prefix("thinggroup/").map(Target::ThingGroup)
        }
    }
}

pub fn certificate_arn(arns: &Arns, id: &str) -> String {
    arns.arn(&format!("cert/{id}"))
}

pub fn thing_group_arn(arns: &Arns, name: &str) -> String {
    arns.arn(&format!("thinggroup/{name}"))
}

pub fn policy_arn(arns: &Arns, name: &str) -> String {
    arns.arn(&format!("policy/{name}"))
}

/// The second members of the pairs in `set` whose first member is `first`, in order.
fn seconds<'a>(
    set: &'a BTreeSet<(String, String)>,
    first: &'a str,
) -> impl Iterator<Item = &'a String> + 'a {
    set.range((first.to_owned(), String::new())..)
        .take_while(move |(a, _)| a == first)
        .map(|(_, b)| b)
}

impl RegistryState {
    pub fn policy(&self, name: &str) -> Result<&PolicyRecord, RegistryError> {
        self.policies
            .get(name)
            .ok_or_else(|| RegistryError::not_found(format!("Policy {name} cannot be found.")))
    }

    /// The names of the policies attached to `target` (an ARN), in name order.
    pub fn policies_of_target<'a>(
        &'a self,
        target: &'a str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        seconds(&self.target_policies, target)
    }

    /// The targets (ARNs) `policy` is attached to, in order.
    pub fn targets_of_policy<'a>(
        &'a self,
        policy: &'a str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        seconds(&self.policy_targets, policy)
    }
}

// ---------------------------------------------------------------------------------------------
// The resolver

/// A policy in force: (name, default version id, that version's document).
pub type EffectivePolicy = (String, u64, String);

/// What a connection's policy set was computed from: a change that touches any of these
/// ([`Change::dependency_keys`]) may change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    pub certificate_id: String,
    /// The connection's thing (its attributes, type and group memberships matter).
    pub thing: Option<String>,
    /// The thing's static groups and all their ancestors.
    pub groups: Vec<String>,
    /// Every policy in the set.
    pub policies: Vec<String>,
}

/// One thing a connection's authorization can depend on; what [`Change::dependency_keys`]
/// reports and what an index of open connections is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DependencyKey {
    Certificate(String),
    Thing(String),
    ThingGroup(String),
    Policy(String),
}

impl Dependencies {
    /// Every key of these dependencies.
    pub fn keys(&self) -> Vec<DependencyKey> {
        let mut keys = vec![DependencyKey::Certificate(self.certificate_id.clone())];
        keys.extend(self.thing.iter().cloned().map(DependencyKey::Thing));
        keys.extend(self.groups.iter().cloned().map(DependencyKey::ThingGroup));
        keys.extend(self.policies.iter().cloned().map(DependencyKey::Policy));
        keys
    }

    /// Whether `change` may change the policy set these dependencies describe.
    pub fn is_touched_by(&self, change: &Change, arns: &Arns) -> bool {
        change.dependency_keys(arns).iter().any(|k| match k {
            DependencyKey::Certificate(id) => *id == self.certificate_id,
            DependencyKey::Thing(t) => self.thing.as_ref() == Some(t),
            DependencyKey::ThingGroup(g) => self.groups.contains(g),
            DependencyKey::Policy(p) => self.policies.contains(p),
        })
    }
}

impl Change {
    /// What this change touches, for recomputing the authorization of open connections: a
    /// connection whose [`Dependencies::keys`] share a key with it must be recomputed.
    ///
    /// - a certificate (its record, its thing attachments, the policies attached to it);
    /// - a thing (its record — attributes, type — and its group memberships);
    /// - a thing group (its record and the policies attached to it);
    /// - a policy (its versions and default version, and its attachments).
    pub fn dependency_keys(&self, arns: &Arns) -> Vec<DependencyKey> {
        let target_key = |arn: &str| match Target::parse(arns, arn) {
            Some(Target::Certificate(id)) => Some(DependencyKey::Certificate(id.to_owned())),
            Some(Target::ThingGroup(g)) => Some(DependencyKey::ThingGroup(g.to_owned())),
            None => None,
        };
        match self {
            Change::Thing { name, .. } => vec![DependencyKey::Thing(name.clone())],
            Change::ThingGroup { name, .. } => vec![DependencyKey::ThingGroup(name.clone())],
            Change::GroupMembership { group, thing, .. } => vec![
                DependencyKey::Thing(thing.clone()),
                DependencyKey::ThingGroup(group.clone()),
            ],
            Change::Certificate { id, .. } => vec![DependencyKey::Certificate(id.clone())],
            Change::ThingPrincipal {
                thing, principal, ..
            } => {
                let mut keys = vec![DependencyKey::Thing(thing.clone())];
                keys.extend(target_key(principal));
                keys
            }
            Change::Policy { name, .. } => vec![DependencyKey::Policy(name.clone())],
            Change::PolicyAttachment { policy, target, .. } => {
                let mut keys = vec![DependencyKey::Policy(policy.clone())];
                keys.extend(target_key(target));
                keys
            }
            Change::ThingType { .. }
            | Change::CaCertificate { .. }
            | Change::RegistrationCode { .. }
            | Change::EventConfigurations { .. }
            | Change::Authorizer { .. }
            | Change::DefaultAuthorizer { .. }
            | Change::ServerCertificate { .. }
            | Change::DomainConfiguration { .. } => Vec::new(),
        }
    }
}

/// The policies in force for a connection, uncompiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionPolicies {
    /// The connection's thing, if any (`iot:Connection.Thing.*`).
    pub thing: Option<Thing>,
    /// The default versions of the certificate's policies, then of the policies of the
    /// thing's groups (each hierarchy root first); each policy once.
    pub policies: Vec<EffectivePolicy>,
    pub depends_on: Dependencies,
}

impl RegistryState {
    /// The thing a connection with `certificate_id` and `client_id` acts as: the thing the
    /// certificate is attached to with `EXCLUSIVE_THING`, else the thing named `client_id` if
    /// the certificate is attached to it.
    pub fn connection_thing(&self, certificate_id: &str, client_id: &str) -> Option<&Thing> {
        let principal = certificate_arn(&self.arns, certificate_id);
        let mut by_client_id = None;
        for thing in seconds(&self.principal_things, &principal) {
            let exclusive = self
                .thing_principals
                .get(&(thing.clone(), principal.clone()))
                .is_some_and(|p| p.exclusive);
            if exclusive {
                return self.things.get(thing);
            }
            if thing == client_id {
                by_client_id = self.things.get(thing);
            }
        }
        by_client_id
    }

    /// The static groups of `thing` and all their ancestors: each hierarchy root first, each
    /// group once.
    pub fn thing_group_chain(&self, thing: &str) -> Vec<String> {
        let mut chain: Vec<String> = Vec::new();
        for group in self.groups_of_thing(thing) {
            for g in self.group_ancestors(group) {
                if !chain.contains(&g.name) {
                    chain.push(g.name.clone());
                }
            }
            if !chain.contains(group) {
                chain.push(group.clone());
            }
        }
        chain
    }

    /// Pushes the default versions of the policies attached to `target` not yet in `out`.
    fn push_policies_of(&self, target: &str, out: &mut Vec<EffectivePolicy>) {
        for name in self.policies_of_target(target) {
            if out.iter().any(|(n, _, _)| n == name) {
                continue;
            }
            if let Some(p) = self.policies.get(name) {
                out.push((
                    name.clone(),
                    p.default_version,
                    p.default_document().to_owned(),
                ));
            }
        }
    }

    /// The default versions of the policies attached to `groups` (ARNs made here), in order.
    pub fn group_policies(&self, groups: &[String], out: &mut Vec<EffectivePolicy>) {
        for g in groups {
            self.push_policies_of(&thing_group_arn(&self.arns, g), out);
        }
    }

    /// AWS's applicable set for a device connecting with `certificate_id` and `client_id`
    /// (see the module documentation). A certificate that is not registered has no policies.
    pub fn connection_policies(&self, certificate_id: &str, client_id: &str) -> ConnectionPolicies {
        let thing = self.connection_thing(certificate_id, client_id).cloned();
        let mut policies = Vec::new();
        self.push_policies_of(&certificate_arn(&self.arns, certificate_id), &mut policies);
        let groups = thing
            .as_ref()
            .map(|t| self.thing_group_chain(&t.name))
            .unwrap_or_default();
        self.group_policies(&groups, &mut policies);
        let depends_on = Dependencies {
            certificate_id: certificate_id.to_owned(),
            thing: thing.as_ref().map(|t| t.name.clone()),
            groups,
            policies: policies.iter().map(|(n, _, _)| n.clone()).collect(),
        };
        ConnectionPolicies {
            thing,
            policies,
            depends_on,
        }
    }
}

/// `thing` as the policy engine sees it (`iot:Connection.Thing.*`).
pub fn thing_context(thing: &Thing) -> ThingContext {
    ThingContext {
        name: thing.name.clone(),
        type_name: thing.type_name.clone(),
        attributes: thing.attributes.clone(),
    }
}

/// The certificate variables (`iot:Certificate.*`, `iot:CertificateId`) of a registered
/// certificate, from its PEM. A PEM that does not parse (never stored) gives only the id.
pub fn certificate_context(id: &str, pem: &str) -> CertificateContext {
    let mut ctx = CertificateContext {
        id: Some(id.to_owned()),
        ..Default::default()
    };
    let Ok(der) =
        <rustls_pki_types::CertificateDer<'_> as rustls_pki_types::pem::PemObject>::from_pem_slice(
            pem.as_bytes(),
        )
    else {
        return ctx;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return ctx;
    };
    ctx.serial_number = Some(cert.tbs_certificate.raw_serial_as_string().replace(':', ""));
    fill_dn(cert.subject(), &mut ctx.subject);
    fill_dn(cert.issuer(), &mut ctx.issuer);
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        fill_alt_names(&san.value.general_names, &mut ctx.subject_alt_names);
    }
    for ext in cert.extensions() {
        if let x509_parser::extensions::ParsedExtension::IssuerAlternativeName(ian) =
            ext.parsed_extension()
        {
            fill_alt_names(&ian.general_names, &mut ctx.issuer_alt_names);
        }
    }
    ctx
}

fn dn_field(oid: &x509_parser::der_parser::oid::Oid<'_>) -> Option<DnField> {
    use x509_parser::oid_registry as o;
    Some(match oid {
        o if *o == o::OID_X509_COMMON_NAME => DnField::CommonName,
        o if *o == o::OID_X509_COUNTRY_NAME => DnField::Country,
        o if *o == o::OID_X509_ORGANIZATION_NAME => DnField::Organization,
        o if *o == o::OID_X509_ORGANIZATIONAL_UNIT => DnField::OrganizationalUnit,
        o if *o == o::OID_X509_STATE_OR_PROVINCE_NAME => DnField::State,
        o if *o == o::OID_X509_SERIALNUMBER => DnField::SerialNumber,
        o if *o == o::OID_X509_TITLE => DnField::Title,
        o if *o == o::OID_X509_SURNAME => DnField::Surname,
        o if *o == o::OID_X509_GIVEN_NAME => DnField::GivenName,
        o if *o == o::OID_X509_INITIALS => DnField::Initials,
        o if *o == o::OID_X509_GENERATION_QUALIFIER => DnField::GenerationQualifier,
        o if *o == o::OID_X509_DN_QUALIFIER => DnField::DistinguishedNameQualifier,
        o if o.to_id_string() == "2.5.4.65" => DnField::Pseudonym,
        _ => return None,
    })
}

fn fill_dn(name: &x509_parser::x509::X509Name<'_>, out: &mut ferrocore_policy::DistinguishedName) {
    for attr in name.iter_attributes() {
        if let (Some(field), Ok(value)) = (dn_field(attr.attr_type()), attr.as_str()) {
            out.push(field, value);
        }
    }
}

fn fill_alt_names(
    names: &[x509_parser::extensions::GeneralName<'_>],
    out: &mut ferrocore_policy::AltNames,
) {
    use x509_parser::extensions::GeneralName as G;
    for name in names {
        let (kind, value) = match name {
            G::RFC822Name(v) => (AltNameKind::Rfc822Name, (*v).to_owned()),
            G::DNSName(v) => (AltNameKind::DnsName, (*v).to_owned()),
            G::URI(v) => (AltNameKind::UniformResourceIdentifier, (*v).to_owned()),
            G::DirectoryName(n) => (AltNameKind::DirectoryName, n.to_string()),
            G::IPAddress(bytes) => match ip_of(bytes) {
                Some(ip) => (AltNameKind::IpAddress, ip),
                None => continue,
            },
            _ => continue,
        };
        out.push(kind, value);
    }
}

fn ip_of(bytes: &[u8]) -> Option<String> {
    if let Ok(b) = <[u8; 4]>::try_from(bytes) {
        Some(std::net::Ipv4Addr::from(b).to_string())
    } else {
        <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled policies

/// Compiled policy versions, shared by every connection that has them: keyed by (name,
/// version) and checked against the document, so a policy deleted and created again with the
/// same name never reuses a stale entry.
#[derive(Default)]
pub struct PolicyCache {
    map: parking_lot::Mutex<HashMap<(String, u64), CachedPolicy>>,
}

/// A compiled version and the document it was compiled from.
type CachedPolicy = (Arc<str>, Arc<CompiledPolicy>);

impl PolicyCache {
    /// The compiled form of `document`, version `version` of policy `name`.
    pub fn compiled(
        &self,
        name: &str,
        version: u64,
        document: &str,
    ) -> Result<Arc<CompiledPolicy>, RegistryError> {
        let key = (name.to_owned(), version);
        if let Some((doc, compiled)) = self.map.lock().get(&key)
            && **doc == *document
        {
            return Ok(Arc::clone(compiled));
        }
        let compiled = Arc::new(CompiledPolicy::parse(name, document).map_err(|e| {
            RegistryError::InternalFailure(format!(
                "stored policy {name} version {version} does not compile: {e}"
            ))
        })?);
        self.map
            .lock()
            .insert(key, (Arc::from(document), Arc::clone(&compiled)));
        Ok(compiled)
    }

    /// Compiles `policies` into a set.
    pub fn set(&self, policies: &[EffectivePolicy]) -> Result<PolicySet, RegistryError> {
        let compiled = policies
            .iter()
            .map(|(name, version, doc)| self.compiled(name, *version, doc))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicySet::new(compiled))
    }

    /// Drops the entries of versions `changes` deleted.
    pub fn forget(&self, changes: &[Change]) {
        let mut map = self.map.lock();
        for change in changes {
            if let Change::Policy { name, new } = change {
                map.retain(|(n, v), _| {
                    n != name || new.as_ref().is_some_and(|p| p.versions.contains_key(v))
                });
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a connection may do: its compiled policy set and what it was computed from.
#[derive(Debug, Clone)]
pub struct ConnectionAuthorization {
    pub set: Arc<PolicySet>,
    /// (name, version) of each policy of `set`, in order.
    pub policies: Vec<(String, u64)>,
    pub thing: Option<Thing>,
    /// The certificate's variables (`None` for a certificate that is not registered).
    pub certificate: Option<CertificateContext>,
    pub depends_on: Dependencies,
}

impl ConnectionAuthorization {
    /// The request context of the connection: client id, thing and certificate. Callers add
    /// the source address, domain name, time and connect attributes they know.
    pub fn request(&self, client_id: &str) -> Request {
        let mut req = Request::new().with_client_id(client_id);
        if let Some(thing) = &self.thing {
            req = req.with_thing(thing_context(thing));
        }
        if let Some(cert) = &self.certificate {
            req = req.with_certificate(cert.clone());
        }
        req
    }
}

impl ConnectionAuthorization {
    /// Compiles `resolved` through `cache`.
    pub fn compile(
        cache: &PolicyCache,
        resolved: ConnectionPolicies,
        certificate: Option<CertificateContext>,
    ) -> Result<ConnectionAuthorization, RegistryError> {
        let set = cache.set(&resolved.policies)?;
        Ok(ConnectionAuthorization {
            set: Arc::new(set),
            policies: resolved
                .policies
                .into_iter()
                .map(|(n, v, _)| (n, v))
                .collect(),
            thing: resolved.thing,
            certificate,
            depends_on: resolved.depends_on,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Operations: requests and answers (AWS's JSON member names)

/// `{policyName, policyArn}` (the model's `Policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    pub policy_name: String,
    pub policy_arn: String,
}

impl PolicySummary {
    fn of(ctx: &Ctx, name: &str) -> Self {
        PolicySummary {
            policy_name: name.to_owned(),
            policy_arn: policy_arn(&ctx.arns, name),
        }
    }
}

/// `CreatePolicy` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyRequest {
    #[serde(skip)]
    pub policy_name: String,
    pub policy_document: Option<String>,
    /// Accepted and ignored (tagging is not served yet).
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyResponse {
    pub policy_name: String,
    pub policy_arn: String,
    pub policy_document: String,
    pub policy_version_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPolicyResponse {
    pub policy_name: String,
    pub policy_arn: String,
    pub policy_document: String,
    pub default_version_id: String,
    pub creation_date: f64,
    pub last_modified_date: f64,
    pub generation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPoliciesResponse {
    pub policies: Vec<PolicySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// `CreatePolicyVersion` (name from the path, `setAsDefault` from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyVersionRequest {
    #[serde(skip)]
    pub policy_name: String,
    pub policy_document: Option<String>,
    #[serde(skip)]
    pub set_as_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyVersionResponse {
    pub policy_arn: String,
    pub policy_document: String,
    pub policy_version_id: String,
    pub is_default_version: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionSummary {
    pub version_id: String,
    pub is_default_version: bool,
    pub create_date: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPolicyVersionsResponse {
    pub policy_versions: Vec<PolicyVersionSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPolicyVersionResponse {
    pub policy_arn: String,
    pub policy_name: String,
    pub policy_document: String,
    pub policy_version_id: String,
    pub is_default_version: bool,
    pub creation_date: f64,
    pub last_modified_date: f64,
    pub generation_id: String,
}

/// The body of `AttachPolicy` and `DetachPolicy`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PolicyTargetBody {
    pub target: Option<String>,
}

/// `ListAttachedPolicies` (target from the path, the rest from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListAttachedPoliciesRequest {
    #[serde(skip)]
    pub target: String,
    #[serde(default)]
    pub recursive: bool,
    pub marker: Option<String>,
    #[serde(rename = "pageSize")]
    pub page_size: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttachedPoliciesResponse {
    pub policies: Vec<PolicySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// `ListTargetsForPolicy` (name from the path, the rest from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListTargetsForPolicyRequest {
    #[serde(skip)]
    pub policy_name: String,
    pub marker: Option<String>,
    #[serde(rename = "pageSize")]
    pub page_size: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTargetsForPolicyResponse {
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// `GetEffectivePolicies` (`thingName` from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetEffectivePoliciesRequest {
    pub principal: Option<String>,
    pub cognito_identity_pool_id: Option<String>,
    #[serde(skip)]
    pub thing_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePolicyEntry {
    pub policy_name: String,
    pub policy_arn: String,
    pub policy_document: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetEffectivePoliciesResponse {
    pub effective_policies: Vec<EffectivePolicyEntry>,
}

/// `authInfo`: an action and the resources (ARNs) it acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
    #[serde(default)]
    pub resources: Vec<String>,
}

/// `TestAuthorization` (`clientId` from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestAuthorizationRequest {
    pub principal: Option<String>,
    pub cognito_identity_pool_id: Option<String>,
    pub auth_infos: Option<Vec<AuthInfo>>,
    #[serde(skip)]
    pub client_id: Option<String>,
    pub policy_names_to_add: Option<Vec<String>>,
    pub policy_names_to_skip: Option<Vec<String>>,
}

/// `{policies: [...]}` (`allowed`, `implicitDeny`, `explicitDeny`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyList {
    pub policies: Vec<PolicySummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Denied {
    pub implicit_deny: PolicyList,
    pub explicit_deny: PolicyList,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthResult {
    pub auth_info: AuthInfo,
    pub allowed: PolicyList,
    pub denied: Denied,
    pub auth_decision: String,
    pub missing_context_values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestAuthorizationResponse {
    pub auth_results: Vec<AuthResult>,
}

// ---------------------------------------------------------------------------------------------
// Validation and lookups

/// Longest policy name.
pub const MAX_POLICY_NAME_LEN: usize = 128;
/// `authInfos` of one `TestAuthorization`.
pub const MAX_AUTH_INFOS: usize = 10;
/// Longest resource of an `authInfo`.
pub const MAX_RESOURCE_LEN: usize = 2048;

/// Policy names: `[\w+=,.@-]{1,128}` (`\w` being ASCII letters, digits and `_`).
pub fn validate_policy_name(name: &str) -> Result<(), RegistryError> {
    if is_name(name, MAX_POLICY_NAME_LEN, b"_+=,.@-") {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "Policy name '{}' is invalid: it must be 1 to {MAX_POLICY_NAME_LEN} characters of \
             a-z, A-Z, 0-9 and _+=,.@-",
            name.chars().take(200).collect::<String>()
        )))
    }
}

/// A `policyDocument`: present and a valid IoT policy (`MalformedPolicyException` with the
/// policy engine's message otherwise).
fn validate_document(document: Option<String>) -> Result<String, RegistryError> {
    let document = document.ok_or_else(|| RegistryError::invalid("policyDocument is required."))?;
    ferrocore_policy::parse(&document)
        .map_err(|e| RegistryError::MalformedPolicy(e.to_string()))?;
    Ok(document)
}

/// A `policyVersionId` from a path: `[0-9]+`.
fn parse_version_id(id: &str) -> Result<u64, RegistryError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        id.parse()
            .map_err(|_| RegistryError::invalid(format!("Policy version id {id} is too large.")))
    } else {
        Err(RegistryError::invalid(format!(
            "Policy version id '{}' is invalid: it must be a number.",
            id.chars().take(40).collect::<String>()
        )))
    }
}

fn version_not_found(name: &str, version: u64) -> RegistryError {
    RegistryError::not_found(format!(
        "Version {version} of policy {name} cannot be found."
    ))
}

/// `record` changed now: new `lastModifiedDate` and `generationId`.
fn touched(ctx: &Ctx, mut record: PolicyRecord) -> Result<Change, RegistryError> {
    record.last_modified_date_ms = ctx.now_ms;
    record.generation_id = uuid_v4()?;
    Ok(Change::Policy {
        name: record.name.clone(),
        new: Some(record),
    })
}

/// A target given to `AttachPolicy` / `DetachPolicy` / `ListAttachedPolicies`: a certificate
/// or thing-group ARN of this region and account (`InvalidRequestException` otherwise).
fn parse_target<'a>(ctx: &Ctx, target: &'a str) -> Result<Target<'a>, RegistryError> {
    let shown = || target.chars().take(200).collect::<String>();
    let parsed = Target::parse(&ctx.arns, target).ok_or_else(|| {
        let what = if !target.starts_with("arn:") && target.contains(':') {
            "Amazon Cognito identities are not supported by this server"
        } else {
            "it must be a certificate ARN or a thing-group ARN of this region and account"
        };
        RegistryError::invalid(format!(
            "Target '{}' is invalid: {what} ({} or {}).",
            shown(),
            certificate_arn(&ctx.arns, "<certificateId>"),
            thing_group_arn(&ctx.arns, "<groupName>")
        ))
    })?;
    let valid = match parsed {
        Target::Certificate(id) => {
            id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        Target::ThingGroup(name) => validate_name("Thing group name", name).is_ok(),
    };
    if !valid {
        return Err(RegistryError::invalid(format!(
            "Target '{}' is invalid: not a certificate id or thing group name.",
            shown()
        )));
    }
    Ok(parsed)
}

fn required_target(target: Option<&str>) -> Result<&str, RegistryError> {
    match target.map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(RegistryError::invalid("target is required.")),
    }
}

/// Checks that `target` exists.
fn target_exists(state: &RegistryState, target: Target<'_>) -> Result<(), RegistryError> {
    match target {
        Target::Certificate(id) => state.certificate(id).map(|_| ()),
        Target::ThingGroup(name) => state.thing_group(name).map(|_| ()),
    }
}

/// The changes that detach every policy from `target` (an ARN): what deleting a thing group,
/// or a certificate with `forceDelete`, does.
pub(crate) fn detach_all(state: &RegistryState, target: &str) -> Vec<Change> {
    state
        .policies_of_target(target)
        .map(|policy| Change::PolicyAttachment {
            policy: policy.clone(),
            target: target.to_owned(),
            attached: false,
        })
        .collect()
}

/// A principal given to `GetEffectivePolicies` / `TestAuthorization`: a registered
/// certificate's ARN; returns its id.
fn principal_certificate<'a>(
    state: &RegistryState,
    ctx: &Ctx,
    principal: &'a str,
) -> Result<&'a str, RegistryError> {
    match parse_target(ctx, principal) {
        Ok(Target::Certificate(id)) => {
            state.certificate(id)?;
            Ok(id)
        }
        _ => Err(RegistryError::invalid(format!(
            "Principal '{}' is invalid: it must be a certificate ARN ({}).",
            principal.chars().take(200).collect::<String>(),
            certificate_arn(&ctx.arns, "<certificateId>")
        ))),
    }
}

fn refuse_cognito(pool: Option<&String>) -> Result<(), RegistryError> {
    match pool {
        Some(_) => Err(RegistryError::invalid(
            "cognitoIdentityPoolId: Amazon Cognito identities are not supported by this server.",
        )),
        None => Ok(()),
    }
}

/// One page of the sorted, unique `names` after `marker` (the hex of the last name given).
fn page_of_names(
    names: impl Iterator<Item = String>,
    marker: Option<&str>,
    page_size: Option<usize>,
) -> Result<(Vec<String>, Option<String>), RegistryError> {
    let limit = super::page_size(page_size, DEFAULT_PAGE_SIZE, "Page size")?;
    let after = match marker {
        None | Some("") => None,
        Some(m) => Some(decode_token(m)?),
    };
    let mut out = Vec::new();
    for name in names.filter(|n| after.as_ref().is_none_or(|a| n > a)) {
        if out.len() == limit {
            let next = out.last().map(|l: &String| encode_token(l));
            return Ok((out, next));
        }
        out.push(name);
    }
    Ok((out, None))
}

// ---------------------------------------------------------------------------------------------
// Policies and versions

/// `CreatePolicy`: version 1, the default. Not idempotent: an existing name is refused with
/// `ResourceAlreadyExistsException` whatever its document.
pub fn create_policy(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreatePolicyRequest,
) -> Result<(CreatePolicyResponse, Vec<Change>), RegistryError> {
    let name = req.policy_name;
    validate_policy_name(&name)?;
    let document = validate_document(req.policy_document)?;
    if state.policies.contains_key(&name) {
        return Err(RegistryError::already_exists(
            format!("Policy {name} already exists; create a new version of it instead."),
            &name,
            policy_arn(&ctx.arns, &name),
        ));
    }
    let record = PolicyRecord {
        name: name.clone(),
        versions: BTreeMap::from([(
            1,
            PolicyVersionRecord {
                document: document.clone(),
                create_date_ms: ctx.now_ms,
            },
        )]),
        default_version: 1,
        next_version: 2,
        creation_date_ms: ctx.now_ms,
        last_modified_date_ms: ctx.now_ms,
        generation_id: uuid_v4()?,
    };
    let answer = CreatePolicyResponse {
        policy_arn: policy_arn(&ctx.arns, &name),
        policy_name: name.clone(),
        policy_document: document,
        policy_version_id: "1".into(),
    };
    Ok((
        answer,
        vec![Change::Policy {
            name,
            new: Some(record),
        }],
    ))
}

/// `GetPolicy`: the default version's document.
pub fn get_policy(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
) -> Result<GetPolicyResponse, RegistryError> {
    validate_policy_name(name)?;
    let p = state.policy(name)?;
    Ok(GetPolicyResponse {
        policy_name: p.name.clone(),
        policy_arn: policy_arn(&ctx.arns, name),
        policy_document: p.default_document().to_owned(),
        default_version_id: p.default_version.to_string(),
        creation_date: millis_to_seconds(p.creation_date_ms),
        last_modified_date: millis_to_seconds(p.last_modified_date_ms),
        generation_id: p.generation_id.clone(),
    })
}

/// `ListPolicies`: by creation date, newest first unless `isAscendingOrder=true` (as the
/// certificate listings).
pub fn list_policies(
    state: &RegistryState,
    ctx: &Ctx,
    page: &MarkerPage,
) -> Result<ListPoliciesResponse, RegistryError> {
    let items = state
        .policies
        .values()
        .map(|p| (p.creation_date_ms, p.name.as_str(), p));
    let (policies, next_marker) = page_by_creation(items, page)?;
    Ok(ListPoliciesResponse {
        policies: policies
            .into_iter()
            .map(|p| PolicySummary::of(ctx, &p.name))
            .collect(),
        next_marker,
    })
}

/// `DeletePolicy`: only once its other versions are deleted and it is attached to nothing
/// (`DeleteConflictException`); a missing policy is not found.
pub fn delete_policy(
    state: &RegistryState,
    _ctx: &Ctx,
    name: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_policy_name(name)?;
    let p = state.policy(name)?;
    if p.versions.len() > 1 {
        let others: Vec<String> = p
            .versions
            .keys()
            .filter(|v| **v != p.default_version)
            .map(u64::to_string)
            .collect();
        return Err(RegistryError::DeleteConflict(format!(
            "Policy {name} still has non-default versions ({}); delete them \
             (DeletePolicyVersion) before deleting the policy.",
            others.join(", ")
        )));
    }
    if let Some(target) = state.targets_of_policy(name).next() {
        return Err(RegistryError::DeleteConflict(format!(
            "Policy {name} is attached to {target}; detach it from every target \
             (DetachPolicy) before deleting it."
        )));
    }
    Ok((
        Empty {},
        vec![Change::Policy {
            name: name.to_owned(),
            new: None,
        }],
    ))
}

/// `CreatePolicyVersion`: at most [`MAX_POLICY_VERSIONS`] versions
/// (`VersionsLimitExceededException`); version ids are never reused.
pub fn create_policy_version(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreatePolicyVersionRequest,
) -> Result<(CreatePolicyVersionResponse, Vec<Change>), RegistryError> {
    let name = &req.policy_name;
    validate_policy_name(name)?;
    let document = validate_document(req.policy_document)?;
    let mut record = state.policy(name)?.clone();
    if record.versions.len() >= MAX_POLICY_VERSIONS {
        return Err(RegistryError::VersionsLimitExceeded(format!(
            "Policy {name} already has {MAX_POLICY_VERSIONS} versions, the most a policy can \
             have; delete one (DeletePolicyVersion) first."
        )));
    }
    let version = record.next_version;
    record.next_version = version.saturating_add(1);
    record.versions.insert(
        version,
        PolicyVersionRecord {
            document: document.clone(),
            create_date_ms: ctx.now_ms,
        },
    );
    if req.set_as_default {
        record.default_version = version;
    }
    let answer = CreatePolicyVersionResponse {
        policy_arn: policy_arn(&ctx.arns, name),
        policy_document: document,
        policy_version_id: version.to_string(),
        is_default_version: req.set_as_default,
    };
    Ok((answer, vec![touched(ctx, record)?]))
}

/// `ListPolicyVersions`: newest first (as AWS's examples show).
pub fn list_policy_versions(
    state: &RegistryState,
    _ctx: &Ctx,
    name: &str,
) -> Result<ListPolicyVersionsResponse, RegistryError> {
    validate_policy_name(name)?;
    let p = state.policy(name)?;
    Ok(ListPolicyVersionsResponse {
        policy_versions: p
            .versions
            .iter()
            .rev()
            .map(|(v, r)| PolicyVersionSummary {
                version_id: v.to_string(),
                is_default_version: *v == p.default_version,
                create_date: millis_to_seconds(r.create_date_ms),
            })
            .collect(),
    })
}

/// `GetPolicyVersion`: `creationDate` is the version's, `lastModifiedDate` and
/// `generationId` the policy's.
pub fn get_policy_version(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
    version_id: &str,
) -> Result<GetPolicyVersionResponse, RegistryError> {
    validate_policy_name(name)?;
    let version = parse_version_id(version_id)?;
    let p = state.policy(name)?;
    let v = p
        .versions
        .get(&version)
        .ok_or_else(|| version_not_found(name, version))?;
    Ok(GetPolicyVersionResponse {
        policy_arn: policy_arn(&ctx.arns, name),
        policy_name: p.name.clone(),
        policy_document: v.document.clone(),
        policy_version_id: version.to_string(),
        is_default_version: version == p.default_version,
        creation_date: millis_to_seconds(v.create_date_ms),
        last_modified_date: millis_to_seconds(p.last_modified_date_ms),
        generation_id: p.generation_id.clone(),
    })
}

/// `SetDefaultPolicyVersion`: idempotent; applies at once to every connection that has the
/// policy.
pub fn set_default_policy_version(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
    version_id: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_policy_name(name)?;
    let version = parse_version_id(version_id)?;
    let p = state.policy(name)?;
    if !p.versions.contains_key(&version) {
        return Err(version_not_found(name, version));
    }
    if p.default_version == version {
        return Ok((Empty {}, Vec::new()));
    }
    let mut record = p.clone();
    record.default_version = version;
    Ok((Empty {}, vec![touched(ctx, record)?]))
}

/// `DeletePolicyVersion`: not the default version (`DeleteConflictException`; delete the
/// policy instead).
pub fn delete_policy_version(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
    version_id: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_policy_name(name)?;
    let version = parse_version_id(version_id)?;
    let p = state.policy(name)?;
    if !p.versions.contains_key(&version) {
        return Err(version_not_found(name, version));
    }
    if p.default_version == version {
        return Err(RegistryError::DeleteConflict(format!(
            "Version {version} is the default version of policy {name} and cannot be deleted; \
             make another version the default (SetDefaultPolicyVersion) or delete the policy."
        )));
    }
    let mut record = p.clone();
    record.versions.remove(&version);
    Ok((Empty {}, vec![touched(ctx, record)?]))
}

// ---------------------------------------------------------------------------------------------
// Attachments

/// `AttachPolicy`: the policy and the target (a certificate or a thing group) must exist;
/// idempotent; a certificate has at most [`PolicyLimits::max_policies_per_certificate`]
/// policies and a thing group [`PolicyLimits::max_policies_per_thing_group`]
/// (`LimitExceededException`).
pub fn attach_policy(
    state: &RegistryState,
    ctx: &Ctx,
    policy: &str,
    target: Option<&str>,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_policy_name(policy)?;
    let target = required_target(target)?;
    let parsed = parse_target(ctx, target)?;
    state.policy(policy)?;
    target_exists(state, parsed)?;
    let key = (target.to_owned(), policy.to_owned());
    if state.target_policies.contains(&key) {
        return Ok((Empty {}, Vec::new()));
    }
    let (max, what) = match parsed {
        Target::Certificate(_) => (
            state.policy_limits.max_policies_per_certificate,
            "a certificate",
        ),
        Target::ThingGroup(_) => (
            state.policy_limits.max_policies_per_thing_group,
            "a thing group",
        ),
    };
    if state.policies_of_target(target).count() >= max {
        return Err(RegistryError::LimitExceeded(format!(
            "{target} already has {max} policies attached, the most {what} can have; detach \
             one first."
        )));
    }
    Ok((
        Empty {},
        vec![Change::PolicyAttachment {
            policy: policy.to_owned(),
            target: target.to_owned(),
            attached: true,
        }],
    ))
}

/// `DetachPolicy`: idempotent — detaching a policy that is not attached (or does not exist)
/// succeeds, as the model has no `ResourceNotFoundException` for it.
pub fn detach_policy(
    state: &RegistryState,
    ctx: &Ctx,
    policy: &str,
    target: Option<&str>,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_policy_name(policy)?;
    let target = required_target(target)?;
    parse_target(ctx, target)?;
    let key = (policy.to_owned(), target.to_owned());
    if !state.policy_targets.contains(&key) {
        return Ok((Empty {}, Vec::new()));
    }
    Ok((
        Empty {},
        vec![Change::PolicyAttachment {
            policy: key.0,
            target: key.1,
            attached: false,
        }],
    ))
}

/// `ListAttachedPolicies`, by name; for a thing group `recursive` adds the policies of its
/// ancestors (what its things inherit). The target must exist.
pub fn list_attached_policies(
    state: &RegistryState,
    ctx: &Ctx,
    req: ListAttachedPoliciesRequest,
) -> Result<ListAttachedPoliciesResponse, RegistryError> {
    let target = required_target(Some(&req.target))?;
    let parsed = parse_target(ctx, target)?;
    target_exists(state, parsed)?;
    let mut names: BTreeSet<String> = state.policies_of_target(target).cloned().collect();
    if let (true, Target::ThingGroup(group)) = (req.recursive, parsed) {
        for g in state.group_ancestors(group) {
            names.extend(
                state
                    .policies_of_target(&thing_group_arn(&ctx.arns, &g.name))
                    .cloned(),
            );
        }
    }
    let (names, next_marker) =
        page_of_names(names.into_iter(), req.marker.as_deref(), req.page_size)?;
    Ok(ListAttachedPoliciesResponse {
        policies: names.iter().map(|n| PolicySummary::of(ctx, n)).collect(),
        next_marker,
    })
}

/// `ListTargetsForPolicy`: the ARNs it is attached to, in order.
pub fn list_targets_for_policy(
    state: &RegistryState,
    _ctx: &Ctx,
    req: ListTargetsForPolicyRequest,
) -> Result<ListTargetsForPolicyResponse, RegistryError> {
    validate_policy_name(&req.policy_name)?;
    state.policy(&req.policy_name)?;
    let (targets, next_marker) = page_of_names(
        state.targets_of_policy(&req.policy_name).cloned(),
        req.marker.as_deref(),
        req.page_size,
    )?;
    Ok(ListTargetsForPolicyResponse {
        targets,
        next_marker,
    })
}

// ---------------------------------------------------------------------------------------------
// GetEffectivePolicies and TestAuthorization: the resolver the broker uses

/// `GetEffectivePolicies`, answered by [`RegistryState::connection_policies`]:
/// - with `principal` (a certificate ARN): what a device connecting with that certificate
///   and client id `thingName` gets (without `thingName`, the client id matches no thing, so
///   only an `EXCLUSIVE_THING` attachment brings group policies);
/// - with `thingName` alone: the policies of the thing's static groups and their ancestors.
///
/// Cognito identities are refused (`InvalidRequestException`).
pub fn get_effective_policies(
    state: &RegistryState,
    ctx: &Ctx,
    req: GetEffectivePoliciesRequest,
) -> Result<GetEffectivePoliciesResponse, RegistryError> {
    refuse_cognito(req.cognito_identity_pool_id.as_ref())?;
    if let Some(thing) = &req.thing_name {
        validate_name("Thing name", thing)?;
    }
    let principal = req
        .principal
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let policies = match (principal, &req.thing_name) {
        (Some(principal), thing) => {
            let id = principal_certificate(state, ctx, principal)?;
            if let Some(thing) = thing {
                state.thing(thing)?;
            }
            state
                .connection_policies(id, thing.as_deref().unwrap_or(""))
                .policies
        }
        (None, Some(thing)) => {
            state.thing(thing)?;
            let mut out = Vec::new();
            state.group_policies(&state.thing_group_chain(thing), &mut out);
            out
        }
        (None, None) => {
            return Err(RegistryError::invalid(
                "Give a principal (certificate ARN), a thingName, or both.",
            ));
        }
    };
    Ok(GetEffectivePoliciesResponse {
        effective_policies: policies
            .into_iter()
            .map(|(name, _, document)| EffectivePolicyEntry {
                policy_arn: policy_arn(&ctx.arns, &name),
                policy_name: name,
                policy_document: document,
            })
            .collect(),
    })
}

/// The action a `TestAuthorization` `actionType` names.
fn action_of(action_type: Option<&str>) -> Result<Action, RegistryError> {
    match action_type {
        Some("PUBLISH") => Ok(Action::Publish),
        Some("SUBSCRIBE") => Ok(Action::Subscribe),
        Some("RECEIVE") => Ok(Action::Receive),
        Some("CONNECT") => Ok(Action::Connect),
        Some(other) => Err(RegistryError::invalid(format!(
            "actionType '{}' is invalid: it must be PUBLISH, SUBSCRIBE, RECEIVE or CONNECT.",
            other.chars().take(40).collect::<String>()
        ))),
        None => Err(RegistryError::invalid(
            "Each authInfo needs an actionType (PUBLISH, SUBSCRIBE, RECEIVE or CONNECT).",
        )),
    }
}

/// `TestAuthorization`: decides each `authInfo` exactly as the broker would for a device
/// connected with the `principal` certificate and `clientId` — the same resolver
/// ([`RegistryState::connection_policies`]), the same compiled policies (`cache`) and the same
/// request context ([`ConnectionAuthorization::request`]: client id, thing, certificate
/// variables) — with `policyNamesToAdd` added (default versions; they must exist) and
/// `policyNamesToSkip` left out.
///
/// Per `authInfo` (one result each, in order): `authDecision` is `EXPLICIT_DENY` if any of
/// its resources is explicitly denied, else `IMPLICIT_DENY` if any is not allowed, else
/// `ALLOWED`. Each policy of the set is listed once: under `explicitDeny` if one of its Deny
/// statements applies to a resource, else under `allowed` if one of its Allow statements does,
/// else under `implicitDeny`. `missingContextValues` names the policy variables that could
/// not be substituted (a statement using one does not apply).
pub fn test_authorization(
    state: &RegistryState,
    ctx: &Ctx,
    cache: &PolicyCache,
    req: TestAuthorizationRequest,
) -> Result<TestAuthorizationResponse, RegistryError> {
    refuse_cognito(req.cognito_identity_pool_id.as_ref())?;
    let principal = req
        .principal
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| RegistryError::invalid("principal (a certificate ARN) is required."))?;
    let infos = req.auth_infos.unwrap_or_default();
    if infos.is_empty() || infos.len() > MAX_AUTH_INFOS {
        return Err(RegistryError::invalid(format!(
            "authInfos must have 1 to {MAX_AUTH_INFOS} entries; it has {}.",
            infos.len()
        )));
    }
    let mut actions = Vec::with_capacity(infos.len());
    for info in &infos {
        actions.push(action_of(info.action_type.as_deref())?);
        if info.resources.is_empty() {
            return Err(RegistryError::invalid(
                "Each authInfo needs at least one resource (an ARN).",
            ));
        }
        if let Some(r) = info.resources.iter().find(|r| r.len() > MAX_RESOURCE_LEN) {
            return Err(RegistryError::invalid(format!(
                "Resource '{}...' is longer than {MAX_RESOURCE_LEN} characters.",
                r.chars().take(80).collect::<String>()
            )));
        }
    }
    let certificate_id = principal_certificate(state, ctx, principal)?;
    let client_id = req.client_id.as_deref().unwrap_or("");
    let mut resolved = state.connection_policies(certificate_id, client_id);
    let skip = req.policy_names_to_skip.unwrap_or_default();
    resolved.policies.retain(|(n, _, _)| !skip.contains(n));
    for name in req.policy_names_to_add.unwrap_or_default() {
        validate_policy_name(&name)?;
        let p = state.policy(&name)?;
        if !resolved.policies.iter().any(|(n, _, _)| *n == name) {
            resolved.policies.push((
                name.clone(),
                p.default_version,
                p.default_document().to_owned(),
            ));
        }
    }
    let certificate = state
        .certificates
        .get(certificate_id)
        .map(|c| certificate_context(&c.id, &c.pem));
    let auth = ConnectionAuthorization::compile(cache, resolved, certificate)?;
    let mut request = if req.client_id.is_some() {
        auth.request(client_id)
    } else {
        // No client id: `iot:ClientId` has no value.
        let mut r = Request::new();
        if let Some(thing) = &auth.thing {
            r = r.with_thing(thing_context(thing));
        }
        if let Some(cert) = &auth.certificate {
            r = r.with_certificate(cert.clone());
        }
        r
    };
    request.set_time_ms(ctx.now_ms);
    let results = infos
        .into_iter()
        .zip(actions)
        .map(|(info, action)| auth_result(ctx, &auth, &request, info, action))
        .collect();
    Ok(TestAuthorizationResponse {
        auth_results: results,
    })
}

/// How one policy fared against an `authInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PolicyVerdict {
    Implicit,
    Allows,
    Denies,
}

fn auth_result(
    ctx: &Ctx,
    auth: &ConnectionAuthorization,
    request: &Request,
    info: AuthInfo,
    action: Action,
) -> AuthResult {
    let set = &auth.set;
    let mut verdicts = vec![PolicyVerdict::Implicit; set.policies().len()];
    let mut decision = PolicyVerdict::Allows;
    let mut missing: Vec<String> = Vec::new();
    for resource in &info.resources {
        let explanation = set.explain(action, resource, request);
        debug_assert_eq!(
            explanation.decision,
            set.evaluate(action, resource, request)
        );
        let this = match explanation.decision {
            Decision::ExplicitDeny(_) => PolicyVerdict::Denies,
            Decision::ImplicitDeny => PolicyVerdict::Implicit,
            Decision::Allowed(_) => PolicyVerdict::Allows,
        };
        decision = match (decision, this) {
            (PolicyVerdict::Denies, _) | (_, PolicyVerdict::Denies) => PolicyVerdict::Denies,
            (PolicyVerdict::Implicit, _) | (_, PolicyVerdict::Implicit) => PolicyVerdict::Implicit,
            _ => PolicyVerdict::Allows,
        };
        for t in &explanation.statements {
            match &t.outcome {
                Outcome::Applies => {
                    let v = match t.effect {
                        Effect::Deny => PolicyVerdict::Denies,
                        Effect::Allow => PolicyVerdict::Allows,
                    };
                    if let Some(slot) = verdicts.get_mut(t.id.policy) {
                        *slot = (*slot).max(v);
                    }
                }
                Outcome::UnresolvedVariable { variable } if !missing.contains(variable) => {
                    missing.push(variable.clone());
                }
                _ => {}
            }
        }
    }
    let mut allowed = PolicyList::default();
    let mut denied = Denied::default();
    for (policy, verdict) in set.policies().iter().zip(verdicts) {
        let entry = PolicySummary::of(ctx, policy.name());
        match verdict {
            PolicyVerdict::Denies => denied.explicit_deny.policies.push(entry),
            PolicyVerdict::Allows => allowed.policies.push(entry),
            PolicyVerdict::Implicit => denied.implicit_deny.policies.push(entry),
        }
    }
    let auth_decision = match decision {
        PolicyVerdict::Denies => "EXPLICIT_DENY",
        PolicyVerdict::Implicit => "IMPLICIT_DENY",
        PolicyVerdict::Allows => "ALLOWED",
    };
    AuthResult {
        auth_info: info,
        allowed,
        denied,
        auth_decision: auth_decision.to_owned(),
        missing_context_values: missing,
    }
}

mod explain;
pub use explain::*;

#[cfg(test)]
mod tests;
