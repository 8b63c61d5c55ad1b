//! Names of policy variables and condition keys, recognised once at compile time into a
//! [`Key`] (the "slot" evaluation reads from a [`Request`](crate::Request) without parsing).
//!
//! The same names serve as `${...}` variables (in `Resource` and in string, ARN and Bool
//! condition values) and as condition keys. As in IAM, the fixed parts of a name are matched
//! without regard to ASCII case (`${iot:clientid}` is `${iot:ClientId}`); the free parts — a
//! thing attribute name, a claim or context name — are case-sensitive.

use std::fmt;

/// An X.509 distinguished-name attribute exposed as `iot:Certificate.{Subject,Issuer}.<F>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnField {
    DistinguishedNameQualifier,
    Country,
    Organization,
    OrganizationalUnit,
    State,
    CommonName,
    SerialNumber,
    Title,
    Surname,
    GivenName,
    Initials,
    Pseudonym,
    GenerationQualifier,
}

impl DnField {
    pub const ALL: [DnField; 13] = [
        DnField::DistinguishedNameQualifier,
        DnField::Country,
        DnField::Organization,
        DnField::OrganizationalUnit,
        DnField::State,
        DnField::CommonName,
        DnField::SerialNumber,
        DnField::Title,
        DnField::Surname,
        DnField::GivenName,
        DnField::Initials,
        DnField::Pseudonym,
        DnField::GenerationQualifier,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DnField::DistinguishedNameQualifier => "DistinguishedNameQualifier",
            DnField::Country => "Country",
            DnField::Organization => "Organization",
            DnField::OrganizationalUnit => "OrganizationalUnit",
            DnField::State => "State",
            DnField::CommonName => "CommonName",
            DnField::SerialNumber => "SerialNumber",
            DnField::Title => "Title",
            DnField::Surname => "Surname",
            DnField::GivenName => "GivenName",
            DnField::Initials => "Initials",
            DnField::Pseudonym => "Pseudonym",
            DnField::GenerationQualifier => "GenerationQualifier",
        }
    }

    fn from_name(s: &str) -> Option<DnField> {
        DnField::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
    }
}

/// A subject or issuer alternative-name kind, `iot:Certificate.*.AlternativeName.<A>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AltNameKind {
    Rfc822Name,
    DnsName,
    DirectoryName,
    UniformResourceIdentifier,
    IpAddress,
}

impl AltNameKind {
    pub const ALL: [AltNameKind; 5] = [
        AltNameKind::Rfc822Name,
        AltNameKind::DnsName,
        AltNameKind::DirectoryName,
        AltNameKind::UniformResourceIdentifier,
        AltNameKind::IpAddress,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AltNameKind::Rfc822Name => "RFC822Name",
            AltNameKind::DnsName => "DNSName",
            AltNameKind::DirectoryName => "DirectoryName",
            AltNameKind::UniformResourceIdentifier => "UniformResourceIdentifier",
            AltNameKind::IpAddress => "IPAddress",
        }
    }

    fn from_name(s: &str) -> Option<AltNameKind> {
        AltNameKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }
}

/// Which of a multi-valued certificate attribute's values a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Select {
    /// The bare name: the first value.
    First,
    /// `.N`: the value at zero-based index N (`.1` is the second value).
    Index(usize),
    /// `.List`: all values (a multi-valued key, for `ForAnyValue:` / `ForAllValues:`).
    List,
}

/// A recognised variable or condition-key name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    ClientId,
    SourceIp,
    DomainName,
    CurrentTime,
    EpochTime,
    ConnectAttributes,
    LastWillTopic,
    CertificateId,
    CertificateSerialNumber,
    CertificateAvailableKeys,
    Dn {
        issuer: bool,
        field: DnField,
        select: Select,
    },
    AltName {
        issuer: bool,
        kind: AltNameKind,
        select: Select,
    },
    ThingName,
    ThingTypeName,
    ThingIsAttached,
    ThingAttribute(Box<str>),
    PrincipalId,
    Claim(Box<str>),
    Context(Box<str>),
    /// Any other name: never has a value (a variable that never resolves, a key that is always
    /// absent). Kept verbatim for explanations.
    Unknown(Box<str>),
}

/// `s` without `prefix`, comparing ASCII case-insensitively.
fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Splits an optional `.List` / `.N` suffix off a certificate attribute name.
fn split_select(s: &str) -> (&str, Select) {
    if let Some((base, last)) = s.rsplit_once('.') {
        if last.eq_ignore_ascii_case("List") {
            return (base, Select::List);
        }
        if !last.is_empty()
            && last.len() <= 6
            && last.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = last.parse::<usize>()
        {
            return (base, Select::Index(n));
        }
    }
    (s, Select::First)
}

impl Key {
    pub(crate) fn parse(name: &str) -> Key {
        Key::recognise(name).unwrap_or_else(|| Key::Unknown(name.into()))
    }

    fn recognise(name: &str) -> Option<Key> {
        const SIMPLE: [(&str, Key); 8] = [
            ("iot:ClientId", Key::ClientId),
            ("aws:SourceIp", Key::SourceIp),
            ("iot:DomainName", Key::DomainName),
            ("aws:CurrentTime", Key::CurrentTime),
            ("aws:EpochTime", Key::EpochTime),
            ("iot:ConnectAttributes", Key::ConnectAttributes),
            ("iot:LastWillTopic", Key::LastWillTopic),
            ("iot:CertificateId", Key::CertificateId),
        ];
        for (n, k) in SIMPLE {
            if n.eq_ignore_ascii_case(name) {
                return Some(k);
            }
        }
        if let Some(rest) = strip_ci(name, "iot:Connection.Thing.") {
            if rest.eq_ignore_ascii_case("ThingName") {
                return Some(Key::ThingName);
            }
            if rest.eq_ignore_ascii_case("ThingTypeName") {
                return Some(Key::ThingTypeName);
            }
            if rest.eq_ignore_ascii_case("IsAttached") {
                return Some(Key::ThingIsAttached);
            }
            let attr = strip_ci(rest, "Attributes[")?.strip_suffix(']')?;
            if attr.is_empty() {
                return None;
            }
            return Some(Key::ThingAttribute(attr.into()));
        }
        if let Some(rest) = strip_ci(name, "iot:Certificate.") {
            if rest.eq_ignore_ascii_case("SerialNumber") {
                return Some(Key::CertificateSerialNumber);
            }
            if rest.eq_ignore_ascii_case("AvailableKeys") {
                return Some(Key::CertificateAvailableKeys);
            }
            let (issuer, rest) = match strip_ci(rest, "Subject.") {
                Some(r) => (false, r),
                None => (true, strip_ci(rest, "Issuer.")?),
            };
            let (base, select) = split_select(rest);
            if let Some(alt) = strip_ci(base, "AlternativeName.") {
                return Some(Key::AltName {
                    issuer,
                    kind: AltNameKind::from_name(alt)?,
                    select,
                });
            }
            return Some(Key::Dn {
                issuer,
                field: DnField::from_name(base)?,
                select,
            });
        }
        if let Some(rest) = strip_ci(name, "ferrocore:") {
            if rest.eq_ignore_ascii_case("PrincipalId") {
                return Some(Key::PrincipalId);
            }
            if let Some(claim) = strip_ci(rest, "Claims.") {
                return (!claim.is_empty()).then(|| Key::Claim(claim.into()));
            }
            if let Some(ctx) = strip_ci(rest, "Context.") {
                return (!ctx.is_empty()).then(|| Key::Context(ctx.into()));
            }
        }
        None
    }

    /// Whether the key needs the evaluation time.
    pub(crate) fn uses_time(&self) -> bool {
        matches!(self, Key::CurrentTime | Key::EpochTime)
    }

    /// Certificate attributes, to which AWS's substitution limits apply.
    pub(crate) fn is_certificate(&self) -> bool {
        matches!(
            self,
            Key::CertificateSerialNumber
                | Key::CertificateAvailableKeys
                | Key::Dn { .. }
                | Key::AltName { .. }
        )
    }
}

fn write_select(f: &mut fmt::Formatter<'_>, select: Select) -> fmt::Result {
    match select {
        Select::First => Ok(()),
        Select::Index(n) => write!(f, ".{n}"),
        Select::List => f.write_str(".List"),
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |issuer: bool| if issuer { "Issuer" } else { "Subject" };
        match self {
            Key::ClientId => f.write_str("iot:ClientId"),
            Key::SourceIp => f.write_str("aws:SourceIp"),
            Key::DomainName => f.write_str("iot:DomainName"),
            Key::CurrentTime => f.write_str("aws:CurrentTime"),
            Key::EpochTime => f.write_str("aws:EpochTime"),
            Key::ConnectAttributes => f.write_str("iot:ConnectAttributes"),
            Key::LastWillTopic => f.write_str("iot:LastWillTopic"),
            Key::CertificateId => f.write_str("iot:CertificateId"),
            Key::CertificateSerialNumber => f.write_str("iot:Certificate.SerialNumber"),
            Key::CertificateAvailableKeys => f.write_str("iot:Certificate.AvailableKeys"),
            Key::Dn {
                issuer,
                field,
                select,
            } => {
                write!(f, "iot:Certificate.{}.{}", side(*issuer), field.name())?;
                write_select(f, *select)
            }
            Key::AltName {
                issuer,
                kind,
                select,
            } => {
                write!(
                    f,
                    "iot:Certificate.{}.AlternativeName.{}",
                    side(*issuer),
                    kind.name()
                )?;
                write_select(f, *select)
            }
            Key::ThingName => f.write_str("iot:Connection.Thing.ThingName"),
            Key::ThingTypeName => f.write_str("iot:Connection.Thing.ThingTypeName"),
            Key::ThingIsAttached => f.write_str("iot:Connection.Thing.IsAttached"),
            Key::ThingAttribute(a) => write!(f, "iot:Connection.Thing.Attributes[{a}]"),
            Key::PrincipalId => f.write_str("ferrocore:PrincipalId"),
            Key::Claim(c) => write!(f, "ferrocore:Claims.{c}"),
            Key::Context(c) => write!(f, "ferrocore:Context.{c}"),
            Key::Unknown(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_every_documented_name() {
        assert_eq!(Key::parse("iot:ClientId"), Key::ClientId);
        assert_eq!(Key::parse("IOT:CLIENTID"), Key::ClientId);
        assert_eq!(Key::parse("aws:sourceip"), Key::SourceIp);
        assert_eq!(
            Key::parse("iot:Connection.Thing.Attributes[Floor]"),
            Key::ThingAttribute("Floor".into())
        );
        assert_eq!(
            Key::parse("iot:connection.thing.attributes[Floor]"),
            Key::ThingAttribute("Floor".into())
        );
        assert_eq!(
            Key::parse("iot:Certificate.Subject.CommonName"),
            Key::Dn {
                issuer: false,
                field: DnField::CommonName,
                select: Select::First
            }
        );
        assert_eq!(
            Key::parse("iot:Certificate.Issuer.Organization.2"),
            Key::Dn {
                issuer: true,
                field: DnField::Organization,
                select: Select::Index(2)
            }
        );
        assert_eq!(
            Key::parse("iot:Certificate.Subject.Organization.List"),
            Key::Dn {
                issuer: false,
                field: DnField::Organization,
                select: Select::List
            }
        );
        assert_eq!(
            Key::parse("iot:Certificate.Subject.SerialNumber"),
            Key::Dn {
                issuer: false,
                field: DnField::SerialNumber,
                select: Select::First
            }
        );
        assert_eq!(
            Key::parse("iot:Certificate.SerialNumber"),
            Key::CertificateSerialNumber
        );
        assert_eq!(
            Key::parse("iot:Certificate.Subject.AlternativeName.DNSName.List"),
            Key::AltName {
                issuer: false,
                kind: AltNameKind::DnsName,
                select: Select::List
            }
        );
        assert_eq!(
            Key::parse("ferrocore:Claims.cognito:groups"),
            Key::Claim("cognito:groups".into())
        );
        assert_eq!(
            Key::parse("ferrocore:Context.tenant"),
            Key::Context("tenant".into())
        );
        for bad in [
            "iot:Thing.ThingName",
            "iot:Connection.Thing.Attributes[]",
            "iot:Certificate.Subject.Nope",
            "iot:Certificate.Subject.AlternativeName.Nope",
            "ferrocore:Claims.",
            "aws:username",
        ] {
            assert_eq!(Key::parse(bad), Key::Unknown(bad.into()), "{bad}");
        }
    }

    #[test]
    fn display_round_trips_canonical_names() {
        for name in [
            "iot:ClientId",
            "aws:SourceIp",
            "iot:DomainName",
            "aws:CurrentTime",
            "aws:EpochTime",
            "iot:ConnectAttributes",
            "iot:LastWillTopic",
            "iot:CertificateId",
            "iot:Certificate.SerialNumber",
            "iot:Certificate.AvailableKeys",
            "iot:Certificate.Subject.CommonName",
            "iot:Certificate.Issuer.Country.3",
            "iot:Certificate.Subject.OrganizationalUnit.List",
            "iot:Certificate.Issuer.AlternativeName.RFC822Name",
            "iot:Connection.Thing.ThingName",
            "iot:Connection.Thing.ThingTypeName",
            "iot:Connection.Thing.IsAttached",
            "iot:Connection.Thing.Attributes[x]",
            "ferrocore:PrincipalId",
            "ferrocore:Claims.sub",
            "ferrocore:Context.site",
        ] {
            let k = Key::parse(name);
            assert!(!matches!(k, Key::Unknown(_)), "{name}");
            assert_eq!(k.to_string(), name);
        }
    }
}
