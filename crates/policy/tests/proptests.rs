//! Property tests: the compiled evaluator agrees with a naive reference interpreter on random
//! policies and requests; parsing arbitrary text never panics.
//!
//! The reference shares nothing with the crate but the parsed syntax tree ([`PolicyDocument`]):
//! it substitutes variables by looking names up in a table it builds itself, turns strings into
//! character tokens, matches wildcards recursively, and evaluates conditions directly from IAM's
//! rules as written in the crate documentation.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use ferrocore_policy::{
    Action, CertificateContext, Condition, ConnectContext, Decision, DistinguishedName, DnField,
    Effect, OperatorKind, ParseOptions, PolicyDocument, PolicySet, Request, SetQualifier,
    StatementId, ThingContext, Version, parse_with,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";

// ---- the generated request ---------------------------------------------------------------------

/// A thing: name, type, attributes.
type GenThing = (String, Option<String>, Vec<(String, String)>);
/// A certificate: id, subject common names, subject organizations.
type GenCert = (Option<String>, Vec<String>, Vec<String>);

#[derive(Debug, Clone)]
struct Gen {
    client_id: Option<String>,
    thing: Option<GenThing>,
    cert: Option<GenCert>,
    source_ip: Option<Ipv4Addr>,
    connect: Option<(bool, Option<String>)>,
    claims: Vec<(String, Vec<String>)>,
    time_secs: Option<i64>,
}

fn text() -> impl Strategy<Value = String> {
    "[ab/+#*?$:A]{0,3}"
}

fn cert_value() -> impl Strategy<Value = String> {
    prop_oneof![9 => text(), 1 => Just("a".repeat(1025)), 1 => Just("é".repeat(1024))]
}

fn gen_request() -> impl Strategy<Value = Gen> {
    (
        of(text()),
        of((
            text(),
            of(text()),
            vec(
                (
                    prop_oneof![Just("k".to_string()), Just("n".to_string())],
                    prop_oneof![text(), Just("3".to_string()), Just("10".to_string())],
                ),
                0..2,
            ),
        )),
        of((of(text()), vec(cert_value(), 0..7), vec(text(), 0..3))),
        of(prop_oneof![
            Just(Ipv4Addr::new(10, 1, 2, 3)),
            Just(Ipv4Addr::new(192, 0, 2, 1))
        ]),
        of((any::<bool>(), of(text()))),
        vec(
            (
                prop_oneof![Just("sub".to_string()), Just("groups".to_string())],
                vec(text(), 0..3),
            ),
            0..2,
        ),
        of(prop_oneof![
            Just(1_600_000_000i64),
            Just(1_700_000_000),
            Just(1_800_000_000)
        ]),
    )
        .prop_map(
            |(client_id, thing, cert, source_ip, connect, claims, time_secs)| Gen {
                client_id,
                thing,
                cert,
                source_ip,
                connect,
                claims,
                time_secs,
            },
        )
}

fn build_request(g: &Gen) -> Request {
    let mut r = Request::new();
    if let Some(c) = &g.client_id {
        r = r.with_client_id(c.clone());
    }
    if let Some((name, ty, attrs)) = &g.thing {
        let mut t = ThingContext::new(name.clone());
        if let Some(ty) = ty {
            t = t.with_type(ty.clone());
        }
        for (k, v) in attrs {
            t = t.with_attribute(k.clone(), v.clone());
        }
        r = r.with_thing(t);
    }
    if let Some((id, cns, orgs)) = &g.cert {
        let mut subject = DistinguishedName::default();
        for cn in cns {
            subject.push(DnField::CommonName, cn.clone());
        }
        for o in orgs {
            subject.push(DnField::Organization, o.clone());
        }
        r = r.with_certificate(CertificateContext {
            id: id.clone(),
            subject,
            ..Default::default()
        });
    }
    if let Some(ip) = g.source_ip {
        r = r.with_source_ip(IpAddr::V4(ip));
    }
    if let Some((persistent, will)) = &g.connect {
        r = r.with_connect(ConnectContext {
            persistent: *persistent,
            last_will_topic: will.as_ref().map(|w| format!("{ARN}topic/{w}")),
        });
    }
    for (name, values) in &g.claims {
        r = r.with_claim(name.clone(), values.clone());
    }
    if let Some(t) = g.time_secs {
        r = r.with_time_ms(t * 1000 + 250);
    }
    r
}

// ---- the reference's view of the request: a table of keys ---------------------------------------

/// A key: a case-insensitive fixed prefix, a case-sensitive rest, its values, and whether it
/// is multi-valued (never substituted).
struct Entry {
    prefix: String,
    rest: String,
    values: Vec<String>,
    multi: bool,
    guarded: bool,
}

struct Table(Vec<Entry>);

impl Table {
    fn build(g: &Gen) -> Table {
        fn one(t: &mut Vec<Entry>, prefix: &str, rest: String, v: Option<String>, guarded: bool) {
            if let Some(v) = v {
                t.push(Entry {
                    prefix: prefix.to_string(),
                    rest,
                    values: vec![v],
                    multi: false,
                    guarded,
                });
            }
        }
        let mut t = Vec::new();
        one(
            &mut t,
            "iot:clientid",
            String::new(),
            g.client_id.clone(),
            false,
        );
        one(
            &mut t,
            "aws:sourceip",
            String::new(),
            g.source_ip.map(|ip| ip.to_string()),
            false,
        );
        one(
            &mut t,
            "aws:epochtime",
            String::new(),
            g.time_secs.map(|s| s.to_string()),
            false,
        );
        one(
            &mut t,
            "iot:connection.thing.isattached",
            String::new(),
            Some(if g.thing.is_some() { "true" } else { "false" }.into()),
            false,
        );
        if let Some((name, ty, attrs)) = &g.thing {
            one(
                &mut t,
                "iot:connection.thing.thingname",
                String::new(),
                Some(name.clone()),
                false,
            );
            one(
                &mut t,
                "iot:connection.thing.thingtypename",
                String::new(),
                ty.clone(),
                false,
            );
            for (k, v) in attrs {
                one(
                    &mut t,
                    "iot:connection.thing.attributes[",
                    format!("{k}]"),
                    Some(v.clone()),
                    false,
                );
            }
        }
        if let Some((persistent, will)) = &g.connect {
            one(
                &mut t,
                "iot:lastwilltopic",
                String::new(),
                will.as_ref().map(|w| format!("{ARN}topic/{w}")),
                false,
            );
            let mut attrs = Vec::new();
            if *persistent {
                attrs.push("PersistentConnect".to_string());
            }
            if will.is_some() {
                attrs.push("LastWill".to_string());
            }
            t.push(Entry {
                prefix: "iot:connectattributes".into(),
                rest: String::new(),
                values: attrs,
                multi: true,
                guarded: false,
            });
        }
        if let Some((id, cns, orgs)) = &g.cert {
            one(
                &mut t,
                "iot:certificateid",
                String::new(),
                id.clone(),
                false,
            );
            for (field, values) in [("commonname", cns), ("organization", orgs)] {
                let values: Vec<String> = values.iter().take(5).cloned().collect();
                let base: &'static str = if field == "commonname" {
                    "iot:certificate.subject.commonname"
                } else {
                    "iot:certificate.subject.organization"
                };
                if let Some(first) = values.first() {
                    t.push(Entry {
                        prefix: base.into(),
                        rest: String::new(),
                        values: vec![first.clone()],
                        multi: false,
                        guarded: true,
                    });
                    t.push(Entry {
                        prefix: format!("{base}.list"),
                        rest: String::new(),
                        values: values.clone(),
                        multi: true,
                        guarded: true,
                    });
                }
                for (i, v) in values.iter().enumerate() {
                    t.push(Entry {
                        prefix: format!("{base}.{i}"),
                        rest: String::new(),
                        values: vec![v.clone()],
                        multi: false,
                        guarded: true,
                    });
                }
            }
        }
        for (name, values) in &g.claims {
            if !values.is_empty() {
                t.push(Entry {
                    prefix: "ferrocore:claims.".into(),
                    rest: name.clone(),
                    values: values.clone(),
                    multi: values.len() > 1,
                    guarded: true,
                });
            }
        }
        Table(t)
    }

    fn find(&self, name: &str) -> Option<&Entry> {
        self.0.iter().find(|e| {
            let n = e.prefix.len();
            name.len() == n + e.rest.len()
                && name.is_char_boundary(n)
                && name[..n].eq_ignore_ascii_case(&e.prefix)
                && name[n..] == e.rest
        })
    }

    /// A key's values; absent and empty alike.
    fn values(&self, name: &str) -> Vec<String> {
        self.find(name)
            .map(|e| e.values.clone())
            .unwrap_or_default()
    }

    /// A variable's substitution.
    fn substitute(&self, name: &str) -> Option<String> {
        let e = self.find(name)?;
        if e.multi || e.values.len() != 1 {
            return None;
        }
        let v = &e.values[0];
        if e.guarded && (v.chars().count() > 1024 || v.chars().any(|c| "*$+?#".contains(c))) {
            return None;
        }
        Some(v.clone())
    }
}

// ---- reference tokens, matching, conditions ------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Ch(char, bool), // character, came from a variable
    Star,
    One,
}

/// Tokens of a policy string, or `None` when a variable cannot be substituted.
fn tokens(s: &str, variables: bool, wildcards: bool, t: &Table) -> Option<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if variables
            && chars[i] == '$'
            && chars.get(i + 1) == Some(&'{')
            && let Some(close) = chars[i + 2..].iter().position(|&c| c == '}')
        {
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            i += close + 3;
            match inner.as_str() {
                "*" | "?" | "$" => out.push(Tok::Ch(inner.chars().next().unwrap(), false)),
                _ => out.extend(t.substitute(&inner)?.chars().map(|c| Tok::Ch(c, true))),
            }
            continue;
        }
        let c = chars[i];
        out.push(match c {
            '*' if wildcards => Tok::Star,
            '?' if wildcards => Tok::One,
            _ => Tok::Ch(c, false),
        });
        i += 1;
    }
    Some(out)
}

fn rglob(p: &[Tok], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(Tok::Star) => rglob(&p[1..], s) || (!s.is_empty() && rglob(p, &s[1..])),
        Some(Tok::One) => !s.is_empty() && rglob(&p[1..], &s[1..]),
        Some(Tok::Ch(c, _)) => s.first() == Some(c) && rglob(&p[1..], &s[1..]),
    }
}

fn glob_str(p: &[Tok], s: &str) -> bool {
    rglob(p, &s.chars().collect::<Vec<_>>())
}

fn literal(p: &[Tok]) -> String {
    p.iter()
        .map(|t| match t {
            Tok::Ch(c, _) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

fn arn_match(p: &[Tok], s: &str) -> bool {
    let mut comps: Vec<Vec<Tok>> = vec![vec![]];
    for &t in p {
        if t == Tok::Ch(':', false) && comps.len() < 6 {
            comps.push(vec![]);
        } else {
            comps.last_mut().unwrap().push(t);
        }
    }
    let values: Vec<&str> = s.splitn(comps.len(), ':').collect();
    values.len() == comps.len() && comps.iter().zip(values).all(|(c, v)| glob_str(c, v))
}

fn lower(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

fn ref_date(s: &str) -> Option<i64> {
    match s {
        "2024-01-01T00:00:00Z" => Some(1_704_067_200_000),
        _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().ok().map(|v| v * 1000)
        }
        _ => None,
    }
}

fn ref_cidr(policy: &str, value: &str) -> bool {
    let (net, bits) = match policy.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().unwrap()),
        None => (policy, 32),
    };
    let (Ok(net), Ok(ip)) = (net.parse::<Ipv4Addr>(), value.parse::<Ipv4Addr>()) else {
        return false;
    };
    (0..bits).all(|i| {
        let bit = 31 - i;
        (u32::from(net) >> bit) & 1 == (u32::from(ip) >> bit) & 1
    })
}

/// One request value against one policy value, for the operator family (not negated).
fn value_matches(kind: OperatorKind, policy: &[Tok], raw: &str, value: &str, key: &str) -> bool {
    use OperatorKind::*;
    match kind {
        StringEquals | StringNotEquals => literal(policy) == value,
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase | Bool => {
            lower(&literal(policy)) == lower(value)
        }
        StringLike | StringNotLike => glob_str(policy, value),
        ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => arn_match(policy, value),
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => {
            let (Ok(x), Ok(n)) = (value.parse::<f64>(), raw.parse::<f64>()) else {
                return false;
            };
            match kind {
                NumericEquals | NumericNotEquals => x == n,
                NumericLessThan => x < n,
                NumericLessThanEquals => x <= n,
                NumericGreaterThan => x > n,
                _ => x >= n,
            }
        }
        DateEquals
        | DateNotEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => {
            let x = if key.eq_ignore_ascii_case("aws:CurrentTime") {
                value.parse::<i64>().ok()
            } else {
                ref_date(value)
            };
            let (Some(x), Some(d)) = (x, ref_date(raw)) else {
                return false;
            };
            match kind {
                DateEquals | DateNotEquals => x == d,
                DateLessThan => x < d,
                DateLessThanEquals => x <= d,
                DateGreaterThan => x > d,
                _ => x >= d,
            }
        }
        IpAddress | NotIpAddress => ref_cidr(raw, value),
        Null => false,
    }
}

fn negated(kind: OperatorKind) -> bool {
    use OperatorKind::*;
    matches!(
        kind,
        StringNotEquals
            | StringNotEqualsIgnoreCase
            | StringNotLike
            | NumericNotEquals
            | DateNotEquals
            | NotIpAddress
            | ArnNotEquals
            | ArnNotLike
    )
}

fn takes_variables(kind: OperatorKind) -> bool {
    use OperatorKind::*;
    matches!(
        kind,
        StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike
            | Bool
            | ArnEquals
            | ArnLike
            | ArnNotEquals
            | ArnNotLike
    )
}

fn wildcards(kind: OperatorKind) -> bool {
    use OperatorKind::*;
    matches!(
        kind,
        StringLike | StringNotLike | ArnEquals | ArnLike | ArnNotEquals | ArnNotLike
    )
}

/// The request values of a condition key (aws:CurrentTime as epoch milliseconds).
fn key_values(key: &str, g: &Gen, t: &Table) -> Vec<String> {
    if key.eq_ignore_ascii_case("aws:CurrentTime") {
        return g
            .time_secs
            .map(|s| (s * 1000 + 250).to_string())
            .into_iter()
            .collect();
    }
    t.values(key)
}

fn ref_condition(c: &Condition, policy_values: &[Vec<Tok>], g: &Gen, t: &Table) -> bool {
    let kind = c.operator.kind;
    let values = key_values(&c.key, g, t);
    if kind == OperatorKind::Null {
        return c.values.iter().any(|v| (v == "true") == values.is_empty());
    }
    let neg = negated(kind);
    if values.is_empty() {
        if c.operator.if_exists {
            return true;
        }
        return match c.operator.qualifier {
            Some(SetQualifier::ForAllValues) => true,
            Some(SetQualifier::ForAnyValue) => false,
            None => neg,
        };
    }
    let m = |v: &String| {
        policy_values
            .iter()
            .zip(&c.values)
            .any(|(p, raw)| value_matches(kind, p, raw, v, &c.key))
    };
    match c.operator.qualifier {
        Some(SetQualifier::ForAllValues) => values.iter().all(|v| m(v) != neg),
        Some(SetQualifier::ForAnyValue) => values.iter().any(|v| m(v) != neg),
        None => values.iter().any(m) != neg,
    }
}

fn ref_applies(
    doc: &PolicyDocument,
    s: &ferrocore_policy::Statement,
    action: Action,
    resource: &str,
    g: &Gen,
    t: &Table,
) -> bool {
    let vars = doc.version == Version::V2012_10_17;
    let name = lower(action.as_str());
    let covered = s.actions.values.iter().any(|a| {
        let p = tokens(&lower(a), false, true, t).unwrap();
        glob_str(&p, &name)
    });
    if covered == s.actions.negated {
        return false;
    }
    let mut resources = Vec::new();
    for r in &s.resources.values {
        match tokens(r, vars, true, t) {
            Some(p) => resources.push(p),
            None => return false,
        }
    }
    let mut conds = Vec::new();
    for c in &s.conditions {
        let kind = c.operator.kind;
        let mut vals = Vec::new();
        for v in &c.values {
            match tokens(v, vars && takes_variables(kind), wildcards(kind), t) {
                Some(p) => vals.push(p),
                None => return false,
            }
        }
        conds.push(vals);
    }
    let matched = resources.iter().any(|p| glob_str(p, resource));
    if matched == s.resources.negated {
        return false;
    }
    s.conditions
        .iter()
        .zip(&conds)
        .all(|(c, vals)| ref_condition(c, vals, g, t))
}

fn reference(docs: &[PolicyDocument], action: Action, resource: &str, g: &Gen) -> Decision {
    let t = Table::build(g);
    for effect in [Effect::Deny, Effect::Allow] {
        for (pi, d) in docs.iter().enumerate() {
            for (si, s) in d.statements.iter().enumerate() {
                if s.effect == effect && ref_applies(d, s, action, resource, g, &t) {
                    let id = StatementId {
                        policy: pi,
                        statement: si,
                    };
                    return match effect {
                        Effect::Deny => Decision::ExplicitDeny(id),
                        Effect::Allow => Decision::Allowed(id),
                    };
                }
            }
        }
    }
    Decision::ImplicitDeny
}

// ---- random policies ------------------------------------------------------------------------------

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[ab/+#:]".prop_map(|s: String| s),
        2 => Just("*".to_string()),
        1 => Just("?".to_string()),
        1 => Just("${*}".to_string()),
        1 => Just("${?}".to_string()),
        1 => Just("${$}".to_string()),
        2 => Just("${iot:ClientId}".to_string()),
        1 => Just("${IOT:CLIENTID}".to_string()),
        1 => Just("${iot:Connection.Thing.ThingName}".to_string()),
        1 => Just("${iot:Connection.Thing.Attributes[k]}".to_string()),
        1 => Just("${iot:Connection.Thing.Attributes[K]}".to_string()),
        1 => Just("${iot:Certificate.Subject.CommonName}".to_string()),
        1 => Just("${iot:Certificate.Subject.CommonName.1}".to_string()),
        1 => Just("${iot:Certificate.Subject.CommonName.6}".to_string()),
        1 => Just("${iot:Certificate.Subject.Organization.List}".to_string()),
        1 => Just("${iot:CertificateId}".to_string()),
        1 => Just("${ferrocore:Claims.sub}".to_string()),
        1 => Just("${aws:EpochTime}".to_string()),
        1 => Just("${nope:Var}".to_string()),
    ]
}

fn template() -> impl Strategy<Value = String> {
    vec(piece(), 0..5).prop_map(|p| p.concat())
}

fn resource_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_string()),
        6 => (prop_oneof![Just("topic/"), Just("topicfilter/"), Just("client/"), Just("*")], template())
            .prop_map(|(kind, t)| format!("{ARN}{kind}{t}")),
        1 => template().prop_map(|t| format!("arn:aws:iot:*:{t}:topic/a")),
    ]
}

fn action_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("iot:Publish"),
        Just("iot:*"),
        Just("*"),
        Just("iot:P*"),
        Just("iot:Subscribe"),
        Just("IOT:PUBLISH"),
        Just("iot:?eceive"),
        Just("iot:Connect"),
        Just("iot:Re*"),
    ]
    .prop_map(String::from)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn condition(vars: bool) -> impl Strategy<Value = String> {
    let string_ops = prop_oneof![
        Just("StringEquals"),
        Just("StringNotEquals"),
        Just("StringEqualsIgnoreCase"),
        Just("StringNotEqualsIgnoreCase"),
        Just("StringLike"),
        Just("StringNotLike"),
    ];
    let string_keys = prop_oneof![
        Just("iot:ClientId"),
        Just("iot:Connection.Thing.ThingName"),
        Just("iot:Connection.Thing.Attributes[k]"),
        Just("iot:ConnectAttributes"),
        Just("iot:Certificate.Subject.CommonName"),
        Just("iot:Certificate.Subject.CommonName.List"),
        Just("iot:Certificate.Subject.Organization.List"),
        Just("ferrocore:Claims.groups"),
        Just("ferrocore:Claims.sub"),
        Just("aws:EpochTime"),
        Just("aws:SourceIp"),
        Just("nope:Key"),
    ];
    let string_values = vec(
        prop_oneof![
            3 => template(),
            1 => Just("PersistentConnect".to_string()),
            1 => Just("LastWill".to_string()),
            1 => Just("10.1.2.3".to_string()),
        ],
        0..3,
    );
    let qualifier =
        prop_oneof![3 => Just(""), 1 => Just("ForAllValues:"), 1 => Just("ForAnyValue:")];
    let if_exists = prop_oneof![3 => Just(""), 1 => Just("IfExists")];
    let strings = (
        qualifier.clone(),
        string_ops,
        if_exists.clone(),
        string_keys,
        string_values,
    );
    let arns = (
        qualifier.clone(),
        prop_oneof![
            Just("ArnLike"),
            Just("ArnEquals"),
            Just("ArnNotLike"),
            Just("ArnNotEquals")
        ],
        if_exists.clone(),
        vec(
            prop_oneof![
                Just("arn:aws:iot:*:*:topic/*".to_string()),
                template().prop_map(|t| format!("{ARN}topic/{t}")),
                Just("*".to_string()),
                Just("arn:*:a".to_string()),
            ],
            0..3,
        ),
    );
    let numeric = (
        prop_oneof![
            Just("NumericEquals"),
            Just("NumericNotEquals"),
            Just("NumericLessThan"),
            Just("NumericGreaterThanEquals"),
        ],
        if_exists.clone(),
        prop_oneof![
            Just("iot:Connection.Thing.Attributes[n]"),
            Just("aws:EpochTime"),
            Just("iot:ClientId")
        ],
        vec(
            prop_oneof![Just("3"), Just("10"), Just("1700000000"), Just("-1.5")],
            1..3,
        ),
    );
    let dates = (
        prop_oneof![
            Just("DateLessThan"),
            Just("DateGreaterThanEquals"),
            Just("DateEquals"),
            Just("DateNotEquals")
        ],
        prop_oneof![
            Just("aws:CurrentTime"),
            Just("aws:EpochTime"),
            Just("iot:Connection.Thing.Attributes[n]")
        ],
        vec(
            prop_oneof![Just("2024-01-01T00:00:00Z"), Just("1700000000"), Just("3")],
            1..3,
        ),
    );
    let ips = (
        prop_oneof![Just("IpAddress"), Just("NotIpAddress")],
        if_exists.clone(),
        prop_oneof![Just("aws:SourceIp"), Just("iot:ClientId")],
        vec(
            prop_oneof![
                Just("10.0.0.0/8"),
                Just("10.1.2.3"),
                Just("0.0.0.0/0"),
                Just("192.0.2.0/25")
            ],
            1..3,
        ),
    );
    let bools = (
        prop_oneof![
            Just("iot:Connection.Thing.IsAttached"),
            Just("iot:ClientId")
        ],
        vec(
            prop_oneof![
                Just("true"),
                Just("FALSE"),
                Just(if vars {
                    "${iot:Connection.Thing.IsAttached}"
                } else {
                    "true"
                })
            ],
            1..3,
        ),
    );
    let nulls = (
        prop_oneof![
            Just("iot:Connection.Thing.ThingName"),
            Just("iot:ConnectAttributes"),
            Just("ferrocore:Claims.sub")
        ],
        prop_oneof![Just("true"), Just("false")],
    );
    let arr = |vals: Vec<String>| {
        format!(
            "[{}]",
            vals.iter()
                .map(|v| json_str(v))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    prop_oneof![
        4 => strings.prop_map(move |(q, op, ie, k, vs)| format!(r#""{q}{op}{ie}":{{"{k}":{}}}"#, arr(vs))),
        1 => arns.prop_map(move |(q, op, ie, vs)| format!(r#""{q}{op}{ie}":{{"iot:LastWillTopic":{}}}"#, arr(vs))),
        1 => numeric.prop_map(move |(op, ie, k, vs)| format!(r#""{op}{ie}":{{"{k}":{}}}"#, arr(vs.iter().map(|s| s.to_string()).collect()))),
        1 => dates.prop_map(move |(op, k, vs)| format!(r#""{op}":{{"{k}":{}}}"#, arr(vs.iter().map(|s| s.to_string()).collect()))),
        1 => ips.prop_map(move |(op, ie, k, vs)| format!(r#""{op}{ie}":{{"{k}":{}}}"#, arr(vs.iter().map(|s| s.to_string()).collect()))),
        1 => bools.prop_map(move |(k, vs)| format!(r#""Bool":{{"{k}":{}}}"#, arr(vs.iter().map(|s| s.to_string()).collect()))),
        1 => nulls.prop_map(|(k, v)| format!(r#""Null":{{"{k}":"{v}"}}"#)),
    ]
}

fn statement(vars: bool) -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("Allow"), Just("Deny")],
        prop_oneof![3 => Just("Action"), 1 => Just("NotAction")],
        vec(action_pattern(), 1..3),
        prop_oneof![3 => Just("Resource"), 1 => Just("NotResource")],
        vec(resource_pattern(), 1..3),
        vec(condition(vars), 0..3),
    )
        .prop_map(|(effect, a, actions, r, resources, conditions)| {
            let list = |v: &[String]| v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",");
            // Operators must be distinct within one Condition block.
            let mut seen = Vec::new();
            let conds: Vec<String> = conditions
                .into_iter()
                .filter(|c| {
                    let op = c.split(':').next().unwrap_or("").to_string();
                    let op = if op.starts_with("\"For") {
                        c.split("\":{").next().unwrap_or("").to_string()
                    } else {
                        op
                    };
                    if seen.contains(&op) {
                        false
                    } else {
                        seen.push(op);
                        true
                    }
                })
                .collect();
            let cond = if conds.is_empty() {
                String::new()
            } else {
                format!(r#","Condition":{{{}}}"#, conds.join(","))
            };
            format!(
                r#"{{"Effect":"{effect}","{a}":[{}],"{r}":[{}]{cond}}}"#,
                list(&actions),
                list(&resources)
            )
        })
}

fn policy() -> impl Strategy<Value = String> {
    prop_oneof![5 => Just(true), 1 => Just(false)].prop_flat_map(|vars| {
        let v = if vars { "2012-10-17" } else { "2008-10-17" };
        vec(statement(vars), 1..4)
            .prop_map(move |s| format!(r#"{{"Version":"{v}","Statement":[{}]}}"#, s.join(",")))
    })
}

fn target() -> impl Strategy<Value = (Action, String)> {
    (
        prop_oneof![
            Just(Action::Connect),
            Just(Action::Publish),
            Just(Action::Subscribe),
            Just(Action::Receive),
            Just(Action::RetainPublish),
        ],
        prop_oneof![Just("topic/"), Just("topicfilter/"), Just("client/")],
        "[ab/+#*?$:A]{0,5}",
    )
        .prop_map(|(a, kind, name)| (a, format!("{ARN}{kind}{name}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn compiled_evaluator_agrees_with_reference(
        texts in vec(policy(), 1..4),
        g in gen_request(),
        targets in vec(target(), 1..6),
    ) {
        let options = ParseOptions { max_chars: None };
        let docs: Vec<PolicyDocument> = texts
            .iter()
            .map(|t| parse_with(t, &options).unwrap_or_else(|e| panic!("{e}\n{t}")))
            .collect();
        let set = PolicySet::compile(docs.iter().enumerate().map(|(i, d)| (format!("p{i}"), d))).unwrap();
        let req = build_request(&g);
        for (action, resource) in &targets {
            let got = set.evaluate(*action, resource, &req);
            let want = reference(&docs, *action, resource, &g);
            prop_assert_eq!(got, want, "{} {}\n{:#?}", action, resource, docs);
            prop_assert_eq!(set.explain(*action, resource, &req).decision, got);
        }
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = ferrocore_policy::parse(&text);
    }

    #[test]
    fn parsing_mutated_policies_never_panics(text in policy(), cut in 0usize..400, insert in "[\\[\\]{}\",:*$?a-z0-9]{0,3}") {
        let mut t = text.clone();
        let at = t.char_indices().map(|(i, _)| i).nth(cut % t.chars().count().max(1)).unwrap_or(0);
        t.insert_str(at, &insert);
        if let Ok(doc) = ferrocore_policy::parse_with(&t, &ParseOptions { max_chars: None }) {
            let set = PolicySet::compile([("m", &doc)]).unwrap();
            let _ = set.evaluate(Action::Publish, &format!("{ARN}topic/a"), &Request::new().with_client_id("a"));
        }
    }
}
