//! The request context a decision is made in: who is asking (client id, certificate, thing,
//! authorizer-supplied principal, claims and context), from where, and when.
//!
//! A connection builds one [`Request`] when it is authenticated and reuses it for every
//! decision; only the time ([`Request::set_time_ms`], needed only when
//! [`PolicySet::uses_time`](crate::PolicySet::uses_time)) and the connect attributes (only
//! for `iot:Connect`) change between decisions.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::time::format_iso8601;
use crate::var::{AltNameKind, DnField, Key, Select};

/// AWS truncates multi-valued certificate attributes to this many values.
pub const MAX_CERTIFICATE_VALUES: usize = 5;
/// Certificate (and `ferrocore:`) values longer than this many characters are not substituted.
pub const MAX_SUBSTITUTED_CHARS: usize = 1024;
/// Characters that keep a certificate (or `ferrocore:`) value from being substituted.
pub const UNSUBSTITUTED_CHARS: [char; 5] = ['*', '$', '+', '?', '#'];

/// What the client asked for in its CONNECT, for the `iot:ConnectAttributes` and
/// `iot:LastWillTopic` condition keys. Only present while deciding `iot:Connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectContext {
    /// A persistent session: MQTT 3.1.1 CleanSession=0, or MQTT 5 session expiry > 0.
    /// Adds `PersistentConnect` to `iot:ConnectAttributes`.
    pub persistent: bool,
    /// The will topic as a full ARN (`arn:aws:iot:<region>:<account>:topic/<topic>`, see
    /// [`Arns::topic`](crate::Arns::topic)), if the client set a will. Adds `LastWill` to
    /// `iot:ConnectAttributes` and is the value of `iot:LastWillTopic`.
    pub last_will_topic: Option<String>,
}

/// The thing attached to the authenticated principal whose name is the client id (or, with
/// exclusive association, the thing the certificate belongs to). The caller decides whether
/// there is one; when there is none, every `iot:Connection.Thing.*` variable except
/// `IsAttached` (which is `"false"`) is unresolvable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingContext {
    pub name: String,
    pub type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

impl ThingContext {
    pub fn new(name: impl Into<String>) -> Self {
        ThingContext {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn with_type(mut self, type_name: impl Into<String>) -> Self {
        self.type_name = Some(type_name.into());
        self
    }

    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// The attributes of a subject or issuer distinguished name, each possibly multi-valued, in
/// certificate order. Values are as AWS presents them (RFC 2253 escaping of `, " \ + = < > ;`
/// is the caller's business).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    values: [Vec<String>; 13],
}

impl DistinguishedName {
    pub fn push(&mut self, field: DnField, value: impl Into<String>) {
        self.values[field as usize].push(value.into());
    }

    pub fn with(mut self, field: DnField, value: impl Into<String>) -> Self {
        self.push(field, value);
        self
    }

    pub fn get(&self, field: DnField) -> &[String] {
        &self.values[field as usize]
    }
}

/// Subject or issuer alternative names by kind, in certificate order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AltNames {
    values: [Vec<String>; 5],
}

impl AltNames {
    pub fn push(&mut self, kind: AltNameKind, value: impl Into<String>) {
        self.values[kind as usize].push(value.into());
    }

    pub fn with(mut self, kind: AltNameKind, value: impl Into<String>) -> Self {
        self.push(kind, value);
        self
    }

    pub fn get(&self, kind: AltNameKind) -> &[String] {
        &self.values[kind as usize]
    }
}

/// The client certificate, for `iot:CertificateId` and the `iot:Certificate.*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateContext {
    /// `iot:CertificateId`: the AWS certificate id (SHA-256 of the DER, hex).
    pub id: Option<String>,
    /// `iot:Certificate.SerialNumber`.
    pub serial_number: Option<String>,
    pub subject: DistinguishedName,
    pub issuer: DistinguishedName,
    pub subject_alt_names: AltNames,
    pub issuer_alt_names: AltNames,
}

impl CertificateContext {
    fn values(&self, issuer: bool, key: CertValues) -> &[String] {
        let all = match key {
            CertValues::Dn(f) if issuer => self.issuer.get(f),
            CertValues::Dn(f) => self.subject.get(f),
            CertValues::Alt(k) if issuer => self.issuer_alt_names.get(k),
            CertValues::Alt(k) => self.subject_alt_names.get(k),
        };
        &all[..all.len().min(MAX_CERTIFICATE_VALUES)]
    }

    /// `iot:Certificate.AvailableKeys`: the certificate variables that have a value.
    pub fn available_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if self.serial_number.is_some() {
            keys.push(Key::CertificateSerialNumber.to_string());
        }
        for issuer in [false, true] {
            for field in DnField::ALL {
                if !self.values(issuer, CertValues::Dn(field)).is_empty() {
                    let select = Select::First;
                    keys.push(
                        Key::Dn {
                            issuer,
                            field,
                            select,
                        }
                        .to_string(),
                    );
                }
            }
            for kind in AltNameKind::ALL {
                if !self.values(issuer, CertValues::Alt(kind)).is_empty() {
                    let select = Select::First;
                    keys.push(
                        Key::AltName {
                            issuer,
                            kind,
                            select,
                        }
                        .to_string(),
                    );
                }
            }
        }
        keys
    }
}

#[derive(Clone, Copy)]
enum CertValues {
    Dn(DnField),
    Alt(AltNameKind),
}

/// Everything a decision can depend on. Build it once per connection with the `with_*`
/// methods; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    client_id: Option<String>,
    domain_name: Option<String>,
    source_ip: Option<(IpAddr, String)>,
    time_ms: Option<i64>,
    connect: Option<ConnectContext>,
    thing: Option<ThingContext>,
    certificate: Option<CertificateContext>,
    principal_id: Option<String>,
    claims: BTreeMap<String, Vec<String>>,
    context: BTreeMap<String, String>,
}

impl Request {
    pub fn new() -> Self {
        Request::default()
    }

    /// `iot:ClientId`. Substituted as is, even `+` or `#`: see the crate documentation.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// `iot:DomainName`: the server name the client connected to (TLS SNI).
    pub fn with_domain_name(mut self, domain_name: impl Into<String>) -> Self {
        self.domain_name = Some(domain_name.into());
        self
    }

    /// `aws:SourceIp`. An IPv4-mapped IPv6 address counts as the IPv4 address.
    pub fn with_source_ip(mut self, ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        self.source_ip = Some((ip, ip.to_string()));
        self
    }

    /// `aws:CurrentTime` / `aws:EpochTime`, in milliseconds since the Unix epoch.
    pub fn with_time_ms(mut self, epoch_ms: i64) -> Self {
        self.time_ms = Some(epoch_ms);
        self
    }

    pub fn set_time_ms(&mut self, epoch_ms: i64) {
        self.time_ms = Some(epoch_ms);
    }

    /// Sets the time from a clock reading (the caller's clock: this crate reads none).
    pub fn set_time(&mut self, now: SystemTime) {
        self.time_ms = Some(match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        });
    }

    pub fn with_connect(mut self, connect: ConnectContext) -> Self {
        self.connect = Some(connect);
        self
    }

    /// The connect attributes; set while deciding `iot:Connect`, cleared after.
    pub fn set_connect(&mut self, connect: Option<ConnectContext>) {
        self.connect = connect;
    }

    pub fn with_thing(mut self, thing: ThingContext) -> Self {
        self.thing = Some(thing);
        self
    }

    pub fn with_certificate(mut self, certificate: CertificateContext) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// `ferrocore:PrincipalId`: the principal an authorizer (or the certificate) established.
    pub fn with_principal_id(mut self, principal_id: impl Into<String>) -> Self {
        self.principal_id = Some(principal_id.into());
        self
    }

    /// `ferrocore:Claims.<name>`: a claim of a validated token; several values make it a
    /// multi-valued key (for `ForAnyValue:` / `ForAllValues:`), which is never substituted.
    pub fn with_claim<I, S>(mut self, name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.claims
            .insert(name.into(), values.into_iter().map(Into::into).collect());
        self
    }

    /// `ferrocore:Context.<name>`: a value an authorizer returned in its context.
    pub fn with_context(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.insert(name.into(), value.into());
        self
    }

    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_ip.as_ref().map(|(ip, _)| *ip)
    }

    pub fn time_ms(&self) -> Option<i64> {
        self.time_ms
    }

    pub fn connect(&self) -> Option<&ConnectContext> {
        self.connect.as_ref()
    }

    pub fn thing(&self) -> Option<&ThingContext> {
        self.thing.as_ref()
    }

    pub fn certificate(&self) -> Option<&CertificateContext> {
        self.certificate.as_ref()
    }

    /// The values of a condition key.
    pub(crate) fn values(&self, key: &Key) -> Vals<'_> {
        fn one(s: Option<&String>) -> Vals<'_> {
            s.map_or(Vals::None, |s| Vals::One(Val::Str(s)))
        }
        match key {
            Key::ClientId => one(self.client_id.as_ref()),
            Key::DomainName => one(self.domain_name.as_ref()),
            Key::SourceIp => self
                .source_ip
                .as_ref()
                .map_or(Vals::None, |(ip, s)| Vals::One(Val::Ip(*ip, s))),
            Key::CurrentTime => self.time_ms.map_or(Vals::None, |t| Vals::One(Val::Time(t))),
            Key::EpochTime => self
                .time_ms
                .map_or(Vals::None, |t| Vals::One(Val::Epoch(t.div_euclid(1000)))),
            Key::ConnectAttributes => match &self.connect {
                Some(c) => Vals::Attrs {
                    persistent: c.persistent,
                    will: c.last_will_topic.is_some(),
                },
                None => Vals::None,
            },
            Key::LastWillTopic => one(self
                .connect
                .as_ref()
                .and_then(|c| c.last_will_topic.as_ref())),
            Key::CertificateId => one(self.certificate.as_ref().and_then(|c| c.id.as_ref())),
            Key::CertificateSerialNumber => one(self
                .certificate
                .as_ref()
                .and_then(|c| c.serial_number.as_ref())),
            Key::CertificateAvailableKeys => match &self.certificate {
                Some(c) => Vals::Owned(c.available_keys()),
                None => Vals::None,
            },
            Key::Dn {
                issuer,
                field,
                select,
            } => self.cert_values(*issuer, CertValues::Dn(*field), *select),
            Key::AltName {
                issuer,
                kind,
                select,
            } => self.cert_values(*issuer, CertValues::Alt(*kind), *select),
            Key::ThingName => one(self.thing.as_ref().map(|t| &t.name)),
            Key::ThingTypeName => one(self.thing.as_ref().and_then(|t| t.type_name.as_ref())),
            Key::ThingIsAttached => Vals::One(Val::Str(if self.thing.is_some() {
                "true"
            } else {
                "false"
            })),
            Key::ThingAttribute(name) => {
                one(self.thing.as_ref().and_then(|t| t.attributes.get(&**name)))
            }
            Key::PrincipalId => one(self.principal_id.as_ref()),
            Key::Claim(name) => match self.claims.get(&**name).map(Vec::as_slice) {
                None | Some([]) => Vals::None,
                Some([v]) => Vals::One(Val::Str(v)),
                Some(vs) => Vals::Many(vs),
            },
            Key::Context(name) => one(self.context.get(&**name)),
            Key::Unknown(_) => Vals::None,
        }
    }

    fn cert_values(&self, issuer: bool, which: CertValues, select: Select) -> Vals<'_> {
        let Some(cert) = &self.certificate else {
            return Vals::None;
        };
        let values = cert.values(issuer, which);
        match select {
            Select::First => values
                .first()
                .map_or(Vals::None, |v| Vals::One(Val::Str(v))),
            Select::Index(i) => values.get(i).map_or(Vals::None, |v| Vals::One(Val::Str(v))),
            Select::List if values.is_empty() => Vals::None,
            Select::List => Vals::Many(values),
        }
    }

    /// The text a `${key}` variable is replaced by, or `None` when it cannot be substituted:
    /// no value, several values, or (for certificate and `ferrocore:` values) a value longer
    /// than [`MAX_SUBSTITUTED_CHARS`] or containing one of [`UNSUBSTITUTED_CHARS`].
    pub(crate) fn variable(&self, key: &Key) -> Option<Cow<'_, str>> {
        let Vals::One(v) = self.values(key) else {
            return None;
        };
        let s = v.to_text();
        let guarded = key.is_certificate()
            || matches!(key, Key::PrincipalId | Key::Claim(_) | Key::Context(_));
        if guarded && !substitutable(&s) {
            return None;
        }
        Some(s)
    }
}

/// AWS's limits on substituting certificate attribute values.
fn substitutable(s: &str) -> bool {
    let too_long = s.len() > MAX_SUBSTITUTED_CHARS && s.chars().count() > MAX_SUBSTITUTED_CHARS;
    !too_long && !s.contains(UNSUBSTITUTED_CHARS)
}

/// One value of a condition key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Str(&'a str),
    /// Milliseconds since the epoch (`aws:CurrentTime`).
    Time(i64),
    /// Seconds since the epoch (`aws:EpochTime`).
    Epoch(i64),
    /// An address and its text.
    Ip(IpAddr, &'a str),
}

impl<'a> Val<'a> {
    pub(crate) fn to_text(self) -> Cow<'a, str> {
        match self {
            Val::Str(s) | Val::Ip(_, s) => Cow::Borrowed(s),
            Val::Time(ms) => Cow::Owned(format_iso8601(ms)),
            Val::Epoch(s) => Cow::Owned(s.to_string()),
        }
    }
}

/// All values of a condition key in a request. Absent and empty are the same (IAM treats a
/// key whose values are an empty set like a missing key).
#[derive(Debug, Clone)]
pub(crate) enum Vals<'a> {
    None,
    One(Val<'a>),
    Many(&'a [String]),
    Attrs { persistent: bool, will: bool },
    Owned(Vec<String>),
}

impl<'a> Vals<'a> {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Vals::None => true,
            Vals::One(_) => false,
            Vals::Many(v) => v.is_empty(),
            Vals::Attrs { persistent, will } => !persistent && !will,
            Vals::Owned(v) => v.is_empty(),
        }
    }

    /// Whether `f` holds for some value.
    pub(crate) fn any(&self, mut f: impl FnMut(Val<'_>) -> bool) -> bool {
        match self {
            Vals::None => false,
            Vals::One(v) => f(*v),
            Vals::Many(vs) => vs.iter().any(|v| f(Val::Str(v))),
            Vals::Attrs { persistent, will } => {
                (*persistent && f(Val::Str("PersistentConnect")))
                    || (*will && f(Val::Str("LastWill")))
            }
            Vals::Owned(vs) => vs.iter().any(|v| f(Val::Str(v))),
        }
    }

    /// Whether `f` holds for every value (vacuously true for none).
    pub(crate) fn all(&self, mut f: impl FnMut(Val<'_>) -> bool) -> bool {
        !self.any(|v| !f(v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn text(r: &Request, name: &str) -> Option<String> {
        r.variable(&Key::parse(name)).map(Cow::into_owned)
    }

    fn cert() -> CertificateContext {
        CertificateContext {
            id: Some("abc123".into()),
            serial_number: Some("921285cbb7a5e086".into()),
            subject: DistinguishedName::default()
                .with(DnField::CommonName, "LightBulb Device Cert")
                .with(DnField::CommonName, "Administrator")
                .with(DnField::Organization, "Example Corp")
                .with(DnField::Organization, "AnyCompany")
                .with(DnField::Country, "US"),
            issuer: DistinguishedName::default()
                .with(DnField::CommonName, "IoT Devices Primary CA"),
            subject_alt_names: AltNames::default()
                .with(AltNameKind::DnsName, "bulb.example.com")
                .with(AltNameKind::IpAddress, "10.0.0.1"),
            issuer_alt_names: AltNames::default(),
        }
    }

    #[test]
    fn basic_and_thing_variables() {
        let r = Request::new()
            .with_client_id("c1")
            .with_domain_name("iot.example.com")
            .with_source_ip("::ffff:192.0.2.7".parse().unwrap())
            .with_thing(
                ThingContext::new("t1")
                    .with_type("bulb")
                    .with_attribute("Floor", "3"),
            );
        assert_eq!(text(&r, "iot:ClientId").as_deref(), Some("c1"));
        assert_eq!(
            text(&r, "iot:DomainName").as_deref(),
            Some("iot.example.com")
        );
        assert_eq!(text(&r, "aws:SourceIp").as_deref(), Some("192.0.2.7"));
        assert_eq!(
            text(&r, "iot:Connection.Thing.ThingName").as_deref(),
            Some("t1")
        );
        assert_eq!(
            text(&r, "iot:Connection.Thing.ThingTypeName").as_deref(),
            Some("bulb")
        );
        assert_eq!(
            text(&r, "iot:Connection.Thing.Attributes[Floor]").as_deref(),
            Some("3")
        );
        assert_eq!(text(&r, "iot:Connection.Thing.Attributes[floor]"), None);
        assert_eq!(
            text(&r, "iot:Connection.Thing.IsAttached").as_deref(),
            Some("true")
        );
        let none = Request::new();
        assert_eq!(
            text(&none, "iot:Connection.Thing.IsAttached").as_deref(),
            Some("false")
        );
        for name in [
            "iot:ClientId",
            "iot:Connection.Thing.ThingName",
            "iot:Connection.Thing.ThingTypeName",
            "aws:SourceIp",
            "aws:CurrentTime",
            "iot:CertificateId",
            "iot:LastWillTopic",
            "nothing:Here",
        ] {
            assert_eq!(text(&none, name), None, "{name}");
        }
    }

    #[test]
    fn client_id_is_substituted_verbatim_even_with_mqtt_wildcards() {
        let r = Request::new().with_client_id("+");
        assert_eq!(text(&r, "iot:ClientId").as_deref(), Some("+"));
        let r = Request::new().with_client_id("#*?$");
        assert_eq!(text(&r, "iot:ClientId").as_deref(), Some("#*?$"));
    }

    #[test]
    fn certificate_variables_first_index_list() {
        let r = Request::new().with_certificate(cert());
        assert_eq!(text(&r, "iot:CertificateId").as_deref(), Some("abc123"));
        assert_eq!(
            text(&r, "iot:Certificate.SerialNumber").as_deref(),
            Some("921285cbb7a5e086")
        );
        assert_eq!(
            text(&r, "iot:Certificate.Subject.CommonName").as_deref(),
            Some("LightBulb Device Cert")
        );
        assert_eq!(
            text(&r, "iot:Certificate.Subject.CommonName.0").as_deref(),
            Some("LightBulb Device Cert")
        );
        // Zero-based: .1 is the second value.
        assert_eq!(
            text(&r, "iot:Certificate.Subject.CommonName.1").as_deref(),
            Some("Administrator")
        );
        assert_eq!(text(&r, "iot:Certificate.Subject.CommonName.2"), None);
        // Lists are never substituted.
        assert_eq!(text(&r, "iot:Certificate.Subject.Organization.List"), None);
        assert_eq!(
            text(&r, "iot:Certificate.Issuer.CommonName").as_deref(),
            Some("IoT Devices Primary CA")
        );
        assert_eq!(
            text(&r, "iot:Certificate.Subject.AlternativeName.DNSName").as_deref(),
            Some("bulb.example.com")
        );
        assert_eq!(
            text(&r, "iot:Certificate.Issuer.AlternativeName.DNSName"),
            None
        );
        assert_eq!(text(&r, "iot:Certificate.Subject.Title"), None);
    }

    #[test]
    fn certificate_values_with_wildcards_or_too_long_are_not_substituted() {
        for bad in ["a*b", "a$b", "a+b", "a?b", "a#b"] {
            let c = CertificateContext {
                subject: DistinguishedName::default().with(DnField::CommonName, bad),
                ..Default::default()
            };
            let r = Request::new().with_certificate(c);
            assert_eq!(
                text(&r, "iot:Certificate.Subject.CommonName"),
                None,
                "{bad}"
            );
            // Still a condition key value.
            assert!(
                !r.values(&Key::parse("iot:Certificate.Subject.CommonName"))
                    .is_empty()
            );
        }
        let c = |n: usize| CertificateContext {
            subject: DistinguishedName::default().with(DnField::CommonName, "é".repeat(n)),
            ..Default::default()
        };
        let r = Request::new().with_certificate(c(1024));
        assert!(text(&r, "iot:Certificate.Subject.CommonName").is_some());
        let r = Request::new().with_certificate(c(1025));
        assert_eq!(text(&r, "iot:Certificate.Subject.CommonName"), None);
    }

    #[test]
    fn multi_valued_attributes_are_truncated_to_five() {
        let mut subject = DistinguishedName::default();
        for i in 0..7 {
            subject.push(DnField::OrganizationalUnit, format!("ou{i}"));
        }
        let r = Request::new().with_certificate(CertificateContext {
            subject,
            ..Default::default()
        });
        assert_eq!(
            text(&r, "iot:Certificate.Subject.OrganizationalUnit.4").as_deref(),
            Some("ou4")
        );
        assert_eq!(
            text(&r, "iot:Certificate.Subject.OrganizationalUnit.5"),
            None
        );
        let mut n = 0;
        r.values(&Key::parse(
            "iot:Certificate.Subject.OrganizationalUnit.List",
        ))
        .any(|_| {
            n += 1;
            false
        });
        assert_eq!(n, 5);
    }

    #[test]
    fn available_keys() {
        let keys = cert().available_keys();
        assert_eq!(
            keys,
            [
                "iot:Certificate.SerialNumber",
                "iot:Certificate.Subject.Country",
                "iot:Certificate.Subject.Organization",
                "iot:Certificate.Subject.CommonName",
                "iot:Certificate.Subject.AlternativeName.DNSName",
                "iot:Certificate.Subject.AlternativeName.IPAddress",
                "iot:Certificate.Issuer.CommonName",
            ]
        );
    }

    #[test]
    fn ferrocore_extensions() {
        let r = Request::new()
            .with_principal_id("alice")
            .with_claim("sub", ["u-1"])
            .with_claim("groups", ["admins", "ops"])
            .with_claim("email", ["a+b@example.com"])
            .with_context("site", "plant-7");
        assert_eq!(text(&r, "ferrocore:PrincipalId").as_deref(), Some("alice"));
        assert_eq!(text(&r, "ferrocore:Claims.sub").as_deref(), Some("u-1"));
        assert_eq!(text(&r, "ferrocore:Claims.groups"), None);
        // Guarded like certificate values: '+' keeps it from being substituted.
        assert_eq!(text(&r, "ferrocore:Claims.email"), None);
        assert_eq!(text(&r, "ferrocore:Claims.Sub"), None);
        assert_eq!(
            text(&r, "ferrocore:Context.site").as_deref(),
            Some("plant-7")
        );
    }

    #[test]
    fn time_keys() {
        let r = Request::new().with_time_ms(1_700_000_000_123);
        assert_eq!(text(&r, "aws:EpochTime").as_deref(), Some("1700000000"));
        assert_eq!(
            text(&r, "aws:CurrentTime").as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        let mut r = Request::new();
        r.set_time(UNIX_EPOCH + std::time::Duration::from_millis(1500));
        assert_eq!(r.time_ms(), Some(1500));
    }

    #[test]
    fn connect_attributes() {
        let k = Key::ConnectAttributes;
        let mut r = Request::new();
        assert!(r.values(&k).is_empty());
        r.set_connect(Some(ConnectContext::default()));
        assert!(r.values(&k).is_empty());
        r.set_connect(Some(ConnectContext {
            persistent: true,
            last_will_topic: Some("arn:aws:iot:us-east-1:1:topic/w".into()),
        }));
        let mut seen = Vec::new();
        r.values(&k).any(|v| {
            seen.push(v.to_text().into_owned());
            false
        });
        assert_eq!(seen, ["PersistentConnect", "LastWill"]);
        assert_eq!(
            text(&r, "iot:LastWillTopic").as_deref(),
            Some("arn:aws:iot:us-east-1:1:topic/w")
        );
        assert_eq!(text(&r, "iot:ConnectAttributes"), None);
    }
}
