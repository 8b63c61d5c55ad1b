//! Listeners and wiring of the gateway: settings (flags, environment, TOML), the server's own
//! TLS identity, TCP / TLS / WebSocket listeners with ALPN multiplexing on the HTTPS port,
//! admission control (connection cap, per-IP connect rate, TLS handshake timeout) and the
//! PROXY protocol.
//!
//! Listeners hand each established byte stream to a [`ConnectionHandler`]: the broker in the
//! binary, an echo handler in tests.
//!
//! # `listeners.json`
//!
//! After binding, every listener's real address is written atomically to
//! `<data-dir>/listeners.json` so that scripts and tests find ports picked with `:0`:
//!
//! ```json
//! {
//!   "pid": 4242,
//!   "listeners": [
//!     {"name": "mqtts", "transport": "mqtts", "address": "127.0.0.1:41234",
//!      "tls": true, "proxy_protocol": false, "anonymous": false},
//!     {"name": "https", "transport": "https", "address": "127.0.0.1:41235",
//!      "tls": true, "proxy_protocol": false, "anonymous": false}
//!   ]
//! }
//! ```
//!
//! `transport` is `mqtt` (MQTT over plain TCP), `mqtts` (MQTT over TLS), `https` (the
//! multiplexed TLS port: MQTT by ALPN, HTTP, WebSocket MQTT at `/mqtt`) or `ws` (HTTP and
//! WebSocket MQTT over plain TCP).

pub mod admission;
pub mod config;
pub mod credentials;
pub mod custom_auth;
pub mod devices;
pub mod domains;
mod http;
pub mod identity;
mod listener;
pub mod metrics;
pub mod proxy;
pub mod registry_events;
pub mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use ferrocore_broker::{ConnectionInfo, ListenerAuth, TlsInfo, Transport};
use tokio::io::{AsyncRead, AsyncWrite};

pub use config::{ListenerKind, ListenerSpec, ServeFlags, Settings};
pub use listener::{
    BoundServer, ListenerAddress, ListenersFile, RunningServer, ServerOptions, bind_all,
    listeners_json_path, remove_listeners_json, write_listeners_json,
};

/// A byte stream a listener established: TCP, TLS, or a WebSocket bridged to bytes.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> IoStream for T {}

pub type BoxedStream = Box<dyn IoStream>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the listeners hand connections to.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Runs one client connection to its end.
    fn handle(self: Arc<Self>, stream: BoxedStream, info: ConnectionInfo)
    -> BoxFuture<'static, ()>;

    /// Ends every connection gracefully and flushes state (called once the listeners stopped
    /// accepting).
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

impl ConnectionHandler for ferrocore_broker::Broker {
    fn handle(
        self: Arc<Self>,
        stream: BoxedStream,
        info: ConnectionInfo,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.serve(stream, info).await })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(ferrocore_broker::Broker::shutdown(self))
    }
}

/// Errors of the server crate; each `Display`s as one line that says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// A listener could not bind; `hint` names the flag or `[[listener]]` to change.
    #[error("cannot listen on {address} ({reason}); {hint}")]
    Bind {
        address: String,
        reason: String,
        hint: String,
    },
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
}
