//! Certificates for the tests: self-signed CAs (ECDSA P-256) and the certificates, CSRs and
//! CRLs around them, at given Unix times.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, RevocationReason,
    RevokedCertParams, SerialNumber,
};

use crate::x509::{CaSigner, Certificate, Validity, parse_certificate};

/// A CA: its certificate and its key (PEM).
pub(crate) struct TestCa {
    pub(crate) cert: Certificate,
    pub(crate) key_pem: String,
}

/// From a day before `now`, for ten years.
pub(crate) fn ten_years(now: i64) -> Validity {
    Validity {
        not_before: now - 86_400,
        not_after: now + 3650 * 86_400,
    }
}

pub(crate) fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

fn subject(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name
}

impl TestCa {
    /// A CA with subject CN `cn`, O "Ferrocore test".
    pub(crate) fn new(cn: &str, validity: Validity) -> TestCa {
        Self::with_key(cn, new_key(), validity)
    }

    /// A CA certificate for `key` (two calls with one key: same subject and key, other
    /// certificates).
    pub(crate) fn with_key(cn: &str, key: KeyPair, validity: Validity) -> TestCa {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Ferrocore test");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity.apply(&mut params).unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            cert: parse_certificate(pem.as_bytes()).unwrap(),
            key_pem: key.serialize_pem(),
        }
    }

    pub(crate) fn issuer(&self) -> Issuer<'static, KeyPair> {
        Issuer::from_ca_cert_pem(&self.cert.pem, KeyPair::from_pem(&self.key_pem).unwrap()).unwrap()
    }

    pub(crate) fn signer(&self) -> CaSigner {
        CaSigner::from_pem(self.cert.pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }

    /// A certificate (PEM) with subject CN `cn` that this CA signs.
    pub(crate) fn sign(&self, cn: &str, validity: Validity) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(cn);
        validity.apply(&mut params).unwrap();
        params.signed_by(&new_key(), &self.issuer()).unwrap().pem()
    }

    /// A CRL (PEM) this CA signs, with [`crl_params`].
    pub(crate) fn crl(&self, number: u8, this_update: i64, revoked: &[&[u8]]) -> String {
        crl_params(&[number], this_update, revoked)
            .signed_by(&self.issuer())
            .unwrap()
            .pem()
            .unwrap()
    }
}

/// A CRL's parameters: cRLNumber `number` (big-endian), `thisUpdate` at `this_update`,
/// `nextUpdate` a day later, the `revoked` serials revoked a minute before.
pub(crate) fn crl_params(
    number: &[u8],
    this_update: i64,
    revoked: &[&[u8]],
) -> CertificateRevocationListParams {
    let at = |t: i64| rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(t.unsigned_abs());
    CertificateRevocationListParams {
        this_update: at(this_update),
        next_update: at(this_update + 86_400),
        crl_number: SerialNumber::from_slice(number),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: at(this_update - 60),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
}

/// A CSR (PEM) with subject CN `cn`, for a new key.
pub(crate) fn csr_pem(cn: &str) -> String {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(cn);
    params.serialize_request(&new_key()).unwrap().pem().unwrap()
}
