//! Who a connection is and what it may do. Identity (certificates now; authorizers later)
//! plugs in through [`Authentication`]; IoT policies will decide per action. Until the policy
//! engine lands, an authenticated device may do everything.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::session::Kick;

/// The authenticated identity of a connection, established at CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A client of an anonymous listener: everything is allowed.
    Anonymous,
    /// A device that presented a registered, ACTIVE X.509 certificate (its AWS certificate
    /// id). Everything is allowed until IoT policies are enforced.
    Certificate(Arc<str>),
    /// No identity (a session restored from the store before its client reconnects):
    /// nothing is allowed beyond queueing for it.
    Nobody,
}

impl Principal {
    pub fn may_publish(&self, _topic: &str) -> bool {
        matches!(self, Principal::Anonymous | Principal::Certificate(_))
    }

    pub fn may_subscribe(&self, _filter: &str) -> bool {
        matches!(self, Principal::Anonymous | Principal::Certificate(_))
    }

    /// Checked on every delivery. A restored session keeps receiving until its client
    /// reconnects with an identity that is checked again.
    pub fn may_receive(&self, _topic: &str) -> bool {
        true
    }
}

/// Whether a device certificate may be connected, asked at every MQTT CONNECT that comes with
/// one. The TLS handshake checked the certificate already, but a resumed TLS session skips
/// that check, and the status may have changed since.
pub trait CertificateCheck: Send + Sync + 'static {
    /// `certificate_id`: AWS's id of the certificate (lowercase hex SHA-256 of its DER), as
    /// [`crate::TlsInfo::peer_certificate_id`] carries it.
    fn is_active(&self, certificate_id: &str) -> bool;
}

/// How the broker authenticates clients beyond anonymous listeners.
#[derive(Clone, Default)]
pub struct Authentication {
    /// Device certificates: a client that presented one over MQTT-over-TLS connects as that
    /// certificate if this says it is active. Without it, certificates are not accepted and
    /// only anonymous listeners admit clients.
    pub certificates: Option<Arc<dyn CertificateCheck>>,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authentication")
            .field("certificates", &self.certificates.is_some())
            .finish()
    }
}

/// Open connections by the certificate they authenticated with, so that a revoked or
/// deactivated certificate's connections are closed at once.
#[derive(Default)]
pub(crate) struct CertificateIndex {
    by_id: Mutex<HashMap<Arc<str>, Vec<IndexEntry>>>,
}

/// A connection (its id) and the way to close it.
type IndexEntry = (u64, Arc<Kick>);

impl CertificateIndex {
    pub fn insert(&self, id: &Arc<str>, conn_id: u64, kick: &Arc<Kick>) {
        self.by_id
            .lock()
            .entry(id.clone())
            .or_default()
            .push((conn_id, kick.clone()));
    }

    pub fn remove(&self, id: &str, conn_id: u64) {
        let mut by_id = self.by_id.lock();
        if let Some(conns) = by_id.get_mut(id) {
            conns.retain(|(c, _)| *c != conn_id);
            if conns.is_empty() {
                by_id.remove(id);
            }
        }
    }

    /// Fires the kick of every connection of `id` with `reason`; returns how many.
    pub fn kick(&self, id: &str, reason: u8) -> usize {
        let kicks: Vec<Arc<Kick>> = self
            .by_id
            .lock()
            .get(id)
            .map(|conns| conns.iter().map(|(_, k)| k.clone()).collect())
            .unwrap_or_default();
        for k in &kicks {
            k.fire(reason);
        }
        kicks.len()
    }

    pub fn ids(&self) -> Vec<String> {
        self.by_id.lock().keys().map(|k| k.to_string()).collect()
    }

    pub fn connections(&self, id: &str) -> usize {
        self.by_id.lock().get(id).map_or(0, Vec::len)
    }
}

/// A connection's entry in the [`CertificateIndex`], removed when dropped.
pub(crate) struct IndexedCertificate {
    pub index: Arc<CertificateIndex>,
    pub id: Arc<str>,
    pub conn_id: u64,
}

impl Drop for IndexedCertificate {
    fn drop(&mut self) {
        self.index.remove(&self.id, self.conn_id);
    }
}
