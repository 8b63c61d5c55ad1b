//! Device authentication through the real listeners: the registry's client-certificate
//! verifier in TLS handshakes (alerts), the CONNECT check after TLS 1.3 resumption, live
//! revocation of open connections, and JITR with its event.

#![allow(clippy::unwrap_used)] // a failed step should fail the test loudly

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use clap::Parser;
use ferrocore_broker::{Authentication, Broker, BrokerConfig};
use ferrocore_identity::registry::{
    Arns, CaCertificateRecord, CaStatus, CertificateMode, CertificateRecord, CertificateStatus,
    Change, PolicyRecord, PolicyVersionRecord, Registry, Thing, ThingGroup, ThingPrincipal,
    certificate_arn, thing_group_arn,
};
use ferrocore_identity::x509::{self, CaSigner, Certificate, Validity};
use ferrocore_mqtt::{
    ConnAck, Connect, Packet, ProtocolVersion, QoS, Subscribe, SubscriptionOptions, reason,
};
use ferrocore_server::devices::{DeviceAuth, DeviceVerifier, watch_registry};
use ferrocore_server::{RunningServer, Settings, identity};
use ferrocore_store::{Durability, Store};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

use common::{Cli, must, root_store, serve};

struct Harness {
    _tmp: tempfile::TempDir,
    server: RunningServer,
    roots: Arc<rustls::RootCertStore>,
    registry: Arc<Registry>,
    broker: Arc<Broker>,
}

async fn start() -> Harness {
    let tmp = must(tempfile::tempdir(), "tempdir");
    let data_dir = tmp.path().join("data");
    let data = data_dir.to_string_lossy().into_owned();
    let argv = [
        "serve",
        "--data-dir",
        &data,
        "--dev",
        "--listen-mqtt",
        "127.0.0.1:0",
        "--listen-mqtts",
        "127.0.0.1:0",
        "--listen-https",
        "127.0.0.1:0",
    ];
    let flags = must(Cli::try_parse_from(argv), "flags").flags;
    let settings = must(Settings::from_flags(flags), "settings");
    let id = must(
        identity::load_or_create(&settings.data_dir, &settings.endpoint_names, None),
        "identity",
    );
    let store = must(
        Store::open_sqlite(&data_dir.join("t.db"), Durability::Process).await,
        "store",
    );
    let registry = Arc::new(must(
        Registry::open(
            store.clone(),
            Arns {
                region: "us-east-1".into(),
                account_id: ACCOUNT.into(),
            },
        )
        .await,
        "registry",
    ));
    let devices = DeviceAuth::new(registry.clone());
    let broker = must(
        Broker::start_with_auth(
            BrokerConfig {
                arns: ferrocore_policy::Arns::new("us-east-1", ACCOUNT),
                ..BrokerConfig::default()
            },
            store,
            Authentication {
                certificates: Some(devices.clone()),
                custom: None,
            },
        )
        .await,
        "broker",
    );
    watch_registry(&devices, &broker);
    let verifier = DeviceVerifier::new(devices, &broker);
    let (server, _) = serve(&settings, &id, broker.clone(), verifier);
    let h = Harness {
        _tmp: tmp,
        server,
        roots: root_store(&data_dir),
        registry,
        broker,
    };
    h.policy(
        "allow-all",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#,
    )
    .await;
    h
}

const ACCOUNT: &str = "123456789012";
const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

impl Harness {
    fn addr(&self, name: &str) -> SocketAddr {
        self.server
            .address(name)
            .unwrap_or_else(|| panic!("no listener {name}"))
    }

    async fn put(&self, change: Change) {
        must(
            self.registry.write(|_, _| Ok(((), vec![change]))).await,
            "registry write",
        );
    }

    /// Registers `d` with the `allow-all` policy attached.
    async fn register(&self, d: &Device, status: CertificateStatus, ca: Option<&TestCa>) {
        self.register_bare(d, status, ca).await;
        self.attach("allow-all", &d.cert.id, true).await;
    }

    /// Registers `d` without policies.
    async fn register_bare(&self, d: &Device, status: CertificateStatus, ca: Option<&TestCa>) {
        let ca_id = ca.map(|c| c.cert.id.clone());
        let mode = CertificateMode::Default;
        let record = CertificateRecord::new(&self.registry.ctx(), &d.cert, status, ca_id, mode);
        self.put(Change::Certificate {
            id: d.cert.id.clone(),
            new: Some(must(record, "certificate record")),
        })
        .await;
    }

    /// Creates policy `name` with `document`, or adds it as a new default version.
    async fn policy(&self, name: &str, document: &str) {
        let now = self.registry.ctx().now_ms;
        let version = PolicyVersionRecord {
            document: document.replace("{ARN}", ARN),
            create_date_ms: now,
        };
        let record = match self.registry.read(|s| s.policies.get(name).cloned()) {
            Some(mut p) => {
                p.versions.insert(p.next_version, version);
                p.default_version = p.next_version;
                p.next_version += 1;
                p
            }
            None => PolicyRecord {
                name: name.into(),
                versions: [(1, version)].into(),
                default_version: 1,
                next_version: 2,
                creation_date_ms: now,
                last_modified_date_ms: now,
                generation_id: "g".into(),
            },
        };
        self.put(Change::Policy {
            name: name.into(),
            new: Some(record),
        })
        .await;
    }

    /// Attaches (or detaches) policy `name` to a certificate.
    async fn attach(&self, name: &str, certificate_id: &str, attached: bool) {
        self.put(Change::PolicyAttachment {
            policy: name.into(),
            target: certificate_arn(self.registry.arns(), certificate_id),
            attached,
        })
        .await;
    }

    async fn register_ca(&self, ca: &TestCa, status: CaStatus, auto_registration: bool) {
        let ctx = self.registry.ctx();
        let mode = CertificateMode::Default;
        let record =
            CaCertificateRecord::new(&ctx, &ca.cert, status, auto_registration, mode, None);
        self.put(Change::CaCertificate {
            id: ca.cert.id.clone(),
            new: Some(must(record, "CA record")),
        })
        .await;
    }

    async fn set_status(&self, d: &Device, status: CertificateStatus) {
        let mut r = self
            .registry
            .read(|s| s.certificates.get(&d.cert.id).cloned())
            .unwrap_or_else(|| panic!("{} not registered", d.cert.id));
        r.status = status;
        self.put(Change::Certificate {
            id: r.id.clone(),
            new: Some(r),
        })
        .await;
    }

    fn config(&self, device: Option<&Device>, tls12: bool) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let builder = must(
            rustls::ClientConfig::builder_with_provider(provider).with_protocol_versions(versions),
            "versions",
        )
        .with_root_certificates(self.roots.clone());
        let mut config = match device {
            Some(d) => must(
                builder.with_client_auth_cert(
                    vec![CertificateDer::from(d.cert.der.clone())],
                    must(
                        PrivateKeyDer::from_pem_slice(d.key_pem.as_bytes()),
                        "device key",
                    ),
                ),
                "client cert",
            ),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"x-amzn-mqtt-ca".to_vec()];
        Arc::new(config)
    }

    async fn tls(
        &self,
        listener: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr(listener)).await?;
        let name = must(ServerName::try_from("localhost"), "server name");
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
    }
}

struct TestCa {
    cert: Certificate,
    signer: CaSigner,
}

fn make_ca(cn: &str) -> TestCa {
    let key = must(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256), "key");
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = must(params.self_signed(&key), "CA").pem();
    TestCa {
        cert: must(x509::parse_certificate(pem.as_bytes()), "parse CA"),
        signer: must(
            CaSigner::from_pem(pem.as_bytes(), key.serialize_pem().as_bytes()),
            "signer",
        ),
    }
}

struct Device {
    cert: Certificate,
    key_pem: String,
}

fn device_of(ca: &TestCa, cn: &str) -> Device {
    let key = must(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256), "key");
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    let csr = must(must(params.serialize_request(&key), "csr").pem(), "csr pem");
    let now = unix_now();
    let cert = must(
        x509::issue_from_csr(
            csr.as_bytes(),
            &ca.signer,
            Validity {
                not_before: now - 3600,
                not_after: now + 86_400,
            },
        ),
        "issue",
    );
    Device {
        cert,
        key_pem: key.serialize_pem(),
    }
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(0)
}

// --- a minimal MQTT client over any stream ---

struct Mqtt<S> {
    io: S,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Mqtt<S> {
    fn new(io: S) -> Self {
        Mqtt {
            io,
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, p: Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        must(
            ferrocore_mqtt::encode(&p, ProtocolVersion::V5, &mut out),
            "encode",
        );
        self.io.write_all(&out).await?;
        self.io.flush().await
    }

    /// The next packet; `Err` when the stream failed or closed (within 10 s).
    async fn recv(&mut self) -> std::io::Result<Packet> {
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(p) = must(
                    ferrocore_mqtt::decode(&mut self.buf, Some(ProtocolVersion::V5), usize::MAX),
                    "decode",
                ) {
                    return Ok(p);
                }
                if self.io.read_buf(&mut self.buf).await? == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed",
                    ));
                }
            }
        });
        match wait.await {
            Ok(r) => r,
            Err(_) => panic!("no packet and no close within 10 s"),
        }
    }

    async fn connect(&mut self, client_id: &str) -> std::io::Result<ConnAck> {
        self.send(Packet::Connect(Box::new(Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.into(),
            ..Connect::default()
        })))
        .await?;
        match self.recv().await? {
            Packet::ConnAck(a) => Ok(a),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}

/// Connects over TLS with `device`'s certificate and sends CONNECT: the CONNACK, or the
/// error (the TLS alert) that ended the connection.
async fn mqtt_tls(
    h: &Harness,
    listener: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<(Mqtt<tokio_rustls::client::TlsStream<TcpStream>>, ConnAck)> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let stream = h.tls(listener, config).await?;
    let mut m = Mqtt::new(stream);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ack = m.connect(&format!("dev-{n}")).await?;
    Ok((m, ack))
}

/// [`mqtt_tls`] with a given client id.
async fn mqtt_tls_as(
    h: &Harness,
    config: Arc<rustls::ClientConfig>,
    client_id: &str,
) -> (Mqtt<tokio_rustls::client::TlsStream<TcpStream>>, ConnAck) {
    let stream = must(h.tls("mqtts", config).await, "TLS");
    let mut m = Mqtt::new(stream);
    let ack = must(m.connect(client_id).await, "connect");
    (m, ack)
}

fn alert_of(r: std::io::Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("connected, expected a TLS alert"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn registered_active_certificates_connect_and_others_get_alerts() {
    let h = start().await;
    let own = make_ca("Ferrocore device CA (unregistered)");
    let good = device_of(&own, "good");
    let inactive = device_of(&own, "inactive");
    let revoked = device_of(&own, "revoked");
    let stranger = device_of(&own, "stranger");
    h.register(&good, CertificateStatus::Active, None).await;
    h.register(&inactive, CertificateStatus::Inactive, None)
        .await;
    h.register(&revoked, CertificateStatus::Revoked, None).await;

    for listener in ["mqtts", "https"] {
        let (mut m, ack) = must(
            mqtt_tls(&h, listener, h.config(Some(&good), false)).await,
            listener,
        );
        assert_eq!(ack.code, reason::SUCCESS, "{listener}");
        m.send(Packet::PingReq).await.unwrap();
        assert!(matches!(m.recv().await.unwrap(), Packet::PingResp));
    }
    // No certificate: TLS is fine (client auth is optional), CONNECT is not authorized.
    let (_m, ack) = must(mqtt_tls(&h, "mqtts", h.config(None, false)).await, "none");
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);

    // TLS 1.3 checks the client certificate after the client's handshake ends: the alert
    // arrives on the first read.
    let e = alert_of(mqtt_tls(&h, "mqtts", h.config(Some(&inactive), false)).await);
    assert!(e.contains("CertificateUnknown"), "{e}");
    let e = alert_of(mqtt_tls(&h, "mqtts", h.config(Some(&revoked), false)).await);
    assert!(e.contains("CertificateRevoked"), "{e}");
    let e = alert_of(mqtt_tls(&h, "https", h.config(Some(&stranger), false)).await);
    assert!(e.contains("CertificateUnknown"), "{e}");
    // TLS 1.2: the handshake itself fails.
    let e = alert_of(h.tls("mqtts", h.config(Some(&revoked), true)).await);
    assert!(e.contains("CertificateRevoked"), "{e}");
    let (_m, ack) = must(
        mqtt_tls(&h, "mqtts", h.config(Some(&good), true)).await,
        "TLS 1.2",
    );
    assert_eq!(ack.code, reason::SUCCESS);
}

#[tokio::test]
async fn ca_status_and_chain_decide_for_certificates_registered_under_a_ca() {
    let h = start().await;
    let ca = make_ca("Fleet CA");
    let dev = device_of(&ca, "fleet-1");
    h.register_ca(&ca, CaStatus::Active, false).await;
    h.register(&dev, CertificateStatus::Active, Some(&ca)).await;
    let (mut m, ack) = must(
        mqtt_tls(&h, "mqtts", h.config(Some(&dev), false)).await,
        "connect",
    );
    assert_eq!(ack.code, reason::SUCCESS);

    // Deactivating the CA closes the open connection and refuses new ones.
    h.register_ca(&ca, CaStatus::Inactive, false).await;
    match m.recv().await.unwrap() {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    assert!(m.recv().await.is_err());
    let e = alert_of(mqtt_tls(&h, "mqtts", h.config(Some(&dev), false)).await);
    assert!(e.contains("CertificateUnknown"), "{e}");
}

#[tokio::test]
async fn revoking_closes_open_connections_and_resumed_sessions_are_checked_at_connect() {
    let h = start().await;
    let own = make_ca("own");
    let dev = device_of(&own, "dev");
    h.register(&dev, CertificateStatus::Active, None).await;
    let config = h.config(Some(&dev), false);

    let (mut m, ack) = must(mqtt_tls(&h, "mqtts", config.clone()).await, "first");
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(h.broker.certificate_connections(&dev.cert.id), 1);
    m.send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    assert!(m.recv().await.is_err());

    // Deactivated: a resumed TLS 1.3 session skips the verifier, CONNECT still refuses.
    h.set_status(&dev, CertificateStatus::Inactive).await;
    let stream = must(h.tls("mqtts", config.clone()).await, "resumed handshake");
    assert_eq!(
        stream.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    let mut m = Mqtt::new(stream);
    assert_eq!(m.connect("dev").await.unwrap().code, reason::NOT_AUTHORIZED);

    // Active again: connect, then revoke while connected.
    h.set_status(&dev, CertificateStatus::Active).await;
    let (mut a, _) = must(mqtt_tls(&h, "mqtts", config.clone()).await, "again");
    let (mut b, _) = must(mqtt_tls(&h, "https", config.clone()).await, "second");
    h.set_status(&dev, CertificateStatus::Revoked).await;
    for m in [&mut a, &mut b] {
        match m.recv().await.unwrap() {
            Packet::Disconnect(d) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
            other => panic!("expected DISCONNECT 0x87, got {other:?}"),
        }
    }
    // Deleted: the same.
    let other = device_of(&own, "other");
    h.register(&other, CertificateStatus::Active, None).await;
    let (mut c, _) = must(
        mqtt_tls(&h, "mqtts", h.config(Some(&other), false)).await,
        "other",
    );
    h.put(Change::Certificate {
        id: other.cert.id.clone(),
        new: None,
    })
    .await;
    assert!(matches!(c.recv().await.unwrap(), Packet::Disconnect(_)));
}

#[tokio::test]
async fn jitr_registers_pending_activation_and_announces_it() {
    let h = start().await;
    let ca = make_ca("JITR CA");
    h.register_ca(&ca, CaStatus::Active, true).await;
    // An anonymous subscriber on the dev listener.
    let tcp = must(TcpStream::connect(h.addr("mqtt")).await, "tcp");
    let mut sub = Mqtt::new(tcp);
    assert_eq!(sub.connect("watcher").await.unwrap().code, reason::SUCCESS);
    sub.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(
            "$aws/events/certificates/registered/#".into(),
            SubscriptionOptions {
                qos: QoS::AtMostOnce,
                ..Default::default()
            },
        )],
        properties: Default::default(),
    }))
    .await
    .unwrap();
    assert!(matches!(sub.recv().await.unwrap(), Packet::SubAck(_)));

    let dev = device_of(&ca, "newcomer");
    let e = alert_of(mqtt_tls(&h, "mqtts", h.config(Some(&dev), false)).await);
    assert!(e.contains("CertificateUnknown"), "{e}");
    let Packet::Publish(p) = sub.recv().await.unwrap() else {
        panic!("expected the registration event");
    };
    assert_eq!(
        p.topic,
        format!("$aws/events/certificates/registered/{}", ca.cert.id)
    );
    let v: serde_json::Value = must(serde_json::from_slice(&p.payload), "json");
    assert_eq!(v["certificateId"], dev.cert.id.as_str());
    assert_eq!(v["caCertificateId"], ca.cert.id.as_str());
    assert_eq!(v["certificateStatus"], "PENDING_ACTIVATION");
    assert_eq!(v["awsAccountId"], "123456789012");
    let registered_at = v["certificateRegistrationTimestamp"].as_i64().unwrap_or(0);
    assert!(registered_at > 1_600_000_000_000, "{v}");
    let status = h
        .registry
        .read(|s| s.certificates.get(&dev.cert.id).map(|r| r.status));
    assert_eq!(status, Some(CertificateStatus::PendingActivation));

    // Trying again: refused, announced again with the same registration time.
    let e = alert_of(mqtt_tls(&h, "mqtts", h.config(Some(&dev), false)).await);
    assert!(e.contains("CertificateUnknown"), "{e}");
    let Packet::Publish(p) = sub.recv().await.unwrap() else {
        panic!("expected the event again");
    };
    let again: serde_json::Value = must(serde_json::from_slice(&p.payload), "json");
    assert_eq!(again["certificateRegistrationTimestamp"], registered_at);

    // Activated by the operator (the JITR flow's last step), given a policy: it connects.
    h.set_status(&dev, CertificateStatus::Active).await;
    h.attach("allow-all", &dev.cert.id, true).await;
    let (_m, ack) = must(
        mqtt_tls(&h, "mqtts", h.config(Some(&dev), false)).await,
        "activated",
    );
    assert_eq!(ack.code, reason::SUCCESS);
}

impl<S: AsyncRead + AsyncWrite + Unpin> Mqtt<S> {
    async fn subscribe(&mut self, filter: &str) -> Vec<u8> {
        self.send(Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(
                filter.into(),
                SubscriptionOptions {
                    qos: QoS::AtMostOnce,
                    ..Default::default()
                },
            )],
            properties: Default::default(),
        }))
        .await
        .unwrap();
        match self.recv().await.unwrap() {
            Packet::SubAck(a) => a.reasons,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    async fn publish(&mut self, topic: &str) {
        self.send(Packet::Publish(ferrocore_mqtt::Publish {
            topic: topic.into(),
            payload: bytes::Bytes::copy_from_slice(topic.as_bytes()),
            ..Default::default()
        }))
        .await
        .unwrap();
    }

    /// The topic of the next PUBLISH, or `None` if none comes within `wait` (PINGRESP ends
    /// the wait early: send a PINGREQ after what should have been delivered).
    async fn next_topic(&mut self) -> Option<String> {
        self.send(Packet::PingReq).await.unwrap();
        match self.recv().await.unwrap() {
            Packet::Publish(p) => {
                // Its PINGRESP follows.
                assert!(matches!(self.recv().await.unwrap(), Packet::PingResp));
                Some(p.topic)
            }
            Packet::PingResp => None,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn expect_not_authorized_disconnect<S: AsyncRead + AsyncWrite + Unpin>(m: &mut Mqtt<S>) {
    match m.recv().await.unwrap() {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    assert!(m.recv().await.is_err());
}

#[tokio::test]
async fn a_certificate_without_policies_is_refused_at_connect() {
    let h = start().await;
    let dev = device_of(&make_ca("own"), "bare");
    h.register_bare(&dev, CertificateStatus::Active, None).await;
    let (_m, ack) = mqtt_tls_as(&h, h.config(Some(&dev), false), "bare").await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    assert_eq!(h.broker.denials().connect, 1);
}

#[tokio::test]
async fn policy_versions_and_attachments_reach_open_connections() {
    let h = start().await;
    let dev = device_of(&make_ca("own"), "d");
    h.register_bare(&dev, CertificateStatus::Active, None).await;
    h.policy(
        "dev",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/${iot:ClientId}"},
            {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"{ARN}:topic/t/*"},
            {"Effect":"Allow","Action":"iot:Subscribe","Resource":"{ARN}:topicfilter/t/*"}]}"#,
    )
    .await;
    h.attach("dev", &dev.cert.id, true).await;
    let (mut m, ack) = mqtt_tls_as(&h, h.config(Some(&dev), false), "d1").await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(m.subscribe("t/#").await, [0]);
    assert_eq!(m.subscribe("u/#").await, [reason::NOT_AUTHORIZED]);
    m.publish("t/a").await;
    assert_eq!(m.next_topic().await.as_deref(), Some("t/a"));

    // A new default version: Receive only under t/ok/.
    h.policy(
        "dev",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/${iot:ClientId}"},
            {"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/t/*"},
            {"Effect":"Allow","Action":"iot:Receive","Resource":"{ARN}:topic/t/ok/*"}]}"#,
    )
    .await;
    m.publish("t/a").await;
    assert_eq!(m.next_topic().await, None);
    m.publish("t/ok/b").await;
    assert_eq!(m.next_topic().await.as_deref(), Some("t/ok/b"));

    // Detached: no policy left, no iot:Connect: closed.
    h.attach("dev", &dev.cert.id, false).await;
    expect_not_authorized_disconnect(&mut m).await;
    for _ in 0..500 {
        if h.broker.connected_certificates().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the closed connection stayed in the index");
}

#[tokio::test]
async fn thing_attributes_groups_and_attachments_reach_open_connections() {
    let h = start().await;
    let dev = device_of(&make_ca("own"), "lamp");
    h.register_bare(&dev, CertificateStatus::Active, None).await;
    let thing = |site: &str| Thing {
        name: "lamp-1".into(),
        id: "t-1".into(),
        type_name: None,
        attributes: [("site".to_owned(), site.to_owned())].into(),
        version: 1,
    };
    h.put(Change::Thing {
        name: "lamp-1".into(),
        new: Some(thing("s1")),
    })
    .await;
    h.put(Change::ThingPrincipal {
        thing: "lamp-1".into(),
        principal: certificate_arn(h.registry.arns(), &dev.cert.id),
        new: Some(ThingPrincipal {
            thing: "lamp-1".into(),
            principal: certificate_arn(h.registry.arns(), &dev.cert.id),
            exclusive: false,
        }),
    })
    .await;
    // The policy comes from the thing's group's parent.
    for (name, parent) in [("site", None), ("lamps", Some("site"))] {
        h.put(Change::ThingGroup {
            name: name.into(),
            new: Some(ThingGroup {
                name: name.into(),
                id: format!("g-{name}"),
                parent: parent.map(str::to_owned),
                description: None,
                attributes: Default::default(),
                version: 1,
                creation_date_ms: 0,
            }),
        })
        .await;
    }
    h.put(Change::GroupMembership {
        group: "lamps".into(),
        thing: "lamp-1".into(),
        member: true,
    })
    .await;
    h.policy(
        "site",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/${iot:Connection.Thing.ThingName}"},
            {"Effect":"Allow","Action":"iot:Subscribe","Resource":"*"},
            {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],
             "Resource":"{ARN}:topic/${iot:Connection.Thing.Attributes[site]}/*"}]}"#,
    )
    .await;
    h.put(Change::PolicyAttachment {
        policy: "site".into(),
        target: thing_group_arn(h.registry.arns(), "site"),
        attached: true,
    })
    .await;

    // Another client id is not the thing: no thing, no group policies, no Connect.
    let (_x, ack) = mqtt_tls_as(&h, h.config(Some(&dev), false), "other").await;
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    let (mut m, ack) = mqtt_tls_as(&h, h.config(Some(&dev), false), "lamp-1").await;
    assert_eq!(ack.code, reason::SUCCESS);
    assert_eq!(m.subscribe("#").await, [0]);
    m.publish("s1/a").await;
    assert_eq!(m.next_topic().await.as_deref(), Some("s1/a"));

    // The attribute changes: the variable follows.
    h.put(Change::Thing {
        name: "lamp-1".into(),
        new: Some(thing("s2")),
    })
    .await;
    m.publish("s1/b").await;
    assert_eq!(m.next_topic().await, None);
    m.publish("s2/b").await;
    assert_eq!(m.next_topic().await.as_deref(), Some("s2/b"));

    // Out of the group: no policy any more, closed.
    h.put(Change::GroupMembership {
        group: "lamps".into(),
        thing: "lamp-1".into(),
        member: false,
    })
    .await;
    expect_not_authorized_disconnect(&mut m).await;

    // Back in the group, connected; then the thing is detached from the certificate.
    h.put(Change::GroupMembership {
        group: "lamps".into(),
        thing: "lamp-1".into(),
        member: true,
    })
    .await;
    let (mut m, ack) = mqtt_tls_as(&h, h.config(Some(&dev), false), "lamp-1").await;
    assert_eq!(ack.code, reason::SUCCESS);
    h.put(Change::ThingPrincipal {
        thing: "lamp-1".into(),
        principal: certificate_arn(h.registry.arns(), &dev.cert.id),
        new: None,
    })
    .await;
    expect_not_authorized_disconnect(&mut m).await;
}
