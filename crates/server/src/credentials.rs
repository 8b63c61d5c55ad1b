//! The admin credentials of the AWS-compatible APIs, and the two files that point the AWS CLI
//! and boto3 at this server: `<data-dir>/credentials` (AWS shared-credentials format, mode
//! 0600) and `<data-dir>/aws-config` (region, endpoint URL, CA bundle). With
//! `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` set to them, `aws iot ...` needs nothing
//! else.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::identity::{IdentityError, read_opt, write_file};

pub const CREDENTIALS_FILE: &str = "credentials";
pub const AWS_CONFIG_FILE: &str = "aws-config";

/// An access key of the SigV4 APIs. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    pub access_key_id: String,
    secret_access_key: String,
}

impl AdminCredentials {
    pub fn new(access_key_id: String, secret_access_key: String) -> AdminCredentials {
        AdminCredentials {
            access_key_id,
            secret_access_key,
        }
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// A fresh key shaped like AWS's: `AKIA` and 16 upper-case letters or digits, and a
    /// 40-character secret.
    fn generate() -> AdminCredentials {
        const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET_ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut rng = rand::rng();
        let mut pick = |alphabet: &[u8], n: usize| -> String {
            (0..n)
                .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
                .collect()
        };
        let access_key_id = format!("AKIA{}", pick(KEY_ALPHABET, 16));
        let secret_access_key = pick(SECRET_ALPHABET, 40);
        AdminCredentials {
            access_key_id,
            secret_access_key,
        }
    }
}

impl fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The admin credentials: `fixed` ones from the settings when given, else those in
/// `<data-dir>/credentials`, else a new key generated now. Whatever is used is (re)written to
/// the credentials file, mode 0600. Returns whether a key was generated.
pub fn load_or_create(
    data_dir: &Path,
    fixed: Option<&(String, String)>,
) -> Result<(AdminCredentials, bool), IdentityError> {
    let path = data_dir.join(CREDENTIALS_FILE);
    let (credentials, generated) = match fixed {
        Some((key, secret)) => (AdminCredentials::new(key.clone(), secret.clone()), false),
        None => match read_opt(&path)? {
            Some(text) => (parse(&text).ok_or_else(|| corrupt(&path))?, false),
            None => (AdminCredentials::generate(), true),
        },
    };
    let text = format!(
        "# Admin credentials of this Ferrocore server (AWS shared-credentials format).\n\
         [default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        credentials.access_key_id, credentials.secret_access_key
    );
    if read_opt(&path)?.as_deref() != Some(text.as_str()) {
        write_file(&path, &text, 0o600)?;
    }
    Ok((credentials, generated))
}

fn corrupt(path: &Path) -> IdentityError {
    IdentityError::Corrupt {
        what: "credentials file",
        path: path.to_path_buf(),
        reason: "no [default] aws_access_key_id and aws_secret_access_key".into(),
    }
}

/// The `[default]` profile's key and secret of a shared-credentials file.
fn parse(text: &str) -> Option<AdminCredentials> {
    let mut in_default = false;
    let (mut key, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
        } else if in_default && let Some((name, value)) = line.split_once('=') {
            match name.trim() {
                "aws_access_key_id" => key = Some(value.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    match (key, secret) {
        (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => Some(AdminCredentials::new(k, s)),
        _ => None,
    }
}

/// Writes `<data-dir>/aws-config`: the region, the endpoint URL of the HTTPS listener (when
/// there is one) and the root CA devices and clients trust.
pub fn write_aws_config(
    data_dir: &Path,
    region: &str,
    endpoint_url: Option<&str>,
    ca_bundle: &Path,
) -> Result<PathBuf, IdentityError> {
    let path = data_dir.join(AWS_CONFIG_FILE);
    // The AWS CLI resolves a relative ca_bundle against its working directory, not this file's.
    let ca_bundle = std::path::absolute(ca_bundle).unwrap_or_else(|_| ca_bundle.to_path_buf());
    let mut text = format!(
        "# Points the AWS CLI and boto3 at this Ferrocore server (AWS_CONFIG_FILE).\n\
         [default]\nregion = {region}\nca_bundle = {}\n",
        ca_bundle.display()
    );
    if let Some(url) = endpoint_url {
        text.push_str(&format!("endpoint_url = {url}\n"));
    }
    write_file(&path, &text, 0o644)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_then_reused_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (first, generated) = load_or_create(dir.path(), None).unwrap();
        assert!(generated);
        assert!(first.access_key_id.starts_with("AKIA") && first.access_key_id.len() == 20);
        assert_eq!(first.secret_access_key().len(), 40);
        let meta = std::fs::metadata(dir.path().join(CREDENTIALS_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let (again, generated) = load_or_create(dir.path(), None).unwrap();
        assert!(!generated);
        assert_eq!(again, first);
    }

    #[test]
    fn fixed_credentials_win_and_are_written() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), None).unwrap();
        let fixed = (
            "AKIAFIXEDFIXED0001".to_string(),
            "fixed-secret-fixed-secret".to_string(),
        );
        let (used, _) = load_or_create(dir.path(), Some(&fixed)).unwrap();
        assert_eq!(used.access_key_id, fixed.0);
        let text = std::fs::read_to_string(dir.path().join(CREDENTIALS_FILE)).unwrap();
        assert!(text.contains("aws_access_key_id = AKIAFIXEDFIXED0001"));
    }

    #[test]
    fn unreadable_file_is_a_clear_error_and_debug_hides_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CREDENTIALS_FILE), "[other]\nx = y\n").unwrap();
        let e = load_or_create(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("credentials file"), "{e}");
        let c = AdminCredentials::new("AKIAXXXXXXXXXXXXXXXX".into(), "s3cr3t-s3cr3t-s3cr3t".into());
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn aws_config_names_region_endpoint_and_ca() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_aws_config(
            dir.path(),
            "eu-west-1",
            Some("https://localhost:8443"),
            Path::new("/d/root-ca.pem"),
        )
        .unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("region = eu-west-1"));
        assert!(text.contains("endpoint_url = https://localhost:8443"));
        assert!(text.contains("ca_bundle = /d/root-ca.pem"));
    }

    #[test]
    fn a_relative_ca_bundle_is_written_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            write_aws_config(dir.path(), "us-east-1", None, Path::new("data/root-ca.pem")).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let expected = format!("ca_bundle = {}", cwd.join("data/root-ca.pem").display());
        assert!(text.contains(&expected), "{text}");
    }
}
