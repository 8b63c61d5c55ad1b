//! Custom authentication (AWS IoT custom authorizers). All but [`invoke`] is pure: no I/O, no
//! clock.
//!
//! A connection's path through it:
//!
//! 1. [`credentials`]: find what the client presented — the MQTT username's query
//!    ([`MqttUsername::parse`]) or an HTTP request's headers and query, the WebSocket upgrade
//!    included ([`CustomAuthParams::from_http`]) — and check AWS's limits. The authorizer
//!    name picks the authorizer; its `tokenKeyName` picks the token
//!    ([`CustomAuthParams::token`]).
//! 2. [`signature`]: unless the authorizer has signing disabled, the token's signature must
//!    verify with one of its keys ([`verify_token_signature`], keys from
//!    [`ParsedKey::from_pem`]) before the authorizer is asked.
//! 3. [`request`]: the event sent to the authorizer ([`AuthorizerRequest::to_json`]) and the
//!    key its answer is cached under ([`AuthorizerRequest::cache_key`]).
//! 4. [`answer`]: the authorizer's answer, validated ([`AuthorizerAnswer::from_json`]); any
//!    error means deny.
//!
//! [`invoke`] is the I/O around these steps: calling the authorizer's function (a webhook
//! or a built-in), with timeouts, bounded concurrency, a circuit breaker and a cache
//! ([`AuthorizerInvoker`]).
//!
//! Every error is typed and says what is wrong, never repeating a token, signature or
//! password.

pub mod answer;
pub mod credentials;
pub mod invoke;
pub mod request;
pub mod signature;

pub use answer::{
    AnswerError, AnswerPolicy, AnswerRules, AuthorizerAnswer, MAX_ANSWER_BYTES,
    MAX_ANSWER_POLICIES, MAX_ANSWER_SECONDS, MAX_CLAIM_VALUES, MAX_EXTENSION_ENTRIES,
    MAX_EXTENSION_NAME_CHARS, MAX_EXTENSION_VALUE_CHARS, MAX_PRINCIPAL_ID_CHARS,
    MIN_ANSWER_SECONDS, MIN_BUILT_IN_ANSWER_SECONDS, is_built_in_principal_id,
};
pub use credentials::{
    AUTHORIZER_NAME_PARAM, CredentialError, CustomAuthParams, MAX_AUTHORIZER_NAME_CHARS,
    MAX_TOKEN_CHARS, MAX_USERNAME_BYTES, MqttUsername, NameProblem, SIGNATURE_PARAM,
    check_authorizer_name,
};
pub use invoke::{
    AuthorizerFunction, AuthorizerInvoker, BuiltInFunctions, Clock, Denial, HttpUrl, InvokeError,
    InvokeFuture, InvokerConfig, SystemClock, WebhookClient, WebhookOptions,
};
pub use request::{
    AuthorizerRequest, CacheKey, HttpContext, MAX_HTTP_CONTEXT_BYTES, MqttContext, TlsContext,
};
pub use signature::{
    KeyError, MAX_PUBLIC_KEY_PEM_CHARS, MAX_RSA_BITS, MAX_SIGNATURE_CHARS, MIN_RSA_BITS, ParsedKey,
    SignatureError, check_signature_format, verify_token_signature,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
