//! Where an admin command finds the server and its admin key.
//!
//! In order: the flags (`--endpoint-url`, `--ca-bundle`, `--region`); then the
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` environment variables for the key; then the
//! files the server writes into its data directory: `credentials` (`[default]`
//! `aws_access_key_id`, `aws_secret_access_key`) and `aws-config` (`[default]` `region`,
//! `endpoint_url`, `ca_bundle`). A file is only read when a setting is still missing.
//!
//! The data directory itself is `--data-dir` / `FERROCORE_DATA_DIR`, else `data_dir` in the
//! server's `--config` / `FERROCORE_CONFIG` TOML file, else `./ferrocore-data`, as for `serve`.
//!
//! Other `AWS_*` variables (`AWS_REGION`, `AWS_CA_BUNDLE`, `AWS_ENDPOINT_URL`) are ignored on
//! purpose: they usually point at real AWS, and an admin command aimed at the wrong server by a
//! stray variable is worse than one that needs a flag.

use std::fmt;
use std::path::{Path, PathBuf};

use ferrocore_server::credentials::{AWS_CONFIG_FILE, CREDENTIALS_FILE};
use ferrocore_server::identity::ROOT_CA_CERT;

/// The region when neither `--region` nor `aws-config` names one (the server's default).
pub const DEFAULT_REGION: &str = "us-east-1";

/// The connection flags every admin command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnFlags {
    /// Data directory of the server (the one `ferrocore serve` uses): its `credentials` and
    /// `aws-config` files say where the server is and how to sign in.
    /// [default: ./ferrocore-data]
    #[arg(
        long,
        env = "FERROCORE_DATA_DIR",
        value_name = "DIR",
        global = true,
        help_heading = "Connection"
    )]
    pub data_dir: Option<PathBuf>,
    /// The server's TOML configuration file: only its `data_dir` is read, when --data-dir
    /// is not given (and, by `policy explain --policy`, its `region` and `account_id`).
    #[arg(
        long,
        env = "FERROCORE_CONFIG",
        value_name = "FILE",
        global = true,
        help_heading = "Connection"
    )]
    pub config: Option<PathBuf>,
    /// HTTPS URL of the server's control plane, e.g. https://gateway.example:8443
    /// [default: endpoint_url in <data-dir>/aws-config]
    #[arg(long, value_name = "URL", global = true, help_heading = "Connection")]
    pub endpoint_url: Option<String>,
    /// PEM file of the CA that signed the server's certificate
    /// [default: ca_bundle in <data-dir>/aws-config]
    #[arg(long, value_name = "FILE", global = true, help_heading = "Connection")]
    pub ca_bundle: Option<PathBuf>,
    /// Region of the server's SigV4 credential scope [default: region in <data-dir>/aws-config,
    /// else us-east-1]
    #[arg(
        long,
        value_name = "REGION",
        global = true,
        help_heading = "Connection"
    )]
    pub region: Option<String>,
}

/// The environment variables that matter (read once, so tests can pass their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Env {
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
        }
    }
}

/// Where the access key came from (said in authentication errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    CredentialsFile,
}

/// An access key. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    secret: String,
    pub source: KeySource,
}

impl AccessKey {
    pub fn new(id: String, secret: String, source: KeySource) -> AccessKey {
        AccessKey { id, secret, source }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// An `https://host[:port]` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    /// As given, without a trailing `/`.
    pub url: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written in the URL: the `Host` header, and what is signed.
    pub authority: String,
}

impl EndpointUrl {
    pub fn parse(url: &str) -> Result<EndpointUrl, String> {
        let trimmed = url.trim().trim_end_matches('/');
        let Some(rest) = trimmed.strip_prefix("https://") else {
            return Err(if trimmed.starts_with("http://") {
                format!(
                    "endpoint URL \"{url}\" is plain HTTP; the control plane is only served over HTTPS (https://...)"
                )
            } else {
                format!("endpoint URL \"{url}\" must look like https://HOST[:PORT]")
            });
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "endpoint URL \"{url}\" must look like https://HOST[:PORT] (no path)"
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(format!("endpoint URL \"{url}\": unclosed [ in the host"));
            };
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("endpoint URL \"{url}\": \"{p}\" is not a port"))?,
        };
        if host.is_empty() {
            return Err(format!("endpoint URL \"{url}\" has no host"));
        }
        Ok(EndpointUrl {
            url: trimmed.to_owned(),
            host: host.to_owned(),
            port,
            authority: rest.to_owned(),
        })
    }
}

/// Everything a command needs to reach the server.
#[derive(Debug, Clone)]
pub struct Connection {
    pub endpoint: EndpointUrl,
    pub ca_bundle: PathBuf,
    pub region: String,
    pub key: AccessKey,
    pub data_dir: PathBuf,
}

impl ConnFlags {
    /// `--data-dir` (or `FERROCORE_DATA_DIR`), else `data_dir` in the `--config` file (or
    /// `FERROCORE_CONFIG`), else `./ferrocore-data`: the precedence `serve` uses.
    pub fn data_dir(&self) -> Result<PathBuf, String> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if let Some(path) = &self.config {
            let file = ferrocore_server::config::FileConfig::load(path).map_err(|e| e.0)?;
            if let Some(dir) = file.data_dir {
                return Ok(dir);
            }
        }
        Ok(PathBuf::from(ferrocore_server::config::DEFAULT_DATA_DIR))
    }
}

/// Resolves the connection settings: flags, then the environment, then the data directory's
/// files. Errors say what to do.
pub fn resolve(flags: &ConnFlags, env: &Env) -> Result<Connection, String> {
    let data_dir = flags.data_dir()?;
    let config_path = data_dir.join(AWS_CONFIG_FILE);
    // Read at most once, and only when a flag leaves something open.
    let mut aws_config: Option<Option<Ini>> = None;
    let mut load_config = || -> Result<Option<Ini>, String> {
        if aws_config.is_none() {
            aws_config = Some(read_ini(&config_path)?);
        }
        Ok(aws_config.clone().flatten())
    };
    let start_hint = |what: &str| {
        format!(
            "{what}; start the server first (`ferrocore serve --data-dir {}`), or pass --data-dir \
             with the server's data directory, or --endpoint-url",
            data_dir.display()
        )
    };

    // The endpoint.
    let endpoint = match &flags.endpoint_url {
        Some(url) => EndpointUrl::parse(url).map_err(|e| format!("--endpoint-url: {e}"))?,
        None => {
            let Some(ini) = load_config()? else {
                return Err(start_hint(&format!("no {} found", config_path.display())));
            };
            let Some(url) = ini.get("endpoint_url") else {
                return Err(format!(
                    "{} has no endpoint_url: the server has no HTTPS listener (enable one with \
                     --listen-https), or pass --endpoint-url",
                    config_path.display()
                ));
            };
            EndpointUrl::parse(url).map_err(|e| format!("{}: {e}", config_path.display()))?
        }
    };

    // The CA bundle.
    let ca_bundle = match &flags.ca_bundle {
        Some(path) => {
            if !path.is_file() {
                return Err(format!(
                    "--ca-bundle {}: no such file (a PEM file of the CA that signed the server's certificate)",
                    path.display()
                ));
            }
            path.clone()
        }
        None => {
            let from_config =
                load_config()?.and_then(|ini| ini.get("ca_bundle").map(PathBuf::from));
            // A relative ca_bundle was written relative to the server's working directory,
            // which may not be ours: fall back to the root CA in the data directory.
            let fallback = data_dir.join(ROOT_CA_CERT);
            match from_config {
                Some(p) if p.is_file() => p,
                Some(p) if p.is_relative() && fallback.is_file() => fallback,
                Some(p) => {
                    return Err(format!(
                        "the CA bundle {} named in {} does not exist; pass --ca-bundle",
                        p.display(),
                        config_path.display()
                    ));
                }
                None if fallback.is_file() => fallback,
                None => {
                    return Err(format!(
                        "no CA bundle: pass --ca-bundle with the PEM file of the CA that signed \
                         the server's certificate ({} has none)",
                        data_dir.display()
                    ));
                }
            }
        }
    };

    // The region.
    let region = match &flags.region {
        Some(r) if r.trim().is_empty() => return Err("--region is empty".to_owned()),
        Some(r) => r.trim().to_owned(),
        None => load_config()?
            .and_then(|ini| ini.get("region").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
    };

    // The access key.
    let key = match (&env.access_key_id, &env.secret_access_key) {
        (Some(id), Some(secret)) => {
            AccessKey::new(id.clone(), secret.clone(), KeySource::Environment)
        }
        (Some(_), None) => {
            return Err(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or unset \
                 it to use the credentials file in the data directory"
                    .to_owned(),
            );
        }
        (None, Some(_)) => {
            return Err(
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both, or unset \
                 it to use the credentials file in the data directory"
                    .to_owned(),
            );
        }
        (None, None) => {
            let path = data_dir.join(CREDENTIALS_FILE);
            let Some(ini) = read_ini(&path)? else {
                return Err(start_hint(&format!(
                    "no admin credentials: {} does not exist (or set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY)",
                    path.display()
                )));
            };
            match (
                ini.get("aws_access_key_id"),
                ini.get("aws_secret_access_key"),
            ) {
                (Some(id), Some(secret)) => {
                    AccessKey::new(id.to_owned(), secret.to_owned(), KeySource::CredentialsFile)
                }
                _ => {
                    return Err(format!(
                        "{} has no [default] aws_access_key_id and aws_secret_access_key",
                        path.display()
                    ));
                }
            }
        }
    };

    Ok(Connection {
        endpoint,
        ca_bundle,
        region,
        key,
        data_dir,
    })
}

/// The `[default]` section of an AWS-style INI file (`aws-config` may also say `[profile
/// default]`).
#[derive(Debug, Clone, Default)]
struct Ini(Vec<(String, String)>);

impl Ini {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn parse(text: &str) -> Ini {
        let mut in_default = false;
        let mut entries = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(section) = line.strip_prefix('[') {
                let section = section.trim_end_matches(']').trim();
                in_default = section == "default" || section == "profile default";
            } else if in_default && let Some((name, value)) = line.split_once('=') {
                entries.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Ini(entries)
    }
}

/// Reads an INI file; `None` when it does not exist.
fn read_ini(path: &Path) -> Result<Option<Ini>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(Ini::parse(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
            "cannot read {}: permission denied (run as the user that runs the server)",
            path.display()
        )),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data_dir(creds: bool, config: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if creds {
            std::fs::write(
                dir.path().join(CREDENTIALS_FILE),
                "# Admin credentials\n[default]\naws_access_key_id = AKIAFILEFILEFILE0001\n\
                 aws_secret_access_key = file-secret-file-secret\n",
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join(ROOT_CA_CERT),
            "-----BEGIN CERTIFICATE-----\n",
        )
        .unwrap();
        if let Some(c) = config {
            let text = c.replace("{dir}", &dir.path().display().to_string());
            std::fs::write(dir.path().join(AWS_CONFIG_FILE), text).unwrap();
        }
        dir
    }

    const CONFIG: &str = "[default]\nregion = eu-west-1\nca_bundle = {dir}/root-ca.pem\n\
                          endpoint_url = https://localhost:8443\n";

    fn flags(dir: &Path) -> ConnFlags {
        ConnFlags {
            data_dir: Some(dir.to_path_buf()),
            ..ConnFlags::default()
        }
    }

    #[test]
    fn files_alone_are_enough() {
        let dir = data_dir(true, Some(CONFIG));
        let c = resolve(&flags(dir.path()), &Env::default()).unwrap();
        assert_eq!(c.endpoint.url, "https://localhost:8443");
        assert_eq!(c.endpoint.host, "localhost");
        assert_eq!(c.endpoint.port, 8443);
        assert_eq!(c.endpoint.authority, "localhost:8443");
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.ca_bundle, dir.path().join(ROOT_CA_CERT));
        assert_eq!(c.key.id, "AKIAFILEFILEFILE0001");
        assert_eq!(c.key.secret(), "file-secret-file-secret");
        assert_eq!(c.key.source, KeySource::CredentialsFile);
    }

    #[test]
    fn flags_beat_environment_beats_files() {
        let dir = data_dir(true, Some(CONFIG));
        let other_ca = dir.path().join("other-ca.pem");
        std::fs::write(&other_ca, "x").unwrap();
        let f = ConnFlags {
            endpoint_url: Some("https://gw.example:9443/".into()),
            ca_bundle: Some(other_ca.clone()),
            region: Some("ap-south-1".into()),
            ..flags(dir.path())
        };
        let env = Env {
            access_key_id: Some("AKIAENVENVENVENV0001".into()),
            secret_access_key: Some("env-secret".into()),
        };
        let c = resolve(&f, &env).unwrap();
        assert_eq!(c.endpoint.url, "https://gw.example:9443");
        assert_eq!(c.endpoint.authority, "gw.example:9443");
        assert_eq!(c.ca_bundle, other_ca);
        assert_eq!(c.region, "ap-south-1");
        assert_eq!(c.key.id, "AKIAENVENVENVENV0001");
        assert_eq!(c.key.source, KeySource::Environment);
    }

    #[test]
    fn flags_and_environment_need_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let f = ConnFlags {
            data_dir: Some(dir.path().join("absent")),
            endpoint_url: Some("https://[::1]:8443".into()),
            ca_bundle: Some(ca),
            ..ConnFlags::default()
        };
        let env = Env {
            access_key_id: Some("AKIA".into()),
            secret_access_key: Some("s".into()),
        };
        let c = resolve(&f, &env).unwrap();
        assert_eq!(c.endpoint.host, "::1");
        assert_eq!(c.endpoint.authority, "[::1]:8443");
        assert_eq!(c.region, DEFAULT_REGION);
    }

    #[test]
    fn missing_files_say_to_start_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(&flags(dir.path()), &Env::default()).unwrap_err();
        assert!(e.contains("aws-config"), "{e}");
        assert!(e.contains("start the server first"), "{e}");
        assert!(e.contains("--endpoint-url"), "{e}");

        // Endpoint known, credentials file missing.
        let dir = data_dir(false, Some(CONFIG));
        let e = resolve(&flags(dir.path()), &Env::default()).unwrap_err();
        assert!(e.contains("no admin credentials"), "{e}");
        assert!(e.contains("start the server first"), "{e}");
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
    }

    #[test]
    fn data_dir_from_the_servers_config_file_unless_given() {
        let dir = data_dir(true, Some(CONFIG));
        let toml = dir.path().join("ferrocore.toml");
        std::fs::write(
            &toml,
            format!(
                "data_dir = \"{}\"\nmax_connections = 10\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let f = ConnFlags {
            config: Some(toml.clone()),
            ..ConnFlags::default()
        };
        let c = resolve(&f, &Env::default()).unwrap();
        assert_eq!(c.data_dir, dir.path());
        assert_eq!(c.key.id, "AKIAFILEFILEFILE0001");
        // --data-dir wins.
        let f = ConnFlags {
            config: Some(toml.clone()),
            data_dir: Some("elsewhere".into()),
            ..ConnFlags::default()
        };
        assert_eq!(f.data_dir().unwrap(), PathBuf::from("elsewhere"));
        // No data_dir in the file: the default.
        std::fs::write(&toml, "max_connections = 10\n").unwrap();
        let f = ConnFlags {
            config: Some(toml.clone()),
            ..ConnFlags::default()
        };
        assert_eq!(f.data_dir().unwrap(), PathBuf::from("./ferrocore-data"));
        // A broken file is the server's own error message.
        std::fs::write(&toml, "data_dir = [\n").unwrap();
        let e = resolve(&f, &Env::default()).unwrap_err();
        assert!(e.contains("ferrocore.toml"), "{e}");
    }

    #[test]
    fn half_an_environment_key_is_an_error() {
        let dir = data_dir(true, Some(CONFIG));
        let env = Env {
            access_key_id: Some("AKIA".into()),
            secret_access_key: None,
        };
        let e = resolve(&flags(dir.path()), &env).unwrap_err();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY is not"), "{e}");
    }

    #[test]
    fn config_without_https_listener_or_with_bad_url() {
        let dir = data_dir(true, Some("[default]\nregion = us-east-1\n"));
        let e = resolve(&flags(dir.path()), &Env::default()).unwrap_err();
        assert!(e.contains("no endpoint_url"), "{e}");
        assert!(e.contains("--listen-https"), "{e}");

        let f = ConnFlags {
            endpoint_url: Some("http://localhost:8443".into()),
            ..flags(dir.path())
        };
        let e = resolve(&f, &Env::default()).unwrap_err();
        assert!(e.contains("plain HTTP"), "{e}");
        for bad in [
            "https://",
            "https://h:0",
            "https://h:x",
            "https://h/path",
            "localhost",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(EndpointUrl::parse("https://h").unwrap().port, 443);
    }

    #[test]
    fn ca_bundle_fallbacks() {
        // No ca_bundle in aws-config: the data directory's root CA.
        let dir = data_dir(
            true,
            Some("[default]\nendpoint_url = https://localhost:1\n"),
        );
        let c = resolve(&flags(dir.path()), &Env::default()).unwrap();
        assert_eq!(c.ca_bundle, dir.path().join(ROOT_CA_CERT));
        // A relative one that does not resolve from here: the same.
        let dir = data_dir(
            true,
            Some(
                "[default]\nendpoint_url = https://localhost:1\nca_bundle = elsewhere/root-ca.pem\n",
            ),
        );
        let c = resolve(&flags(dir.path()), &Env::default()).unwrap();
        assert_eq!(c.ca_bundle, dir.path().join(ROOT_CA_CERT));
        // An absolute one that is gone: an error naming it.
        let dir = data_dir(
            true,
            Some(
                "[default]\nendpoint_url = https://localhost:1\nca_bundle = /nonexistent/ca.pem\n",
            ),
        );
        let e = resolve(&flags(dir.path()), &Env::default()).unwrap_err();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("--ca-bundle"),
            "{e}"
        );
        // A --ca-bundle that does not exist.
        let f = ConnFlags {
            ca_bundle: Some(dir.path().join("nope.pem")),
            ..flags(dir.path())
        };
        let e = resolve(&f, &Env::default()).unwrap_err();
        assert!(
            e.contains("--ca-bundle") && e.contains("no such file"),
            "{e}"
        );
    }

    #[test]
    fn only_the_default_profile_is_read_and_debug_hides_the_secret() {
        let dir = data_dir(false, Some(CONFIG));
        std::fs::write(
            dir.path().join(CREDENTIALS_FILE),
            "[other]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\
             [default]\naws_access_key_id = RIGHT\naws_secret_access_key = s3cr3t-s3cr3t\n",
        )
        .unwrap();
        let c = resolve(&flags(dir.path()), &Env::default()).unwrap();
        assert_eq!(c.key.id, "RIGHT");
        assert!(!format!("{c:?}").contains("s3cr3t"));

        std::fs::write(dir.path().join(CREDENTIALS_FILE), "[other]\nx = y\n").unwrap();
        let e = resolve(&flags(dir.path()), &Env::default()).unwrap_err();
        assert!(e.contains("has no [default]"), "{e}");
    }
}
