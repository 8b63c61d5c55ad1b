//! TLS server configurations (rustls with aws-lc-rs, TLS 1.2 and 1.3), chosen per connection
//! from the client's offered ALPN, and kept behind an [`ArcSwap`] so that the server
//! certificate can be replaced without a restart.
//!
//! The certificate presented is chosen by SNI ([`DomainResolver`]): a name of an enabled
//! custom domain configuration ([`Domains`], kept current by [`crate::domains`]) gets that
//! domain's certificate; no SNI or any other name gets the server's own. A name of a DISABLED
//! domain fails the handshake with the TLS alert `access_denied` (49): the client is refused
//! before it can send anything.
//!
//! Every configuration asks for a client certificate without requiring one (anonymous and
//! development listeners, and later custom authentication, need none). Which certificates
//! pass is a [`ClientCertCheck`]'s decision: the registry's in the server
//! ([`crate::devices::DeviceVerifier`]).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ferrocore_identity::registry::{ApplicationProtocol, AuthenticationType};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::config::ListenerKind;
use crate::identity::ServerIdentity;

/// ALPN of MQTT with X.509 client authentication (AWS, port 443).
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";
/// ALPN of MQTT with custom authentication (AWS, port 443).
pub const ALPN_MQTT: &[u8] = b"mqtt";
/// ALPN of HTTPS with X.509 client authentication (AWS, port 443).
pub const ALPN_HTTP_CA: &[u8] = b"x-amzn-http-ca";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
pub const ALPN_H2: &[u8] = b"h2";

/// Whether a negotiated ALPN protocol selects MQTT on the HTTPS port.
pub fn is_mqtt_alpn(alpn: &[u8]) -> bool {
    alpn == ALPN_MQTT_CA || alpn == ALPN_MQTT
}

/// Decides whether a presented client certificate passes the handshake.
pub trait ClientCertCheck: Send + Sync + 'static {
    /// `end_entity` passes with `Ok`; an error fails the handshake with its TLS alert.
    fn check(&self, end_entity: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error>;
}

/// The client verifier of every configuration: asks for a client certificate without
/// requiring one, verifies the handshake's signature (the client holds the certificate's key)
/// and leaves the certificate itself to `check`.
struct ClientVerifier<C> {
    check: C,
    algorithms: WebPkiSupportedAlgorithms,
}

impl<C> std::fmt::Debug for ClientVerifier<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientVerifier").finish_non_exhaustive()
    }
}

/// The crypto provider of every configuration.
fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

impl<C: ClientCertCheck> ClientCertVerifier for ClientVerifier<C> {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a device presents the certificate it was given, whichever CA issued it.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check.check(end_entity, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What a connection to one domain gets.
#[derive(Debug)]
pub struct DomainEntry {
    /// The domain configuration's name.
    pub name: String,
    /// The certificate presented; `None` (its certificate could not be loaded): the server's
    /// own.
    pub certificate: Option<Arc<CertifiedKey>>,
    pub enabled: bool,
    pub authentication_type: AuthenticationType,
    pub application_protocol: ApplicationProtocol,
}

/// The domain configurations the TLS server knows, by lowercase domain name.
#[derive(Debug, Default)]
pub struct Domains {
    pub by_name: HashMap<String, Arc<DomainEntry>>,
    /// The built-in endpoint's settings (`iot:Data-ATS`, once updated): for every other name.
    pub default_endpoint: Option<Arc<DomainEntry>>,
}

impl Domains {
    /// The custom domain named `server_name`, if any.
    fn custom(&self, server_name: &str) -> Option<&Arc<DomainEntry>> {
        if server_name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_name.get(&server_name.to_ascii_lowercase())
        } else {
            self.by_name.get(server_name)
        }
    }

    /// The configuration that applies to a connection with SNI `server_name`.
    pub fn applying(&self, server_name: Option<&str>) -> Option<Arc<DomainEntry>> {
        server_name
            .and_then(|name| self.custom(name))
            .or(self.default_endpoint.as_ref())
            .cloned()
    }
}

/// Picks the certificate by SNI (see the module documentation).
#[derive(Debug)]
pub struct DomainResolver {
    server: Arc<CertifiedKey>,
    domains: Arc<ArcSwap<Domains>>,
}

impl DomainResolver {
    /// Presents `server` unless `domains` names the SNI.
    pub fn new(server: Arc<CertifiedKey>, domains: Arc<ArcSwap<Domains>>) -> DomainResolver {
        DomainResolver { server, domains }
    }

    /// What a handshake with SNI `server_name` presents; `None` refuses it.
    pub fn certificate_for(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let domains = self.domains.load();
        match server_name.and_then(|name| domains.custom(name)) {
            Some(domain) if !domain.enabled => None,
            Some(domain) => Some(
                domain
                    .certificate
                    .clone()
                    .unwrap_or_else(|| self.server.clone()),
            ),
            None => Some(self.server.clone()),
        }
    }
}

impl ResolvesServerCert for DomainResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certificate_for(client_hello.server_name())
    }
}

/// One set of configurations, built from one server certificate.
pub struct TlsConfigs {
    /// No ALPN: used when the client offers none we know (any or no ALPN is accepted).
    pub plain: Arc<ServerConfig>,
    /// The MQTT port when the client offers `x-amzn-mqtt-ca` or `mqtt`.
    pub mqtt: Arc<ServerConfig>,
    /// The HTTPS port when the client offers any protocol we know.
    pub https: Arc<ServerConfig>,
}

/// The live TLS configuration of every listener.
pub struct TlsState {
    configs: ArcSwap<TlsConfigs>,
    client_verifier: Arc<dyn ClientCertVerifier>,
    domains: Arc<ArcSwap<Domains>>,
}

fn build(
    resolver: &Arc<DomainResolver>,
    client_verifier: &Arc<dyn ClientCertVerifier>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(client_verifier.clone())
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

impl TlsConfigs {
    /// Configurations presenting `identity`'s certificate, or a domain's by SNI (`domains`).
    pub fn new(
        identity: &ServerIdentity,
        client_verifier: &Arc<dyn ClientCertVerifier>,
        domains: &Arc<ArcSwap<Domains>>,
    ) -> Result<TlsConfigs, rustls::Error> {
        let server = CertifiedKey::from_der(
            identity.server_chain.clone(),
            identity.server_key.clone_key(),
            &provider(),
        )?;
        let resolver = Arc::new(DomainResolver::new(Arc::new(server), domains.clone()));
        let (r, v) = (&resolver, client_verifier);
        Ok(TlsConfigs {
            plain: Arc::new(build(r, v, &[])?),
            mqtt: Arc::new(build(r, v, &[ALPN_MQTT_CA, ALPN_MQTT])?),
            https: Arc::new(build(
                r,
                v,
                &[ALPN_MQTT_CA, ALPN_MQTT, ALPN_HTTP_CA, ALPN_H2, ALPN_HTTP1],
            )?),
        })
    }
}

impl TlsState {
    /// Configurations serving `identity`, with `client_check` deciding which client
    /// certificates pass the handshake (none is required).
    pub fn new(
        identity: &ServerIdentity,
        client_check: impl ClientCertCheck,
    ) -> Result<TlsState, rustls::Error> {
        let client_verifier: Arc<dyn ClientCertVerifier> = Arc::new(ClientVerifier {
            check: client_check,
            algorithms: provider().signature_verification_algorithms,
        });
        let domains = Arc::new(ArcSwap::from_pointee(Domains::default()));
        Ok(TlsState {
            configs: ArcSwap::from_pointee(TlsConfigs::new(identity, &client_verifier, &domains)?),
            client_verifier,
            domains,
        })
    }

    /// Serves `identity` to every handshake from now on; open connections keep theirs.
    pub fn reload(&self, identity: &ServerIdentity) -> Result<(), rustls::Error> {
        self.configs.store(Arc::new(TlsConfigs::new(
            identity,
            &self.client_verifier,
            &self.domains,
        )?));
        Ok(())
    }

    /// Serves `domains` to every handshake from now on; open connections keep theirs.
    pub fn set_domains(&self, domains: Domains) {
        self.domains.store(Arc::new(domains));
    }

    /// The domain configuration that applies to a connection with SNI `server_name`.
    pub fn domain(&self, server_name: Option<&str>) -> Option<Arc<DomainEntry>> {
        self.domains.load().applying(server_name)
    }

    /// The configuration for a listener of `kind` given the client's offered ALPN protocols.
    /// A client offering only protocols we do not know gets no ALPN rather than a failed
    /// handshake, as devices that send odd ALPN still connect to AWS on 8883.
    pub fn select<'a>(
        &self,
        kind: ListenerKind,
        offered: Option<impl Iterator<Item = &'a [u8]>>,
    ) -> Arc<ServerConfig> {
        let configs = self.configs.load();
        let Some(mut offered) = offered else {
            return configs.plain.clone();
        };
        match kind {
            ListenerKind::Mqtt => {
                if offered.any(is_mqtt_alpn) {
                    configs.mqtt.clone()
                } else {
                    configs.plain.clone()
                }
            }
            ListenerKind::Http => {
                if offered.any(|p| {
                    is_mqtt_alpn(p) || p == ALPN_HTTP_CA || p == ALPN_HTTP1 || p == ALPN_H2
                }) {
                    configs.https.clone()
                } else {
                    configs.plain.clone()
                }
            }
        }
    }
}
