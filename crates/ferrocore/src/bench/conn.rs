//! One simulated client's connection: TCP or TLS socket, CONNECT / CONNACK, SUBSCRIBE / SUBACK,
//! all through the workspace codec. No per-client channels or event loops: the task that owns a
//! `Client` reads and writes its socket itself.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::{Bytes, BytesMut};
use ferrocore_mqtt::{
    Connect, ConnectProperties, Packet, ProtocolVersion, QoS, Subscribe, SubscriptionOptions,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Largest packet the bench accepts from a broker.
pub const MAX_PACKET: usize = 1 << 20;

/// A TCP or TLS byte stream.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What every connection of a run shares.
pub struct Dialer {
    pub addr: SocketAddr,
    pub bind: Vec<IpAddr>,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub version: ProtocolVersion,
    pub keep_alive: u16,
    pub clean_session: bool,
    /// MQTT 5 session expiry sent when `clean_session` is false.
    pub session_expiry: u32,
    pub timeout: Duration,
    /// The MQTT username and password of each client (custom authentication), if any.
    pub login: Option<Login>,
}

/// What clients present to a custom authorizer in CONNECT.
pub struct Login {
    /// Every client's username (e.g. `bench?x-amz-customauthorizer-name=<authorizer>`).
    pub username: String,
    pub passwords: Passwords,
}

pub enum Passwords {
    /// Every client sends the same password.
    Same(Bytes),
    /// Client `i` sends the `i`-th (a token of its own).
    PerClient(Vec<Bytes>),
}

impl Login {
    fn password(&self, index: usize) -> Option<Bytes> {
        match &self.passwords {
            Passwords::Same(p) => Some(p.clone()),
            Passwords::PerClient(all) => all.get(index).cloned(),
        }
    }
}

/// A connected MQTT client.
pub struct Client {
    pub stream: Stream,
    pub rbuf: BytesMut,
    pub version: ProtocolVersion,
    /// The broker's receive maximum (MQTT 5), if it announced one.
    pub server_receive_max: Option<u16>,
}

impl Dialer {
    /// TCP (+ TLS) connect, CONNECT, CONNACK, all within the connect timeout.
    pub async fn connect(&self, index: usize, client_id: &str) -> anyhow::Result<Client> {
        tokio::time::timeout(self.timeout, self.connect_inner(index, client_id))
            .await
            .map_err(|_| anyhow!("connect timed out after {:?}", self.timeout))?
    }

    async fn connect_inner(&self, index: usize, client_id: &str) -> anyhow::Result<Client> {
        let sock = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if !self.bind.is_empty() {
            let ip = self.bind[index % self.bind.len()];
            // Leave the port to connect(), which only needs the 4-tuple to be unique; a port
            // chosen at bind() must be free for every destination, and searching a crowded
            // ephemeral range for one costs the load generator more than the broker.
            let _ = nix::sys::socket::setsockopt(
                &sock,
                nix::sys::socket::sockopt::IpBindAddressNoPort,
                &true,
            );
            sock.bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("bind {ip}"))?;
        }
        let tcp = sock
            .connect(self.addr)
            .await
            .with_context(|| format!("connect {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let stream = match &self.tls {
            None => Stream::Tcp(tcp),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake")?;
                Stream::Tls(Box::new(tls))
            }
        };
        let mut properties = ConnectProperties::default();
        if self.version.is_v5() {
            properties.receive_maximum = Some(u16::MAX);
            if !self.clean_session {
                properties.session_expiry_interval = Some(self.session_expiry);
            }
        }
        let connect = Packet::Connect(Box::new(Connect {
            protocol: self.version,
            clean_start: self.clean_session,
            keep_alive: self.keep_alive,
            client_id: client_id.to_owned(),
            username: self.login.as_ref().map(|l| l.username.clone()),
            password: self.login.as_ref().and_then(|l| l.password(index)),
            properties,
            ..Connect::default()
        }));
        let mut client = Client {
            stream,
            rbuf: BytesMut::with_capacity(256),
            version: self.version,
            server_receive_max: None,
        };
        client.send(&connect).await?;
        match client.recv().await? {
            Packet::ConnAck(ack) if ack.code == 0 => {
                client.server_receive_max = ack.properties.receive_maximum;
                Ok(client)
            }
            Packet::ConnAck(ack) => bail!("CONNACK refused with code {:#04x}", ack.code),
            other => bail!("expected CONNACK, got {}", packet_name(&other)),
        }
    }
}

impl Client {
    /// Encodes and writes one packet (setup and teardown only; the hot loops batch).
    pub async fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        let mut buf = BytesMut::with_capacity(64);
        ferrocore_mqtt::encode(packet, self.version, &mut buf)?;
        self.stream.write_all(&buf).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Reads until one whole packet has arrived.
    pub async fn recv(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(p) = ferrocore_mqtt::decode(&mut self.rbuf, Some(self.version), MAX_PACKET)?
            {
                return Ok(p);
            }
            self.rbuf.reserve(4096);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                bail!("connection closed by the broker");
            }
        }
    }

    /// SUBSCRIBE to one filter and wait for a successful SUBACK (bounded by `timeout`).
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let sub = Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(
                filter.to_owned(),
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            )],
            ..Default::default()
        });
        let fut = async {
            self.send(&sub).await?;
            loop {
                match self.recv().await? {
                    Packet::SubAck(ack) if ack.packet_id == 1 => {
                        return match ack.reasons.first() {
                            Some(&r) if r < 0x80 => Ok(()),
                            r => Err(anyhow!("SUBACK for {filter} refused: {r:?}")),
                        };
                    }
                    // A persistent session may replay queued messages before the SUBACK.
                    Packet::Publish(_) | Packet::PubRel(_) => continue,
                    other => bail!("expected SUBACK, got {}", packet_name(&other)),
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| anyhow!("SUBACK timed out after {timeout:?}"))?
    }

    /// Best-effort DISCONNECT and close, bounded in time.
    pub async fn disconnect(mut self) {
        let disc = Packet::Disconnect(Default::default());
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.send(&disc).await;
            let _ = self.stream.shutdown().await;
        })
        .await;
    }
}

pub fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect(_) => "DISCONNECT",
        Packet::Auth(_) => "AUTH",
    }
}

/// A client certificate chain and its private key (PEM files), presented for mTLS.
pub struct ClientCert<'a> {
    pub cert_file: &'a Path,
    pub key_file: &'a Path,
}

/// rustls client config on aws-lc-rs: TLS 1.3/1.2 defaults, session resumption disabled so each
/// connection is a full handshake; with `client_cert`, mTLS.
pub fn tls_config(
    ca_file: Option<&Path>,
    insecure: bool,
    alpn: &[String],
    client_cert: Option<ClientCert<'_>>,
) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        let path = ca_file.ok_or_else(|| anyhow!("--tls needs --ca-file (or --insecure)"))?;
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("read {}", path.display()))?
        {
            roots.add(cert.with_context(|| format!("parse {}", path.display()))?)?;
        }
        if roots.is_empty() {
            bail!("no certificate in {}", path.display());
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some(ClientCert {
            cert_file,
            key_file,
        }) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .with_context(|| format!("read {}", cert_file.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parse {}", cert_file.display()))?;
            if chain.is_empty() {
                bail!("no certificate in {}", cert_file.display());
            }
            let key = PrivateKeyDer::from_pem_file(key_file)
                .with_context(|| format!("read the private key in {}", key_file.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("client certificate and key do not match")?
        }
    };
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Ok(config)
}

/// `--insecure`: accepts any server certificate but still verifies the handshake signature, so
/// the client does the same cryptographic work per handshake minus chain validation.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Encodes a PUBLISH once and patches the timestamp, run tag and packet id per message, so the
/// hot loop costs one memcpy per message instead of an encode and an allocation.
pub struct PublishTemplate {
    bytes: Vec<u8>,
    payload_off: usize,
    pid_off: Option<usize>,
}

impl PublishTemplate {
    pub fn new(
        topic: &str,
        qos: QoS,
        payload_size: usize,
        version: ProtocolVersion,
    ) -> anyhow::Result<PublishTemplate> {
        let packet = Packet::Publish(ferrocore_mqtt::Publish {
            qos,
            topic: topic.to_owned(),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 1 },
            payload: Bytes::from(vec![0u8; payload_size]),
            ..Default::default()
        });
        let mut buf = BytesMut::new();
        ferrocore_mqtt::encode(&packet, version, &mut buf)?;
        let bytes = buf.to_vec();
        // Fixed header: type byte, then the remaining length as a variable byte integer.
        let mut header_len = 1;
        while bytes.get(header_len).is_some_and(|b| b & 0x80 != 0) {
            header_len += 1;
        }
        header_len += 1;
        // Variable header: topic (2-byte length + bytes), then the packet id for QoS > 0; the
        // payload is the tail of the packet in both versions.
        let pid_off = (qos != QoS::AtMostOnce).then_some(header_len + 2 + topic.len());
        let payload_off = bytes
            .len()
            .checked_sub(payload_size)
            .ok_or_else(|| anyhow!("encoded PUBLISH shorter than its payload"))?;
        let t = PublishTemplate {
            bytes,
            payload_off,
            pid_off,
        };
        t.self_check(topic, qos, payload_size, version)?;
        Ok(t)
    }

    /// Decodes a patched copy with the codec to prove the offsets right.
    fn self_check(
        &self,
        topic: &str,
        qos: QoS,
        payload_size: usize,
        version: ProtocolVersion,
    ) -> anyhow::Result<()> {
        let mut buf = BytesMut::new();
        self.append(
            &mut buf,
            0x0102_0304_0506_0708,
            0x1112_1314_1516_1718,
            0xBEEF,
        );
        match ferrocore_mqtt::decode(&mut buf, Some(version), MAX_PACKET)? {
            Some(Packet::Publish(p))
                if p.topic == topic
                    && p.qos == qos
                    && p.payload.len() == payload_size
                    && (qos == QoS::AtMostOnce || p.packet_id == 0xBEEF)
                    && read_u64(&p.payload, 0) == Some(0x0102_0304_0506_0708)
                    && (payload_size < 16
                        || read_u64(&p.payload, 8) == Some(0x1112_1314_1516_1718))
                    && buf.is_empty() =>
            {
                Ok(())
            }
            other => Err(anyhow!(
                "PUBLISH template does not round-trip through the codec: {other:?}"
            )),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends one PUBLISH with `ts` (and `tag` when the payload has room) in the payload.
    pub fn append(&self, out: &mut BytesMut, ts: u64, tag: u64, packet_id: u16) {
        let base = out.len();
        out.extend_from_slice(&self.bytes);
        let p = base + self.payload_off;
        let payload_len = self.bytes.len() - self.payload_off;
        out[p..p + 8].copy_from_slice(&ts.to_be_bytes());
        if payload_len >= 16 {
            out[p + 8..p + 16].copy_from_slice(&tag.to_be_bytes());
        }
        if let Some(off) = self.pid_off {
            out[base + off..base + off + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
    }
}

pub fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    Some(u64::from_be_bytes(s.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_template_round_trips_through_the_codec() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                for (topic, size) in [("bench/7", 64), ("bench/p2p/99", 8), ("b", 200)] {
                    let t = PublishTemplate::new(topic, qos, size, version).expect("template");
                    let mut buf = BytesMut::new();
                    t.append(&mut buf, 42, 7, 300);
                    t.append(&mut buf, 43, 7, 301);
                    assert_eq!(buf.len(), 2 * t.len());
                    for (ts, id) in [(42, 300), (43, 301)] {
                        let p = ferrocore_mqtt::decode(&mut buf, Some(version), MAX_PACKET)
                            .expect("decodes");
                        let Some(Packet::Publish(p)) = p else {
                            panic!("not a PUBLISH: {p:?}")
                        };
                        assert_eq!(
                            (p.topic.as_str(), p.qos, p.payload.len()),
                            (topic, qos, size)
                        );
                        assert_eq!(read_u64(&p.payload, 0), Some(ts));
                        if size >= 16 {
                            assert_eq!(read_u64(&p.payload, 8), Some(7));
                        }
                        if qos != QoS::AtMostOnce {
                            assert_eq!(p.packet_id, id);
                        }
                    }
                    assert!(buf.is_empty());
                }
            }
        }
    }

    #[test]
    fn tls_config_needs_a_ca_or_insecure() {
        assert!(tls_config(None, false, &[], None).is_err());
        let c = tls_config(None, true, &["mqtt".into()], None).expect("insecure config");
        assert_eq!(c.alpn_protocols, vec![b"mqtt".to_vec()]);
        assert!(!c.client_auth_cert_resolver.has_certs());
        assert!(tls_config(Some(Path::new("/nonexistent.pem")), false, &[], None).is_err());
        let missing = ClientCert {
            cert_file: Path::new("/nonexistent.pem"),
            key_file: Path::new("/nonexistent.key"),
        };
        assert!(tls_config(None, true, &[], Some(missing)).is_err());

        let dir = tempfile::tempdir().expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["device".to_owned()])
            .and_then(|p| p.self_signed(&key))
            .expect("certificate");
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        let mtls = ClientCert {
            cert_file: &cert_file,
            key_file: &key_file,
        };
        let c = tls_config(None, true, &[], Some(mtls)).expect("mTLS config");
        assert!(c.client_auth_cert_resolver.has_certs());
        // A key that is not the certificate's.
        let other = rcgen::KeyPair::generate().expect("key");
        std::fs::write(&key_file, other.serialize_pem()).expect("write key");
        let mismatched = ClientCert {
            cert_file: &cert_file,
            key_file: &key_file,
        };
        assert!(tls_config(None, true, &[], Some(mismatched)).is_err());
    }
}
