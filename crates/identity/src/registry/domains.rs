//! Custom domains: the server certificates they present (imported as AWS Certificate Manager
//! certificates and named by ACM ARNs) and AWS IoT's domain configurations
//! (CreateDomainConfiguration, DescribeDomainConfiguration, ListDomainConfigurations,
//! UpdateDomainConfiguration, DeleteDomainConfiguration). Choosing a certificate by SNI and
//! enforcing a domain's settings on connections is the server's; the rules are here.
//!
//! **Server certificates.** AWS names a domain's certificate by its ACM ARN. Here a certificate
//! and its private key are imported with ACM's own `ImportCertificate` (the API serves that
//! operation of the `acm` service; `ferrocore server-cert import` drives it) and named
//! `arn:aws:acm:<region>:<account>:certificate/<uuid>`. Importing again under an existing ARN
//! replaces the certificate and key (as ACM's re-import does): every domain using that ARN
//! presents the new certificate to new connections at once, which is how a certificate is
//! rotated. The private key is kept in the store beside the certificate (the store lives in the
//! data directory, mode 0700), never in an answer or a log line ([`ServerCertificateRecord`]'s
//! `Debug` leaves it out). A certificate used by a domain configuration cannot be deleted.
//!
//! **Domain configurations** (customer-managed domains):
//! - `domainName` (1 to 253 characters of a DNS name, matched case-insensitively and exactly
//!   against the client's SNI) and one `serverCertificateArns` entry naming an imported
//!   certificate are required: AWS-managed domains (a generated name) are not served here. The
//!   certificate must be valid now and cover the name (a SAN, a one-label `*.` wildcard SAN, or
//!   the subject CN when there are no DNS SANs), else CertificateValidationException, as AWS
//!   checks; a name used by another configuration is a ResourceAlreadyExistsException.
//! - `serviceType` must be DATA (the only service these listeners serve).
//! - `authorizerConfig.defaultAuthorizerName` must name an existing authorizer;
//!   `allowAuthorizerOverride` defaults to false.
//! - `authenticationType` CUSTOM_AUTH_X509 is refused (an authorizer run after mTLS is not
//!   built); the others are stored and enforced by the server (README: *Custom domains*).
//! - `tlsConfig.securityPolicy` must be one of AWS's policies (default
//!   `IoTSecurityPolicy_TLS13_1_2_2022_10`); stored, not enforced (every listener offers TLS 1.2
//!   and 1.3). `serverCertificateConfig`, `clientCertificateConfig`, `validationCertificateArn`
//!   and `tags` are stored (tags: accepted and ignored) and not acted on.
//! - ListDomainConfigurations pages by name; DeleteDomainConfiguration wants the configuration
//!   DISABLED first (AWS's guide: this avoids deleting an endpoint by accident). At most
//!   [`MAX_DOMAIN_CONFIGURATIONS`].
//!
//! **The built-in `iot:Data-ATS`** is the default endpoint (DescribeEndpoint's address). It is
//! listed and described (domainType ENDPOINT) and may be updated (authorizerConfig,
//! authenticationType, applicationProtocol, tlsConfig), which then applies to every connection
//! whose SNI names no custom domain; it cannot be created, deleted or DISABLED (that would shut
//! the control plane's own port).
//!
//! Every change is a [`Change::ServerCertificate`] or [`Change::DomainConfiguration`], so the
//! TLS server replaces what it presents without a restart.

use std::fmt;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::{
    Change, Ctx, Empty, RegistryError, RegistryState, Tag, after_token, is_name, page, page_size,
    uuid_v4, validate_authorizer_name,
};

// ---------------------------------------------------------------------------------------------
// Server certificates

/// An imported server certificate and its private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCertificateRecord {
    /// `arn:aws:acm:<region>:<account>:certificate/<uuid>`.
    pub arn: String,
    /// The end-entity certificate, PEM.
    pub certificate_pem: String,
    /// The intermediates sent after it, PEM (may be empty).
    pub chain_pem: String,
    /// A secret: never answered, never logged.
    pub private_key_pem: String,
    /// The subject CN, else the first DNS SAN.
    pub domain_name: Option<String>,
    pub subject_alternative_names: Vec<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub key_algorithm: String,
    pub created_at_ms: i64,
    pub imported_at_ms: i64,
}

impl fmt::Debug for ServerCertificateRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificateRecord")
            .field("arn", &self.arn)
            .field("domain_name", &self.domain_name)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ServerCertificateRecord {
    /// What a TLS server presents: the chain and the signing key (checked to match).
    pub fn certified_key(&self) -> Result<CertifiedKey, RegistryError> {
        let chain = pem_certificates(self.certificate_pem.as_bytes(), "Certificate")?
            .into_iter()
            .chain(pem_certificates(
                self.chain_pem.as_bytes(),
                "CertificateChain",
            )?)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(self.private_key_pem.as_bytes()).map_err(|e| {
            RegistryError::invalid(format!(
                "PrivateKey is not a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC): {e}"
            ))
        })?;
        let signing_key =
            rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| {
                RegistryError::invalid(format!("PrivateKey cannot sign TLS handshakes: {e}"))
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // A key that cannot tell its public key is checked by the first handshake instead.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(_) => Err(RegistryError::invalid(
                "PrivateKey does not belong to Certificate (their public keys differ).",
            )),
        }
    }

    /// Whether this certificate covers `host` (lowercase): a DNS SAN equal to it, a `*.`
    /// wildcard SAN for its first label, or the subject CN when there are no SANs.
    pub fn covers(&self, host: &str) -> bool {
        let names: Vec<&str> = if self.subject_alternative_names.is_empty() {
            self.domain_name.iter().map(String::as_str).collect()
        } else {
            self.subject_alternative_names
                .iter()
                .map(String::as_str)
                .collect()
        };
        names.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => name == host,
            }
        })
    }
}

/// The certificates of a PEM text (none for an empty one); `member` names it in errors.
fn pem_certificates(
    pem: &[u8],
    member: &str,
) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RegistryError::invalid(format!("{member} is not PEM certificates: {e}")))
}

/// ACM's `ImportCertificate`, its blobs decoded.
#[derive(Clone, Default)]
pub struct ImportServerCertificateRequest {
    /// Re-import under this ARN (it must exist).
    pub certificate_arn: Option<String>,
    pub certificate: Vec<u8>,
    pub private_key: Vec<u8>,
    pub certificate_chain: Option<Vec<u8>>,
}

/// What ACM's `DescribeCertificate` and `ListCertificates` tell of a certificate (ACM's
/// member names; never the key).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerCertificateDetail {
    pub certificate_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    pub subject_alternative_names: Vec<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: f64,
    pub not_after: f64,
    pub created_at: f64,
    pub imported_at: f64,
    pub key_algorithm: String,
    /// `ISSUED`, or `EXPIRED` once past `NotAfter`.
    pub status: &'static str,
    /// Always `IMPORTED`.
    pub r#type: &'static str,
    pub in_use_by: Vec<String>,
}

impl ServerCertificateDetail {
    fn of(state: &RegistryState, ctx: &Ctx, c: &ServerCertificateRecord) -> Self {
        ServerCertificateDetail {
            certificate_arn: c.arn.clone(),
            domain_name: c.domain_name.clone(),
            subject_alternative_names: c.subject_alternative_names.clone(),
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial: c.serial.clone(),
            not_before: c.not_before as f64,
            not_after: c.not_after as f64,
            created_at: super::millis_to_seconds(c.created_at_ms),
            imported_at: super::millis_to_seconds(c.imported_at_ms),
            key_algorithm: c.key_algorithm.clone(),
            status: if ctx.now_ms / 1000 > c.not_after {
                "EXPIRED"
            } else {
                "ISSUED"
            },
            r#type: "IMPORTED",
            in_use_by: state
                .domains_using(&c.arn)
                .map(|d| domain_configuration_arn(ctx, d))
                .collect(),
        }
    }
}

/// `arn:aws:acm:<region>:<account>:certificate/<uuid>`.
pub fn server_certificate_arn(ctx: &Ctx, id: &str) -> String {
    format!(
        "arn:aws:acm:{}:{}:certificate/{id}",
        ctx.arns.region, ctx.arns.account_id
    )
}

/// Server certificates an account may import.
pub const MAX_SERVER_CERTIFICATES: usize = 100;
/// ACM's limits on the blobs.
const MAX_CERTIFICATE_BYTES: usize = 32_768;
const MAX_PRIVATE_KEY_BYTES: usize = 8_192;
const MAX_CHAIN_BYTES: usize = 2_097_152;

fn certificate_not_found(arn: &str) -> RegistryError {
    RegistryError::not_found(format!(
        "Certificate {} not found: import it first (ImportCertificate, or `ferrocore server-cert \
         import`).",
        shown(arn)
    ))
}

fn shown(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Reads the certificate's fields for the record (and checks the key matches it).
fn parse_server_certificate(
    req: &ImportServerCertificateRequest,
) -> Result<ServerCertificateRecord, RegistryError> {
    let sizes = [
        ("Certificate", req.certificate.len(), MAX_CERTIFICATE_BYTES),
        ("PrivateKey", req.private_key.len(), MAX_PRIVATE_KEY_BYTES),
        (
            "CertificateChain",
            req.certificate_chain.as_ref().map_or(1, Vec::len),
            MAX_CHAIN_BYTES,
        ),
    ];
    for (member, len, max) in sizes {
        if len == 0 || len > max {
            return Err(RegistryError::invalid(format!(
                "{member} must be 1 to {max} bytes; it has {len}."
            )));
        }
    }
    let text = |member: &str, bytes: &[u8]| {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| RegistryError::invalid(format!("{member} must be PEM text.")))
    };
    let certificates = pem_certificates(&req.certificate, "Certificate")?;
    let [leaf] = certificates.as_slice() else {
        return Err(RegistryError::invalid(format!(
            "Certificate must hold exactly one PEM certificate (the server's own); it holds {}. \
             Put the intermediates in CertificateChain.",
            certificates.len()
        )));
    };
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        RegistryError::CertificateValidation(format!(
            "Certificate is not a valid X.509 certificate: {e}"
        ))
    })?;
    let subject_alternative_names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => {
                        Some(dns.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase);
    let key_algorithm = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            format!("RSA_{}", rsa.key_size())
        }
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => format!("EC_{}", ec.key_size()),
        _ => "OTHER".to_owned(),
    };
    let record = ServerCertificateRecord {
        arn: String::new(),
        certificate_pem: text("Certificate", &req.certificate)?,
        chain_pem: match &req.certificate_chain {
            Some(chain) => text("CertificateChain", chain)?,
            None => String::new(),
        },
        private_key_pem: text("PrivateKey", &req.private_key)?,
        domain_name: common_name.or_else(|| subject_alternative_names.first().cloned()),
        subject_alternative_names,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key_algorithm,
        created_at_ms: 0,
        imported_at_ms: 0,
    };
    record.certified_key()?;
    Ok(record)
}

/// ACM's `ImportCertificate`: a new certificate, or a re-import replacing the certificate and
/// key under an existing ARN (its domains present the new one from then on).
pub fn import_server_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    req: ImportServerCertificateRequest,
) -> Result<(String, Vec<Change>), RegistryError> {
    let mut record = parse_server_certificate(&req)?;
    match req.certificate_arn {
        Some(arn) => {
            let existing = state
                .server_certificates
                .get(&arn)
                .ok_or_else(|| certificate_not_found(&arn))?;
            record.created_at_ms = existing.created_at_ms;
            for domain in state.domains_using(&arn) {
                if let Some(host) = &domain.domain_name
                    && !record.covers(host)
                {
                    return Err(RegistryError::CertificateValidation(format!(
                        "The certificate does not cover {host}, the domain name of domain \
                         configuration {}, which uses {arn}.",
                        domain.name
                    )));
                }
            }
            record.arn = arn;
        }
        None => {
            if state.server_certificates.len() >= MAX_SERVER_CERTIFICATES {
                return Err(RegistryError::LimitExceeded(format!(
                    "At most {MAX_SERVER_CERTIFICATES} server certificates can be imported; \
                     delete one first."
                )));
            }
            record.arn = server_certificate_arn(ctx, &uuid_v4()?);
            record.created_at_ms = ctx.now_ms;
        }
    }
    record.imported_at_ms = ctx.now_ms;
    let arn = record.arn.clone();
    Ok((
        arn.clone(),
        vec![Change::ServerCertificate {
            arn,
            new: Some(record),
        }],
    ))
}

/// ACM's `DescribeCertificate`.
pub fn describe_server_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    arn: &str,
) -> Result<ServerCertificateDetail, RegistryError> {
    let c = state
        .server_certificates
        .get(arn)
        .ok_or_else(|| certificate_not_found(arn))?;
    Ok(ServerCertificateDetail::of(state, ctx, c))
}

/// ACM's `ListCertificates` (all of them, by ARN).
pub fn list_server_certificates(state: &RegistryState, ctx: &Ctx) -> Vec<ServerCertificateDetail> {
    state
        .server_certificates
        .values()
        .map(|c| ServerCertificateDetail::of(state, ctx, c))
        .collect()
}

/// ACM's `DeleteCertificate`: refused (DeleteConflict, ACM's ResourceInUseException) while a
/// domain configuration uses it.
pub fn delete_server_certificate(
    state: &RegistryState,
    _ctx: &Ctx,
    arn: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    if !state.server_certificates.contains_key(arn) {
        return Err(certificate_not_found(arn));
    }
    if let Some(domain) = state.domains_using(arn).next() {
        return Err(RegistryError::DeleteConflict(format!(
            "Certificate {arn} is in use by domain configuration {}; delete that first.",
            domain.name
        )));
    }
    Ok((
        Empty {},
        vec![Change::ServerCertificate {
            arn: arn.to_owned(),
            new: None,
        }],
    ))
}

// ---------------------------------------------------------------------------------------------
// Domain configurations: stored records (AWS's member names and enums)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DomainConfigurationStatus {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceType {
    Data,
    CredentialProvider,
    Jobs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DomainType {
    Endpoint,
    AwsManaged,
    CustomerManaged,
}

/// Which credentials a domain accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthenticationType {
    #[serde(rename = "CUSTOM_AUTH_X509")]
    CustomAuthX509,
    #[serde(rename = "CUSTOM_AUTH")]
    CustomAuth,
    #[serde(rename = "AWS_X509")]
    AwsX509,
    #[serde(rename = "AWS_SIGV4")]
    AwsSigv4,
    #[serde(rename = "DEFAULT")]
    Default,
}

/// Which protocol a domain serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApplicationProtocol {
    SecureMqtt,
    MqttWss,
    Https,
    Default,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_authorizer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_authorizer_override: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_policy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCertificateConfig {
    #[serde(rename = "enableOCSPCheck", skip_serializing_if = "Option::is_none")]
    pub enable_ocsp_check: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp_lambda_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp_authorized_responder_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate_callback_arn: Option<String>,
}

/// A domain configuration (the built-in `iot:Data-ATS` once updated, or a custom domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainConfigurationRecord {
    pub name: String,
    /// The random last part of the ARN (`domainconfiguration/<name>/<id>`), as AWS's.
    pub arn_id: String,
    /// Lowercase; `None` for the built-in endpoint.
    pub domain_name: Option<String>,
    pub server_certificate_arns: Vec<String>,
    pub validation_certificate_arn: Option<String>,
    pub authorizer_config: Option<AuthorizerConfig>,
    pub status: DomainConfigurationStatus,
    pub service_type: ServiceType,
    pub domain_type: DomainType,
    pub tls_config: TlsConfig,
    pub server_certificate_config: Option<ServerCertificateConfig>,
    pub authentication_type: AuthenticationType,
    pub application_protocol: ApplicationProtocol,
    pub client_certificate_config: Option<ClientCertificateConfig>,
    pub creation_date_ms: i64,
    pub last_status_change_date_ms: i64,
}

impl DomainConfigurationRecord {
    /// The authorizer of clients that name none, if the domain sets one.
    pub fn default_authorizer(&self) -> Option<&str> {
        self.authorizer_config
            .as_ref()
            .and_then(|c| c.default_authorizer_name.as_deref())
    }

    /// Whether a client may name another authorizer than [`Self::default_authorizer`]
    /// (always when the domain sets no default).
    pub fn allows_authorizer_override(&self) -> bool {
        self.authorizer_config.as_ref().is_none_or(|c| {
            c.default_authorizer_name.is_none() || c.allow_authorizer_override.unwrap_or(false)
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.status == DomainConfigurationStatus::Enabled
    }
}

/// The built-in configuration of the default endpoint.
pub const DEFAULT_ENDPOINT_DOMAIN: &str = "iot:Data-ATS";
/// Custom domain configurations an account may have.
pub const MAX_DOMAIN_CONFIGURATIONS: usize = 10;
/// Longest domain configuration name and domain name (the model's).
pub const MAX_DOMAIN_CONFIGURATION_NAME_LEN: usize = 128;
pub const MAX_DOMAIN_NAME_LEN: usize = 253;
/// AWS's TLS security policies; the first is the default of new domains.
pub const SECURITY_POLICIES: [&str; 5] = [
    "IoTSecurityPolicy_TLS13_1_2_2022_10",
    "IoTSecurityPolicy_TLS13_1_3_2022_10",
    "IoTSecurityPolicy_TLS12_1_2_2022_10",
    "IoTSecurityPolicy_TLS12_1_0_2016_01",
    "IoTSecurityPolicy_TLS12_1_0_2015_01",
];

// ---------------------------------------------------------------------------------------------
// Requests and answers

/// `CreateDomainConfiguration` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDomainConfigurationRequest {
    #[serde(skip)]
    pub domain_configuration_name: String,
    pub domain_name: Option<String>,
    pub server_certificate_arns: Option<Vec<String>>,
    pub validation_certificate_arn: Option<String>,
    pub authorizer_config: Option<AuthorizerConfig>,
    pub service_type: Option<ServiceType>,
    /// Accepted and ignored (tagging is not served yet).
    pub tags: Option<Vec<Tag>>,
    pub tls_config: Option<TlsConfig>,
    pub server_certificate_config: Option<ServerCertificateConfig>,
    pub authentication_type: Option<AuthenticationType>,
    pub application_protocol: Option<ApplicationProtocol>,
    pub client_certificate_config: Option<ClientCertificateConfig>,
}

/// `UpdateDomainConfiguration` (the name comes from the path): the members given change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDomainConfigurationRequest {
    #[serde(skip)]
    pub domain_configuration_name: String,
    pub authorizer_config: Option<AuthorizerConfig>,
    pub domain_configuration_status: Option<DomainConfigurationStatus>,
    pub remove_authorizer_config: Option<bool>,
    pub tls_config: Option<TlsConfig>,
    pub server_certificate_config: Option<ServerCertificateConfig>,
    pub authentication_type: Option<AuthenticationType>,
    pub application_protocol: Option<ApplicationProtocol>,
    pub client_certificate_config: Option<ClientCertificateConfig>,
}

/// What Create and Update answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainConfigurationReference {
    pub domain_configuration_name: String,
    pub domain_configuration_arn: String,
}

/// The model's `ServerCertificateSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCertificateSummary {
    pub server_certificate_arn: String,
    /// `VALID`, or `INVALID` when the certificate is gone, expired or no longer covers the
    /// domain name.
    pub server_certificate_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate_status_detail: Option<String>,
}

/// `DescribeDomainConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeDomainConfigurationResponse {
    pub domain_configuration_name: String,
    pub domain_configuration_arn: String,
    pub domain_name: String,
    pub server_certificates: Vec<ServerCertificateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_config: Option<AuthorizerConfig>,
    pub domain_configuration_status: DomainConfigurationStatus,
    pub service_type: ServiceType,
    pub domain_type: DomainType,
    pub last_status_change_date: f64,
    pub tls_config: TlsConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate_config: Option<ServerCertificateConfig>,
    pub authentication_type: AuthenticationType,
    pub application_protocol: ApplicationProtocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate_config: Option<ClientCertificateConfig>,
}

/// `ListDomainConfigurations`' query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListDomainConfigurationsRequest {
    pub marker: Option<String>,
    #[serde(rename = "pageSize")]
    pub page_size: Option<usize>,
    #[serde(rename = "serviceType")]
    pub service_type: Option<ServiceType>,
}

/// The model's `DomainConfigurationSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainConfigurationSummary {
    pub domain_configuration_name: String,
    pub domain_configuration_arn: String,
    pub service_type: ServiceType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListDomainConfigurationsResponse {
    pub domain_configurations: Vec<DomainConfigurationSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Validation and lookups

pub fn domain_configuration_arn(ctx: &Ctx, d: &DomainConfigurationRecord) -> String {
    ctx.arns
        .arn(&format!("domainconfiguration/{}/{}", d.name, d.arn_id))
}

fn reference(ctx: &Ctx, d: &DomainConfigurationRecord) -> DomainConfigurationReference {
    DomainConfigurationReference {
        domain_configuration_name: d.name.clone(),
        domain_configuration_arn: domain_configuration_arn(ctx, d),
    }
}

/// Names of configurations one creates: `[\w.-]{1,128}` (`:` is kept for AWS's own).
fn validate_domain_configuration_name(name: &str) -> Result<(), RegistryError> {
    if is_name(name, MAX_DOMAIN_CONFIGURATION_NAME_LEN, b"_.-") {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "Domain configuration name '{}' is invalid: it must be 1 to \
             {MAX_DOMAIN_CONFIGURATION_NAME_LEN} characters of a-z, A-Z, 0-9 and _.- (names \
             with ':' are AWS's own, such as {DEFAULT_ENDPOINT_DOMAIN}).",
            shown(name)
        )))
    }
}

/// A DNS host name: labels of 1 to 63 letters, digits and `-`, not starting or ending with
/// `-`, at least two labels; returned lowercase.
fn validate_domain_name(name: &str) -> Result<String, RegistryError> {
    let lower = name.to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').collect();
    let valid = !lower.is_empty()
        && lower.len() <= MAX_DOMAIN_NAME_LEN
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(lower)
    } else {
        Err(RegistryError::invalid(format!(
            "domainName '{}' is invalid: it must be a fully qualified DNS name of at most \
             {MAX_DOMAIN_NAME_LEN} characters (labels of letters, digits and -), such as \
             iot.example.com.",
            shown(name)
        )))
    }
}

fn validate_security_policy(tls: &TlsConfig) -> Result<(), RegistryError> {
    match tls.security_policy.as_deref() {
        None => Ok(()),
        Some(p) if SECURITY_POLICIES.contains(&p) => Ok(()),
        Some(p) => Err(RegistryError::invalid(format!(
            "tlsConfig.securityPolicy '{}' is not one of {}.",
            shown(p),
            SECURITY_POLICIES.join(", ")
        ))),
    }
}

fn validate_authentication_type(t: AuthenticationType) -> Result<(), RegistryError> {
    if t == AuthenticationType::CustomAuthX509 {
        return Err(RegistryError::invalid(
            "authenticationType CUSTOM_AUTH_X509 (an authorizer run after X.509 client \
             authentication) is not supported by this server; use CUSTOM_AUTH or AWS_X509.",
        ));
    }
    Ok(())
}

fn validate_authorizer_config(
    state: &RegistryState,
    config: &AuthorizerConfig,
) -> Result<(), RegistryError> {
    if let Some(name) = &config.default_authorizer_name {
        validate_authorizer_name(name)?;
        if state.authorizer(name).is_none() {
            return Err(RegistryError::invalid(format!(
                "authorizerConfig.defaultAuthorizerName: authorizer {name} not found; create it \
                 first (CreateAuthorizer)."
            )));
        }
    }
    Ok(())
}

fn domain_not_found(name: &str) -> RegistryError {
    RegistryError::not_found(format!("Domain configuration {} not found.", shown(name)))
}

/// The built-in endpoint's configuration as it is before any update.
fn default_endpoint_record() -> DomainConfigurationRecord {
    DomainConfigurationRecord {
        name: DEFAULT_ENDPOINT_DOMAIN.to_owned(),
        arn_id: "default".to_owned(),
        domain_name: None,
        server_certificate_arns: Vec::new(),
        validation_certificate_arn: None,
        authorizer_config: None,
        status: DomainConfigurationStatus::Enabled,
        service_type: ServiceType::Data,
        domain_type: DomainType::Endpoint,
        tls_config: TlsConfig {
            security_policy: Some(SECURITY_POLICIES[0].to_owned()),
        },
        server_certificate_config: None,
        authentication_type: AuthenticationType::Default,
        application_protocol: ApplicationProtocol::Default,
        client_certificate_config: None,
        creation_date_ms: 0,
        last_status_change_date_ms: 0,
    }
}

/// Five random letters and digits: the last part of a domain configuration's ARN.
fn arn_id() -> Result<String, RegistryError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut b = [0u8; 5];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| RegistryError::InternalFailure("no randomness".into()))?;
    Ok(b.iter()
        .map(|x| char::from(ALPHABET[usize::from(*x) % ALPHABET.len()]))
        .collect())
}

impl RegistryState {
    /// The domain configuration called `name`: a stored one, or the built-in endpoint's.
    pub fn domain_configuration(&self, name: &str) -> Option<DomainConfigurationRecord> {
        match self.domain_configurations.get(name) {
            Some(d) => Some(d.clone()),
            None if name == DEFAULT_ENDPOINT_DOMAIN => Some(default_endpoint_record()),
            None => None,
        }
    }

    /// The configuration that applies to a connection whose SNI is `server_name`: the custom
    /// domain of that name (enabled or not), else the built-in endpoint's when it was updated.
    pub fn domain_for_server_name(
        &self,
        server_name: Option<&str>,
    ) -> Option<&DomainConfigurationRecord> {
        server_name
            .and_then(|sni| {
                self.domain_configurations.values().find(|d| {
                    d.domain_name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(sni))
                })
            })
            .or_else(|| self.domain_configurations.get(DEFAULT_ENDPOINT_DOMAIN))
    }

    /// The custom domain configurations presenting the certificate `arn`.
    pub fn domains_using<'a>(
        &'a self,
        arn: &'a str,
    ) -> impl Iterator<Item = &'a DomainConfigurationRecord> + 'a {
        self.domain_configurations
            .values()
            .filter(move |d| d.server_certificate_arns.iter().any(|a| a == arn))
    }
}

fn put(record: DomainConfigurationRecord) -> Change {
    Change::DomainConfiguration {
        name: record.name.clone(),
        new: Some(record),
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

/// `CreateDomainConfiguration` of a customer-managed domain.
pub fn create_domain_configuration(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreateDomainConfigurationRequest,
) -> Result<(DomainConfigurationReference, Vec<Change>), RegistryError> {
    let name = req.domain_configuration_name;
    validate_domain_configuration_name(&name)?;
    let domain_name = req.domain_name.as_deref().ok_or_else(|| {
        RegistryError::invalid(
            "domainName is required: this server serves customer-managed domains (your own \
             name and certificate); the default endpoint is the built-in iot:Data-ATS.",
        )
    })?;
    let domain_name = validate_domain_name(domain_name)?;
    let certificate_arn = match req.server_certificate_arns.as_deref() {
        Some([arn]) => arn.clone(),
        _ => {
            return Err(RegistryError::invalid(
                "serverCertificateArns must name exactly one imported certificate (ACM \
                 ImportCertificate, or `ferrocore server-cert import`).",
            ));
        }
    };
    let certificate = state
        .server_certificates
        .get(&certificate_arn)
        .ok_or_else(|| {
            RegistryError::invalid(format!(
                "serverCertificateArns: certificate {} not found: import it first (ACM \
                 ImportCertificate, or `ferrocore server-cert import`).",
                shown(&certificate_arn)
            ))
        })?;
    let now_s = ctx.now_ms / 1000;
    if now_s < certificate.not_before || now_s > certificate.not_after {
        return Err(RegistryError::CertificateValidation(format!(
            "The server certificate {certificate_arn} is not valid now (expired or not yet \
             valid)."
        )));
    }
    if !certificate.covers(&domain_name) {
        return Err(RegistryError::CertificateValidation(format!(
            "The server certificate {certificate_arn} does not cover {domain_name} (its names: \
             {}).",
            certificate.subject_alternative_names.join(", ")
        )));
    }
    let service_type = req.service_type.unwrap_or(ServiceType::Data);
    if service_type != ServiceType::Data {
        return Err(RegistryError::invalid(
            "serviceType must be DATA: this server's listeners serve the data endpoint only.",
        ));
    }
    if let Some(config) = &req.authorizer_config {
        validate_authorizer_config(state, config)?;
    }
    let authentication_type = req
        .authentication_type
        .unwrap_or(AuthenticationType::Default);
    validate_authentication_type(authentication_type)?;
    let mut tls_config = req.tls_config.unwrap_or_default();
    validate_security_policy(&tls_config)?;
    tls_config
        .security_policy
        .get_or_insert_with(|| SECURITY_POLICIES[0].to_owned());
    if state.domain_configurations.contains_key(&name) {
        let existing = &state.domain_configurations[&name];
        return Err(RegistryError::already_exists(
            format!("Domain configuration {name} already exists."),
            &name,
            domain_configuration_arn(ctx, existing),
        ));
    }
    if let Some(other) = state
        .domain_configurations
        .values()
        .find(|d| d.domain_name.as_deref() == Some(domain_name.as_str()))
    {
        return Err(RegistryError::already_exists(
            format!(
                "Domain name {domain_name} is already used by domain configuration {}.",
                other.name
            ),
            &other.name,
            domain_configuration_arn(ctx, other),
        ));
    }
    let custom = state
        .domain_configurations
        .keys()
        .filter(|n| n.as_str() != DEFAULT_ENDPOINT_DOMAIN)
        .count();
    if custom >= MAX_DOMAIN_CONFIGURATIONS {
        return Err(RegistryError::LimitExceeded(format!(
            "An account has at most {MAX_DOMAIN_CONFIGURATIONS} domain configurations; delete \
             one first."
        )));
    }
    let record = DomainConfigurationRecord {
        name,
        arn_id: arn_id()?,
        domain_name: Some(domain_name),
        server_certificate_arns: vec![certificate_arn],
        validation_certificate_arn: req.validation_certificate_arn,
        authorizer_config: req.authorizer_config,
        status: DomainConfigurationStatus::Enabled,
        service_type,
        domain_type: DomainType::CustomerManaged,
        tls_config,
        server_certificate_config: req.server_certificate_config,
        authentication_type,
        application_protocol: req
            .application_protocol
            .unwrap_or(ApplicationProtocol::Default),
        client_certificate_config: req.client_certificate_config,
        creation_date_ms: ctx.now_ms,
        last_status_change_date_ms: ctx.now_ms,
    };
    Ok((reference(ctx, &record), vec![put(record)]))
}

/// `DescribeDomainConfiguration`; `endpoint_address` is the built-in endpoint's domain name.
pub fn describe_domain_configuration(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
    endpoint_address: &str,
) -> Result<DescribeDomainConfigurationResponse, RegistryError> {
    let d = state
        .domain_configuration(name)
        .ok_or_else(|| domain_not_found(name))?;
    let now_s = ctx.now_ms / 1000;
    let server_certificates = d
        .server_certificate_arns
        .iter()
        .map(|arn| {
            let problem = match state.server_certificates.get(arn) {
                None => Some("The certificate was deleted.".to_owned()),
                Some(c) if now_s > c.not_after => Some("The certificate has expired.".to_owned()),
                Some(_) => None,
            };
            ServerCertificateSummary {
                server_certificate_arn: arn.clone(),
                server_certificate_status: if problem.is_none() {
                    "VALID"
                } else {
                    "INVALID"
                },
                server_certificate_status_detail: problem,
            }
        })
        .collect();
    Ok(DescribeDomainConfigurationResponse {
        domain_configuration_arn: domain_configuration_arn(ctx, &d),
        domain_name: d
            .domain_name
            .clone()
            .unwrap_or_else(|| endpoint_address.to_owned()),
        server_certificates,
        authorizer_config: d.authorizer_config.clone(),
        domain_configuration_status: d.status,
        service_type: d.service_type,
        domain_type: d.domain_type,
        last_status_change_date: super::millis_to_seconds(d.last_status_change_date_ms),
        tls_config: d.tls_config.clone(),
        server_certificate_config: d.server_certificate_config.clone(),
        authentication_type: d.authentication_type,
        application_protocol: d.application_protocol,
        client_certificate_config: d.client_certificate_config.clone(),
        domain_configuration_name: d.name,
    })
}

/// `ListDomainConfigurations`: by name, the built-in endpoint's included.
pub fn list_domain_configurations(
    state: &RegistryState,
    ctx: &Ctx,
    req: &ListDomainConfigurationsRequest,
) -> Result<ListDomainConfigurationsResponse, RegistryError> {
    let limit = page_size(req.page_size, MAX_DOMAIN_CONFIGURATIONS + 1, "pageSize")?;
    let mut all = state.domain_configurations.clone();
    all.entry(DEFAULT_ENDPOINT_DOMAIN.to_owned())
        .or_insert_with(default_endpoint_record);
    let items = after_token(&all, req.marker.as_deref().filter(|m| !m.is_empty()))?
        .filter(|(_, d)| req.service_type.is_none_or(|t| d.service_type == t));
    let (domains, next_marker) = page(items, limit);
    Ok(ListDomainConfigurationsResponse {
        domain_configurations: domains
            .into_iter()
            .map(|d| DomainConfigurationSummary {
                domain_configuration_name: d.name.clone(),
                domain_configuration_arn: domain_configuration_arn(ctx, d),
                service_type: d.service_type,
            })
            .collect(),
        next_marker,
    })
}

/// `UpdateDomainConfiguration`: the members given change.
pub fn update_domain_configuration(
    state: &RegistryState,
    ctx: &Ctx,
    req: UpdateDomainConfigurationRequest,
) -> Result<(DomainConfigurationReference, Vec<Change>), RegistryError> {
    let name = req.domain_configuration_name;
    let mut record = state
        .domain_configuration(&name)
        .ok_or_else(|| domain_not_found(&name))?;
    let remove = req.remove_authorizer_config.unwrap_or(false);
    if remove && req.authorizer_config.is_some() {
        return Err(RegistryError::invalid(
            "Give authorizerConfig or removeAuthorizerConfig, not both.",
        ));
    }
    if let Some(config) = req.authorizer_config {
        validate_authorizer_config(state, &config)?;
        record.authorizer_config = Some(config);
    }
    if remove {
        record.authorizer_config = None;
    }
    if let Some(status) = req.domain_configuration_status {
        if record.domain_type == DomainType::Endpoint
            && status == DomainConfigurationStatus::Disabled
        {
            return Err(RegistryError::invalid(format!(
                "{DEFAULT_ENDPOINT_DOMAIN} is the default endpoint, on the same port as this \
                 API: it cannot be disabled."
            )));
        }
        if status != record.status {
            record.status = status;
            record.last_status_change_date_ms = ctx.now_ms;
        }
    }
    if let Some(tls) = req.tls_config {
        validate_security_policy(&tls)?;
        if tls.security_policy.is_some() {
            record.tls_config = tls;
        }
    }
    if let Some(config) = req.server_certificate_config {
        record.server_certificate_config = Some(config);
    }
    if let Some(t) = req.authentication_type {
        validate_authentication_type(t)?;
        record.authentication_type = t;
    }
    if let Some(p) = req.application_protocol {
        record.application_protocol = p;
    }
    if let Some(config) = req.client_certificate_config {
        record.client_certificate_config = Some(config);
    }
    Ok((reference(ctx, &record), vec![put(record)]))
}

/// `DeleteDomainConfiguration`: a DISABLED custom domain only.
pub fn delete_domain_configuration(
    state: &RegistryState,
    _ctx: &Ctx,
    name: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_domain_configuration_name(name)?;
    let d = state
        .domain_configurations
        .get(name)
        .ok_or_else(|| domain_not_found(name))?;
    if d.is_enabled() {
        return Err(RegistryError::invalid(format!(
            "Domain configuration {name} is ENABLED; set its status to DISABLED \
             (UpdateDomainConfiguration) before deleting it."
        )));
    }
    Ok((
        Empty {},
        vec![Change::DomainConfiguration {
            name: name.to_owned(),
            new: None,
        }],
    ))
}

#[cfg(test)]
mod tests;
