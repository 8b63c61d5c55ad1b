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
    AltNameKind, CertificateContext, CompiledPolicy, DnField, PolicySet, Request, ThingContext,
};
use serde::{Deserialize, Serialize};

use super::{Arns, Change, RegistryError, RegistryState, Thing};

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
            | Change::RegistrationCode { .. } => Vec::new(),
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

#[cfg(test)]
mod tests;
