//! The one error type of the crate: a policy document that cannot be accepted.

use std::fmt;

/// A policy document that is not valid JSON, breaks a limit, or is not a valid IoT policy.
///
/// The control plane answers it as `MalformedPolicyException` (HTTP 400) with [`Display`] as
/// the message, which names what is wrong and where (`path`, e.g. `Statement[1].Effect`).
///
/// [`Display`]: fmt::Display
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Where in the document, as `Statement[1].Condition.StringEquals.iot:ClientId`; empty for
    /// the document as a whole.
    pub path: String,
    pub kind: ErrorKind,
}

impl PolicyError {
    /// The AWS error name this maps to.
    pub const AWS_ERROR_CODE: &'static str = "MalformedPolicyException";

    pub(crate) fn new(path: impl Into<String>, kind: ErrorKind) -> Self {
        PolicyError {
            path: path.into(),
            kind,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // AWS IoT's own messages start this way ("Policy document is Malformed: ...").
        f.write_str("Policy document is Malformed: ")?;
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.path, self.kind)
        }
    }
}

impl std::error::Error for PolicyError {}

/// What is wrong with a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "the document has {length} characters not counting whitespace; at most {max} are allowed"
    )]
    TooLong { length: usize, max: usize },
    #[error("unknown element \"{0}\"")]
    UnknownElement(String),
    #[error(
        "\"{0}\" is not allowed in an IoT policy: it applies to the principal it is attached to"
    )]
    PrincipalNotAllowed(&'static str),
    #[error("\"{0}\" is required")]
    Missing(&'static str),
    #[error("expected {0}")]
    WrongType(&'static str),
    #[error("must not be empty")]
    Empty,
    #[error(
        "Version \"{0}\" is not supported; use \"2012-10-17\" (or \"2008-10-17\", which has no policy variables)"
    )]
    UnsupportedVersion(String),
    #[error("Effect \"{0}\" must be \"Allow\" or \"Deny\"")]
    InvalidEffect(String),
    #[error("\"{0}\" and \"{1}\" cannot both be given")]
    Conflict(&'static str, &'static str),
    #[error("one of \"{0}\" or \"{1}\" is required")]
    MissingOneOf(&'static str, &'static str),
    #[error("Sid \"{0}\" is used by more than one statement")]
    DuplicateSid(String),
    #[error("action \"{0}\" is not \"*\" or \"<service>:<action>\" (for example \"iot:Publish\")")]
    InvalidAction(String),
    #[error(
        "resource \"{0}\" is not \"*\" or an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)"
    )]
    InvalidResource(String),
    #[error("unknown condition operator \"{0}\"")]
    UnknownOperator(String),
    #[error("condition operator \"{operator}\" is not valid: {reason}")]
    InvalidOperator {
        operator: String,
        reason: &'static str,
    },
    #[error("a condition key must not be empty")]
    EmptyConditionKey,
    #[error("\"{value}\" is not valid for {operator}: {reason}")]
    InvalidConditionValue {
        operator: String,
        value: String,
        reason: &'static str,
    },
    #[error("policy variable \"{variable}\" is not valid: {reason}")]
    InvalidVariable {
        variable: String,
        reason: &'static str,
    },
}
