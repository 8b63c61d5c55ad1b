//! Password hashes of a password file line: Mosquitto's two formats and argon2id.
//!
//! - `$6$<salt>$<hash>`: SHA-512 of the password followed by the salt (Mosquitto 1.x's
//!   `mosquitto_passwd -H sha512`).
//! - `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512 with a 64-byte output (Mosquitto 2's
//!   default, `-H sha512-pbkdf2`).
//! - `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`: a PHC string, as newer Mosquitto builds and
//!   `ferrocore admin passwd` write.
//!
//! Salts and hashes of `$6$` / `$7$` are standard base64 with padding, as Mosquitto writes
//! them. Cost parameters are bounded ([`MAX_PBKDF2_ITERATIONS`], [`MAX_ARGON2_M_KIB`],
//! [`MAX_ARGON2_T`], [`MAX_ARGON2_P`]) so that a file cannot make a login take minutes or
//! gigabytes. Every comparison is constant-time.

use std::fmt;
use std::num::NonZeroU32;

use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use aws_lc_rs::{constant_time, digest, pbkdf2, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The most PBKDF2 iterations accepted (Mosquitto writes 101; OWASP suggests 210 000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// The most argon2 memory accepted, in KiB (Mosquitto writes 47 104, we write 19 456).
pub const MAX_ARGON2_M_KIB: u32 = 256 * 1024;
/// The most argon2 passes accepted.
pub const MAX_ARGON2_T: u32 = 10;
/// The most argon2 lanes accepted.
pub const MAX_ARGON2_P: u32 = 8;

/// Length of Mosquitto's SHA-512 and PBKDF2 outputs.
const SHA512_LEN: usize = 64;
/// The longest salt of a `$6$` / `$7$` line accepted (Mosquitto writes 12 bytes).
const MAX_SALT_LEN: usize = 64;
/// The salt length of the argon2id hashes we write.
const ARGON2_SALT_LEN: usize = 16;

/// One user's password hash, parsed.
#[derive(Clone)]
pub enum PasswordHash {
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Pbkdf2Sha512 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Argon2id(String),
}

/// Hash contents are never shown.
impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            PasswordHash::Sha512 { .. } => "$6$",
            PasswordHash::Pbkdf2Sha512 { .. } => "$7$",
            PasswordHash::Argon2id(_) => "$argon2id$",
        };
        write!(f, "PasswordHash({kind})")
    }
}

/// Why a hash field could not be used. Never contains the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("unknown hash format; expected $6$, $7$ or $argon2id$")]
    UnknownFormat,
    #[error("malformed {0} hash: {1}")]
    Malformed(&'static str, &'static str),
    #[error("$7$ iterations must be 1 to {MAX_PBKDF2_ITERATIONS}")]
    Iterations,
    #[error(
        "argon2id costs out of bounds: at most m={MAX_ARGON2_M_KIB} (KiB), t={MAX_ARGON2_T}, \
         p={MAX_ARGON2_P}"
    )]
    Argon2Costs,
    #[error("could not hash: {0}")]
    Hashing(String),
}

impl PasswordHash {
    /// Parses the hash field of a password file line.
    pub fn parse(field: &str) -> Result<PasswordHash, HashError> {
        if let Some(rest) = field.strip_prefix("$6$") {
            let (salt, hash) = salt_and_hash("$6$", rest)?;
            Ok(PasswordHash::Sha512 { salt, hash })
        } else if let Some(rest) = field.strip_prefix("$7$") {
            let (iterations, rest) = rest
                .split_once('$')
                .ok_or(HashError::Malformed("$7$", "no iteration count"))?;
            let iterations = iterations
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_PBKDF2_ITERATIONS)
                .and_then(NonZeroU32::new)
                .ok_or(HashError::Iterations)?;
            let (salt, hash) = salt_and_hash("$7$", rest)?;
            Ok(PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            })
        } else if field.starts_with("$argon2id$") {
            let phc = Phc::new(field)
                .map_err(|_| HashError::Malformed("$argon2id$", "not a PHC string"))?;
            if phc.salt.is_none() || phc.hash.is_none() {
                return Err(HashError::Malformed("$argon2id$", "no salt or hash"));
            }
            let params = Params::try_from(&phc)
                .map_err(|_| HashError::Malformed("$argon2id$", "bad parameters"))?;
            if params.m_cost() > MAX_ARGON2_M_KIB
                || params.t_cost() > MAX_ARGON2_T
                || params.p_cost() > MAX_ARGON2_P
            {
                return Err(HashError::Argon2Costs);
            }
            Ok(PasswordHash::Argon2id(field.to_owned()))
        } else {
            Err(HashError::UnknownFormat)
        }
    }

    /// Whether `password` is the one hashed. Mosquitto hashes C strings, so a password with
    /// a NUL byte never matches a `$6$` / `$7$` hash (Mosquitto would cut it at the NUL).
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Sha512 { salt, hash } => {
                let mut context = digest::Context::new(&digest::SHA512);
                context.update(password);
                context.update(salt);
                let computed = context.finish();
                let equal = constant_time::verify_slices_are_equal(computed.as_ref(), hash);
                equal.is_ok() && !password.contains(&0)
            }
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let equal = pbkdf2::verify(
                    pbkdf2::PBKDF2_HMAC_SHA512,
                    *iterations,
                    salt,
                    password,
                    hash,
                );
                equal.is_ok() && !password.contains(&0)
            }
            PasswordHash::Argon2id(phc) => Phc::new(phc)
                .is_ok_and(|phc| Argon2::default().verify_password(password, &phc).is_ok()),
        }
    }
}

/// `<salt>$<hash>` in base64, the hash 64 bytes.
fn salt_and_hash(kind: &'static str, rest: &str) -> Result<(Vec<u8>, Vec<u8>), HashError> {
    let (salt, hash) = rest
        .split_once('$')
        .ok_or(HashError::Malformed(kind, "no `$` between salt and hash"))?;
    let salt = BASE64
        .decode(salt)
        .map_err(|_| HashError::Malformed(kind, "the salt is not base64"))?;
    let hash = BASE64
        .decode(hash)
        .map_err(|_| HashError::Malformed(kind, "the hash is not base64"))?;
    if salt.is_empty() || salt.len() > MAX_SALT_LEN {
        return Err(HashError::Malformed(kind, "the salt must be 1 to 64 bytes"));
    }
    if hash.len() != SHA512_LEN {
        return Err(HashError::Malformed(kind, "the hash must be 64 bytes"));
    }
    Ok((salt, hash))
}

/// A new argon2id hash of `password` (OWASP's parameters: 19 MiB, 2 passes, 1 lane) with a
/// random 16-byte salt, as a PHC string.
pub fn hash_argon2id(password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; ARGON2_SALT_LEN];
    rand::fill(&mut salt).map_err(|_| HashError::Hashing("no random salt".into()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
        .hash_password_with_salt(password, &salt)
        .map(|phc| phc.to_string())
        .map_err(|e| HashError::Hashing(e.to_string()))
}
