//! Custom authorizers in the registry: the authorizer resources and the account's default
//! authorizer, with AWS IoT's control-plane rules (CreateAuthorizer, DescribeAuthorizer,
//! ListAuthorizers, UpdateAuthorizer, DeleteAuthorizer, SetDefaultAuthorizer,
//! DescribeDefaultAuthorizer, ClearDefaultAuthorizer). Running an authorizer (reading
//! credentials, verifying signatures, calling its function) is not here.
//!
//! **Naming the function.** `authorizerFunctionArn` takes one of
//! - an `http://` or `https://` URL: a webhook that receives AWS's authorizer request JSON
//!   (the event a Lambda authorizer gets) in a POST and answers with AWS's response JSON, so an
//!   existing Lambda authorizer runs behind a thin HTTP wrapper;
//! - `ferrocore:function/<name>` (`<name>` of `[a-zA-Z0-9_-]`, 1 to 128): a built-in authorizer
//!   function (JWT/OIDC, username/password, WASM) declared under that name in the server's
//!   configuration. The configuration is not the registry's: a name that is not declared is
//!   accepted here and refused when a device is authenticated;
//! - a Lambda function ARN (`arn:<partition>:lambda:<region>:<account>:function:<name>`, with
//!   an optional version or alias): stored for compatibility and refused when a device is
//!   authenticated, since there is no Lambda here. Decision: accepted rather than refused at
//!   create, so scripts, templates and test suites written for AWS create their authorizers
//!   unchanged (an authorizer is INACTIVE until activated) and the function is then pointed at a
//!   webhook with UpdateAuthorizer.
//!
//! Anything else is refused with an InvalidRequestException saying what to write.
//!
//! AWS's rules kept (observed answers of AWS where the API reference is silent):
//! - an authorizer created without `status` is INACTIVE;
//! - with signing enabled (the default) `tokenKeyName` and one or two `tokenSigningPublicKeys`
//!   are required; with `signingDisabled` no keys may be given; `signingDisabled` cannot change
//!   after creation;
//! - keys are what [`ParsedKey::from_pem`] takes (one PEM `PUBLIC KEY`, as `openssl pkey
//!   -pubout` writes it, of an RSA key of 2048 to 8192 bits); text before the PEM block is
//!   ignored and the value is stored as given;
//! - UpdateAuthorizer merges `tokenSigningPublicKeys` by key name (a key named again is
//!   replaced; others stay) and the result must still have one or two keys;
//! - an ACTIVE authorizer cannot be deleted (InvalidRequestException: deactivate it first),
//!   nor the default authorizer (DeleteConflictException);
//! - SetDefaultAuthorizer takes an INACTIVE authorizer too; naming the authorizer that is
//!   already the default is a ResourceAlreadyExistsException; DescribeDefaultAuthorizer and
//!   ClearDefaultAuthorizer without a default are ResourceNotFoundExceptions;
//! - ListAuthorizers pages by creation date, newest first unless `isAscendingOrder`.
//!
//! At most [`MAX_AUTHORIZERS`] authorizers (AWS's quota; LimitExceededException). Every change
//! is a [`Change::Authorizer`] or [`Change::DefaultAuthorizer`], so caches of authorizer
//! results and open connections can react to an update, deactivation or deletion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::certificates::page_by_creation;
use super::{Change, Ctx, Empty, MarkerPage, RegistryError, RegistryState, Tag, is_name};
use crate::custom_auth::ParsedKey;

// ---------------------------------------------------------------------------------------------
// Stored records

/// Whether an authorizer may authenticate devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizerStatus {
    Active,
    Inactive,
}

/// A custom authorizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerRecord {
    pub name: String,
    /// `authorizerFunctionArn` as given; see [`AuthorizerRecord::function`].
    pub function_arn: String,
    pub token_key_name: Option<String>,
    /// Key name -> PEM as given; empty when signing is disabled.
    pub token_signing_public_keys: BTreeMap<String, String>,
    pub status: AuthorizerStatus,
    pub signing_disabled: bool,
    pub enable_caching_for_http: bool,
    pub creation_date_ms: i64,
    pub last_modified_date_ms: i64,
}

impl AuthorizerRecord {
    /// What runs this authorizer. A stored record always parses (it was validated).
    pub fn function(&self) -> Result<AuthorizerFunction<'_>, RegistryError> {
        AuthorizerFunction::parse(&self.function_arn)
    }
}

/// What an `authorizerFunctionArn` names (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerFunction<'a> {
    /// An `http://` or `https://` URL.
    Webhook(&'a str),
    /// `ferrocore:function/<name>`: the name.
    BuiltIn(&'a str),
    /// A Lambda function ARN: stored, never invoked.
    Lambda(&'a str),
}

/// The prefix of a built-in authorizer function's name.
pub const BUILT_IN_FUNCTION_PREFIX: &str = "ferrocore:function/";

/// Authorizers an account may have (AWS's quota).
pub const MAX_AUTHORIZERS: usize = 10;
/// Longest authorizer name, token key name and signing key name.
pub const MAX_AUTHORIZER_NAME_LEN: usize = 128;
/// Longest `authorizerFunctionArn` (the model's).
pub const MAX_FUNCTION_ARN_LEN: usize = 2048;
/// Token signing keys of an authorizer with signing enabled.
pub const MAX_SIGNING_KEYS: usize = 2;
/// The status of an authorizer created without one (AWS's).
pub const DEFAULT_AUTHORIZER_STATUS: AuthorizerStatus = AuthorizerStatus::Inactive;

impl<'a> AuthorizerFunction<'a> {
    /// Parses an `authorizerFunctionArn`; the error says what to write.
    pub fn parse(arn: &'a str) -> Result<AuthorizerFunction<'a>, RegistryError> {
        let shown = || arn.chars().take(200).collect::<String>();
        let refuse = |why: &str| {
            RegistryError::invalid(format!(
                "authorizerFunctionArn '{}' is invalid: {why}. Write the http:// or https:// URL \
                 of a webhook, {BUILT_IN_FUNCTION_PREFIX}<name> for a built-in authorizer \
                 function declared in the server's configuration, or a Lambda function ARN \
                 (stored for compatibility; Lambda functions cannot be invoked here).",
                shown()
            ))
        };
        if arn.len() > MAX_FUNCTION_ARN_LEN {
            return Err(refuse(&format!(
                "it is longer than {MAX_FUNCTION_ARN_LEN} characters"
            )));
        }
        if arn.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("it contains white space or control characters"));
        }
        if let Some(rest) = arn
            .strip_prefix("https://")
            .or_else(|| arn.strip_prefix("http://"))
        {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            if host.is_empty() || host.starts_with(':') {
                return Err(refuse("the URL has no host"));
            }
            if arn.contains('#') {
                return Err(refuse("a webhook URL cannot have a fragment (#...)"));
            }
            return Ok(AuthorizerFunction::Webhook(arn));
        }
        if let Some(name) = arn.strip_prefix(BUILT_IN_FUNCTION_PREFIX) {
            return if is_name(name, MAX_AUTHORIZER_NAME_LEN, b"_-") {
                Ok(AuthorizerFunction::BuiltIn(name))
            } else {
                Err(refuse(&format!(
                    "a built-in function's name must be 1 to {MAX_AUTHORIZER_NAME_LEN} \
                     characters of a-z, A-Z, 0-9, _ and -"
                )))
            };
        }
        if arn.starts_with("arn:") {
            return if is_lambda_arn(arn) {
                Ok(AuthorizerFunction::Lambda(arn))
            } else {
                Err(refuse("it is not a Lambda function ARN"))
            };
        }
        Err(refuse("it names no kind of authorizer function"))
    }
}

/// `arn:<partition>:lambda:<region>:<12-digit account>:function:<name>[:<version or alias>]`.
fn is_lambda_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let [
        "arn",
        partition,
        "lambda",
        region,
        account,
        "function",
        name,
        qualifier @ ..,
    ] = parts.as_slice()
    else {
        return false;
    };
    partition.starts_with("aws")
        && is_name(partition, 32, b"-")
        && is_name(region, 32, b"-")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && is_name(name, 64, b"_-")
        && match qualifier {
            [] => true,
            [q] => is_name(q, 128, b"_-$"),
            _ => false,
        }
}

// ---------------------------------------------------------------------------------------------
// Operations: requests and answers (AWS's JSON member names)

/// `CreateAuthorizer` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateAuthorizerRequest {
    #[serde(skip)]
    pub authorizer_name: String,
    pub authorizer_function_arn: Option<String>,
    pub token_key_name: Option<String>,
    pub token_signing_public_keys: Option<BTreeMap<String, String>>,
    pub status: Option<AuthorizerStatus>,
    /// Accepted and ignored (tagging is not served yet).
    pub tags: Option<Vec<Tag>>,
    pub signing_disabled: Option<bool>,
    pub enable_caching_for_http: Option<bool>,
}

/// `UpdateAuthorizer` (the name comes from the path): the members given change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateAuthorizerRequest {
    #[serde(skip)]
    pub authorizer_name: String,
    pub authorizer_function_arn: Option<String>,
    pub token_key_name: Option<String>,
    pub token_signing_public_keys: Option<BTreeMap<String, String>>,
    pub status: Option<AuthorizerStatus>,
    pub enable_caching_for_http: Option<bool>,
    /// Not a member of AWS's request: read only to refuse it, since it cannot change.
    pub signing_disabled: Option<bool>,
}

/// `{authorizerName, authorizerArn}`: what Create, Update and SetDefault answer and
/// ListAuthorizers lists (the model's `AuthorizerSummary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerSummary {
    pub authorizer_name: String,
    pub authorizer_arn: String,
}

impl AuthorizerSummary {
    fn of(ctx: &Ctx, name: &str) -> Self {
        AuthorizerSummary {
            authorizer_name: name.to_owned(),
            authorizer_arn: authorizer_arn(ctx, name),
        }
    }
}

/// The model's `AuthorizerDescription`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerDescription {
    pub authorizer_name: String,
    pub authorizer_arn: String,
    pub authorizer_function_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_key_name: Option<String>,
    /// Absent (AWS: null) when signing is disabled.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub token_signing_public_keys: BTreeMap<String, String>,
    pub status: AuthorizerStatus,
    pub creation_date: f64,
    pub last_modified_date: f64,
    pub signing_disabled: bool,
    pub enable_caching_for_http: bool,
}

impl AuthorizerDescription {
    fn of(ctx: &Ctx, a: &AuthorizerRecord) -> Self {
        AuthorizerDescription {
            authorizer_name: a.name.clone(),
            authorizer_arn: authorizer_arn(ctx, &a.name),
            authorizer_function_arn: a.function_arn.clone(),
            token_key_name: a.token_key_name.clone(),
            token_signing_public_keys: a.token_signing_public_keys.clone(),
            status: a.status,
            creation_date: super::millis_to_seconds(a.creation_date_ms),
            last_modified_date: super::millis_to_seconds(a.last_modified_date_ms),
            signing_disabled: a.signing_disabled,
            enable_caching_for_http: a.enable_caching_for_http,
        }
    }
}

/// `DescribeAuthorizer` and `DescribeDefaultAuthorizer`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeAuthorizerResponse {
    pub authorizer_description: AuthorizerDescription,
}

/// `ListAuthorizers`' query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListAuthorizersRequest {
    #[serde(rename = "pageSize")]
    pub page_size: Option<usize>,
    pub marker: Option<String>,
    #[serde(rename = "isAscendingOrder", default)]
    pub ascending: bool,
    pub status: Option<AuthorizerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAuthorizersResponse {
    pub authorizers: Vec<AuthorizerSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// `SetDefaultAuthorizer`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetDefaultAuthorizerRequest {
    pub authorizer_name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Validation and lookups

pub fn authorizer_arn(ctx: &Ctx, name: &str) -> String {
    ctx.arns.arn(&format!("authorizer/{name}"))
}

/// Authorizer names: `[\w=,@-]{1,128}` (`\w` being ASCII letters, digits and `_`).
pub fn validate_authorizer_name(name: &str) -> Result<(), RegistryError> {
    if is_name(name, MAX_AUTHORIZER_NAME_LEN, b"_=,@-") {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "Authorizer name '{}' is invalid: it must be 1 to {MAX_AUTHORIZER_NAME_LEN} \
             characters of a-z, A-Z, 0-9 and _=,@-",
            name.chars().take(200).collect::<String>()
        )))
    }
}

/// `tokenKeyName`: `[a-zA-Z0-9_-]{1,128}`.
fn validate_token_key_name(name: &str) -> Result<(), RegistryError> {
    if is_name(name, MAX_AUTHORIZER_NAME_LEN, b"_-") {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "tokenKeyName '{}' is invalid: it must be 1 to {MAX_AUTHORIZER_NAME_LEN} characters \
             of a-z, A-Z, 0-9, _ and -",
            name.chars().take(200).collect::<String>()
        )))
    }
}

/// Checks each key name and PEM of `keys`, a `tokenSigningPublicKeys` given for authorizer
/// `name`.
fn validate_signing_keys(name: &str, keys: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    for (key_name, pem) in keys {
        if !is_name(key_name, MAX_AUTHORIZER_NAME_LEN, b":_-") {
            return Err(RegistryError::invalid(format!(
                "tokenSigningPublicKeys: key name '{}' is invalid: it must be 1 to \
                 {MAX_AUTHORIZER_NAME_LEN} characters of a-z, A-Z, 0-9 and :_-",
                key_name.chars().take(200).collect::<String>()
            )));
        }
        ParsedKey::from_pem(pem).map_err(|why| {
            RegistryError::invalid(format!(
                "Authorizer {name}: public key {key_name} is not a valid token signing key: \
                 {why}."
            ))
        })?;
    }
    Ok(())
}

/// The number of signing keys an authorizer with signing enabled ends up with must be 1 or 2.
fn check_signing_key_count(name: &str, count: usize) -> Result<(), RegistryError> {
    if (1..=MAX_SIGNING_KEYS).contains(&count) {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "Authorizer {name} has signing enabled, so it needs one or two \
             tokenSigningPublicKeys (two allow a rotation); it would have {count}."
        )))
    }
}

fn not_found(name: &str) -> RegistryError {
    RegistryError::not_found(format!("Authorizer {name} not found."))
}

fn no_default() -> RegistryError {
    RegistryError::not_found("No default authorizer is set (SetDefaultAuthorizer sets one).")
}

impl RegistryState {
    /// The authorizer called `name`.
    pub fn authorizer(&self, name: &str) -> Option<&AuthorizerRecord> {
        self.authorizers.get(name)
    }

    /// The account's default authorizer: the one a device that names none gets.
    pub fn default_authorizer(&self) -> Option<&AuthorizerRecord> {
        self.default_authorizer
            .as_deref()
            .and_then(|name| self.authorizers.get(name))
    }

    fn existing_authorizer(&self, name: &str) -> Result<&AuthorizerRecord, RegistryError> {
        validate_authorizer_name(name)?;
        self.authorizer(name).ok_or_else(|| not_found(name))
    }
}

fn put(record: AuthorizerRecord) -> Change {
    Change::Authorizer {
        name: record.name.clone(),
        new: Some(record),
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

/// `CreateAuthorizer`. Not idempotent: an existing name is refused with
/// `ResourceAlreadyExistsException`.
pub fn create_authorizer(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreateAuthorizerRequest,
) -> Result<(AuthorizerSummary, Vec<Change>), RegistryError> {
    let name = req.authorizer_name;
    validate_authorizer_name(&name)?;
    let function_arn = req
        .authorizer_function_arn
        .ok_or_else(|| RegistryError::invalid("authorizerFunctionArn is required."))?;
    AuthorizerFunction::parse(&function_arn)?;
    if let Some(token_key_name) = &req.token_key_name {
        validate_token_key_name(token_key_name)?;
    }
    let signing_disabled = req.signing_disabled.unwrap_or(false);
    let keys = req.token_signing_public_keys.unwrap_or_default();
    if signing_disabled {
        if !keys.is_empty() {
            return Err(RegistryError::invalid(format!(
                "Authorizer {name} has signingDisabled, so it takes no \
                 tokenSigningPublicKeys; leave them out or enable signing."
            )));
        }
    } else {
        if req.token_key_name.is_none() {
            return Err(RegistryError::invalid(format!(
                "Authorizer {name} has signing enabled, so tokenKeyName (the name of the \
                 header, query parameter or username parameter carrying the token) is \
                 required; set signingDisabled to true for an authorizer without signed tokens."
            )));
        }
        check_signing_key_count(&name, keys.len())?;
    }
    validate_signing_keys(&name, &keys)?;
    if state.authorizers.contains_key(&name) {
        return Err(RegistryError::already_exists(
            format!("Authorizer {name} already exists."),
            &name,
            authorizer_arn(ctx, &name),
        ));
    }
    if state.authorizers.len() >= MAX_AUTHORIZERS {
        return Err(RegistryError::LimitExceeded(format!(
            "An account has at most {MAX_AUTHORIZERS} authorizers; delete one first."
        )));
    }
    let record = AuthorizerRecord {
        name: name.clone(),
        function_arn,
        token_key_name: req.token_key_name,
        token_signing_public_keys: keys,
        status: req.status.unwrap_or(DEFAULT_AUTHORIZER_STATUS),
        signing_disabled,
        enable_caching_for_http: req.enable_caching_for_http.unwrap_or(false),
        creation_date_ms: ctx.now_ms,
        last_modified_date_ms: ctx.now_ms,
    };
    Ok((AuthorizerSummary::of(ctx, &name), vec![put(record)]))
}

/// `DescribeAuthorizer`.
pub fn describe_authorizer(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
) -> Result<DescribeAuthorizerResponse, RegistryError> {
    let a = state.existing_authorizer(name)?;
    Ok(DescribeAuthorizerResponse {
        authorizer_description: AuthorizerDescription::of(ctx, a),
    })
}

/// `ListAuthorizers`: by creation date (newest first unless `isAscendingOrder`), only those of
/// `status` if given.
pub fn list_authorizers(
    state: &RegistryState,
    ctx: &Ctx,
    req: &ListAuthorizersRequest,
) -> Result<ListAuthorizersResponse, RegistryError> {
    let items = state
        .authorizers
        .values()
        .filter(|a| req.status.is_none_or(|s| a.status == s))
        .map(|a| (a.creation_date_ms, a.name.as_str(), a));
    let page = MarkerPage {
        page_size: req.page_size,
        marker: req.marker.clone(),
        ascending: req.ascending,
    };
    let (authorizers, next_marker) = page_by_creation(items, &page)?;
    Ok(ListAuthorizersResponse {
        authorizers: authorizers
            .into_iter()
            .map(|a| AuthorizerSummary::of(ctx, &a.name))
            .collect(),
        next_marker,
    })
}

/// `UpdateAuthorizer`: sets the members given; `tokenSigningPublicKeys` are merged by key
/// name. Every update moves `lastModifiedDate`.
pub fn update_authorizer(
    state: &RegistryState,
    ctx: &Ctx,
    req: UpdateAuthorizerRequest,
) -> Result<(AuthorizerSummary, Vec<Change>), RegistryError> {
    let name = req.authorizer_name;
    let mut record = state.existing_authorizer(&name)?.clone();
    if req.signing_disabled.is_some() {
        return Err(RegistryError::invalid(format!(
            "signingDisabled cannot change after an authorizer is created; create a new \
             authorizer (and move devices or the default to it) to change it for {name}."
        )));
    }
    if let Some(function_arn) = req.authorizer_function_arn {
        AuthorizerFunction::parse(&function_arn)?;
        record.function_arn = function_arn;
    }
    if let Some(token_key_name) = req.token_key_name {
        validate_token_key_name(&token_key_name)?;
        record.token_key_name = Some(token_key_name);
    }
    if let Some(keys) = req.token_signing_public_keys {
        if record.signing_disabled {
            return Err(RegistryError::invalid(format!(
                "Authorizer {name} has signingDisabled, so it takes no tokenSigningPublicKeys."
            )));
        }
        validate_signing_keys(&name, &keys)?;
        record.token_signing_public_keys.extend(keys);
        check_signing_key_count(&name, record.token_signing_public_keys.len())?;
    }
    if let Some(status) = req.status {
        record.status = status;
    }
    if let Some(caching) = req.enable_caching_for_http {
        record.enable_caching_for_http = caching;
    }
    record.last_modified_date_ms = ctx.now_ms;
    Ok((AuthorizerSummary::of(ctx, &name), vec![put(record)]))
}

/// `DeleteAuthorizer`: only an INACTIVE authorizer that is not the default.
pub fn delete_authorizer(
    state: &RegistryState,
    _ctx: &Ctx,
    name: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let a = state.existing_authorizer(name)?;
    if a.status == AuthorizerStatus::Active {
        return Err(RegistryError::invalid(format!(
            "Authorizer {name} is ACTIVE; set its status to INACTIVE (UpdateAuthorizer) \
             before deleting it."
        )));
    }
    if state.default_authorizer.as_deref() == Some(name) {
        return Err(RegistryError::DeleteConflict(format!(
            "Authorizer {name} is the default authorizer; clear the default \
             (ClearDefaultAuthorizer) or set another before deleting it."
        )));
    }
    Ok((
        Empty {},
        vec![Change::Authorizer {
            name: name.to_owned(),
            new: None,
        }],
    ))
}

/// `SetDefaultAuthorizer`: any existing authorizer, ACTIVE or not.
pub fn set_default_authorizer(
    state: &RegistryState,
    ctx: &Ctx,
    req: SetDefaultAuthorizerRequest,
) -> Result<(AuthorizerSummary, Vec<Change>), RegistryError> {
    let name = req
        .authorizer_name
        .ok_or_else(|| RegistryError::invalid("authorizerName is required."))?;
    state.existing_authorizer(&name)?;
    if state.default_authorizer.as_deref() == Some(name.as_str()) {
        return Err(RegistryError::already_exists(
            format!("Authorizer {name} is already the default authorizer."),
            &name,
            authorizer_arn(ctx, &name),
        ));
    }
    Ok((
        AuthorizerSummary::of(ctx, &name),
        vec![Change::DefaultAuthorizer { new: Some(name) }],
    ))
}

/// `DescribeDefaultAuthorizer`.
pub fn describe_default_authorizer(
    state: &RegistryState,
    ctx: &Ctx,
) -> Result<DescribeAuthorizerResponse, RegistryError> {
    let a = state.default_authorizer().ok_or_else(no_default)?;
    Ok(DescribeAuthorizerResponse {
        authorizer_description: AuthorizerDescription::of(ctx, a),
    })
}

/// `ClearDefaultAuthorizer`.
pub fn clear_default_authorizer(
    state: &RegistryState,
    _ctx: &Ctx,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    if state.default_authorizer.is_none() {
        return Err(no_default());
    }
    Ok((Empty {}, vec![Change::DefaultAuthorizer { new: None }]))
}

#[cfg(test)]
mod tests;
