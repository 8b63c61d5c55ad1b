//! The server's own identity, generated in the data directory on first start and reused:
//!
//! | file | what |
//! |---|---|
//! | `root-ca.pem` / `root-ca.key` | local root CA: what devices trust (key mode 0600) |
//! | `server.pem` / `server.key` | ECDSA P-256 server certificate signed by the root CA |
//! | `server-cert.json` | the names and expiry `server.pem` was issued for |
//! | `device-ca.pem` / `device-ca.key` | a separate CA that signs device certificates |
//!
//! The server certificate names localhost, 127.0.0.1, ::1, the host name and every endpoint
//! name; it is issued again when those names change, when it nears its expiry, or when it no
//! longer chains to the root CA.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

pub const ROOT_CA_CERT: &str = "root-ca.pem";
pub const ROOT_CA_KEY: &str = "root-ca.key";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server.key";
pub const SERVER_META: &str = "server-cert.json";
pub const DEVICE_CA_CERT: &str = "device-ca.pem";
pub const DEVICE_CA_KEY: &str = "device-ca.key";

const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 86_400);
const SERVER_VALIDITY: Duration = Duration::from_secs(397 * 86_400);
/// A server certificate with less than this left is issued again at start.
const SERVER_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// Backdating of `notBefore`, for clients whose clock is a little behind.
const BACKDATE: Duration = Duration::from_secs(86_400);

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{what} {}: {err}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{} exists but {} is missing; restore it, or remove {} to create a new one", present.display(), missing.display(), present.display())]
    Partial { present: PathBuf, missing: PathBuf },
    #[error("{} is not a usable {what} ({reason}); restore it or remove it to create a new one", path.display())]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot create a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// What the listeners need from the identity.
#[derive(Clone)]
pub struct ServerIdentity {
    pub data_dir: PathBuf,
    pub root_ca_pem: String,
    /// The server certificate (end entity only; clients trust the root CA).
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: Arc<PrivateKeyDer<'static>>,
    /// The names in the server certificate.
    pub server_names: Vec<String>,
    pub device_ca_pem: String,
    /// Whether this start created the root CA (first start in this data directory).
    pub created_root: bool,
    /// Whether this start issued the server certificate.
    pub issued_server_cert: bool,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("ServerIdentity")
            .field("data_dir", &self.data_dir)
            .field("server_names", &self.server_names)
            .field("created_root", &self.created_root)
            .field("issued_server_cert", &self.issued_server_cert)
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    pub fn root_ca_path(&self) -> PathBuf {
        self.data_dir.join(ROOT_CA_CERT)
    }
}

/// Creates `dir` (and parents) with mode 0700 when it does not exist.
pub fn create_data_dir(dir: &Path) -> Result<(), IdentityError> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| IdentityError::Io {
            what: "cannot create data directory",
            path: dir.to_path_buf(),
            err,
        })
}

/// The machine's host name, when it is usable in a certificate.
pub fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .find(|s| !s.is_empty() && crate::config::valid_endpoint_name(s))
}

/// The names the server certificate must hold, in order, without duplicates.
pub fn server_names(endpoint_names: &[String], host: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let candidates = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .chain(host)
        .chain(endpoint_names.iter().map(String::as_str));
    for n in candidates {
        let n = n.to_ascii_lowercase();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// Writes `contents` to `path` atomically (temporary file in the same directory, then rename)
/// with permission bits `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn set_validity(params: &mut CertificateParams, from: SystemTime, lifetime: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since = from.duration_since(UNIX_EPOCH).unwrap_or_default();
    params.not_before = epoch + since.saturating_sub(BACKDATE);
    params.not_after = epoch + since + lifetime;
}

pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, IdentityError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(IdentityError::Io {
            what: "cannot read",
            path: path.to_path_buf(),
            err,
        }),
    }
}

pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), IdentityError> {
    write_atomic(path, contents.as_bytes(), mode).map_err(|err| IdentityError::Io {
        what: "cannot write",
        path: path.to_path_buf(),
        err,
    })
}

fn warn_if_loose(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "private key file is readable by others; chmod 600 it");
        }
    }
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
    created: bool,
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Ferrocore");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, now(), CA_VALIDITY);
    params
}

/// Loads the CA `cert_name` / `key_name` from `dir`, or creates it when neither file exists.
fn load_or_create_ca(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    common_name: &str,
    what: &'static str,
) -> Result<Ca, IdentityError> {
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    let cert = read_opt(&cert_path)?;
    let key = read_opt(&key_path)?;
    match (cert, key) {
        (Some(pem), Some(key_pem)) => {
            warn_if_loose(&key_path);
            let key = KeyPair::from_pem(&key_pem).map_err(|e| IdentityError::Corrupt {
                what: "private key",
                path: key_path.clone(),
                reason: e.to_string(),
            })?;
            let issuer =
                Issuer::from_ca_cert_pem(&pem, key).map_err(|e| IdentityError::Corrupt {
                    what,
                    path: cert_path.clone(),
                    reason: e.to_string(),
                })?;
            Ok(Ca {
                pem,
                issuer,
                created: false,
            })
        }
        (Some(_), None) => Err(IdentityError::Partial {
            present: cert_path,
            missing: key_path,
        }),
        // A key without its certificate was never handed out: start over.
        (None, _) => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let params = ca_params(common_name);
            let cert = params.self_signed(&key)?;
            let pem = cert.pem();
            write_file(&key_path, &key.serialize_pem(), 0o600)?;
            write_file(&cert_path, &pem, 0o644)?;
            Ok(Ca {
                pem,
                issuer: Issuer::new(params, key),
                created: true,
            })
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Eq, Debug)]
struct ServerMeta {
    names: Vec<String>,
    /// Unix seconds.
    not_after: u64,
}

/// Whether `server_pem` chains to `root_pem` and is valid for localhost now.
fn chains_to_root(server_pem: &str, root_pem: &str) -> bool {
    let Ok(root) = CertificateDer::from_pem_slice(root_pem.as_bytes()) else {
        return false;
    };
    let Ok(leaf) = CertificateDer::from_pem_slice(server_pem.as_bytes()) else {
        return false;
    };
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(root).is_err() {
        return false;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let Ok(verifier) =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
    else {
        return false;
    };
    let Ok(name) = ServerName::try_from("localhost") else {
        return false;
    };
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
        .is_ok()
}

/// Loads the identity from `data_dir`, creating what is missing. `endpoint_names` and the
/// `host` name decide the server certificate's names.
pub fn load_or_create(
    data_dir: &Path,
    endpoint_names: &[String],
    host: Option<&str>,
) -> Result<ServerIdentity, IdentityError> {
    create_data_dir(data_dir)?;
    let root = load_or_create_ca(
        data_dir,
        ROOT_CA_CERT,
        ROOT_CA_KEY,
        "Ferrocore Root CA",
        "root CA certificate",
    )?;
    let device = load_or_create_ca(
        data_dir,
        DEVICE_CA_CERT,
        DEVICE_CA_KEY,
        "Ferrocore Device CA",
        "device CA certificate",
    )?;
    let names = server_names(endpoint_names, host);

    let cert_path = data_dir.join(SERVER_CERT);
    let key_path = data_dir.join(SERVER_KEY);
    let meta_path = data_dir.join(SERVER_META);
    let existing = (|| -> Result<Option<(String, String)>, IdentityError> {
        let (Some(cert), Some(key), Some(meta)) = (
            read_opt(&cert_path)?,
            read_opt(&key_path)?,
            read_opt(&meta_path)?,
        ) else {
            return Ok(None);
        };
        let Ok(meta) = serde_json::from_str::<ServerMeta>(&meta) else {
            return Ok(None);
        };
        let fresh = meta.not_after > unix(now() + SERVER_RENEW_BEFORE);
        if meta.names != names || !fresh || !chains_to_root(&cert, &root.pem) {
            return Ok(None);
        }
        Ok(Some((cert, key)))
    })()?;

    let issued = existing.is_none();
    let (cert_pem, key_pem) = match existing {
        Some(pair) => {
            warn_if_loose(&key_path);
            pair
        }
        None => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let mut params = CertificateParams::new(names.clone())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, "Ferrocore");
            let cn = endpoint_names
                .first()
                .map(String::as_str)
                .unwrap_or("localhost");
            dn.push(DnType::CommonName, cn);
            params.distinguished_name = dn;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.use_authority_key_identifier_extension = true;
            let issued_at = now();
            set_validity(&mut params, issued_at, SERVER_VALIDITY);
            let cert = params.signed_by(&key, &root.issuer)?;
            let cert_pem = cert.pem();
            let key_pem = key.serialize_pem();
            let meta = ServerMeta {
                names: names.clone(),
                not_after: unix(issued_at + SERVER_VALIDITY),
            };
            let meta_json = serde_json::to_string_pretty(&meta).unwrap_or_default();
            write_file(&key_path, &key_pem, 0o600)?;
            write_file(&cert_path, &cert_pem, 0o644)?;
            write_file(&meta_path, &meta_json, 0o644)?;
            (cert_pem, key_pem)
        }
    };

    let server_chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdentityError::Corrupt {
            what: "certificate",
            path: cert_path.clone(),
            reason: e.to_string(),
        })?;
    if server_chain.is_empty() {
        return Err(IdentityError::Corrupt {
            what: "certificate",
            path: cert_path,
            reason: "no certificate in it".into(),
        });
    }
    let server_key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        IdentityError::Corrupt {
            what: "private key",
            path: key_path.clone(),
            reason: e.to_string(),
        }
    })?;

    Ok(ServerIdentity {
        data_dir: data_dir.to_path_buf(),
        root_ca_pem: root.pem,
        server_chain,
        server_key: Arc::new(PrivateKeyDer::Pkcs8(server_key)),
        server_names: names,
        device_ca_pem: device.pem,
        created_root: root.created,
        issued_server_cert: issued,
    })
}
