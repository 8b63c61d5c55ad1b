//! Ferrocore's built-in custom authorizer functions, named `ferrocore:function/<name>` by an
//! authorizer's `authorizerFunctionArn` and declared in the server's configuration:
//!
//! ```toml
//! [[authorizer_function]]
//! name = "corp-idp"   # authorizerFunctionArn = "ferrocore:function/corp-idp"
//! kind = "jwt"        # jwt | password | wasm
//! # ... the kind's own keys
//! ```
//!
//! - [`jwt`]: OIDC/JWT bearer tokens validated against an identity provider's keys.
//! - [`password`]: usernames and passwords (argon2id, and Mosquitto password files and ACLs).
//! - [`wasm`]: a WebAssembly module run in process with fuel and memory limits.
//!
//! Each is an [`AuthorizerFunction`]: it receives AWS's authorizer request JSON and answers
//! with AWS's response JSON, validated by the invoker like any other answer.

use std::path::PathBuf;
use std::sync::Arc;

use ferrocore_identity::custom_auth::AuthorizerFunction;
use ferrocore_identity::registry::Registry;

pub mod jwt;
pub mod password;
pub mod wasm;

/// What a built-in function may use besides its own options.
#[derive(Clone)]
pub struct FunctionContext {
    /// The account's registry (named policies, for role mappings).
    pub registry: Arc<Registry>,
    /// Relative paths among the options are relative to this (the configuration file's
    /// directory).
    pub base_dir: PathBuf,
}

/// The kinds [`build`] knows.
pub const KINDS: &[&str] = &["jwt", "password", "wasm"];

/// Builds the function of kind `kind` from its `options` (the `[[authorizer_function]]`
/// table without `name` and `kind`). The error is one line naming the option to fix.
pub fn build(
    kind: &str,
    options: &toml::Table,
    context: &FunctionContext,
) -> Result<Arc<dyn AuthorizerFunction>, String> {
    match kind {
        "jwt" => jwt::build(options, context),
        "password" => password::build(options, context),
        "wasm" => wasm::build(options, context),
        other => Err(format!(
            "unknown kind `{other}`; use one of {}",
            KINDS.join(", ")
        )),
    }
}
