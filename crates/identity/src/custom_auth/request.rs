//! The request sent to an authorizer function: AWS's event JSON, built from what the
//! connection presented, with only the fields present; and the key a cache of answers uses.
//!
//! ```json
//! {"token":"…","signatureVerified":true,"protocols":["tls","http","mqtt"],
//!  "protocolData":{"tls":{"serverName":"<SNI>"},
//!    "http":{"headers":{"<name>":"<value>"},"queryString":"?a=b"},
//!    "mqtt":{"username":"…","password":"<base64>","clientId":"…"}},
//!  "connectionMetadata":{"id":"<uuid>"}}
//! ```
//!
//! Decisions where AWS says little:
//!
//! - `protocols` lists `tls`, `http`, `mqtt` for each part present (MQTT over WSS has all
//!   three); `protocolData.tls` is left out when the client sent no SNI.
//! - HTTP headers and query together are capped at 8 KB ([`MAX_HTTP_CONTEXT_BYTES`]): the
//!   query string (with its `?`) counts first, then the headers in the order received, each
//!   as the bytes of its name plus its value. An item that does not fit in what is left is
//!   left out whole, never cut (a cut value could read as another valid one); later items
//!   that fit are kept. A header given several times is one member, its values joined with
//!   `,` (RFC 9110 §5.3), under the spelling of its first occurrence.
//! - The MQTT username is passed as the client sent it, query included: an existing Lambda
//!   authorizer may read its own parameters from it.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// AWS's cap on the HTTP headers and query string passed to an authorizer.
pub const MAX_HTTP_CONTEXT_BYTES: usize = 8192;

/// What a connection presented, as the authorizer will see it. `Debug` leaves out the
/// token, the password and header values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthorizerRequest {
    /// The token under the authorizer's `tokenKeyName`, if any.
    pub token: Option<String>,
    /// Whether the token's signature was verified (false when the authorizer has signing
    /// disabled).
    pub signature_verified: bool,
    /// Present when the connection is over TLS.
    pub tls: Option<TlsContext>,
    /// Present for HTTPS requests and the WebSocket upgrade of MQTT over WSS.
    pub http: Option<HttpContext>,
    /// Present for MQTT connections (over TLS or WSS).
    pub mqtt: Option<MqttContext>,
    /// The connection's id (`connectionMetadata.id`).
    pub connection_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsContext {
    /// The SNI the client sent.
    pub server_name: Option<String>,
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpContext {
    /// Headers as received, in order.
    pub headers: Vec<(String, String)>,
    /// The raw query string without `?` (empty when none).
    pub query: String,
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct MqttContext {
    pub username: Option<String>,
    /// The raw password bytes; the event carries them as base64.
    pub password: Option<Vec<u8>>,
    pub client_id: Option<String>,
}

impl fmt::Debug for AuthorizerRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizerRequest")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("signature_verified", &self.signature_verified)
            .field("tls", &self.tls)
            .field("http", &self.http)
            .field("mqtt", &self.mqtt)
            .field("connection_id", &self.connection_id)
            .finish()
    }
}

impl fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpContext")
            .field(
                "header_names",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("query_bytes", &self.query.len())
            .finish()
    }
}

impl fmt::Debug for MqttContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttContext")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// Identifies an authorizer answer for a cache: SHA-256 of the request (all but the
/// connection id), the authorizer's name and its generation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl AuthorizerRequest {
    /// The event JSON sent to the authorizer function.
    pub fn to_json(&self) -> Value {
        self.event(true)
    }

    /// The cache key of this request to the authorizer `authorizer_name` at `generation` (a
    /// number the registry raises on every update, deactivation or deletion of it, so that
    /// no answer outlives the authorizer that gave it).
    ///
    /// The connection id is left out: it differs on every connection and would make a cache
    /// across connections useless. An authorizer whose answer depends on the connection id
    /// must not be cached across connections.
    pub fn cache_key(&self, authorizer_name: &str, generation: u64) -> CacheKey {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(b"ferrocore custom-auth cache key v1\n");
        // Length-prefixed, so that no name and event run into each other.
        context.update(&(authorizer_name.len() as u64).to_be_bytes());
        context.update(authorizer_name.as_bytes());
        context.update(&generation.to_be_bytes());
        context.update(self.event(false).to_string().as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        CacheKey(key)
    }

    fn event(&self, with_connection_id: bool) -> Value {
        let mut event = Map::new();
        if let Some(token) = &self.token {
            event.insert("token".into(), token.as_str().into());
        }
        event.insert("signatureVerified".into(), self.signature_verified.into());
        let mut protocols = Vec::new();
        let mut protocol_data = Map::new();
        if let Some(tls) = &self.tls {
            protocols.push("tls");
            if let Some(server_name) = &tls.server_name {
                protocol_data.insert("tls".into(), json!({ "serverName": server_name }));
            }
        }
        if let Some(http) = &self.http {
            protocols.push("http");
            protocol_data.insert("http".into(), http_data(http));
        }
        if let Some(mqtt) = &self.mqtt {
            protocols.push("mqtt");
            let mut data = Map::new();
            if let Some(username) = &mqtt.username {
                data.insert("username".into(), username.as_str().into());
            }
            if let Some(password) = &mqtt.password {
                data.insert("password".into(), BASE64.encode(password).into());
            }
            if let Some(client_id) = &mqtt.client_id {
                data.insert("clientId".into(), client_id.as_str().into());
            }
            protocol_data.insert("mqtt".into(), data.into());
        }
        event.insert("protocols".into(), protocols.into());
        if !protocol_data.is_empty() {
            event.insert("protocolData".into(), protocol_data.into());
        }
        if with_connection_id && let Some(id) = &self.connection_id {
            event.insert("connectionMetadata".into(), json!({ "id": id }));
        }
        event.into()
    }
}

/// `{"headers": {...}, "queryString": "?..."}` within [`MAX_HTTP_CONTEXT_BYTES`].
fn http_data(http: &HttpContext) -> Value {
    let mut budget = MAX_HTTP_CONTEXT_BYTES;
    let mut data = Map::new();
    let mut headers: Vec<(&str, String)> = Vec::new();
    for (name, value) in &http.headers {
        match headers
            .iter_mut()
            .find(|(seen, _)| seen.eq_ignore_ascii_case(name))
        {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            None => headers.push((name, value.clone())),
        }
    }
    let query_string = (!http.query.is_empty())
        .then(|| format!("?{}", http.query))
        .filter(|query_string| query_string.len() <= budget);
    if let Some(query_string) = &query_string {
        budget -= query_string.len();
    }
    let mut header_map = Map::new();
    for (name, value) in headers {
        let size = name.len() + value.len();
        if size <= budget {
            budget -= size;
            header_map.insert(name.to_owned(), value.into());
        }
    }
    data.insert("headers".into(), header_map.into());
    if let Some(query_string) = query_string {
        data.insert("queryString".into(), query_string.into());
    }
    data.into()
}
