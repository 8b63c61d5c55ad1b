//! The `jwt` built-in authorizer function: OAuth 2.0 / OpenID Connect bearer tokens (JWTs,
//! e.g. client-credentials access tokens of Okta, Entra ID or Keycloak) checked against the
//! identity provider's published keys, and answered as an authorizer answers.
//!
//! ```toml
//! [[authorizer_function]]
//! name = "idp"
//! kind = "jwt"
//! issuer = "https://idp.example.com/"  # required; `iss` must equal it; keys by OIDC discovery
//! jwks_url = "https://.../jwks.json"   # optional: the JWKS itself, no discovery
//! audience = ["ferrocore"]             # required (string or list); `aud` must hold one
//! algorithms = ["RS256", "ES256"]      # default ["RS256"]; never none / HS*
//! leeway = "30s"                       # exp/nbf/iat leeway (default 30s, at most 5m)
//! principal_claim = "sub"              # the principal id's claim (default "sub")
//! roles_claim = "roles"                # the roles' claim (string or list; dotted path allowed)
//! default_policies = ["Base"]          # named policies every valid token gets
//! allow_http = false                   # plain http:// only to loopback and only if true
//! [authorizer_function.role_policies]  # role -> named policies
//! admin = ["FleetAdmin"]
//! ```
//!
//! **The token** is the first of: the request's `token` (the authorizer's `tokenKeyName`
//! parameter of the MQTT username or the HTTP request), an `Authorization: Bearer` header
//! (HTTP, the WebSocket upgrade), the MQTT password. Tokens over 8 KiB are refused unread.
//!
//! **Valid** means: a JWS whose header algorithm is accepted (`none` and HS* never are) and
//! equal to the algorithm pinned to the key its `kid` names (see [`keys`]), whose signature
//! verifies; `iss` equal to `issuer`; `aud` (a string or a list) holding one of `audience`;
//! `exp` present and not past, `nbf` (if any) reached and `iat` (if any) not in the future,
//! each with `leeway`; a `crit` header is refused.
//!
//! **The answer** to a valid token ([`AnswerRules::BuiltIn`](ferrocore_identity::custom_auth::AnswerRules)):
//!
//! - `principalId`: the `principal_claim` (a string or an integer; a dotted path reaches into
//!   nested objects), as is; it must be 1 to 128 printable ASCII characters other than
//!   `* $ + ? # /`, else the token is refused;
//! - `policyDocuments`: the default versions of `default_policies` and of the `role_policies`
//!   of each role in `roles_claim`, read from the registry at authentication (a name the
//!   registry lacks is logged and skipped; more than 10 policies refuse the token);
//! - `claims` (extension): the token's claims that are strings, numbers, booleans or lists of
//!   them (`scope` / `scp` split on spaces; a nested `roles_claim` under its path), within the
//!   answer's limits, for `ferrocore:Claims.<name>`;
//! - `context` (extension): `tokenAgeSeconds`, seconds since `iat` at authentication;
//! - `disconnectAfterInSeconds`: the seconds left until `exp` (at least 1, at most 86400), so
//!   the connection ends when the token expires; `refreshAfterInSeconds`: the same, at most
//!   3600.
//!
//! An invalid token is answered `isAuthenticated: false` with the principal id
//! [`UNAUTHENTICATED`], and the reason is logged (never the token). Keys that cannot be
//! fetched are a failure of the function ([`InvokeError::Unreachable`]).
//!
//! Building the function touches no network: keys are fetched on first use.

mod claims;
mod keys;
mod options;
mod token;

use std::sync::Arc;
use std::time::SystemTime;

use ferrocore_identity::custom_auth::{
    AuthorizerFunction, Clock, InvokeError, InvokeFuture, MAX_ANSWER_POLICIES, MAX_ANSWER_SECONDS,
    SystemClock, WebhookClient, WebhookOptions, is_built_in_principal_id,
};
use serde_json::{Map, Value, json};

use crate::FunctionContext;
use keys::KeyStore;
use options::JwtOptions;
use token::Refusal;

/// The principal id of a refused token's answer.
pub const UNAUTHENTICATED: &str = "unauthenticated";
/// The longest `refreshAfterInSeconds` answered.
const MAX_REFRESH_SECONDS: u64 = 3600;

/// Builds a `jwt` function from its options.
pub fn build(
    options: &toml::Table,
    context: &FunctionContext,
) -> Result<Arc<dyn AuthorizerFunction>, String> {
    let options = JwtOptions::parse(options)?;
    let registry = Arc::clone(&context.registry);
    let named: NamedPolicy = Box::new(move |name| {
        registry.read(|state| {
            state
                .policy(name)
                .ok()
                .map(|policy| policy.default_document().to_owned())
        })
    });
    Ok(Arc::new(JwtFunction::new(
        options,
        named,
        Arc::new(SystemClock),
    )))
}

/// The default version's document of a named policy, if the registry has it.
type NamedPolicy = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

struct JwtFunction {
    options: JwtOptions,
    keys: KeyStore,
    named: NamedPolicy,
}

/// Why a request gets no positive answer.
enum Rejection {
    /// The token is not valid: a negative answer.
    Refused(Refusal),
    /// The function could not decide (keys unavailable).
    Failed(InvokeError),
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Rejection::Refused(refusal)
    }
}

impl JwtFunction {
    fn new(options: JwtOptions, named: NamedPolicy, clock: Arc<dyn Clock>) -> JwtFunction {
        let keys = KeyStore::new(
            options.keys.clone(),
            options.issuer.clone(),
            options.allow_http,
            options.algorithms.clone(),
            // Loopback-only plain http is enforced by the options; the client checks again
            // where the host resolves to.
            WebhookClient::new(WebhookOptions::default()),
            clock,
        );
        JwtFunction {
            options,
            keys,
            named,
        }
    }

    async fn answer(&self, request: &Value) -> Result<Vec<u8>, InvokeError> {
        let answer = match self.authenticate(request, SystemTime::now()).await {
            Ok(answer) => answer,
            Err(Rejection::Failed(error)) => return Err(error),
            Err(Rejection::Refused(refusal)) => {
                tracing::info!(issuer = %self.options.issuer, reason = %refusal, "jwt: token refused");
                json!({"isAuthenticated": false, "principalId": UNAUTHENTICATED})
            }
        };
        Ok(answer.to_string().into_bytes())
    }

    async fn authenticate(&self, request: &Value, now: SystemTime) -> Result<Value, Rejection> {
        let token = token::find(request).ok_or(Refusal::NoToken)?;
        let header = token::header(&token, &self.options)?;
        let kid = header.kid.as_deref();
        let key = self
            .keys
            .key(kid, header.algorithm)
            .await
            .map_err(Rejection::Failed)?
            .ok_or_else(|| {
                Refusal::UnknownKey(kid.map_or_else(
                    || format!("without kid for {:?}", header.algorithm),
                    |kid| format!("{kid:?}"),
                ))
            })?;
        if key.algorithm != header.algorithm {
            return Err(Refusal::AlgorithmMismatch {
                kid: kid.unwrap_or_default().to_owned(),
                key: key.algorithm,
                token: header.algorithm,
            }
            .into());
        }
        let valid = token::verify(&token, &key.key, key.algorithm, &self.options, now)?;
        let principal_id = self.principal_id(&valid.claims)?;
        let policies = self.policies(&valid.claims)?;
        // Whole seconds, rounded down: the connection never outlives the token.
        let lifetime = (valid.seconds_left.max(1.0) as u64).clamp(1, MAX_ANSWER_SECONDS);
        let mut answer = json!({
            "isAuthenticated": true,
            "principalId": principal_id,
            "policyDocuments": policies,
            "disconnectAfterInSeconds": lifetime,
            "refreshAfterInSeconds": lifetime.min(MAX_REFRESH_SECONDS),
            "claims": claims::extension(&valid.claims, self.options.roles_claim.as_deref()),
        });
        if let Some(age) = valid.age_seconds {
            answer["context"] = json!({"tokenAgeSeconds": (age as u64).to_string()});
        }
        Ok(answer)
    }

    fn principal_id(&self, claims: &Map<String, Value>) -> Result<String, Refusal> {
        let name = &self.options.principal_claim;
        let id = match claims::lookup(claims, name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        };
        id.filter(|id| is_built_in_principal_id(id))
            .ok_or_else(|| Refusal::Principal(name.clone()))
    }

    /// The default documents of the token's named policies, in order, each once.
    fn policies(&self, claims: &Map<String, Value>) -> Result<Vec<String>, Refusal> {
        let roles = self
            .options
            .roles_claim
            .as_deref()
            .map(|path| claims::roles(claims, path))
            .unwrap_or_default();
        let mut names: Vec<&str> = Vec::new();
        let mapped = roles
            .iter()
            .filter_map(|role| self.options.role_policies.get(role))
            .flatten();
        for name in self.options.default_policies.iter().chain(mapped) {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        let documents: Vec<String> = names
            .into_iter()
            .filter_map(|name| {
                let document = (self.named)(name);
                if document.is_none() {
                    tracing::warn!(issuer = %self.options.issuer, policy = name, "jwt: a policy named in default_policies or role_policies does not exist; skipped");
                }
                document
            })
            .collect();
        if documents.len() > MAX_ANSWER_POLICIES {
            return Err(Refusal::TooManyPolicies(documents.len()));
        }
        Ok(documents)
    }
}

impl AuthorizerFunction for JwtFunction {
    fn invoke<'a>(&'a self, request: &'a Value) -> InvokeFuture<'a> {
        Box::pin(self.answer(request))
    }

    fn is_built_in(&self) -> bool {
        true
    }

    /// Changes when the provider's key ids change (a key added or removed at a fetch), so
    /// that no answer cached under the old keys is used after a key was withdrawn.
    fn generation(&self) -> u64 {
        self.keys.generation()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
