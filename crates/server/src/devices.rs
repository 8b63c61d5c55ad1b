//! Device authentication by X.509 certificate, wired to the live registry:
//!
//! - [`DeviceVerifier`], the client-certificate check of every TLS listener: a
//!   presented certificate must pass [`RegistryState::check_device_certificate_cached`]
//!   (registered and ACTIVE, its CA ACTIVE, the chain, the CA's CRL), else the handshake fails
//!   with an alert that says why (certificate_revoked, certificate_expired, bad_certificate or
//!   certificate_unknown). No certificate is fine: anonymous listeners, and later custom
//!   authentication, need none. It also runs JITR: an unknown certificate issued by an
//!   auto-registering CA is refused, registered as PENDING_ACTIVATION and announced on
//!   `$aws/events/certificates/registered/<caCertificateId>`.
//! - [`DeviceAuth`], the broker's [`CertificateCheck`] at MQTT CONNECT (a resumed TLS session
//!   skips the verifier, and the status may have changed since the handshake).
//! - [`watch_registry`], the registry listener that closes the open connections of every
//!   certificate a committed change made fail the check (revoked, deactivated, deleted, its CA
//!   deactivated or deleted, listed by a new CRL). It runs after the change is applied and the
//!   broker indexes a connection before checking it at CONNECT, so no connection slips
//!   between the two. No polling.

use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocore_broker::{Broker, CertificateCheck};
use ferrocore_identity::registry::{
    CaCache, CertificateRegisteredEvent, Change, DeviceCheck, Refusal, Registry, RegistryState,
    auto_register,
};
use rustls::CertificateError;
use rustls_pki_types::{CertificateDer, UnixTime};
use tracing::{debug, info, warn};

use crate::tls::ClientCertCheck;

/// The registry and the parsed CAs shared by the handshake and CONNECT checks.
pub struct DeviceAuth {
    registry: Arc<Registry>,
    cache: CaCache,
}

impl DeviceAuth {
    pub fn new(registry: Arc<Registry>) -> Arc<DeviceAuth> {
        Arc::new(DeviceAuth {
            registry,
            cache: CaCache::new(),
        })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn check(&self, der: &[u8], now: i64) -> DeviceCheck {
        self.registry
            .read(|s| s.check_device_certificate_cached(der, now, &self.cache))
    }

    fn check_id(&self, state: &RegistryState, id: &str, now: i64) -> Result<(), Refusal> {
        state.check_certificate_id(id, now, &self.cache)
    }
}

impl CertificateCheck for DeviceAuth {
    fn is_active(&self, certificate_id: &str) -> bool {
        let now = unix_seconds();
        match self
            .registry
            .read(|s| self.check_id(s, certificate_id, now))
        {
            Ok(()) => true,
            Err(reason) => {
                info!(certificate_id, %reason, "device certificate refused at CONNECT");
                false
            }
        }
    }
}

/// The client-certificate check of every TLS listener (see the module documentation).
pub struct DeviceVerifier {
    auth: Arc<DeviceAuth>,
    /// Where JITR events go; weak, so that the broker's lifetime stays its own.
    broker: Weak<Broker>,
}

impl DeviceVerifier {
    pub fn new(auth: Arc<DeviceAuth>, broker: &Arc<Broker>) -> DeviceVerifier {
        DeviceVerifier {
            auth,
            broker: Arc::downgrade(broker),
        }
    }

    /// JITR: registers the certificate as PENDING_ACTIVATION in the background (verifiers
    /// are synchronous; registry writes wait for the store) and announces it.
    fn auto_register(&self, registration: ferrocore_identity::registry::AutoRegistration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(
                certificate_id = %registration.certificate.id,
                "cannot auto-register a certificate outside the async runtime"
            );
            return;
        };
        let registry = self.auth.registry.clone();
        let broker = self.broker.clone();
        runtime.spawn(async move {
            let id = registration.certificate.id.clone();
            match registry
                .write(|s, ctx| auto_register(s, ctx, &registration))
                .await
            {
                Ok(Some(event)) => {
                    info!(
                        certificate_id = %id,
                        ca_certificate_id = %event.ca_certificate_id,
                        "registered a device certificate as PENDING_ACTIVATION (JITR)"
                    );
                    publish(&broker, &event);
                }
                Ok(None) => {
                    debug!(certificate_id = %id, "JITR: nothing to register any more");
                }
                Err(e) => {
                    warn!(certificate_id = %id, error = %e, "JITR: registering the certificate failed");
                }
            }
        });
    }
}

fn publish(broker: &Weak<Broker>, event: &CertificateRegisteredEvent) {
    if let Some(broker) = broker.upgrade() {
        broker.publish_event(&event.topic(), event.payload());
    }
}

/// The TLS alert for a refusal.
fn alert(reason: &Refusal) -> rustls::Error {
    let error = if reason.is_revocation() {
        CertificateError::Revoked
    } else if reason.is_expiry() {
        CertificateError::Expired
    } else if reason.is_bad_certificate() {
        CertificateError::BadEncoding
    } else {
        // certificate_unknown: unregistered, not ACTIVE, CA not ACTIVE or unusable.
        CertificateError::Other(rustls::OtherError(Arc::new(reason.clone())))
    };
    rustls::Error::InvalidCertificate(error)
}

impl ClientCertCheck for DeviceVerifier {
    fn check(&self, end_entity: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        match self.auth.check(end_entity, now_secs) {
            DeviceCheck::Accepted(a) => {
                debug!(certificate_id = %a.certificate_id, "device certificate accepted");
                Ok(())
            }
            DeviceCheck::Refused(r) => {
                info!(certificate_id = %r.certificate_id, reason = %r.reason, "device certificate refused in the TLS handshake");
                if let Some(pending) = &r.pending_activation {
                    publish(
                        &self.broker,
                        &CertificateRegisteredEvent::pending(
                            &r.certificate_id,
                            pending,
                            &self.auth.registry.arns().account_id,
                            unix_millis(),
                        ),
                    );
                }
                Err(alert(&r.reason))
            }
            DeviceCheck::AutoRegister(registration) => {
                info!(
                    certificate_id = %registration.certificate.id,
                    ca_certificate_id = %registration.ca_certificate_id,
                    "unknown device certificate of an auto-registering CA: refused, registering it as PENDING_ACTIVATION"
                );
                self.auto_register(registration);
                Err(alert(&Refusal::NotRegistered))
            }
        }
    }
}

/// Subscribes to `auth`'s registry: after every committed batch that touches certificates or
/// CAs, the open connections of each certificate that no longer passes the check are closed
/// ([`Broker::disconnect_certificate`]). Holds both weakly.
pub fn watch_registry(auth: &Arc<DeviceAuth>, broker: &Arc<Broker>) {
    let weak_auth = Arc::downgrade(auth);
    let weak_broker = Arc::downgrade(broker);
    auth.registry.subscribe(Arc::new(move |changes: &[Change]| {
        let (Some(auth), Some(broker)) = (weak_auth.upgrade(), weak_broker.upgrade()) else {
            return;
        };
        sweep(&auth, &broker, changes);
    }));
}

/// Closes the connections `changes` made unauthorized; returns the certificates closed.
fn sweep(auth: &DeviceAuth, broker: &Broker, changes: &[Change]) -> Vec<String> {
    let mut certificates: Vec<&str> = Vec::new();
    let mut cas: Vec<&str> = Vec::new();
    for change in changes {
        match change {
            Change::Certificate { id, .. } => certificates.push(id),
            Change::CaCertificate { id, new } => {
                if new.is_none() {
                    auth.cache.forget(id);
                }
                cas.push(id);
            }
            _ => {}
        }
    }
    if certificates.is_empty() && cas.is_empty() {
        return Vec::new();
    }
    // Read after the state has the changes: a CONNECT that indexes its certificate later
    // checks the new state itself.
    let connected: Vec<String> = if cas.is_empty() {
        certificates
            .iter()
            .filter(|id| broker.certificate_connections(id) > 0)
            .map(|id| (*id).to_owned())
            .collect()
    } else {
        broker.connected_certificates()
    };
    if connected.is_empty() {
        return Vec::new();
    }
    let now = unix_seconds();
    let failing: Vec<(String, Refusal)> = auth.registry.read(|s| {
        connected
            .into_iter()
            .filter(|id| {
                certificates.contains(&id.as_str())
                    || s.certificates
                        .get(id)
                        .and_then(|r| r.ca_certificate_id.as_deref())
                        .is_some_and(|ca| cas.contains(&ca))
            })
            .filter_map(|id| auth.check_id(s, &id, now).err().map(|r| (id, r)))
            .collect()
    });
    for (id, reason) in &failing {
        info!(certificate_id = %id, %reason, "certificate no longer authorized; closing its connections");
        broker.disconnect_certificate(id);
    }
    failing.into_iter().map(|(id, _)| id).collect()
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn unix_seconds() -> i64 {
    unix_millis() / 1000
}
