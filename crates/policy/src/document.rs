//! Policy documents: JSON to a checked syntax tree ([`PolicyDocument`]).
//!
//! ```text
//! { "Version": "2012-10-17", "Id"?: "...",
//!   "Statement": <statement> | [<statement>, ...] }
//! statement = { "Sid"?: "...", "Effect": "Allow" | "Deny",
//!               "Action" | "NotAction": <string> | [<string>, ...],
//!               "Resource" | "NotResource": <string> | [<string>, ...],
//!               "Condition"?: { <operator>: { <key>: <value> | [<value>, ...] } } }
//! ```
//!
//! Element names are case-sensitive; anything else (`Principal` included — an IoT policy
//! applies to whatever it is attached to) is an error, as is a member given twice.

use std::fmt;

use crate::compile::CompiledPolicy;
use crate::condition::Operator;
use crate::error::{ErrorKind, PolicyError};
use crate::json::Json;

/// AWS IoT's limit on a policy document: 2048 characters, not counting whitespace.
pub const DEFAULT_MAX_CHARS: usize = 2048;

/// Limits applied by [`parse_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Maximum characters excluding whitespace (AWS: [`DEFAULT_MAX_CHARS`]); `None` for no
    /// limit (e.g. for policies returned by a custom authorizer, which AWS limits by count).
    pub max_chars: Option<usize>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_chars: Some(DEFAULT_MAX_CHARS),
        }
    }
}

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2012-10-17`: policy variables.
    V2012_10_17,
    /// `2008-10-17` (also what a document without `Version` means, as in IAM): no policy
    /// variables; `${...}` is literal text.
    V2008_10_17,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2012_10_17 => "2012-10-17",
            Version::V2008_10_17 => "2008-10-17",
        }
    }

    pub fn has_variables(self) -> bool {
        self == Version::V2012_10_17
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// `Action` / `NotAction` or `Resource` / `NotResource`: patterns, and whether the element is
/// the `Not` form (the statement then applies to what matches none of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    pub negated: bool,
    pub values: Vec<String>,
}

/// One key of one operator of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: Operator,
    /// The condition key as written.
    pub key: String,
    /// The values as written (JSON numbers and booleans as their JSON text). May be empty.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    /// All must hold (operators and keys AND; a key's values OR).
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub version: Version,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// Parses and validates a policy document with AWS IoT's limits.
pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
    parse_with(text, &ParseOptions::default())
}

/// Parses and validates a policy document.
pub fn parse_with(text: &str, options: &ParseOptions) -> Result<PolicyDocument, PolicyError> {
    if let Some(max) = options.max_chars {
        let length = text.chars().filter(|c| !c.is_whitespace()).count();
        if length > max {
            return Err(PolicyError::new("", ErrorKind::TooLong { length, max }));
        }
    }
    let json = Json::parse(text)?;
    let doc = document(&json)?;
    // Everything compilation would reject (values of operators, variables, ARNs) is a
    // malformed document, reported here with its path.
    CompiledPolicy::compile("", &doc)?;
    Ok(doc)
}

fn err(path: impl Into<String>, kind: ErrorKind) -> PolicyError {
    PolicyError::new(path, kind)
}

fn object<'a>(j: &'a Json, path: &str) -> Result<&'a [(String, Json)], PolicyError> {
    match j {
        Json::Object(m) => Ok(m),
        _ => Err(err(path, ErrorKind::WrongType("an object"))),
    }
}

fn string(j: &Json, path: &str) -> Result<String, PolicyError> {
    match j {
        Json::String(s) => Ok(s.clone()),
        _ => Err(err(path, ErrorKind::WrongType("a string"))),
    }
}

/// A string or a non-empty array of strings.
fn strings(j: &Json, path: &str) -> Result<Vec<String>, PolicyError> {
    match j {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(items) if items.is_empty() => Err(err(path, ErrorKind::Empty)),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::String(s) => Ok(s.clone()),
                _ => Err(err(
                    format!("{path}[{i}]"),
                    ErrorKind::WrongType("a string"),
                )),
            })
            .collect(),
        _ => Err(err(
            path,
            ErrorKind::WrongType("a string or an array of strings"),
        )),
    }
}

fn document(json: &Json) -> Result<PolicyDocument, PolicyError> {
    let members = object(json, "")?;
    let mut version = None;
    let mut id = None;
    let mut statements = None;
    for (name, value) in members {
        match name.as_str() {
            "Version" => {
                let v = string(value, "Version")?;
                version = Some(match v.as_str() {
                    "2012-10-17" => Version::V2012_10_17,
                    "2008-10-17" => Version::V2008_10_17,
                    _ => return Err(err("Version", ErrorKind::UnsupportedVersion(v))),
                });
            }
            "Id" => id = Some(string(value, "Id")?),
            "Statement" => {
                statements = Some(match value {
                    Json::Object(_) => vec![statement(value, "Statement")?],
                    Json::Array(items) if items.is_empty() => {
                        return Err(err("Statement", ErrorKind::Empty));
                    }
                    Json::Array(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, s)| statement(s, &format!("Statement[{i}]")))
                        .collect::<Result<Vec<_>, _>>()?,
                    _ => {
                        return Err(err(
                            "Statement",
                            ErrorKind::WrongType("an object or an array of objects"),
                        ));
                    }
                });
            }
            other => return Err(err("", ErrorKind::UnknownElement(other.to_string()))),
        }
    }
    let statements = statements.ok_or_else(|| err("", ErrorKind::Missing("Statement")))?;
    let mut sids: Vec<&str> = statements.iter().filter_map(|s| s.sid.as_deref()).collect();
    sids.sort_unstable();
    if let Some(w) = sids.windows(2).find(|w| w[0] == w[1]) {
        return Err(err("Statement", ErrorKind::DuplicateSid(w[0].to_string())));
    }
    Ok(PolicyDocument {
        version: version.unwrap_or(Version::V2008_10_17),
        id,
        statements,
    })
}

fn statement(json: &Json, path: &str) -> Result<Statement, PolicyError> {
    let members = object(json, path)?;
    let mut sid = None;
    let mut effect = None;
    let mut actions: Option<Patterns> = None;
    let mut resources: Option<Patterns> = None;
    let mut conditions = Vec::new();
    let at = |name: &str| format!("{path}.{name}");
    for (name, value) in members {
        match name.as_str() {
            "Sid" => sid = Some(string(value, &at("Sid"))?),
            "Effect" => {
                let e = string(value, &at("Effect"))?;
                effect = Some(match e.as_str() {
                    "Allow" => Effect::Allow,
                    "Deny" => Effect::Deny,
                    _ => return Err(err(at("Effect"), ErrorKind::InvalidEffect(e))),
                });
            }
            "Action" | "NotAction" => {
                if actions.is_some() {
                    return Err(err(path, ErrorKind::Conflict("Action", "NotAction")));
                }
                actions = Some(Patterns {
                    negated: name == "NotAction",
                    values: strings(value, &at(name))?,
                });
            }
            "Resource" | "NotResource" => {
                if resources.is_some() {
                    return Err(err(path, ErrorKind::Conflict("Resource", "NotResource")));
                }
                resources = Some(Patterns {
                    negated: name == "NotResource",
                    values: strings(value, &at(name))?,
                });
            }
            "Condition" => conditions = condition_block(value, &at("Condition"))?,
            "Principal" => return Err(err(at(name), ErrorKind::PrincipalNotAllowed("Principal"))),
            "NotPrincipal" => {
                return Err(err(
                    at(name),
                    ErrorKind::PrincipalNotAllowed("NotPrincipal"),
                ));
            }
            other => return Err(err(path, ErrorKind::UnknownElement(other.to_string()))),
        }
    }
    Ok(Statement {
        sid,
        effect: effect.ok_or_else(|| err(path, ErrorKind::Missing("Effect")))?,
        actions: actions
            .ok_or_else(|| err(path, ErrorKind::MissingOneOf("Action", "NotAction")))?,
        resources: resources
            .ok_or_else(|| err(path, ErrorKind::MissingOneOf("Resource", "NotResource")))?,
        conditions,
    })
}

fn condition_block(json: &Json, path: &str) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (op_name, keys) in object(json, path)? {
        let op_path = format!("{path}.{op_name}");
        let operator = Operator::parse(op_name).map_err(|k| err(path, k))?;
        for (key, values) in object(keys, &op_path)? {
            let key_path = format!("{op_path}.{key}");
            if key.is_empty() {
                return Err(err(op_path, ErrorKind::EmptyConditionKey));
            }
            let values = match values {
                Json::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| scalar(v, &format!("{key_path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
                v => vec![scalar(v, &key_path)?],
            };
            out.push(Condition {
                operator,
                key: key.clone(),
                values,
            });
        }
    }
    Ok(out)
}

/// A condition value: a string, or a number or boolean taken as its JSON text.
fn scalar(j: &Json, path: &str) -> Result<String, PolicyError> {
    match j {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(err(
            path,
            ErrorKind::WrongType(match other {
                Json::Null => "a string, number or boolean, not null",
                _ => "a string, number or boolean",
            }),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::condition::{OperatorKind, SetQualifier};

    fn e(text: &str) -> PolicyError {
        parse(text).unwrap_err()
    }

    fn msg(text: &str) -> String {
        e(text).to_string()
    }

    const MIN: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}}"#;

    #[test]
    fn minimal_forms() {
        let d = parse(MIN).unwrap();
        assert_eq!(d.version, Version::V2012_10_17);
        assert_eq!(d.statements.len(), 1);
        let s = &d.statements[0];
        assert_eq!(s.effect, Effect::Allow);
        assert_eq!(
            s.actions,
            Patterns {
                negated: false,
                values: vec!["iot:*".into()]
            }
        );
        assert_eq!(s.resources.values, ["*"]);
        let d = parse(
            r#"{"Id":"x","Statement":[{"Sid":"a","Effect":"Deny","NotAction":["iot:Connect","iot:Publish"],"NotResource":"arn:aws:iot:us-east-1:1:topic/x"}]}"#,
        )
        .unwrap();
        assert_eq!(d.version, Version::V2008_10_17);
        assert_eq!(d.id.as_deref(), Some("x"));
        let s = &d.statements[0];
        assert!(s.actions.negated && s.resources.negated);
        assert_eq!(s.sid.as_deref(), Some("a"));
    }

    #[test]
    fn conditions_parse_in_order_with_scalar_values() {
        let d = parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":[]},
                         "NumericLessThanIfExists":{"iot:Connection.Thing.Attributes[n]":10},
                         "Bool":{"iot:Connection.Thing.IsAttached":true, "x:y":["false"]}}}}"#,
        )
        .unwrap();
        let c = &d.statements[0].conditions;
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].operator.qualifier, Some(SetQualifier::ForAllValues));
        assert_eq!(c[0].operator.kind, OperatorKind::StringEquals);
        assert!(c[0].values.is_empty());
        assert!(c[1].operator.if_exists);
        assert_eq!(c[1].values, ["10"]);
        assert_eq!(c[2].values, ["true"]);
        assert_eq!(c[3].key, "x:y");
    }

    #[test]
    fn structural_errors_say_what_and_where() {
        assert_eq!(
            msg("[]"),
            "Policy document is Malformed: expected an object"
        );
        assert_eq!(
            msg(r#"{"Version":"2012-10-17"}"#),
            "Policy document is Malformed: \"Statement\" is required"
        );
        assert_eq!(
            msg(r#"{"Version":"2012-10-17","Statement":[]}"#),
            "Policy document is Malformed: Statement: must not be empty"
        );
        assert_eq!(
            msg(r#"{"Version":"2012-10-18","Statement":[]}"#),
            "Policy document is Malformed: Version: Version \"2012-10-18\" is not supported; use \"2012-10-17\" (or \"2008-10-17\", which has no policy variables)"
        );
        assert_eq!(
            msg(r#"{"version":"2012-10-17","Statement":[]}"#),
            "Policy document is Malformed: unknown element \"version\""
        );
        let s = |body: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{MIN_S},{{{body}}}]}}"#,
                MIN_S = r#"{"Effect":"Allow","Action":"iot:*","Resource":"*"}"#
            )
        };
        assert_eq!(
            msg(&s(r#""Effect":"allow","Action":"iot:*","Resource":"*""#)),
            "Policy document is Malformed: Statement[1].Effect: Effect \"allow\" must be \"Allow\" or \"Deny\""
        );
        assert_eq!(
            e(&s(r#""Action":"iot:*","Resource":"*""#)).kind,
            ErrorKind::Missing("Effect")
        );
        assert_eq!(
            e(&s(r#""Effect":"Allow","Resource":"*""#)).kind,
            ErrorKind::MissingOneOf("Action", "NotAction")
        );
        assert_eq!(
            e(&s(r#""Effect":"Allow","Action":"iot:*""#)).kind,
            ErrorKind::MissingOneOf("Resource", "NotResource")
        );
        assert_eq!(
            e(&s(
                r#""Effect":"Allow","Action":"iot:*","NotAction":"iot:Publish","Resource":"*""#
            ))
            .kind,
            ErrorKind::Conflict("Action", "NotAction")
        );
        assert_eq!(
            e(&s(
                r#""Effect":"Allow","Action":"iot:*","Resource":"*","NotResource":"*""#
            ))
            .kind,
            ErrorKind::Conflict("Resource", "NotResource")
        );
        let p = e(&s(r#""Effect":"Allow","Action":[],"Resource":"*""#));
        assert_eq!(
            (p.path.as_str(), p.kind),
            ("Statement[1].Action", ErrorKind::Empty)
        );
        let p = e(&s(
            r#""Effect":"Allow","Action":["iot:Publish",7],"Resource":"*""#,
        ));
        assert_eq!(p.path, "Statement[1].Action[1]");
        let p = e(&s(
            r#""Effect":"Allow","Action":"iot:*","Resource":"*","Principal":"*""#,
        ));
        assert_eq!(p.kind, ErrorKind::PrincipalNotAllowed("Principal"));
        let p = e(&s(
            r#""Effect":"Allow","Action":"iot:*","Resource":"*","Foo":1"#,
        ));
        assert_eq!(p.kind, ErrorKind::UnknownElement("Foo".into()));
        assert_eq!(p.path, "Statement[1]");
        let p = e(&s(
            r#""Effect":"Allow","Action":"iot:*","Resource":"*","Condition":[]"#,
        ));
        assert_eq!(p.path, "Statement[1].Condition");
        let p = e(&s(
            r#""Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringEquals":{"k":null}}"#,
        ));
        assert_eq!(p.path, "Statement[1].Condition.StringEquals.k");
        let p = e(&s(
            r#""Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringEquals":{"k":[["x"]]}}"#,
        ));
        assert_eq!(p.path, "Statement[1].Condition.StringEquals.k[0]");
        let p = e(&s(
            r#""Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringEquals":{"":"x"}}"#,
        ));
        assert_eq!(p.kind, ErrorKind::EmptyConditionKey);
        let p = e(&s(
            r#""Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringEqualz":{"k":"x"}}"#,
        ));
        assert_eq!(p.kind, ErrorKind::UnknownOperator("StringEqualz".into()));
    }

    #[test]
    fn duplicate_sids_and_members() {
        let d = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"a","Effect":"Allow","Action":"iot:*","Resource":"*"},
            {"Sid":"a","Effect":"Deny","Action":"iot:*","Resource":"*"}]}"#;
        assert_eq!(e(d).kind, ErrorKind::DuplicateSid("a".into()));
        let d = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Effect":"Deny","Action":"iot:*","Resource":"*"}}"#;
        assert!(matches!(e(d).kind, ErrorKind::Json { .. }));
    }

    #[test]
    fn length_limit_excludes_whitespace_and_is_configurable() {
        let body = |n: usize| {
            let pad = "x".repeat(n);
            format!(
                r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"iot:*","Resource":"arn:aws:iot:r:1:topic/{pad}"}}}}"#
            )
        };
        let base = body(0).chars().count();
        let exact = body(DEFAULT_MAX_CHARS - base);
        assert_eq!(exact.chars().count(), DEFAULT_MAX_CHARS);
        assert!(parse(&exact).is_ok());
        // Whitespace does not count.
        let spaced = exact.replace(',', " ,\n\t ");
        assert!(parse(&spaced).is_ok());
        let over = body(DEFAULT_MAX_CHARS - base + 1);
        assert_eq!(
            e(&over).kind,
            ErrorKind::TooLong {
                length: DEFAULT_MAX_CHARS + 1,
                max: DEFAULT_MAX_CHARS
            }
        );
        assert!(parse_with(&over, &ParseOptions { max_chars: None }).is_ok());
        assert!(
            parse_with(
                &exact,
                &ParseOptions {
                    max_chars: Some(10)
                }
            )
            .is_err()
        );
    }
}
