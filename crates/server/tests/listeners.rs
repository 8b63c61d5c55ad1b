//! Listeners end to end with an echo handler: TLS with every ALPN, the multiplexed HTTPS port
//! (HTTP/1.1, HTTP/2, WebSocket), PROXY protocol, admission control, bind errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use ferrocore_server::config::FileConfig;
use ferrocore_server::tls::{ClientCertCheck, TlsState};
use ferrocore_server::{
    BoxFuture, BoxedStream, ConnectionHandler, ConnectionInfo, ListenersFile, RunningServer,
    Settings, identity,
};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

mod common;

use common::{Cli, must, root_store, serve};

/// Writes one line describing the connection, then echoes everything back.
struct InfoEcho;

impl ConnectionHandler for InfoEcho {
    fn handle(
        self: Arc<Self>,
        mut stream: BoxedStream,
        info: ConnectionInfo,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let tls = info.tls.clone().unwrap_or_default();
            let line = format!(
                "{:?} peer={} alpn={} sni={} certs={} listener={} anonymous={}\n",
                info.transport,
                info.peer_addr,
                tls.alpn
                    .map(|a| String::from_utf8_lossy(&a).into_owned())
                    .unwrap_or_else(|| "-".into()),
                tls.server_name.unwrap_or_else(|| "-".into()),
                tls.peer_certificates.len(),
                info.listener.name,
                info.listener.anonymous,
            );
            if stream.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }
}

/// Lets every client certificate through, so that the handler sees what was presented.
struct AcceptAnyClientCert;

impl ClientCertCheck for AcceptAnyClientCert {
    fn check(&self, _: &CertificateDer<'_>, _: UnixTime) -> Result<(), rustls::Error> {
        Ok(())
    }
}

struct Harness {
    _tmp: tempfile::TempDir,
    data_dir: PathBuf,
    server: RunningServer,
    roots: Arc<rustls::RootCertStore>,
    tls: Arc<TlsState>,
}

impl Harness {
    fn addr(&self, name: &str) -> SocketAddr {
        self.server
            .address(name)
            .unwrap_or_else(|| panic!("no listener {name}"))
    }
}

fn settings(args: &[&str], toml: &str) -> Settings {
    let argv = std::iter::once("serve").chain(args.iter().copied());
    let flags = must(Cli::try_parse_from(argv), "flags").flags;
    let file = must(
        FileConfig::parse(std::path::Path::new("test.toml"), toml),
        "toml",
    );
    must(Settings::resolve(flags, file), "settings")
}

async fn start(args: &[&str], toml: &str) -> Harness {
    let tmp = must(tempfile::tempdir(), "tempdir");
    let data_dir = tmp.path().join("data");
    let data = data_dir.to_string_lossy().into_owned();
    let mut all = vec!["--data-dir", data.as_str()];
    for flag in ["--listen-mqtts", "--listen-https"] {
        if !args.contains(&flag) {
            all.extend_from_slice(&[flag, "127.0.0.1:0"]);
        }
    }
    all.extend_from_slice(args);
    let settings = settings(&all, toml);
    let id = must(
        identity::load_or_create(&settings.data_dir, &settings.endpoint_names, None),
        "identity",
    );
    let (server, tls) = serve(&settings, &id, Arc::new(InfoEcho), AcceptAnyClientCert);
    Harness {
        _tmp: tmp,
        roots: root_store(&data_dir),
        data_dir,
        server,
        tls,
    }
}

fn client_config(
    h: &Harness,
    alpn: &[&[u8]],
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = must(
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions(),
        "versions",
    )
    .with_root_certificates(h.roots.clone());
    let mut config = match client_cert {
        Some((chain, key)) => must(builder.with_client_auth_cert(chain, key), "client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

async fn tls_connect_with(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    name: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = must(TcpStream::connect(addr).await, "connect");
    let name = must(ServerName::try_from(name.to_owned()), "server name");
    must(
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await,
        "TLS handshake",
    )
}

async fn tls_connect(
    h: &Harness,
    listener: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    tls_connect_with(h.addr(listener), client_config(h, alpn, None), "localhost").await
}

async fn read_line<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).await {
            Ok(1) if b[0] == b'\n' => break,
            Ok(1) => line.push(b[0]),
            Ok(_) => panic!("EOF after {:?}", String::from_utf8_lossy(&line)),
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

async fn assert_echo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, payload: &[u8]) {
    must(s.write_all(payload).await, "write");
    let mut back = vec![0u8; payload.len()];
    must(s.read_exact(&mut back).await, "read echo");
    assert_eq!(back, payload);
}

/// Whether the server closes the connection (EOF or reset) without sending anything.
async fn closed_by_server<S: AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut b = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

async fn http_get<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    must(s.write_all(req.as_bytes()).await, "write request");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test]
async fn listeners_json_lists_the_real_ports() {
    let h = start(&[], "[[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\nanonymous = true\n").await;
    let text = must(
        std::fs::read_to_string(h.data_dir.join("listeners.json")),
        "read listeners.json",
    );
    let file: ListenersFile = must(serde_json::from_str(&text), "parse listeners.json");
    assert_eq!(file.pid, std::process::id());
    let names: Vec<(&str, &str, bool)> = file
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.transport.as_str(), l.tls))
        .collect();
    assert_eq!(
        names,
        vec![
            ("mqtts", "mqtts", true),
            ("https", "https", true),
            ("plain", "mqtt", false)
        ]
    );
    assert_eq!(file.listeners, h.server.addresses());
    for l in &file.listeners {
        assert_ne!(l.address.port(), 0, "{l:?}");
        assert!(TcpStream::connect(l.address).await.is_ok(), "{l:?}");
    }
    let mut plain = must(TcpStream::connect(h.addr("plain")).await, "connect plain");
    let line = read_line(&mut plain).await;
    assert!(line.starts_with("Tcp peer=127.0.0.1:"), "{line}");
    assert!(line.ends_with("listener=plain anonymous=true"), "{line}");
    assert_echo(&mut plain, b"\x10\x0c\x00\x04MQTT").await;
}

#[tokio::test]
async fn mqtts_accepts_any_or_no_alpn() {
    let h = start(&[], "").await;
    for (offered, negotiated) in [
        (&[][..], "-"),
        (&[&b"x-amzn-mqtt-ca"[..]][..], "x-amzn-mqtt-ca"),
        (&[&b"mqtt"[..]][..], "mqtt"),
        (&[&b"something-else"[..]][..], "-"),
    ] {
        let mut s = tls_connect(&h, "mqtts", offered).await;
        let line = read_line(&mut s).await;
        assert!(line.starts_with("Tls "), "{line}");
        assert!(
            line.contains(&format!(" alpn={negotiated} ")),
            "{offered:?}: {line}"
        );
        assert!(line.contains(" sni=localhost "), "{line}");
        assert!(line.contains("listener=mqtts anonymous=false"), "{line}");
        assert_echo(&mut s, b"hello over TLS").await;
    }
}

#[tokio::test]
async fn both_tls_versions() {
    let h = start(&[], "").await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = must(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[version]),
            "versions",
        )
        .with_root_certificates(h.roots.clone())
        .with_no_client_auth();
        let mut s = tls_connect_with(h.addr("mqtts"), config, "127.0.0.1").await;
        assert_eq!(s.get_ref().1.protocol_version(), Some(version.version));
        read_line(&mut s).await;
        assert_echo(&mut s, b"v").await;
    }
}

#[tokio::test]
async fn https_port_serves_mqtt_by_alpn() {
    let h = start(&[], "").await;
    for alpn in [&b"x-amzn-mqtt-ca"[..], &b"mqtt"[..]] {
        let mut s = tls_connect(&h, "https", &[alpn]).await;
        let line = read_line(&mut s).await;
        assert!(line.starts_with("Tls "), "{line}");
        assert!(
            line.contains(&format!("alpn={}", String::from_utf8_lossy(alpn))),
            "{line}"
        );
        assert_echo(&mut s, b"\x10\x00").await;
    }
}

#[tokio::test]
async fn https_port_serves_http() {
    let h = start(&[], "").await;
    for alpn in [
        &[&b"http/1.1"[..]][..],
        &[][..],
        &[&b"x-amzn-http-ca"[..]][..],
        &[&b"unknown/9"[..]][..],
    ] {
        let mut s = tls_connect(&h, "https", alpn).await;
        let resp = http_get(&mut s, "/no/such/thing").await;
        assert!(resp.starts_with("HTTP/1.1 404"), "{alpn:?}: {resp}");
        let lower = resp.to_ascii_lowercase();
        assert!(
            lower.contains("\r\nx-amzn-errortype: resourcenotfoundexception\r\n"),
            "{resp}"
        );
        assert!(
            lower.contains("\r\ncontent-type: application/json\r\n"),
            "{resp}"
        );
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = must(serde_json::from_str(body), "404 body is JSON");
        assert!(
            json["message"]
                .as_str()
                .is_some_and(|m| m.contains("/no/such/thing")),
            "{json}"
        );

        let mut s = tls_connect(&h, "https", alpn).await;
        let resp = http_get(&mut s, "/health").await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
}

#[tokio::test]
async fn https_port_speaks_h2() {
    let h = start(&[], "").await;
    let mut s = tls_connect(&h, "https", &[b"h2", b"http/1.1"]).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // Client preface and an empty SETTINGS frame; the server answers with its SETTINGS.
    must(
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await,
        "preface",
    );
    let mut frame = [0u8; 9];
    must(s.read_exact(&mut frame).await, "server SETTINGS");
    assert_eq!(frame[3], 0x04, "frame type SETTINGS: {frame:?}");
}

async fn ws_round_trip<S>(stream: S, url: &str, expect_transport: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut req = must(url.into_client_request(), "request");
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", must("mqtt".parse(), "header"));
    let (mut ws, resp) = must(
        tokio_tungstenite::client_async(req, stream).await,
        "WebSocket handshake",
    );
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"mqtt"[..])
    );
    let mut got = Vec::new();
    async fn fill<
        T: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    >(
        ws: &mut T,
        got: &mut Vec<u8>,
        until: impl Fn(&[u8]) -> bool,
    ) {
        while !until(got) {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!(
                    "unexpected {other:?} after {:?}",
                    String::from_utf8_lossy(got)
                ),
            }
        }
    }
    fill(&mut ws, &mut got, |g| g.contains(&b'\n')).await;
    let line = String::from_utf8_lossy(&got).into_owned();
    assert!(line.starts_with(expect_transport), "{line}");
    got.clear();
    let payload = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04abcd";
    must(
        ws.send(Message::Binary(Bytes::from_static(&payload[..5])))
            .await,
        "send",
    );
    must(
        ws.send(Message::Binary(Bytes::from_static(&payload[5..])))
            .await,
        "send",
    );
    fill(&mut ws, &mut got, |g| g.len() >= payload.len()).await;
    assert_eq!(got, payload);
    // A text message is refused with a close.
    must(ws.send(Message::Text("nope".into())).await, "send text");
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1003);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_mqtt_at_slash_mqtt() {
    let h = start(
        &[],
        "[[listener]]\nname = \"ws\"\naddress = \"127.0.0.1:0\"\ntransport = \"ws\"\n",
    )
    .await;
    let tls = tls_connect(&h, "https", &[b"http/1.1"]).await;
    ws_round_trip(tls, "wss://localhost/mqtt", "WebSocketTls ").await;
    // Without ALPN too (AWS: MQTT over WSS on 443 sends none).
    let tls = tls_connect(&h, "https", &[]).await;
    ws_round_trip(tls, "wss://localhost/mqtt", "WebSocketTls ").await;
    let tcp = must(TcpStream::connect(h.addr("ws")).await, "connect ws");
    ws_round_trip(tcp, "ws://localhost/mqtt", "WebSocket ").await;
}

#[tokio::test]
async fn client_certificate_reaches_the_handler() {
    let h = start(&["--endpoint-name", "iot.example.com"], "").await;
    let key = must(rcgen::KeyPair::generate(), "key");
    let cert = must(
        must(
            rcgen::CertificateParams::new(vec!["device-1".to_owned()]),
            "params",
        )
        .self_signed(&key),
        "cert",
    );
    let chain = vec![cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = client_config(&h, &[b"x-amzn-mqtt-ca"], Some((chain, key)));
    let mut s = tls_connect_with(h.addr("mqtts"), config, "iot.example.com").await;
    let line = read_line(&mut s).await;
    assert!(line.contains(" certs=1 "), "{line}");
    assert!(line.contains(" sni=iot.example.com "), "{line}");
}

#[tokio::test]
async fn port_in_use_is_one_line_naming_the_flag() {
    let taken = must(std::net::TcpListener::bind("127.0.0.1:0"), "bind");
    let port = must(taken.local_addr(), "addr").port();
    let addr = format!("127.0.0.1:{port}");
    let s = settings(
        &["--listen-mqtts", &addr, "--listen-https", "127.0.0.1:0"],
        "",
    );
    let rt_result = ferrocore_server::bind_all(&s.listeners);
    let msg = rt_result.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        msg,
        format!("cannot listen on {addr} (address in use); choose another with --listen-mqtts")
    );

    let s = settings(
        &[
            "--listen-mqtts",
            "off",
            "--listen-https",
            "off",
            "--dev",
            "--listen-mqtt",
            &addr,
        ],
        "",
    );
    let msg = ferrocore_server::bind_all(&s.listeners)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.ends_with("choose another with --listen-mqtt"), "{msg}");

    let toml =
        format!("[[listener]]\nname = \"edge\"\naddress = \"{addr}\"\ntransport = \"https\"\n");
    let s = settings(&["--listen-mqtts", "off", "--listen-https", "off"], &toml);
    let msg = ferrocore_server::bind_all(&s.listeners)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        msg,
        format!(
            "cannot listen on {addr} (address in use); choose another `address` for [[listener]] \"edge\" in test.toml"
        )
    );
}

#[tokio::test]
async fn max_connections_refused_at_accept() {
    let h = start(
        &[
            "--max-connections",
            "1",
            "--listen-mqtts",
            "off",
            "--listen-https",
            "off",
            "--dev",
            "--listen-mqtt",
            "127.0.0.1:0",
        ],
        "",
    )
    .await;
    let mut first = must(TcpStream::connect(h.addr("mqtt")).await, "first");
    read_line(&mut first).await;
    assert_eq!(h.server.open_connections(), 1);
    let mut second = must(TcpStream::connect(h.addr("mqtt")).await, "second");
    assert!(
        closed_by_server(&mut second).await,
        "the second connection is closed at accept"
    );
    drop(first);
    // The slot comes back once the first connection's task ends.
    for _ in 0..200 {
        if h.server.open_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut third = must(TcpStream::connect(h.addr("mqtt")).await, "third");
    read_line(&mut third).await;
    assert_echo(&mut third, b"ok").await;
}

#[tokio::test]
async fn connect_rate_per_ip() {
    // Loopback is exempt, so the clients come from PROXY protocol addresses.
    let toml = "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\nproxy_protocol = true\n";
    let h = start(
        &[
            "--max-connect-rate-per-ip",
            "1",
            "--listen-mqtts",
            "off",
            "--listen-https",
            "off",
        ],
        toml,
    )
    .await;
    let connect_as = |ip: &'static str| {
        let lb = h.addr("lb");
        async move {
            let mut s = must(TcpStream::connect(lb).await, "connect");
            let header = ferrocore_server::proxy::encode_v2(must(ip.parse(), "ip"), lb, &[]);
            must(s.write_all(&header).await, "header");
            s
        }
    };
    let mut first = connect_as("198.51.100.1:1000").await;
    read_line(&mut first).await;
    let mut second = connect_as("198.51.100.1:1001").await;
    assert!(
        closed_by_server(&mut second).await,
        "a second connect from one IP within the second is refused"
    );
    let mut other = connect_as("198.51.100.2:1000").await;
    read_line(&mut other).await;
    assert_echo(&mut first, b"still fine").await;
    // Loopback clients are not limited.
    let plain = start(
        &[
            "--max-connect-rate-per-ip",
            "1",
            "--listen-mqtts",
            "off",
            "--listen-https",
            "off",
            "--dev",
            "--listen-mqtt",
            "127.0.0.1:0",
        ],
        "",
    )
    .await;
    for _ in 0..5 {
        let mut s = must(TcpStream::connect(plain.addr("mqtt")).await, "connect");
        read_line(&mut s).await;
    }
}

#[tokio::test]
async fn proxy_protocol_gives_the_client_address() {
    let toml = "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\nproxy_protocol = true\n\n\
                [[listener]]\nname = \"lbtls\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtts\"\nproxy_protocol = true\n";
    let h = start(
        &[
            "--listen-mqtts",
            "off",
            "--listen-https",
            "off",
            "--tls-handshake-timeout",
            "1s",
        ],
        toml,
    )
    .await;
    let client: SocketAddr = must("203.0.113.9:4242".parse(), "addr");

    let mut s = must(TcpStream::connect(h.addr("lb")).await, "connect");
    let header = ferrocore_server::proxy::encode_v2(client, h.addr("lb"), &[]);
    // Header and the first client bytes in one segment: nothing after the header is lost.
    let mut first = header.clone();
    first.extend_from_slice(b"early");
    must(s.write_all(&first).await, "write");
    let line = read_line(&mut s).await;
    assert!(line.starts_with("Tcp peer=203.0.113.9:4242 "), "{line}");
    let mut early = [0u8; 5];
    must(s.read_exact(&mut early).await, "echo of early bytes");
    assert_eq!(&early, b"early");

    // v1 text header.
    let mut s = must(TcpStream::connect(h.addr("lb")).await, "connect");
    must(
        s.write_all(b"PROXY TCP4 198.51.100.3 127.0.0.1 5555 1883\r\n")
            .await,
        "write",
    );
    assert!(
        read_line(&mut s)
            .await
            .starts_with("Tcp peer=198.51.100.3:5555 ")
    );

    // Then TLS after the header.
    let mut tcp = must(TcpStream::connect(h.addr("lbtls")).await, "connect");
    must(tcp.write_all(&header).await, "write");
    let name = must(ServerName::try_from("localhost"), "name");
    let mut s = must(
        tokio_rustls::TlsConnector::from(Arc::new(client_config(&h, &[], None)))
            .connect(name, tcp)
            .await,
        "TLS",
    );
    assert!(
        read_line(&mut s)
            .await
            .starts_with("Tls peer=203.0.113.9:4242 ")
    );

    // No header: closed.
    let mut s = must(TcpStream::connect(h.addr("lb")).await, "connect");
    must(
        s.write_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
            .await,
        "write",
    );
    assert!(closed_by_server(&mut s).await);
}

#[tokio::test]
async fn silent_and_broken_clients_do_not_hurt_the_listener() {
    let h = start(&["--tls-handshake-timeout", "300ms"], "").await;
    // Says nothing: dropped after the handshake timeout.
    let mut silent = must(TcpStream::connect(h.addr("mqtts")).await, "connect");
    assert!(closed_by_server(&mut silent).await);
    // Not TLS at all.
    let mut junk = must(TcpStream::connect(h.addr("mqtts")).await, "connect");
    must(junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await, "write");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), junk.read_to_end(&mut sink)).await;
    // Closes mid-handshake.
    drop(must(TcpStream::connect(h.addr("https")).await, "connect"));
    // The listeners still work.
    let mut s = tls_connect(&h, "mqtts", &[]).await;
    read_line(&mut s).await;
    let mut s = tls_connect(&h, "https", &[b"http/1.1"]).await;
    assert!(
        http_get(&mut s, "/health")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn stop_accepting_closes_the_ports() {
    let mut h = start(&[], "").await;
    let addr = h.addr("mqtts");
    let mut open = tls_connect(&h, "mqtts", &[]).await;
    read_line(&mut open).await;
    h.server.stop_accepting().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
    // Open connections go on until the handler ends them.
    assert_echo(&mut open, b"still here").await;
}

#[tokio::test]
async fn server_certificate_reloads_without_restart() {
    let h = start(&[], "").await;
    let mut old = tls_connect(&h, "mqtts", &[]).await;
    read_line(&mut old).await;
    let new_name = "renamed.example.org";
    let id = must(
        identity::load_or_create(&h.data_dir, &[new_name.to_owned()], None),
        "identity",
    );
    assert!(id.issued_server_cert);
    must(h.tls.reload(&id), "reload");
    // New handshakes get the new certificate (valid for the new name, same root)...
    let mut s = tls_connect_with(
        h.addr("https"),
        client_config(&h, &[b"mqtt"], None),
        new_name,
    )
    .await;
    assert!(read_line(&mut s).await.contains(&format!("sni={new_name}")));
    // ...and open connections keep going.
    assert_echo(&mut old, b"old").await;
}

#[tokio::test]
async fn websocket_sessions_count_against_max_connections() {
    let h = start(&["--max-connections", "1", "--listen-mqtts", "off"], "").await;
    let tls = tls_connect(&h, "https", &[b"http/1.1"]).await;
    let mut req = must("wss://localhost/mqtt".into_client_request(), "request");
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", must("mqtt".parse(), "header"));
    let (mut ws, _) = must(
        tokio_tungstenite::client_async(req, tls).await,
        "WebSocket handshake",
    );
    match ws.next().await {
        Some(Ok(Message::Binary(b))) => assert!(b.starts_with(b"WebSocketTls ")),
        other => panic!("unexpected {other:?}"),
    }
    // The HTTP connection task has handed the socket to the session; the slot stays taken.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.server.open_connections(), 1);
    let mut second = must(TcpStream::connect(h.addr("https")).await, "second");
    assert!(closed_by_server(&mut second).await);
    drop(ws);
    for _ in 0..200 {
        if h.server.open_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.server.open_connections(), 0);
}
