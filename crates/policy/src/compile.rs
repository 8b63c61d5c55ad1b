//! Compiled policies and their evaluation.
//!
//! A [`CompiledPolicy`] is built once per policy version: its statements' actions are matched
//! against every [`Action`] up front (so evaluation looks at only the statements that can apply
//! to the action asked about, Deny statements first), its resource patterns and condition
//! values are pre-parsed into pieces, and its variables are recognised into slots read straight
//! from the [`Request`]. A [`PolicySet`] is the policies in force for one principal: cheap to
//! assemble from shared compiled policies, evaluated without parsing and, in the common case,
//! without allocating.
//!
//! Evaluation is IAM's: an applicable Deny wins, else an applicable Allow, else the request is
//! implicitly denied. A statement applies when its `Action` / `NotAction` covers the action,
//! its `Resource` / `NotResource` covers the resource, every condition holds, and every policy
//! variable in it can be substituted. **A statement with a variable that cannot be substituted
//! does not apply, whatever its effect**: a Deny that names `${iot:Connection.Thing.ThingName}`
//! does nothing for a client without a thing, as on AWS.

use std::fmt;
use std::sync::Arc;

use crate::action::Action;
use crate::condition::CompiledCondition;
use crate::document::{self, Effect, PolicyDocument, Version};
use crate::error::{ErrorKind, PolicyError};
use crate::matcher::{glob, glob_after};
use crate::request::Request;
use crate::template::{self, Piece};
use crate::var::Key;

#[derive(Debug, Clone)]
struct CompiledStatement {
    sid: Option<Box<str>>,
    effect: Effect,
    /// Bit `a` set: the statement covers `Action::ALL[a]`.
    actions: u32,
    resources: Box<[Box<[Piece]>]>,
    not_resource: bool,
    conditions: Box<[CompiledCondition]>,
    /// Every distinct variable in the resources and condition values.
    variables: Box<[Key]>,
}

/// Why a statement does or does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Applies,
    Unresolved(usize),
    Resource,
    Condition(usize),
}

impl CompiledStatement {
    /// Why the statement does or does not apply, the variables checked first (for
    /// explanations).
    fn check(&self, resource: &str, req: &Request) -> Check {
        for (i, v) in self.variables.iter().enumerate() {
            if req.variable(v).is_none() {
                return Check::Unresolved(i);
            }
        }
        let matched = self.resources.iter().any(|p| glob(p, resource, req));
        if matched == self.not_resource {
            return Check::Resource;
        }
        for (i, c) in self.conditions.iter().enumerate() {
            if !c.evaluate(req) {
                return Check::Condition(i);
            }
        }
        Check::Applies
    }

    /// Whether the statement applies: the same answer as [`check`](Self::check), cheapest
    /// test first. Most statements fail on the literal start of their resource patterns, so
    /// variables are only looked up for statements that get past it. (A pattern whose variable
    /// does not resolve matches nothing, so the final check only matters for `NotResource`
    /// and for variables in patterns or conditions that were not reached.)
    ///
    /// The first `skip` bytes of `resource` are known to equal those of every resource
    /// pattern (see [`List`]).
    fn applies(&self, resource: &str, skip: usize, req: &Request) -> bool {
        let matched = self
            .resources
            .iter()
            .any(|p| glob_after(p, skip, resource, req));
        matched != self.not_resource
            && self.conditions.iter().all(|c| c.evaluate(req))
            && self.variables.iter().all(|v| req.variable(v).is_some())
    }
}

/// `*`, or `<service>:<name>` with a service of letters, digits and `-`.
fn valid_action(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    match a.split_once(':') {
        Some((service, name)) => {
            !service.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !name.is_empty()
                && !name.contains(':')
                && !name.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// `*` (any run of stars), or an ARN with at least six colon-separated components.
fn valid_resource(pieces: &[Piece]) -> bool {
    if pieces.is_empty() {
        return false;
    }
    if pieces.iter().all(|p| *p == Piece::Star) {
        return true;
    }
    matches!(pieces.first(), Some(Piece::Lit(s)) if s.starts_with("arn:"))
        && template::split_colons(pieces, 5).len() == 6
}

/// The statements of one policy that cover one action with one effect, in order, prepared
/// for skipping most of them without a call:
///
/// - `prefix`: the literal text every resource pattern of every statement starts with (empty
///   if one uses `NotResource` or starts with a wildcard or variable). A resource that does not
///   start with it skips the whole list; one that does need not compare it again.
/// - per statement with a single `Resource` pattern, up to eight more literal bytes that the
///   resource must have next (`disc` under `mask`, little-endian), compared as one word.
#[derive(Debug, Clone, Default)]
struct List {
    prefix: Box<str>,
    entries: Box<[Entry]>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    statement: u32,
    mask: u64,
    disc: u64,
}

/// Up to eight bytes as a little-endian word, zero-padded.
#[inline]
fn load8(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    if b.len() >= 8 {
        a.copy_from_slice(&b[..8]);
    } else {
        for (x, y) in a.iter_mut().zip(b) {
            *x = *y;
        }
    }
    u64::from_le_bytes(a)
}

impl List {
    fn new(statements: Vec<u32>, all: &[CompiledStatement]) -> List {
        let mut prefix: Option<&str> = None;
        for &i in &statements {
            let Some(s) = all.get(i as usize) else {
                continue;
            };
            let firsts: Vec<&str> = if s.not_resource {
                vec![""]
            } else {
                s.resources
                    .iter()
                    .map(|p| match p.first() {
                        Some(Piece::Lit(l)) => &**l,
                        _ => "",
                    })
                    .collect()
            };
            for f in firsts {
                let common = match prefix {
                    None => f,
                    Some(p) => {
                        let mut n = p.bytes().zip(f.bytes()).take_while(|(a, b)| a == b).count();
                        while !p.is_char_boundary(n) {
                            n -= 1;
                        }
                        &p[..n]
                    }
                };
                prefix = Some(common);
            }
        }
        let prefix = prefix.unwrap_or("");
        let entries = statements
            .into_iter()
            .map(|statement| {
                let mut e = Entry {
                    statement,
                    ..Entry::default()
                };
                if let Some(s) = all.get(statement as usize)
                    && !s.not_resource
                    && let [pattern] = &*s.resources
                    && let Some(Piece::Lit(l)) = pattern.first()
                {
                    // The bytes after the prefix, up to eight, stopping before a NUL (which
                    // zero padding could fake).
                    let next = l.as_bytes().get(prefix.len()..).unwrap_or_default();
                    let n = next.iter().take(8).take_while(|&&b| b != 0).count();
                    e.mask = if n == 8 {
                        u64::MAX
                    } else {
                        (1u64 << (8 * n)) - 1
                    };
                    e.disc = load8(&next[..n]);
                }
                e
            })
            .collect();
        List {
            prefix: prefix.into(),
            entries,
        }
    }

    /// The first statement of the list that applies to `resource`.
    #[inline]
    fn first_applying(
        &self,
        statements: &[CompiledStatement],
        resource: &str,
        req: &Request,
    ) -> Option<usize> {
        let rest = resource.as_bytes().strip_prefix(self.prefix.as_bytes())?;
        let key = load8(rest);
        let skip = self.prefix.len();
        self.entries.iter().find_map(|e| {
            let i = e.statement as usize;
            (key & e.mask == e.disc && statements.get(i)?.applies(resource, skip, req)).then_some(i)
        })
    }
}

/// One policy (one version of a named policy), compiled.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    name: String,
    version: Version,
    statements: Box<[CompiledStatement]>,
    /// Per action: the indices of the statements that cover it, by effect, in order.
    deny: Box<[List]>,
    allow: Box<[List]>,
    uses_time: bool,
}

impl CompiledPolicy {
    /// Parses (with AWS's limits) and compiles a policy document.
    pub fn parse(name: impl Into<String>, text: &str) -> Result<CompiledPolicy, PolicyError> {
        let doc = document::parse(text)?;
        CompiledPolicy::compile(name, &doc)
    }

    /// Compiles a document. Errors are those [`parse`](crate::parse) reports for values it
    /// cannot compile (bad ARNs, numbers, dates, addresses, variables).
    pub fn compile(
        name: impl Into<String>,
        doc: &PolicyDocument,
    ) -> Result<CompiledPolicy, PolicyError> {
        let variables = doc.version.has_variables();
        let mut statements = Vec::with_capacity(doc.statements.len());
        for (i, s) in doc.statements.iter().enumerate() {
            let path = format!("Statement[{i}]");
            statements.push(compile_statement(s, variables, &path)?);
        }
        let mut deny = vec![Vec::new(); Action::COUNT];
        let mut allow = vec![Vec::new(); Action::COUNT];
        for (i, s) in statements.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            for a in 0..Action::COUNT {
                if s.actions & (1 << a) != 0 {
                    match s.effect {
                        Effect::Deny => deny[a].push(index),
                        Effect::Allow => allow[a].push(index),
                    }
                }
            }
        }
        let uses_time = statements.iter().any(|s| {
            s.variables.iter().any(Key::uses_time)
                || s.conditions.iter().any(|c| c.key().uses_time())
        });
        let deny = deny
            .into_iter()
            .map(|l| List::new(l, &statements))
            .collect();
        let allow = allow
            .into_iter()
            .map(|l| List::new(l, &statements))
            .collect();
        Ok(CompiledPolicy {
            name: name.into(),
            version: doc.version,
            statements: statements.into_boxed_slice(),
            deny,
            allow,
            uses_time,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// Whether some statement reads `aws:CurrentTime` / `aws:EpochTime`.
    pub fn uses_time(&self) -> bool {
        self.uses_time
    }
}

fn compile_statement(
    s: &document::Statement,
    variables: bool,
    path: &str,
) -> Result<CompiledStatement, PolicyError> {
    let action_el = if s.actions.negated {
        "NotAction"
    } else {
        "Action"
    };
    let mut patterns = Vec::with_capacity(s.actions.values.len());
    for (i, a) in s.actions.values.iter().enumerate() {
        if !valid_action(a) {
            return Err(PolicyError::new(
                format!("{path}.{action_el}[{i}]"),
                ErrorKind::InvalidAction(a.clone()),
            ));
        }
        // Action names compare without regard to case; they never hold variables.
        let lower = a.to_ascii_lowercase();
        patterns.push(template::parse(&lower, false, true).unwrap_or_default());
    }
    let nobody = Request::new();
    let mut actions = 0u32;
    for (bit, action) in Action::ALL.into_iter().enumerate() {
        let covered = action.names().iter().any(|name| {
            let name = name.to_ascii_lowercase();
            patterns.iter().any(|p| glob(p, &name, &nobody))
        });
        if covered != s.actions.negated {
            actions |= 1 << bit;
        }
    }

    let resource_el = if s.resources.negated {
        "NotResource"
    } else {
        "Resource"
    };
    let mut resources = Vec::with_capacity(s.resources.values.len());
    for (i, r) in s.resources.values.iter().enumerate() {
        let at = || format!("{path}.{resource_el}[{i}]");
        let pieces = template::parse(r, variables, true).map_err(|b| {
            PolicyError::new(
                at(),
                ErrorKind::InvalidVariable {
                    variable: b.variable,
                    reason: b.reason,
                },
            )
        })?;
        if !valid_resource(&pieces) {
            return Err(PolicyError::new(
                at(),
                ErrorKind::InvalidResource(r.clone()),
            ));
        }
        resources.push(pieces.into_boxed_slice());
    }

    let mut conditions = Vec::with_capacity(s.conditions.len());
    for c in &s.conditions {
        let at = format!("{path}.Condition.{}.{}", c.operator, c.key);
        conditions.push(CompiledCondition::compile(c, variables, &at)?);
    }

    let mut vars: Vec<Key> = Vec::new();
    let all = resources
        .iter()
        .flat_map(|p| template::variables(p).collect::<Vec<_>>())
        .chain(conditions.iter().flat_map(CompiledCondition::variables));
    for k in all {
        if !vars.contains(k) {
            vars.push(k.clone());
        }
    }

    Ok(CompiledStatement {
        sid: s.sid.as_deref().map(Box::from),
        effect: s.effect,
        actions,
        resources: resources.into_boxed_slice(),
        not_resource: s.resources.negated,
        conditions: conditions.into_boxed_slice(),
        variables: vars.into_boxed_slice(),
    })
}

/// A statement: index of its policy in the [`PolicySet`] and its index in that policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatementId {
    pub policy: usize,
    pub statement: usize,
}

/// The answer to "may this request do this action on this resource?", and which statement
/// decided. Named after TestAuthorization's `authDecision` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// An Allow statement applies and no Deny does: the first such Allow.
    Allowed(StatementId),
    /// A Deny statement applies: the first one.
    ExplicitDeny(StatementId),
    /// No statement applies.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allowed(_))
    }

    pub fn statement(self) -> Option<StatementId> {
        match self {
            Decision::Allowed(id) | Decision::ExplicitDeny(id) => Some(id),
            Decision::ImplicitDeny => None,
        }
    }

    /// `ALLOWED`, `EXPLICIT_DENY` or `IMPLICIT_DENY`, as TestAuthorization says.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            Decision::Allowed(_) => "ALLOWED",
            Decision::ExplicitDeny(_) => "EXPLICIT_DENY",
            Decision::ImplicitDeny => "IMPLICIT_DENY",
        }
    }
}

/// A statement of a [`PolicySet`], for showing why a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef<'a> {
    pub policy_name: &'a str,
    pub index: usize,
    pub sid: Option<&'a str>,
    pub effect: Effect,
}

impl fmt::Display for StatementRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy \"{}\" statement {}",
            self.policy_name, self.index
        )?;
        if let Some(sid) = self.sid {
            write!(f, " (Sid \"{sid}\")")?;
        }
        write!(f, ", {}", self.effect)
    }
}

/// What became of one statement in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applies,
    /// `Action` / `NotAction` does not cover the action.
    ActionNotCovered,
    /// `Resource` / `NotResource` does not cover the resource.
    ResourceNotCovered,
    /// A condition does not hold; `condition` is its operator and key.
    ConditionNotMet {
        condition: String,
    },
    /// A policy variable in the statement cannot be substituted, so it does not apply.
    UnresolvedVariable {
        variable: String,
    },
}

/// One statement's part in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTrace {
    pub id: StatementId,
    pub policy_name: String,
    pub sid: Option<String>,
    pub effect: Effect,
    pub outcome: Outcome,
}

/// A decision with the outcome of every statement, for `policy explain` and
/// TestAuthorization. Slower than [`PolicySet::evaluate`], and always agrees with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub decision: Decision,
    pub statements: Vec<StatementTrace>,
}

/// The policies in force for one principal.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Arc<CompiledPolicy>>,
    uses_time: bool,
}

impl PolicySet {
    /// A set of already compiled (shared, cached) policies.
    pub fn new(policies: impl IntoIterator<Item = Arc<CompiledPolicy>>) -> Self {
        let policies: Vec<_> = policies.into_iter().collect();
        let uses_time = policies.iter().any(|p| p.uses_time());
        PolicySet {
            policies,
            uses_time,
        }
    }

    /// Compiles `(name, document)` pairs into a set.
    pub fn compile<'a, N: Into<String>>(
        documents: impl IntoIterator<Item = (N, &'a PolicyDocument)>,
    ) -> Result<Self, PolicyError> {
        let policies = documents
            .into_iter()
            .map(|(name, doc)| CompiledPolicy::compile(name, doc).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicySet::new(policies))
    }

    /// Parses and compiles `(name, JSON text)` pairs; an error names the policy.
    pub fn parse<'a, N: Into<String>>(
        documents: impl IntoIterator<Item = (N, &'a str)>,
    ) -> Result<Self, (String, PolicyError)> {
        let policies = documents
            .into_iter()
            .map(|(name, text)| {
                let name = name.into();
                match CompiledPolicy::parse(name.clone(), text) {
                    Ok(p) => Ok(Arc::new(p)),
                    Err(e) => Err((name, e)),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicySet::new(policies))
    }

    /// Everything allowed: one policy `{"Effect":"Allow","Action":"*","Resource":"*"}` named
    /// `name` (for explicitly open development listeners).
    pub fn allow_all(name: impl Into<String>) -> Self {
        let statement = document::Statement {
            sid: None,
            effect: Effect::Allow,
            actions: document::Patterns {
                negated: false,
                values: vec!["*".into()],
            },
            resources: document::Patterns {
                negated: false,
                values: vec!["*".into()],
            },
            conditions: Vec::new(),
        };
        let doc = PolicyDocument {
            version: Version::V2012_10_17,
            id: None,
            statements: vec![statement],
        };
        match CompiledPolicy::compile(name, &doc) {
            Ok(p) => PolicySet::new([Arc::new(p)]),
            Err(_) => PolicySet::default(),
        }
    }

    pub fn policies(&self) -> &[Arc<CompiledPolicy>] {
        &self.policies
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Whether a decision may depend on the time: if so, keep [`Request::set_time_ms`]
    /// current; if not, the time need not be set at all.
    pub fn uses_time(&self) -> bool {
        self.uses_time
    }

    /// Decides `action` on `resource` (a full ARN, see [`Arns`](crate::Arns), or `*` for
    /// `iot:ListRetainedMessages`).
    pub fn evaluate(&self, action: Action, resource: &str, req: &Request) -> Decision {
        let a = action as usize;
        for (pi, p) in self.policies.iter().enumerate() {
            if let Some(si) = p
                .deny
                .get(a)
                .and_then(|l| l.first_applying(&p.statements, resource, req))
            {
                return Decision::ExplicitDeny(StatementId {
                    policy: pi,
                    statement: si,
                });
            }
        }
        for (pi, p) in self.policies.iter().enumerate() {
            if let Some(si) = p
                .allow
                .get(a)
                .and_then(|l| l.first_applying(&p.statements, resource, req))
            {
                return Decision::Allowed(StatementId {
                    policy: pi,
                    statement: si,
                });
            }
        }
        Decision::ImplicitDeny
    }

    /// [`evaluate`](Self::evaluate), with the outcome of every statement.
    pub fn explain(&self, action: Action, resource: &str, req: &Request) -> Explanation {
        let bit = 1u32 << (action as usize);
        let mut statements = Vec::new();
        let mut deny = None;
        let mut allow = None;
        for (pi, p) in self.policies.iter().enumerate() {
            for (si, s) in p.statements.iter().enumerate() {
                let id = StatementId {
                    policy: pi,
                    statement: si,
                };
                let outcome = if s.actions & bit == 0 {
                    Outcome::ActionNotCovered
                } else {
                    match s.check(resource, req) {
                        Check::Applies => {
                            let first = match s.effect {
                                Effect::Deny => &mut deny,
                                Effect::Allow => &mut allow,
                            };
                            first.get_or_insert(id);
                            Outcome::Applies
                        }
                        Check::Resource => Outcome::ResourceNotCovered,
                        Check::Unresolved(v) => Outcome::UnresolvedVariable {
                            variable: s
                                .variables
                                .get(v)
                                .map(ToString::to_string)
                                .unwrap_or_default(),
                        },
                        Check::Condition(c) => Outcome::ConditionNotMet {
                            condition: p
                                .statements
                                .get(si)
                                .and_then(|s| s.conditions.get(c))
                                .map(|c| c.describe())
                                .unwrap_or_default(),
                        },
                    }
                };
                statements.push(StatementTrace {
                    id,
                    policy_name: p.name.clone(),
                    sid: s.sid.as_deref().map(str::to_string),
                    effect: s.effect,
                    outcome,
                });
            }
        }
        let decision = match (deny, allow) {
            (Some(id), _) => Decision::ExplicitDeny(id),
            (None, Some(id)) => Decision::Allowed(id),
            (None, None) => Decision::ImplicitDeny,
        };
        Explanation {
            decision,
            statements,
        }
    }

    /// The statement `id` refers to.
    pub fn statement(&self, id: StatementId) -> Option<StatementRef<'_>> {
        let p = self.policies.get(id.policy)?;
        let s = p.statements.get(id.statement)?;
        Some(StatementRef {
            policy_name: &p.name,
            index: id.statement,
            sid: s.sid.as_deref(),
            effect: s.effect,
        })
    }
}
