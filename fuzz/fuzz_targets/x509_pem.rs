//! Arbitrary bytes as a certificate (PEM or DER). Parsing must never panic; a certificate
//! that parses must round-trip through its PEM and DER to an equal value, with a 64-char id.

#![no_main]

use ferrocore_identity::x509::{certificate_id, parse_certificate, verify_chain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cert) = parse_certificate(data) else {
        return;
    };
    assert_eq!(cert.id, certificate_id(&cert.der));
    assert_eq!(cert.id.len(), 64);
    let from_pem = parse_certificate(cert.pem.as_bytes()).expect("own PEM parses");
    assert_eq!(from_pem, cert);
    let from_der = parse_certificate(&cert.der).expect("own DER parses");
    assert_eq!(from_der, cert);
    // The chain check must not panic either, with the certificate as its own anchor.
    let _ = verify_chain(&cert, &cert, cert.not_before);
});
