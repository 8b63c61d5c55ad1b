//! Condition operators: their names, their compiled form, and IAM's evaluation rules.
//!
//! - A key absent from the request (or whose values are an empty set) makes a condition false,
//!   except that negated operators (`StringNotEquals`, `NotIpAddress`, `ArnNotLike`, ...) are
//!   then true, `...IfExists` is true, `ForAllValues:` is (vacuously) true and `Null` tests for
//!   exactly that.
//! - Several values for one key: a positive operator holds if any value matches; a negated
//!   operator holds if none does (IAM: "logical AND" for negated operators).
//! - `ForAnyValue:` holds if some request value satisfies the operator against the policy
//!   values; `ForAllValues:` if every request value does. A multi-valued key without a
//!   qualifier behaves like `ForAnyValue:` for positive operators and like its negation for
//!   negated ones.
//! - Policy variables are substituted in String, Arn and Bool values only (IAM); elsewhere
//!   `${...}` is rejected as a malformed value.
//! - `ArnEquals` and `ArnLike` are the same operator (so are `ArnNotEquals` / `ArnNotLike`):
//!   both take wildcards, matched within each of the six colon-separated components.

use std::fmt;
use std::net::IpAddr;

use crate::error::{ErrorKind, PolicyError};
use crate::matcher::{ArnPattern, equals, equals_ignore_case, glob};
use crate::request::{Request, Val};
use crate::template::{self, Piece};
use crate::time::parse_date;
use crate::var::Key;

/// `ForAllValues:` / `ForAnyValue:`, for multi-valued keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

impl SetQualifier {
    pub fn as_str(self) -> &'static str {
        match self {
            SetQualifier::ForAllValues => "ForAllValues",
            SetQualifier::ForAnyValue => "ForAnyValue",
        }
    }
}

/// A condition operator without its qualifier and `IfExists` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorKind {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl OperatorKind {
    pub const ALL: [OperatorKind; 26] = [
        OperatorKind::StringEquals,
        OperatorKind::StringNotEquals,
        OperatorKind::StringEqualsIgnoreCase,
        OperatorKind::StringNotEqualsIgnoreCase,
        OperatorKind::StringLike,
        OperatorKind::StringNotLike,
        OperatorKind::NumericEquals,
        OperatorKind::NumericNotEquals,
        OperatorKind::NumericLessThan,
        OperatorKind::NumericLessThanEquals,
        OperatorKind::NumericGreaterThan,
        OperatorKind::NumericGreaterThanEquals,
        OperatorKind::DateEquals,
        OperatorKind::DateNotEquals,
        OperatorKind::DateLessThan,
        OperatorKind::DateLessThanEquals,
        OperatorKind::DateGreaterThan,
        OperatorKind::DateGreaterThanEquals,
        OperatorKind::Bool,
        OperatorKind::IpAddress,
        OperatorKind::NotIpAddress,
        OperatorKind::ArnEquals,
        OperatorKind::ArnLike,
        OperatorKind::ArnNotEquals,
        OperatorKind::ArnNotLike,
        OperatorKind::Null,
    ];

    pub fn name(self) -> &'static str {
        use OperatorKind::*;
        match self {
            StringEquals => "StringEquals",
            StringNotEquals => "StringNotEquals",
            StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            StringLike => "StringLike",
            StringNotLike => "StringNotLike",
            NumericEquals => "NumericEquals",
            NumericNotEquals => "NumericNotEquals",
            NumericLessThan => "NumericLessThan",
            NumericLessThanEquals => "NumericLessThanEquals",
            NumericGreaterThan => "NumericGreaterThan",
            NumericGreaterThanEquals => "NumericGreaterThanEquals",
            DateEquals => "DateEquals",
            DateNotEquals => "DateNotEquals",
            DateLessThan => "DateLessThan",
            DateLessThanEquals => "DateLessThanEquals",
            DateGreaterThan => "DateGreaterThan",
            DateGreaterThanEquals => "DateGreaterThanEquals",
            Bool => "Bool",
            IpAddress => "IpAddress",
            NotIpAddress => "NotIpAddress",
            ArnEquals => "ArnEquals",
            ArnLike => "ArnLike",
            ArnNotEquals => "ArnNotEquals",
            ArnNotLike => "ArnNotLike",
            Null => "Null",
        }
    }

    /// Negated operators hold when no policy value matches.
    pub fn is_negated(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
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

    /// Whether `${...}` in values is a policy variable (IAM: String, Arn and Bool operators).
    pub fn takes_variables(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
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

    fn compare(self) -> Compare {
        use OperatorKind::*;
        match self {
            NumericLessThan | DateLessThan => Compare::Lt,
            NumericLessThanEquals | DateLessThanEquals => Compare::Le,
            NumericGreaterThan | DateGreaterThan => Compare::Gt,
            NumericGreaterThanEquals | DateGreaterThanEquals => Compare::Ge,
            _ => Compare::Eq,
        }
    }
}

/// A full condition operator, e.g. `ForAllValues:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operator {
    pub qualifier: Option<SetQualifier>,
    pub kind: OperatorKind,
    pub if_exists: bool,
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

impl Operator {
    /// Parses an operator name (ASCII case ignored).
    pub fn parse(name: &str) -> Result<Operator, ErrorKind> {
        let (qualifier, rest) = if let Some(r) = strip_prefix_ci(name, "ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = strip_prefix_ci(name, "ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, name)
        };
        let find = |base: &str| {
            OperatorKind::ALL
                .into_iter()
                .find(|k| k.name().eq_ignore_ascii_case(base))
        };
        let (kind, if_exists) = match find(rest) {
            Some(k) => (k, false),
            None => match strip_suffix_ci(rest, "IfExists").and_then(find) {
                Some(k) => (k, true),
                None => return Err(ErrorKind::UnknownOperator(name.to_string())),
            },
        };
        if kind == OperatorKind::Null {
            let reason = if if_exists {
                Some("Null tests whether the key exists, so it takes no IfExists")
            } else if qualifier.is_some() {
                Some("Null takes no ForAllValues/ForAnyValue qualifier")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(ErrorKind::InvalidOperator {
                    operator: name.to_string(),
                    reason,
                });
            }
        }
        Ok(Operator {
            qualifier,
            kind,
            if_exists,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(q) = self.qualifier {
            write!(f, "{}:", q.as_str())?;
        }
        f.write_str(self.kind.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Compare::Eq => request == policy,
            Compare::Lt => request < policy,
            Compare::Le => request <= policy,
            Compare::Gt => request > policy,
            Compare::Ge => request >= policy,
        }
    }
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a, Some(p.parse::<u8>().ok()?))
            }
            None => (s, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The policy values of a condition, compiled for its operator family.
#[derive(Debug, Clone)]
enum Values {
    Exact(Box<[Box<[Piece]>]>),
    IgnoreCase(Box<[Box<[Piece]>]>),
    Like(Box<[Box<[Piece]>]>),
    Number(Box<[f64]>),
    Date(Box<[i64]>),
    Bool(Box<[Box<[Piece]>]>),
    Ip(Box<[Cidr]>),
    Arn(Box<[ArnPattern]>),
    Null(Box<[bool]>),
}

/// One compiled condition (one key of one operator).
#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    operator: Operator,
    key: Key,
    values: Values,
}

fn request_number(v: Val<'_>) -> Option<f64> {
    match v {
        Val::Str(s) => parse_number(s),
        Val::Epoch(s) => Some(s as f64),
        Val::Time(_) | Val::Ip(..) => None,
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn request_date(v: Val<'_>) -> Option<i64> {
    match v {
        Val::Str(s) => parse_date(s),
        Val::Time(ms) => Some(ms),
        Val::Epoch(s) => s.checked_mul(1000),
        Val::Ip(..) => None,
    }
}

fn request_ip(v: Val<'_>) -> Option<IpAddr> {
    match v {
        Val::Ip(ip, _) => Some(ip),
        Val::Str(s) => s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()),
        Val::Time(_) | Val::Epoch(_) => None,
    }
}

impl CompiledCondition {
    pub(crate) fn compile(
        c: &crate::document::Condition,
        variables: bool,
        path: &str,
    ) -> Result<CompiledCondition, PolicyError> {
        let op = c.operator;
        let kind = op.kind;
        let bad = |value: &str, reason: &'static str| {
            PolicyError::new(
                path,
                ErrorKind::InvalidConditionValue {
                    operator: op.to_string(),
                    value: value.to_string(),
                    reason,
                },
            )
        };
        let no_variables = |value: &str| -> Result<(), PolicyError> {
            if variables && !kind.takes_variables() && value.contains("${") {
                Err(bad(
                    value,
                    "policy variables can only be used with String, Arn and Bool operators",
                ))
            } else {
                Ok(())
            }
        };
        let templates = |wildcards: bool| -> Result<Box<[Box<[Piece]>]>, PolicyError> {
            c.values
                .iter()
                .map(|v| {
                    template::parse(v, variables, wildcards)
                        .map(Vec::into_boxed_slice)
                        .map_err(|b| {
                            PolicyError::new(
                                path,
                                ErrorKind::InvalidVariable {
                                    variable: b.variable,
                                    reason: b.reason,
                                },
                            )
                        })
                })
                .collect()
        };
        use OperatorKind::*;
        let values = match kind {
            StringEquals | StringNotEquals => Values::Exact(templates(false)?),
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                Values::IgnoreCase(templates(false)?)
            }
            StringLike | StringNotLike => Values::Like(templates(true)?),
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => Values::Arn(
                templates(true)?
                    .iter()
                    .map(|p| ArnPattern::new(p))
                    .collect(),
            ),
            Bool => {
                let t = templates(false)?;
                for (value, pieces) in c.values.iter().zip(t.iter()) {
                    let literal = pieces.iter().all(|p| matches!(p, Piece::Lit(_)));
                    if literal
                        && !value.eq_ignore_ascii_case("true")
                        && !value.eq_ignore_ascii_case("false")
                    {
                        return Err(bad(value, "Bool takes \"true\" or \"false\""));
                    }
                }
                Values::Bool(t)
            }
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => Values::Number(
                c.values
                    .iter()
                    .map(|v| {
                        no_variables(v)?;
                        parse_number(v).ok_or_else(|| bad(v, "not a number"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => Values::Date(
                c.values
                    .iter()
                    .map(|v| {
                        no_variables(v)?;
                        parse_date(v).ok_or_else(|| {
                            bad(
                                v,
                                "not a date: use ISO 8601 (2024-01-31T12:00:00Z) or epoch seconds",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            IpAddress | NotIpAddress => Values::Ip(
                c.values
                    .iter()
                    .map(|v| {
                        no_variables(v)?;
                        Cidr::parse(v).ok_or_else(|| {
                            bad(
                                v,
                                "not an IP address or CIDR range (203.0.113.0/24, 2001:db8::/32)",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Null => Values::Null(
                c.values
                    .iter()
                    .map(|v| {
                        if v.eq_ignore_ascii_case("true") {
                            Ok(true)
                        } else if v.eq_ignore_ascii_case("false") {
                            Ok(false)
                        } else {
                            Err(bad(
                                v,
                                "Null takes \"true\" (key absent) or \"false\" (key present)",
                            ))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(CompiledCondition {
            operator: op,
            key: Key::parse(&c.key),
            values,
        })
    }

    /// The variables in the policy values.
    pub(crate) fn variables(&self) -> Vec<&Key> {
        fn from(t: &[Box<[Piece]>]) -> Vec<&Key> {
            t.iter().flat_map(|p| template::variables(p)).collect()
        }
        match &self.values {
            Values::Exact(t) | Values::IgnoreCase(t) | Values::Like(t) | Values::Bool(t) => from(t),
            Values::Arn(ps) => ps
                .iter()
                .flat_map(|p| p.components())
                .flat_map(|c| template::variables(c))
                .collect(),
            Values::Number(_) | Values::Date(_) | Values::Ip(_) | Values::Null(_) => Vec::new(),
        }
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    /// `<operator> <key>`, for explanations.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.operator, self.key)
    }

    /// Whether some policy value matches the request value `v` (before negation).
    fn matches_value(&self, v: Val<'_>, req: &Request) -> bool {
        let cmp = self.operator.kind.compare();
        match &self.values {
            Values::Exact(t) => {
                let text = v.to_text();
                t.iter().any(|p| equals(p, &text, req))
            }
            Values::IgnoreCase(t) | Values::Bool(t) => {
                let text = v.to_text();
                t.iter().any(|p| equals_ignore_case(p, &text, req))
            }
            Values::Like(t) => {
                let text = v.to_text();
                t.iter().any(|p| glob(p, &text, req))
            }
            Values::Arn(ps) => {
                let text = v.to_text();
                ps.iter().any(|p| p.matches(&text, req))
            }
            Values::Number(ns) => {
                request_number(v).is_some_and(|x| ns.iter().any(|&n| cmp.holds(x, n)))
            }
            Values::Date(ds) => {
                request_date(v).is_some_and(|x| ds.iter().any(|&d| cmp.holds(x, d)))
            }
            Values::Ip(cs) => request_ip(v).is_some_and(|ip| cs.iter().any(|c| c.contains(ip))),
            Values::Null(_) => false,
        }
    }

    /// Whether the condition holds for `req`.
    pub(crate) fn evaluate(&self, req: &Request) -> bool {
        let vals = req.values(&self.key);
        if let Values::Null(wants) = &self.values {
            let absent = vals.is_empty();
            return wants.contains(&absent);
        }
        let negated = self.operator.kind.is_negated();
        if vals.is_empty() {
            if self.operator.if_exists {
                return true;
            }
            return match self.operator.qualifier {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => negated,
            };
        }
        let holds = |v: Val<'_>| self.matches_value(v, req) != negated;
        match self.operator.qualifier {
            Some(SetQualifier::ForAllValues) => vals.all(holds),
            Some(SetQualifier::ForAnyValue) => vals.any(holds),
            None if negated => !vals.any(|v| self.matches_value(v, req)),
            None => vals.any(|v| self.matches_value(v, req)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::document::Condition;
    use crate::request::{CertificateContext, ConnectContext, DistinguishedName, ThingContext};
    use crate::var::DnField;

    fn cond(op: &str, key: &str, values: &[&str]) -> CompiledCondition {
        CompiledCondition::compile(
            &Condition {
                operator: Operator::parse(op).unwrap(),
                key: key.into(),
                values: values.iter().map(|s| s.to_string()).collect(),
            },
            true,
            "c",
        )
        .unwrap()
    }

    fn holds(op: &str, key: &str, values: &[&str], req: &Request) -> bool {
        cond(op, key, values).evaluate(req)
    }

    fn compile_err(op: &str, values: &[&str]) -> ErrorKind {
        CompiledCondition::compile(
            &Condition {
                operator: Operator::parse(op).unwrap(),
                key: "k".into(),
                values: values.iter().map(|s| s.to_string()).collect(),
            },
            true,
            "c",
        )
        .unwrap_err()
        .kind
    }

    #[test]
    fn operator_names() {
        for k in OperatorKind::ALL {
            let op = Operator::parse(k.name()).unwrap();
            assert_eq!(op.kind, k);
            assert_eq!(op.to_string(), k.name());
        }
        let op = Operator::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(op.qualifier, Some(SetQualifier::ForAllValues));
        assert_eq!(op.kind, OperatorKind::StringLike);
        assert!(op.if_exists);
        assert_eq!(op.to_string(), "ForAllValues:StringLikeIfExists");
        assert_eq!(
            Operator::parse("forallvalues:stringequals").unwrap().kind,
            OperatorKind::StringEquals
        );
        assert!(matches!(
            Operator::parse("NullIfExists"),
            Err(ErrorKind::InvalidOperator { .. })
        ));
        assert!(matches!(
            Operator::parse("ForAnyValue:Null"),
            Err(ErrorKind::InvalidOperator { .. })
        ));
        for bad in [
            "StringEqual",
            "IfExists",
            "ForAllValues:",
            "BinaryEquals",
            "StringEqualsIfExistsIfExists",
            "",
        ] {
            assert!(
                matches!(Operator::parse(bad), Err(ErrorKind::UnknownOperator(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn string_operators() {
        let r = Request::new().with_client_id("Sensor-1");
        assert!(holds(
            "StringEquals",
            "iot:ClientId",
            &["x", "Sensor-1"],
            &r
        ));
        assert!(!holds("StringEquals", "iot:ClientId", &["sensor-1"], &r));
        assert!(!holds("StringEquals", "iot:ClientId", &["Sensor-*"], &r));
        assert!(holds(
            "StringEqualsIgnoreCase",
            "iot:ClientId",
            &["SENSOR-1"],
            &r
        ));
        assert!(holds(
            "StringNotEqualsIgnoreCase",
            "iot:ClientId",
            &["SENSOR-2"],
            &r
        ));
        assert!(!holds(
            "StringNotEqualsIgnoreCase",
            "iot:ClientId",
            &["SENSOR-1"],
            &r
        ));
        assert!(holds("StringLike", "iot:ClientId", &["Sensor-?"], &r));
        assert!(holds("StringLike", "iot:ClientId", &["x*", "S*"], &r));
        assert!(!holds("StringLike", "iot:ClientId", &["s*"], &r));
        assert!(holds("StringNotLike", "iot:ClientId", &["x*", "y*"], &r));
        // Negated with several values: none may match (IAM's AND).
        assert!(!holds(
            "StringNotEquals",
            "iot:ClientId",
            &["a", "Sensor-1"],
            &r
        ));
        assert!(holds("StringNotEquals", "iot:ClientId", &["a", "b"], &r));
        assert!(!holds("StringNotLike", "iot:ClientId", &["x*", "S*"], &r));
        // Keys are case-insensitive.
        assert!(holds("StringEquals", "IOT:clientid", &["Sensor-1"], &r));
        // Variables in values.
        let r = r.with_thing(ThingContext::new("Sensor-1"));
        assert!(holds(
            "StringEquals",
            "iot:ClientId",
            &["${iot:Connection.Thing.ThingName}"],
            &r
        ));
        assert!(holds(
            "StringLike",
            "iot:ClientId",
            &["${iot:Connection.Thing.ThingName}*"],
            &r
        ));
    }

    #[test]
    fn absent_keys() {
        let r = Request::new();
        let k = "iot:ClientId";
        assert!(!holds("StringEquals", k, &["a"], &r));
        assert!(holds("StringNotEquals", k, &["a"], &r));
        assert!(!holds("StringLike", k, &["*"], &r));
        assert!(holds("StringNotLike", k, &["*"], &r));
        assert!(holds("StringEqualsIfExists", k, &["a"], &r));
        assert!(holds("StringNotEqualsIfExists", k, &["a"], &r));
        assert!(holds("ForAllValues:StringEquals", k, &["a"], &r));
        assert!(!holds("ForAnyValue:StringEquals", k, &["a"], &r));
        assert!(holds("ForAnyValue:StringEqualsIfExists", k, &["a"], &r));
        assert!(!holds("NumericLessThan", k, &["1"], &r));
        assert!(holds("NumericNotEquals", k, &["1"], &r));
        assert!(!holds("IpAddress", "aws:SourceIp", &["0.0.0.0/0"], &r));
        assert!(holds("NotIpAddress", "aws:SourceIp", &["0.0.0.0/0"], &r));
        assert!(!holds("Bool", "x:y", &["true"], &r));
        assert!(!holds("ArnLike", "iot:LastWillTopic", &["*"], &r));
        assert!(holds("ArnNotLike", "iot:LastWillTopic", &["*"], &r));
        // IfExists with a present key still checks it.
        let r = r.with_client_id("b");
        assert!(!holds("StringEqualsIfExists", k, &["a"], &r));
    }

    #[test]
    fn null() {
        let r = Request::new().with_client_id("c");
        assert!(holds("Null", "iot:ClientId", &["false"], &r));
        assert!(!holds("Null", "iot:ClientId", &["true"], &r));
        assert!(holds(
            "Null",
            "iot:Connection.Thing.ThingName",
            &["true"],
            &r
        ));
        assert!(holds(
            "Null",
            "iot:Connection.Thing.ThingName",
            &["TRUE"],
            &r
        ));
        assert!(!holds(
            "Null",
            "iot:Connection.Thing.ThingName",
            &["false"],
            &r
        ));
        // IsAttached always has a value.
        assert!(holds(
            "Null",
            "iot:Connection.Thing.IsAttached",
            &["false"],
            &r
        ));
        // An empty set counts as absent.
        let r = r.with_connect(ConnectContext::default());
        assert!(holds("Null", "iot:ConnectAttributes", &["true"], &r));
        assert!(matches!(
            compile_err("Null", &["yes"]),
            ErrorKind::InvalidConditionValue { .. }
        ));
    }

    #[test]
    fn numeric() {
        let r = Request::new()
            .with_thing(
                ThingContext::new("t")
                    .with_attribute("n", "10")
                    .with_attribute("s", "x"),
            )
            .with_time_ms(1_700_000_000_000);
        let k = "iot:Connection.Thing.Attributes[n]";
        assert!(holds("NumericEquals", k, &["10"], &r));
        assert!(holds("NumericEquals", k, &["10.0"], &r));
        assert!(holds("NumericNotEquals", k, &["11"], &r));
        assert!(holds("NumericLessThan", k, &["10.5"], &r));
        assert!(!holds("NumericLessThan", k, &["10"], &r));
        assert!(holds("NumericLessThanEquals", k, &["10"], &r));
        assert!(holds("NumericGreaterThan", k, &["-3"], &r));
        assert!(holds("NumericGreaterThanEquals", k, &["10"], &r));
        assert!(!holds("NumericGreaterThan", k, &["10"], &r));
        // A value that is not a number matches nothing.
        let s = "iot:Connection.Thing.Attributes[s]";
        assert!(!holds("NumericEquals", s, &["0"], &r));
        assert!(holds("NumericNotEquals", s, &["0"], &r));
        assert!(holds(
            "NumericGreaterThan",
            "aws:EpochTime",
            &["1699999999"],
            &r
        ));
        assert!(matches!(
            compile_err("NumericEquals", &["ten"]),
            ErrorKind::InvalidConditionValue { .. }
        ));
        assert!(matches!(
            compile_err("NumericEquals", &["NaN"]),
            ErrorKind::InvalidConditionValue { .. }
        ));
        match compile_err("NumericEquals", &["${iot:ClientId}"]) {
            ErrorKind::InvalidConditionValue { reason, .. } => {
                assert!(reason.contains("variables"))
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn dates() {
        let r = Request::new().with_time_ms(1_577_836_800_000); // 2020-01-01T00:00:00Z
        assert!(holds(
            "DateEquals",
            "aws:CurrentTime",
            &["2020-01-01T00:00:00Z"],
            &r
        ));
        assert!(holds("DateEquals", "aws:CurrentTime", &["1577836800"], &r));
        assert!(holds(
            "DateNotEquals",
            "aws:CurrentTime",
            &["2020-01-02"],
            &r
        ));
        assert!(holds(
            "DateLessThan",
            "aws:CurrentTime",
            &["2020-01-01T00:00:01Z"],
            &r
        ));
        assert!(!holds(
            "DateLessThan",
            "aws:CurrentTime",
            &["2020-01-01"],
            &r
        ));
        assert!(holds(
            "DateLessThanEquals",
            "aws:CurrentTime",
            &["2020-01-01"],
            &r
        ));
        assert!(holds(
            "DateGreaterThan",
            "aws:CurrentTime",
            &["2019-12-31T23:59:59Z"],
            &r
        ));
        assert!(holds(
            "DateGreaterThanEquals",
            "aws:EpochTime",
            &["2020-01-01T00:00:00Z"],
            &r
        ));
        assert!(holds("DateLessThan", "aws:EpochTime", &["1577836801"], &r));
        // String operators see aws:CurrentTime as ISO text.
        assert!(holds(
            "StringLike",
            "aws:CurrentTime",
            &["2020-01-01T*"],
            &r
        ));
        assert!(!holds(
            "DateEquals",
            "aws:CurrentTime",
            &["2020-01-01"],
            &Request::new()
        ));
        assert!(matches!(
            compile_err("DateEquals", &["tomorrow"]),
            ErrorKind::InvalidConditionValue { .. }
        ));
    }

    #[test]
    fn bool() {
        let r = Request::new().with_thing(ThingContext::new("t"));
        let k = "iot:Connection.Thing.IsAttached";
        assert!(holds("Bool", k, &["true"], &r));
        assert!(holds("Bool", k, &["True"], &r));
        assert!(!holds("Bool", k, &["false"], &r));
        assert!(holds("Bool", k, &["false"], &Request::new()));
        assert!(matches!(
            compile_err("Bool", &["yes"]),
            ErrorKind::InvalidConditionValue { .. }
        ));
    }

    #[test]
    fn ip_addresses() {
        let v4 = Request::new().with_source_ip("203.0.113.9".parse().unwrap());
        let v6 = Request::new().with_source_ip("2001:db8:1234:5678::1".parse().unwrap());
        let mapped = Request::new().with_source_ip("::ffff:203.0.113.9".parse().unwrap());
        let k = "aws:SourceIp";
        let ranges = ["203.0.113.0/24", "2001:DB8:1234:5678::/64"];
        assert!(holds("IpAddress", k, &ranges, &v4));
        assert!(holds("IpAddress", k, &ranges, &v6));
        assert!(holds("IpAddress", k, &ranges, &mapped));
        assert!(!holds("NotIpAddress", k, &ranges, &v4));
        assert!(holds("IpAddress", k, &["203.0.113.9"], &v4));
        assert!(!holds("IpAddress", k, &["203.0.113.8"], &v4));
        assert!(holds("IpAddress", k, &["0.0.0.0/0"], &v4));
        assert!(!holds("IpAddress", k, &["0.0.0.0/0"], &v6));
        assert!(holds("IpAddress", k, &["::/0"], &v6));
        assert!(holds("NotIpAddress", k, &["10.0.0.0/8"], &v4));
        assert!(holds("StringEquals", k, &["203.0.113.9"], &mapped));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "x",
            "10.0.0.0/",
            "10.0.0.0/+8",
        ] {
            assert!(
                matches!(
                    compile_err("IpAddress", &[bad]),
                    ErrorKind::InvalidConditionValue { .. }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn arn_operators() {
        let arn = "arn:aws:iot:us-east-1:123456789012:topic/my/lastwill/topicName";
        let r = Request::new().with_connect(ConnectContext {
            persistent: false,
            last_will_topic: Some(arn.into()),
        });
        let k = "iot:LastWillTopic";
        for op in ["ArnEquals", "ArnLike"] {
            assert!(holds(op, k, &[arn], &r));
            assert!(holds(op, k, &["arn:aws:iot:*:*:topic/my/lastwill/*"], &r));
            assert!(!holds(op, k, &["arn:aws:iot:*:*:topic/other"], &r));
            // '*' does not cross a colon.
            assert!(!holds(op, k, &["arn:*:topic/my/lastwill/topicName"], &r));
        }
        for op in ["ArnNotEquals", "ArnNotLike"] {
            assert!(!holds(op, k, &["arn:aws:iot:*:*:topic/my/*"], &r));
            assert!(holds(op, k, &["arn:aws:iot:*:*:topic/other"], &r));
        }
    }

    #[test]
    fn set_qualifiers() {
        let attrs = |persistent, will: bool| {
            Request::new().with_connect(ConnectContext {
                persistent,
                last_will_topic: will.then(|| "arn:aws:iot:r:1:topic/w".to_string()),
            })
        };
        let k = "iot:ConnectAttributes";
        let all = |vals: &[&str], r: &Request| holds("ForAllValues:StringEquals", k, vals, r);
        let any = |vals: &[&str], r: &Request| holds("ForAnyValue:StringEquals", k, vals, r);
        // Empty set: ForAllValues vacuously true, ForAnyValue false.
        assert!(all(&[], &attrs(false, false)));
        assert!(all(&["PersistentConnect"], &attrs(false, false)));
        assert!(!any(&["PersistentConnect"], &attrs(false, false)));
        assert!(all(&["PersistentConnect"], &attrs(true, false)));
        assert!(!all(&["PersistentConnect"], &attrs(true, true)));
        assert!(all(&["PersistentConnect", "LastWill"], &attrs(true, true)));
        assert!(!all(&[], &attrs(true, false)));
        assert!(any(&["PersistentConnect"], &attrs(true, true)));
        assert!(!any(&["PersistentConnect"], &attrs(false, true)));
        // Negated with qualifiers: per request value, no policy value may match.
        let r = attrs(true, true);
        assert!(!holds(
            "ForAllValues:StringNotEquals",
            k,
            &["PersistentConnect"],
            &r
        ));
        assert!(holds(
            "ForAllValues:StringNotEquals",
            k,
            &["PersistentConnect"],
            &attrs(false, true)
        ));
        assert!(holds(
            "ForAnyValue:StringNotEquals",
            k,
            &["PersistentConnect"],
            &r
        ));
        assert!(!holds(
            "ForAnyValue:StringNotEquals",
            k,
            &["PersistentConnect", "LastWill"],
            &r
        ));
        // Without a qualifier: any value matches / no value matches.
        assert!(holds("StringEquals", k, &["LastWill"], &r));
        assert!(!holds("StringNotEquals", k, &["LastWill"], &r));
        assert!(holds("StringNotEquals", k, &["Other"], &r));
    }

    #[test]
    fn certificate_lists() {
        let r = Request::new().with_certificate(CertificateContext {
            subject: DistinguishedName::default()
                .with(DnField::Organization, "Example Corp")
                .with(DnField::Organization, "AnyCompany")
                .with(DnField::CommonName, "dev")
                .with(DnField::CommonName, "Administrator"),
            ..Default::default()
        });
        let orgs = "iot:Certificate.Subject.Organization.List";
        assert!(holds(
            "ForAllValues:StringEquals",
            orgs,
            &["Example Corp", "AnyCompany"],
            &r
        ));
        assert!(!holds(
            "ForAllValues:StringEquals",
            orgs,
            &["Example Corp"],
            &r
        ));
        assert!(holds(
            "ForAnyValue:StringEquals",
            "iot:Certificate.Subject.CommonName.List",
            &["Administrator"],
            &r
        ));
        assert!(holds(
            "StringEquals",
            "iot:Certificate.Subject.CommonName.1",
            &["Administrator"],
            &r
        ));
        assert!(!holds(
            "StringEquals",
            "iot:Certificate.Subject.CommonName",
            &["Administrator"],
            &r
        ));
        assert!(holds(
            "ForAnyValue:StringEquals",
            "iot:Certificate.AvailableKeys",
            &["iot:Certificate.Subject.Organization"],
            &r
        ));
    }

    #[test]
    fn variable_in_condition_value_that_does_not_resolve_never_matches() {
        let r = Request::new().with_client_id("c");
        // The statement-level rule (a statement with an unresolvable variable does not apply)
        // is in compile.rs; at this level the value simply matches nothing.
        assert!(!holds(
            "StringEquals",
            "iot:ClientId",
            &["${iot:Connection.Thing.ThingName}"],
            &r
        ));
    }

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.255.1".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        let c = Cidr::parse("10.1.2.3/0").unwrap();
        assert!(c.contains("192.168.1.1".parse().unwrap()));
        let c = Cidr::parse("2001:db8::/127").unwrap();
        assert!(c.contains("2001:db8::1".parse().unwrap()));
        assert!(!c.contains("2001:db8::2".parse().unwrap()));
    }
}
