//! Who is calling: AWS Signature Version 4 verification for the HTTP APIs, and X.509 for
//! devices (certificate ids, parsing, CA registration, issuing device certificates, chains).
//! Pure functions over bytes and an injected clock; no sockets, no database.

pub mod sigv4;
pub mod x509;
