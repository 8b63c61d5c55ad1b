//! Domain configurations applied to connections (the registry's rules: the identity crate's
//! registry domains module).
//!
//! - [`watch_domains`] keeps the TLS server's [`Domains`] equal to the registry's: every change
//!   of a domain configuration or server certificate (a re-import under the same ARN
//!   included) rebuilds the table, and the next handshake uses it, without a restart.
//! - [`DomainEntry::mqtt_access`] decides what an MQTT connection to a domain may use, from
//!   its `authenticationType` and `applicationProtocol`:
//!
//! | setting | MQTT over TLS | MQTT over WebSocket |
//! |---|---|---|
//! | `applicationProtocol` DEFAULT | as the listener says | as the listener says |
//! | SECURE_MQTT | allowed | refused (403 to the upgrade) |
//! | MQTT_WSS | refused (closed after the handshake) | allowed |
//! | HTTPS | refused | refused |
//! | `authenticationType` DEFAULT | the listener's rules | the listener's rules |
//! | AWS_X509 | device certificates only (no custom authentication) | same |
//! | CUSTOM_AUTH | custom authentication only, also where the listener does not offer it; a presented client certificate is ignored (AWS asks for none there) | same |
//! | AWS_SIGV4 | refused (SigV4 MQTT is not served) | refused |
//!
//! HTTP requests other than the WebSocket upgrade (the data and control planes) are not
//! restricted by a domain, so the control plane stays reachable under every name.
//! - [`domain_authorizer`] gives custom authentication the domain's default authorizer and
//!   refuses a client naming another one when the domain does not allow overriding it.
//! - [`watch_domain_connections`] applies a domain's change to the connections already open
//!   to its name: disabled or deleted, or other allowed authentication types or protocols,
//!   closes them (they connect again under the new rules); another default authorizer or
//!   override rule asks their custom authorizer again. Changes of certificates or TLS
//!   settings leave them alone (their handshake is done), and so do changes of the built-in
//!   `iot:Data-ATS` domain.

use std::collections::HashMap;
use std::sync::Arc;

use ferrocore_broker::{Broker, DomainChange};
use ferrocore_identity::registry::{
    ApplicationProtocol, AuthenticationType, Change, DEFAULT_ENDPOINT_DOMAIN,
    DomainConfigurationRecord, Registry, RegistryState,
};
use parking_lot::Mutex;
use tracing::warn;

use crate::tls::{DomainEntry, Domains, TlsState};

/// How an MQTT connection to a domain is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttAuth {
    /// As the listener says.
    Listener,
    /// Device certificates only.
    CertificatesOnly,
    /// Custom authentication only; client certificates ignored.
    CustomOnly,
}

impl DomainEntry {
    /// What an MQTT connection (over WebSocket or not) to this domain may use; `Err` says why
    /// it is refused.
    pub fn mqtt_access(&self, over_websocket: bool) -> Result<MqttAuth, String> {
        let protocol_allowed = match self.application_protocol {
            ApplicationProtocol::Default => true,
            ApplicationProtocol::SecureMqtt => !over_websocket,
            ApplicationProtocol::MqttWss => over_websocket,
            ApplicationProtocol::Https => false,
        };
        if !protocol_allowed {
            let how = if over_websocket {
                "MQTT over WebSocket"
            } else {
                "MQTT over TLS"
            };
            return Err(format!(
                "domain configuration {} (applicationProtocol {:?}) does not serve {how}",
                self.name, self.application_protocol
            ));
        }
        match self.authentication_type {
            AuthenticationType::Default => Ok(MqttAuth::Listener),
            AuthenticationType::AwsX509 => Ok(MqttAuth::CertificatesOnly),
            AuthenticationType::CustomAuth => Ok(MqttAuth::CustomOnly),
            AuthenticationType::AwsSigv4 | AuthenticationType::CustomAuthX509 => Err(format!(
                "domain configuration {} wants authenticationType {:?}, which MQTT connections \
                 cannot use here",
                self.name, self.authentication_type
            )),
        }
    }
}

fn entry(state: &RegistryState, d: &DomainConfigurationRecord) -> DomainEntry {
    let certificate = d.server_certificate_arns.first().and_then(|arn| {
        let loaded = state.server_certificates.get(arn)?.certified_key();
        match loaded {
            Ok(key) => Some(Arc::new(key)),
            Err(error) => {
                warn!(domain = %d.name, certificate = %arn, %error, "server certificate unusable; the domain presents the server's own");
                None
            }
        }
    });
    DomainEntry {
        name: d.name.clone(),
        certificate,
        enabled: d.is_enabled(),
        authentication_type: d.authentication_type,
        application_protocol: d.application_protocol,
    }
}

/// The TLS server's table of the registry's domain configurations.
pub fn domains_of(state: &RegistryState) -> Domains {
    let mut by_name = HashMap::new();
    let mut default_endpoint = None;
    for d in state.domain_configurations.values() {
        match &d.domain_name {
            Some(name) => {
                by_name.insert(name.to_ascii_lowercase(), Arc::new(entry(state, d)));
            }
            None if d.name == DEFAULT_ENDPOINT_DOMAIN => {
                default_endpoint = Some(Arc::new(entry(state, d)));
            }
            None => {}
        }
    }
    Domains {
        by_name,
        default_endpoint,
    }
}

/// Loads the registry's domains into `tls` now and after every change of a domain
/// configuration or server certificate.
pub fn watch_domains(registry: &Arc<Registry>, tls: &Arc<TlsState>) {
    tls.set_domains(registry.read(domains_of));
    let weak_registry = Arc::downgrade(registry);
    let weak_tls = Arc::downgrade(tls);
    registry.subscribe(Arc::new(move |changes: &[Change]| {
        let relevant = changes.iter().any(|c| {
            matches!(
                c,
                Change::DomainConfiguration { .. } | Change::ServerCertificate { .. }
            )
        });
        if let (true, Some(registry), Some(tls)) =
            (relevant, weak_registry.upgrade(), weak_tls.upgrade())
        {
            tls.set_domains(registry.read(domains_of));
        }
    }));
}

/// What of a domain configuration decides its open connections.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConnectionRules {
    domain_name: String,
    enabled: bool,
    authentication_type: AuthenticationType,
    application_protocol: ApplicationProtocol,
    default_authorizer: Option<String>,
    allow_override: bool,
}

impl ConnectionRules {
    /// `None` for the built-in endpoint (no domain name of its own).
    fn of(d: &DomainConfigurationRecord) -> Option<ConnectionRules> {
        Some(ConnectionRules {
            domain_name: d.domain_name.clone()?,
            enabled: d.is_enabled(),
            authentication_type: d.authentication_type,
            application_protocol: d.application_protocol,
            default_authorizer: d.default_authorizer().map(str::to_owned),
            allow_override: d.allows_authorizer_override(),
        })
    }

    /// What going from `old` to `new` does to the connections open to `old`'s name.
    fn change(old: &ConnectionRules, new: Option<&ConnectionRules>) -> Option<DomainChange> {
        if !old.enabled {
            // A disabled domain's name refuses handshakes: nothing is open to it.
            return None;
        }
        let Some(new) = new.filter(|new| new.enabled && new.domain_name == old.domain_name) else {
            return Some(DomainChange::Close);
        };
        if (old.authentication_type, old.application_protocol)
            != (new.authentication_type, new.application_protocol)
        {
            Some(DomainChange::Close)
        } else if (&old.default_authorizer, old.allow_override)
            != (&new.default_authorizer, new.allow_override)
        {
            Some(DomainChange::Reauthenticate)
        } else {
            None
        }
    }
}

/// Applies every change of a domain configuration to the connections open to its domain
/// name (see the module's documentation); runs in the registry's listener.
pub fn watch_domain_connections(registry: &Registry, broker: &Arc<Broker>) {
    let rules: HashMap<String, ConnectionRules> = registry.read(|state| {
        state
            .domain_configurations
            .values()
            .filter_map(|d| Some((d.name.clone(), ConnectionRules::of(d)?)))
            .collect()
    });
    let rules = Mutex::new(rules);
    let broker = Arc::downgrade(broker);
    registry.subscribe(Arc::new(move |changes: &[Change]| {
        for change in changes {
            let Change::DomainConfiguration { name, new } = change else {
                continue;
            };
            let new = new.as_ref().and_then(ConnectionRules::of);
            let old = match &new {
                Some(new) => rules.lock().insert(name.clone(), new.clone()),
                None => rules.lock().remove(name),
            };
            if let (Some(old), Some(broker)) = (old, broker.upgrade())
                && let Some(change) = ConnectionRules::change(&old, new.as_ref())
            {
                broker.server_name_changed(&old.domain_name, change);
            }
        }
    }));
}

/// The authorizer a custom-authentication client to `server_name` gets from its domain:
/// `Ok(Some(default))` when it names none (or names the default) and the domain sets one,
/// `Ok(None)` when the domain has no say; `Err` (the reason) when it names another authorizer
/// and the domain does not allow overriding its default.
pub fn domain_authorizer(
    registry: &Registry,
    server_name: Option<&str>,
    named: Option<&str>,
) -> Result<Option<String>, String> {
    registry.read(|state| {
        let Some(domain) = state.domain_for_server_name(server_name) else {
            return Ok(None);
        };
        let default = domain.default_authorizer();
        match named {
            Some(name) if Some(name) != default && !domain.allows_authorizer_override() => {
                Err(format!(
                    "domain configuration {} does not allow naming another authorizer than its \
                     default",
                    domain.name
                ))
            }
            _ => Ok(default.map(str::to_owned)),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arc_swap::ArcSwap;
    use ferrocore_identity::registry::{
        Arns, CreateDomainConfigurationRequest, Ctx, DomainConfigurationStatus,
        ImportServerCertificateRequest, RegistryError, UpdateDomainConfigurationRequest,
        create_domain_configuration, import_server_certificate, update_domain_configuration,
    };
    use rustls::sign::CertifiedKey;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;
    use crate::tls::DomainResolver;

    fn entry(
        authentication_type: AuthenticationType,
        application_protocol: ApplicationProtocol,
    ) -> DomainEntry {
        DomainEntry {
            name: "d".into(),
            certificate: None,
            enabled: true,
            authentication_type,
            application_protocol,
        }
    }

    /// A self-signed certificate for `name` and its key, PEM.
    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn certified((cert, key): &(String, String)) -> Arc<CertifiedKey> {
        use rustls_pki_types::pem::PemObject as _;
        let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        Arc::new(
            CertifiedKey::from_der(chain, key, &rustls::crypto::aws_lc_rs::default_provider())
                .unwrap(),
        )
    }

    fn apply<T>(
        state: &mut RegistryState,
        op: impl FnOnce(&RegistryState, &Ctx) -> Result<(T, Vec<Change>), RegistryError>,
    ) -> T {
        let ctx = Ctx {
            now_ms: i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap(),
            arns: Arns {
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
            },
        };
        let (answer, changes) = op(state, &ctx).unwrap();
        state.apply(&changes);
        answer
    }

    fn import(
        state: &mut RegistryState,
        arn: Option<&str>,
        (cert, key): &(String, String),
    ) -> String {
        let req = ImportServerCertificateRequest {
            certificate_arn: arn.map(str::to_owned),
            certificate: cert.as_bytes().to_vec(),
            private_key: key.as_bytes().to_vec(),
            certificate_chain: None,
        };
        apply(state, |s, c| import_server_certificate(s, c, req))
    }

    #[test]
    fn the_resolver_presents_the_domain_certificate_by_sni_and_refuses_disabled_domains() {
        let mut state = RegistryState::default();
        let domain_pair = pair("iot.example.test");
        let arn = import(&mut state, None, &domain_pair);
        let req = CreateDomainConfigurationRequest {
            domain_configuration_name: "custom".into(),
            domain_name: Some("iot.example.test".into()),
            server_certificate_arns: Some(vec![arn.clone()]),
            ..Default::default()
        };
        apply(&mut state, |s, c| create_domain_configuration(s, c, req));
        let server = certified(&pair("localhost"));
        let table = Arc::new(ArcSwap::from_pointee(domains_of(&state)));
        let resolver = DomainResolver::new(server.clone(), table.clone());
        let presented =
            |sni: Option<&str>| resolver.certificate_for(sni).map(|k| k.cert[0].clone());
        let domain_cert = certified(&domain_pair).cert[0].clone();
        assert_eq!(
            presented(Some("iot.example.test")),
            Some(domain_cert.clone())
        );
        assert_eq!(presented(Some("IOT.Example.Test")), Some(domain_cert));
        assert_eq!(
            presented(Some("other.example.test")),
            Some(server.cert[0].clone())
        );
        assert_eq!(presented(None), Some(server.cert[0].clone()));

        // A re-import under the same ARN is presented once the table is rebuilt.
        let renewed = pair("iot.example.test");
        import(&mut state, Some(&arn), &renewed);
        table.store(Arc::new(domains_of(&state)));
        assert_eq!(
            presented(Some("iot.example.test")),
            Some(certified(&renewed).cert[0].clone())
        );

        let req = UpdateDomainConfigurationRequest {
            domain_configuration_name: "custom".into(),
            domain_configuration_status: Some(DomainConfigurationStatus::Disabled),
            ..Default::default()
        };
        apply(&mut state, |s, c| update_domain_configuration(s, c, req));
        table.store(Arc::new(domains_of(&state)));
        assert!(presented(Some("iot.example.test")).is_none());
        assert!(presented(Some("other.example.test")).is_some());
    }

    #[test]
    fn application_protocol_and_authentication_type_decide_mqtt() {
        use ApplicationProtocol as P;
        use AuthenticationType as A;
        let d = entry(A::Default, P::Default);
        assert_eq!(d.mqtt_access(false), Ok(MqttAuth::Listener));
        assert_eq!(d.mqtt_access(true), Ok(MqttAuth::Listener));
        let d = entry(A::CustomAuth, P::SecureMqtt);
        assert_eq!(d.mqtt_access(false), Ok(MqttAuth::CustomOnly));
        assert!(d.mqtt_access(true).is_err());
        let d = entry(A::AwsX509, P::MqttWss);
        assert!(d.mqtt_access(false).is_err());
        assert_eq!(d.mqtt_access(true), Ok(MqttAuth::CertificatesOnly));
        assert!(entry(A::Default, P::Https).mqtt_access(false).is_err());
        assert!(entry(A::Default, P::Https).mqtt_access(true).is_err());
        assert!(entry(A::AwsSigv4, P::Default).mqtt_access(true).is_err());
    }

    #[test]
    fn a_domain_change_closes_or_reauthenticates_its_connections() {
        let rules = ConnectionRules {
            domain_name: "iot.example.test".into(),
            enabled: true,
            authentication_type: AuthenticationType::Default,
            application_protocol: ApplicationProtocol::Default,
            default_authorizer: Some("a".into()),
            allow_override: false,
        };
        let with = |f: &dyn Fn(&mut ConnectionRules)| {
            let mut r = rules.clone();
            f(&mut r);
            r
        };
        let change = |new: &ConnectionRules| ConnectionRules::change(&rules, Some(new));
        assert_eq!(
            change(&rules),
            None,
            "nothing that decides connections changed"
        );
        assert_eq!(
            ConnectionRules::change(&rules, None),
            Some(DomainChange::Close),
            "deleted"
        );
        assert_eq!(
            change(&with(&|r| r.enabled = false)),
            Some(DomainChange::Close)
        );
        assert_eq!(
            change(&with(
                &|r| r.authentication_type = AuthenticationType::AwsX509
            )),
            Some(DomainChange::Close)
        );
        assert_eq!(
            change(&with(
                &|r| r.application_protocol = ApplicationProtocol::MqttWss
            )),
            Some(DomainChange::Close)
        );
        assert_eq!(
            change(&with(&|r| r.default_authorizer = Some("b".into()))),
            Some(DomainChange::Reauthenticate)
        );
        assert_eq!(
            change(&with(&|r| r.allow_override = true)),
            Some(DomainChange::Reauthenticate)
        );
        let disabled = with(&|r| r.enabled = false);
        assert_eq!(ConnectionRules::change(&disabled, Some(&rules)), None);
        assert_eq!(ConnectionRules::change(&disabled, None), None);
    }
}
