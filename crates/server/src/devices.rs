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
//! - [`DeviceAuth`], the broker's [`CertificateAuthorizer`] at MQTT CONNECT: the certificate
//!   must still pass the registry's check (a resumed TLS session skips the verifier, and the
//!   status may have changed since the handshake), and the IoT policies in force for it are
//!   AWS's applicable set ([`RegistryState::connection_policies`]: the certificate's policies
//!   and those of its thing's groups and their ancestors), compiled once per policy version.
//!   A certificate without policies may do nothing, `iot:Connect` included (least privilege,
//!   as on AWS).
//! - [`watch_registry`], the registry listener that (a) closes the open connections of every
//!   certificate a committed change made fail the check (revoked, deactivated, deleted, its CA
//!   deactivated or deleted, listed by a new CRL), and (b) re-authorizes every open connection
//!   whose policies a change may alter — a policy's versions or default version, a policy
//!   attachment, a thing's attributes or type, a group membership or group (deleted, moved),
//!   a thing-principal attachment — found through the broker's index of open connections by
//!   certificate, thing, group and policy ([`Broker::connections_depending_on`]); a connection
//!   no longer allowed `iot:Connect` is closed (MQTT 5: DISCONNECT 0x87). It runs after the
//!   change is applied and the broker indexes a connection before resolving its grant at
//!   CONNECT, so no connection slips between the two. No polling.

use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocore_broker::ferrocore_policy::CertificateContext;
use ferrocore_broker::{Broker, CertificateAuthorizer, Dependency, Grant, Reauthorized};
use ferrocore_identity::registry::{
    CaCache, CertificateRegisteredEvent, Change, ConnectionAuthorization, DependencyKey,
    DeviceCheck, Refusal, Registry, RegistryState, auto_register, certificate_context,
    thing_context,
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

impl CertificateAuthorizer for DeviceAuth {
    fn authorize(&self, certificate_id: &str, client_id: &str) -> Option<Grant> {
        let now = unix_seconds();
        let resolved = self.registry.read(|s| {
            self.check_id(s, certificate_id, now)
                .map(|()| s.connection_policies(certificate_id, client_id))
        });
        let resolved = match resolved {
            Ok(r) => r,
            Err(reason) => {
                info!(certificate_id, %reason, "device certificate refused");
                return None;
            }
        };
        // The certificate variables come from certificate_context, once per connection.
        match ConnectionAuthorization::compile(self.registry.policy_cache(), resolved, None) {
            Ok(a) => Some(grant(a)),
            Err(e) => {
                warn!(certificate_id, error = %e, "cannot compile the certificate's policies; refusing it");
                None
            }
        }
    }

    fn certificate_context(&self, certificate_id: &str, _der: &[u8]) -> CertificateContext {
        // The registered certificate is the presented one (the id is the SHA-256 of its DER).
        match self
            .registry
            .read(|s| s.certificates.get(certificate_id).map(|c| c.pem.clone()))
        {
            Some(pem) => certificate_context(certificate_id, &pem),
            None => CertificateContext {
                id: Some(certificate_id.to_owned()),
                ..CertificateContext::default()
            },
        }
    }
}

/// The broker's grant of a resolved and compiled authorization.
fn grant(a: ConnectionAuthorization) -> Grant {
    let depends_on = a.depends_on.keys().into_iter().map(dependency).collect();
    Grant {
        policies: a.set,
        thing: a.thing.as_ref().map(thing_context),
        depends_on,
    }
}

fn dependency(key: DependencyKey) -> Dependency {
    match key {
        DependencyKey::Certificate(id) => Dependency::Certificate(id),
        DependencyKey::Thing(t) => Dependency::Thing(t),
        DependencyKey::ThingGroup(g) => Dependency::ThingGroup(g),
        DependencyKey::Policy(p) => Dependency::Policy(p),
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
/// ([`Broker::disconnect_certificate`]); after every batch that may change the policies of
/// open connections, those connections are re-authorized ([`reauthorize`]). Holds both
/// weakly.
pub fn watch_registry(auth: &Arc<DeviceAuth>, broker: &Arc<Broker>) {
    let weak_auth = Arc::downgrade(auth);
    let weak_broker = Arc::downgrade(broker);
    auth.registry.subscribe(Arc::new(move |changes: &[Change]| {
        let (Some(auth), Some(broker)) = (weak_auth.upgrade(), weak_broker.upgrade()) else {
            return;
        };
        sweep(&auth, &broker, changes);
        reauthorize(&auth, &broker, changes);
    }));
}

/// What [`reauthorize`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reauthorizations {
    /// Connections whose new policies are in force.
    pub updated: usize,
    /// Connections closed: `iot:Connect` no longer allowed, or the certificate refused.
    pub disconnected: usize,
}

/// Puts the policies `changes` may have changed in force on the open connections they
/// concern: those whose authorization depends on a certificate, thing, thing group or policy
/// the changes touch ([`Change::dependency_keys`]). Each is resolved again from the registry
/// (which already has the changes) and swapped in; a connection that may no longer connect is
/// closed. Runs in the registry's listener, so changes apply in commit order.
pub fn reauthorize(auth: &DeviceAuth, broker: &Broker, changes: &[Change]) -> Reauthorizations {
    let arns = auth.registry.arns();
    let mut keys: Vec<Dependency> = changes
        .iter()
        .flat_map(|c| c.dependency_keys(arns))
        .map(dependency)
        .collect();
    let mut done = Reauthorizations::default();
    if keys.is_empty() {
        return done;
    }
    keys.sort();
    keys.dedup();
    for conn in broker.connections_depending_on(&keys) {
        let Some(certificate_id) = conn.certificate_id() else {
            continue;
        };
        let grant = auth.authorize(certificate_id, conn.client_id());
        match broker.reauthorize(&conn, grant) {
            Reauthorized::Updated => done.updated += 1,
            Reauthorized::Disconnected => done.disconnected += 1,
        }
    }
    if done != Reauthorizations::default() {
        info!(
            updated = done.updated,
            disconnected = done.disconnected,
            "applied a registry change to the policies of open connections"
        );
    }
    done
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
