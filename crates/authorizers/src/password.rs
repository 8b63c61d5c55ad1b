//! The `password` built-in authorizer function.

use std::sync::Arc;

use ferrocore_identity::custom_auth::AuthorizerFunction;

use crate::FunctionContext;

/// Builds a `password` function from its options.
pub fn build(
    _options: &toml::Table,
    _context: &FunctionContext,
) -> Result<Arc<dyn AuthorizerFunction>, String> {
    Err("the `password` kind is not available yet".into())
}
