//! The authorizer's answer, validated as AWS validates a Lambda authorizer's response:
//!
//! ```json
//! {"isAuthenticated": true, "principalId": "device17",
//!  "policyDocuments": [{"Version": "2012-10-17", "Statement": [...]}, "{\"Version\": ...}"],
//!  "disconnectAfterInSeconds": 86400, "refreshAfterInSeconds": 300}
//! ```
//!
//! Anything malformed is an [`AnswerError`]; the caller then denies (fails closed). Rules:
//!
//! - `isAuthenticated` (boolean) and `principalId` (`^[a-zA-Z0-9]{1,128}$`) are required,
//!   also in a denial; a denial that fails validation denies just the same.
//! - `policyDocuments`: at most 10, each a JSON object or a JSON-encoded string of one (AWS
//!   has answered both ways), each a valid IoT policy of at most 2048 characters not counting
//!   whitespace (the measure of AWS's policy size limit). Absent means none: an authenticated
//!   principal without policies may do nothing.
//! - `disconnectAfterInSeconds`, `refreshAfterInSeconds`: optional integers within 300–86400;
//!   outside the range the answer is invalid (AWS documents the range; an authorizer that
//!   asks for something else is wrong, and guessing what it meant would not fail closed).
//! - A member given twice anywhere (also inside a policy) is an error; `null` counts as
//!   absent; other members are ignored. The body may be at most [`MAX_ANSWER_BYTES`].
//!
//! **Ferrocore extensions** (beyond AWS; an answer without them is AWS's answer):
//!
//! - `context`: `{"<name>": "<value>", ...}`: values for the policy condition key and
//!   variable `ferrocore:Context.<name>`. A value may be a string, a number or a boolean (as
//!   its JSON text, so an API Gateway-style context fits).
//! - `claims`: `{"<name>": "<value>" | ["<value>", ...], ...}`: the validated token's claims,
//!   for `ferrocore:Claims.<name>` (a list makes the key multi-valued); values as in
//!   `context`.
//! - Both: at most [`MAX_EXTENSION_ENTRIES`] names of 1 to [`MAX_EXTENSION_NAME_CHARS`]
//!   characters without control characters, values of at most [`MAX_EXTENSION_VALUE_CHARS`]
//!   characters, at most [`MAX_CLAIM_VALUES`] values per claim; a `null` value counts as
//!   absent. Anything else is an [`AnswerError`], as for AWS's members.
//!
//! **Built-in functions** ([`AnswerRules::BuiltIn`], for answers of functions whose
//! `is_built_in()` is true) are held to two wider rules, because they carry identities and
//! lifetimes from tokens rather than from a Lambda written for AWS:
//!
//! - `disconnectAfterInSeconds` / `refreshAfterInSeconds` from 1 s (not 300), so a token's
//!   expiry can end the connection when it is due;
//! - `principalId` of 1 to 128 printable ASCII characters except `*`, `$`, `+`, `?`, `#`
//!   and `/` ([`is_built_in_principal_id`]), so an OIDC `sub` such as `client-1`, a UUID, an
//!   e-mail address or `auth0|abc` is the principal as is. The excluded characters are those
//!   that would make `${ferrocore:PrincipalId}` a wildcard, a variable or another topic level
//!   when substituted into a policy; spaces and control characters are excluded too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferrocore_policy::{CompiledPolicy, ParseOptions, PolicyError, PolicySet};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// AWS's limit on the number of policy documents in an answer.
pub const MAX_ANSWER_POLICIES: usize = 10;
/// The shortest `disconnectAfterInSeconds` / `refreshAfterInSeconds` of a webhook's answer.
pub const MIN_ANSWER_SECONDS: u64 = 300;
/// The shortest `disconnectAfterInSeconds` / `refreshAfterInSeconds` of a built-in
/// function's answer.
pub const MIN_BUILT_IN_ANSWER_SECONDS: u64 = 1;
/// The longest `disconnectAfterInSeconds` / `refreshAfterInSeconds`.
pub const MAX_ANSWER_SECONDS: u64 = 86_400;
/// The largest answer body read: ten policies of 2048 characters with generous whitespace
/// and escaping fit many times over.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// AWS's limit on a principal id.
pub const MAX_PRINCIPAL_ID_CHARS: usize = 128;
/// The most names in `context`, and in `claims`.
pub const MAX_EXTENSION_ENTRIES: usize = 64;
/// The longest name in `context` or `claims`.
pub const MAX_EXTENSION_NAME_CHARS: usize = 128;
/// The longest value in `context` or `claims` (also the longest a policy variable
/// substitutes).
pub const MAX_EXTENSION_VALUE_CHARS: usize = 1024;
/// The most values of one claim.
pub const MAX_CLAIM_VALUES: usize = 64;

/// Characters a built-in function's `principalId` may not hold besides spaces and control
/// characters: policy wildcards, variables, MQTT wildcards and the topic level separator.
const PRINCIPAL_ID_EXCLUDED: [char; 6] = ['*', '$', '+', '?', '#', '/'];

/// Why an authorizer's answer is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is {length} bytes; at most {MAX_ANSWER_BYTES} are read")]
    TooLarge { length: usize },
    #[error("the answer is not a JSON object: {0}")]
    NotJsonObject(String),
    #[error("the answer has no {0}")]
    Missing(&'static str),
    #[error("{field} must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("principalId must be 1 to 128 letters and digits")]
    InvalidPrincipalId,
    #[error(
        "principalId must be 1 to 128 printable ASCII characters other than * $ + ? # / \
         (a built-in function's answer)"
    )]
    InvalidBuiltInPrincipalId,
    #[error("policyDocuments has {count} documents; at most {MAX_ANSWER_POLICIES} are allowed")]
    TooManyPolicies { count: usize },
    #[error("policyDocuments[{index}]: {error}")]
    InvalidPolicy { index: usize, error: PolicyError },
    #[error("{field} is {value}; it must be within {MIN_ANSWER_SECONDS}-{MAX_ANSWER_SECONDS}")]
    OutOfRange { field: &'static str, value: String },
    #[error(
        "{field} is {value}; it must be within {MIN_BUILT_IN_ANSWER_SECONDS}-{MAX_ANSWER_SECONDS} \
         (a built-in function's answer)"
    )]
    OutOfBuiltInRange { field: &'static str, value: String },
    #[error("{member} has {count} names; at most {MAX_EXTENSION_ENTRIES} are allowed")]
    TooManyNames { member: &'static str, count: usize },
    #[error(
        "{member} has a name of {chars} characters or with control characters; names must be \
         1 to {MAX_EXTENSION_NAME_CHARS} characters without control characters"
    )]
    InvalidName { member: &'static str, chars: usize },
    #[error("{member} names \"{name}\" twice")]
    DuplicateName { member: &'static str, name: String },
    #[error("{field} is {chars} characters long; at most {MAX_EXTENSION_VALUE_CHARS} are allowed")]
    ValueTooLong { field: String, chars: usize },
    #[error("{field} has {count} values; at most {MAX_CLAIM_VALUES} are allowed")]
    TooManyValues { field: String, count: usize },
}

/// Which rules an answer is held to (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerRules {
    /// AWS's rules for a Lambda authorizer's answer: webhooks.
    #[default]
    Aws,
    /// A built-in function's answer: lifetimes from 1 s and a wider `principalId`.
    BuiltIn,
}

/// A validated answer.
#[derive(Debug, Clone)]
pub struct AuthorizerAnswer {
    pub authenticated: bool,
    pub principal_id: String,
    pub policies: Vec<AnswerPolicy>,
    /// The longest the connection may last.
    pub disconnect_after: Option<Duration>,
    /// When to ask the authorizer again (the answer holds for the connection until then).
    pub refresh_after: Option<Duration>,
    /// The `context` extension: `ferrocore:Context.<name>`.
    pub context: BTreeMap<String, String>,
    /// The `claims` extension: `ferrocore:Claims.<name>`.
    pub claims: BTreeMap<String, Vec<String>>,
}

/// One of the answer's policies: the document's text (TestInvokeAuthorizer returns it as a
/// string) and its compiled form, named `policyDocuments[<index>]`.
#[derive(Debug, Clone)]
pub struct AnswerPolicy {
    pub text: String,
    pub compiled: Arc<CompiledPolicy>,
}

/// The answer's members; each read as raw JSON first so that a wrong type gets a precise
/// error and policy objects keep their own text.
#[derive(Deserialize)]
struct WireAnswer<'a> {
    #[serde(rename = "isAuthenticated", borrow)]
    is_authenticated: Option<&'a RawValue>,
    #[serde(rename = "principalId", borrow)]
    principal_id: Option<&'a RawValue>,
    #[serde(rename = "policyDocuments", borrow)]
    policy_documents: Option<&'a RawValue>,
    #[serde(rename = "disconnectAfterInSeconds", borrow)]
    disconnect_after: Option<&'a RawValue>,
    #[serde(rename = "refreshAfterInSeconds", borrow)]
    refresh_after: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
    #[serde(borrow)]
    claims: Option<&'a RawValue>,
}

impl AuthorizerAnswer {
    /// Validates an answer body by AWS's rules (a webhook's answer).
    pub fn from_json(body: &[u8]) -> Result<AuthorizerAnswer, AnswerError> {
        AuthorizerAnswer::from_json_with(body, AnswerRules::Aws)
    }

    /// Validates an answer body by `rules`.
    pub fn from_json_with(
        body: &[u8],
        rules: AnswerRules,
    ) -> Result<AuthorizerAnswer, AnswerError> {
        if body.len() > MAX_ANSWER_BYTES {
            return Err(AnswerError::TooLarge { length: body.len() });
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| AnswerError::NotJsonObject("not UTF-8".into()))?;
        let wire: WireAnswer<'_> =
            serde_json::from_str(text).map_err(|e| AnswerError::NotJsonObject(e.to_string()))?;

        let authenticated = match present(wire.is_authenticated) {
            None => return Err(AnswerError::Missing("isAuthenticated")),
            Some(raw) => serde_json::from_str::<bool>(raw.get())
                .map_err(|_| wrong_type("isAuthenticated", "a boolean"))?,
        };
        let principal_id = match present(wire.principal_id) {
            None => return Err(AnswerError::Missing("principalId")),
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map_err(|_| wrong_type("principalId", "a string"))?,
        };
        match rules {
            AnswerRules::Aws if !is_aws_principal_id(&principal_id) => {
                return Err(AnswerError::InvalidPrincipalId);
            }
            AnswerRules::BuiltIn if !is_built_in_principal_id(&principal_id) => {
                return Err(AnswerError::InvalidBuiltInPrincipalId);
            }
            _ => {}
        }
        let policies = match present(wire.policy_documents) {
            None => Vec::new(),
            Some(raw) => policies(raw)?,
        };
        Ok(AuthorizerAnswer {
            authenticated,
            principal_id,
            policies,
            disconnect_after: seconds("disconnectAfterInSeconds", wire.disconnect_after, rules)?,
            refresh_after: seconds("refreshAfterInSeconds", wire.refresh_after, rules)?,
            context: context(wire.context)?,
            claims: claims(wire.claims)?,
        })
    }

    /// The answer's policies as a set to evaluate requests against.
    pub fn policy_set(&self) -> PolicySet {
        PolicySet::new(self.policies.iter().map(|p| Arc::clone(&p.compiled)))
    }
}

/// AWS's rule for `principalId`: `^[a-zA-Z0-9]{1,128}$`.
fn is_aws_principal_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PRINCIPAL_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `id` is a valid `principalId` in a built-in function's answer: 1 to 128
/// printable ASCII characters (no space) other than `*`, `$`, `+`, `?`, `#` and `/`.
pub fn is_built_in_principal_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PRINCIPAL_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && !PRINCIPAL_ID_EXCLUDED.contains(&c))
}

/// `null` counts as absent.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|r| r.get() != "null")
}

fn wrong_type(field: impl Into<String>, expected: &'static str) -> AnswerError {
    AnswerError::WrongType {
        field: field.into(),
        expected,
    }
}

fn policies(raw: &RawValue) -> Result<Vec<AnswerPolicy>, AnswerError> {
    let documents: Vec<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| wrong_type("policyDocuments", "an array"))?;
    if documents.len() > MAX_ANSWER_POLICIES {
        return Err(AnswerError::TooManyPolicies {
            count: documents.len(),
        });
    }
    let options = ParseOptions::default();
    documents
        .into_iter()
        .enumerate()
        .map(|(index, document)| {
            let field = || format!("policyDocuments[{index}]");
            let expected = "a JSON object or a JSON-encoded string";
            let text = match document.get().as_bytes().first() {
                Some(b'{') => document.get().to_owned(),
                Some(b'"') => serde_json::from_str::<String>(document.get())
                    .map_err(|_| wrong_type(field(), expected))?,
                _ => return Err(wrong_type(field(), expected)),
            };
            let policy = ferrocore_policy::parse_with(&text, &options)
                .and_then(|document| CompiledPolicy::compile(field(), &document))
                .map_err(|error| AnswerError::InvalidPolicy { index, error })?;
            Ok(AnswerPolicy {
                text,
                compiled: Arc::new(policy),
            })
        })
        .collect()
}

fn seconds(
    field: &'static str,
    raw: Option<&RawValue>,
    rules: AnswerRules,
) -> Result<Option<Duration>, AnswerError> {
    let Some(raw) = present(raw) else {
        return Ok(None);
    };
    let (min, out_of_range): (u64, fn(&'static str, String) -> AnswerError) = match rules {
        AnswerRules::Aws => (MIN_ANSWER_SECONDS, |field, value| AnswerError::OutOfRange {
            field,
            value,
        }),
        AnswerRules::BuiltIn => (MIN_BUILT_IN_ANSWER_SECONDS, |field, value| {
            AnswerError::OutOfBuiltInRange { field, value }
        }),
    };
    let number: serde_json::Number =
        serde_json::from_str(raw.get()).map_err(|_| wrong_type(field, "an integer"))?;
    let Some(value) = number.as_u64() else {
        // A negative number is out of range; a fraction is no integer.
        return Err(if number.as_i64().is_some() {
            out_of_range(field, number.to_string())
        } else {
            wrong_type(field, "an integer")
        });
    };
    if !(min..=MAX_ANSWER_SECONDS).contains(&value) {
        return Err(out_of_range(field, value.to_string()));
    }
    Ok(Some(Duration::from_secs(value)))
}

/// The `context` extension.
fn context(raw: Option<&RawValue>) -> Result<BTreeMap<String, String>, AnswerError> {
    const MEMBER: &str = "context";
    let mut context = BTreeMap::new();
    for (name, value) in extension_entries(MEMBER, raw)? {
        let field = format!("{MEMBER}.{name}");
        match value {
            Value::Null => {}
            Value::Array(_) | Value::Object(_) => {
                return Err(wrong_type(field, "a string, a number or a boolean"));
            }
            scalar => {
                let text = scalar_text(&field, &scalar)?;
                context.insert(name, text);
            }
        }
    }
    Ok(context)
}

/// The `claims` extension.
fn claims(raw: Option<&RawValue>) -> Result<BTreeMap<String, Vec<String>>, AnswerError> {
    const MEMBER: &str = "claims";
    const EXPECTED: &str = "a string, a number, a boolean or a list of these";
    let mut claims = BTreeMap::new();
    for (name, value) in extension_entries(MEMBER, raw)? {
        let field = format!("{MEMBER}.{name}");
        let values = match value {
            Value::Null => continue,
            Value::Object(_) => return Err(wrong_type(field, EXPECTED)),
            Value::Array(items) => {
                if items.len() > MAX_CLAIM_VALUES {
                    return Err(AnswerError::TooManyValues {
                        field,
                        count: items.len(),
                    });
                }
                items
                    .iter()
                    .map(|item| match item {
                        Value::Array(_) | Value::Object(_) | Value::Null => {
                            Err(wrong_type(field.clone(), EXPECTED))
                        }
                        scalar => scalar_text(&field, scalar),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            scalar => vec![scalar_text(&field, &scalar)?],
        };
        claims.insert(name, values);
    }
    Ok(claims)
}

/// A string, number or boolean as text, within the value length limit.
fn scalar_text(field: &str, value: &Value) -> Result<String, AnswerError> {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let chars = text.chars().count();
    if chars > MAX_EXTENSION_VALUE_CHARS {
        return Err(AnswerError::ValueTooLong {
            field: field.to_owned(),
            chars,
        });
    }
    Ok(text)
}

/// The names and values of an extension member (an object), checked for count, name form
/// and duplicates; empty when the member is absent or `null`.
fn extension_entries(
    member: &'static str,
    raw: Option<&RawValue>,
) -> Result<Vec<(String, Value)>, AnswerError> {
    let Some(raw) = present(raw) else {
        return Ok(Vec::new());
    };
    let Entries(entries) =
        serde_json::from_str(raw.get()).map_err(|_| wrong_type(member, "an object"))?;
    if entries.len() > MAX_EXTENSION_ENTRIES {
        return Err(AnswerError::TooManyNames {
            member,
            count: entries.len(),
        });
    }
    let mut seen = BTreeSet::new();
    for (name, _) in &entries {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_EXTENSION_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AnswerError::InvalidName { member, chars });
        }
        if !seen.insert(name.as_str()) {
            return Err(AnswerError::DuplicateName {
                member,
                name: name.clone(),
            });
        }
    }
    Ok(entries)
}

/// A JSON object's members in order, duplicates kept (a map would silently keep the last).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    // Bounded by the answer's size; the count is checked by the caller.
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}
