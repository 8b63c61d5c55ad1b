//! Binding, accept loops and the per-connection path: admission, PROXY header, TLS handshake
//! with ALPN, then MQTT or HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrocore_broker::{ConnectionInfo, ListenerAuth, TlsInfo, Transport};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info_span, warn};

use crate::admission::{Admission, AdmissionConfig, ConnectionSlot};
use crate::config::{ListenerKind, ListenerSpec, Settings};
use crate::domains::MqttAuth;
use crate::http::{HttpConn, HttpService};
use crate::tls::{ALPN_MQTT_CA, DomainEntry, TlsState, is_mqtt_alpn};
use crate::{BoxedStream, ConnectionHandler, ServerError, proxy};

/// Accept backlog of every listener.
const BACKLOG: u32 = 1024;

/// Runtime options of the listeners.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub admission: AdmissionConfig,
    /// Time for a client's HTTP request headers.
    pub http_header_timeout: Duration,
    /// Largest WebSocket message or frame accepted at `/mqtt`.
    pub max_ws_message: usize,
    /// The signed AWS APIs (control and data plane), served for every other path of the HTTPS
    /// port; without it those paths answer 404.
    pub api: Option<axum::Router>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            admission: AdmissionConfig::default(),
            http_header_timeout: Duration::from_secs(10),
            max_ws_message: 1 << 20,
            api: None,
        }
    }
}

impl ServerOptions {
    pub fn from_settings(settings: &Settings) -> ServerOptions {
        ServerOptions {
            admission: settings.admission.clone(),
            http_header_timeout: settings.broker.connect_timeout,
            // Room for a whole packet plus a few small ones framed together.
            max_ws_message: settings
                .broker
                .max_packet_size
                .saturating_add(64 * 1024)
                .max(1 << 20),
            api: None,
        }
    }
}

/// One bound listener, as written to `listeners.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListenerAddress {
    pub name: String,
    /// `mqtt`, `mqtts`, `https` or `ws`.
    pub transport: String,
    pub address: SocketAddr,
    pub tls: bool,
    pub proxy_protocol: bool,
    pub anonymous: bool,
    /// Clients without a device certificate are decided by custom authorizers (on `https`
    /// listeners over ALPN `mqtt` and WebSocket).
    #[serde(default)]
    pub custom_auth: bool,
}

/// The contents of `<data-dir>/listeners.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListenersFile {
    /// The server process.
    pub pid: u32,
    pub listeners: Vec<ListenerAddress>,
}

pub fn listeners_json_path(data_dir: &Path) -> PathBuf {
    data_dir.join("listeners.json")
}

/// Removes a `listeners.json` left by an earlier run, so nobody reads stale ports.
pub fn remove_listeners_json(data_dir: &Path) {
    let _ = std::fs::remove_file(listeners_json_path(data_dir));
}

/// Writes `<data_dir>/listeners.json` (see the crate documentation) atomically: a temporary
/// file renamed into place, so readers never see half of it.
pub fn write_listeners_json(
    data_dir: &Path,
    listeners: &[ListenerAddress],
) -> Result<PathBuf, ServerError> {
    let path = listeners_json_path(data_dir);
    let file = ListenersFile {
        pid: std::process::id(),
        listeners: listeners.to_vec(),
    };
    let mut json = serde_json::to_vec_pretty(&file).unwrap_or_default();
    json.push(b'\n');
    crate::identity::write_atomic(&path, &json, 0o644).map_err(|err| ServerError::Io {
        what: format!("cannot write {}", path.display()),
        err,
    })?;
    Ok(path)
}

struct Bound {
    spec: ListenerSpec,
    listener: TcpListener,
    local: SocketAddr,
}

/// Listeners bound but not yet accepting.
pub struct BoundServer {
    bound: Vec<Bound>,
}

fn bind_error(spec: &ListenerSpec, e: &std::io::Error) -> ServerError {
    let reason = match e.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "address not available on this host".to_owned(),
        _ => e.to_string(),
    };
    ServerError::Bind {
        address: spec.address.to_string(),
        reason,
        hint: spec.hint.clone(),
    }
}

fn bind_one(spec: &ListenerSpec) -> Result<Bound, ServerError> {
    let socket = if spec.address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| bind_error(spec, &e))?;
    socket
        .set_reuseaddr(true)
        .map_err(|e| bind_error(spec, &e))?;
    socket
        .bind(spec.address)
        .map_err(|e| bind_error(spec, &e))?;
    let listener = socket.listen(BACKLOG).map_err(|e| bind_error(spec, &e))?;
    let local = listener.local_addr().map_err(|e| bind_error(spec, &e))?;
    Ok(Bound {
        spec: spec.clone(),
        listener,
        local,
    })
}

/// Binds every listener (within a Tokio runtime). The first that fails is the error, naming
/// the flag or `[[listener]]` to change; nothing stays bound then.
pub fn bind_all(specs: &[ListenerSpec]) -> Result<BoundServer, ServerError> {
    let bound = specs.iter().map(bind_one).collect::<Result<Vec<_>, _>>()?;
    Ok(BoundServer { bound })
}

impl BoundServer {
    pub fn addresses(&self) -> Vec<ListenerAddress> {
        self.bound
            .iter()
            .map(|b| ListenerAddress {
                name: b.spec.name.clone(),
                transport: b.spec.transport.as_str().to_owned(),
                address: b.local,
                tls: b.spec.tls(),
                proxy_protocol: b.spec.proxy_protocol,
                anonymous: b.spec.anonymous,
                custom_auth: b.spec.custom_auth,
            })
            .collect()
    }

    /// Writes `<data_dir>/listeners.json` atomically.
    pub fn write_listeners_json(&self, data_dir: &Path) -> Result<PathBuf, ServerError> {
        write_listeners_json(data_dir, &self.addresses())
    }

    /// Starts accepting on every listener; connections go to `handler`. `tls` is needed when
    /// any listener uses TLS.
    pub fn start(
        self,
        handler: Arc<dyn ConnectionHandler>,
        tls: Option<Arc<TlsState>>,
        options: ServerOptions,
    ) -> Result<RunningServer, ServerError> {
        let addresses = self.addresses();
        let admission = Arc::new(Admission::new(options.admission.clone()));
        let options = Arc::new(options);
        let mut tasks = JoinSet::new();
        for b in self.bound {
            if b.spec.tls() && tls.is_none() {
                return Err(ServerError::Tls(rustls::Error::General(format!(
                    "listener \"{}\" needs TLS but no server identity was loaded",
                    b.spec.name
                ))));
            }
            let http = (b.spec.kind() == ListenerKind::Http)
                .then(|| HttpService::new(options.api.clone()));
            let auth = ListenerAuth {
                name: b.spec.name.clone(),
                anonymous: b.spec.anonymous,
                anonymous_policy: b.spec.anonymous_policy.as_ref().map(|p| p.policies.clone()),
                custom_auth: b.spec.custom_auth,
            };
            let ctx = Arc::new(ListenerCtx {
                certificate_protocol_auth: Arc::new(ListenerAuth {
                    custom_auth: false,
                    ..auth.clone()
                }),
                custom_auth_only: Arc::new(ListenerAuth {
                    custom_auth: true,
                    anonymous: false,
                    anonymous_policy: None,
                    ..auth.clone()
                }),
                auth: Arc::new(auth),
                spec: b.spec,
                local: b.local,
                handler: handler.clone(),
                tls: tls.clone(),
                admission: admission.clone(),
                options: options.clone(),
                http,
                refused: RefusalLog::default(),
            });
            tasks.spawn(accept_loop(b.listener, ctx));
        }
        Ok(RunningServer {
            tasks,
            addresses,
            admission,
        })
    }
}

/// Listeners accepting connections.
pub struct RunningServer {
    tasks: JoinSet<()>,
    addresses: Vec<ListenerAddress>,
    admission: Arc<Admission>,
}

impl RunningServer {
    pub fn addresses(&self) -> &[ListenerAddress] {
        &self.addresses
    }

    /// The bound address of the listener called `name`.
    pub fn address(&self, name: &str) -> Option<SocketAddr> {
        self.addresses
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.address)
    }

    /// Connections open now, on all listeners.
    pub fn open_connections(&self) -> usize {
        self.admission.open_connections()
    }

    /// Stops accepting and closes the listening sockets; open connections go on.
    pub async fn stop_accepting(&mut self) {
        self.tasks.shutdown().await;
    }
}

struct ListenerCtx {
    spec: ListenerSpec,
    auth: Arc<ListenerAuth>,
    /// `auth` without custom authentication: for MQTT by ALPN `x-amzn-mqtt-ca` on an HTTPS
    /// listener, which AWS keeps for device certificates.
    certificate_protocol_auth: Arc<ListenerAuth>,
    /// `auth` with custom authentication only: for domains whose authenticationType is
    /// CUSTOM_AUTH.
    custom_auth_only: Arc<ListenerAuth>,
    local: SocketAddr,
    handler: Arc<dyn ConnectionHandler>,
    tls: Option<Arc<TlsState>>,
    admission: Arc<Admission>,
    options: Arc<ServerOptions>,
    http: Option<HttpService>,
    refused: RefusalLog,
}

/// Warns about refused connections at most every few seconds, with a count.
#[derive(Default)]
struct RefusalLog {
    count: AtomicU64,
    last_warn: parking_lot::Mutex<Option<Instant>>,
}

impl RefusalLog {
    fn refused(&self, listener: &str, peer: SocketAddr, why: &'static str) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(listener, %peer, why, "connection refused");
        let mut last = self.last_warn.lock();
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
            *last = Some(now);
            self.count.store(0, Ordering::Relaxed);
            warn!(listener, why, refused = n, "refusing connections");
        }
    }
}

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(1);

async fn accept_loop(listener: TcpListener, ctx: Arc<ListenerCtx>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                use std::io::ErrorKind::*;
                match e.kind() {
                    ConnectionAborted | ConnectionReset | Interrupted | WouldBlock => {}
                    _ => {
                        // Out of file descriptors or memory: back off instead of spinning.
                        warn!(listener = %ctx.spec.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                continue;
            }
        };
        let Some(slot) = ctx.admission.try_admit() else {
            ctx.refused
                .refused(&ctx.spec.name, peer, "max connections reached");
            continue;
        };
        // Behind a PROXY header the socket's peer is the proxy: rate-limit the client later.
        if !ctx.spec.proxy_protocol && !ctx.admission.allow_ip(peer.ip()) {
            ctx.refused
                .refused(&ctx.spec.name, peer, "connect rate per IP exceeded");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = CONNECTION_IDS.fetch_add(1, Ordering::Relaxed);
        let span = info_span!("conn", id, listener = %ctx.spec.name, peer = tracing::field::Empty);
        let ctx = ctx.clone();
        tokio::spawn(connection(stream, peer, ctx, slot).instrument(span));
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ListenerCtx>,
    slot: ConnectionSlot,
) {
    let mut peer_addr = peer;
    let timeout = ctx.admission.config().tls_handshake_timeout;
    if ctx.spec.proxy_protocol {
        match tokio::time::timeout(timeout, proxy::read_header(&mut stream)).await {
            Ok(Ok(header)) => {
                if let Some(source) = header.source {
                    peer_addr = source;
                }
            }
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "bad PROXY protocol header");
                return;
            }
            Err(_) => {
                debug!(%peer, "no PROXY protocol header in time");
                return;
            }
        }
        if !ctx.admission.allow_ip(peer_addr.ip()) {
            ctx.refused
                .refused(&ctx.spec.name, peer_addr, "connect rate per IP exceeded");
            return;
        }
    }
    tracing::Span::current().record("peer", tracing::field::display(peer_addr));
    let local = stream.local_addr().unwrap_or(ctx.local);

    if !ctx.spec.tls() {
        dispatch(Box::new(stream), peer_addr, local, None, &ctx, slot).await;
        return;
    }
    let Some(tls) = ctx.tls.clone() else { return };
    let kind = ctx.spec.kind();
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let handshake = async move {
        let start = acceptor.await?;
        let config = tls.select(kind, start.client_hello().alpn());
        start.into_stream(config).await
    };
    // Boxed, like the HTTP server below: a task's size is that of its largest state, and
    // an idle MQTT connection should not carry room for a handshake or an HTTP exchange.
    let stream = match tokio::time::timeout(timeout, Box::pin(handshake)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!("TLS handshake timed out");
            return;
        }
    };
    let conn = stream.get_ref().1;
    let peer_certificates: Vec<Vec<u8>> = conn
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.to_vec()).collect())
        .unwrap_or_default();
    // A resumed session restores the certificate without running the verifier; the broker
    // checks the certificate by this id again at CONNECT.
    let peer_certificate_id = peer_certificates
        .first()
        .map(|der| ferrocore_identity::x509::certificate_id(der));
    let tls_info = TlsInfo {
        server_name: conn.server_name().map(str::to_owned),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        peer_certificates,
        peer_certificate_id,
    };
    dispatch(
        Box::new(stream),
        peer_addr,
        local,
        Some(tls_info),
        &ctx,
        slot,
    )
    .await;
}

/// Takes the stream boxed: a task reserves room for every by-value stream it might hold,
/// so an idle plain-TCP connection would otherwise carry the size of a TLS session.
async fn dispatch(
    stream: BoxedStream,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
    tls: Option<TlsInfo>,
    ctx: &ListenerCtx,
    slot: ConnectionSlot,
) {
    let is_tls = tls.is_some();
    let alpn = tls.as_ref().and_then(|t| t.alpn.as_deref());
    let mqtt_by_alpn = alpn.is_some_and(is_mqtt_alpn);
    let domain = match (&tls, &ctx.tls) {
        (Some(info), Some(state)) => state.domain(info.server_name.as_deref()),
        _ => None,
    };
    match (ctx.spec.kind(), &ctx.http) {
        (ListenerKind::Http, Some(http)) if !mqtt_by_alpn => {
            let client_certificate = tls.as_ref().and_then(|t| {
                Some(ferrocore_api::ClientCertificate {
                    id: t.peer_certificate_id.clone()?,
                    der: t.peer_certificates.first()?.clone().into(),
                    peer: peer_addr,
                    server_name: t.server_name.clone(),
                })
            });
            let transport = if is_tls {
                Transport::WebSocketTls
            } else {
                Transport::WebSocket
            };
            let info = ConnectionInfo {
                peer_addr,
                local_addr,
                transport,
                tls,
                http: None,
                listener: ctx.auth.clone(),
            };
            let websocket_rules = domain_rules(
                ctx,
                domain.as_deref(),
                true,
                info.listener.clone(),
                info.tls.clone(),
            );
            let custom_auth = ctx
                .auth
                .custom_auth
                .then(|| ferrocore_api::CustomAuthListener {
                    listener: ctx.auth.name.clone(),
                    peer: peer_addr,
                    server_name: info.tls.as_ref().and_then(|t| t.server_name.clone()),
                    tls: is_tls,
                });
            let conn = Arc::new(HttpConn {
                info,
                websocket_rules,
                handler: ctx.handler.clone(),
                max_ws_message: ctx.options.max_ws_message,
                client_certificate,
                custom_auth,
                // WebSocket sessions outlive the HTTP connection task: they hold the slot.
                _slot: slot,
            });
            Box::pin(http.serve(stream, conn, ctx.options.http_header_timeout)).await;
        }
        (kind, _) => {
            // On the HTTPS port custom authentication is for ALPN `mqtt` (AWS's 443 rule);
            // MQTT listeners accept it whatever the client offered, when declared so.
            let listener = if kind == ListenerKind::Http && alpn == Some(ALPN_MQTT_CA) {
                ctx.certificate_protocol_auth.clone()
            } else {
                ctx.auth.clone()
            };
            let (listener, tls) = match domain_rules(ctx, domain.as_deref(), false, listener, tls) {
                Ok(allowed) => allowed,
                Err(reason) => {
                    debug!(%reason, "connection refused by its domain configuration");
                    return;
                }
            };
            let info = ConnectionInfo {
                peer_addr,
                local_addr,
                transport: if is_tls {
                    Transport::Tls
                } else {
                    Transport::Tcp
                },
                tls,
                http: None,
                listener,
            };
            ctx.handler.clone().handle(stream, info).await;
            drop(slot);
        }
    }
}

/// The listener rules and TLS information an MQTT session gets under `domain`'s
/// authenticationType and applicationProtocol (see [`crate::domains`]); `Err` says why the
/// domain refuses it.
fn domain_rules(
    ctx: &ListenerCtx,
    domain: Option<&DomainEntry>,
    over_websocket: bool,
    listener: Arc<ListenerAuth>,
    tls: Option<TlsInfo>,
) -> Result<(Arc<ListenerAuth>, Option<TlsInfo>), String> {
    let Some(domain) = domain else {
        return Ok((listener, tls));
    };
    Ok(match domain.mqtt_access(over_websocket)? {
        MqttAuth::Listener => (listener, tls),
        MqttAuth::CertificatesOnly => (ctx.certificate_protocol_auth.clone(), tls),
        MqttAuth::CustomOnly => {
            let without_certificate = tls.map(|t| TlsInfo {
                peer_certificates: Vec::new(),
                peer_certificate_id: None,
                ..t
            });
            (ctx.custom_auth_only.clone(), without_certificate)
        }
    })
}
