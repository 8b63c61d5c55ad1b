//! Who is calling: AWS Signature Version 4 verification for the HTTP APIs, X.509 for devices
//! (certificate ids, parsing, CA registration, issuing device certificates, chains), and the
//! registry of things, groups, certificates and CAs those identities are checked against.
//!
//! `sigv4` and `x509` are pure functions over bytes and an injected clock. `registry` keeps its
//! rules pure too; its live handle persists changes through the store.

pub mod custom_auth;
pub mod registry;
pub mod sigv4;
pub mod x509;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod testing;
