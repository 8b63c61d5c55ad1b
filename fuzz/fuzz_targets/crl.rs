//! Arbitrary bytes as a CRL (PEM or DER) against a fixed Ed25519 test CA, twice: as given,
//! and with its to-be-signed part re-signed by the CA (the first element of an outer
//! SEQUENCE when there is one, otherwise the whole input), so that mutations reach the
//! checks behind the signature. Neither may panic; a CRL that is accepted must name the CA,
//! list sorted unique serials that `is_revoked` finds, and parse again from its own DER to an
//! equal value.
//!
//! `seeds/crl` holds CRLs signed by this CA (generated with `openssl ca -gencrl` from
//! `CA_CERT`/`CA_KEY`).

#![no_main]

use std::sync::LazyLock;

use ferrocore_identity::x509::{CRL_MAX_CLOCK_SKEW, Certificate, parse_certificate, parse_crl};
use libfuzzer_sys::fuzz_target;
use rcgen::{KeyPair, SigningKey};

/// 2027-01-15; the seeds' thisUpdate is 2026-12-01.
const NOW: i64 = 1_800_000_000;

/// `CN=Ferrocore fuzz CA, O=Ferrocore test`, Ed25519, CA:TRUE, keyCertSign + cRLSign.
const CA_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBXjCCARCgAwIBAgICD8AwBQYDK2VwMDUxGjAYBgNVBAMMEUZlcnJvY29yZSBm
dXp6IENBMRcwFQYDVQQKDA5GZXJyb2NvcmUgdGVzdDAgFw0yNjExMjEwNDEwMzJa
GA8yMTI2MTAyODA0MTAzMlowNTEaMBgGA1UEAwwRRmVycm9jb3JlIGZ1enogQ0Ex
FzAVBgNVBAoMDkZlcnJvY29yZSB0ZXN0MCowBQYDK2VwAyEAwToXrsGwcIuQDVu/
CtX/Tr50utxDQLm8/xw/i/eDq4ijQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0P
AQH/BAQDAgEGMB0GA1UdDgQWBBSGMOja22xYqnVg5cbyeF/yYbeHeDAFBgMrZXAD
QQC6vS/qcRVYn4IYi9hRgGMKFVFwMFrIj9qPYoX6r1D48hYpNh3YXH2BS3d9u+Ke
fxHPIpnWaF1utrEdaT2VAHQL
-----END CERTIFICATE-----
";
/// The CA's key: a test key, public on purpose.
const CA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEII4h1FXIB8Mo8CBxUyPP6C6k82zOB+kPIPph7+T6wAem
-----END PRIVATE KEY-----
";
/// AlgorithmIdentifier of Ed25519.
const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

static CA: LazyLock<(Certificate, KeyPair)> = LazyLock::new(|| {
    let cert = parse_certificate(CA_CERT.as_bytes()).expect("CA certificate");
    let key = KeyPair::from_pem(CA_KEY).expect("CA key");
    (cert, key)
});

fuzz_target!(|data: &[u8]| {
    let (ca, key) = &*CA;
    check(data, ca);
    let tbs = first_element(data).unwrap_or(data);
    let signature = key.sign(tbs).expect("Ed25519 signs anything");
    let mut bits = vec![0];
    bits.extend_from_slice(&signature);
    let resigned = tlv(0x30, &[tbs, ED25519, &tlv(0x03, &bits)].concat());
    check(&resigned, ca);
});

fn check(input: &[u8], ca: &Certificate) {
    let Ok(crl) = parse_crl(input, ca, NOW) else {
        return;
    };
    assert_eq!(crl.issuer, ca.subject);
    assert!(crl.this_update <= NOW + CRL_MAX_CLOCK_SKEW);
    assert!(crl.revoked_serials.windows(2).all(|w| w[0] < w[1]));
    for serial in &crl.revoked_serials {
        assert!(crl.is_revoked(serial));
    }
    assert!(!crl.is_revoked("not hex"));
    let again = parse_crl(&crl.der, ca, NOW).expect("own DER parses");
    assert_eq!(again, crl);
}

/// The complete first TLV inside an outer SEQUENCE, if `data` starts with one.
fn first_element(data: &[u8]) -> Option<&[u8]> {
    if data.first() != Some(&0x30) {
        return None;
    }
    let (outer, _) = header(data)?;
    let inner = data.get(outer..)?;
    let (h, len) = header(inner)?;
    inner.get(..h.checked_add(len)?)
}

/// Header length and content length of the DER TLV at the start of `data`.
fn header(data: &[u8]) -> Option<(usize, usize)> {
    let first = *data.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = data
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((2 + n, len))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}
