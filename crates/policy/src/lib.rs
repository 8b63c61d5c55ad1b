//! The AWS IoT Core policy language: parse and validate documents ([`parse`]), compile them
//! once ([`CompiledPolicy`]), and decide requests against the policies in force for a
//! principal ([`PolicySet::evaluate`]) — with the statement that decided, for `explain` and
//! TestAuthorization ([`PolicySet::explain`]). Pure: no I/O, no clock, no async runtime.
//!
//! ```
//! use ferrocore_policy::{Action, Arns, PolicySet, Request};
//!
//! let policy = r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [
//!     {"Effect": "Allow", "Action": "iot:Connect",
//!      "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"},
//!     {"Effect": "Allow", "Action": "iot:Publish",
//!      "Resource": "arn:aws:iot:us-east-1:123456789012:topic/sensors/${iot:ClientId}/*"},
//!     {"Sid": "NoDebug", "Effect": "Deny", "Action": "iot:Publish",
//!      "Resource": "arn:aws:iot:us-east-1:123456789012:topic/sensors/*/debug"}
//!   ]}"#;
//! let set = PolicySet::parse([("device-policy", policy)]).unwrap();
//! let arns = Arns::new("us-east-1", "123456789012");
//! let req = Request::new().with_client_id("s-17"); // once per connection
//!
//! assert!(set.evaluate(Action::Publish, &arns.topic("sensors/s-17/temp"), &req).is_allowed());
//! assert!(!set.evaluate(Action::Publish, &arns.topic("sensors/s-18/temp"), &req).is_allowed());
//! let d = set.evaluate(Action::Publish, &arns.topic("sensors/s-17/debug"), &req);
//! let why = set.statement(d.statement().unwrap()).unwrap();
//! assert_eq!(why.to_string(), "policy \"device-policy\" statement 2 (Sid \"NoDebug\"), Deny");
//! ```
//!
//! # The language
//!
//! Documents are IAM-shaped JSON (see [`document`] for the grammar). AWS IoT's limit of 2048
//! characters not counting whitespace applies by default ([`ParseOptions`]). Errors
//! ([`PolicyError`]) map to `MalformedPolicyException` and say what is wrong and where.
//!
//! **Wildcards.** In `Action`, `Resource` and the `*Like` / `Arn*` condition values, `*`
//! matches any run of characters — `/` included, so `topic/a/*` covers `a/b/c` — and `?`
//! exactly one character. MQTT's `+` and `#` are ordinary characters: `topicfilter/a/+`
//! grants subscribing to the filter `a/+` only, while `topicfilter/a/*` also grants `a/#`.
//! `${*}`, `${?}` and `${$}` write a literal `*`, `?` and `$`. Actions compare without regard
//! to case; resources and strings with it.
//!
//! **MQTT level wildcards** (*Ferrocore extension*, Version `2012-10-17`, wherever `*` is a
//! wildcard): `${ferrocore:+}` is one whole topic level and `${ferrocore:#}`, last, the level
//! it stands at and all below — exactly MQTT's `+` and `#`, which `*` can only approximate
//! (`topic/a/*/c` also covers `a/b/x/c`). `topic/a/${ferrocore:+}/c` covers `a/b/c` and
//! `a//c`, not `a/b/x/c`; `topic/a/${ferrocore:#}` covers `a`, `a/b` and `a/b/c`. Each must
//! take a whole level (after `/`, and `${ferrocore:+}` before `/` or the end); at the topic's
//! first level neither covers a level starting with `$`, as in MQTT. The built-in `password`
//! authorizer writes them for Mosquitto ACLs. AWS IoT has no such syntax: to AWS,
//! `${ferrocore:+}` is an unknown variable and its statement never applies.
//!
//! **Policy variables** (Version `2012-10-17` only; with `2008-10-17`, or no `Version`, `${...}`
//! is literal text) are substituted in `Resource` / `NotResource` and in String, Arn and Bool
//! condition values. Their names, also usable as condition keys:
//!
//! | name | value |
//! |---|---|
//! | `iot:ClientId` | the MQTT client id |
//! | `iot:DomainName` | the server name the client connected to |
//! | `aws:SourceIp` | the client's address (IPv4-mapped IPv6 counts as IPv4) |
//! | `iot:CertificateId` | the certificate's AWS id |
//! | `iot:Certificate.SerialNumber` | its serial number |
//! | `iot:Certificate.{Subject,Issuer}.<F>` | F: `DistinguishedNameQualifier`, `Country`, `Organization`, `OrganizationalUnit`, `State`, `CommonName`, `SerialNumber`, `Title`, `Surname`, `GivenName`, `Initials`, `Pseudonym`, `GenerationQualifier`; the first value |
//! | `...<F>.N` | the value at zero-based index N (`.1` is the second) |
//! | `...<F>.List` | all values (a multi-valued key, for `ForAnyValue:` / `ForAllValues:`) |
//! | `iot:Certificate.{Subject,Issuer}.AlternativeName.<A>` | A: `RFC822Name`, `DNSName`, `DirectoryName`, `UniformResourceIdentifier`, `IPAddress`; also `.N` / `.List` |
//! | `iot:Certificate.AvailableKeys` | the certificate variables that have a value (multi-valued) |
//! | `iot:Connection.Thing.ThingName` / `ThingTypeName` / `Attributes[<name>]` | the thing attached to the principal (see [`ThingContext`]) |
//! | `iot:Connection.Thing.IsAttached` | `"true"` or `"false"` (always has a value) |
//! | `iot:ConnectAttributes` | condition key only: `PersistentConnect`, `LastWill` (multi-valued; only for `iot:Connect`) |
//! | `iot:LastWillTopic` | the will topic's ARN (only for `iot:Connect`) |
//! | `aws:CurrentTime` / `aws:EpochTime` | the evaluation time, as ISO 8601 / epoch seconds |
//! | `ferrocore:PrincipalId` | *Ferrocore extension*: the principal an authorizer established |
//! | `ferrocore:Claims.<name>` | *Ferrocore extension*: a claim of the validated token (JWT / OIDC); several values make it multi-valued |
//! | `ferrocore:Context.<name>` | *Ferrocore extension*: a value from an authorizer's context |
//!
//! Fixed parts of names ignore ASCII case (as IAM's keys do); attribute, claim and context
//! names do not. Any other name never has a value.
//!
//! **Substitution limits** (AWS's, for certificate variables; Ferrocore applies them to the
//! `ferrocore:` values too): a value longer than 1024 characters, or containing `*`, `$`, `+`,
//! `?` or `#`, is not substituted; multi-valued attributes keep their first five values.
//! Client ids and thing values are substituted as they are — see the dangers below. Whatever is
//! substituted matches literally: a `*` in a value is never a wildcard.
//!
//! **Conditions** follow IAM: see the [`condition`] module for the operators
//! (`String*`, `Numeric*`, `Date*`, `Bool`, `IpAddress`/`NotIpAddress`, `Arn*`, `Null`, every
//! `...IfExists`, `ForAnyValue:` / `ForAllValues:`) and how absent keys, several values and
//! negated operators combine. Operators and keys of one statement must all hold; several
//! values of one key are alternatives (for negated operators: none may match).
//!
//! **Evaluation**: an applicable Deny wins over any Allow; without an applicable Allow the
//! request is implicitly denied ([`Decision`]). Policies' order only decides which statement
//! is reported (the first applicable Deny, else the first applicable Allow).
//!
//! # Dangers (documented, as on AWS)
//!
//! - **A statement with a variable that cannot be substituted does not apply — a Deny
//!   included.** `{"Effect":"Deny", ..., "Resource":"...topic/${iot:Connection.Thing.ThingName}/admin"}`
//!   denies nothing to a client without an attached thing. Prefer Deny statements without
//!   variables, or guard them (`Null`, `...IfExists`). `ferrocore policy lint` is meant to flag
//!   these.
//! - **Client ids are attacker-chosen.** A client connecting as `+` turns
//!   `topicfilter/my/${iot:ClientId}/t` into a grant for the filter `my/+/t`; constrain
//!   `iot:Connect` to known client ids (or to `${iot:Connection.Thing.ThingName}`).
//! - A Deny on `topicfilter/a/secret/*` does not stop a subscriber of `a/#` from receiving
//!   `a/secret/x`: deny `iot:Receive` on `topic/a/secret/*` instead.
//!
//! # Where AWS is silent, Ferrocore decides
//!
//! - A member named twice in one JSON object is an error (which one wins differs between
//!   parsers); so are unknown elements, `Principal`, duplicate `Sid`s, an empty `Statement`,
//!   `Action` or `Resource` list, and IAM's `${name, 'default'}` defaults.
//! - A resource is `*` or an ARN with six colon-separated components; `*` in `Resource`
//!   crosses colons (the IoT documentation's "any combination of characters"), while `Arn*`
//!   conditions match component by component (IAM).
//! - A multi-valued key used without `ForAnyValue:` / `ForAllValues:` holds if any value
//!   matches (negated operators: if none does). An empty set is treated as an absent key.
//! - A bare number as a date (`"2020"`) is epoch seconds.
//! - The jobs actions are granted by their `iotjobsdata:` names and by the older `iot:` ones.

mod action;
mod compile;
pub mod condition;
pub mod document;
mod error;
mod json;
pub mod lint;
mod matcher;
mod request;
mod template;
mod time;
mod var;

pub use action::{Action, Arns, ResourceKind};
pub use compile::{
    CompiledPolicy, Decision, Explanation, Outcome, PolicySet, StatementId, StatementRef,
    StatementTrace,
};
pub use condition::{Operator, OperatorKind, SetQualifier};
pub use document::{
    Condition, DEFAULT_MAX_CHARS, Effect, ParseOptions, Patterns, PolicyDocument, Statement,
    Version, parse, parse_with,
};
pub use error::{ErrorKind, PolicyError};
pub use request::{
    AltNames, CertificateContext, ConnectContext, DistinguishedName, MAX_CERTIFICATE_VALUES,
    MAX_SUBSTITUTED_CHARS, Request, ThingContext, UNSUBSTITUTED_CHARS,
};
pub use var::{AltNameKind, DnField};
