//! Certificate revocation lists (CRLs) attached to registered CAs.
//!
//! An operator attaches a CRL to a registered CA and may replace it at run time; a device
//! certificate issued by that CA whose serial the CRL lists is refused. [`parse_crl`] is the
//! pure part: it parses one CRL, checks that the CA issued and signed it, and flattens the
//! revoked serials into a sorted list for [`Crl::is_revoked`].
//!
//! Only complete, direct CRLs are accepted, because a CRL replaces the previous one: a delta
//! CRL, an indirect CRL (entries naming another issuer), a CRL scoped to some revocation
//! reasons, to CA or to attribute certificates, and any CRL or entry extension marked
//! critical that is not understood here are refused with [`X509Error::UnsupportedCrl`]
//! rather than read as if they were a full list (which would silently un-revoke
//! certificates).
//!
//! A stale CRL (`nextUpdate` in the past) is still accepted: its serials remain revoked, and
//! refusing it would revoke nothing. Whether to warn about or alert on staleness is the
//! caller's choice, from [`Crl::next_update`].

use std::collections::HashSet;

use rustls_pki_types::pem::SectionKind;
use x509_parser::extensions::{ParsedExtension, X509Extension};
use x509_parser::oid_registry::{OID_X509_EXT_DELTA_CRL_INDICATOR, OID_X509_EXT_ISSUER};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Version;

use super::{Certificate, X509Error, decode_one, hex, parse_x509};

/// How far in the future (seconds) a CRL's `thisUpdate` may lie: clock skew between the CA
/// that signed it and this gateway.
pub const CRL_MAX_CLOCK_SKEW: i64 = 300;

/// `reasonCode` removeFromCRL: only meaningful in delta CRLs (RFC 5280 5.3.1).
const REASON_REMOVE_FROM_CRL: u8 = 8;

/// A parsed CRL, checked against the CA that must have issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// DER of the CRL as given (decoded from PEM when given as PEM).
    pub der: Vec<u8>,
    /// Issuer DN in the same RFC 4514-like form as [`Certificate::subject`].
    pub issuer: String,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds, when present.
    pub next_update: Option<i64>,
    /// cRLNumber extension, if present: its big-endian magnitude bytes as lowercase hex
    /// (`01`, `1000`; zero is `00`). Compare numerically, not as strings.
    pub crl_number: Option<String>,
    /// Revoked serials, each the lowercase hex of the serial's DER content bytes exactly as
    /// [`Certificate::serial`], sorted and deduplicated.
    pub revoked_serials: Vec<String>,
}

impl Crl {
    /// Whether the CRL lists `serial_hex`, given as [`Certificate::serial`] (lowercase hex
    /// of the DER content bytes, leading `00` included). The caller makes sure the
    /// certificate was issued by this CRL's CA.
    pub fn is_revoked(&self, serial_hex: &str) -> bool {
        self.revoked_serials
            .binary_search_by(|s| s.as_str().cmp(serial_hex))
            .is_ok()
    }
}

/// Parses exactly one CRL from PEM (`X509 CRL`) or DER and checks that `ca` issued and
/// signed it: `ca` is a CA (basicConstraints CA=true) whose keyUsage, when present, includes
/// cRLSign; the CRL's issuer name equals the CA's subject byte for byte; its signature
/// verifies with the CA's public key. Then it must be a complete, direct CRL (see the module
/// documentation) with `thisUpdate` no later than `now` + [`CRL_MAX_CLOCK_SKEW`].
///
/// `now` (Unix seconds) does not make an expired CRL fail: a CRL whose `nextUpdate` has
/// passed still lists revoked serials and is returned as is.
pub fn parse_crl(input: &[u8], ca: &Certificate, now: i64) -> Result<Crl, X509Error> {
    let der = decode_one(input, SectionKind::Crl, "X509 CRL")?;
    let (rest, crl) = CertificateRevocationList::from_der(&der).map_err(bad_der)?;
    if !rest.is_empty() {
        return Err(X509Error::TrailingData("CRL"));
    }
    if !matches!(crl.version(), None | Some(X509Version::V2)) {
        return Err(X509Error::BadDer {
            what: "CRL",
            reason: "version is neither absent (v1) nor v2".into(),
        });
    }

    if !ca.is_ca {
        return Err(X509Error::NotACa("basicConstraints CA is not true"));
    }
    let (_, ca_x) = parse_x509(&ca.der)?;
    match ca_x.key_usage() {
        Ok(Some(ku)) if !ku.value.crl_sign() => {
            return Err(X509Error::NotACa("keyUsage lacks cRLSign"));
        }
        Ok(_) => {}
        Err(e) => {
            return Err(X509Error::BadDer {
                what: "CA certificate",
                reason: e.to_string(),
            });
        }
    }
    if crl.issuer().as_raw() != ca_x.subject().as_raw() {
        return Err(X509Error::CrlIssuerMismatch {
            crl: crl.issuer().to_string(),
            ca: ca.subject.clone(),
        });
    }
    crl.verify_signature(ca_x.public_key())
        .map_err(|e| match e {
            x509_parser::error::X509Error::SignatureUnsupportedAlgorithm => {
                X509Error::UnsupportedCrl(format!(
                    "signature algorithm {} with the CA's key",
                    crl.signature_algorithm.algorithm
                ))
            }
            _ => X509Error::CrlSignature,
        })?;

    check_extensions(crl.extensions(), Scope::Crl)?;
    let mut revoked_serials = Vec::with_capacity(crl.tbs_cert_list.revoked_certificates.len());
    for entry in crl.iter_revoked_certificates() {
        check_extensions(entry.extensions(), Scope::Entry)?;
        revoked_serials.push(hex(entry.raw_serial()));
    }
    revoked_serials.sort_unstable();
    revoked_serials.dedup();

    let this_update = crl.last_update().timestamp();
    if this_update > now.saturating_add(CRL_MAX_CLOCK_SKEW) {
        return Err(X509Error::NotYetValid("CRL"));
    }
    let parsed = Crl {
        issuer: crl.issuer().to_string(),
        this_update,
        next_update: crl.next_update().map(|t| t.timestamp()),
        crl_number: crl.crl_number().map(|n| hex(&n.to_bytes_be())),
        revoked_serials,
        der: Vec::new(),
    };
    Ok(Crl { der, ..parsed })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Crl,
    Entry,
}

/// Refuses duplicated or malformed extensions and those that make the CRL something other
/// than a complete list of this CA's revoked certificates.
fn check_extensions(exts: &[X509Extension<'_>], scope: Scope) -> Result<(), X509Error> {
    let unsupported = |why: String| Err(X509Error::UnsupportedCrl(why));
    let mut seen = HashSet::with_capacity(exts.len());
    for ext in exts {
        if !seen.insert(&ext.oid) {
            return Err(X509Error::BadDer {
                what: "CRL",
                reason: format!("extension {} appears twice", ext.oid),
            });
        }
        match (ext.parsed_extension(), scope) {
            (ParsedExtension::ParseError { error }, _) => {
                return Err(X509Error::BadDer {
                    what: "CRL",
                    reason: format!("extension {}: {error}", ext.oid),
                });
            }
            (ParsedExtension::IssuingDistributionPoint(idp), Scope::Crl) => {
                if idp.indirect_crl {
                    return unsupported("indirect CRL (issuingDistributionPoint)".into());
                }
                if idp.only_some_reasons.is_some() {
                    return unsupported("CRL limited to some revocation reasons".into());
                }
                if idp.only_contains_ca_certs {
                    return unsupported("CRL limited to CA certificates".into());
                }
                if idp.only_contains_attribute_certs {
                    return unsupported("CRL limited to attribute certificates".into());
                }
            }
            (ParsedExtension::ReasonCode(code), Scope::Entry)
                if code.0 == REASON_REMOVE_FROM_CRL =>
            {
                return unsupported("removeFromCRL entry (delta CRLs only)".into());
            }
            _ if scope == Scope::Crl && ext.oid == OID_X509_EXT_DELTA_CRL_INDICATOR => {
                return unsupported("delta CRL".into());
            }
            _ if scope == Scope::Entry && ext.oid == OID_X509_EXT_ISSUER => {
                return unsupported("indirect CRL entry (certificateIssuer)".into());
            }
            (
                ParsedExtension::CRLNumber(_) | ParsedExtension::AuthorityKeyIdentifier(_),
                Scope::Crl,
            )
            | (ParsedExtension::ReasonCode(_) | ParsedExtension::InvalidityDate(_), Scope::Entry) =>
                {}
            _ if ext.critical => {
                return unsupported(format!("critical extension {}", ext.oid));
            }
            _ => {}
        }
    }
    Ok(())
}

fn bad_der(e: impl std::fmt::Display) -> X509Error {
    X509Error::BadDer {
        what: "CRL",
        reason: e.to_string(),
    }
}
