//! Where a client puts its custom-authentication credentials: the MQTT CONNECT username's
//! query, or the headers and query of an HTTP request (a publish over HTTPS, or the WebSocket
//! upgrade of MQTT over WSS).
//!
//! Parsing is tolerant of what real clients send and strict about limits:
//!
//! - The username is `<user>?<query>`; only the first `?` separates. The query is split on `&`
//!   alone, so the AWS Device SDKs' `Metadata=(CRTVersion=...;IoTSDKFeature=F/5,G/A)` with its
//!   unencoded `(`, `;`, `,` and `/` is one (ignored) parameter. Unknown parameters are kept
//!   (the token's name is only known once the authorizer is) and otherwise ignored.
//! - Names and values are percent-decoded; a `%` not followed by two hex digits stays as it is
//!   (as Python's `urllib.parse.unquote` does). A raw `+` stays `+`: AWS SDKs quote `+` as
//!   `%2B`, and a base64 signature or a token never means a space where a `+` is.
//! - `x-amz-customauthorizer-name` and `x-amz-customauthorizer-signature` are checked here
//!   (1–128 characters of `[A-Za-z0-9_=,@-]`; at most 2560 characters of
//!   `[A-Za-z0-9+/]+={0,2}`), the token (at most 6144 characters) when it is asked for by the
//!   authorizer's `tokenKeyName`. A known parameter given twice with different values is an
//!   error (which one would count is ambiguous); the same value twice is not.
//! - HTTP header names compare without regard to ASCII case, query names with it. A
//!   parameter may be in a header or in the query; both with different values is an error.
//! - The part of the username before `?` is returned as sent, not decoded.

use std::borrow::Cow;
use std::fmt;

use super::signature::{SignatureError, check_signature_format};

/// The parameter naming the authorizer.
pub const AUTHORIZER_NAME_PARAM: &str = "x-amz-customauthorizer-name";
/// The parameter carrying the token's signature.
pub const SIGNATURE_PARAM: &str = "x-amz-customauthorizer-signature";
/// AWS's limit on a token, in characters.
pub const MAX_TOKEN_CHARS: usize = 6144;
/// MQTT's limit on a string, the username.
pub const MAX_USERNAME_BYTES: usize = 65535;
/// AWS's limit on an authorizer name.
pub const MAX_AUTHORIZER_NAME_CHARS: usize = 128;

/// Why presented credentials are refused before any authorizer is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the MQTT username is {length} bytes; at most {MAX_USERNAME_BYTES} are allowed")]
    UsernameTooLong { length: usize },
    #[error("the authorizer name {0}")]
    InvalidAuthorizerName(NameProblem),
    #[error("x-amz-customauthorizer-signature: {0}")]
    InvalidSignature(SignatureError),
    #[error("the token is empty")]
    EmptyToken,
    #[error("the token is {length} characters; at most {MAX_TOKEN_CHARS} are allowed")]
    TokenTooLong { length: usize },
    #[error("{parameter} is not UTF-8 once percent-decoded")]
    NotUtf8 { parameter: String },
    #[error("{parameter} is given more than once, with different values")]
    Conflicting { parameter: String },
}

/// What is wrong with an authorizer name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("is empty")]
    Empty,
    #[error("is {0} characters; at most {MAX_AUTHORIZER_NAME_CHARS} are allowed")]
    TooLong(usize),
    #[error("contains {0:?}; only letters, digits and `_=,@-` are allowed")]
    BadCharacter(char),
}

/// Checks AWS's rule for authorizer names, `[\w=,@-]+` of 1–128 characters (`\w` being
/// ASCII letters, digits and `_`).
pub fn check_authorizer_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "_=,@-".contains(c)))
    {
        return Err(NameProblem::BadCharacter(c));
    }
    // Only ASCII is left, so bytes are characters.
    if name.len() > MAX_AUTHORIZER_NAME_CHARS {
        return Err(NameProblem::TooLong(name.len()));
    }
    Ok(())
}

/// Custom-authentication parameters as one place presented them. `Debug` shows names only:
/// values may be tokens or signatures.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CustomAuthParams {
    params: Vec<Param>,
    authorizer_name: Option<String>,
    signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    name: String,
    /// Percent-decoded; may be any bytes until a known parameter needs it as text.
    value: Vec<u8>,
    /// Header names compare without regard to ASCII case.
    from_header: bool,
}

impl fmt::Debug for CustomAuthParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomAuthParams")
            .field(
                "names",
                &self.params.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .field("authorizer_name", &self.authorizer_name)
            .finish_non_exhaustive()
    }
}

impl Param {
    fn is_named(&self, name: &str) -> bool {
        if self.from_header {
            self.name.eq_ignore_ascii_case(name)
        } else {
            self.name == name
        }
    }
}

/// An MQTT CONNECT username split into the user proper and its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUsername {
    /// Before the first `?` (all of it when there is none), as sent; often empty (the AWS
    /// SDKs send `?SDK=...` when no username is set).
    pub user: String,
    pub params: CustomAuthParams,
}

impl MqttUsername {
    /// Parses a CONNECT username.
    pub fn parse(username: &str) -> Result<MqttUsername, CredentialError> {
        if username.len() > MAX_USERNAME_BYTES {
            return Err(CredentialError::UsernameTooLong {
                length: username.len(),
            });
        }
        let (user, query) = match username.split_once('?') {
            Some((user, query)) => (user, query),
            None => (username, ""),
        };
        Ok(MqttUsername {
            user: user.to_owned(),
            params: CustomAuthParams::new(query_params(query).collect())?,
        })
    }
}

impl CustomAuthParams {
    /// The parameters of an HTTP request (an HTTPS publish or a WebSocket upgrade): its
    /// headers as received and its raw query string (without `?`, still percent-encoded).
    pub fn from_http(
        headers: &[(&str, &str)],
        query: &str,
    ) -> Result<CustomAuthParams, CredentialError> {
        let from_headers = headers.iter().map(|(name, value)| Param {
            name: (*name).to_owned(),
            value: value.as_bytes().to_vec(),
            from_header: true,
        });
        CustomAuthParams::new(from_headers.chain(query_params(query)).collect())
    }

    fn new(params: Vec<Param>) -> Result<CustomAuthParams, CredentialError> {
        let mut found = CustomAuthParams {
            params,
            authorizer_name: None,
            signature: None,
        };
        if let Some(name) = found.text(AUTHORIZER_NAME_PARAM)? {
            check_authorizer_name(name).map_err(CredentialError::InvalidAuthorizerName)?;
            found.authorizer_name = Some(name.to_owned());
        }
        if let Some(signature) = found.text(SIGNATURE_PARAM)? {
            check_signature_format(signature).map_err(CredentialError::InvalidSignature)?;
            found.signature = Some(signature.to_owned());
        }
        Ok(found)
    }

    /// `x-amz-customauthorizer-name`, checked; `None` means the default authorizer.
    pub fn authorizer_name(&self) -> Option<&str> {
        self.authorizer_name.as_deref()
    }

    /// `x-amz-customauthorizer-signature`, percent-decoded and of the right form (not yet
    /// verified).
    pub fn signature(&self) -> Option<&str> {
        self.signature.as_deref()
    }

    /// The token under the authorizer's `tokenKeyName`, checked against AWS's limits.
    pub fn token(&self, token_key_name: &str) -> Result<Option<&str>, CredentialError> {
        let Some(token) = self.text(token_key_name)? else {
            return Ok(None);
        };
        if token.is_empty() {
            return Err(CredentialError::EmptyToken);
        }
        let length = token.chars().count();
        if length > MAX_TOKEN_CHARS {
            return Err(CredentialError::TokenTooLong { length });
        }
        Ok(Some(token))
    }

    /// Any parameter's decoded value as text (the first, if it is given more than once).
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.params
            .iter()
            .find(|p| p.is_named(name))
            .map(|p| String::from_utf8_lossy(&p.value))
    }

    /// The one value of `name`, as text.
    fn text(&self, name: &str) -> Result<Option<&str>, CredentialError> {
        let mut values = self.params.iter().filter(|p| p.is_named(name));
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.any(|p| p.value != first.value) {
            return Err(CredentialError::Conflicting {
                parameter: name.to_owned(),
            });
        }
        std::str::from_utf8(&first.value)
            .map(Some)
            .map_err(|_| CredentialError::NotUtf8 {
                parameter: name.to_owned(),
            })
    }
}

/// `a=1&b=2` split on `&` (never `;`), each side of the first `=` percent-decoded; empty
/// pieces skipped, a piece without `=` a name with an empty value.
fn query_params(query: &str) -> impl Iterator<Item = Param> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|piece| {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        Param {
            name: String::from_utf8_lossy(&percent_decode(name)).into_owned(),
            value: percent_decode(value),
            from_header: false,
        }
    })
}

/// `%XX` to its byte; anything else, a malformed escape included, as it is; `+` stays `+`.
fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) => hex_value(high).zip(hex_value(low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}
