//! Arbitrary bytes as a CSR (PEM or DER), signed by a fixed test CA when it parses. Neither
//! step may panic; an issued certificate must parse, carry the CSR's subject CN and chain to
//! the CA.

#![no_main]

use std::sync::OnceLock;

use ferrocore_identity::x509::{CaSigner, Validity, issue_from_csr, parse_csr, verify_chain};
use libfuzzer_sys::fuzz_target;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

const NOW: i64 = 1_780_000_000;

fn ca() -> &'static CaSigner {
    static CA: OnceLock<CaSigner> = OnceLock::new();
    CA.get_or_init(|| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "fuzz CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let cert = params.self_signed(&key).expect("CA");
        CaSigner::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).expect("signer")
    })
}

fuzz_target!(|data: &[u8]| {
    if parse_csr(data).is_err() {
        return;
    }
    let validity = Validity::aws_default(NOW);
    if let Ok(cert) = issue_from_csr(data, ca(), validity) {
        verify_chain(&cert, ca().certificate(), NOW + 1).expect("issued cert chains to its CA");
    }
});
