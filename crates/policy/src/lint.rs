//! Checks for policies that parse but do not do what their author meant, or grant far more than
//! a device needs: `ferrocore policy lint`.
//!
//! [`lint`] looks at one [`PolicyDocument`] and returns [`Finding`]s, each with a
//! [`Severity`], a stable [`code`](Finding::code), the statement it is about and a message that
//! says what to do. Nothing here decides a request; the checks only read the document.
//!
//! | code | severity | what |
//! |---|---|---|
//! | `allow-all` | error | `Allow` of every MQTT action (`iot:*`, `*`) on every resource |
//! | `broad-connect` | warning | `Allow iot:Connect` on every client id (`client/*`): a device may connect as any other and take over its session |
//! | `broad-topic` | warning | `Allow iot:Publish` / `RetainPublish` / `Receive` on every topic (`topic/*`), other devices' `$aws/things/...` topics included |
//! | `broad-subscribe` | warning | `Allow iot:Subscribe` on a resource that covers the filter `#` (`topicfilter/#`, `topicfilter/*`) |
//! | `broad-thing` | warning | `Allow` of a shadow or job action on every thing |
//! | `broad-action` | info | an `Action` wildcard (`iot:*`) on narrower resources: also grants the actions nobody listed |
//! | `not-action-allow` | warning | `Allow` with `NotAction`: grants every other action |
//! | `not-resource-allow` | warning | `Allow` with `NotResource`: grants every other resource |
//! | `literal-variable` | error | `${...}` in a `2008-10-17` document (or one without `Version`): literal text, not a variable |
//! | `unknown-variable` | error | `${name}` that is not a policy variable: the statement never applies |
//! | `multi-valued-variable` | error | `${...List}`, `${iot:Certificate.AvailableKeys}`, `${iot:ConnectAttributes}`: several values are never substituted |
//! | `never-resolves` | error | a variable or condition key the principals linted for never have (e.g. thing variables for anonymous clients, `ferrocore:` values for certificates) |
//! | `client-id-over-http` | warning | `${iot:ClientId}` in a statement of HTTPS-only actions, which have no client id |
//! | `deny-variable` | warning | a `Deny` whose variable may have no value: the Deny then silently denies nothing |
//! | `client-id-filter` | warning | `${iot:ClientId}` in a `topicfilter/` resource while client ids are not restricted: a client named `+` or `#` widens it |
//! | `deny-subscribe-only` | warning | a `Deny` of `iot:Subscribe` on a wildcard filter without a `Deny` of `iot:Receive`: a broader filter still receives those topics |
//! | `resource-kind-mismatch` | warning | an action named with resources of another kind (`iot:Subscribe` on `topic/...`): never applies to it |
//! | `unknown-action` | warning | an `Action` that matches no action an IoT policy decides (a typo, or a control-plane action) |
//! | `unknown-condition-key` | warning | a condition key no request has: the condition never holds (or always does) |
//! | `connect-only-key` | warning | `iot:ConnectAttributes` / `iot:LastWillTopic` in a statement without `iot:Connect` |
//! | `too-long` | warning | over AWS's 2048 characters (without whitespace): `CreatePolicy` refuses it |
//!
//! Whether a variable can have a value depends on who the policy is for ([`Principals`]):
//! devices with certificates (the default: policies attached to certificates and thing
//! groups), anonymous clients of a listener (`anonymous_policy`), or clients of a custom
//! authorizer.

use std::fmt;

use crate::action::{Action, ResourceKind};
use crate::condition::{OperatorKind, SetQualifier};
use crate::document::{self, DEFAULT_MAX_CHARS, Effect, ParseOptions, PolicyDocument, Statement};
use crate::error::PolicyError;
use crate::matcher::glob;
use crate::request::Request;
use crate::template::{self, Piece};
use crate::var::{Key, Select};

/// The code of every check (see the module documentation).
pub const CODES: &[&str] = &[
    "allow-all",
    "broad-connect",
    "broad-topic",
    "broad-subscribe",
    "broad-thing",
    "broad-action",
    "not-action-allow",
    "not-resource-allow",
    "literal-variable",
    "unknown-variable",
    "multi-valued-variable",
    "never-resolves",
    "client-id-over-http",
    "deny-variable",
    "client-id-filter",
    "deny-subscribe-only",
    "resource-kind-mismatch",
    "unknown-action",
    "unknown-condition-key",
    "connect-only-key",
    "too-long",
];

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; often deliberate.
    Info,
    /// Probably grants more than meant, or does less than it seems to.
    Warning,
    /// Certainly wrong: part of the policy never works, or it grants everything.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// `info`, `warning` or `error` (ASCII case ignored).
    pub fn from_name(name: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Error]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// A stable name for the check (see the module documentation), e.g. `broad-connect`.
    pub code: &'static str,
    /// The statement's index (zero-based, as in `Statement[2]`), or `None` for the document.
    pub statement: Option<usize>,
    pub sid: Option<String>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Finding {
    /// `warning[broad-connect] Statement[1] (Sid "x"): message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.severity, self.code)?;
        if let Some(i) = self.statement {
            write!(f, " Statement[{i}]")?;
        }
        if let Some(sid) = &self.sid {
            write!(f, " (Sid \"{sid}\")")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Who the linted policy is for, which decides what variables can have a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Principals {
    /// Devices authenticated by X.509 certificates (policies attached to certificates and
    /// thing groups): client id, source address, certificate and — when the certificate is
    /// attached to one — thing variables; no `ferrocore:` values.
    #[default]
    Certificates,
    /// Anonymous clients of a listener (`anonymous_policy`): client id, source address and
    /// domain name only.
    Anonymous,
    /// Clients of a custom authorizer (policies in its response): client id, source address,
    /// domain name and the `ferrocore:` principal id, claims and context; no certificate or
    /// thing.
    Authorizer,
    /// Unknown: no variable is assumed to be missing for the kind of principal.
    Any,
}

impl Principals {
    /// `certificates`, `anonymous`, `authorizer` or `any`.
    pub fn from_name(name: &str) -> Option<Principals> {
        match name.to_ascii_lowercase().as_str() {
            "certificates" | "certificate" | "cert" => Some(Principals::Certificates),
            "anonymous" => Some(Principals::Anonymous),
            "authorizer" | "authorizers" => Some(Principals::Authorizer),
            "any" => Some(Principals::Any),
            _ => None,
        }
    }
}

/// What [`lint_with`] assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LintOptions {
    pub principals: Principals,
}

/// Lints a document written for devices with certificates.
pub fn lint(doc: &PolicyDocument) -> Vec<Finding> {
    lint_with(doc, &LintOptions::default())
}

/// Parses `text` (without the length limit, which becomes the `too-long` finding instead)
/// and lints it. A document that does not parse is an `Err`: it is not a policy at all.
pub fn lint_text(text: &str, options: &LintOptions) -> Result<Vec<Finding>, PolicyError> {
    let doc = document::parse_with(text, &ParseOptions { max_chars: None })?;
    let mut findings = Vec::new();
    let length = text.chars().filter(|c| !c.is_whitespace()).count();
    if length > DEFAULT_MAX_CHARS && options.principals != Principals::Anonymous {
        findings.push(Finding {
            severity: Severity::Warning,
            code: "too-long",
            statement: None,
            sid: None,
            message: format!(
                "the document has {length} characters without whitespace; CreatePolicy (as on \
                 AWS) refuses more than {DEFAULT_MAX_CHARS}: split it into several policies"
            ),
        });
    }
    findings.extend(lint_with(&doc, options));
    Ok(findings)
}

/// Lints a document.
pub fn lint_with(doc: &PolicyDocument, options: &LintOptions) -> Vec<Finding> {
    let facts: Vec<Facts> = doc
        .statements
        .iter()
        .map(|s| Facts::of(s, doc.version.has_variables()))
        .collect();
    let mut out = Vec::new();
    for (i, (s, f)) in doc.statements.iter().zip(&facts).enumerate() {
        let mut l = Linter {
            index: i,
            statement: s,
            facts: f,
            all: &facts,
            doc,
            principals: options.principals,
            out: Vec::new(),
        };
        l.run();
        out.extend(l.out);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// What a statement is made of

/// A resource pattern, pre-parsed.
struct Resource {
    text: String,
    pieces: Vec<Piece>,
    /// The pieces after `arn:<partition>:<service>:<region>:<account>:` (`None` for a
    /// pattern of stars alone, which covers everything).
    part: Option<Vec<Piece>>,
}

impl Resource {
    fn of(text: &str, variables: bool) -> Resource {
        let pieces = template::parse(text, variables, true).unwrap_or_default();
        let part = if pieces.iter().all(|p| *p == Piece::Star) {
            None
        } else {
            let mut parts = template::split_colons(&pieces, 5);
            if parts.len() == 6 { parts.pop() } else { None }
        };
        Resource {
            text: text.to_owned(),
            pieces,
            part,
        }
    }

    /// Whether the pattern covers every resource of `kind`: every probe name matches (for
    /// topic filters: the filter `#`, which subscribes to everything).
    fn covers_all(&self, kind: ResourceKind) -> bool {
        let nobody = Request::new();
        let Some(part) = &self.part else {
            return true;
        };
        let probes: &[&str] = match kind {
            ResourceKind::TopicFilter => &["#"],
            _ => &[
                "x",
                "another-device",
                "$aws/things/other/shadow/update",
                "a/b/c/d",
            ],
        };
        probes
            .iter()
            .all(|p| glob(part, &format!("{}/{p}", kind.as_str()), &nobody))
    }

    /// Whether the pattern could match some resource of `kind` (its literal start does not
    /// rule it out).
    fn may_match(&self, kind: ResourceKind) -> bool {
        let Some(part) = &self.part else {
            return true;
        };
        let want = format!("{}/", kind.as_str());
        match part.first() {
            Some(Piece::Lit(l)) if l.len() >= want.len() => l.starts_with(&want),
            Some(Piece::Lit(l)) => part.len() > 1 && want.starts_with(&**l),
            Some(_) => true,
            None => false,
        }
    }

    /// Whether the pattern is of `kind` (its literal start says so).
    fn is_kind(&self, kind: ResourceKind) -> bool {
        matches!(self.part.as_ref().and_then(|p| p.first()),
            Some(Piece::Lit(l)) if l.starts_with(&format!("{}/", kind.as_str())))
    }

    fn variables(&self) -> impl Iterator<Item = &Key> {
        template::variables(&self.pieces)
    }
}

/// Everything the checks need about one statement.
struct Facts {
    /// The actions the statement covers (after `NotAction`).
    covered: Vec<Action>,
    /// The actions named exactly (no wildcard) in `Action`.
    named: Vec<Action>,
    /// `Action` patterns that match no action.
    unmatched: Vec<String>,
    /// Whether an `Action` pattern has a wildcard and covers several actions.
    wildcard_action: bool,
    resources: Vec<Resource>,
    /// Every variable in the resources and condition values, once, in order.
    variables: Vec<Key>,
    /// The condition keys, parsed.
    keys: Vec<Key>,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

impl Facts {
    fn of(s: &Statement, variables: bool) -> Facts {
        let nobody = Request::new();
        let patterns: Vec<(String, Vec<Piece>)> = s
            .actions
            .values
            .iter()
            .map(|a| {
                let lower = a.to_ascii_lowercase();
                let pieces = template::parse(&lower, false, true).unwrap_or_default();
                (a.clone(), pieces)
            })
            .collect();
        let matches = |pieces: &[Piece], action: Action| {
            action
                .names()
                .iter()
                .any(|n| glob(pieces, &n.to_ascii_lowercase(), &nobody))
        };
        let covered = Action::ALL
            .into_iter()
            .filter(|&a| patterns.iter().any(|(_, p)| matches(p, a)) != s.actions.negated)
            .collect();
        let mut named = Vec::new();
        let mut unmatched = Vec::new();
        let mut wildcard_action = false;
        for (text, pieces) in &patterns {
            let hits: Vec<Action> = Action::ALL
                .into_iter()
                .filter(|&a| matches(pieces, a))
                .collect();
            if hits.is_empty() {
                unmatched.push(text.clone());
            } else if !has_wildcard(text) && !s.actions.negated {
                for a in hits {
                    if !named.contains(&a) {
                        named.push(a);
                    }
                }
            } else if hits.len() > 1 {
                wildcard_action = true;
            }
        }
        let resources: Vec<Resource> = s
            .resources
            .values
            .iter()
            .map(|r| Resource::of(r, variables))
            .collect();
        let mut vars: Vec<Key> = Vec::new();
        let mut push = |k: &Key| {
            if !vars.contains(k) {
                vars.push(k.clone());
            }
        };
        for r in &resources {
            r.variables().for_each(&mut push);
        }
        for c in &s.conditions {
            if c.operator.kind.takes_variables() {
                for v in &c.values {
                    let pieces = template::parse(v, variables, false).unwrap_or_default();
                    template::variables(&pieces).for_each(&mut push);
                }
            }
        }
        Facts {
            covered,
            named,
            unmatched,
            wildcard_action,
            resources,
            variables: vars,
            keys: s.conditions.iter().map(|c| Key::parse(&c.key)).collect(),
        }
    }

    fn covers(&self, a: Action) -> bool {
        self.covered.contains(&a)
    }
}

// ---------------------------------------------------------------------------------------------
// Which values a request can have

/// Whether a variable or condition key has a value.
enum Avail {
    Always,
    /// Sometimes not: when (said after "has no value ...").
    Maybe(&'static str),
    /// Never, for these principals: why.
    Never(&'static str),
}

/// MQTT-only actions always have a client id; HTTPS-only ones never; Publish may come either
/// way.
fn client_id_for(actions: &[Action]) -> Avail {
    let mqtt_only = |a: &Action| matches!(a, Action::Connect | Action::Subscribe | Action::Receive);
    let publish = |a: &Action| matches!(a, Action::Publish | Action::RetainPublish);
    if actions.iter().all(mqtt_only) {
        Avail::Always
    } else if actions.iter().all(|a| !mqtt_only(a) && !publish(a)) {
        Avail::Never("requests over HTTPS (these actions) have no client id")
    } else {
        Avail::Maybe("for requests over HTTPS (e.g. an iot-data Publish), which have no client id")
    }
}

fn availability(key: &Key, principals: Principals, actions: &[Action]) -> Avail {
    use Principals::*;
    let thing_never = "only devices with a certificate attached to a thing have thing variables";
    let cert_never = "only devices with a certificate have certificate variables";
    let authorizer_only = "only clients of a custom authorizer have ferrocore: values";
    match key {
        Key::ClientId => client_id_for(actions),
        Key::SourceIp | Key::CurrentTime | Key::EpochTime | Key::ThingIsAttached => Avail::Always,
        Key::DomainName => Avail::Maybe("when the client sends no TLS server name (SNI)"),
        Key::ConnectAttributes | Key::LastWillTopic => {
            Avail::Maybe("except while iot:Connect is decided")
        }
        Key::ThingName | Key::ThingTypeName | Key::ThingAttribute(_) => match principals {
            Anonymous | Authorizer => Avail::Never(thing_never),
            Certificates | Any => Avail::Maybe(match key {
                Key::ThingName => {
                    "when the certificate is not attached to a thing named like the client id \
                     (nor to an EXCLUSIVE_THING)"
                }
                Key::ThingTypeName => "when there is no thing, or it has no type",
                _ => "when there is no thing, or it lacks the attribute",
            }),
        },
        Key::CertificateId | Key::CertificateSerialNumber => match principals {
            Anonymous | Authorizer => Avail::Never(cert_never),
            Certificates => Avail::Always,
            Any => Avail::Maybe("for clients without a certificate"),
        },
        Key::CertificateAvailableKeys | Key::Dn { .. } | Key::AltName { .. } => match principals {
            Anonymous | Authorizer => Avail::Never(cert_never),
            Certificates | Any => Avail::Maybe(
                "when the certificate lacks the field, or its value is over 1024 characters or \
                 holds * $ + ? #",
            ),
        },
        Key::PrincipalId | Key::Claim(_) | Key::Context(_) => match principals {
            Certificates | Anonymous => Avail::Never(authorizer_only),
            Authorizer | Any => Avail::Maybe("when the authorizer does not supply it"),
        },
        Key::Unknown(_) => Avail::Never("it is not a policy variable"),
    }
}

/// Whether a condition on a key that is absent holds (IAM: negated operators, `IfExists`,
/// `ForAllValues:` and `Null: true` do).
fn holds_when_absent(c: &document::Condition) -> bool {
    if c.operator.kind == OperatorKind::Null {
        return c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
    }
    c.operator.kind.is_negated()
        || c.operator.if_exists
        || c.operator.qualifier == Some(SetQualifier::ForAllValues)
}

/// Every documented variable name, for suggestions.
const KNOWN: &[&str] = &[
    "iot:ClientId",
    "aws:SourceIp",
    "iot:DomainName",
    "aws:CurrentTime",
    "aws:EpochTime",
    "iot:CertificateId",
    "iot:Certificate.SerialNumber",
    "iot:Certificate.Subject.CommonName",
    "iot:Certificate.Subject.Organization",
    "iot:Certificate.Subject.OrganizationalUnit",
    "iot:Certificate.Subject.Country",
    "iot:Certificate.Subject.SerialNumber",
    "iot:Certificate.Issuer.CommonName",
    "iot:Certificate.Issuer.Organization",
    "iot:Connection.Thing.ThingName",
    "iot:Connection.Thing.ThingTypeName",
    "iot:Connection.Thing.IsAttached",
    "iot:ConnectAttributes",
    "iot:LastWillTopic",
    "ferrocore:PrincipalId",
];

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The documented name `name` was probably meant to be.
fn suggest_variable(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower.contains("attribute") {
        let attr = name
            .rsplit(['.', '[', ':'])
            .find(|s| !s.is_empty())
            .map(|s| s.trim_end_matches(']'))
            .filter(|s| !s.eq_ignore_ascii_case("attributes"))
            .unwrap_or("<name>");
        return Some(format!("iot:Connection.Thing.Attributes[{attr}]"));
    }
    let last = |s: &str| {
        s.rsplit(['.', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let tail = last(name);
    KNOWN
        .iter()
        .find(|k| !tail.is_empty() && last(k) == tail)
        .or_else(|| {
            KNOWN
                .iter()
                .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), k))
                .filter(|(d, _)| *d <= 3)
                .min_by_key(|(d, _)| *d)
                .map(|(_, k)| k)
        })
        .map(|k| (*k).to_owned())
}

/// The action `pattern` was probably meant to be.
fn suggest_action(pattern: &str) -> Option<&'static str> {
    let lower = pattern.to_ascii_lowercase();
    Action::ALL
        .iter()
        .flat_map(|a| a.names().iter())
        .map(|n| (edit_distance(&lower, &n.to_ascii_lowercase()), *n))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn action_list(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `${...}` names written in `text` (for documents where they are literal).
fn literal_variables(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if !matches!(name, "*" | "?" | "$") {
                    out.push(name);
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The checks

struct Linter<'a> {
    index: usize,
    statement: &'a Statement,
    facts: &'a Facts,
    all: &'a [Facts],
    doc: &'a PolicyDocument,
    principals: Principals,
    out: Vec<Finding>,
}

impl Linter<'_> {
    fn push(&mut self, severity: Severity, code: &'static str, message: String) {
        self.out.push(Finding {
            severity,
            code,
            statement: Some(self.index),
            sid: self.statement.sid.clone(),
            message,
        });
    }

    fn allow(&self) -> bool {
        self.statement.effect == Effect::Allow
    }

    fn run(&mut self) {
        self.literal_variables();
        self.actions();
        self.variables();
        self.condition_keys();
        if self.allow() {
            self.not_elements();
            self.broad();
            self.client_id_filter();
        } else {
            self.deny_subscribe_only();
        }
        self.kind_mismatch();
    }

    fn literal_variables(&mut self) {
        if self.doc.version.has_variables() {
            return;
        }
        let s = self.statement;
        let texts = s
            .resources
            .values
            .iter()
            .chain(s.conditions.iter().flat_map(|c| c.values.iter()));
        let mut names: Vec<String> = Vec::new();
        for t in texts {
            for n in literal_variables(t) {
                if !names.iter().any(|m| m == n) {
                    names.push(n.to_owned());
                }
            }
        }
        if let Some(first) = names.first() {
            self.push(
                Severity::Error,
                "literal-variable",
                format!(
                    "\"Version\" is \"2008-10-17\" (or missing), so \"${{{first}}}\" is literal text, not a policy variable: the \
                     resource only matches those very characters; set \"Version\": \"2012-10-17\""
                ),
            );
        }
    }

    fn actions(&mut self) {
        for a in self.facts.unmatched.clone() {
            let hint = match suggest_action(&a) {
                Some(s) => format!("; did you mean {s}?"),
                None if a.to_ascii_lowercase().starts_with("iot:") => {
                    "; control-plane actions (iot:CreateThing, ...) belong in IAM policies, not \
                     IoT policies"
                        .to_owned()
                }
                None => String::new(),
            };
            let element = if self.statement.actions.negated {
                "NotAction"
            } else {
                "Action"
            };
            self.push(
                Severity::Warning,
                "unknown-action",
                format!(
                    "{element} \"{a}\" matches no action an IoT policy decides (iot:Connect, \
                     iot:Publish, iot:Subscribe, iot:Receive, iot:RetainPublish, the shadow, \
                     retained-message and job actions){hint}"
                ),
            );
        }
    }

    fn variables(&mut self) {
        let allow = self.allow();
        let covered = self.facts.covered.clone();
        for key in self.facts.variables.clone() {
            let name = key.to_string();
            if let Key::Unknown(_) = key {
                let hint = suggest_variable(&name)
                    .map(|s| format!("; did you mean ${{{s}}}?"))
                    .unwrap_or_default();
                let effect = if allow {
                    "allows nothing"
                } else {
                    "denies nothing"
                };
                self.push(
                    Severity::Error,
                    "unknown-variable",
                    format!(
                        "${{{name}}} is not a policy variable, so it never has a value and this \
                         statement never applies (it {effect}){hint}"
                    ),
                );
                continue;
            }
            let multi = matches!(
                key,
                Key::Dn {
                    select: Select::List,
                    ..
                } | Key::AltName {
                    select: Select::List,
                    ..
                } | Key::CertificateAvailableKeys
                    | Key::ConnectAttributes
            );
            if multi {
                self.push(
                    Severity::Error,
                    "multi-valued-variable",
                    format!(
                        "${{{name}}} has several values, and a variable with several values is \
                         never substituted, so this statement never applies; use {name} as a \
                         condition key with ForAnyValue: or ForAllValues: instead"
                    ),
                );
                continue;
            }
            match availability(&key, self.principals, &covered) {
                Avail::Always => {}
                Avail::Never(why) if key == Key::ClientId => {
                    self.push(
                        Severity::Warning,
                        "client-id-over-http",
                        format!(
                            "${{iot:ClientId}} never has a value here: {why} ({}), so this \
                             statement never applies; use ${{iot:Connection.Thing.ThingName}} \
                             or name the resources",
                            action_list(&covered)
                        ),
                    );
                }
                Avail::Never(why) => {
                    let effect = if allow {
                        "allows nothing"
                    } else {
                        "denies nothing"
                    };
                    self.push(
                        Severity::Error,
                        "never-resolves",
                        format!(
                            "${{{name}}} never has a value for {}: {why}; this statement never \
                             applies (it {effect})",
                            self.principals_noun()
                        ),
                    );
                }
                Avail::Maybe(when) if !allow && !self.guarded(&key) => {
                    self.push(
                        Severity::Warning,
                        "deny-variable",
                        format!(
                            "this Deny uses ${{{name}}}, which has no value {when}; a statement \
                             whose variable has no value does not apply, so the Deny then denies \
                             nothing (the Allows still apply). Add a Deny without variables for \
                             that case, e.g. with \"Condition\": {{\"Null\": {{\"{name}\": \
                             \"true\"}}}}"
                        ),
                    );
                }
                Avail::Maybe(_) => {}
            }
        }
    }

    fn principals_noun(&self) -> &'static str {
        match self.principals {
            Principals::Certificates => "devices with certificates",
            Principals::Anonymous => "anonymous clients",
            Principals::Authorizer => "clients of a custom authorizer",
            Principals::Any => "any client",
        }
    }

    /// Whether another Deny of the document, without variables and covering at least this
    /// statement's actions, applies exactly when `key` has no value (`Null: true`, or for the
    /// thing name `iot:Connection.Thing.IsAttached` false).
    fn guarded(&self, key: &Key) -> bool {
        self.doc
            .statements
            .iter()
            .zip(self.all)
            .enumerate()
            .any(|(i, (s, f))| {
                i != self.index
                    && s.effect == Effect::Deny
                    && f.variables.is_empty()
                    && self.facts.covered.iter().all(|a| f.covers(*a))
                    && s.conditions.iter().zip(&f.keys).any(|(c, k)| {
                        let says = |v: &str| c.values.iter().any(|x| x.eq_ignore_ascii_case(v));
                        (c.operator.kind == OperatorKind::Null && k == key && says("true"))
                            || (*key == Key::ThingName
                                && *k == Key::ThingIsAttached
                                && matches!(
                                    c.operator.kind,
                                    OperatorKind::Bool | OperatorKind::StringEquals
                                )
                                && says("false"))
                    })
            })
    }

    fn condition_keys(&mut self) {
        let covered = self.facts.covered.clone();
        let conditions = self.statement.conditions.clone();
        for (c, key) in conditions.iter().zip(self.facts.keys.clone()) {
            let outcome = if holds_when_absent(c) {
                "the condition always holds (it restricts nothing)"
            } else {
                "the condition never holds, so this statement never applies"
            };
            let (code, severity, why) = match &key {
                Key::Unknown(name) => {
                    let hint = suggest_variable(name)
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default();
                    (
                        "unknown-condition-key",
                        Severity::Warning,
                        format!("{name} is not a condition key IoT requests have{hint}"),
                    )
                }
                Key::ConnectAttributes | Key::LastWillTopic
                    if !covered.contains(&Action::Connect) =>
                {
                    (
                        "connect-only-key",
                        Severity::Warning,
                        format!(
                            "{key} has a value only while iot:Connect is decided, and this \
                             statement is for {}",
                            action_list(&covered)
                        ),
                    )
                }
                _ => match availability(&key, self.principals, &covered) {
                    Avail::Never(why) if key != Key::ClientId => (
                        "never-resolves",
                        Severity::Error,
                        format!(
                            "{key} never has a value for {}: {why}",
                            self.principals_noun()
                        ),
                    ),
                    _ => continue,
                },
            };
            self.push(
                severity,
                code,
                format!("{} {}: {why}; {outcome}", c.operator, c.key),
            );
        }
    }

    fn not_elements(&mut self) {
        let s = self.statement;
        if s.actions.negated {
            self.push(
                Severity::Warning,
                "not-action-allow",
                format!(
                    "Allow with NotAction grants every action except {} ({}), including any \
                     added later; list the actions devices need in \"Action\" instead",
                    s.actions.values.join(", "),
                    action_list(&self.facts.covered)
                ),
            );
        }
        if s.resources.negated {
            self.push(
                Severity::Warning,
                "not-resource-allow",
                format!(
                    "Allow with NotResource grants {} on every resource except {}: every other \
                     topic, client id and thing; list the resources devices need in \
                     \"Resource\" (and Deny what is off limits) instead",
                    action_list(&self.facts.covered),
                    s.resources.values.join(", ")
                ),
            );
        }
    }

    fn broad(&mut self) {
        let s = self.statement;
        if s.resources.negated {
            return;
        }
        let covered = &self.facts.covered;
        let mqtt = [
            Action::Connect,
            Action::Publish,
            Action::Subscribe,
            Action::Receive,
        ];
        let everything = self
            .facts
            .resources
            .iter()
            .find(|r| r.part.is_none() || matches!(r.part.as_deref(), Some([Piece::Star])));
        if mqtt.iter().all(|a| covered.contains(a))
            && let Some(r) = everything
        {
            let conditioned = !s.conditions.is_empty();
            let (severity, narrowed) = if conditioned {
                (Severity::Warning, " (only its conditions narrow it)")
            } else {
                (Severity::Error, "")
            };
            self.push(
                severity,
                "allow-all",
                format!(
                    "Allow of {} on \"{}\" grants every action on every resource{narrowed}: any \
                     client id, every topic, other devices' shadows and jobs; list the actions \
                     each device needs on its own client/topic/topicfilter resources (e.g. \
                     client/${{iot:Connection.Thing.ThingName}})",
                    s.actions.values.join(", "),
                    r.text
                ),
            );
            return;
        }
        if !s.conditions.is_empty() {
            // Conditions may narrow a broad resource deliberately (e.g. IsAttached).
            return;
        }
        if self.facts.wildcard_action && !s.actions.negated {
            let wild: Vec<&str> = s
                .actions
                .values
                .iter()
                .filter(|a| has_wildcard(a))
                .map(String::as_str)
                .collect();
            self.push(
                Severity::Info,
                "broad-action",
                format!(
                    "{} grants {} on these resources; list only the actions devices need",
                    wild.join(", "),
                    action_list(covered)
                ),
            );
        }
        let checks: [(&'static str, &[Action], ResourceKind, &str); 4] = [
            (
                "broad-connect",
                &[Action::Connect],
                ResourceKind::Client,
                "lets a client connect with any client id, so a device can connect as another \
                 one and take over its session (the other is disconnected); allow \
                 client/${iot:Connection.Thing.ThingName} or the client ids devices use",
            ),
            (
                "broad-topic",
                &[Action::Publish, Action::RetainPublish, Action::Receive],
                ResourceKind::Topic,
                "covers every topic, other devices' $aws/things/<thing>/shadow and jobs topics \
                 included; allow the topics devices need, e.g. \
                 topic/devices/${iot:Connection.Thing.ThingName}/*",
            ),
            (
                "broad-subscribe",
                &[Action::Subscribe],
                ResourceKind::TopicFilter,
                "covers the filter # (subscribe to everything), other devices' $aws/... topics \
                 included; allow the filters devices need, e.g. \
                 topicfilter/devices/${iot:Connection.Thing.ThingName}/*",
            ),
            (
                "broad-thing",
                &[
                    Action::GetThingShadow,
                    Action::UpdateThingShadow,
                    Action::DeleteThingShadow,
                    Action::ListNamedShadowsForThing,
                    Action::DescribeJobExecution,
                    Action::GetPendingJobExecutions,
                    Action::UpdateJobExecution,
                    Action::StartNextPendingJobExecution,
                ],
                ResourceKind::Thing,
                "covers every thing; allow thing/${iot:Connection.Thing.ThingName}",
            ),
        ];
        for (code, actions, kind, advice) in checks {
            let hit: Vec<Action> = actions
                .iter()
                .copied()
                .filter(|a| covered.contains(a))
                .collect();
            if hit.is_empty() {
                continue;
            }
            if let Some(r) = self.facts.resources.iter().find(|r| r.covers_all(kind)) {
                let text = r.text.clone();
                self.push(
                    Severity::Warning,
                    code,
                    format!("Allow of {} on \"{text}\" {advice}", action_list(&hit)),
                );
            }
        }
    }

    /// Whether every `iot:Connect` the document allows names client ids that cannot be `+` or
    /// `#` (no wildcard, no `${iot:ClientId}`, no thing attribute).
    fn connect_restricted(&self) -> bool {
        let allows: Vec<&Facts> = self
            .doc
            .statements
            .iter()
            .zip(self.all)
            .filter(|(s, f)| s.effect == Effect::Allow && f.covers(Action::Connect))
            .map(|(_, f)| f)
            .collect();
        !allows.is_empty()
            && self.doc.statements.iter().zip(self.all).all(|(s, f)| {
                s.effect == Effect::Deny
                    || !f.covers(Action::Connect)
                    || (!s.resources.negated
                        && f.resources.iter().all(|r| {
                            r.part.as_ref().is_some_and(|part| {
                                part.iter().all(|p| match p {
                                    Piece::Lit(_) => true,
                                    Piece::Star
                                    | Piece::One
                                    | Piece::Level { .. }
                                    | Piece::Levels { .. } => false,
                                    Piece::Var(k) => {
                                        !matches!(k, Key::ClientId | Key::ThingAttribute(_))
                                    }
                                })
                            })
                        }))
            })
    }

    fn client_id_filter(&mut self) {
        if !self.facts.covers(Action::Subscribe) {
            return;
        }
        let hit = self.facts.resources.iter().find(|r| {
            !self.statement.resources.negated
                && r.may_match(ResourceKind::TopicFilter)
                && r.variables().any(|k| *k == Key::ClientId)
        });
        let Some(r) = hit else { return };
        if self.connect_restricted() {
            return;
        }
        let text = r.text.clone();
        self.push(
            Severity::Warning,
            "client-id-filter",
            format!(
                "\"{text}\" puts the client id into a topic filter, and client ids are chosen by \
                 the client: one connecting as \"+\" or \"#\" may subscribe to every device's \
                 topics; use ${{iot:Connection.Thing.ThingName}}, or allow iot:Connect only on \
                 client ids without wildcards (e.g. client/${{iot:Connection.Thing.ThingName}})"
            ),
        );
    }

    fn deny_subscribe_only(&mut self) {
        if !self.facts.named.contains(&Action::Subscribe) || self.facts.covers(Action::Receive) {
            return;
        }
        let denies_receive = self
            .doc
            .statements
            .iter()
            .zip(self.all)
            .any(|(s, f)| s.effect == Effect::Deny && f.covers(Action::Receive));
        if denies_receive || self.statement.resources.negated {
            return;
        }
        let wild = self.facts.resources.iter().find(|r| {
            r.is_kind(ResourceKind::TopicFilter)
                && r.pieces.iter().any(|p| matches!(p, Piece::Star))
        });
        if let Some(r) = wild {
            let text = r.text.clone();
            self.push(
                Severity::Warning,
                "deny-subscribe-only",
                format!(
                    "denying iot:Subscribe on \"{text}\" does not stop a client subscribed to a \
                     broader filter (e.g. #) from receiving those topics; also Deny iot:Receive \
                     on the matching topic/... resources"
                ),
            );
        }
    }

    fn kind_mismatch(&mut self) {
        if self.statement.resources.negated {
            return;
        }
        for a in self.facts.named.clone() {
            let Some(kind) = a.resource_kind() else {
                continue;
            };
            if self.facts.resources.iter().any(|r| r.may_match(kind)) {
                continue;
            }
            let example = match kind {
                ResourceKind::TopicFilter => "topicfilter/<filter>",
                ResourceKind::Topic => "topic/<topic>",
                ResourceKind::Client => "client/<client id>",
                ResourceKind::Thing => "thing/<thing name>",
                ResourceKind::RoleAlias => "rolealias/<alias>",
            };
            self.push(
                Severity::Warning,
                "resource-kind-mismatch",
                format!(
                    "{a} is decided on {} ARNs and no Resource here is one, so this statement \
                     never applies to {a}; write arn:aws:iot:<region>:<account>:{example}",
                    kind.as_str()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
