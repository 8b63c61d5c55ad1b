//! Device authentication by X.509 certificate against the registry: the check every TLS
//! handshake runs ([`RegistryState::check_device_certificate`]), the cheaper one MQTT CONNECT
//! and the revocation sweep run by certificate id ([`RegistryState::check_certificate_id`]),
//! and just-in-time registration (JITR, [`auto_register`]).
//!
//! A certificate is accepted when it is registered and ACTIVE, within its validity period,
//! and — when it was registered under a CA (`ca_certificate_id`) — that CA is registered and
//! ACTIVE, the certificate still chains to it ([`x509::verify_chain`]) and the CA's CRL, when
//! one is attached, does not list its serial. Certificates registered without a CA and those
//! Ferrocore issued itself need only be registered, ACTIVE and valid.
//!
//! An unknown certificate that chains to a registered ACTIVE CA with auto-registration
//! enabled (and that its CRL does not list) is refused too, as AWS does, but the check says
//! to register it as PENDING_ACTIVATION ([`DeviceCheck::AutoRegister`]); the caller runs
//! [`auto_register`] through [`super::Registry::write`] and publishes the
//! [`CertificateRegisteredEvent`] it returns.
//!
//! Everything here is pure apart from [`CaCache`], which keeps the parsed forms of CA
//! certificates and CRLs between checks (parsing them costs more than the rest of a check).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{
    CaCertificateRecord, CaStatus, CertificateRecord, CertificateStatus, Change, Ctx,
    RegistryError, RegistryState,
};
use crate::x509::{self, Certificate, Crl, X509Error};

/// The outcome of checking a device certificate presented in a TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCheck {
    /// The device may connect as `certificate_id`.
    Accepted(AcceptedDevice),
    /// The device may not connect.
    Refused(RefusedDevice),
    /// An unknown certificate issued by a registered ACTIVE CA with auto-registration on:
    /// refused, and to be registered as PENDING_ACTIVATION (JITR).
    AutoRegister(AutoRegistration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedDevice {
    pub certificate_id: String,
    pub ca_certificate_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedDevice {
    /// SHA-256 of what was presented (even when it does not parse), for logs.
    pub certificate_id: String,
    pub reason: Refusal,
    /// Set when the certificate is PENDING_ACTIVATION under a CA: AWS announces it on
    /// `$aws/events/certificates/registered/<caCertificateId>` again on every attempt.
    pub pending_activation: Option<PendingActivation>,
}

/// A PENDING_ACTIVATION certificate that tried to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingActivation {
    pub ca_certificate_id: String,
    /// When it was registered, Unix milliseconds.
    pub registered_at_ms: i64,
}

impl PendingActivation {
    /// `record`'s, when it is PENDING_ACTIVATION under a CA.
    fn of(record: &CertificateRecord) -> Option<PendingActivation> {
        match (&record.status, &record.ca_certificate_id) {
            (CertificateStatus::PendingActivation, Some(ca)) => Some(PendingActivation {
                ca_certificate_id: ca.clone(),
                registered_at_ms: record.creation_date_ms,
            }),
            _ => None,
        }
    }
}

/// What [`auto_register`] registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRegistration {
    /// The device certificate, parsed.
    pub certificate: Certificate,
    pub ca_certificate_id: String,
}

/// Why a device certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a certificate: {0}")]
    Malformed(X509Error),
    #[error("the certificate is not registered")]
    NotRegistered,
    #[error("the certificate is {}", .0.as_str())]
    Status(CertificateStatus),
    #[error("the certificate has expired")]
    Expired,
    #[error("the certificate is not valid yet")]
    NotYetValid,
    #[error("the certificate's CA {0} is not registered")]
    CaNotRegistered(String),
    #[error("the certificate's CA {0} is INACTIVE")]
    CaInactive(String),
    #[error("the certificate does not chain to its CA {ca}: {error}")]
    Chain { ca: String, error: X509Error },
    #[error("the CRL of CA {0} lists the certificate")]
    RevokedByCrl(String),
    /// The CA's certificate or CRL as stored cannot be used, so revocation status is
    /// unknown: refused rather than let through.
    #[error("the CA {ca} or its CRL is unusable: {error}")]
    CaUnusable { ca: String, error: X509Error },
}

impl Refusal {
    /// Revoked: status REVOKED, or listed on the CA's CRL.
    pub fn is_revocation(&self) -> bool {
        matches!(
            self,
            Refusal::Status(CertificateStatus::Revoked) | Refusal::RevokedByCrl(_)
        )
    }

    /// Outside the validity period (of the certificate or, through the chain, of its CA).
    pub fn is_expiry(&self) -> bool {
        matches!(
            self,
            Refusal::Expired
                | Refusal::NotYetValid
                | Refusal::Chain {
                    error: X509Error::Expired(_) | X509Error::NotYetValid(_),
                    ..
                }
        )
    }

    /// The presented bytes, or the chain, are bad (rather than a registry decision).
    pub fn is_bad_certificate(&self) -> bool {
        matches!(self, Refusal::Malformed(_) | Refusal::Chain { .. }) && !self.is_expiry()
    }
}

/// A registered CA parsed once: its certificate and its CRL (when one is attached), valid
/// while the record's PEM texts are unchanged.
#[derive(Debug)]
struct ParsedCa {
    pem: String,
    crl_pem: Option<String>,
    certificate: Result<Certificate, X509Error>,
    /// `None`: no CRL attached.
    crl: Option<Result<Crl, X509Error>>,
    /// Ids of device certificates whose chain to this CA verified (signature, key usage),
    /// so that later handshakes check only the validity periods, which change with time.
    chained: parking_lot::Mutex<HashSet<String>>,
}

/// Chain results remembered per CA; beyond this many the memory starts over.
const MAX_CHAINED: usize = 1 << 16;

impl ParsedCa {
    fn parse(record: &CaCertificateRecord, now: i64) -> ParsedCa {
        let certificate = x509::parse_certificate(record.pem.as_bytes());
        let crl = record.crl_pem.as_ref().map(|crl| match &certificate {
            Ok(ca) => x509::parse_crl(crl.as_bytes(), ca, now),
            Err(e) => Err(e.clone()),
        });
        ParsedCa {
            pem: record.pem.clone(),
            crl_pem: record.crl_pem.clone(),
            certificate,
            crl,
            chained: parking_lot::Mutex::new(HashSet::new()),
        }
    }

    /// [`x509::verify_chain`] of the device certificate `der` (whose id is `id`) to this CA
    /// (registered as `ca_id`) at `now`, remembering success.
    fn verify_chain(&self, ca_id: &str, id: &str, der: &[u8], now: i64) -> Result<(), Refusal> {
        let chain = |error| Refusal::Chain {
            ca: ca_id.to_owned(),
            error,
        };
        let ca = self.certificate.as_ref().map_err(|e| Refusal::CaUnusable {
            ca: ca_id.to_owned(),
            error: e.clone(),
        })?;
        if self.chained.lock().contains(id) {
            // What verify_chain checks that changes with time: both validity periods (the
            // device's is the caller's, from the registry record).
            return if now < ca.not_before {
                Err(chain(X509Error::NotYetValid("CA certificate")))
            } else if now > ca.not_after {
                Err(chain(X509Error::Expired("CA certificate")))
            } else {
                Ok(())
            };
        }
        let device = x509::parse_certificate(der).map_err(Refusal::Malformed)?;
        x509::verify_chain(&device, ca, now).map_err(chain)?;
        let mut chained = self.chained.lock();
        if chained.len() >= MAX_CHAINED {
            chained.clear();
        }
        chained.insert(id.to_owned());
        Ok(())
    }

    fn is_current(&self, record: &CaCertificateRecord) -> bool {
        self.pem == record.pem && self.crl_pem == record.crl_pem
    }

    /// Whether the CRL lists `serial`; an unusable CRL is an error (fail closed).
    fn crl_lists(&self, serial: &str) -> Result<bool, X509Error> {
        match &self.crl {
            None => Ok(false),
            Some(Ok(crl)) => Ok(crl.is_revoked(serial)),
            Some(Err(e)) => Err(e.clone()),
        }
    }
}

/// Parsed CA certificates and CRLs, shared by every check. An entry is reused while its CA
/// record's certificate and CRL texts are unchanged and parsed again otherwise, so the cache
/// never needs telling about registry changes; [`CaCache::forget`] only frees memory.
#[derive(Debug, Default)]
pub struct CaCache {
    entries: parking_lot::Mutex<HashMap<String, Arc<ParsedCa>>>,
}

impl CaCache {
    pub fn new() -> CaCache {
        CaCache::default()
    }

    fn get(&self, record: &CaCertificateRecord, now: i64) -> Arc<ParsedCa> {
        if let Some(hit) = self.entries.lock().get(&record.id)
            && hit.is_current(record)
        {
            return hit.clone();
        }
        // Parsed outside the lock: another check may parse the same CA meanwhile, harmlessly.
        let parsed = Arc::new(ParsedCa::parse(record, now));
        self.entries
            .lock()
            .insert(record.id.clone(), parsed.clone());
        parsed
    }

    /// Drops what is kept for CA `id` (deleted from the registry).
    pub fn forget(&self, id: &str) {
        self.entries.lock().remove(id);
    }

    /// CAs held.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RegistryState {
    /// Checks a device certificate presented in a TLS handshake (`der`: the end-entity
    /// certificate) at `now` (Unix seconds). See the module documentation for the rules.
    /// Parses CA certificates and CRLs afresh; [`Self::check_device_certificate_cached`]
    /// reuses them.
    pub fn check_device_certificate(&self, der: &[u8], now: i64) -> DeviceCheck {
        self.check_device_certificate_cached(der, now, &CaCache::new())
    }

    /// [`Self::check_device_certificate`] with CA certificates and CRLs parsed once in `cache`.
    pub fn check_device_certificate_cached(
        &self,
        der: &[u8],
        now: i64,
        cache: &CaCache,
    ) -> DeviceCheck {
        let certificate_id = x509::certificate_id(der);
        let Some(record) = self.certificates.get(&certificate_id) else {
            return self.check_unknown(der, certificate_id, now, cache);
        };
        let ca = match self.check_record(record, now, cache) {
            Ok(ca) => ca,
            Err(reason) => {
                // A PENDING_ACTIVATION record is refused for its status.
                return DeviceCheck::Refused(RefusedDevice {
                    certificate_id,
                    reason,
                    pending_activation: PendingActivation::of(record),
                });
            }
        };
        // Registered under a CA: it must still chain to it (the record's id is the DER's
        // hash, so `der` is the registered certificate).
        if let Some((ca_id, ca)) = ca
            && let Err(reason) = ca.verify_chain(ca_id, &certificate_id, der, now)
        {
            return refused(certificate_id, reason);
        }
        DeviceCheck::Accepted(AcceptedDevice {
            certificate_id,
            ca_certificate_id: record.ca_certificate_id.clone(),
        })
    }

    /// Whether the registered certificate `certificate_id` may be connected at `now`: the
    /// checks of [`Self::check_device_certificate`] that need only the registry (status,
    /// validity, its CA's status and CRL), not the presented bytes. Run at MQTT CONNECT (a
    /// resumed TLS session skips the handshake's check) and by the revocation sweep.
    pub fn check_certificate_id(
        &self,
        certificate_id: &str,
        now: i64,
        cache: &CaCache,
    ) -> Result<(), Refusal> {
        let record = self
            .certificates
            .get(certificate_id)
            .ok_or(Refusal::NotRegistered)?;
        self.check_record(record, now, cache).map(|_| ())
    }

    /// The registry's part of the check; on success, the CA the certificate was registered
    /// under (its id and parsed certificate), if any.
    fn check_record<'a>(
        &self,
        record: &'a CertificateRecord,
        now: i64,
        cache: &CaCache,
    ) -> Result<Option<(&'a str, Arc<ParsedCa>)>, Refusal> {
        if record.status != CertificateStatus::Active {
            return Err(Refusal::Status(record.status));
        }
        if now < record.not_before {
            return Err(Refusal::NotYetValid);
        }
        if now > record.not_after {
            return Err(Refusal::Expired);
        }
        let Some(ca_id) = &record.ca_certificate_id else {
            return Ok(None);
        };
        let ca_record = self
            .ca_certificates
            .get(ca_id)
            .ok_or_else(|| Refusal::CaNotRegistered(ca_id.clone()))?;
        if ca_record.status != CaStatus::Active {
            return Err(Refusal::CaInactive(ca_id.clone()));
        }
        let ca = cache.get(ca_record, now);
        let unusable = |error: &X509Error| Refusal::CaUnusable {
            ca: ca_id.clone(),
            error: error.clone(),
        };
        ca.certificate.as_ref().map_err(unusable)?;
        match ca.crl_lists(&record.serial) {
            Ok(false) => Ok(Some((ca_id.as_str(), ca))),
            Ok(true) => Err(Refusal::RevokedByCrl(ca_id.clone())),
            Err(e) => Err(unusable(&e)),
        }
    }

    /// An unregistered certificate: refused, or to be auto-registered when it chains to an
    /// ACTIVE CA that allows it.
    fn check_unknown(
        &self,
        der: &[u8],
        certificate_id: String,
        now: i64,
        cache: &CaCache,
    ) -> DeviceCheck {
        let device = match x509::parse_certificate(der) {
            Ok(d) => d,
            Err(e) => return refused(certificate_id, Refusal::Malformed(e)),
        };
        // Its issuer among the registered CAs (AWS allows up to 10 with one subject).
        let candidates = self
            .ca_certificates
            .values()
            .filter(|ca| ca.subject == device.issuer && ca.status == CaStatus::Active);
        for ca_record in candidates {
            let ca = cache.get(ca_record, now);
            let Ok(ca_cert) = &ca.certificate else {
                continue;
            };
            if x509::verify_chain(&device, ca_cert, now).is_err() {
                continue;
            }
            if !ca_record.auto_registration {
                return refused(certificate_id, Refusal::NotRegistered);
            }
            return match ca.crl_lists(&device.serial) {
                Ok(false) => DeviceCheck::AutoRegister(AutoRegistration {
                    certificate: device,
                    ca_certificate_id: ca_record.id.clone(),
                }),
                Ok(true) => refused(certificate_id, Refusal::RevokedByCrl(ca_record.id.clone())),
                Err(error) => refused(
                    certificate_id,
                    Refusal::CaUnusable {
                        ca: ca_record.id.clone(),
                        error,
                    },
                ),
            };
        }
        refused(certificate_id, Refusal::NotRegistered)
    }
}

/// A refusal of `certificate_id` for `reason` (not a PENDING_ACTIVATION certificate's).
fn refused(certificate_id: String, reason: Refusal) -> DeviceCheck {
    DeviceCheck::Refused(RefusedDevice {
        certificate_id,
        reason,
        pending_activation: None,
    })
}

/// `$aws/events/certificates/registered/<caCertificateId>`: a certificate was registered
/// by JITR, or a PENDING_ACTIVATION certificate tried to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRegisteredEvent {
    pub certificate_id: String,
    pub ca_certificate_id: String,
    /// Unix milliseconds of the event.
    pub timestamp_ms: i64,
    /// Unix milliseconds of the registration.
    pub registered_at_ms: i64,
    pub account_id: String,
}

impl CertificateRegisteredEvent {
    /// The event for a connection attempt by a PENDING_ACTIVATION certificate.
    pub fn pending(
        certificate_id: &str,
        pending: &PendingActivation,
        account_id: &str,
        now_ms: i64,
    ) -> CertificateRegisteredEvent {
        CertificateRegisteredEvent {
            certificate_id: certificate_id.to_owned(),
            ca_certificate_id: pending.ca_certificate_id.clone(),
            timestamp_ms: now_ms,
            registered_at_ms: pending.registered_at_ms,
            account_id: account_id.to_owned(),
        }
    }

    pub fn topic(&self) -> String {
        format!(
            "$aws/events/certificates/registered/{}",
            self.ca_certificate_id
        )
    }

    /// AWS's payload (timestamps in milliseconds).
    pub fn payload(&self) -> String {
        serde_json::json!({
            "certificateId": self.certificate_id,
            "caCertificateId": self.ca_certificate_id,
            "timestamp": self.timestamp_ms,
            "certificateStatus": CertificateStatus::PendingActivation.as_str(),
            "awsAccountId": self.account_id,
            "certificateRegistrationTimestamp": self.registered_at_ms,
        })
        .to_string()
    }
}

/// JITR as a registry operation: registers `registration`'s certificate as
/// PENDING_ACTIVATION under its CA, checking again that the CA is registered, ACTIVE and
/// allows auto-registration (the registry may have changed since the handshake). Returns the
/// event to publish: a new registration's, or — when the certificate is already
/// PENDING_ACTIVATION (two handshakes raced) — that certificate's; `None` when the
/// certificate meanwhile got another status or the CA no longer allows it.
pub fn auto_register(
    state: &RegistryState,
    ctx: &Ctx,
    registration: &AutoRegistration,
) -> Result<(Option<CertificateRegisteredEvent>, Vec<Change>), RegistryError> {
    let cert = &registration.certificate;
    let ca_id = &registration.ca_certificate_id;
    let event = |record: &CertificateRecord| {
        PendingActivation::of(record).map(|pending| {
            CertificateRegisteredEvent::pending(
                &record.id,
                &pending,
                &ctx.arns.account_id,
                ctx.now_ms,
            )
        })
    };
    if let Some(existing) = state.certificates.get(&cert.id) {
        return Ok((event(existing), Vec::new()));
    }
    let Some(ca) = state
        .ca_certificates
        .get(ca_id)
        .filter(|ca| ca.status == CaStatus::Active && ca.auto_registration)
    else {
        return Ok((None, Vec::new()));
    };
    // Device certificates take their CA's mode.
    let record = CertificateRecord::new(
        ctx,
        cert,
        CertificateStatus::PendingActivation,
        Some(ca_id.clone()),
        ca.mode,
    )?;
    Ok((
        event(&record),
        vec![Change::Certificate {
            id: cert.id.clone(),
            new: Some(record),
        }],
    ))
}

#[cfg(test)]
mod tests;
