//! Custom authentication wired to the registry: [`RegistryAuthenticator`], the broker's
//! [`CustomAuthenticator`], runs the account's authorizers through the server's one
//! [`AuthorizerInvoker`] (shared with TestInvokeAuthorizer).
//!
//! For each CONNECT without a device certificate on a listener that accepts custom
//! authentication (see [`crate::config`]), it:
//!
//! 1. reads the credentials: the MQTT username's query (`<user>?x-amz-customauthorizer-name=..
//!    &x-amz-customauthorizer-signature=..&<tokenKeyName>=..`, the AWS Device SDKs' own
//!    `SDK=...&Version=...&Metadata=...` parameters ignored) and, for MQTT over WebSocket, the
//!    upgrade request's headers and query. Over WebSocket the upgrade request is looked at
//!    first and the username's query second, parameter by parameter (AWS accepts either);
//! 2. picks the authorizer named by `x-amz-customauthorizer-name` (refused when the SNI's domain
//!    configuration has a default authorizer and does not allow overriding it), else the
//!    domain's default authorizer, else the listener's `default_authorizer`, else the
//!    account's default authorizer (SetDefaultAuthorizer);
//! 3. takes the token under the authorizer's `tokenKeyName` and the signature, and builds AWS's
//!    authorizer request: protocols `tls` (with `serverName` when the client sent SNI), `http`
//!    (WebSocket upgrades: headers and query) and `mqtt` (username as sent, password, client
//!    id), and the connection id as `connectionMetadata.id`;
//! 4. runs it ([`AuthorizerInvoker::authorize`]: status, signature, cache, breaker, timeout)
//!    and turns the answer into a [`CustomGrant`].
//!
//! | outcome | [`CustomAuthDenied`] | CONNACK (MQTT 5 / 3.1.1) |
//! |---|---|---|
//! | `isAuthenticated: true` | (granted: `principalId`, `policyDocuments`, `disconnectAfterInSeconds`, `refreshAfterInSeconds`, and the `claims` / `context` extensions for the policies' `ferrocore:Claims.*` / `ferrocore:Context.*`) | 0x00 / 0 (if the policies allow `iot:Connect`) |
//! | `isAuthenticated: false` | `NotAuthorized` | 0x87 / 5 |
//! | malformed credentials (bad authorizer name or signature form, oversized or empty token, a parameter given twice with different values) | `NotAuthorized` | 0x87 / 5 |
//! | no authorizer named and no default, or the named one does not exist | `NotAuthorized` | 0x87 / 5 |
//! | authorizer INACTIVE; signing enabled and the token or signature missing or not verifying | `NotAuthorized` | 0x87 / 5 |
//! | the function cannot be called here (Lambda ARN, undeclared built-in, invalid name, bad URL, plain http to a non-loopback host): configuration, retrying does not help | `NotAuthorized` | 0x87 / 5 |
//! | the function failed: timeout, unreachable, non-2xx status, answer too large or invalid, no call slot free within the timeout, circuit open | `Unavailable` | 0x88 / 3 |
//!
//! `Unavailable` still refuses (fails closed) but tells the client the server is the problem,
//! so it retries later instead of concluding its credentials are wrong.
//!
//! Logs name the authorizer, the connection id and the reason; never the token, the
//! signature or the password (the reasons of [`Denial`] and [`CredentialError`] hold none).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ferrocore_broker::{
    Broker, CustomAuthAttempt, CustomAuthDenied, CustomAuthProtocol, CustomAuthenticator,
    CustomGrant, HttpUpgrade, Transport,
};
use ferrocore_identity::custom_auth::{
    AuthorizerAnswer, AuthorizerInvoker, AuthorizerRequest, CredentialError, CustomAuthParams,
    Denial, HttpContext, MqttContext, MqttUsername, TlsContext,
};
use ferrocore_identity::registry::{
    AuthorizerFunction as NamedFunction, AuthorizerRecord, Change, Registry,
};
use parking_lot::Mutex;
use tracing::debug;

/// The broker's custom authenticator: the registry's authorizers, run by `invoker`.
pub struct RegistryAuthenticator {
    registry: Arc<Registry>,
    invoker: Arc<AuthorizerInvoker>,
    /// Listener name -> the authorizer of its clients that name none.
    listener_defaults: Arc<HashMap<String, String>>,
}

impl RegistryAuthenticator {
    pub fn new(
        registry: Arc<Registry>,
        invoker: Arc<AuthorizerInvoker>,
        listener_defaults: HashMap<String, String>,
    ) -> Arc<Self> {
        Arc::new(RegistryAuthenticator {
            registry,
            invoker,
            listener_defaults: Arc::new(listener_defaults),
        })
    }

    async fn decide(
        registry: Arc<Registry>,
        invoker: Arc<AuthorizerInvoker>,
        listener_defaults: Arc<HashMap<String, String>>,
        attempt: CustomAuthAttempt,
    ) -> Result<CustomGrant, CustomAuthDenied> {
        let credentials = Credentials::read(&attempt).map_err(|error| {
            debug!(connection_id = %attempt.connection_id, %error, "custom authentication: malformed credentials");
            CustomAuthDenied::NotAuthorized(error.to_string())
        })?;
        let domain_default = crate::domains::domain_authorizer(
            &registry,
            attempt.server_name.as_deref(),
            credentials.authorizer_name(),
        )
        .map_err(|reason| {
            debug!(connection_id = %attempt.connection_id, %reason, "custom authentication refused");
            CustomAuthDenied::NotAuthorized(reason)
        })?;
        let named = credentials
            .authorizer_name()
            .or(domain_default.as_deref())
            .or_else(|| listener_defaults.get(&attempt.listener).map(String::as_str));
        let record = registry.read(|state| match named {
            Some(name) => state.authorizer(name).cloned(),
            None => state.default_authorizer().cloned(),
        });
        let Some(record) = record else {
            let denied = match named {
                Some(name) => {
                    CustomAuthDenied::NotAuthorized(format!("no authorizer named '{name}'"))
                }
                None => CustomAuthDenied::NoAuthorizer,
            };
            debug!(connection_id = %attempt.connection_id, reason = %denied, "custom authentication refused");
            return Err(denied);
        };
        let request = credentials
            .request(&attempt, &record)
            .map_err(|error| {
                debug!(connection_id = %attempt.connection_id, authorizer = %record.name, %error, "custom authentication: malformed token");
                CustomAuthDenied::NotAuthorized(error.to_string())
            })?;
        let answer = invoker
            .authorize(&record, request, credentials.signature())
            .await
            .map_err(|denial| denied(&record.name, &denial))?;
        grant(&record.name, &answer)
    }
}

impl CustomAuthenticator for RegistryAuthenticator {
    fn authenticate(
        &self,
        attempt: CustomAuthAttempt,
    ) -> Pin<Box<dyn Future<Output = Result<CustomGrant, CustomAuthDenied>> + Send>> {
        Box::pin(Self::decide(
            Arc::clone(&self.registry),
            Arc::clone(&self.invoker),
            Arc::clone(&self.listener_defaults),
            attempt,
        ))
    }
}

/// Applies every change of an authorizer (deactivated, deleted, updated) to what depends on
/// it: `invoker` forgets its cached answers and state first, then `broker` re-authenticates
/// the open connections it admitted, so their fresh calls see the new configuration instead
/// of a cached answer (an INACTIVE or deleted authorizer closes them). Replaces
/// [`AuthorizerInvoker::subscribe`] where there is a broker; runs in the registry's listener.
///
/// A change of the account's default authorizer re-authenticates the connections the
/// previous default admitted: those that named no authorizer are decided by the new default
/// (or refused when there is none); those that named it get its cached answer again.
///
/// A change of a named policy does the same for the authorizers with a built-in function,
/// whose answers carry named policies' documents (role mappings, `policies` options): their
/// connections get the policy's new default version at once, not at their next refresh.
pub fn watch_authorizers(
    registry: &Arc<Registry>,
    invoker: &Arc<AuthorizerInvoker>,
    broker: &Arc<Broker>,
) {
    let weak_registry = Arc::downgrade(registry);
    let invoker = Arc::downgrade(invoker);
    let broker = Arc::downgrade(broker);
    let previous_default = Mutex::new(
        registry.read(|state| state.default_authorizer().map(|record| record.name.clone())),
    );
    let ask_again = {
        let broker = broker.clone();
        move |name: &str| {
            if let Some(invoker) = invoker.upgrade() {
                invoker.forget(name);
            }
            if let Some(broker) = broker.upgrade() {
                broker.reauthenticate_authorizer(name);
            }
        }
    };
    registry.subscribe(Arc::new(move |changes: &[Change]| {
        let mut policy_changed = false;
        for change in changes {
            match change {
                Change::Authorizer { name, .. } => ask_again(name),
                Change::DefaultAuthorizer { new } => {
                    let previous = std::mem::replace(&mut *previous_default.lock(), new.clone());
                    if let Some(previous) = previous
                        && Some(&previous) != new.as_ref()
                    {
                        // The cached answers stay good: the authorizer itself did not change.
                        if let Some(broker) = broker.upgrade() {
                            broker.reauthenticate_authorizer(&previous);
                        }
                    }
                }
                Change::Policy { .. } => policy_changed = true,
                _ => {}
            }
        }
        if policy_changed && let Some(registry) = weak_registry.upgrade() {
            let built_in: Vec<String> = registry.read(|state| {
                state
                    .authorizers
                    .values()
                    .filter(|record| has_built_in_function(record))
                    .map(|record| record.name.clone())
                    .collect()
            });
            for name in &built_in {
                ask_again(name);
            }
        }
    }));
}

fn has_built_in_function(record: &AuthorizerRecord) -> bool {
    matches!(record.function(), Ok(NamedFunction::BuiltIn(_)))
}

/// Where a connection's custom-authentication parameters are: the WebSocket upgrade request
/// (if any) first, then the MQTT username's query.
struct Credentials {
    upgrade: Option<CustomAuthParams>,
    username: CustomAuthParams,
}

impl Credentials {
    fn read(attempt: &CustomAuthAttempt) -> Result<Credentials, CredentialError> {
        let upgrade = attempt
            .http
            .as_ref()
            .map(|upgrade| {
                let headers: Vec<(&str, &str)> = upgrade
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                CustomAuthParams::from_http(&headers, &upgrade.query)
            })
            .transpose()?;
        let username = match &attempt.username {
            Some(username) => MqttUsername::parse(username)?.params,
            None => CustomAuthParams::default(),
        };
        Ok(Credentials { upgrade, username })
    }

    fn places(&self) -> impl Iterator<Item = &CustomAuthParams> {
        self.upgrade.iter().chain(std::iter::once(&self.username))
    }

    fn authorizer_name(&self) -> Option<&str> {
        self.places().find_map(CustomAuthParams::authorizer_name)
    }

    fn signature(&self) -> Option<&str> {
        self.places().find_map(CustomAuthParams::signature)
    }

    fn token(&self, token_key_name: &str) -> Result<Option<&str>, CredentialError> {
        for place in self.places() {
            if let Some(token) = place.token(token_key_name)? {
                return Ok(Some(token));
            }
        }
        Ok(None)
    }

    /// AWS's authorizer request for `attempt` to `record`.
    fn request(
        &self,
        attempt: &CustomAuthAttempt,
        record: &AuthorizerRecord,
    ) -> Result<AuthorizerRequest, CredentialError> {
        let token = match &record.token_key_name {
            Some(key) => self.token(key)?.map(str::to_owned),
            None => None,
        };
        let over_tls = matches!(attempt.transport, Transport::Tls | Transport::WebSocketTls);
        Ok(AuthorizerRequest {
            token,
            // Set by the invoker once it has verified the signature.
            signature_verified: false,
            tls: over_tls.then(|| TlsContext {
                server_name: attempt.server_name.clone(),
            }),
            http: attempt.http.as_ref().map(http_context),
            mqtt: (attempt.protocol == CustomAuthProtocol::Mqtt).then(|| MqttContext {
                username: attempt.username.clone(),
                password: attempt.password.as_ref().map(|p| p.to_vec()),
                client_id: Some(attempt.client_id.clone()),
            }),
            connection_id: Some(attempt.connection_id.clone()),
        })
    }
}

fn http_context(upgrade: &HttpUpgrade) -> HttpContext {
    HttpContext {
        headers: upgrade.headers.clone(),
        query: upgrade.query.clone(),
    }
}

/// An authorizer's answer as the broker's grant; `isAuthenticated: false` is a denial.
fn grant(authorizer: &str, answer: &AuthorizerAnswer) -> Result<CustomGrant, CustomAuthDenied> {
    if !answer.authenticated {
        debug!(authorizer, principal = %answer.principal_id, "custom authorizer answered isAuthenticated false");
        return Err(CustomAuthDenied::NotAuthorized(format!(
            "authorizer '{authorizer}' did not authenticate the client"
        )));
    }
    Ok(CustomGrant {
        principal_id: answer.principal_id.clone(),
        policies: Arc::new(answer.policy_set()),
        disconnect_after: answer.disconnect_after,
        refresh_after: answer.refresh_after,
        authorizer: Some(authorizer.to_owned()),
        claims: answer.claims.clone(),
        context: answer.context.clone(),
    })
}

/// Why the invoker gave no answer, as the broker refuses the client (see the table above).
fn denied(authorizer: &str, denial: &Denial) -> CustomAuthDenied {
    let reason = format!("authorizer '{authorizer}': {denial}");
    if denial.is_function_failure() {
        CustomAuthDenied::Unavailable(reason)
    } else {
        CustomAuthDenied::NotAuthorized(reason)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use bytes::Bytes;
    use ferrocore_identity::custom_auth::{AnswerError, InvokeError, SignatureError};
    use ferrocore_identity::registry::AuthorizerStatus;

    use super::*;

    const SDK_METRICS: &str = "SDK=IoTDeviceSDK/Python&Platform=Unix&Metadata=(CRTVersion=0.36.1;IoTSDKVersion=1.31.0;IoTSDKFeature=F/5,G/A,I/A;IoTSDKMetricsVersion=1)";

    fn attempt(username: Option<&str>, transport: Transport) -> CustomAuthAttempt {
        CustomAuthAttempt {
            username: username.map(str::to_owned),
            password: Some(Bytes::from_static(b"pw")),
            client_id: "dev1".to_owned(),
            server_name: Some("iot.example.com".to_owned()),
            peer: "127.0.0.1:40000".parse().unwrap(),
            transport,
            listener: "legacy".to_owned(),
            http: None,
            connection_id: "c0ffee".to_owned(),
            protocol: CustomAuthProtocol::Mqtt,
        }
    }

    fn record(token_key_name: Option<&str>) -> AuthorizerRecord {
        AuthorizerRecord {
            name: "MyAuth".to_owned(),
            function_arn: "http://127.0.0.1:9/auth".to_owned(),
            token_key_name: token_key_name.map(str::to_owned),
            token_signing_public_keys: BTreeMap::new(),
            status: AuthorizerStatus::Active,
            signing_disabled: true,
            enable_caching_for_http: false,
            creation_date_ms: 0,
            last_modified_date_ms: 0,
        }
    }

    #[test]
    fn the_sdk_username_names_the_authorizer_and_passes_through_whole() {
        let username = format!("alice?x-amz-customauthorizer-name=MyAuth&{SDK_METRICS}");
        let attempt = attempt(Some(&username), Transport::Tls);
        let credentials = Credentials::read(&attempt).unwrap();
        assert_eq!(credentials.authorizer_name(), Some("MyAuth"));
        assert_eq!(credentials.signature(), None);
        let request = credentials.request(&attempt, &record(None)).unwrap();
        let event = request.to_json();
        assert_eq!(event["protocols"], serde_json::json!(["tls", "mqtt"]));
        assert_eq!(
            event["protocolData"]["tls"]["serverName"],
            "iot.example.com"
        );
        assert_eq!(event["protocolData"]["mqtt"]["username"], username.as_str());
        assert_eq!(event["protocolData"]["mqtt"]["password"], "cHc=");
        assert_eq!(event["protocolData"]["mqtt"]["clientId"], "dev1");
        assert_eq!(event["connectionMetadata"]["id"], "c0ffee");
        assert!(event.get("token").is_none());
    }

    #[test]
    fn a_signed_username_gives_token_and_signature() {
        let username = format!(
            "?x-amz-customauthorizer-name=MyAuth&x-amz-customauthorizer-signature=abc%2B/%3D&tok=tokval&{SDK_METRICS}"
        );
        let attempt = attempt(Some(&username), Transport::Tls);
        let credentials = Credentials::read(&attempt).unwrap();
        assert_eq!(credentials.signature(), Some("abc+/="));
        let request = credentials.request(&attempt, &record(Some("tok"))).unwrap();
        assert_eq!(request.token.as_deref(), Some("tokval"));
    }

    #[test]
    fn no_username_means_the_default_authorizer() {
        let credentials = Credentials::read(&attempt(None, Transport::Tls)).unwrap();
        assert_eq!(credentials.authorizer_name(), None);
    }

    #[test]
    fn websocket_upgrade_parameters_come_before_the_username() {
        let mut attempt = attempt(
            Some("bob?x-amz-customauthorizer-name=Other&tok=fromusername"),
            Transport::WebSocketTls,
        );
        attempt.http = Some(HttpUpgrade {
            headers: vec![
                (
                    "x-amz-customauthorizer-name".to_owned(),
                    "MyAuth".to_owned(),
                ),
                ("sec-websocket-protocol".to_owned(), "mqtt".to_owned()),
            ],
            query: "tok=fromquery".to_owned(),
        });
        let credentials = Credentials::read(&attempt).unwrap();
        assert_eq!(credentials.authorizer_name(), Some("MyAuth"));
        let request = credentials.request(&attempt, &record(Some("tok"))).unwrap();
        assert_eq!(request.token.as_deref(), Some("fromquery"));
        let event = request.to_json();
        assert_eq!(
            event["protocols"],
            serde_json::json!(["tls", "http", "mqtt"])
        );
        assert_eq!(
            event["protocolData"]["http"]["queryString"],
            "?tok=fromquery"
        );
        assert_eq!(
            event["protocolData"]["http"]["headers"]["x-amz-customauthorizer-name"],
            "MyAuth"
        );
        // The token in the username counts when the upgrade has none.
        let mut attempt = attempt;
        if let Some(http) = &mut attempt.http {
            http.query.clear();
        }
        let credentials = Credentials::read(&attempt).unwrap();
        let request = credentials.request(&attempt, &record(Some("tok"))).unwrap();
        assert_eq!(request.token.as_deref(), Some("fromusername"));
    }

    #[test]
    fn plain_tcp_has_no_tls_protocol() {
        let attempt = attempt(Some("alice"), Transport::Tcp);
        let request = Credentials::read(&attempt)
            .unwrap()
            .request(&attempt, &record(None))
            .unwrap();
        assert_eq!(request.to_json()["protocols"], serde_json::json!(["mqtt"]));
    }

    #[test]
    fn malformed_credentials_are_errors() {
        let bad_name = attempt(
            Some("?x-amz-customauthorizer-name=no%20spaces"),
            Transport::Tls,
        );
        assert!(Credentials::read(&bad_name).is_err());
        let bad_signature = attempt(
            Some("?x-amz-customauthorizer-signature=not*base64"),
            Transport::Tls,
        );
        assert!(Credentials::read(&bad_signature).is_err());
        let long_token = format!("?tok={}", "a".repeat(6145));
        let attempt = attempt(Some(&long_token), Transport::Tls);
        let credentials = Credentials::read(&attempt).unwrap();
        assert!(credentials.request(&attempt, &record(Some("tok"))).is_err());
    }

    #[test]
    fn denials_map_to_not_authorized_or_unavailable() {
        let not_authorized = [
            Denial::Inactive,
            Denial::MissingToken,
            Denial::MissingSignature,
            Denial::BadSignature(SignatureError::NoKeys),
            Denial::LambdaFunction,
            Denial::UndeclaredFunction("x".into()),
            Denial::InvalidFunctionName("x".into()),
            Denial::Function(InvokeError::BadUrl("x".into())),
            Denial::Function(InvokeError::PlainHttpNotLoopback("x".into())),
        ];
        for denial in not_authorized {
            assert!(
                matches!(denied("A", &denial), CustomAuthDenied::NotAuthorized(_)),
                "{denial:?}"
            );
        }
        let unavailable = [
            Denial::Function(InvokeError::Unreachable("x".into())),
            Denial::Function(InvokeError::Status(500)),
            Denial::Function(InvokeError::TooLarge),
            Denial::Timeout(Duration::from_secs(5)),
            Denial::InvalidAnswer(AnswerError::InvalidPrincipalId),
            Denial::Busy(64),
            Denial::CircuitOpen(5),
        ];
        for denial in unavailable {
            assert!(
                matches!(denied("A", &denial), CustomAuthDenied::Unavailable(_)),
                "{denial:?}"
            );
        }
    }

    #[test]
    fn answers_become_grants() {
        let allow = AuthorizerAnswer::from_json(
            br#"{"isAuthenticated":true,"principalId":"alice","policyDocuments":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}],"disconnectAfterInSeconds":3600,"refreshAfterInSeconds":300,"claims":{"scope":["read","write"]},"context":{"site":"lyon"}}"#,
        )
        .unwrap();
        let grant = grant("A", &allow).unwrap();
        assert_eq!(grant.principal_id, "alice");
        assert_eq!(grant.claims["scope"], ["read", "write"]);
        assert_eq!(grant.context["site"], "lyon");
        assert_eq!(grant.disconnect_after, Some(Duration::from_secs(3600)));
        assert_eq!(grant.refresh_after, Some(Duration::from_secs(300)));
        let deny =
            AuthorizerAnswer::from_json(br#"{"isAuthenticated":false,"principalId":"x"}"#).unwrap();
        assert!(matches!(
            super::grant("A", &deny),
            Err(CustomAuthDenied::NotAuthorized(_))
        ));
    }
}
