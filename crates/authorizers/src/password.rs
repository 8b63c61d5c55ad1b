//! The `password` built-in authorizer function: usernames and passwords from a Mosquitto
//! password file, permissions from a Mosquitto ACL file (as exactly equivalent policies)
//! and/or named policies.
//!
//! ```toml
//! [[authorizer_function]]
//! name = "mosquitto"
//! kind = "password"
//! password_file = "passwd"   # required: `user:$7$...`, `user:$6$...`, `user:$argon2id$...`
//! acl_file = "acl"           # Mosquitto ACL: `user`, `topic`, `pattern` lines
//! policies = ["Fleet"]       # named policies (registry) every user also gets
//! refresh_after = 60         # seconds before an open connection is checked again
//! ```
//!
//! At least one of `acl_file` and `policies` is required. The username is the MQTT
//! username up to its first `?` (the rest carries `x-amz-customauthorizer-name` and the
//! like), the password the MQTT password. The answer's `principalId` is the username when it
//! is a valid built-in principal (printable ASCII without space and `*$+?#/`), else `u`
//! followed by 32 hex digits of its SHA-256; `context.username` always holds the username,
//! for `${ferrocore:Context.username}` in named policies.
//!
//! Both files are read again when their modification time or size changes (looked at no
//! more often than every [`RELOAD_CHECK`], on authentication). A file that does not parse
//! leaves the previous version in force and is logged with its line number (never a hash).
//! Passwords are verified off the async runtime; an unknown user costs about what a known
//! one does (the first user's hash is computed and ignored).

mod acl;
mod documents;
mod hash;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::{constant_time, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ferrocore_identity::custom_auth::invoke::InvokeFuture;
use ferrocore_identity::custom_auth::{AuthorizerFunction, InvokeError, is_built_in_principal_id};
use ferrocore_identity::registry::Arns;
use parking_lot::Mutex;
use serde_json::{Value, json};

pub use acl::{Access, Acl, Entry, LineError, Rules};
pub use hash::{HashError, PasswordHash, hash_argon2id};

use crate::FunctionContext;

/// How often the files' modification times are looked at, at most.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);
/// `refresh_after` when not given, in seconds.
const DEFAULT_REFRESH_SECONDS: u64 = 60;
/// The largest `refresh_after`, in seconds (AWS's largest refresh).
const MAX_REFRESH_SECONDS: u64 = 86_400;
/// The most documents in an answer (AWS's limit).
const MAX_DOCUMENTS: usize = 10;

/// Builds a `password` function from its options.
pub fn build(
    options: &toml::Table,
    context: &FunctionContext,
) -> Result<Arc<dyn AuthorizerFunction>, String> {
    let settings = Settings::from_options(options, &context.base_dir)?;
    let registry = Arc::clone(&context.registry);
    let named: NamedPolicies = Box::new(move |name| {
        registry
            .read(|state| state.policy(name).map(|p| p.default_document().to_owned()))
            .map_err(|e| e.to_string())
    });
    let arns = context.registry.arns().clone();
    Ok(Arc::new(PasswordFunction::new(
        settings,
        arns,
        named,
        RELOAD_CHECK,
    )?))
}

/// The current default version of a named policy.
type NamedPolicies = Box<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// The options, checked.
#[derive(Debug, Clone)]
struct Settings {
    password_file: PathBuf,
    acl_file: Option<PathBuf>,
    policies: Vec<String>,
    refresh_after: u64,
}

const OPTIONS: &[&str] = &["password_file", "acl_file", "policies", "refresh_after"];

impl Settings {
    fn from_options(options: &toml::Table, base: &Path) -> Result<Settings, String> {
        if let Some(unknown) = options.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(format!(
                "unknown option `{unknown}`; the options are {}",
                OPTIONS.join(", ")
            ));
        }
        let path = |key: &str| -> Result<Option<PathBuf>, String> {
            match options.get(key) {
                None => Ok(None),
                Some(toml::Value::String(p)) if !p.is_empty() => Ok(Some(base.join(p))),
                Some(_) => Err(format!("{key} must be a file name (a string)")),
            }
        };
        let password_file = path("password_file")?
            .ok_or("password_file is required (a Mosquitto password file)")?;
        let acl_file = path("acl_file")?;
        let policies = match options.get("policies") {
            None => Vec::new(),
            Some(toml::Value::Array(names)) => names
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("policies must be a list of policy names")?,
            Some(_) => return Err("policies must be a list of policy names".into()),
        };
        if acl_file.is_none() && policies.is_empty() {
            return Err(
                "give acl_file (a Mosquitto ACL file) or policies (named policies), or both: \
                 without them users could do nothing"
                    .into(),
            );
        }
        let refresh_after = match options.get("refresh_after") {
            None => DEFAULT_REFRESH_SECONDS,
            Some(toml::Value::Integer(n)) => u64::try_from(*n)
                .ok()
                .filter(|n| (1..=MAX_REFRESH_SECONDS).contains(n))
                .ok_or(format!(
                    "refresh_after must be 1 to {MAX_REFRESH_SECONDS} seconds"
                ))?,
            Some(_) => return Err("refresh_after must be a number of seconds".into()),
        };
        Ok(Settings {
            password_file,
            acl_file,
            policies,
            refresh_after,
        })
    }
}

/// The password file's users.
#[derive(Debug)]
struct Users {
    hashes: HashMap<String, PasswordHash>,
    /// Verified against when the user is unknown, so that it takes as long.
    decoy: Option<PasswordHash>,
    stamp: Option<Stamp>,
    /// Per user, the SHA-256 of the password that last verified against this version of
    /// the file: an open connection's refresh (every `refresh_after`) then costs a digest,
    /// not a deliberately slow hash. At most one entry per user of the file; a reload starts
    /// with none.
    verified: Mutex<HashMap<String, digest::Digest>>,
}

impl Users {
    /// Whether `password` is `username`'s (false for unknown users, after the decoy's cost).
    fn verify(&self, username: &str, password: &[u8]) -> bool {
        let Some(hash) = self.hashes.get(username) else {
            if let Some(decoy) = &self.decoy {
                decoy.verify(password);
            }
            return false;
        };
        let presented = digest::digest(&digest::SHA256, password);
        let remembered = self.verified.lock().get(username).is_some_and(|known| {
            constant_time::verify_slices_are_equal(known.as_ref(), presented.as_ref()).is_ok()
        });
        if remembered {
            return true;
        }
        let verified = hash.verify(password);
        if verified {
            self.verified.lock().insert(username.to_owned(), presented);
        }
        verified
    }
}

/// When a file last changed, as far as we can tell cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: SystemTime,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok()?,
        len: meta.len(),
    })
}

/// Parses a password file: `user:hash` lines; blank lines and lines starting with `#` are
/// skipped. Errors name the line, never its hash.
pub fn parse_password_file(text: &str) -> Result<HashMap<String, PasswordHash>, LineError> {
    let mut users = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |reason: String| LineError { line, reason };
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let (user, hash) = raw
            .split_once(':')
            .ok_or_else(|| err("no `:` between username and hash".into()))?;
        let user = user.trim();
        if user.is_empty() {
            return Err(err("empty username".into()));
        }
        let hash = PasswordHash::parse(hash.trim()).map_err(|e| err(e.to_string()))?;
        if users.insert(user.to_owned(), hash).is_some() {
            return Err(err(format!("user `{user}` is listed twice")));
        }
    }
    Ok(users)
}

fn read(path: &Path) -> Result<(String, Option<Stamp>), String> {
    // The stamp first: a change while reading is then seen at the next check.
    let stamp = stamp(path);
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Ok((text, stamp))
}

fn load_users(path: &Path) -> Result<Users, String> {
    let (text, stamp) = read(path)?;
    let hashes = parse_password_file(&text).map_err(|e| e.to_string())?;
    // The first line's user, so the decoy costs what real users of this file cost.
    let first = text
        .lines()
        .find_map(|l| l.split_once(':').map(|(u, _)| u.trim()))
        .and_then(|u| hashes.get(u))
        .cloned();
    Ok(Users {
        hashes,
        decoy: first,
        stamp,
        verified: Mutex::new(HashMap::new()),
    })
}

#[derive(Debug)]
struct LoadedAcl {
    acl: Acl,
    stamp: Option<Stamp>,
}

fn load_acl(path: &Path) -> Result<LoadedAcl, String> {
    let (text, stamp) = read(path)?;
    let acl = Acl::parse(&text).map_err(|e| e.to_string())?;
    Ok(LoadedAcl { acl, stamp })
}

struct PasswordFunction {
    inner: Arc<Inner>,
}

impl PasswordFunction {
    fn new(
        settings: Settings,
        arns: Arns,
        named: NamedPolicies,
        reload_check: Duration,
    ) -> Result<PasswordFunction, String> {
        let users = load_users(&settings.password_file)
            .map_err(|e| format!("password_file {}: {e}", settings.password_file.display()))?;
        let acl = match &settings.acl_file {
            Some(path) => {
                Some(load_acl(path).map_err(|e| format!("acl_file {}: {e}", path.display()))?)
            }
            None => None,
        };
        Ok(PasswordFunction {
            inner: Arc::new(Inner {
                settings,
                arns,
                named,
                reload_check,
                state: Mutex::new(State {
                    users: Arc::new(users),
                    acl: acl.map(Arc::new),
                    checked: Instant::now(),
                    generation: 0,
                }),
            }),
        })
    }
}

struct Inner {
    settings: Settings,
    arns: Arns,
    named: NamedPolicies,
    /// [`RELOAD_CHECK`], shorter in tests.
    reload_check: Duration,
    state: Mutex<State>,
}

struct State {
    users: Arc<Users>,
    acl: Option<Arc<LoadedAcl>>,
    checked: Instant,
    /// Raised whenever either file is read again ([`AuthorizerFunction::generation`]).
    generation: u64,
}

/// What the request carries for us.
struct Credentials {
    username: String,
    password: Vec<u8>,
    client_id: String,
}

impl Credentials {
    fn from_request(request: &Value) -> Option<Credentials> {
        let mqtt = request.get("protocolData")?.get("mqtt")?;
        let username = mqtt.get("username")?.as_str()?;
        let username = username.split('?').next().unwrap_or_default();
        let password = BASE64.decode(mqtt.get("password")?.as_str()?).ok()?;
        let client_id = mqtt.get("clientId").and_then(Value::as_str).unwrap_or("");
        (!username.is_empty()).then(|| Credentials {
            username: username.to_owned(),
            password,
            client_id: client_id.to_owned(),
        })
    }
}

impl AuthorizerFunction for PasswordFunction {
    fn invoke<'a>(&'a self, request: &'a Value) -> InvokeFuture<'a> {
        let credentials = Credentials::from_request(request);
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || inner.answer(credentials))
                .await
                .map_err(|e| InvokeError::Unreachable(format!("password check failed: {e}")))?;
            Ok(answer.to_string().into_bytes())
        })
    }

    fn is_built_in(&self) -> bool {
        true
    }

    /// Changes when the files are read again, so that no cached answer survives a change of
    /// them (a removed user or a new password takes effect for the next connection). Looks
    /// at the files' stamps, at most every `reload_check`; reads them only when they changed.
    fn generation(&self) -> u64 {
        self.inner.checked_state().generation
    }
}

impl Inner {
    /// The answer JSON for these credentials (blocking: hashing and file reads).
    fn answer(&self, credentials: Option<Credentials>) -> Value {
        let (users, acl) = self.current();
        let Some(credentials) = credentials else {
            return denied("anonymous");
        };
        let principal = principal_id(&credentials.username);
        if !users.verify(&credentials.username, &credentials.password) {
            tracing::debug!(username = %credentials.username, "password authorizer: refused");
            return denied(&principal);
        }
        match self.policy_documents(&credentials, acl.as_deref()) {
            Ok(documents) => json!({
                "isAuthenticated": true,
                "principalId": principal,
                "policyDocuments": documents,
                "refreshAfterInSeconds": self.settings.refresh_after,
                "context": {"username": credentials.username},
            }),
            Err(e) => {
                tracing::warn!(username = %credentials.username, "password authorizer: {e}");
                denied(&principal)
            }
        }
    }

    fn policy_documents(
        &self,
        credentials: &Credentials,
        acl: Option<&LoadedAcl>,
    ) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        if let Some(loaded) = acl {
            let rules = loaded
                .acl
                .rules(&credentials.username, &credentials.client_id);
            if !rules.narrowed.is_empty() {
                tracing::info!(
                    username = %credentials.username,
                    lines = ?rules.narrowed,
                    "password authorizer: these `pattern ... deny` lines overlap what the \
                     user's own ACL section allows and are kept whole: narrower than Mosquitto"
                );
            }
            out = documents::documents(&rules, &self.arns, &credentials.client_id)
                .map_err(|e| e.to_string())?;
        }
        for name in &self.settings.policies {
            let text = (self.named)(name).map_err(|e| format!("named policy `{name}`: {e}"))?;
            out.push(text);
        }
        if out.len() > MAX_DOCUMENTS {
            return Err(format!(
                "the ACL and named policies make {} policy documents; at most {MAX_DOCUMENTS} \
                 fit in an answer",
                out.len()
            ));
        }
        Ok(out)
    }

    /// The users and ACL in force, read again first if a file changed.
    fn current(&self) -> (Arc<Users>, Option<Arc<LoadedAcl>>) {
        let state = self.checked_state();
        (Arc::clone(&state.users), state.acl.clone())
    }

    /// The state, the files read again first if they changed (looked at no more often than
    /// every `reload_check`).
    fn checked_state(&self) -> parking_lot::MutexGuard<'_, State> {
        let mut state = self.state.lock();
        if state.checked.elapsed() >= self.reload_check {
            state.checked = Instant::now();
            let before = (
                Arc::as_ptr(&state.users),
                state.acl.as_ref().map(Arc::as_ptr),
            );
            self.reload(&mut state);
            let after = (
                Arc::as_ptr(&state.users),
                state.acl.as_ref().map(Arc::as_ptr),
            );
            if before != after {
                state.generation += 1;
            }
        }
        state
    }

    fn reload(&self, state: &mut State) {
        let path = &self.settings.password_file;
        if stamp(path) != state.users.stamp {
            match load_users(path) {
                Ok(users) => {
                    tracing::info!(file = %path.display(), users = users.hashes.len(), "password file reloaded");
                    state.users = Arc::new(users);
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), "password file not reloaded, the previous one stays in force: {e}");
                    // Not again until it changes once more.
                    let verified = state.users.verified.lock().clone();
                    state.users = Arc::new(Users {
                        hashes: state.users.hashes.clone(),
                        decoy: state.users.decoy.clone(),
                        stamp: stamp(path),
                        verified: Mutex::new(verified),
                    });
                }
            }
        }
        let Some(path) = &self.settings.acl_file else {
            return;
        };
        let previous = state.acl.as_ref().and_then(|a| a.stamp);
        if stamp(path) != previous {
            match load_acl(path) {
                Ok(acl) => {
                    tracing::info!(file = %path.display(), "ACL file reloaded");
                    state.acl = Some(Arc::new(acl));
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), "ACL file not reloaded, the previous one stays in force: {e}");
                    if let Some(old) = &state.acl {
                        state.acl = Some(Arc::new(LoadedAcl {
                            acl: old.acl.clone(),
                            stamp: stamp(path),
                        }));
                    }
                }
            }
        }
    }
}

fn denied(principal: &str) -> Value {
    json!({"isAuthenticated": false, "principalId": principal})
}

/// The username itself when it is a valid built-in principal, else `u` and 32 hex digits of
/// its SHA-256.
pub fn principal_id(username: &str) -> String {
    if is_built_in_principal_id(username) {
        return username.to_owned();
    }
    let d = digest::digest(&digest::SHA256, username.as_bytes());
    let hex: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("u{hex}")
}

#[cfg(test)]
mod tests;
