//! `ExplainAuthorization`, a Ferrocore extension of the control plane
//! (`POST /explain-authorization`, behind `ferrocore policy explain`): would this principal be
//! allowed this action on this resource, and which statement of which policy decides?
//!
//! Answered like [`test_authorization`](super::test_authorization): the policies in force are
//! the broker's resolver's ([`RegistryState::connection_policies`], compiled through the same
//! [`PolicyCache`] as [`Registry::authorization`](crate::registry::Registry::authorization)),
//! the request context is the connection's ([`ConnectionAuthorization::request`]: client id,
//! thing, certificate variables), and the decision is [`PolicySet::explain`], which always
//! agrees with the [`PolicySet::evaluate`] the broker calls. Unlike TestAuthorization it takes
//! any action IoT policies decide, resources in short form, variables for what-if questions,
//! and policy documents instead of a principal's (evaluated without any registry by
//! [`explain_documents`], which `ferrocore policy explain --policy FILE` runs locally).
//!
//! Request (JSON, every member optional except `action`):
//!
//! | member | meaning |
//! |---|---|
//! | `principal` | a certificate ARN or id: its policies, as a device connecting with it |
//! | `thingName` | without `principal`: the certificate attached to the thing (its `EXCLUSIVE_THING` certificate, else the only one); with `principal`: the default client id |
//! | `clientId` | the connection's client id (the resolver's, and `iot:ClientId`); defaults to `thingName`, else the certificate's thing |
//! | `action` | `iot:Publish`, ... (or TestAuthorization's `PUBLISH`, ...) |
//! | `resource` | a full ARN, or short: `topic/a/b`, `topicfilter/a/#`, `client/c`, `thing/t`, or just the name (`a/b`: the action's kind is added) |
//! | `policyDocuments` | documents (strings, or `{policyName, policyDocument}`) to evaluate instead of the principal's policies |
//! | `variables` | values that override the registry's: `clientId`, `thingName`, `thingTypeName`, `thingAttributes`, `sourceIp`, `domainName`, `persistentConnect`, `lastWillTopic`, `certificatePem`, `principalId`, `claims`, `context`, `time` (epoch seconds) |
//!
//! The answer: `decision` (`ALLOWED`, `EXPLICIT_DENY`, `IMPLICIT_DENY`), `decidedBy` (the
//! first applicable Deny, else the first applicable Allow: `policyName`, `policyVersionId`,
//! `statementIndex` (zero-based, as `Statement[i]`), `sid`, `effect`), every statement with
//! its `outcome` (`applies`, `action not covered`, `resource not covered`, `condition not met:
//! <operator> <key>`, `unresolved variable: <name>`), `missingContextValues`, the context it
//! was decided in (`action`, `resource` as a full ARN, `principal`, `clientId`, `thingName`,
//! `policies`) and `notes` for what a reader should know (a certificate that is not ACTIVE, no
//! policies, a thing that is not the connection's).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ferrocore_policy::{
    Action, CompiledPolicy, ConnectContext, Explanation, Outcome, ParseOptions, PolicySet, Request,
    ResourceKind, ThingContext,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ConnectionAuthorization, MAX_RESOURCE_LEN, PolicyCache, certificate_arn, certificate_context,
    principal_certificate, thing_context, validate_name,
};
use crate::registry::{Arns, CertificateStatus, Ctx, RegistryError, RegistryState};

/// Most policy documents one request may carry.
pub const MAX_EXPLAIN_DOCUMENTS: usize = 10;

/// `POST /explain-authorization` (see the module documentation).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainAuthorizationRequest {
    pub principal: Option<String>,
    pub thing_name: Option<String>,
    pub client_id: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    /// Strings, or `{"policyName": ..., "policyDocument": ...}` objects.
    pub policy_documents: Option<Vec<Value>>,
    pub variables: Option<ExplainVariables>,
}

/// Values that override (or, without a principal, make up) the request context.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExplainVariables {
    /// `iot:ClientId` (not the client id the resolver looks the thing up by: that is the
    /// request's `clientId`).
    pub client_id: Option<String>,
    pub thing_name: Option<String>,
    pub thing_type_name: Option<String>,
    /// Merged over the thing's attributes.
    pub thing_attributes: Option<BTreeMap<String, String>>,
    /// `aws:SourceIp`.
    pub source_ip: Option<String>,
    /// `iot:DomainName`.
    pub domain_name: Option<String>,
    /// For `iot:Connect`: a persistent session (`iot:ConnectAttributes` `PersistentConnect`).
    pub persistent_connect: Option<bool>,
    /// For `iot:Connect`: the will's topic (a name or a topic ARN; `LastWill`,
    /// `iot:LastWillTopic`).
    pub last_will_topic: Option<String>,
    /// A certificate (PEM) whose `iot:Certificate.*` and `iot:CertificateId` values replace
    /// the principal's.
    pub certificate_pem: Option<String>,
    pub principal_id: Option<String>,
    pub claims: Option<BTreeMap<String, Vec<String>>>,
    pub context: Option<BTreeMap<String, String>>,
    /// Epoch seconds (`aws:CurrentTime`, `aws:EpochTime`); default now.
    pub time: Option<f64>,
}

/// A statement of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainedStatement {
    pub policy_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_version_id: Option<String>,
    pub statement_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// A policy the decision was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainedPolicy {
    pub policy_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainAuthorizationResponse {
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<ExplainedStatement>,
    pub action: String,
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    pub policies: Vec<ExplainedPolicy>,
    pub statements: Vec<ExplainedStatement>,
    pub missing_context_values: Vec<String>,
    pub notes: Vec<String>,
}

fn shown(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The action a request names: a policy action name (`iot:Publish`, any case) or a
/// TestAuthorization `actionType` (`PUBLISH`).
pub fn parse_action(name: Option<&str>) -> Result<Action, RegistryError> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            RegistryError::invalid("action is required (e.g. iot:Publish, iot:Connect).")
        })?;
    let by_type = match name {
        "PUBLISH" => Some(Action::Publish),
        "SUBSCRIBE" => Some(Action::Subscribe),
        "RECEIVE" => Some(Action::Receive),
        "CONNECT" => Some(Action::Connect),
        _ => None,
    };
    by_type.or_else(|| Action::from_name(name)).ok_or_else(|| {
        let all: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        RegistryError::invalid(format!(
            "action '{}' is not an action IoT policies decide; use one of {}.",
            shown(name, 80),
            all.join(", ")
        ))
    })
}

/// The full ARN a resource stands for: an ARN as given; `*`; `<kind>/<name>` for the action's
/// kind; else a name, to which the action's kind is added (`a/b` for `iot:Publish` is
/// `topic/a/b`, for `iot:Subscribe` `topicfilter/a/b`).
pub fn full_resource(
    arns: &ferrocore_policy::Arns,
    action: Action,
    resource: Option<&str>,
) -> Result<String, RegistryError> {
    let Some(kind) = action.resource_kind() else {
        // iot:ListRetainedMessages is decided on "*".
        return match resource {
            None | Some("*") => Ok("*".to_owned()),
            Some(other) => Err(RegistryError::invalid(format!(
                "{action} is decided on the resource \"*\", not '{}'.",
                shown(other, 80)
            ))),
        };
    };
    let resource = resource.filter(|r| !r.is_empty()).ok_or_else(|| {
        RegistryError::invalid(format!(
            "resource is required: an ARN, or {}/<name> for {action}.",
            kind.as_str()
        ))
    })?;
    if resource.len() > MAX_RESOURCE_LEN {
        return Err(RegistryError::invalid(format!(
            "Resource '{}...' is longer than {MAX_RESOURCE_LEN} characters.",
            shown(resource, 80)
        )));
    }
    if resource == "*" {
        return Ok(resource.to_owned());
    }
    if resource.starts_with("arn:") {
        if resource.splitn(6, ':').count() < 6 {
            return Err(RegistryError::invalid(format!(
                "Resource '{}' is not an ARN (arn:aws:iot:<region>:<account>:{}/<name>).",
                shown(resource, 200),
                kind.as_str()
            )));
        }
        return Ok(resource.to_owned());
    }
    let prefix = format!("{}/", kind.as_str());
    let name = resource.strip_prefix(&prefix).unwrap_or(resource);
    Ok(arns.arn(kind, name))
}

fn policy_arns(arns: &Arns) -> ferrocore_policy::Arns {
    ferrocore_policy::Arns::new(&arns.region, &arns.account_id)
}

/// The policy documents of a request, compiled (names: the given ones, else
/// `policyDocuments[i]`). AWS's 2048-character limit does not apply: any document the engine
/// accepts can be explained.
fn compile_documents(documents: &[Value]) -> Result<Vec<Arc<CompiledPolicy>>, RegistryError> {
    if documents.is_empty() || documents.len() > MAX_EXPLAIN_DOCUMENTS {
        return Err(RegistryError::invalid(format!(
            "policyDocuments must have 1 to {MAX_EXPLAIN_DOCUMENTS} documents; it has {}.",
            documents.len()
        )));
    }
    let mut out = Vec::with_capacity(documents.len());
    for (i, d) in documents.iter().enumerate() {
        let at = format!("policyDocuments[{i}]");
        let (name, text) = match d {
            Value::String(text) => (at.clone(), text.as_str()),
            Value::Object(m) => {
                let name = m.get("policyName").and_then(Value::as_str);
                let text = m.get("policyDocument").and_then(Value::as_str);
                match (name, text) {
                    (Some(n), Some(t)) if !n.is_empty() => (n.to_owned(), t),
                    _ => {
                        return Err(RegistryError::invalid(format!(
                            "{at} must be a policy document (a string) or an object with \
                             string members policyName and policyDocument."
                        )));
                    }
                }
            }
            _ => {
                return Err(RegistryError::invalid(format!(
                    "{at} must be a policy document (a string) or an object with string \
                     members policyName and policyDocument."
                )));
            }
        };
        let doc = ferrocore_policy::parse_with(text, &ParseOptions { max_chars: None })
            .map_err(|e| RegistryError::MalformedPolicy(format!("{at} ({name}): {e}")))?;
        let compiled = CompiledPolicy::compile(name.clone(), &doc)
            .map_err(|e| RegistryError::MalformedPolicy(format!("{at} ({name}): {e}")))?;
        out.push(Arc::new(compiled));
    }
    Ok(out)
}

/// What the decision is made with.
struct Setting {
    set: PolicySet,
    /// Version ids, by policy (None for given documents).
    versions: Vec<Option<String>>,
    request: Request,
    principal: Option<String>,
    client_id: Option<String>,
    notes: Vec<String>,
}

/// Explains a decision against policy documents alone, without a registry: the context is
/// what `variables` says (and the request's `clientId` / `thingName`). This is what the server
/// does for `policyDocuments` without a principal, and what `ferrocore policy explain
/// --policy FILE` runs locally, so both answer alike.
pub fn explain_documents(
    arns: &Arns,
    now_ms: i64,
    req: ExplainAuthorizationRequest,
) -> Result<ExplainAuthorizationResponse, RegistryError> {
    let action = parse_action(req.action.as_deref())?;
    let resource = full_resource(&policy_arns(arns), action, req.resource.as_deref())?;
    if req.principal.is_some() {
        return Err(RegistryError::invalid(
            "A principal needs the server's registry; without one, give only policyDocuments \
             and variables.",
        ));
    }
    let documents = req.policy_documents.as_deref().ok_or_else(|| {
        RegistryError::invalid("Give a principal (certificate), a thingName or policyDocuments.")
    })?;
    let set = PolicySet::new(compile_documents(documents)?);
    let versions = vec![None; set.policies().len()];
    let vars = req.variables.unwrap_or_default();
    let client_id = req.client_id.or_else(|| vars.client_id.clone());
    let mut request = Request::new();
    if let Some(c) = &client_id {
        request = request.with_client_id(c.clone());
    }
    let mut thing = req.thing_name.map(ThingContext::new);
    let mut notes = Vec::new();
    apply_variables(
        &mut request,
        &mut thing,
        &vars,
        action,
        arns,
        now_ms,
        &mut notes,
    )?;
    if let Some(t) = thing {
        request = request.with_thing(t);
    }
    Ok(finish(
        Setting {
            set,
            versions,
            request,
            principal: None,
            client_id,
            notes,
        },
        action,
        resource,
    ))
}

/// `ExplainAuthorization` against the registry (see the module documentation).
pub fn explain_authorization(
    state: &RegistryState,
    ctx: &Ctx,
    cache: &PolicyCache,
    req: ExplainAuthorizationRequest,
) -> Result<ExplainAuthorizationResponse, RegistryError> {
    let action = parse_action(req.action.as_deref())?;
    let resource = full_resource(&policy_arns(&ctx.arns), action, req.resource.as_deref())?;
    let principal = req
        .principal
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let thing_name = req.thing_name.as_deref().filter(|t| !t.is_empty());
    if let Some(t) = thing_name {
        validate_name("Thing name", t)?;
        state.thing(t)?;
    }
    if principal.is_none() && thing_name.is_none() {
        let mut req = req;
        req.principal = None;
        return explain_documents(&ctx.arns, ctx.now_ms, req);
    }
    let mut notes = Vec::new();
    // The certificate: the one given, else the thing's.
    let certificate_id = match principal {
        Some(p) => Some(certificate_of(state, ctx, p)?),
        None => thing_name
            .and_then(|t| thing_certificate(state, t, &mut notes).transpose())
            .transpose()?,
    };
    let vars = req.variables.clone().unwrap_or_default();
    // The client id the resolver looks the thing up by.
    let client_id = req
        .client_id
        .clone()
        .or_else(|| vars.client_id.clone())
        .or_else(|| thing_name.map(str::to_owned))
        .or_else(|| {
            let id = certificate_id.as_deref()?;
            let thing = certificate_thing(state, id)?;
            notes.push(format!(
                "client id {thing} assumed: the name of the certificate's thing (give a client id to \
                 change it)"
            ));
            Some(thing)
        });
    let mut auth = match &certificate_id {
        Some(id) => {
            let resolved = state.connection_policies(id, client_id.as_deref().unwrap_or(""));
            let certificate = state
                .certificates
                .get(id)
                .map(|c| certificate_context(&c.id, &c.pem));
            if let Some(c) = state.certificates.get(id)
                && c.status != CertificateStatus::Active
            {
                notes.push(format!(
                    "certificate {id} is {}: the server refuses it before any policy is asked",
                    c.status.as_str()
                ));
            }
            ConnectionAuthorization::compile(cache, resolved, certificate)?
        }
        None => {
            // A thing without a certificate: its groups' policies, as GetEffectivePolicies
            // answers for a thing alone.
            let thing = thing_name.and_then(|t| state.things.get(t)).cloned();
            let mut policies = Vec::new();
            let groups = thing_name
                .map(|t| state.thing_group_chain(t))
                .unwrap_or_default();
            state.group_policies(&groups, &mut policies);
            let resolved = super::ConnectionPolicies {
                thing,
                policies,
                depends_on: super::Dependencies::default(),
            };
            ConnectionAuthorization::compile(cache, resolved, None)?
        }
    };
    if let (Some(t), Some(_)) = (thing_name, &certificate_id) {
        let connection_thing = auth.thing.as_ref().map(|x| x.name.as_str());
        if connection_thing != Some(t) {
            notes.push(format!(
                "thing {t} is not this connection's thing ({}), so its variables and its groups' \
                 policies do not apply; the thing is the certificate's EXCLUSIVE_THING, else the \
                 attached thing named like the client id",
                connection_thing
                    .map_or_else(|| "it has none".to_owned(), |n| format!("that is {n}"))
            ));
        }
    }
    if let Some(documents) = &req.policy_documents {
        auth.set = Arc::new(PolicySet::new(compile_documents(documents)?));
        auth.policies.clear();
        notes.push(
            "evaluated with the given policyDocuments instead of the principal's policies"
                .to_owned(),
        );
    }
    let versions = if auth.policies.is_empty() {
        vec![None; auth.set.policies().len()]
    } else {
        auth.policies
            .iter()
            .map(|(_, v)| Some(v.to_string()))
            .collect()
    };
    if auth.set.is_empty() {
        notes.push(
            "no policies apply (none attached to the certificate or to its thing's groups): \
             everything is implicitly denied"
                .to_owned(),
        );
    }
    let mut request = match &client_id {
        Some(c) => auth.request(c),
        None => {
            let mut r = Request::new();
            if let Some(cert) = &auth.certificate {
                r = r.with_certificate(cert.clone());
            }
            r
        }
    };
    let mut thing = auth.thing.as_ref().map(thing_context);
    apply_variables(
        &mut request,
        &mut thing,
        &vars,
        action,
        &ctx.arns,
        ctx.now_ms,
        &mut notes,
    )?;
    // The thing (possibly changed by the variables) replaces the connection's.
    request = match thing {
        Some(t) => request.with_thing(t),
        None => request,
    };
    Ok(finish(
        Setting {
            set: (*auth.set).clone(),
            versions,
            request,
            principal: certificate_id.map(|id| certificate_arn(&ctx.arns, &id)),
            client_id,
            notes,
        },
        action,
        resource,
    ))
}

/// A certificate given as an ARN or an id (64 hex digits); it must be registered.
fn certificate_of(state: &RegistryState, ctx: &Ctx, given: &str) -> Result<String, RegistryError> {
    let is_id = given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit());
    if is_id {
        let id = given.to_ascii_lowercase();
        state.certificate(&id)?;
        return Ok(id);
    }
    principal_certificate(state, ctx, given).map(str::to_owned)
}

/// The certificate a thing's device uses: the thing's `EXCLUSIVE_THING` certificate, else its
/// only attached one. None (with a note) when it has none; an error when it has several.
fn thing_certificate(
    state: &RegistryState,
    thing: &str,
    notes: &mut Vec<String>,
) -> Result<Option<String>, RegistryError> {
    let attached: Vec<(&String, bool)> = state
        .thing_principals
        .range((thing.to_owned(), String::new())..)
        .take_while(|((t, _), _)| t == thing)
        .map(|((_, p), tp)| (p, tp.exclusive))
        .collect();
    let ids = |p: &str| {
        super::Target::parse(&state.arns, p).and_then(|t| match t {
            super::Target::Certificate(id) => Some(id.to_owned()),
            super::Target::ThingGroup(_) => None,
        })
    };
    if let Some((p, _)) = attached.iter().find(|(_, exclusive)| *exclusive) {
        return Ok(ids(p));
    }
    match attached.as_slice() {
        [] => {
            notes.push(format!(
                "thing {thing} has no certificate attached: only its groups' policies are \
                 evaluated, and no device could connect as it"
            ));
            Ok(None)
        }
        [(p, _)] => Ok(ids(p)),
        many => Err(RegistryError::invalid(format!(
            "Thing {thing} has {} certificates attached ({}); give the principal (certificate) \
             to explain for.",
            many.len(),
            many.iter()
                .take(5)
                .filter_map(|(p, _)| ids(p))
                .map(|id| shown(&id, 12))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The thing a certificate is attached to: its `EXCLUSIVE_THING`, else its only thing.
fn certificate_thing(state: &RegistryState, certificate_id: &str) -> Option<String> {
    let principal = certificate_arn(&state.arns, certificate_id);
    let things: Vec<&String> = state
        .principal_things
        .range((principal.clone(), String::new())..)
        .take_while(|(p, _)| *p == principal)
        .map(|(_, t)| t)
        .collect();
    let exclusive = things.iter().find(|t| {
        state
            .thing_principals
            .get(&((**t).clone(), principal.clone()))
            .is_some_and(|tp| tp.exclusive)
    });
    match (exclusive, things.as_slice()) {
        (Some(t), _) => Some((*t).clone()),
        (None, [t]) => Some((*t).clone()),
        _ => None,
    }
}

/// Applies `vars` to the request and the thing.
fn apply_variables(
    request: &mut Request,
    thing: &mut Option<ThingContext>,
    vars: &ExplainVariables,
    action: Action,
    arns: &Arns,
    now_ms: i64,
    notes: &mut Vec<String>,
) -> Result<(), RegistryError> {
    let mut r = std::mem::take(request);
    if let Some(c) = &vars.client_id {
        r = r.with_client_id(c.clone());
    }
    if let Some(name) = &vars.thing_name {
        match thing {
            Some(t) => t.name = name.clone(),
            None => *thing = Some(ThingContext::new(name.clone())),
        }
    }
    let thing_values = vars.thing_type_name.is_some() || vars.thing_attributes.is_some();
    if thing_values {
        let t = thing.as_mut().ok_or_else(|| {
            RegistryError::invalid(
                "variables.thingTypeName and thingAttributes need a thing: give variables.thingName.",
            )
        })?;
        if let Some(type_name) = &vars.thing_type_name {
            t.type_name = Some(type_name.clone());
        }
        for (k, v) in vars.thing_attributes.iter().flatten() {
            t.attributes.insert(k.clone(), v.clone());
        }
    }
    if let Some(ip) = &vars.source_ip {
        let addr: IpAddr = ip.trim().parse().map_err(|_| {
            RegistryError::invalid(format!(
                "variables.sourceIp '{}' is not an IP address.",
                shown(ip, 60)
            ))
        })?;
        r = r.with_source_ip(addr);
    }
    if let Some(d) = &vars.domain_name {
        r = r.with_domain_name(d.clone());
    }
    if let Some(pem) = &vars.certificate_pem {
        let cert = crate::x509::parse_certificate(pem.as_bytes()).map_err(|e| {
            RegistryError::invalid(format!(
                "variables.certificatePem is not a certificate: {e}"
            ))
        })?;
        r = r.with_certificate(certificate_context(&cert.id, &cert.pem));
    }
    if let Some(p) = &vars.principal_id {
        r = r.with_principal_id(p.clone());
    }
    for (k, v) in vars.claims.iter().flatten() {
        r = r.with_claim(k.clone(), v.clone());
    }
    for (k, v) in vars.context.iter().flatten() {
        r = r.with_context(k.clone(), v.clone());
    }
    let now_ms = match vars.time {
        Some(t) if t.is_finite() && t.abs() < 1e14 => (t * 1000.0) as i64,
        Some(_) => {
            return Err(RegistryError::invalid(
                "variables.time must be epoch seconds.",
            ));
        }
        None => now_ms,
    };
    r.set_time_ms(now_ms);
    let connect_vars = vars.persistent_connect.is_some() || vars.last_will_topic.is_some();
    if action == Action::Connect {
        let last_will_topic = vars.last_will_topic.as_ref().map(|t| {
            if t.starts_with("arn:") {
                t.clone()
            } else {
                let name = t.strip_prefix("topic/").unwrap_or(t);
                policy_arns(arns).arn(ResourceKind::Topic, name)
            }
        });
        r.set_connect(Some(ConnectContext {
            persistent: vars.persistent_connect.unwrap_or(false),
            last_will_topic,
        }));
    } else if connect_vars {
        notes.push(
            "persistentConnect and lastWillTopic only matter for iot:Connect; ignored".to_owned(),
        );
    }
    *request = r;
    Ok(())
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Applies => "applies".to_owned(),
        Outcome::ActionNotCovered => "action not covered".to_owned(),
        Outcome::ResourceNotCovered => "resource not covered".to_owned(),
        Outcome::ConditionNotMet { condition } => format!("condition not met: {condition}"),
        Outcome::UnresolvedVariable { variable } => format!("unresolved variable: {variable}"),
    }
}

fn finish(s: Setting, action: Action, resource: String) -> ExplainAuthorizationResponse {
    let Explanation {
        decision,
        statements,
    } = s.set.explain(action, &resource, &s.request);
    debug_assert_eq!(decision, s.set.evaluate(action, &resource, &s.request));
    let version = |policy: usize| s.versions.get(policy).cloned().flatten();
    let decided_by = decision.statement().and_then(|id| {
        let st = s.set.statement(id)?;
        Some(ExplainedStatement {
            policy_name: st.policy_name.to_owned(),
            policy_version_id: version(id.policy),
            statement_index: st.index,
            sid: st.sid.map(str::to_owned),
            effect: st.effect.to_string(),
            outcome: None,
        })
    });
    let mut missing: Vec<String> = Vec::new();
    let statements = statements
        .into_iter()
        .map(|t| {
            if let Outcome::UnresolvedVariable { variable } = &t.outcome
                && !missing.contains(variable)
            {
                missing.push(variable.clone());
            }
            ExplainedStatement {
                policy_version_id: version(t.id.policy),
                policy_name: t.policy_name,
                statement_index: t.id.statement,
                sid: t.sid,
                effect: t.effect.to_string(),
                outcome: Some(outcome_text(&t.outcome)),
            }
        })
        .collect();
    let policies = s
        .set
        .policies()
        .iter()
        .enumerate()
        .map(|(i, p)| ExplainedPolicy {
            policy_name: p.name().to_owned(),
            policy_version_id: version(i),
        })
        .collect();
    ExplainAuthorizationResponse {
        decision: decision.as_aws_str().to_owned(),
        decided_by,
        action: action.as_str().to_owned(),
        resource,
        principal: s.principal,
        client_id: s.client_id,
        thing_name: s.request.thing().map(|t| t.name.clone()),
        policies,
        statements,
        missing_context_values: missing,
        notes: s.notes,
    }
}

#[cfg(test)]
mod tests;
