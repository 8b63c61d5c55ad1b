//! AWS IoT Device Shadows, classic and named: the documents (pure, [`document`]) and the
//! service that answers the reserved MQTT topics and the HTTPS API over the broker and the
//! store.

pub mod document;
pub mod service;
pub mod topic;

pub use service::{ShadowConfig, ShadowService};
pub use topic::ShadowKey;
