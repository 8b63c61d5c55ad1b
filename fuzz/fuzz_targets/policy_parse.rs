//! Arbitrary bytes as an IoT policy document. Parsing must never panic (with and without the
//! length limit); a document that parses must compile, and every decision about a handful of
//! requests must not panic and must agree with the explanation of it.
//!
//! ```sh
//! mkdir -p corpus/policy_parse
//! cargo +nightly fuzz run policy_parse corpus/policy_parse seeds/policy_parse -- -max_total_time=600
//! ```
//!
//! Seeds: AWS-style example policies (variables, NotResource, connect attributes, certificate
//! lists, every condition operator family, a 2008-10-17 document) and one with a duplicate
//! member.

#![no_main]

use ferrocore_policy::{
    Action, Arns, CertificateContext, ConnectContext, DistinguishedName, DnField, ParseOptions,
    PolicySet, Request, ThingContext, parse, parse_with,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limited = parse(text);
    let Ok(doc) = parse_with(text, &ParseOptions { max_chars: None }) else {
        assert!(limited.is_err(), "accepted with the limit, refused without it");
        return;
    };
    if let Ok(d) = &limited {
        assert_eq!(d, &doc);
    }
    let set = PolicySet::compile([("fuzz", &doc)]).expect("a parsed document compiles");

    let arns = Arns::new("us-east-1", "123456789012");
    let requests = [
        Request::new(),
        Request::new()
            .with_client_id("dev-1")
            .with_source_ip("10.1.2.3".parse().expect("address"))
            .with_time_ms(1_700_000_000_000)
            .with_thing(ThingContext::new("dev-1").with_type("sensor").with_attribute("site", "a"))
            .with_certificate(CertificateContext {
                id: Some("c0ffee".into()),
                serial_number: Some("01".into()),
                subject: DistinguishedName::default()
                    .with(DnField::CommonName, "dev-1")
                    .with(DnField::Organization, "Example Corp"),
                ..Default::default()
            })
            .with_claim("groups", ["a", "b"])
            .with_connect(ConnectContext {
                persistent: true,
                last_will_topic: Some(arns.topic("will/dev-1")),
            }),
        Request::new().with_client_id("+").with_principal_id("p"),
    ];
    let targets = [
        (Action::Connect, arns.client("dev-1")),
        (Action::Publish, arns.topic("dev-1/telemetry")),
        (Action::Subscribe, arns.topic_filter("dev-1/#")),
        (Action::Receive, arns.topic("$aws/things/dev-1/shadow/update")),
        (Action::ListRetainedMessages, "*".to_string()),
        (Action::Publish, "not an arn".to_string()),
    ];
    for req in &requests {
        for (action, resource) in &targets {
            let d = set.evaluate(*action, resource, req);
            let e = set.explain(*action, resource, req);
            assert_eq!(d, e.decision, "{action} {resource}");
            if let Some(id) = d.statement() {
                assert!(set.statement(id).is_some());
            }
        }
    }
});
