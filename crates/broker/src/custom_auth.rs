//! Custom authentication: CONNECTs without a device certificate decided by custom authorizers
//! (reference §2), through a [`CustomAuthenticator`] the server installs.
//!
//! The broker builds a [`CustomAuthAttempt`] from what the client sent (MQTT username and
//! password, client id, TLS server name, WebSocket upgrade headers and query), awaits the
//! authenticator (bounded by the connect timeout: the CONNECT must be read and decided within
//! it), and admits the client with the returned policies as a custom principal whose
//! `principalIdentifier` in lifecycle events is the authorizer's `principalId`. `iot:Connect`
//! must still be allowed by those policies. The policies decide with the grant's principal id,
//! claims and context as `ferrocore:PrincipalId`, `ferrocore:Claims.<name>` and
//! `ferrocore:Context.<name>` ([`CustomGrant::request`]), from each refresh's grant anew.
//!
//! | outcome | CONNACK (MQTT 5 / 3.1.1) |
//! |---|---|
//! | [`CustomAuthDenied::NotAuthorized`] | 0x87 Not authorized / 5 |
//! | [`CustomAuthDenied::Unavailable`], or no answer within the connect timeout | 0x88 Server unavailable / 3 (fails closed; the client may retry later) |
//!
//! While connected, the grant's lifetimes are enforced by a task beside the connection
//! ([`supervise`]): at `disconnect_after` the connection is closed with DISCONNECT 0xA0
//! (Maximum connect time) and `disconnectReason` `CUSTOMAUTH_TTL_EXPIRATION`, the will being
//! published as for any server-side close; at `refresh_after` the authenticator is asked again
//! with the original attempt and the new policies replace the old ones (`iot:Connect` decided
//! again). A refresh that denies, fails or does not answer within the connect timeout closes
//! the connection with DISCONNECT 0x87 and `AUTH_ERROR`, without the will. A refresh can
//! shorten the connection's lifetime, never extend it; the principal stays the one admitted.
//! The same refresh happens at once when the authorizer that admitted the connection (the
//! grant's [`CustomGrant::authorizer`]) changes ([`Broker::reauthenticate_authorizer`]): a
//! deactivated or deleted authorizer closes its connections, an updated one's answer applies.
//! MQTT 5 clients that connect with the authentication method [`CUSTOM_AUTH_METHOD`] may
//! re-authenticate with a new token through AUTH (reason 0x19), as documented there.
//!
//! The attempt holds the client's password: it lives only in memory, in the connection's
//! supervising task, and is never logged (its `Debug` shows neither password nor header
//! values nor query).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use ferrocore_mqtt::{Auth, AuthProperties, Packet, reason};
use ferrocore_policy::{PolicySet, Request};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::auth::{Authz, Dependency, Principal, RequestBase};
use crate::session::Outbox;
use crate::{Broker, Transport};

/// The shortest interval between refreshes, whatever an authenticator answers: a zero
/// `refresh_after` must not turn into a loop calling the authorizer.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Decides CONNECTs that present no device certificate, through custom authorizers.
pub trait CustomAuthenticator: Send + Sync + 'static {
    /// Authenticates and authorizes one connection attempt (or a refresh of an open one).
    fn authenticate(
        &self,
        attempt: CustomAuthAttempt,
    ) -> Pin<Box<dyn Future<Output = Result<CustomGrant, CustomAuthDenied>> + Send>>;
}

/// What a client presented when connecting, as the authorizer request is built from it.
#[derive(Clone)]
pub struct CustomAuthAttempt {
    /// The CONNECT's user name (AWS devices put `x-amz-customauthorizer-*` and the token in
    /// its query part).
    pub username: Option<String>,
    /// The CONNECT's password, raw. A secret: never log it.
    pub password: Option<Bytes>,
    /// The client id the connection gets (the assigned one when the client sent none).
    pub client_id: String,
    /// The TLS server name (SNI), when there was a TLS handshake with one.
    pub server_name: Option<String>,
    /// The client's address.
    pub peer: SocketAddr,
    pub transport: Transport,
    /// The listener's name (its default authorizer may depend on it).
    pub listener: String,
    /// The WebSocket upgrade request, for MQTT over WebSocket.
    pub http: Option<HttpUpgrade>,
    /// A random UUID per connection: AWS's `connectionMetadata.id`, also the
    /// `sessionIdentifier` of the connection's lifecycle events. The same for its refreshes.
    pub connection_id: String,
    /// An MQTT connection, or an HTTPS data-plane request (then there is no MQTT username,
    /// password or client id, and `http` is the request).
    pub protocol: CustomAuthProtocol,
}

/// What a [`CustomAuthAttempt`] is for: AWS's request JSON lists `mqtt` or `http` among the
/// protocols accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomAuthProtocol {
    Mqtt,
    Http,
}

impl fmt::Debug for CustomAuthAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomAuthAttempt")
            .field("username_present", &self.username.is_some())
            .field("password_present", &self.password.is_some())
            .field("client_id", &self.client_id)
            .field("server_name", &self.server_name)
            .field("peer", &self.peer)
            .field("transport", &self.transport)
            .field("listener", &self.listener)
            .field("http", &self.http)
            .field("connection_id", &self.connection_id)
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// The HTTP request that upgraded a connection to WebSocket (where AWS devices may put
/// `x-amz-customauthorizer-*` and the token instead of the MQTT user name), or an HTTPS
/// data-plane request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpUpgrade {
    /// Header names (lowercase) and values, in the order received. Values may be secrets.
    pub headers: Vec<(String, String)>,
    /// The raw query string, without the `?` (may hold a token).
    pub query: String,
}

impl fmt::Debug for HttpUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpUpgrade")
            .field("header_names", &names)
            .field("query_len", &self.query.len())
            .finish()
    }
}

/// An authorizer's positive answer.
#[derive(Debug, Clone)]
pub struct CustomGrant {
    /// Who the client is (`principalId`): its `principalIdentifier` in lifecycle events.
    pub principal_id: String,
    /// The returned policy documents, compiled; decided with the connection's client id,
    /// source address and server name. `iot:Connect` must be among what they allow.
    pub policies: Arc<PolicySet>,
    /// `disconnectAfterInSeconds`: how long the connection may stay open.
    pub disconnect_after: Option<Duration>,
    /// `refreshAfterInSeconds`: when to ask the authorizer again.
    pub refresh_after: Option<Duration>,
    /// The custom authorizer that decided, if the authenticator names one: the connection is
    /// re-authenticated at once when it changes ([`Broker::reauthenticate_authorizer`]).
    pub authorizer: Option<String>,
    /// The answer's `claims` (Ferrocore extension): `ferrocore:Claims.<name>` in policies.
    pub claims: BTreeMap<String, Vec<String>>,
    /// The answer's `context` (Ferrocore extension): `ferrocore:Context.<name>` in policies.
    pub context: BTreeMap<String, String>,
}

impl CustomGrant {
    /// The request the grant's policies decide in: the connection's (client id, source
    /// address, server name) with the grant's principal id (`ferrocore:PrincipalId`), claims
    /// and context. Built anew from each grant, so a refresh's claims replace the old ones.
    pub(crate) fn request(&self, base: &RequestBase) -> Request {
        let request = base
            .request(None)
            .with_principal_id(self.principal_id.as_str());
        let request = self.claims.iter().fold(request, |request, (name, values)| {
            request.with_claim(name.as_str(), values.iter().map(String::as_str))
        });
        self.context.iter().fold(request, |request, (name, value)| {
            request.with_context(name.as_str(), value.as_str())
        })
    }
}

/// An authorizer's refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomAuthDenied {
    /// The authorizer said no (or its answer was invalid, or the token's signature did not
    /// verify). The reason is for logs: it must never contain a secret.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// No decision could be made (authorizer down, timed out, circuit open): refused as well
    /// (fails closed), but as the server being unavailable, so the client retries later.
    #[error("authorizer unavailable: {0}")]
    Unavailable(String),
    /// No authorizer applies: the client named none and no default authorizer is set. An
    /// MQTT client is refused as not authorized; an HTTPS request is left to its other
    /// credentials.
    #[error("no authorizer named and no default authorizer set")]
    NoAuthorizer,
}

impl CustomAuthDenied {
    /// The MQTT 5 CONNACK reason code refusing a CONNECT for this.
    pub(crate) fn connack_code(&self) -> u8 {
        match self {
            CustomAuthDenied::NotAuthorized(_) | CustomAuthDenied::NoAuthorizer => {
                reason::NOT_AUTHORIZED
            }
            CustomAuthDenied::Unavailable(_) => reason::SERVER_UNAVAILABLE,
        }
    }
}

/// When a grant's `refresh_after` is due, counted from `now`.
pub(crate) fn refresh_due(now: Instant, refresh_after: Duration) -> Instant {
    now + refresh_after.max(MIN_REFRESH_INTERVAL)
}

/// Asks `authenticator` about `attempt`; no answer by `deadline` is [`CustomAuthDenied::Unavailable`].
pub(crate) async fn authenticate_within(
    authenticator: &dyn CustomAuthenticator,
    attempt: CustomAuthAttempt,
    deadline: Instant,
) -> Result<CustomGrant, CustomAuthDenied> {
    match tokio::time::timeout_at(deadline, authenticator.authenticate(attempt)).await {
        Ok(answer) => answer,
        Err(_) => Err(CustomAuthDenied::Unavailable(
            "no answer in time".to_owned(),
        )),
    }
}

/// The MQTT 5 authentication method of custom authentication. A client whose CONNECT names
/// it (the authentication data, if any, then stands in for the password) may re-authenticate
/// on the open connection with AUTH, reason 0x19, this method and its new token (password) as
/// authentication data: the authenticator is asked with the CONNECT's attempt carrying the new
/// password, and on success the new policies are in force and the server answers AUTH 0x00;
/// the grant's `disconnect_after` and `refresh_after` then count from the re-authentication
/// (a new token may extend the connection). A denied or failed re-authentication closes the
/// connection with DISCONNECT 0x87 [MQTT-4.12.1-2].
pub const CUSTOM_AUTH_METHOD: &str = "custom";

/// What the supervising task of a custom-authenticated connection needs.
pub(crate) struct Supervised {
    pub authenticator: Arc<dyn CustomAuthenticator>,
    pub attempt: CustomAuthAttempt,
    pub principal: Arc<Principal>,
    /// When the connection must close (from its admission's `disconnect_after`).
    pub disconnect_at: Option<Instant>,
    /// When to ask the authenticator again.
    pub refresh_at: Option<Instant>,
    /// How long a refresh may take.
    pub limit: Duration,
    /// New passwords from AUTH re-authentications, when the client connected with
    /// [`CUSTOM_AUTH_METHOD`].
    pub reauthentications: Option<mpsc::Receiver<Option<Bytes>>>,
    /// Whether the connection is filed under the authorizer that admitted it, so a change of
    /// that authorizer asks for a refresh ([`Principal::reauthenticate`]).
    pub authorizer_watched: bool,
}

/// Why the supervisor asks the authenticator.
enum Ask {
    /// `refresh_after` is due, or the authorizer changed: the same attempt again.
    Refresh,
    /// AUTH 0x19 with a new password.
    Reauthenticate(Option<Bytes>),
}

/// Enforces a custom grant's lifetimes and answers re-authentications on an open connection
/// until it is due to close (the connection aborts this task when it ends first). Runs beside
/// the connection, so the read loop and delivery pay nothing for it.
pub(crate) async fn supervise(s: Supervised, broker: Weak<Broker>, outbox: Arc<Outbox>) {
    let Supervised {
        authenticator,
        mut attempt,
        principal,
        mut disconnect_at,
        mut refresh_at,
        limit,
        mut reauthentications,
        authorizer_watched,
    } = s;
    loop {
        let refresh_first = match (refresh_at, disconnect_at) {
            (Some(r), Some(d)) => r < d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let due = if refresh_first {
            refresh_at
        } else {
            disconnect_at
        };
        if due.is_none() && reauthentications.is_none() && !authorizer_watched {
            return;
        }
        let ask = tokio::select! {
            () = sleep_until_some(due) => {
                if !refresh_first {
                    tracing::info!(client_id = %principal.client_id(), principal = %principal.identity, "custom authorization lifetime over; closing the connection");
                    principal.kick().fire(reason::MAXIMUM_CONNECT_TIME);
                    return;
                }
                Ask::Refresh
            }
            request = next_request(&mut reauthentications) => match request {
                Some(password) => Ask::Reauthenticate(password),
                None => {
                    // The connection no longer reads: only the timers are left.
                    reauthentications = None;
                    continue;
                }
            },
            () = principal.reauthentication_requested(), if authorizer_watched => {
                tracing::debug!(client_id = %principal.client_id(), principal = %principal.identity, "the connection's custom authorizer changed; asking it again");
                Ask::Refresh
            }
        };
        let reauthenticating = matches!(ask, Ask::Reauthenticate(_));
        let mut asked = attempt.clone();
        if let Ask::Reauthenticate(password) = ask {
            asked.password = password;
        }
        let deadline = Instant::now() + limit;
        let answer = authenticate_within(&*authenticator, asked.clone(), deadline).await;
        let Some(broker) = broker.upgrade() else {
            return;
        };
        let grant = match answer {
            Ok(grant) => grant,
            Err(denied) => {
                tracing::info!(client_id = %principal.client_id(), principal = %principal.identity, error = %denied, reauthenticating, "custom authorization refresh failed; closing the connection");
                principal.kick().fire(reason::NOT_AUTHORIZED);
                return;
            }
        };
        let now = Instant::now();
        let request = grant.request(principal.base());
        principal.set_authz(Authz::new(grant.policies, request));
        if authorizer_watched && let Some(name) = grant.authorizer {
            // The answer may come from another authorizer than before (a domain's new
            // default): from now on the connection follows that one's changes.
            broker
                .index
                .set(&principal, vec![Dependency::Authorizer(name)]);
        }
        if !principal.may_connect(&broker.denials, broker.arns()) {
            tracing::info!(client_id = %principal.client_id(), principal = %principal.identity, "iot:Connect not allowed after a custom authorization refresh; closing the connection");
            principal.kick().fire(reason::NOT_AUTHORIZED);
            return;
        }
        tracing::debug!(client_id = %principal.client_id(), principal = %principal.identity, reauthenticating, "custom authorization refreshed");
        let due = grant.disconnect_after.map(|after| now + after);
        if reauthenticating {
            // New credentials: their lifetime replaces the old one, and later refreshes use them.
            disconnect_at = due;
            attempt = asked;
            outbox.push(Packet::Auth(Auth {
                reason: reason::SUCCESS,
                properties: AuthProperties {
                    authentication_method: Some(CUSTOM_AUTH_METHOD.to_owned()),
                    ..AuthProperties::default()
                },
            }));
        } else if let Some(due) = due {
            // The same credentials again may shorten the connection's lifetime, never extend it.
            disconnect_at = Some(disconnect_at.map_or(due, |d| d.min(due)));
        }
        refresh_at = grant.refresh_after.map(|after| refresh_due(now, after));
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next re-authentication request; `None` once the connection dropped its sender (never
/// resolves without a receiver).
async fn next_request(
    requests: &mut Option<mpsc::Receiver<Option<Bytes>>>,
) -> Option<Option<Bytes>> {
    match requests {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
