//! HTTP on the HTTPS port (and `ws` listeners): MQTT over WebSocket at `/mqtt`, `/health`,
//! and AWS-shaped errors for everything else.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Extension, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::{Bytes, BytesMut};
use ferrocore_broker::{ConnectionInfo, ListenerAuth, TlsInfo};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use tracing::debug;

use crate::{ConnectionHandler, IoStream};

/// What the routes of one connection need.
pub(crate) struct HttpConn {
    /// The connection, with the WebSocket transport a bridged MQTT session gets.
    pub info: ConnectionInfo,
    /// The listener rules and TLS information a bridged MQTT session gets under the SNI's
    /// domain configuration (see [`crate::domains`]), or why the domain refuses MQTT over
    /// WebSocket.
    pub websocket_rules: Result<(Arc<ListenerAuth>, Option<TlsInfo>), String>,
    pub handler: Arc<dyn ConnectionHandler>,
    pub max_ws_message: usize,
    /// The device certificate the TLS client presented: unsigned data-plane requests act as it.
    pub client_certificate: Option<ferrocore_api::ClientCertificate>,
    /// Where the connection came in, when its listener accepts custom authentication:
    /// unsigned data-plane requests without a certificate are decided by an authorizer.
    pub custom_auth: Option<ferrocore_api::CustomAuthListener>,
    /// Held while any request or WebSocket session of the connection is alive.
    pub _slot: crate::admission::ConnectionSlot,
}

/// The HTTP side of a listener: one router, cloned per request.
pub(crate) struct HttpService {
    router: Router,
}

impl HttpService {
    /// `api` serves every path but `/health` and `/mqtt`.
    pub fn new(api: Option<Router>) -> HttpService {
        let router = Router::new()
            .route("/health", get(health))
            .route("/mqtt", any(mqtt_ws));
        let router = match api {
            Some(api) => router.fallback_service(api),
            None => router.fallback(not_found),
        };
        HttpService { router }
    }

    /// Serves HTTP/1.1 or HTTP/2 (with upgrades, for WebSocket) on `stream` until it closes.
    pub async fn serve<S: IoStream>(
        &self,
        stream: S,
        conn: Arc<HttpConn>,
        header_timeout: Duration,
    ) {
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            if let Some(cert) = &conn.client_certificate {
                req.extensions_mut().insert(cert.clone());
            } else if let Some(listener) = &conn.custom_auth {
                req.extensions_mut().insert(listener.clone());
            }
            req.extensions_mut().insert(conn.clone());
            router.clone().oneshot(req)
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            // WebSocket over HTTP/2 (RFC 8441).
            .enable_connect_protocol()
            // Find dead peers; HTTP/1.1 idle connections end at the header read timeout.
            .keep_alive_interval(Duration::from_secs(60))
            .keep_alive_timeout(Duration::from_secs(20))
            .max_concurrent_streams(128);
        if let Err(e) = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .await
        {
            debug!(error = %e, "HTTP connection ended with an error");
        }
    }
}

/// An error response in the shape AWS services use: `{"message": ...}` and the error's name
/// in `x-amzn-ErrorType`.
pub(crate) fn aws_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    response
}

async fn health() -> Response {
    let mut response = (StatusCode::OK, "{\"status\":\"ok\"}").into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn not_found(method: Method, uri: Uri) -> Response {
    aws_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("No resource at {method} {}", uri.path()),
    )
}

async fn mqtt_ws(
    Extension(conn): Extension<Arc<HttpConn>>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let (listener, tls) = match &conn.websocket_rules {
        Ok(rules) => rules.clone(),
        Err(reason) => return aws_error(StatusCode::FORBIDDEN, "ForbiddenException", reason),
    };
    // Custom authorizers may read credentials from the upgrade request, as on AWS.
    let info = ConnectionInfo {
        http: Some(ferrocore_api::custom_auth_http(&headers, &uri)),
        listener,
        tls,
        ..conn.info.clone()
    };
    ws.protocols(["mqtt"])
        .max_message_size(conn.max_ws_message)
        .max_frame_size(conn.max_ws_message)
        .on_upgrade(move |socket| bridge(socket, conn, info))
}

/// Bytes in flight between the WebSocket and the MQTT handler, each way.
const BRIDGE_BUFFER: usize = 64 * 1024;

/// Runs the MQTT handler on a byte stream fed by the WebSocket's binary messages, and sends
/// what it writes back as binary messages.
async fn bridge(mut socket: WebSocket, conn: Arc<HttpConn>, info: ConnectionInfo) {
    let (ours, theirs) = tokio::io::duplex(BRIDGE_BUFFER);
    let session = tokio::spawn(conn.handler.clone().handle(Box::new(theirs), info));
    let (mut rd, mut wr) = tokio::io::split(ours);
    let mut out = BytesMut::with_capacity(8 * 1024);
    // A received message not yet written to the handler: while one is pending the socket is not
    // read (back pressure) but the handler's output still flows, so neither side can block the
    // other.
    let mut pending: Option<(Bytes, usize)> = None;

    async fn write_pending(
        wr: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>,
        pending: &Option<(Bytes, usize)>,
    ) -> std::io::Result<usize> {
        match pending {
            Some((data, off)) => wr.write(data.get(*off..).unwrap_or_default()).await,
            None => std::future::pending().await,
        }
    }

    loop {
        tokio::select! {
            msg = socket.recv(), if pending.is_none() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if !data.is_empty() {
                        pending = Some((data, 0));
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    let frame = CloseFrame { code: close_code::UNSUPPORTED, reason: "MQTT needs binary messages".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    debug!(error = %e, "WebSocket receive failed");
                    break;
                }
            },
            written = write_pending(&mut wr, &pending) => match written {
                Ok(n) if n > 0 => {
                    if let Some((data, off)) = &mut pending {
                        *off += n;
                        if *off >= data.len() {
                            pending = None;
                        }
                    }
                }
                // The handler stopped reading: the session is over.
                _ => break,
            },
            read = rd.read_buf(&mut out) => match read {
                Ok(n) if n > 0 => {
                    let data = out.split().freeze();
                    if out.capacity() < 1024 {
                        out.reserve(8 * 1024);
                    }
                    if let Err(e) = socket.send(Message::Binary(data)).await {
                        debug!(error = %e, "WebSocket send failed");
                        break;
                    }
                }
                // The handler closed its side.
                _ => {
                    let _ = socket.send(Message::Close(Some(CloseFrame { code: close_code::NORMAL, reason: "".into() }))).await;
                    break;
                }
            },
        }
    }
    // Closing our end tells the handler the client is gone; wait for it to finish.
    drop(rd);
    drop(wr);
    drop(socket);
    if let Err(e) = session.await {
        debug!(error = %e, "MQTT session task failed");
    }
}
