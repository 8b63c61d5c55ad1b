//! Token signatures: an authorizer's `tokenSigningPublicKeys` and the check AWS makes before
//! invoking the authorizer function (RSA PKCS#1 v1.5 with SHA-256 over the raw token bytes,
//! base64 signature; `openssl dgst -sha256 -sign key.pem | base64`).

use std::fmt;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// AWS's limit on `x-amz-customauthorizer-signature`, in base64 characters.
pub const MAX_SIGNATURE_CHARS: usize = 2560;
/// AWS's limit on one PEM public key of an authorizer.
pub const MAX_PUBLIC_KEY_PEM_CHARS: usize = 5120;
/// The smallest RSA modulus accepted (AWS: "at least 2048 bits").
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus the verifier supports.
pub const MAX_RSA_BITS: usize = 8192;

/// Why a PEM public key is not usable as a token-signing key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the public key PEM is {length} characters; at most {max} are allowed")]
    TooLong { length: usize, max: usize },
    #[error(
        "the key is a PKCS#1 `RSA PUBLIC KEY`; a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM is required \
         (convert it with `openssl rsa -RSAPublicKey_in -pubout`)"
    )]
    Pkcs1Pem,
    #[error("no `PUBLIC KEY` PEM section found")]
    NoPublicKey,
    #[error("more than one PEM section; exactly one `PUBLIC KEY` is required")]
    SeveralSections,
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    #[error("malformed SubjectPublicKeyInfo: {0}")]
    MalformedKey(String),
    #[error("the key is {0}, not RSA; token signatures are RSA PKCS#1 v1.5 with SHA-256")]
    NotRsa(&'static str),
    #[error("the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required")]
    TooShort { bits: usize },
    #[error("the RSA key has {bits} bits; at most {MAX_RSA_BITS} are supported")]
    TooLarge { bits: usize },
    #[error("the RSA key was rejected: {0}")]
    Rejected(String),
}

/// Why a token's signature was not accepted. Never carries the token or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is empty")]
    Empty,
    #[error("the signature is {length} characters; at most {MAX_SIGNATURE_CHARS} are allowed")]
    TooLong { length: usize },
    #[error("the signature is not base64 (`[A-Za-z0-9+/]+={{0,2}}`)")]
    NotBase64,
    #[error("the authorizer has no token-signing key")]
    NoKeys,
    #[error("the signature does not verify with any of the authorizer's keys")]
    Mismatch,
}

/// A token-signing public key, checked and parsed once (when the authorizer is created or
/// loaded), then used for every connection.
#[derive(Clone)]
pub struct ParsedKey {
    key: ParsedPublicKey,
    bits: usize,
}

impl fmt::Debug for ParsedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("rsa_bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl ParsedKey {
    /// Parses one PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `openssl pkey -pubout` writes
    /// it; refuses anything but an RSA key of 2048 to 8192 bits, with an error that says why.
    pub fn from_pem(pem: &str) -> Result<ParsedKey, KeyError> {
        let length = pem.chars().count();
        if length > MAX_PUBLIC_KEY_PEM_CHARS {
            return Err(KeyError::TooLong {
                length,
                max: MAX_PUBLIC_KEY_PEM_CHARS,
            });
        }
        let mut sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes());
        let der = match sections.next() {
            Some(Ok((SectionKind::PublicKey, der))) => der,
            Some(Ok(_)) => return Err(KeyError::NoPublicKey),
            Some(Err(e)) => return Err(KeyError::MalformedPem(e.to_string())),
            // The PEM reader skips labels it does not know, PKCS#1 public keys among them.
            None if pem.contains("-----BEGIN RSA PUBLIC KEY-----") => {
                return Err(KeyError::Pkcs1Pem);
            }
            None => return Err(KeyError::NoPublicKey),
        };
        if sections.next().is_some() {
            return Err(KeyError::SeveralSections);
        }
        ParsedKey::from_spki_der(&der)
    }

    /// As [`from_pem`](Self::from_pem), from the DER of a SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<ParsedKey, KeyError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| KeyError::MalformedKey(e.to_string()))?;
        if !rest.is_empty() {
            return Err(KeyError::MalformedKey("trailing data".into()));
        }
        let rsa = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => rsa,
            Ok(PublicKey::EC(_)) => return Err(KeyError::NotRsa("an elliptic-curve key")),
            Ok(PublicKey::DSA(_)) => return Err(KeyError::NotRsa("a DSA key")),
            Ok(PublicKey::GostR3410(_) | PublicKey::GostR3410_2012(_)) => {
                return Err(KeyError::NotRsa("a GOST key"));
            }
            Ok(PublicKey::Unknown(_)) => {
                return Err(KeyError::NotRsa("of an unsupported algorithm"));
            }
            Err(e) => return Err(KeyError::MalformedKey(e.to_string())),
        };
        let bits = modulus_bits(rsa.modulus);
        if bits < MIN_RSA_BITS {
            return Err(KeyError::TooShort { bits });
        }
        if bits > MAX_RSA_BITS {
            return Err(KeyError::TooLarge { bits });
        }
        let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(ParsedKey { key, bits })
    }

    /// The size of the RSA modulus in bits.
    pub fn rsa_bits(&self) -> usize {
        self.bits
    }
}

/// The significant bits of a big-endian unsigned integer (DER may add a leading zero byte).
fn modulus_bits(modulus: &[u8]) -> usize {
    let significant = match modulus.iter().position(|&b| b != 0) {
        Some(first) => &modulus[first..],
        None => return 0,
    };
    let leading = significant
        .first()
        .map_or(0, |b| b.leading_zeros() as usize);
    significant.len() * 8 - leading
}

/// Checks `signature_b64` (standard base64, padded or not) over the raw bytes of `token`
/// against each of `keys` in turn; one match suffices (two keys allow rotation).
pub fn verify_token_signature(
    token: &str,
    signature_b64: &str,
    keys: &[ParsedKey],
) -> Result<(), SignatureError> {
    let signature = decode_signature(signature_b64)?;
    if keys.is_empty() {
        return Err(SignatureError::NoKeys);
    }
    if keys
        .iter()
        .any(|k| k.key.verify_sig(token.as_bytes(), &signature).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// AWS's form of a token signature: at most 2560 characters of `[A-Za-z0-9+/]+={0,2}`.
pub fn check_signature_format(signature_b64: &str) -> Result<(), SignatureError> {
    if signature_b64.is_empty() {
        return Err(SignatureError::Empty);
    }
    if signature_b64.len() > MAX_SIGNATURE_CHARS {
        return Err(SignatureError::TooLong {
            length: signature_b64.len(),
        });
    }
    let data = signature_b64.trim_end_matches('=');
    let well_formed = signature_b64.len() - data.len() <= 2
        && !data.is_empty()
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !well_formed {
        return Err(SignatureError::NotBase64);
    }
    Ok(())
}

fn decode_signature(signature_b64: &str) -> Result<Vec<u8>, SignatureError> {
    check_signature_format(signature_b64)?;
    SIGNATURE_BASE64
        .decode(signature_b64)
        .map_err(|_| SignatureError::NotBase64)
}

/// Standard alphabet; `openssl ... | base64` pads, some clients strip the padding: both are
/// accepted.
const SIGNATURE_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
