//! A device's files: `certificate.pem`, `private.key` (mode 0600 from the moment it exists),
//! `root-ca.pem` (the CA the server presents) and `device.json` (written last: its presence
//! says the other files are complete).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub const CERTIFICATE_FILE: &str = "certificate.pem";
pub const PRIVATE_KEY_FILE: &str = "private.key";
pub const ROOT_CA_FILE: &str = "root-ca.pem";
pub const DEVICE_JSON_FILE: &str = "device.json";

/// Every file a device gets, in the order they are written.
pub const FILES: [&str; 4] = [
    CERTIFICATE_FILE,
    PRIVATE_KEY_FILE,
    ROOT_CA_FILE,
    DEVICE_JSON_FILE,
];

/// `device.json`: what a device program needs besides the PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceJson {
    pub thing_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub thing_arn: Option<String>,
    pub certificate_id: String,
    pub certificate_arn: String,
    /// The host devices connect to (`DescribeEndpoint`).
    pub endpoint: String,
    /// The MQTT-over-TLS port, when the server's `listeners.json` is readable here.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub port: Option<u16>,
    pub certificate_file: String,
    pub private_key_file: String,
    pub root_ca_file: String,
}

impl DeviceJson {
    pub fn file_names() -> (String, String, String) {
        (
            CERTIFICATE_FILE.to_owned(),
            PRIVATE_KEY_FILE.to_owned(),
            ROOT_CA_FILE.to_owned(),
        )
    }
}

/// The contents to write.
pub struct DeviceFiles<'a> {
    pub certificate_pem: &'a str,
    pub private_key_pem: &'a str,
    pub root_ca_pem: &'a [u8],
    pub device: &'a DeviceJson,
}

/// Creates `dir` (mode 0700: it will hold a private key) if it does not exist.
pub fn create_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// The device files already in `dir`.
pub fn existing(dir: &Path) -> Vec<PathBuf> {
    FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect()
}

/// Fails when any device file is already in `dir` (unless `force`), naming them.
pub fn check_free(dir: &Path, force: bool) -> Result<(), String> {
    let found = existing(dir);
    if force || found.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "{} already exist{}; pass --force to overwrite, or choose another --out",
        names.join(", "),
        if names.len() == 1 { "s" } else { "" }
    ))
}

/// Writes the four files into `dir` (created if needed). Without `overwrite`, an existing
/// file is an error and nothing is replaced; with it, each file is replaced atomically.
pub fn write(dir: &Path, files: &DeviceFiles<'_>, overwrite: bool) -> Result<(), String> {
    create_dir(dir)?;
    let mut json = serde_json::to_vec_pretty(files.device)
        .map_err(|e| format!("cannot encode device.json: {e}"))?;
    json.push(b'\n');
    write_file(
        &dir.join(CERTIFICATE_FILE),
        files.certificate_pem.as_bytes(),
        0o644,
        overwrite,
    )?;
    write_file(
        &dir.join(PRIVATE_KEY_FILE),
        files.private_key_pem.as_bytes(),
        0o600,
        overwrite,
    )?;
    write_file(&dir.join(ROOT_CA_FILE), files.root_ca_pem, 0o644, overwrite)?;
    write_file(&dir.join(DEVICE_JSON_FILE), &json, 0o644, overwrite)
}

/// Creates `path` with `mode` (never more permissive, even for an instant) and writes
/// `bytes`, synced to disk. With `overwrite`, writes a new temporary file beside it and
/// renames it over the old one, so a replaced key file is never readable by others either.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> Result<(), String> {
    let target = if overwrite {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
    } else {
        path.to_path_buf()
    };
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&target)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !overwrite => {
            return Err(format!(
                "{} already exists; pass --force to overwrite",
                path.display()
            ));
        }
        Err(e) => {
            if overwrite {
                let _ = std::fs::remove_file(&target);
            }
            return Err(format!("cannot write {}: {e}", path.display()));
        }
    }
    if overwrite && let Err(e) = std::fs::rename(&target, path) {
        let _ = std::fs::remove_file(&target);
        return Err(format!("cannot replace {}: {e}", path.display()));
    }
    Ok(())
}

/// Whether `dir` holds a complete device for `thing` (its `device.json` names it).
pub fn complete_for(dir: &Path, thing: &str) -> bool {
    let Ok(text) = std::fs::read(dir.join(DEVICE_JSON_FILE)) else {
        return false;
    };
    let Ok(device) = serde_json::from_slice::<DeviceJson>(&text) else {
        return false;
    };
    device.thing_name == thing
        && [CERTIFICATE_FILE, PRIVATE_KEY_FILE, ROOT_CA_FILE]
            .iter()
            .all(|f| dir.join(f).is_file())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn device() -> DeviceJson {
        let (certificate_file, private_key_file, root_ca_file) = DeviceJson::file_names();
        DeviceJson {
            thing_name: "t1".into(),
            thing_arn: Some("arn:aws:iot:us-east-1:000000000000:thing/t1".into()),
            certificate_id: "ab".repeat(32),
            certificate_arn: "arn:aws:iot:us-east-1:000000000000:cert/ab".into(),
            endpoint: "localhost".into(),
            port: Some(8883),
            certificate_file,
            private_key_file,
            root_ca_file,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_four_files_with_a_0600_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/device");
        let d = device();
        let files = DeviceFiles {
            certificate_pem: "CERT",
            private_key_pem: "KEY",
            root_ca_pem: b"CA",
            device: &d,
        };
        write(&out, &files, false).unwrap();
        assert_eq!(mode(&out), 0o700);
        assert_eq!(mode(&out.join(PRIVATE_KEY_FILE)), 0o600);
        assert_eq!(
            std::fs::read_to_string(out.join(PRIVATE_KEY_FILE)).unwrap(),
            "KEY"
        );
        assert_eq!(
            std::fs::read_to_string(out.join(CERTIFICATE_FILE)).unwrap(),
            "CERT"
        );
        assert_eq!(
            std::fs::read_to_string(out.join(ROOT_CA_FILE)).unwrap(),
            "CA"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(DEVICE_JSON_FILE)).unwrap()).unwrap();
        assert_eq!(json["thingName"], "t1");
        assert_eq!(json["port"], 8883);
        assert_eq!(json["privateKeyFile"], "private.key");
        assert!(complete_for(&out, "t1"));
        assert!(!complete_for(&out, "t2"));
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PRIVATE_KEY_FILE), "OLD").unwrap();
        let e = check_free(dir.path(), false).unwrap_err();
        assert!(
            e.contains("private.key already exists") && e.contains("--force"),
            "{e}"
        );
        check_free(dir.path(), true).unwrap();

        let d = device();
        let files = DeviceFiles {
            certificate_pem: "CERT",
            private_key_pem: "NEW",
            root_ca_pem: b"CA",
            device: &d,
        };
        let e = write(dir.path(), &files, false).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(PRIVATE_KEY_FILE)).unwrap(),
            "OLD"
        );
    }

    #[test]
    fn force_replaces_a_readable_key_with_a_0600_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(PRIVATE_KEY_FILE);
        std::fs::write(&key, "OLD").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let d = device();
        let files = DeviceFiles {
            certificate_pem: "CERT",
            private_key_pem: "NEW",
            root_ca_pem: b"CA",
            device: &d,
        };
        write(dir.path(), &files, true).unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "NEW");
        assert_eq!(mode(&key), 0o600);
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_key_file_is_never_group_or_world_readable_even_with_umask_0() {
        // The mode is given to open(2) itself (O_CREAT|O_EXCL), so there is no window in which
        // the file exists with wider permissions; umask can only narrow it.
        let dir = tempfile::tempdir().unwrap();
        let old = rustix::process::umask(rustix::fs::Mode::empty());
        let r = write_file(&dir.path().join("k"), b"K", 0o600, false);
        rustix::process::umask(old);
        r.unwrap();
        assert_eq!(mode(&dir.path().join("k")), 0o600);
    }
}
