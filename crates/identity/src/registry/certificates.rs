//! Device certificates, CA certificates and thing–principal attachments, with AWS IoT's
//! rules (`CreateKeysAndCertificate` ... `ListPrincipalThingsV2`).
//!
//! Request and answer types use AWS's JSON member names, so the HTTP layer deserialises bodies
//! straight into them and serialises answers as they are.
//!
//! - Certificates Ferrocore issues (`CreateKeysAndCertificate`, `CreateCertificateFromCsr`)
//!   are signed by the installation's device CA outside the registry lock
//!   ([`issue_keys_and_certificate`], [`issue_from_csr`]) and recorded by
//!   [`record_issued_certificate`]. Private keys are handed to the caller once and never
//!   stored or logged.
//! - Listings by creation date (`ListCertificates`, `ListCertificatesByCA`,
//!   `ListCACertificates`) are newest first unless `isAscendingOrder=true`; their marker names
//!   the last entry returned, so a page is stable while certificates come and go.
//! - **CRLs (a Ferrocore extension; AWS IoT has no API for it).** A registered CA may carry a
//!   certificate revocation list, attached and replaced at run time with
//!   `PUT /cacertificate/{caCertificateId}/crl` (body `{"crlPem": "..."}`), read with `GET`
//!   (`{caCertificateId, crlPem, thisUpdate, nextUpdate, crlNumber, revokedCount}`) and
//!   removed with `DELETE` on the same path ([`put_ca_crl`], [`describe_ca_crl`],
//!   [`delete_ca_crl`]). The CRL must be issued and signed by that CA, and may not be older
//!   than the one it replaces. Device certificates the CRL lists are refused at connect.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::{
    Change, Ctx, Empty, RegistryError, RegistryState, ThingPrincipal, decode_token, encode_token,
    is_name, millis_to_seconds, page_size, uuid_v4,
};
use crate::x509::{self, Certificate, X509Error};

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

impl CertificateRecord {
    /// The record of the device certificate `cert` registered now.
    pub fn new(
        ctx: &Ctx,
        cert: &Certificate,
        status: CertificateStatus,
        ca_certificate_id: Option<String>,
        mode: CertificateMode,
    ) -> Result<CertificateRecord, RegistryError> {
        Ok(CertificateRecord {
            id: cert.id.clone(),
            pem: cert.pem.clone(),
            status,
            ca_certificate_id,
            mode,
            owned_by: ctx.arns.account_id.clone(),
            creation_date_ms: ctx.now_ms,
            last_modified_date_ms: ctx.now_ms,
            customer_version: 1,
            generation_id: uuid_v4()?,
            not_before: cert.not_before,
            not_after: cert.not_after,
            serial: cert.serial.clone(),
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
        })
    }
}

impl CaCertificateRecord {
    /// The record of the CA certificate `ca` registered now, without a CRL.
    pub fn new(
        ctx: &Ctx,
        ca: &Certificate,
        status: CaStatus,
        auto_registration: bool,
        mode: CertificateMode,
        registration_config: Option<serde_json::Value>,
    ) -> Result<CaCertificateRecord, RegistryError> {
        Ok(CaCertificateRecord {
            id: ca.id.clone(),
            pem: ca.pem.clone(),
            status,
            auto_registration,
            mode,
            owned_by: ctx.arns.account_id.clone(),
            creation_date_ms: ctx.now_ms,
            last_modified_date_ms: ctx.now_ms,
            customer_version: 1,
            generation_id: uuid_v4()?,
            not_before: ca.not_before,
            not_after: ca.not_after,
            subject: ca.subject.clone(),
            registration_config,
            crl_pem: None,
        })
    }
}

// ---------------------------------------------------------------------------------------
// limits and shared helpers

/// `pageSize` when a listing does not give one (AWS documents 25 for `ListCertificates`).
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// `maxResults` of the thing–principal listings when none is given (their page is small in
/// practice, so a caller that does not paginate still sees everything).
pub const DEFAULT_PRINCIPALS_PAGE: usize = 250;
/// CA certificates with the same subject an account may register.
pub const MAX_CAS_PER_SUBJECT: usize = 10;

impl CertificateStatus {
    /// Parses a status as AWS spells it.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        Ok(match s {
            "ACTIVE" => Self::Active,
            "INACTIVE" => Self::Inactive,
            "REVOKED" => Self::Revoked,
            "PENDING_TRANSFER" => Self::PendingTransfer,
            "REGISTER_INACTIVE" => Self::RegisterInactive,
            "PENDING_ACTIVATION" => Self::PendingActivation,
            other => {
                return Err(RegistryError::invalid(format!(
                    "Certificate status '{other}' is invalid: it must be one of ACTIVE, \
                     INACTIVE, REVOKED, PENDING_TRANSFER, REGISTER_INACTIVE, PENDING_ACTIVATION."
                )));
            }
        })
    }

    /// A status a caller may set (`UpdateCertificate`, `Register*`): not the two AWS keeps
    /// for itself.
    fn settable(s: &str) -> Result<Self, RegistryError> {
        let status = Self::parse(s)?;
        if matches!(status, Self::PendingTransfer | Self::PendingActivation) {
            return Err(RegistryError::invalid(format!(
                "Certificate status {s} is used internally and cannot be set."
            )));
        }
        Ok(status)
    }
}

impl CaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }

    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "INACTIVE" => Ok(Self::Inactive),
            other => Err(RegistryError::invalid(format!(
                "CA certificate status '{other}' is invalid: it must be ACTIVE or INACTIVE."
            ))),
        }
    }
}

impl CertificateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::SniOnly => "SNI_ONLY",
        }
    }
}

/// `autoRegistrationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AutoRegistrationStatus {
    Enable,
    Disable,
}

impl AutoRegistrationStatus {
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "ENABLE" => Ok(Self::Enable),
            "DISABLE" => Ok(Self::Disable),
            other => Err(RegistryError::invalid(format!(
                "Auto registration status '{other}' is invalid: it must be ENABLE or DISABLE."
            ))),
        }
    }

    pub(crate) fn of(enabled: bool) -> Self {
        if enabled { Self::Enable } else { Self::Disable }
    }
}

/// How a principal is attached to a thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThingPrincipalType {
    /// The principal may be attached to this thing only.
    ExclusiveThing,
    NonExclusiveThing,
}

impl ThingPrincipalType {
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "EXCLUSIVE_THING" => Ok(Self::ExclusiveThing),
            "NON_EXCLUSIVE_THING" => Ok(Self::NonExclusiveThing),
            other => Err(RegistryError::invalid(format!(
                "Thing principal type '{other}' is invalid: it must be EXCLUSIVE_THING or \
                 NON_EXCLUSIVE_THING."
            ))),
        }
    }

    fn of(exclusive: bool) -> Self {
        if exclusive {
            Self::ExclusiveThing
        } else {
            Self::NonExclusiveThing
        }
    }
}

/// A certificate refused for what it is (malformed, expired, not signed by its CA...).
fn invalid_certificate(what: &str, e: &X509Error) -> RegistryError {
    RegistryError::CertificateValidation(format!("The {what} is invalid: {e}."))
}

/// A `certificateId` / `caCertificateId`: 64 hex digits (lowercased here, as AWS prints them).
pub fn validate_certificate_id(id: &str) -> Result<String, RegistryError> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(RegistryError::invalid(format!(
            "Certificate id '{}' is invalid: it must be 64 hexadecimal characters.",
            id.chars().take(80).collect::<String>()
        )))
    }
}

fn now_seconds(ctx: &Ctx) -> i64 {
    ctx.now_ms.div_euclid(1000)
}

fn cert_arn(ctx: &Ctx, id: &str) -> String {
    ctx.arns.arn(&format!("cert/{id}"))
}

pub(crate) fn ca_arn(ctx: &Ctx, id: &str) -> String {
    ctx.arns.arn(&format!("cacert/{id}"))
}

/// `validity` of a description: epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateValidity {
    pub not_before: f64,
    pub not_after: f64,
}

impl CertificateValidity {
    fn of(not_before: i64, not_after: i64) -> Self {
        // Unix seconds of X.509 times fit an f64 exactly.
        CertificateValidity {
            not_before: not_before as f64,
            not_after: not_after as f64,
        }
    }
}

/// The older listings' paging: `pageSize`, `marker`, `isAscendingOrder` (by creation date;
/// newest first unless ascending).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MarkerPage {
    #[serde(rename = "pageSize")]
    pub page_size: Option<usize>,
    pub marker: Option<String>,
    #[serde(rename = "isAscendingOrder", default)]
    pub ascending: bool,
}

/// The newer listings' paging: `nextToken`, `maxResults`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenPage {
    #[serde(rename = "nextToken")]
    pub next_token: Option<String>,
    #[serde(rename = "maxResults")]
    pub max_results: Option<usize>,
}

/// One page of `items` (creation time in ms, id, item) in creation order, after `page.marker`,
/// and the marker of the next page. A marker is the hex of `<ms>/<id>` of the last item given.
pub(super) fn page_by_creation<'a, T>(
    items: impl Iterator<Item = (i64, &'a str, &'a T)>,
    page: &MarkerPage,
) -> Result<(Vec<&'a T>, Option<String>), RegistryError> {
    let limit = page_size(page.page_size, DEFAULT_PAGE_SIZE, "Page size")?;
    let after = match page.marker.as_deref() {
        None | Some("") => None,
        Some(m) => {
            let bad = || RegistryError::invalid("The pagination token is invalid.");
            let key = decode_token(m)?;
            let (ms, id) = key.split_once('/').ok_or_else(bad)?;
            Some((ms.parse::<i64>().map_err(|_| bad())?, id.to_owned()))
        }
    };
    let ascending = page.ascending;
    let beyond = |ms: i64, id: &str| match &after {
        None => true,
        Some((m, i)) if ascending => (ms, id) > (*m, i.as_str()),
        Some((m, i)) => (ms, id) < (*m, i.as_str()),
    };
    let mut rest: Vec<(i64, &str, &T)> = items.filter(|(ms, id, _)| beyond(*ms, id)).collect();
    let order = |a: &(i64, &str, &T), b: &(i64, &str, &T)| {
        let (ka, kb) = ((a.0, a.1), (b.0, b.1));
        if ascending { ka.cmp(&kb) } else { kb.cmp(&ka) }
    };
    let more = rest.len() > limit;
    if more {
        rest.select_nth_unstable_by(limit, order);
        rest.truncate(limit);
    }
    rest.sort_unstable_by(order);
    let next = if more {
        rest.last()
            .map(|(ms, id, _)| encode_token(&format!("{ms}/{id}")))
    } else {
        None
    };
    Ok((rest.into_iter().map(|(_, _, t)| t).collect(), next))
}

impl RegistryState {
    pub fn certificate(&self, id: &str) -> Result<&CertificateRecord, RegistryError> {
        self.certificates.get(id).ok_or_else(|| {
            RegistryError::not_found(format!("The certificate {id} does not exist."))
        })
    }

    pub fn ca_certificate(&self, id: &str) -> Result<&CaCertificateRecord, RegistryError> {
        self.ca_certificates.get(id).ok_or_else(|| {
            RegistryError::not_found(format!("The CA certificate {id} does not exist."))
        })
    }
}

/// Marks a record changed: new `lastModifiedDate`, `customerVersion` + 1, new `generationId`.
fn touched(
    ctx: &Ctx,
    last_modified: &mut i64,
    version: &mut i64,
    generation: &mut String,
) -> Result<(), RegistryError> {
    *last_modified = ctx.now_ms;
    *version = version.saturating_add(1);
    *generation = uuid_v4()?;
    Ok(())
}

/// The change that stores a CA certificate's `record` [`touched`] now.
fn modified_ca(ctx: &Ctx, mut record: CaCertificateRecord) -> Result<Change, RegistryError> {
    touched(
        ctx,
        &mut record.last_modified_date_ms,
        &mut record.customer_version,
        &mut record.generation_id,
    )?;
    Ok(Change::CaCertificate {
        id: record.id.clone(),
        new: Some(record),
    })
}

// ---------------------------------------------------------------------------------------
// device certificates

/// `{certificateArn, certificateId}`: what the `Register*` operations answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRegistered {
    pub certificate_arn: String,
    pub certificate_id: String,
}

/// `CreateCertificateFromCsr`'s answer (and the first three members of
/// `CreateKeysAndCertificate`'s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateCreated {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub certificate_pem: String,
}

/// `CreateKeysAndCertificate`'s answer. The private key is handed out here once and kept
/// nowhere; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeysAndCertificateResponse {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub certificate_pem: String,
    pub key_pair: KeyPair,
}

/// `keyPair`: AWS spells its members in PascalCase.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct KeyPair {
    #[serde(rename = "PublicKey")]
    pub public_key: String,
    #[serde(rename = "PrivateKey")]
    pub private_key: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for CreateKeysAndCertificateResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateKeysAndCertificateResponse")
            .field("certificate_id", &self.certificate_id)
            .field("key_pair", &self.key_pair)
            .finish_non_exhaustive()
    }
}

impl CreateKeysAndCertificateResponse {
    /// Joins the recorded certificate with the keys [`issue_keys_and_certificate`] made.
    pub fn new(created: CertificateCreated, keys: &x509::KeysAndCertificate) -> Self {
        CreateKeysAndCertificateResponse {
            certificate_arn: created.certificate_arn,
            certificate_id: created.certificate_id,
            certificate_pem: created.certificate_pem,
            key_pair: KeyPair {
                public_key: keys.public_key_pem.clone(),
                private_key: keys.private_key_pem.clone(),
            },
        }
    }
}

/// `CreateKeysAndCertificate`'s key generation and signing (RSA-2048: tens of milliseconds of
/// CPU), on a blocking thread so it holds neither the registry nor an async worker. The
/// result is recorded with [`record_issued_certificate`]; its private key must go to the
/// caller and nowhere else.
pub async fn issue_keys_and_certificate(
    ca: std::sync::Arc<x509::CaSigner>,
    now_seconds: i64,
) -> Result<x509::KeysAndCertificate, RegistryError> {
    tokio::task::spawn_blocking(move || {
        x509::create_keys_and_certificate(&ca, x509::Validity::aws_default(now_seconds))
    })
    .await
    .map_err(|e| RegistryError::InternalFailure(format!("certificate issuing failed: {e}")))?
    .map_err(|e| RegistryError::InternalFailure(format!("cannot issue the certificate: {e}")))
}

/// `CreateCertificateFromCsr`'s signing: a malformed CSR or one whose signature does not
/// verify is an `InvalidRequestException` (the only client error AWS models for it).
pub fn issue_from_csr(
    csr: &str,
    ca: &x509::CaSigner,
    now_seconds: i64,
) -> Result<Certificate, RegistryError> {
    x509::issue_from_csr(csr.as_bytes(), ca, x509::Validity::aws_default(now_seconds)).map_err(
        |e| match e {
            X509Error::Sign(_) | X509Error::Random(_) => {
                RegistryError::InternalFailure(format!("cannot issue the certificate: {e}"))
            }
            _ => {
                RegistryError::invalid(format!("The certificate signing request is invalid: {e}."))
            }
        },
    )
}

fn refuse_if_registered(state: &RegistryState, ctx: &Ctx, id: &str) -> Result<(), RegistryError> {
    if state.certificates.contains_key(id) {
        return Err(RegistryError::already_exists(
            "The certificate is already registered.",
            id,
            cert_arn(ctx, id),
        ));
    }
    Ok(())
}

/// The device certificate `pem`, parsed; refused when it is malformed or already registered.
fn parse_unregistered(
    state: &RegistryState,
    ctx: &Ctx,
    pem: &str,
) -> Result<Certificate, RegistryError> {
    let cert = x509::parse_certificate(pem.as_bytes())
        .map_err(|e| invalid_certificate("certificate", &e))?;
    refuse_if_registered(state, ctx, &cert.id)?;
    Ok(cert)
}

/// The change that registers the device certificate `cert`, and what the `Register*`
/// operations answer for it.
fn register(
    ctx: &Ctx,
    cert: &Certificate,
    status: CertificateStatus,
    ca_certificate_id: Option<String>,
    mode: CertificateMode,
) -> Result<(CertificateRegistered, Vec<Change>), RegistryError> {
    let record = CertificateRecord::new(ctx, cert, status, ca_certificate_id, mode)?;
    let answer = CertificateRegistered {
        certificate_arn: cert_arn(ctx, &cert.id),
        certificate_id: cert.id.clone(),
    };
    let change = Change::Certificate {
        id: cert.id.clone(),
        new: Some(record),
    };
    Ok((answer, vec![change]))
}

/// Records a certificate Ferrocore issued itself (`CreateKeysAndCertificate`,
/// `CreateCertificateFromCsr`), signed by `issuer` (the installation's device CA): mode
/// DEFAULT, `caCertificateId` the issuer's id when that CA is registered, else none.
pub fn record_issued_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    cert: &Certificate,
    issuer: &Certificate,
    set_as_active: bool,
) -> Result<(CertificateCreated, Vec<Change>), RegistryError> {
    refuse_if_registered(state, ctx, &cert.id)?;
    let status = if set_as_active {
        CertificateStatus::Active
    } else {
        CertificateStatus::Inactive
    };
    let ca_id = state
        .ca_certificates
        .contains_key(&issuer.id)
        .then(|| issuer.id.clone());
    let (registered, changes) = register(ctx, cert, status, ca_id, CertificateMode::Default)?;
    let answer = CertificateCreated {
        certificate_arn: registered.certificate_arn,
        certificate_id: registered.certificate_id,
        certificate_pem: cert.pem.clone(),
    };
    Ok((answer, changes))
}

/// `RegisterCertificate` (`setAsActive` comes from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCertificateRequest {
    pub certificate_pem: Option<String>,
    pub ca_certificate_pem: Option<String>,
    pub status: Option<String>,
    #[serde(skip)]
    pub set_as_active: bool,
}

/// The status a registered certificate starts with: ACTIVE with the deprecated
/// `setAsActive`, else `status`, else INACTIVE.
fn registration_status(
    set_as_active: bool,
    status: Option<&str>,
) -> Result<CertificateStatus, RegistryError> {
    if set_as_active {
        return Ok(CertificateStatus::Active);
    }
    status.map_or(Ok(CertificateStatus::Inactive), CertificateStatus::settable)
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, RegistryError> {
    match value.as_deref() {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(RegistryError::invalid(format!("{name} is required."))),
    }
}

/// `RegisterCertificate`: a device certificate signed by a registered CA, found by the CA
/// PEM given or else by the certificate's issuer name among the registered CAs whose
/// signature verifies (several verifying: `CertificateConflictException`, as AWS). The
/// certificate must chain to the CA and be valid now; it inherits the CA's mode.
pub fn register_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    req: RegisterCertificateRequest,
) -> Result<(CertificateRegistered, Vec<Change>), RegistryError> {
    let pem = required(&req.certificate_pem, "certificatePem")?;
    let status = registration_status(req.set_as_active, req.status.as_deref())?;
    let cert = parse_unregistered(state, ctx, pem)?;
    let now = now_seconds(ctx);
    let ca = match req.ca_certificate_pem.as_deref() {
        Some(ca_pem) if !ca_pem.trim().is_empty() => {
            let ca = x509::parse_certificate(ca_pem.as_bytes())
                .map_err(|e| invalid_certificate("CA certificate", &e))?;
            let record = state.ca_certificates.get(&ca.id).ok_or_else(|| {
                RegistryError::CertificateValidation(format!(
                    "The CA certificate {} is not registered: register it with \
                     RegisterCACertificate first.",
                    ca.id
                ))
            })?;
            x509::verify_chain(&cert, &ca, now)
                .map_err(|e| invalid_certificate("certificate", &e))?;
            record
        }
        _ => find_issuing_ca(state, &cert, now)?,
    };
    register(ctx, &cert, status, Some(ca.id.clone()), ca.mode)
}

/// The one registered CA named by `cert`'s issuer whose key signed it.
fn find_issuing_ca<'a>(
    state: &'a RegistryState,
    cert: &Certificate,
    now: i64,
) -> Result<&'a CaCertificateRecord, RegistryError> {
    let mut named = 0;
    let mut verified = Vec::new();
    let mut last_error = None;
    for ca in state
        .ca_certificates
        .values()
        .filter(|ca| ca.subject == cert.issuer)
    {
        named += 1;
        let parsed = x509::parse_certificate(ca.pem.as_bytes())
            .map_err(|e| RegistryError::InternalFailure(format!("stored CA {}: {e}", ca.id)))?;
        match x509::verify_chain(cert, &parsed, now) {
            Ok(()) => verified.push(ca),
            Err(e) => last_error = Some(e),
        }
    }
    match (verified.as_slice(), last_error) {
        ([one], _) => Ok(one),
        ([], Some(e)) if named == 1 => Err(invalid_certificate("certificate", &e)),
        ([], _) if named > 0 => Err(RegistryError::CertificateValidation(format!(
            "The certificate does not chain to any of the {named} registered CA certificates \
             named {}.",
            cert.issuer
        ))),
        ([], _) => Err(RegistryError::CertificateValidation(format!(
            "No registered CA certificate has the subject {}: register the CA that signed \
             the certificate with RegisterCACertificate first.",
            cert.issuer
        ))),
        (several, _) => Err(RegistryError::CertificateConflict(format!(
            "{} registered CA certificates have the subject and key that signed this \
             certificate: pass the one that signed it as caCertificatePem.",
            several.len()
        ))),
    }
}

/// `RegisterCertificateWithoutCA`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCertificateWithoutCaRequest {
    pub certificate_pem: Option<String>,
    pub status: Option<String>,
}

/// `RegisterCertificateWithoutCA`: any certificate valid now, registered in SNI_ONLY mode
/// with no CA.
pub fn register_certificate_without_ca(
    state: &RegistryState,
    ctx: &Ctx,
    req: RegisterCertificateWithoutCaRequest,
) -> Result<(CertificateRegistered, Vec<Change>), RegistryError> {
    let pem = required(&req.certificate_pem, "certificatePem")?;
    let status = registration_status(false, req.status.as_deref())?;
    let cert = parse_unregistered(state, ctx, pem)?;
    let now = now_seconds(ctx);
    if now < cert.not_before {
        return Err(invalid_certificate(
            "certificate",
            &X509Error::NotYetValid("certificate"),
        ));
    }
    if now > cert.not_after {
        return Err(invalid_certificate(
            "certificate",
            &X509Error::Expired("certificate"),
        ));
    }
    register(ctx, &cert, status, None, CertificateMode::SniOnly)
}

/// `certificateDescription` of `DescribeCertificate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDescription {
    pub certificate_arn: String,
    pub certificate_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate_id: Option<String>,
    pub status: CertificateStatus,
    pub certificate_pem: String,
    pub owned_by: String,
    pub creation_date: f64,
    pub last_modified_date: f64,
    pub customer_version: i64,
    pub generation_id: String,
    pub validity: CertificateValidity,
    pub certificate_mode: CertificateMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCertificateResponse {
    pub certificate_description: CertificateDescription,
}

/// `DescribeCertificate`.
pub fn describe_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    id: &str,
) -> Result<DescribeCertificateResponse, RegistryError> {
    let id = validate_certificate_id(id)?;
    let c = state.certificate(&id)?;
    Ok(DescribeCertificateResponse {
        certificate_description: CertificateDescription {
            certificate_arn: cert_arn(ctx, &c.id),
            certificate_id: c.id.clone(),
            ca_certificate_id: c.ca_certificate_id.clone(),
            status: c.status,
            certificate_pem: c.pem.clone(),
            owned_by: c.owned_by.clone(),
            creation_date: millis_to_seconds(c.creation_date_ms),
            last_modified_date: millis_to_seconds(c.last_modified_date_ms),
            customer_version: c.customer_version,
            generation_id: c.generation_id.clone(),
            validity: CertificateValidity::of(c.not_before, c.not_after),
            certificate_mode: c.mode,
        },
    })
}

/// One entry of `ListCertificates` / `ListCertificatesByCA`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSummary {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub status: CertificateStatus,
    pub certificate_mode: CertificateMode,
    pub creation_date: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCertificatesResponse {
    pub certificates: Vec<CertificateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

fn list_certificates_where(
    state: &RegistryState,
    ctx: &Ctx,
    page: &MarkerPage,
    keep: impl Fn(&CertificateRecord) -> bool,
) -> Result<ListCertificatesResponse, RegistryError> {
    let items = state
        .certificates
        .values()
        .filter(|c| keep(c))
        .map(|c| (c.creation_date_ms, c.id.as_str(), c));
    let (page, next_marker) = page_by_creation(items, page)?;
    Ok(ListCertificatesResponse {
        certificates: page
            .into_iter()
            .map(|c| CertificateSummary {
                certificate_arn: cert_arn(ctx, &c.id),
                certificate_id: c.id.clone(),
                status: c.status,
                certificate_mode: c.mode,
                creation_date: millis_to_seconds(c.creation_date_ms),
            })
            .collect(),
        next_marker,
    })
}

/// `ListCertificates`: by creation date, newest first unless `isAscendingOrder`.
pub fn list_certificates(
    state: &RegistryState,
    ctx: &Ctx,
    page: &MarkerPage,
) -> Result<ListCertificatesResponse, RegistryError> {
    list_certificates_where(state, ctx, page, |_| true)
}

/// `ListCertificatesByCA`: the certificates registered under one CA (none for an unknown
/// CA, as AWS models no error for it).
pub fn list_certificates_by_ca(
    state: &RegistryState,
    ctx: &Ctx,
    ca_id: &str,
    page: &MarkerPage,
) -> Result<ListCertificatesResponse, RegistryError> {
    let ca_id = validate_certificate_id(ca_id)?;
    list_certificates_where(state, ctx, page, |c| {
        c.ca_certificate_id.as_deref() == Some(ca_id.as_str())
    })
}

/// `UpdateCertificate`: idempotent; PENDING_TRANSFER and PENDING_ACTIVATION cannot be set;
/// a REVOKED certificate stays revoked (AWS: its status can no longer change).
pub fn update_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    id: &str,
    new_status: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let id = validate_certificate_id(id)?;
    let status = CertificateStatus::settable(new_status)?;
    let current = state.certificate(&id)?;
    if current.status == status {
        return Ok((Empty {}, Vec::new()));
    }
    if current.status == CertificateStatus::Revoked {
        return Err(RegistryError::CertificateState(format!(
            "The certificate {id} is REVOKED: a revoked certificate's status cannot change."
        )));
    }
    let mut record = current.clone();
    record.status = status;
    touched(
        ctx,
        &mut record.last_modified_date_ms,
        &mut record.customer_version,
        &mut record.generation_id,
    )?;
    Ok((
        Empty {},
        vec![Change::Certificate {
            id,
            new: Some(record),
        }],
    ))
}

/// `DeleteCertificate`: not while ACTIVE (`CertificateStateException`) nor while attached to
/// a thing (`DeleteConflictException`, even with `forceDelete`); not while policies are
/// attached (`DeleteConflictException`) unless `forceDelete`, which detaches them in the same
/// change.
pub fn delete_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    id: &str,
    force_delete: bool,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let id = validate_certificate_id(id)?;
    let current = state.certificate(&id)?;
    if current.status == CertificateStatus::Active {
        return Err(RegistryError::CertificateState(format!(
            "The certificate {id} is ACTIVE: deactivate it (UpdateCertificate) before \
             deleting it."
        )));
    }
    let arn = cert_arn(ctx, &id);
    if let Some((_, thing)) = state
        .principal_things
        .range((arn.clone(), String::new())..)
        .find(|(p, _)| *p == arn)
    {
        return Err(RegistryError::DeleteConflict(format!(
            "The certificate {id} is attached to thing {thing}: detach it from every thing \
             (DetachThingPrincipal) before deleting it."
        )));
    }
    let mut changes = super::policies::detach_all(state, &arn);
    if !changes.is_empty() && !force_delete {
        let names: Vec<&str> = state.policies_of_target(&arn).map(String::as_str).collect();
        return Err(RegistryError::DeleteConflict(format!(
            "The certificate {id} has policies attached ({}): detach them (DetachPolicy) \
             before deleting it, or delete it with forceDelete.",
            names.join(", ")
        )));
    }
    changes.push(Change::Certificate {
        id: id.clone(),
        new: None,
    });
    Ok((Empty {}, changes))
}

// ---------------------------------------------------------------------------------------
// CA certificates

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetRegistrationCodeResponse {
    pub registration_code: String,
}

/// `GetRegistrationCode`: the account's code, made on first use and the same on every call
/// until `DeleteRegistrationCode`.
pub fn get_registration_code(
    state: &RegistryState,
    _ctx: &Ctx,
) -> Result<(GetRegistrationCodeResponse, Vec<Change>), RegistryError> {
    if let Some(code) = &state.registration_code {
        return Ok((
            GetRegistrationCodeResponse {
                registration_code: code.clone(),
            },
            Vec::new(),
        ));
    }
    let code =
        x509::registration_code().map_err(|e| RegistryError::InternalFailure(e.to_string()))?;
    Ok((
        GetRegistrationCodeResponse {
            registration_code: code.clone(),
        },
        vec![Change::RegistrationCode { new: Some(code) }],
    ))
}

/// `DeleteRegistrationCode`: the next `GetRegistrationCode` makes a new one.
pub fn delete_registration_code(
    state: &RegistryState,
    _ctx: &Ctx,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    if state.registration_code.is_none() {
        return Ok((Empty {}, Vec::new()));
    }
    Ok((Empty {}, vec![Change::RegistrationCode { new: None }]))
}

/// `registrationConfig` (the JITP template of a CA).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
}

impl RegistrationConfig {
    fn validate(&self) -> Result<(), RegistryError> {
        if let Some(name) = &self.template_name
            && !is_name(name, 36, b"_-")
        {
            return Err(RegistryError::invalid(format!(
                "registrationConfig.templateName '{name}' is invalid: it must be 1 to 36 \
                 characters of a-z, A-Z, 0-9, '_' and '-'."
            )));
        }
        if let Some(role) = &self.role_arn
            && !(20..=2048).contains(&role.len())
        {
            return Err(RegistryError::invalid(
                "registrationConfig.roleArn must be 20 to 2048 characters.",
            ));
        }
        if let Some(body) = &self.template_body
            && body.len() > 10_240
        {
            return Err(RegistryError::invalid(
                "registrationConfig.templateBody must be at most 10240 characters.",
            ));
        }
        Ok(())
    }

    fn to_value(&self) -> Result<Option<serde_json::Value>, RegistryError> {
        if *self == RegistrationConfig::default() {
            return Ok(None);
        }
        serde_json::to_value(self)
            .map(Some)
            .map_err(|e| RegistryError::InternalFailure(e.to_string()))
    }

    fn from_value(value: Option<&serde_json::Value>) -> Option<RegistrationConfig> {
        value.and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// `RegisterCACertificate` (`setAsActive` and `allowAutoRegistration` come from the query
/// string). `tags` are accepted and not kept (Ferrocore has no tagging API yet).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCaCertificateRequest {
    pub ca_certificate: Option<String>,
    pub verification_certificate: Option<String>,
    pub registration_config: Option<RegistrationConfig>,
    pub tags: Option<Vec<serde_json::Value>>,
    pub certificate_mode: Option<String>,
    #[serde(skip)]
    pub set_as_active: bool,
    #[serde(skip)]
    pub allow_auto_registration: bool,
}

/// `RegisterCACertificate`. DEFAULT mode (the default) needs a verification certificate
/// signed by the CA whose subject CN is the account's registration code
/// (`RegistrationCodeValidationException` when it names another code or none was made,
/// `CertificateValidationException` when the CA or the verification certificate is not
/// right); SNI_ONLY forbids one. A CA registered twice is `ResourceAlreadyExistsException`;
/// an eleventh CA with the same subject is `LimitExceededException`.
pub fn register_ca_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    req: RegisterCaCertificateRequest,
) -> Result<(CertificateRegistered, Vec<Change>), RegistryError> {
    let ca_pem = required(&req.ca_certificate, "caCertificate")?;
    let mode = match req.certificate_mode.as_deref() {
        None | Some("DEFAULT") => CertificateMode::Default,
        Some("SNI_ONLY") => CertificateMode::SniOnly,
        Some(other) => {
            return Err(RegistryError::invalid(format!(
                "certificateMode '{other}' is invalid: it must be DEFAULT or SNI_ONLY."
            )));
        }
    };
    let config = req.registration_config.unwrap_or_default();
    config.validate()?;
    let verification = req
        .verification_certificate
        .as_deref()
        .filter(|v| !v.trim().is_empty());
    let now = now_seconds(ctx);
    let ca = match (mode, verification) {
        (CertificateMode::SniOnly, Some(_)) => {
            return Err(RegistryError::invalid(
                "verificationCertificate must be empty when certificateMode is SNI_ONLY.",
            ));
        }
        (CertificateMode::SniOnly, None) => x509::check_ca_certificate(ca_pem.as_bytes(), now)
            .map_err(|e| invalid_certificate("CA certificate", &e))?,
        (CertificateMode::Default, None) => {
            return Err(RegistryError::invalid(
                "verificationCertificate is required when certificateMode is DEFAULT: sign \
                 a certificate whose subject CN is the registration code (GetRegistrationCode) \
                 with the CA's key, or register the CA with certificateMode SNI_ONLY.",
            ));
        }
        (CertificateMode::Default, Some(verification)) => {
            let code = state.registration_code.as_deref().ok_or_else(|| {
                RegistryError::RegistrationCodeValidation(
                    "There is no registration code: call GetRegistrationCode and use the \
                     code as the verification certificate's subject CN."
                        .into(),
                )
            })?;
            x509::verify_ca_registration(ca_pem.as_bytes(), verification.as_bytes(), code, now)
                .map_err(|e| match e {
                    X509Error::RegistrationCodeMismatch => {
                        RegistryError::RegistrationCodeValidation(format!(
                            "The registration code is invalid: {e} (GetRegistrationCode)."
                        ))
                    }
                    X509Error::NotSignedByCa
                    | X509Error::Expired("verification certificate")
                    | X509Error::NotYetValid("verification certificate") => {
                        invalid_certificate("verification certificate", &e)
                    }
                    _ => invalid_certificate("CA certificate", &e),
                })?
        }
    };
    if state.ca_certificates.contains_key(&ca.id) {
        return Err(RegistryError::already_exists(
            "The CA certificate is already registered.",
            &ca.id,
            ca_arn(ctx, &ca.id),
        ));
    }
    let same_subject = state
        .ca_certificates
        .values()
        .filter(|c| c.subject == ca.subject)
        .count();
    if same_subject >= MAX_CAS_PER_SUBJECT {
        return Err(RegistryError::LimitExceeded(format!(
            "{same_subject} CA certificates with the subject {} are registered: at most \
             {MAX_CAS_PER_SUBJECT} may share a subject.",
            ca.subject
        )));
    }
    let status = if req.set_as_active {
        CaStatus::Active
    } else {
        CaStatus::Inactive
    };
    let record = CaCertificateRecord::new(
        ctx,
        &ca,
        status,
        req.allow_auto_registration,
        mode,
        config.to_value()?,
    )?;
    let answer = CertificateRegistered {
        certificate_arn: ca_arn(ctx, &ca.id),
        certificate_id: ca.id.clone(),
    };
    Ok((
        answer,
        vec![Change::CaCertificate {
            id: ca.id,
            new: Some(record),
        }],
    ))
}

/// `certificateDescription` of `DescribeCACertificate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaCertificateDescription {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub status: CaStatus,
    pub certificate_pem: String,
    pub owned_by: String,
    pub creation_date: f64,
    pub auto_registration_status: AutoRegistrationStatus,
    pub last_modified_date: f64,
    pub customer_version: i64,
    pub generation_id: String,
    pub validity: CertificateValidity,
    pub certificate_mode: CertificateMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCaCertificateResponse {
    pub certificate_description: CaCertificateDescription,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_config: Option<RegistrationConfig>,
}

/// `DescribeCACertificate`.
pub fn describe_ca_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    id: &str,
) -> Result<DescribeCaCertificateResponse, RegistryError> {
    let id = validate_certificate_id(id)?;
    let c = state.ca_certificate(&id)?;
    Ok(DescribeCaCertificateResponse {
        certificate_description: CaCertificateDescription {
            certificate_arn: ca_arn(ctx, &c.id),
            certificate_id: c.id.clone(),
            status: c.status,
            certificate_pem: c.pem.clone(),
            owned_by: c.owned_by.clone(),
            creation_date: millis_to_seconds(c.creation_date_ms),
            auto_registration_status: AutoRegistrationStatus::of(c.auto_registration),
            last_modified_date: millis_to_seconds(c.last_modified_date_ms),
            customer_version: c.customer_version,
            generation_id: c.generation_id.clone(),
            validity: CertificateValidity::of(c.not_before, c.not_after),
            certificate_mode: c.mode,
        },
        registration_config: RegistrationConfig::from_value(c.registration_config.as_ref()),
    })
}

/// `ListCACertificates`' query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListCaCertificatesQuery {
    #[serde(rename = "pageSize")]
    pub page_size: Option<usize>,
    pub marker: Option<String>,
    #[serde(rename = "isAscendingOrder", default)]
    pub ascending: bool,
    #[serde(rename = "templateName")]
    pub template_name: Option<String>,
}

/// One entry of `ListCACertificates`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaCertificateSummary {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub status: CaStatus,
    pub creation_date: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCaCertificatesResponse {
    pub certificates: Vec<CaCertificateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// `ListCACertificates`: by creation date (newest first unless `isAscendingOrder`),
/// optionally only the CAs whose `registrationConfig` names `templateName`.
pub fn list_ca_certificates(
    state: &RegistryState,
    ctx: &Ctx,
    query: &ListCaCertificatesQuery,
) -> Result<ListCaCertificatesResponse, RegistryError> {
    let template = query.template_name.as_deref();
    let items = state
        .ca_certificates
        .values()
        .filter(|c| {
            template.is_none_or(|t| {
                RegistrationConfig::from_value(c.registration_config.as_ref())
                    .and_then(|r| r.template_name)
                    .as_deref()
                    == Some(t)
            })
        })
        .map(|c| (c.creation_date_ms, c.id.as_str(), c));
    let page = MarkerPage {
        page_size: query.page_size,
        marker: query.marker.clone(),
        ascending: query.ascending,
    };
    let (page, next_marker) = page_by_creation(items, &page)?;
    Ok(ListCaCertificatesResponse {
        certificates: page
            .into_iter()
            .map(|c| CaCertificateSummary {
                certificate_arn: ca_arn(ctx, &c.id),
                certificate_id: c.id.clone(),
                status: c.status,
                creation_date: millis_to_seconds(c.creation_date_ms),
            })
            .collect(),
        next_marker,
    })
}

/// `UpdateCACertificate` (`newStatus`, `newAutoRegistrationStatus` from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCaCertificateRequest {
    #[serde(skip)]
    pub new_status: Option<String>,
    #[serde(skip)]
    pub new_auto_registration_status: Option<String>,
    pub registration_config: Option<RegistrationConfig>,
    #[serde(default)]
    pub remove_auto_registration: bool,
}

/// `UpdateCACertificate`: status ACTIVE/INACTIVE, auto-registration ENABLE/DISABLE, a new
/// `registrationConfig`, or `removeAutoRegistration` (drops the `registrationConfig`; the
/// auto-registration status changes only with `newAutoRegistrationStatus`).
pub fn update_ca_certificate(
    state: &RegistryState,
    ctx: &Ctx,
    id: &str,
    req: UpdateCaCertificateRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let id = validate_certificate_id(id)?;
    let status = req.new_status.as_deref().map(CaStatus::parse).transpose()?;
    let auto = req
        .new_auto_registration_status
        .as_deref()
        .map(AutoRegistrationStatus::parse)
        .transpose()?;
    if req.remove_auto_registration && req.registration_config.is_some() {
        return Err(RegistryError::invalid(
            "registrationConfig and removeAutoRegistration cannot be given together.",
        ));
    }
    let current = state.ca_certificate(&id)?;
    let mut record = current.clone();
    if let Some(status) = status {
        record.status = status;
    }
    if let Some(auto) = auto {
        record.auto_registration = auto == AutoRegistrationStatus::Enable;
    }
    if let Some(config) = &req.registration_config {
        config.validate()?;
        record.registration_config = config.to_value()?;
    }
    if req.remove_auto_registration {
        record.registration_config = None;
    }
    if record == *current {
        return Ok((Empty {}, Vec::new()));
    }
    Ok((Empty {}, vec![modified_ca(ctx, record)?]))
}

/// `DeleteCACertificate`: only an INACTIVE CA (`CertificateStateException` otherwise). The
/// device certificates registered under it stay, keep its id as `caCertificateId`, and cannot
/// connect until the same CA is registered again (AWS models no conflict error here).
pub fn delete_ca_certificate(
    state: &RegistryState,
    _ctx: &Ctx,
    id: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let id = validate_certificate_id(id)?;
    let current = state.ca_certificate(&id)?;
    if current.status == CaStatus::Active {
        return Err(RegistryError::CertificateState(format!(
            "The CA certificate {id} is ACTIVE: deactivate it (UpdateCACertificate \
             --new-status INACTIVE) before deleting it."
        )));
    }
    Ok((
        Empty {},
        vec![Change::CaCertificate {
            id: id.clone(),
            new: None,
        }],
    ))
}

// ---------------------------------------------------------------------------------------
// CRLs attached to CAs (a Ferrocore extension)

/// `PUT /cacertificate/{id}/crl`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutCaCrlRequest {
    pub crl_pem: Option<String>,
}

/// What `GET /cacertificate/{id}/crl` (and the `PUT`) answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaCrlDescription {
    pub ca_certificate_id: String,
    pub crl_pem: String,
    /// Epoch seconds.
    pub this_update: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_update: Option<f64>,
    /// Hex, when the CRL has a cRLNumber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_number: Option<String>,
    pub revoked_count: usize,
}

fn ca_as_certificate(ca: &CaCertificateRecord) -> Result<Certificate, RegistryError> {
    x509::parse_certificate(ca.pem.as_bytes())
        .map_err(|e| RegistryError::InternalFailure(format!("stored CA {}: {e}", ca.id)))
}

fn describe_crl(id: &str, pem: &str, crl: &x509::Crl) -> CaCrlDescription {
    CaCrlDescription {
        ca_certificate_id: id.to_owned(),
        crl_pem: pem.to_owned(),
        this_update: crl.this_update as f64,
        next_update: crl.next_update.map(|t| t as f64),
        crl_number: crl.crl_number.clone(),
        revoked_count: crl.revoked_serials.len(),
    }
}

/// Compares two cRLNumbers given as big-endian hex.
fn crl_number_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Attaches a CRL to a registered CA, or replaces its CRL: it must be issued and signed by
/// that CA (`x509::parse_crl`), and may not be older than the one it replaces (a lower
/// cRLNumber, or an earlier thisUpdate), which would silently un-revoke certificates.
pub fn put_ca_crl(
    state: &RegistryState,
    ctx: &Ctx,
    id: &str,
    req: PutCaCrlRequest,
) -> Result<(CaCrlDescription, Vec<Change>), RegistryError> {
    let id = validate_certificate_id(id)?;
    let pem = required(&req.crl_pem, "crlPem")?;
    let current = state.ca_certificate(&id)?;
    let ca = ca_as_certificate(current)?;
    let now = now_seconds(ctx);
    let crl = x509::parse_crl(pem.as_bytes(), &ca, now)
        .map_err(|e| RegistryError::CertificateValidation(format!("The CRL is invalid: {e}.")))?;
    if let Some(old_pem) = &current.crl_pem
        // (The attached CRL was accepted then; the time only bounds its thisUpdate.)
        && let Ok(old) = x509::parse_crl(old_pem.as_bytes(), &ca, i64::MAX)
    {
        let older = match (&crl.crl_number, &old.crl_number) {
            (Some(new), Some(old)) => crl_number_cmp(new, old).is_lt(),
            _ => crl.this_update < old.this_update,
        };
        if older {
            return Err(RegistryError::invalid(
                "The CRL is older than the one attached to the CA (lower cRLNumber or earlier \
                 thisUpdate): delete the attached CRL first to go back to an older one.",
            ));
        }
    }
    let mut record = current.clone();
    record.crl_pem = Some(pem.to_owned());
    Ok((
        describe_crl(&id, pem, &crl),
        vec![modified_ca(ctx, record)?],
    ))
}

/// The CRL attached to a CA (`ResourceNotFoundException` when it has none).
pub fn describe_ca_crl(
    state: &RegistryState,
    _ctx: &Ctx,
    id: &str,
) -> Result<CaCrlDescription, RegistryError> {
    let id = validate_certificate_id(id)?;
    let current = state.ca_certificate(&id)?;
    let pem = current.crl_pem.as_deref().ok_or_else(|| {
        RegistryError::not_found(format!("The CA certificate {id} has no CRL attached."))
    })?;
    let ca = ca_as_certificate(current)?;
    // Accepted when attached; `now` only bounds thisUpdate, which must not refuse it later.
    let crl = x509::parse_crl(pem.as_bytes(), &ca, i64::MAX)
        .map_err(|e| RegistryError::InternalFailure(format!("stored CRL of {id}: {e}")))?;
    Ok(describe_crl(&id, pem, &crl))
}

/// Removes the CRL attached to a CA (nothing to do when it has none).
pub fn delete_ca_crl(
    state: &RegistryState,
    ctx: &Ctx,
    id: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let id = validate_certificate_id(id)?;
    let current = state.ca_certificate(&id)?;
    if current.crl_pem.is_none() {
        return Ok((Empty {}, Vec::new()));
    }
    let mut record = current.clone();
    record.crl_pem = None;
    Ok((Empty {}, vec![modified_ca(ctx, record)?]))
}

// ---------------------------------------------------------------------------------------
// thing principals

/// Checks a principal given to `AttachThingPrincipal`: Ferrocore's principals are
/// certificates, so it must be the ARN of a certificate registered in this account and region
/// (`ResourceNotFoundException` for an unknown one).
fn check_principal(state: &RegistryState, ctx: &Ctx, principal: &str) -> Result<(), RegistryError> {
    let invalid = || {
        RegistryError::invalid(format!(
            "Principal '{}' is invalid: it must be a certificate ARN \
             ({}).",
            principal.chars().take(200).collect::<String>(),
            cert_arn(ctx, "<certificateId>")
        ))
    };
    let id = ctx
        .arns
        .resource(principal)
        .and_then(|r| r.strip_prefix("cert/"))
        .ok_or_else(invalid)?;
    if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid());
    }
    state.certificate(id).map(|_| ())
}

fn required_principal(principal: Option<&str>) -> Result<&str, RegistryError> {
    match principal.map(str::trim) {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(RegistryError::invalid(
            "The principal (header x-amzn-principal) is required.",
        )),
    }
}

/// `AttachThingPrincipal`. An EXCLUSIVE_THING attachment is refused while the principal is
/// attached to another thing, and any attachment of a principal that is exclusively attached
/// to another thing is refused (`InvalidRequestException`, the only client error AWS models
/// for it). Attaching again is a no-op, or changes the attachment's type.
pub fn attach_thing_principal(
    state: &RegistryState,
    ctx: &Ctx,
    thing: &str,
    principal: Option<&str>,
    principal_type: Option<&str>,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let principal = required_principal(principal)?;
    let kind = principal_type
        .map(ThingPrincipalType::parse)
        .transpose()?
        .unwrap_or(ThingPrincipalType::NonExclusiveThing);
    let exclusive = kind == ThingPrincipalType::ExclusiveThing;
    state.thing(thing)?;
    check_principal(state, ctx, principal)?;
    let key = (thing.to_owned(), principal.to_owned());
    if let Some(existing) = state.thing_principals.get(&key)
        && existing.exclusive == exclusive
    {
        return Ok((Empty {}, Vec::new()));
    }
    for other in things_of(state, principal).filter(|t| *t != thing) {
        let other_exclusive = state
            .thing_principals
            .get(&(other.to_owned(), principal.to_owned()))
            .is_some_and(|p| p.exclusive);
        if exclusive || other_exclusive {
            return Err(RegistryError::invalid(format!(
                "The principal is {} attached to thing {other}: {}",
                if other_exclusive {
                    "exclusively"
                } else {
                    "already"
                },
                if other_exclusive {
                    "detach it from that thing first."
                } else {
                    "an exclusive attachment needs a principal attached to no other thing."
                }
            )));
        }
    }
    let new = ThingPrincipal {
        thing: thing.to_owned(),
        principal: principal.to_owned(),
        exclusive,
    };
    Ok((
        Empty {},
        vec![Change::ThingPrincipal {
            thing: key.0,
            principal: key.1,
            new: Some(new),
        }],
    ))
}

/// The things `principal` is attached to, in name order.
fn things_of<'a>(state: &'a RegistryState, principal: &'a str) -> impl Iterator<Item = &'a str> {
    state
        .principal_things
        .range((principal.to_owned(), String::new())..)
        .take_while(move |(p, _)| p == principal)
        .map(|(_, t)| t.as_str())
}

/// `DetachThingPrincipal`: the thing must exist; detaching a principal that is not attached
/// does nothing.
pub fn detach_thing_principal(
    state: &RegistryState,
    _ctx: &Ctx,
    thing: &str,
    principal: Option<&str>,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let principal = required_principal(principal)?;
    state.thing(thing)?;
    let key = (thing.to_owned(), principal.to_owned());
    if !state.thing_principals.contains_key(&key) {
        return Ok((Empty {}, Vec::new()));
    }
    Ok((
        Empty {},
        vec![Change::ThingPrincipal {
            thing: key.0,
            principal: key.1,
            new: None,
        }],
    ))
}

/// Where a page of the (`first`, second) pairs starts: after the pair a token names, else
/// at the first pair of `first`.
fn pairs_start(first: &str, token: Option<&str>) -> Result<Bound<(String, String)>, RegistryError> {
    Ok(match token {
        None | Some("") => Bound::Included((first.to_owned(), String::new())),
        Some(t) => Bound::Excluded((first.to_owned(), decode_token(t)?)),
    })
}

/// The attachments of `thing` (by principal), one page.
pub fn thing_principals_page<'a>(
    state: &'a RegistryState,
    thing: &str,
    page: &TokenPage,
    filter: Option<ThingPrincipalType>,
) -> Result<(Vec<&'a ThingPrincipal>, Option<String>), RegistryError> {
    state.thing(thing)?;
    let limit = page_size(page.max_results, DEFAULT_PRINCIPALS_PAGE, "Page size")?;
    let start = pairs_start(thing, page.next_token.as_deref())?;
    let items = state
        .thing_principals
        .range((start, Bound::Unbounded))
        .take_while(|((t, _), _)| t == thing)
        .filter(|(_, p)| filter.is_none_or(|f| f == ThingPrincipalType::of(p.exclusive)))
        .map(|((_, principal), p)| (principal, p));
    Ok(super::page(items, limit))
}

/// The attachments of `principal` (by thing), one page.
pub fn principal_things_page<'a>(
    state: &'a RegistryState,
    ctx: &Ctx,
    principal: Option<&str>,
    page: &TokenPage,
    filter: Option<ThingPrincipalType>,
) -> Result<(Vec<&'a ThingPrincipal>, Option<String>), RegistryError> {
    let principal = required_principal(principal)?;
    let attached = things_of(state, principal).next().is_some();
    if !attached {
        // Unknown certificates are not found; a malformed principal is invalid.
        check_principal(state, ctx, principal)?;
    }
    let limit = page_size(page.max_results, DEFAULT_PRINCIPALS_PAGE, "Page size")?;
    let start = pairs_start(principal, page.next_token.as_deref())?;
    let items = state
        .principal_things
        .range((start, Bound::Unbounded))
        .take_while(|(p, _)| p == principal)
        .filter_map(|(p, t)| {
            let tp = state.thing_principals.get(&(t.clone(), p.clone()))?;
            Some((t, tp))
        })
        .filter(|(_, tp)| filter.is_none_or(|f| f == ThingPrincipalType::of(tp.exclusive)));
    Ok(super::page(items, limit))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingPrincipalsResponse {
    pub principals: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ListThingPrincipals`.
pub fn list_thing_principals(
    state: &RegistryState,
    _ctx: &Ctx,
    thing: &str,
    page: &TokenPage,
) -> Result<ListThingPrincipalsResponse, RegistryError> {
    let (items, next_token) = thing_principals_page(state, thing, page, None)?;
    Ok(ListThingPrincipalsResponse {
        principals: items.into_iter().map(|p| p.principal.clone()).collect(),
        next_token,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingPrincipalObject {
    pub principal: String,
    pub thing_principal_type: ThingPrincipalType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingPrincipalsV2Response {
    pub thing_principal_objects: Vec<ThingPrincipalObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ListThingPrincipalsV2` (optionally only one `thingPrincipalType`).
pub fn list_thing_principals_v2(
    state: &RegistryState,
    _ctx: &Ctx,
    thing: &str,
    page: &TokenPage,
    principal_type: Option<&str>,
) -> Result<ListThingPrincipalsV2Response, RegistryError> {
    let filter = principal_type.map(ThingPrincipalType::parse).transpose()?;
    let (items, next_token) = thing_principals_page(state, thing, page, filter)?;
    Ok(ListThingPrincipalsV2Response {
        thing_principal_objects: items
            .into_iter()
            .map(|p| ThingPrincipalObject {
                principal: p.principal.clone(),
                thing_principal_type: ThingPrincipalType::of(p.exclusive),
            })
            .collect(),
        next_token,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPrincipalThingsResponse {
    pub things: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ListPrincipalThings`.
pub fn list_principal_things(
    state: &RegistryState,
    ctx: &Ctx,
    principal: Option<&str>,
    page: &TokenPage,
) -> Result<ListPrincipalThingsResponse, RegistryError> {
    let (items, next_token) = principal_things_page(state, ctx, principal, page, None)?;
    Ok(ListPrincipalThingsResponse {
        things: items.into_iter().map(|p| p.thing.clone()).collect(),
        next_token,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalThingObject {
    pub thing_name: String,
    pub thing_principal_type: ThingPrincipalType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPrincipalThingsV2Response {
    pub principal_thing_objects: Vec<PrincipalThingObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ListPrincipalThingsV2` (optionally only one `thingPrincipalType`).
pub fn list_principal_things_v2(
    state: &RegistryState,
    ctx: &Ctx,
    principal: Option<&str>,
    page: &TokenPage,
    principal_type: Option<&str>,
) -> Result<ListPrincipalThingsV2Response, RegistryError> {
    let filter = principal_type.map(ThingPrincipalType::parse).transpose()?;
    let (items, next_token) = principal_things_page(state, ctx, principal, page, filter)?;
    Ok(ListPrincipalThingsV2Response {
        principal_thing_objects: items
            .into_iter()
            .map(|p| PrincipalThingObject {
                thing_name: p.thing.clone(),
                thing_principal_type: ThingPrincipalType::of(p.exclusive),
            })
            .collect(),
        next_token,
    })
}

#[cfg(test)]
mod tests;
