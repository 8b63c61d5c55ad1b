//! Device certificates, CA certificates and thing–principal attachments.

use serde::{Deserialize, Serialize};

/// A device certificate's status (`UpdateCertificate` may set only the first three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    RegisterInactive,
    PendingActivation,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
            Self::PendingTransfer => "PENDING_TRANSFER",
            Self::RegisterInactive => "REGISTER_INACTIVE",
            Self::PendingActivation => "PENDING_ACTIVATION",
        }
    }
}

/// A CA certificate's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaStatus {
    Active,
    Inactive,
}

/// `DEFAULT`: the certificate is unique to this account; `SNI_ONLY`: registered without a CA
/// (or under an SNI-only CA), clients must send SNI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateMode {
    Default,
    SniOnly,
}

/// A registered device certificate. Ferrocore never stores a device's private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    /// Lowercase hex SHA-256 of the DER.
    pub id: String,
    pub pem: String,
    pub status: CertificateStatus,
    /// The registered CA it was registered under (or issued by, for Ferrocore's own CA when
    /// that is registered); `None` for certificates registered without a CA and those
    /// Ferrocore issued itself.
    pub ca_certificate_id: Option<String>,
    pub mode: CertificateMode,
    pub owned_by: String,
    pub creation_date_ms: i64,
    pub last_modified_date_ms: i64,
    /// +1 on every change.
    pub customer_version: i64,
    /// A UUID, new on every change.
    pub generation_id: String,
    /// Validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// As [`crate::x509::Certificate::serial`].
    pub serial: String,
    pub subject: String,
    pub issuer: String,
}

/// A registered CA certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaCertificateRecord {
    pub id: String,
    pub pem: String,
    pub status: CaStatus,
    /// `autoRegistrationStatus` ENABLE: unknown device certificates it signed are registered
    /// as PENDING_ACTIVATION when they first connect (JITR).
    pub auto_registration: bool,
    pub mode: CertificateMode,
    pub owned_by: String,
    pub creation_date_ms: i64,
    pub last_modified_date_ms: i64,
    pub customer_version: i64,
    pub generation_id: String,
    pub not_before: i64,
    pub not_after: i64,
    pub subject: String,
    /// `registrationConfig` as given (`templateBody`, `roleArn`, `templateName`).
    pub registration_config: Option<serde_json::Value>,
    /// The certificate revocation list attached to it (PEM), if any (a Ferrocore extension).
    pub crl_pem: Option<String>,
}
