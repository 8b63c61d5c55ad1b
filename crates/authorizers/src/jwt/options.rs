//! The `jwt` kind's options, read from its `[[authorizer_function]]` table and checked
//! without touching the network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr as _;
use std::time::Duration;

use ferrocore_identity::custom_auth::HttpUrl;
use ferrocore_identity::registry::validate_policy_name;
use jsonwebtoken::Algorithm;

/// The longest `leeway` accepted.
const MAX_LEEWAY: Duration = Duration::from_secs(300);
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const OPTIONS: &[&str] = &[
    "issuer",
    "jwks_url",
    "audience",
    "algorithms",
    "leeway",
    "principal_claim",
    "roles_claim",
    "default_policies",
    "role_policies",
    "allow_http",
];

/// Where the identity provider's keys are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeySource {
    /// OIDC discovery: this `<issuer>/.well-known/openid-configuration` names the `jwks_uri`.
    Discovery(HttpUrl),
    /// `jwks_url`: the JWKS itself.
    Jwks(HttpUrl),
}

#[derive(Debug, Clone)]
pub(super) struct JwtOptions {
    /// Tokens' `iss` must equal it.
    pub issuer: String,
    pub keys: KeySource,
    /// A token's `aud` must contain one of these.
    pub audience: Vec<String>,
    /// Signature algorithms accepted (never `none` nor HS*).
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    /// The claim (or dotted path) the principal id comes from.
    pub principal_claim: String,
    /// The claim (or dotted path) holding the roles.
    pub roles_claim: Option<String>,
    pub default_policies: Vec<String>,
    pub role_policies: BTreeMap<String, Vec<String>>,
    /// Plain `http://` to loopback hosts allowed (issuer, JWKS and a discovered `jwks_uri`).
    pub allow_http: bool,
}

impl JwtOptions {
    /// Reads and checks `table`; the error names the option to fix.
    pub(super) fn parse(table: &toml::Table) -> Result<JwtOptions, String> {
        if let Some(unknown) = table.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(format!(
                "unknown option `{unknown}`; the jwt kind takes {}",
                OPTIONS.join(", ")
            ));
        }
        let allow_http = match table.get("allow_http") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => return Err("`allow_http` must be true or false".into()),
        };
        let issuer = string(table, "issuer")?.ok_or("`issuer` is required")?;
        let keys = match string(table, "jwks_url")? {
            Some(url) => KeySource::Jwks(url_rule("jwks_url", &url, allow_http)?),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                KeySource::Discovery(url_rule("issuer", &discovery, allow_http)?)
            }
        };
        let audience = strings(table, "audience")?.ok_or("`audience` is required")?;
        if audience.is_empty() || audience.iter().any(String::is_empty) {
            return Err("`audience` must name at least one audience, none empty".into());
        }
        let algorithms = match strings(table, "algorithms")? {
            None => vec![Algorithm::RS256],
            Some(names) if names.is_empty() => {
                return Err("`algorithms` must name at least one algorithm".into());
            }
            Some(names) => names
                .iter()
                .map(|name| algorithm(name))
                .collect::<Result<_, _>>()?,
        };
        let leeway = match table.get("leeway") {
            None => DEFAULT_LEEWAY,
            Some(value) => leeway(value)?,
        };
        let principal_claim = string(table, "principal_claim")?.unwrap_or_else(|| "sub".into());
        if principal_claim.is_empty() {
            return Err("`principal_claim` must not be empty".into());
        }
        let roles_claim = string(table, "roles_claim")?;
        if roles_claim.as_deref() == Some("") {
            return Err("`roles_claim` must not be empty".into());
        }
        let default_policies = policy_names(table.get("default_policies"), "default_policies")?;
        let role_policies = match table.get("role_policies") {
            None => BTreeMap::new(),
            Some(toml::Value::Table(roles)) => roles
                .iter()
                .map(|(role, names)| {
                    let option = format!("role_policies.{role}");
                    Ok((role.clone(), policy_names(Some(names), &option)?))
                })
                .collect::<Result<_, String>>()?,
            Some(_) => {
                return Err(
                    "`role_policies` must be a table of role = [\"PolicyName\", ...]".into(),
                );
            }
        };
        if !role_policies.is_empty() && roles_claim.is_none() {
            return Err("`role_policies` needs `roles_claim`, the claim holding the roles".into());
        }
        Ok(JwtOptions {
            issuer,
            keys,
            audience,
            algorithms,
            leeway,
            principal_claim,
            roles_claim,
            default_policies,
            role_policies,
            allow_http,
        })
    }
}

/// `url` (the value of option `option`, or a URL derived from it) if it may be fetched:
/// `https://`, or `http://` to a loopback host when `allow_http` is set.
pub(super) fn url_rule(option: &str, url: &str, allow_http: bool) -> Result<HttpUrl, String> {
    let parsed = HttpUrl::parse(url).map_err(|e| format!("`{option}` ({url}): {e}"))?;
    if parsed.is_https() {
        return Ok(parsed);
    }
    if !allow_http {
        return Err(format!(
            "`{option}` ({url}) is plain http://; use https://, or set allow_http = true for an \
             identity provider on this machine (loopback hosts only)"
        ));
    }
    let host = parsed.host();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "`{option}` ({url}) is plain http:// to {host}, which is not a loopback host; \
             allow_http only permits localhost, 127.0.0.0/8 and ::1: use https://"
        ));
    }
    Ok(parsed)
}

fn string(table: &toml::Table, option: &str) -> Result<Option<String>, String> {
    match table.get(option) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{option}` must be a string")),
    }
}

/// A string or a list of strings.
fn strings(table: &toml::Table, option: &str) -> Result<Option<Vec<String>>, String> {
    table
        .get(option)
        .map(|value| string_list(value, option))
        .transpose()
}

fn string_list(value: &toml::Value, option: &str) -> Result<Vec<String>, String> {
    let wrong = || format!("`{option}` must be a string or a list of strings");
    match value {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect(),
        _ => Err(wrong()),
    }
}

fn policy_names(value: Option<&toml::Value>, option: &str) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let names = string_list(value, option)?;
    for name in &names {
        validate_policy_name(name).map_err(|e| format!("`{option}`: {e}"))?;
    }
    Ok(names)
}

/// An accepted signature algorithm: RS*, PS*, ES256, ES384 or EdDSA.
fn algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("`algorithms`: `none` (unsigned tokens) is never accepted".into());
    }
    let algorithm = Algorithm::from_str(name).map_err(|_| {
        format!("`algorithms`: unknown algorithm `{name}`; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA")
    })?;
    if matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(format!(
            "`algorithms`: {name} is refused: HMAC keys are shared secrets, which an identity \
             provider cannot publish, and accepting them invites key confusion"
        ));
    }
    Ok(algorithm)
}

/// `"30s"`, `"2m"` or a number of seconds; at most [`MAX_LEEWAY`].
fn leeway(value: &toml::Value) -> Result<Duration, String> {
    let wrong = || "`leeway` must be a duration such as \"30s\" or \"2m\" (at most 5m)".to_owned();
    let seconds = match value {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| wrong())?,
        toml::Value::String(s) => {
            let s = s.trim();
            let (number, factor) = if let Some(n) = s.strip_suffix('m') {
                (n, 60)
            } else {
                (s.strip_suffix('s').unwrap_or(s), 1)
            };
            let n: u64 = number.trim().parse().map_err(|_| wrong())?;
            n.checked_mul(factor).ok_or_else(wrong)?
        }
        _ => return Err(wrong()),
    };
    let leeway = Duration::from_secs(seconds);
    if leeway > MAX_LEEWAY {
        return Err(wrong());
    }
    Ok(leeway)
}
