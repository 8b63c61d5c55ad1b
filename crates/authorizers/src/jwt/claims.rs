//! From a validated token's claims to what the answer carries: the principal id, the roles,
//! and the `claims` extension (`ferrocore:Claims.<name>` in policies).

use std::collections::BTreeMap;

use ferrocore_identity::custom_auth::{
    MAX_CLAIM_VALUES, MAX_EXTENSION_ENTRIES, MAX_EXTENSION_NAME_CHARS, MAX_EXTENSION_VALUE_CHARS,
};
use serde_json::{Map, Value};

/// Claims whose string value is a space-separated list (OAuth 2.0 scopes).
const SPACE_SEPARATED: &[&str] = &["scope", "scp"];

/// The claim named `path`: a top-level claim of that exact name, else (when `path` has dots)
/// the member reached through nested objects (`realm_access.roles`).
pub(super) fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let first = claims.get(parts.next()?)?;
    parts.try_fold(first, |value, part| value.as_object()?.get(part))
}

/// A claim's text values: a string or number is one value, a boolean `true`/`false`; a list
/// gives its scalar members; `scope`-like string claims are split on spaces.
fn values(name: &str, value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) if SPACE_SEPARATED.contains(&name) => {
            Some(s.split_whitespace().map(str::to_owned).collect())
        }
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|v| vec![v]),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The roles in the claim at `path`: a string, or the strings of a list.
pub(super) fn roles(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    match lookup(claims, path) {
        Some(Value::String(role)) => vec![role.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The `claims` extension: every top-level claim that is a string, number, boolean or list of
/// these, plus the roles claim under its path when that is nested. Claims beyond the answer's
/// limits (names, values, lengths) are left out, never cut.
pub(super) fn extension(
    claims: &Map<String, Value>,
    roles_claim: Option<&str>,
) -> BTreeMap<String, Vec<String>> {
    let nested_roles = roles_claim
        .filter(|path| !claims.contains_key(*path))
        .and_then(|path| Some((path, lookup(claims, path)?)));
    let mut extension = BTreeMap::new();
    let mut left_out = 0usize;
    let all = claims.iter().map(|(name, value)| (name.as_str(), value));
    for (name, value) in all.chain(nested_roles) {
        let fits = |values: &Vec<String>| {
            values.len() <= MAX_CLAIM_VALUES
                && values
                    .iter()
                    .all(|v| v.chars().count() <= MAX_EXTENSION_VALUE_CHARS)
        };
        let name_fits = (1..=MAX_EXTENSION_NAME_CHARS).contains(&name.chars().count())
            && !name.chars().any(char::is_control);
        match values(name, value).filter(fits) {
            Some(values) if name_fits && extension.len() < MAX_EXTENSION_ENTRIES => {
                extension.insert(name.to_owned(), values);
            }
            _ => left_out += 1,
        }
    }
    if left_out > 0 {
        tracing::debug!(
            left_out,
            "jwt: token claims left out of the answer (objects, or beyond its limits)"
        );
    }
    extension
}
