//! X.509 for devices and CAs: parsing certificates (PEM or DER), AWS certificate ids, issuing
//! device certificates from CSRs or with fresh keys (`CreateCertificateFromCsr`,
//! `CreateKeysAndCertificate`), CA registration checks (`GetRegistrationCode`,
//! `RegisterCACertificate`) and the chain check mutual TLS uses.
//!
//! Everything here is pure: bytes in, values out, the time passed in as Unix seconds. No
//! function panics on any input; every failure is an [`X509Error`].
//!
//! Crypto is aws-lc-rs only: rcgen (`aws_lc_rs`) signs, x509-parser (`verify-aws`) checks
//! CSR, self and verification-certificate signatures, and rustls-webpki (`aws-lc-rs`) builds
//! the device → CA chain in [`verify_chain`].

use std::time::Duration;

use rcgen::{
    DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

mod crl;
pub use crl::{CRL_MAX_CLOCK_SKEW, Crl, parse_crl};

/// `notAfter` of certificates AWS IoT issues: 2049-12-31T23:59:59Z.
pub const AWS_NOT_AFTER: i64 = 2_524_607_999;
/// Subject CN of certificates made by `CreateKeysAndCertificate`, as AWS.
pub const CREATE_KEYS_CN: &str = "AWS IoT Certificate";
/// Latest time X.509 can express (9999-12-31T23:59:59Z).
const MAX_X509_TIME: i64 = 253_402_300_799;

/// Why a certificate, CSR, key or chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("empty input")]
    Empty,
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    #[error("expected a PEM {expected} but found {found}")]
    WrongPemLabel {
        expected: &'static str,
        found: String,
    },
    #[error("expected one {expected} but found {count}")]
    MultipleItems {
        expected: &'static str,
        count: usize,
    },
    #[error("bad DER in {what}: {reason}")]
    BadDer { what: &'static str, reason: String },
    #[error("trailing data after the {0}")]
    TrailingData(&'static str),
    #[error("the CSR's signature does not verify")]
    CsrSignature,
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    #[error("unsupported distinguished name: {0}")]
    UnsupportedName(String),
    #[error("bad private key: {0}")]
    BadKey(String),
    #[error("the private key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("not a CA certificate: {0}")]
    NotACa(&'static str),
    #[error("the CA certificate's self-signature does not verify")]
    CaSelfSignature,
    #[error("the verification certificate is not signed by the CA certificate")]
    NotSignedByCa,
    #[error("the verification certificate's subject CN is not the registration code")]
    RegistrationCodeMismatch,
    #[error("the {0} has expired")]
    Expired(&'static str),
    #[error("the {0} is not valid yet")]
    NotYetValid(&'static str),
    #[error("invalid validity: notBefore {not_before} must be before notAfter {not_after}")]
    InvalidValidity { not_before: i64, not_after: i64 },
    #[error("the certificate does not chain to the CA: {0}")]
    Chain(String),
    #[error("cannot create the certificate: {0}")]
    Sign(String),
    #[error("no randomness: {0}")]
    Random(String),
    #[error("the CRL's issuer ({crl}) is not the CA's subject ({ca})")]
    CrlIssuerMismatch { crl: String, ca: String },
    #[error("the CRL's signature does not verify with the CA's public key")]
    CrlSignature,
    #[error("unsupported CRL: {0}")]
    UnsupportedCrl(String),
}

/// A parsed certificate, with the fields the registry and AWS's API shapes need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// AWS certificate id: lowercase hex SHA-256 of the DER (64 characters).
    pub id: String,
    pub der: Vec<u8>,
    /// Canonical PEM (`CERTIFICATE` label, 64-column base64, trailing newline).
    pub pem: String,
    /// Subject DN in RFC 4514-like form (`CN=..., O=...`).
    pub subject: String,
    pub subject_cn: Option<String>,
    pub issuer: String,
    pub issuer_cn: Option<String>,
    /// Serial number as lowercase hex of its DER content bytes.
    pub serial: String,
    /// `notBefore` / `notAfter` in Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints CA=true.
    pub is_ca: bool,
    /// Subject and issuer are byte-for-byte equal (self-issued, e.g. a root CA).
    pub self_issued: bool,
    /// Which extended key usages are present (`None` when there is no EKU extension).
    pub client_auth: Option<bool>,
}

impl Certificate {
    /// Whether `now` (Unix seconds) is within `notBefore..=notAfter`.
    pub fn valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    fn check_valid_at(&self, now: i64, what: &'static str) -> Result<(), X509Error> {
        if now < self.not_before {
            Err(X509Error::NotYetValid(what))
        } else if now > self.not_after {
            Err(X509Error::Expired(what))
        } else {
            Ok(())
        }
    }
}

/// Lowercase hex SHA-256 of `der`: AWS's `certificateId`.
pub fn certificate_id(der: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

/// Parses exactly one certificate from PEM (`CERTIFICATE`) or DER.
pub fn parse_certificate(input: &[u8]) -> Result<Certificate, X509Error> {
    let der = decode_one(input, SectionKind::Certificate, "CERTIFICATE")?;
    certificate_from_der(der)
}

fn certificate_from_der(der: Vec<u8>) -> Result<Certificate, X509Error> {
    let (rest, cert) = parse_x509(&der)?;
    if !rest.is_empty() {
        return Err(X509Error::TrailingData("certificate"));
    }
    let bad = |e: x509_parser::error::X509Error| X509Error::BadDer {
        what: "certificate",
        reason: e.to_string(),
    };
    let is_ca = cert
        .basic_constraints()
        .map_err(bad)?
        .is_some_and(|bc| bc.value.ca);
    let client_auth = cert
        .extended_key_usage()
        .map_err(bad)?
        .map(|eku| eku.value.client_auth || eku.value.any);
    let parsed = Certificate {
        id: certificate_id(&der),
        pem: pem_encode("CERTIFICATE", &der),
        subject: cert.subject().to_string(),
        subject_cn: common_name(cert.subject()),
        issuer: cert.issuer().to_string(),
        issuer_cn: common_name(cert.issuer()),
        serial: hex(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca,
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        client_auth,
        der: Vec::new(),
    };
    Ok(Certificate { der, ..parsed })
}

fn parse_x509(der: &[u8]) -> Result<(&[u8], X509Certificate<'_>), X509Error> {
    x509_parser::parse_x509_certificate(der).map_err(|e| X509Error::BadDer {
        what: "certificate",
        reason: e.to_string(),
    })
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned)
}

/// Validity of an issued certificate, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// Like AWS: from `now` to 2049-12-31T23:59:59Z (or a year from `now` once that has passed).
    pub fn aws_default(now: i64) -> Self {
        let not_after = if now < AWS_NOT_AFTER - 86_400 {
            AWS_NOT_AFTER
        } else {
            now.saturating_add(365 * 86_400)
        };
        Validity {
            not_before: now,
            not_after,
        }
    }

    pub(crate) fn apply(&self, params: &mut rcgen::CertificateParams) -> Result<(), X509Error> {
        let clamp = |t: i64| t.clamp(0, MAX_X509_TIME);
        let (nb, na) = (clamp(self.not_before), clamp(self.not_after));
        if nb >= na {
            return Err(X509Error::InvalidValidity {
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        // Both are within 0..=MAX_X509_TIME, so the additions cannot overflow.
        params.not_before = epoch + Duration::from_secs(nb.unsigned_abs());
        params.not_after = epoch + Duration::from_secs(na.unsigned_abs());
        Ok(())
    }
}

/// A CA that signs device certificates: its certificate and private key.
pub struct CaSigner {
    cert: Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CaSigner")
            .field("cert", &self.cert.id)
            .finish_non_exhaustive()
    }
}

impl CaSigner {
    /// The CA certificate (PEM or DER) and its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    /// Refuses a certificate that is not a CA and a key that is not the certificate's.
    pub fn from_pem(cert: &[u8], key_pem: &[u8]) -> Result<Self, X509Error> {
        let cert = parse_certificate(cert)?;
        if !cert.is_ca {
            return Err(X509Error::NotACa("basicConstraints CA is not true"));
        }
        let key_der =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| X509Error::BadKey(e.to_string()))?;
        let key = KeyPair::try_from(&key_der).map_err(|e| X509Error::BadKey(e.to_string()))?;
        let (_, x) = parse_x509(&cert.der)?;
        if rcgen::PublicKeyData::der_bytes(&key) != x.public_key().subject_public_key.as_ref() {
            return Err(X509Error::KeyMismatch);
        }
        // rcgen copies the CA's subject into the issuer field; make sure it can do so
        // faithfully (and without reaching its panic on an empty RDN).
        to_distinguished_name(x.subject())?;
        Ok(CaSigner { cert, key })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    fn issue(
        &self,
        subject: DistinguishedName,
        public_key: &impl rcgen::PublicKeyData,
        validity: Validity,
    ) -> Result<Certificate, X509Error> {
        let sign = |e: rcgen::Error| X509Error::Sign(e.to_string());
        let mut params = rcgen::CertificateParams::default();
        validity.apply(&mut params)?;
        params.distinguished_name = subject;
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(self.cert.der.as_slice()), &self.key)
                .map_err(sign)?;
        let cert = params.signed_by(public_key, &issuer).map_err(sign)?;
        certificate_from_der(cert.der().to_vec())
    }
}

/// `CreateCertificateFromCsr`: checks the CSR (PEM `CERTIFICATE REQUEST` / `NEW CERTIFICATE
/// REQUEST`, or DER) and its self-signature, keeps its subject and public key, and issues a
/// client certificate (KU digitalSignature, EKU clientAuth) signed by `ca`. Extensions the
/// CSR asks for are ignored, as AWS does.
pub fn issue_from_csr(
    csr: &[u8],
    ca: &CaSigner,
    validity: Validity,
) -> Result<Certificate, X509Error> {
    let parsed = parse_csr(csr)?;
    ca.issue(parsed.subject, &parsed.public_key, validity)
}

/// A CSR whose signature verified.
#[derive(Debug)]
pub struct Csr {
    pub subject: DistinguishedName,
    pub public_key: rcgen::SubjectPublicKeyInfo,
}

/// Parses one CSR (PEM or DER) and verifies its self-signature.
pub fn parse_csr(input: &[u8]) -> Result<Csr, X509Error> {
    let owned;
    let input = if contains(input, b"-----BEGIN NEW CERTIFICATE REQUEST-----") {
        owned = replace_all(input, b"NEW CERTIFICATE REQUEST", b"CERTIFICATE REQUEST");
        owned.as_slice()
    } else {
        input
    };
    let der = decode_one(input, SectionKind::Csr, "CERTIFICATE REQUEST")?;
    let (rest, req) = X509CertificationRequest::from_der(&der).map_err(|e| X509Error::BadDer {
        what: "CSR",
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(X509Error::TrailingData("CSR"));
    }
    req.verify_signature()
        .map_err(|_| X509Error::CsrSignature)?;
    let info = &req.certification_request_info;
    let subject = to_distinguished_name(&info.subject)?;
    let public_key = rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
        .map_err(|e| X509Error::UnsupportedKey(e.to_string()))?;
    Ok(Csr {
        subject,
        public_key,
    })
}

/// What `CreateKeysAndCertificate` returns. The private key is the caller's to hand out once.
#[derive(Clone)]
pub struct KeysAndCertificate {
    pub certificate: Certificate,
    /// `PUBLIC KEY` (SubjectPublicKeyInfo) PEM.
    pub public_key_pem: String,
    /// `PRIVATE KEY` (PKCS#8) PEM.
    pub private_key_pem: String,
}

impl std::fmt::Debug for KeysAndCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("KeysAndCertificate")
            .field("certificate", &self.certificate.id)
            .finish_non_exhaustive()
    }
}

/// `CreateKeysAndCertificate`: a fresh **RSA-2048** key pair (as AWS; generated by aws-lc-rs
/// through rcgen) and a client certificate for it with subject CN "AWS IoT Certificate",
/// signed by `ca` (SHA-256 with the CA's key). The private key is PKCS#8 (`PRIVATE KEY`),
/// where AWS hands out PKCS#1 (`RSA PRIVATE KEY`); OpenSSL, mosquitto and paho read both.
pub fn create_keys_and_certificate(
    ca: &CaSigner,
    validity: Validity,
) -> Result<KeysAndCertificate, X509Error> {
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .map_err(|e| X509Error::Sign(e.to_string()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CREATE_KEYS_CN);
    let certificate = ca.issue(dn, &key, validity)?;
    Ok(KeysAndCertificate {
        certificate,
        public_key_pem: key.public_key_pem(),
        private_key_pem: key.serialize_pem(),
    })
}

/// `GetRegistrationCode`: 32 random bytes as 64 lowercase hex characters.
pub fn registration_code() -> Result<String, X509Error> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|e| X509Error::Random(e.to_string()))?;
    Ok(hex(&bytes))
}

/// Checks a certificate offered to `RegisterCACertificate` on its own: it parses, has
/// basicConstraints CA=true, has keyCertSign when it has a keyUsage extension, verifies its
/// own signature when it is self-issued, and is valid at `now`.
pub fn check_ca_certificate(input: &[u8], now: i64) -> Result<Certificate, X509Error> {
    let ca = parse_certificate(input)?;
    if !ca.is_ca {
        return Err(X509Error::NotACa("basicConstraints CA is not true"));
    }
    let (_, x) = parse_x509(&ca.der)?;
    if let Ok(Some(ku)) = x.key_usage()
        && !ku.value.key_cert_sign()
    {
        return Err(X509Error::NotACa("keyUsage lacks keyCertSign"));
    }
    if ca.self_issued {
        x.verify_signature(None)
            .map_err(|_| X509Error::CaSelfSignature)?;
    }
    ca.check_valid_at(now, "CA certificate")?;
    Ok(ca)
}

/// `RegisterCACertificate` in DEFAULT mode: the CA passes [`check_ca_certificate`], and the
/// verification certificate is signed by the CA's key, names the CA's subject as its issuer,
/// has subject CN equal to `registration_code`, and is valid at `now`. Returns the CA.
pub fn verify_ca_registration(
    ca: &[u8],
    verification: &[u8],
    registration_code: &str,
    now: i64,
) -> Result<Certificate, X509Error> {
    let ca = check_ca_certificate(ca, now)?;
    let v = parse_certificate(verification)?;
    let (_, ca_x) = parse_x509(&ca.der)?;
    let (_, v_x) = parse_x509(&v.der)?;
    if v_x.issuer().as_raw() != ca_x.subject().as_raw() {
        return Err(X509Error::NotSignedByCa);
    }
    v_x.verify_signature(Some(ca_x.public_key()))
        .map_err(|_| X509Error::NotSignedByCa)?;
    if v.subject_cn.as_deref() != Some(registration_code) {
        return Err(X509Error::RegistrationCodeMismatch);
    }
    v.check_valid_at(now, "verification certificate")?;
    Ok(ca)
}

/// Signature algorithms accepted in device chains (aws-lc-rs only).
static CHAIN_ALGS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P256_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
    webpki::aws_lc_rs::ECDSA_P521_SHA256,
    webpki::aws_lc_rs::ECDSA_P521_SHA384,
    webpki::aws_lc_rs::ECDSA_P521_SHA512,
    webpki::aws_lc_rs::ED25519,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PKCS1_3072_8192_SHA384,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Whether `device` is signed by `ca` and usable for TLS client authentication at `now`:
/// rustls-webpki's `EndEntityCert::verify_for_usage` with `ca` as the only trust anchor, no
/// intermediates and client-auth usage (an EKU extension, when present, must allow
/// clientAuth; v1 certificates and CA certificates are refused as end entities). webpki does
/// not look at the anchor itself, so `ca` must also be a CA and valid at `now`.
pub fn verify_chain(device: &Certificate, ca: &Certificate, now: i64) -> Result<(), X509Error> {
    if !ca.is_ca {
        return Err(X509Error::NotACa("basicConstraints CA is not true"));
    }
    ca.check_valid_at(now, "CA certificate")?;
    let chain = |e: webpki::Error| X509Error::Chain(format!("{e:?}"));
    let ca_der = CertificateDer::from(ca.der.as_slice());
    let anchor = webpki::anchor_from_trusted_cert(&ca_der).map_err(chain)?;
    let device_der = CertificateDer::from(device.der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&device_der).map_err(chain)?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0).unsigned_abs()));
    ee.verify_for_usage(
        CHAIN_ALGS,
        &[anchor],
        &[],
        time,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| match e {
        webpki::Error::CertExpired { .. } => X509Error::Expired("certificate"),
        webpki::Error::CertNotValidYet { .. } => X509Error::NotYetValid("certificate"),
        other => chain(other),
    })
}

// ---------------------------------------------------------------------------------------
// helpers

/// The DER of exactly one PEM section of `kind`, or `input` itself when it looks like DER.
fn decode_one(input: &[u8], kind: SectionKind, label: &'static str) -> Result<Vec<u8>, X509Error> {
    let trimmed = input.trim_ascii();
    if trimmed.is_empty() {
        return Err(X509Error::Empty);
    }
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    // PEM pasted into YAML, JSON or a terminal often arrives indented; the PEM parser only
    // sees lines that start at column 0.
    let unindented: Vec<u8>;
    let input = if input
        .split(|&b| b == b'\n')
        .any(|l| l.first().is_some_and(u8::is_ascii_whitespace))
    {
        unindented = input
            .split(|&b| b == b'\n')
            .flat_map(|l| l.trim_ascii().iter().copied().chain([b'\n']))
            .collect();
        &unindented
    } else {
        input
    };
    let mut found = Vec::new();
    let mut other = None;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(input) {
        let (k, der) = item.map_err(|e| X509Error::MalformedPem(e.to_string()))?;
        if k == kind {
            found.push(der);
        } else if other.is_none() {
            other = Some(format!("{k:?}"));
        }
    }
    match found.len() {
        1 => Ok(found.pop().unwrap_or_default()),
        0 => match other.or_else(|| begin_label(input)) {
            Some(found) => Err(X509Error::WrongPemLabel {
                expected: label,
                found,
            }),
            None => Err(X509Error::MalformedPem("no PEM section".into())),
        },
        count => Err(X509Error::MultipleItems {
            expected: label,
            count,
        }),
    }
}

/// The label of the first `-----BEGIN <label>-----` line, if any (unknown labels).
fn begin_label(input: &[u8]) -> Option<String> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let start = input.windows(BEGIN.len()).position(|w| w == BEGIN)? + BEGIN.len();
    let rest = input.get(start..)?;
    let end = rest
        .iter()
        .position(|&b| b == b'-' || b == b'\n' || b == b'\r')
        .unwrap_or(rest.len())
        .min(64);
    Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay.get(i..i + from.len()) == Some(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.extend_from_slice(&hay[i..=i]);
            i += 1;
        }
    }
    out
}

/// Converts a parsed name into rcgen's, refusing what rcgen cannot write back faithfully
/// (multi-valued RDNs, repeated attribute types, unknown string types).
fn to_distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, X509Error> {
    let unsupported = |why: &str| X509Error::UnsupportedName(why.to_owned());
    let mut dn = DistinguishedName::new();
    let mut seen: Vec<DnType> = Vec::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unsupported("empty or multi-valued RDN"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unsupported("attribute type OID too large"))?
            .collect();
        let ty = DnType::from_oid(&oid);
        if seen.contains(&ty) {
            return Err(unsupported("repeated attribute type"));
        }
        seen.push(ty.clone());
        let data = attr.attr_value().data;
        let text = || {
            std::str::from_utf8(data)
                .map(str::to_owned)
                .map_err(|_| unsupported("invalid string"))
        };
        let bad = |e: rcgen::Error| X509Error::UnsupportedName(e.to_string());
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?),
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(bad)?),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(bad)?),
            Tag::T61String => DnValue::TeletexString(text()?.try_into().map_err(bad)?),
            Tag::BmpString => DnValue::BmpString(
                rcgen::string::BmpString::from_utf16be(data.to_vec()).map_err(bad)?,
            ),
            Tag::UniversalString => DnValue::UniversalString(
                rcgen::string::UniversalString::from_utf32be(data.to_vec()).map_err(bad)?,
            ),
            _ => return Err(unsupported("attribute value is not a string")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

fn random_serial() -> Result<SerialNumber, X509Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|e| X509Error::Random(e.to_string()))?;
    // Positive, minimally encoded, never zero.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
#[path = "x509/tests.rs"]
mod tests;
