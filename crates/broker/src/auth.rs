//! Who a connection is and what it may do. Identity (certificates, authorizers) and IoT
//! policies plug in here; until they land, only listeners declared anonymous admit clients.

/// The authenticated identity of a connection, established at CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A client of an anonymous listener: everything is allowed.
    Anonymous,
    /// No identity (a session restored from the store before its client reconnects):
    /// nothing is allowed beyond queueing for it.
    Nobody,
}

impl Principal {
    pub fn may_publish(&self, _topic: &str) -> bool {
        matches!(self, Principal::Anonymous)
    }

    pub fn may_subscribe(&self, _filter: &str) -> bool {
        matches!(self, Principal::Anonymous)
    }

    /// Checked on every delivery. A restored session keeps receiving until its client
    /// reconnects with an identity that is checked again.
    pub fn may_receive(&self, _topic: &str) -> bool {
        true
    }
}
