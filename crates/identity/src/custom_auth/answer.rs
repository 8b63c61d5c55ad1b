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

use std::sync::Arc;
use std::time::Duration;

use ferrocore_policy::{CompiledPolicy, ParseOptions, PolicyError, PolicySet};
use serde::Deserialize;
use serde_json::value::RawValue;

/// AWS's limit on the number of policy documents in an answer.
pub const MAX_ANSWER_POLICIES: usize = 10;
/// The shortest `disconnectAfterInSeconds` / `refreshAfterInSeconds`.
pub const MIN_ANSWER_SECONDS: u64 = 300;
/// The longest `disconnectAfterInSeconds` / `refreshAfterInSeconds`.
pub const MAX_ANSWER_SECONDS: u64 = 86_400;
/// The largest answer body read: ten policies of 2048 characters with generous whitespace
/// and escaping fit many times over.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// AWS's limit on a principal id.
pub const MAX_PRINCIPAL_ID_CHARS: usize = 128;

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
    #[error("policyDocuments has {count} documents; at most {MAX_ANSWER_POLICIES} are allowed")]
    TooManyPolicies { count: usize },
    #[error("policyDocuments[{index}]: {error}")]
    InvalidPolicy { index: usize, error: PolicyError },
    #[error("{field} is {value}; it must be within {MIN_ANSWER_SECONDS}-{MAX_ANSWER_SECONDS}")]
    OutOfRange { field: &'static str, value: String },
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
}

impl AuthorizerAnswer {
    /// Validates an answer body.
    pub fn from_json(body: &[u8]) -> Result<AuthorizerAnswer, AnswerError> {
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
        if principal_id.is_empty()
            || principal_id.len() > MAX_PRINCIPAL_ID_CHARS
            || !principal_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(AnswerError::InvalidPrincipalId);
        }
        let policies = match present(wire.policy_documents) {
            None => Vec::new(),
            Some(raw) => policies(raw)?,
        };
        Ok(AuthorizerAnswer {
            authenticated,
            principal_id,
            policies,
            disconnect_after: seconds("disconnectAfterInSeconds", wire.disconnect_after)?,
            refresh_after: seconds("refreshAfterInSeconds", wire.refresh_after)?,
        })
    }

    /// The answer's policies as a set to evaluate requests against.
    pub fn policy_set(&self) -> PolicySet {
        PolicySet::new(self.policies.iter().map(|p| Arc::clone(&p.compiled)))
    }
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

fn seconds(field: &'static str, raw: Option<&RawValue>) -> Result<Option<Duration>, AnswerError> {
    let Some(raw) = present(raw) else {
        return Ok(None);
    };
    let number: serde_json::Number =
        serde_json::from_str(raw.get()).map_err(|_| wrong_type(field, "an integer"))?;
    let Some(value) = number.as_u64() else {
        // A negative number is out of range; a fraction is no integer.
        return Err(if number.as_i64().is_some() {
            AnswerError::OutOfRange {
                field,
                value: number.to_string(),
            }
        } else {
            wrong_type(field, "an integer")
        });
    };
    if !(MIN_ANSWER_SECONDS..=MAX_ANSWER_SECONDS).contains(&value) {
        return Err(AnswerError::OutOfRange {
            field,
            value: value.to_string(),
        });
    }
    Ok(Some(Duration::from_secs(value)))
}
