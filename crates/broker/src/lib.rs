//! The MQTT broker: sessions, subscriptions, QoS, retained messages, wills. Listeners hand it
//! established byte streams (TCP, TLS or WebSocket) through [`Broker::serve`].

mod config;

pub use config::{BrokerConfig, Compat};

use std::net::SocketAddr;
use std::sync::Arc;

use ferrocore_store::Store;
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Store(#[from] ferrocore_store::StoreError),
}

/// How a listener lets clients in; identity and policy refine this in later work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerAuth {
    /// The listener's name, for logs and `listeners.json`.
    pub name: String,
    /// Anonymous clients are admitted with an allow-all policy (plain `--dev` listeners).
    pub anonymous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    WebSocket,
    WebSocketTls,
}

/// What the TLS handshake established, when there was one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub server_name: Option<String>,
    pub alpn: Option<Vec<u8>>,
    /// DER certificates the client presented, end entity first.
    pub peer_certificates: Vec<Vec<u8>>,
}

/// Where a connection came from and how.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address (from PROXY protocol when the listener uses it).
    pub peer_addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub transport: Transport,
    pub tls: Option<TlsInfo>,
    pub listener: Arc<ListenerAuth>,
}

pub struct Broker {
    _private: (),
}

impl Broker {
    /// Loads retained messages and persistent sessions from `store` and starts the broker's
    /// background tasks (session expiry, delayed wills).
    pub async fn start(config: BrokerConfig, store: Store) -> Result<Arc<Broker>, BrokerError> {
        let _ = (config, store);
        todo!("broker")
    }

    /// Runs one client connection to its end.
    pub async fn serve<S>(self: &Arc<Self>, stream: S, info: ConnectionInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _ = (stream, info);
        todo!("broker")
    }

    /// Disconnects every client (MQTT 5: DISCONNECT 0x8B) and flushes durable state.
    pub async fn shutdown(&self) {
        todo!("broker")
    }
}
