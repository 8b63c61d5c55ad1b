//! Custom authentication (AWS IoT custom authorizers), the pure part: no I/O, no clock.
//!
//! - [`signature`]: an authorizer's token-signing keys ([`ParsedKey`]) and the token signature
//!   check made before the authorizer runs ([`verify_token_signature`]).

pub mod signature;

pub use signature::{
    KeyError, MAX_PUBLIC_KEY_PEM_CHARS, MAX_RSA_BITS, MIN_RSA_BITS, ParsedKey, SignatureError,
    verify_token_signature,
};

/// AWS's limit on `x-amz-customauthorizer-signature`, in base64 characters.
pub const MAX_SIGNATURE_CHARS: usize = 2560;

/// `[A-Za-z0-9+/]+={0,2}`: AWS's pattern for a token signature.
pub fn is_base64_signature(signature: &str) -> bool {
    let data = signature.trim_end_matches('=');
    signature.len() - data.len() <= 2
        && !data.is_empty()
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
