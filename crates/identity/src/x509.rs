//! X.509 for devices and CAs.
