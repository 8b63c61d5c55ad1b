#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::registry::policies::tests::{attach_thing, cert, group, join, state, thing};
use crate::registry::tests::ctx;
use crate::registry::{
    AuthInfo, Change, PolicyRecord, PolicyVersionRecord, TestAuthorizationRequest,
};
use crate::testing::{TestCa, ten_years};

const ARN: &str = "arn:aws:iot:us-east-1:123456789012";
const NOW: i64 = 1_700_000_000;

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn put_policy(s: &mut RegistryState, name: &str, document: &str) {
    let record = PolicyRecord {
        name: name.into(),
        versions: [(
            1,
            PolicyVersionRecord {
                document: document.to_owned(),
                create_date_ms: 0,
            },
        )]
        .into(),
        default_version: 1,
        next_version: 2,
        creation_date_ms: 0,
        last_modified_date_ms: 0,
        generation_id: "g".into(),
    };
    s.apply(&[Change::Policy {
        name: name.into(),
        new: Some(record),
    }]);
}

fn attach(s: &mut RegistryState, policy: &str, target: String) {
    s.apply(&[Change::PolicyAttachment {
        policy: policy.into(),
        target,
        attached: true,
    }]);
}

/// Certificate `c` (returned) attached to thing `lamp` (attribute site=s1) in group `child`
/// of `root`; policy `device` on the certificate, `site` on `child`.
fn fleet() -> (RegistryState, String) {
    let mut s = state();
    let ca = TestCa::new("test CA", ten_years(NOW));
    let c = cert(&mut s, &ca, "lamp-cert");
    thing(&mut s, "lamp");
    s.things
        .get_mut("lamp")
        .unwrap()
        .attributes
        .insert("site".into(), "s1".into());
    group(&mut s, "root", None);
    group(&mut s, "child", Some("root"));
    join(&mut s, "lamp", "child");
    attach_thing(&mut s, "lamp", &c, false);
    put_policy(
        &mut s,
        "device",
        &doc(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/${{iot:Connection.Thing.ThingName}}"}},
               {{"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/dev/${{iot:ClientId}}/*"}},
               {{"Sid":"NoSecret","Effect":"Deny","Action":"iot:Publish","Resource":"{ARN}:topic/dev/*/secret"}}"#
        )),
    );
    put_policy(
        &mut s,
        "site",
        &doc(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{ARN}:topicfilter/site/${{iot:Connection.Thing.Attributes[site]}}/*"}}"#
        )),
    );
    attach(&mut s, "device", certificate_arn(&ctx().arns, &c));
    attach(
        &mut s,
        "site",
        super::super::thing_group_arn(&ctx().arns, "child"),
    );
    (s, c)
}

fn request(v: serde_json::Value) -> ExplainAuthorizationRequest {
    serde_json::from_value(v).unwrap()
}

fn explain(
    s: &RegistryState,
    v: serde_json::Value,
) -> Result<ExplainAuthorizationResponse, RegistryError> {
    explain_authorization(s, &ctx(), &PolicyCache::default(), request(v))
}

fn outcomes(r: &ExplainAuthorizationResponse) -> Vec<(String, usize, String)> {
    r.statements
        .iter()
        .map(|t| {
            (
                t.policy_name.clone(),
                t.statement_index,
                t.outcome.clone().unwrap(),
            )
        })
        .collect()
}

#[test]
fn allow_explicit_and_implicit_deny_name_the_deciding_statement() {
    let (s, c) = fleet();
    let principal = certificate_arn(&ctx().arns, &c);
    let r = explain(&s, json!({"principal": principal, "clientId": "lamp", "action": "iot:Publish", "resource": "dev/lamp/temp"})).unwrap();
    assert_eq!(r.decision, "ALLOWED");
    assert_eq!(r.resource, format!("{ARN}:topic/dev/lamp/temp"));
    assert_eq!(r.principal.as_deref(), Some(principal.as_str()));
    assert_eq!(
        (r.client_id.as_deref(), r.thing_name.as_deref()),
        (Some("lamp"), Some("lamp"))
    );
    let d = r.decided_by.as_ref().unwrap();
    assert_eq!(
        (
            d.policy_name.as_str(),
            d.policy_version_id.as_deref(),
            d.statement_index,
            d.effect.as_str()
        ),
        ("device", Some("1"), 1, "Allow")
    );
    assert_eq!(
        outcomes(&r),
        [
            ("device".into(), 0, "action not covered".into()),
            ("device".into(), 1, "applies".into()),
            ("device".into(), 2, "resource not covered".into()),
            ("site".into(), 0, "action not covered".into()),
        ]
    );
    assert_eq!(
        r.policies
            .iter()
            .map(|p| p.policy_name.as_str())
            .collect::<Vec<_>>(),
        ["device", "site"]
    );
    assert!(r.missing_context_values.is_empty());
    assert!(r.notes.is_empty(), "{:?}", r.notes);

    let r = explain(&s, json!({"principal": principal, "clientId": "lamp", "action": "PUBLISH", "resource": "topic/dev/lamp/secret"})).unwrap();
    assert_eq!(r.decision, "EXPLICIT_DENY");
    let d = r.decided_by.unwrap();
    assert_eq!(
        (d.statement_index, d.sid.as_deref(), d.effect.as_str()),
        (2, Some("NoSecret"), "Deny")
    );

    let r = explain(&s, json!({"principal": c, "clientId": "lamp", "action": "iot:publish", "resource": format!("{ARN}:topic/dev/other/temp")})).unwrap();
    assert_eq!(r.decision, "IMPLICIT_DENY");
    assert!(r.decided_by.is_none());
    assert_eq!(
        r.statements[1].outcome.as_deref(),
        Some("resource not covered")
    );

    // The group's policy with the thing's attribute.
    let r = explain(&s, json!({"principal": c, "clientId": "lamp", "action": "iot:Subscribe", "resource": "site/s1/#"})).unwrap();
    assert_eq!(r.resource, format!("{ARN}:topicfilter/site/s1/#"));
    assert_eq!(r.decided_by.unwrap().policy_name, "site");
}

#[test]
fn agrees_with_test_authorization() {
    let (s, c) = fleet();
    let principal = certificate_arn(&ctx().arns, &c);
    for client in ["lamp", "other"] {
        for (action, kind, resource) in [
            ("CONNECT", "client", "lamp"),
            ("CONNECT", "client", "other"),
            ("PUBLISH", "topic", "dev/lamp/x"),
            ("PUBLISH", "topic", "dev/other/x"),
            ("PUBLISH", "topic", "dev/lamp/secret"),
            ("SUBSCRIBE", "topicfilter", "site/s1/#"),
            ("RECEIVE", "topic", "site/s1/x"),
        ] {
            let arn = format!("{ARN}:{kind}/{resource}");
            let t = super::super::test_authorization(
                &s,
                &ctx(),
                &PolicyCache::default(),
                TestAuthorizationRequest {
                    principal: Some(principal.clone()),
                    auth_infos: Some(vec![AuthInfo {
                        action_type: Some(action.into()),
                        resources: vec![arn.clone()],
                    }]),
                    client_id: Some(client.into()),
                    ..Default::default()
                },
            )
            .unwrap();
            let e = explain(&s, json!({"principal": principal, "clientId": client, "action": action, "resource": arn})).unwrap();
            let a = &t.auth_results[0];
            assert_eq!(e.decision, a.auth_decision, "{client} {action} {arn}");
            assert_eq!(
                e.missing_context_values, a.missing_context_values,
                "{client} {action} {arn}"
            );
        }
    }
}

#[test]
fn another_client_id_leaves_the_thing_variables_unresolved() {
    let (s, c) = fleet();
    let r = explain(&s, json!({"principal": c, "clientId": "intruder", "action": "iot:Connect", "resource": "client/intruder"})).unwrap();
    assert_eq!(r.decision, "IMPLICIT_DENY");
    assert_eq!(r.thing_name, None);
    assert_eq!(r.missing_context_values, ["iot:Connection.Thing.ThingName"]);
    assert_eq!(
        r.statements[0].outcome.as_deref(),
        Some("unresolved variable: iot:Connection.Thing.ThingName")
    );
    // Only the certificate's policy: the thing's group does not apply.
    assert_eq!(r.policies.len(), 1);
}

#[test]
fn thing_alone_uses_its_certificate_and_name() {
    let (s, c) = fleet();
    let r = explain(
        &s,
        json!({"thingName": "lamp", "action": "iot:Connect", "resource": "client/lamp"}),
    )
    .unwrap();
    assert_eq!(r.decision, "ALLOWED");
    assert_eq!(r.principal, Some(certificate_arn(&ctx().arns, &c)));
    assert_eq!(r.client_id.as_deref(), Some("lamp"));

    // Without a client id, the certificate's thing's name is assumed (and said).
    let r = explain(
        &s,
        json!({"principal": c, "action": "iot:Connect", "resource": "client/lamp"}),
    )
    .unwrap();
    assert_eq!(r.decision, "ALLOWED");
    assert!(
        r.notes.iter().any(|n| n.contains("client id lamp assumed")),
        "{:?}",
        r.notes
    );

    // A thing without a certificate: its groups' policies only.
    let mut s = s;
    thing(&mut s, "bare");
    join(&mut s, "bare", "child");
    s.things
        .get_mut("bare")
        .unwrap()
        .attributes
        .insert("site".into(), "s2".into());
    let r = explain(
        &s,
        json!({"thingName": "bare", "action": "iot:Subscribe", "resource": "site/s2/x"}),
    )
    .unwrap();
    assert_eq!(r.decision, "ALLOWED");
    assert_eq!(r.principal, None);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("no certificate attached")),
        "{:?}",
        r.notes
    );

    // Two certificates, neither exclusive: which one is ambiguous.
    let ca = TestCa::new("test CA 2", ten_years(NOW));
    let c2 = cert(&mut s, &ca, "second");
    attach_thing(&mut s, "lamp", &c2, false);
    let e = explain(
        &s,
        json!({"thingName": "lamp", "action": "iot:Connect", "resource": "client/lamp"}),
    )
    .unwrap_err();
    assert!(
        matches!(&e, RegistryError::InvalidRequest(m) if m.contains("2 certificates")),
        "{e}"
    );

    // A thing the certificate is not attached to: said.
    let r = explain(&s, json!({"principal": c2, "thingName": "bare", "action": "iot:Connect", "resource": "client/bare"})).unwrap();
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("not this connection's thing")),
        "{:?}",
        r.notes
    );
}

#[test]
fn policy_documents_and_variables() {
    let (s, c) = fleet();
    let what_if = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/${{iot:Connection.Thing.Attributes[site]}}/*",
            "Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}"#
    ));
    // Instead of the principal's policies, with its thing.
    let r = explain(
        &s,
        json!({"principal": c, "clientId": "lamp", "action": "iot:Publish", "resource": "s1/x",
        "policyDocuments": [{"policyName": "what-if", "policyDocument": what_if}],
        "variables": {"sourceIp": "10.1.2.3"}}),
    )
    .unwrap();
    assert_eq!(r.decision, "ALLOWED");
    assert_eq!(
        r.policies,
        [ExplainedPolicy {
            policy_name: "what-if".into(),
            policy_version_id: None
        }]
    );
    let r = explain(
        &s,
        json!({"principal": c, "clientId": "lamp", "action": "iot:Publish", "resource": "s1/x",
        "policyDocuments": [what_if], "variables": {"sourceIp": "192.0.2.1"}}),
    )
    .unwrap();
    assert_eq!(r.decision, "IMPLICIT_DENY");
    assert_eq!(r.statements[0].policy_name, "policyDocuments[0]");
    assert_eq!(
        r.statements[0].outcome.as_deref(),
        Some("condition not met: IpAddress aws:SourceIp")
    );
    // Attributes overridden.
    let r = explain(&s, json!({"principal": c, "clientId": "lamp", "action": "iot:Publish", "resource": "s9/x",
        "policyDocuments": [what_if], "variables": {"sourceIp": "10.0.0.1", "thingAttributes": {"site": "s9"}}})).unwrap();
    assert_eq!(r.decision, "ALLOWED");

    // Without a principal: documents and variables alone, the same as explain_documents.
    let v = json!({"action": "iot:Publish", "resource": "s1/x", "policyDocuments": [what_if],
        "variables": {"thingName": "t", "thingAttributes": {"site": "s1"}, "sourceIp": "10.0.0.1"}});
    let server = explain(&s, v.clone()).unwrap();
    let local = explain_documents(&ctx().arns, ctx().now_ms, request(v)).unwrap();
    assert_eq!(server, local);
    assert_eq!(local.decision, "ALLOWED");
    assert_eq!(local.thing_name.as_deref(), Some("t"));
}

#[test]
fn connect_attributes_and_will() {
    let policy = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/${{iot:ClientId}}",
            "Condition":{{"ForAllValues:StringEquals":{{"iot:ConnectAttributes":["LastWill"]}},
                          "ArnLike":{{"iot:LastWillTopic":"{ARN}:topic/wills/*"}}}}}}"#
    ));
    let run = |vars: serde_json::Value| {
        explain_documents(
            &ctx().arns,
            ctx().now_ms,
            request(
                json!({"clientId": "c1", "action": "iot:Connect", "resource": "c1",
                "policyDocuments": [policy], "variables": vars}),
            ),
        )
        .unwrap()
    };
    assert_eq!(
        run(json!({"lastWillTopic": "wills/c1"})).decision,
        "ALLOWED"
    );
    assert_eq!(
        run(json!({"lastWillTopic": format!("{ARN}:topic/wills/c1")})).decision,
        "ALLOWED"
    );
    let r = run(json!({"lastWillTopic": "wills/c1", "persistentConnect": true}));
    assert_eq!(r.decision, "IMPLICIT_DENY");
    assert_eq!(
        r.statements[0].outcome.as_deref(),
        Some("condition not met: ForAllValues:StringEquals iot:ConnectAttributes")
    );
    assert_eq!(run(json!({})).decision, "IMPLICIT_DENY");
}

#[test]
fn resources_in_short_and_full_form() {
    let arns = ferrocore_policy::Arns::new("us-east-1", "123456789012");
    let f = |a: Action, r: Option<&str>| full_resource(&arns, a, r);
    assert_eq!(
        f(Action::Publish, Some("a/b")).unwrap(),
        format!("{ARN}:topic/a/b")
    );
    assert_eq!(
        f(Action::Publish, Some("topic/a/b")).unwrap(),
        format!("{ARN}:topic/a/b")
    );
    // Another kind's prefix is part of the name.
    assert_eq!(
        f(Action::Publish, Some("client/x")).unwrap(),
        format!("{ARN}:topic/client/x")
    );
    assert_eq!(
        f(Action::Subscribe, Some("a/#")).unwrap(),
        format!("{ARN}:topicfilter/a/#")
    );
    assert_eq!(
        f(Action::Connect, Some("client/c")).unwrap(),
        format!("{ARN}:client/c")
    );
    assert_eq!(
        f(Action::UpdateThingShadow, Some("lamp")).unwrap(),
        format!("{ARN}:thing/lamp")
    );
    assert_eq!(f(Action::Publish, Some("*")).unwrap(), "*");
    let other = "arn:aws:iot:eu-west-1:1:topic/x";
    assert_eq!(f(Action::Publish, Some(other)).unwrap(), other);
    assert_eq!(f(Action::ListRetainedMessages, None).unwrap(), "*");
    assert!(f(Action::ListRetainedMessages, Some("topic/x")).is_err());
    assert!(f(Action::Publish, None).is_err());
    assert!(f(Action::Publish, Some("arn:aws:iot:x")).is_err());
    assert!(f(Action::Publish, Some(&"x".repeat(3000))).is_err());
}

#[test]
fn bad_requests_get_aws_errors() {
    let (s, _) = fleet();
    let code = |v: serde_json::Value| explain(&s, v).unwrap_err().aws_error_code();
    let pub_ = |extra: serde_json::Value| {
        let mut v = json!({"action": "iot:Publish", "resource": "a"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    assert_eq!(
        code(json!({"resource": "a", "principal": "x"})),
        "InvalidRequestException"
    );
    assert_eq!(
        code(json!({"action": "iot:Pub", "resource": "a", "thingName": "lamp"})),
        "InvalidRequestException"
    );
    assert_eq!(code(pub_(json!({}))), "InvalidRequestException");
    assert_eq!(
        code(pub_(json!({"principal": "0".repeat(64)}))),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(pub_(json!({"principal": "not-a-cert"}))),
        "InvalidRequestException"
    );
    assert_eq!(
        code(pub_(json!({"thingName": "missing"}))),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(pub_(json!({"policyDocuments": []}))),
        "InvalidRequestException"
    );
    assert_eq!(
        code(pub_(json!({"policyDocuments": [7]}))),
        "InvalidRequestException"
    );
    let e = explain(
        &s,
        pub_(json!({"policyDocuments": [{"policyName": "bad", "policyDocument": "{}"}]})),
    )
    .unwrap_err();
    assert_eq!(e.aws_error_code(), "MalformedPolicyException");
    assert!(
        e.to_string().starts_with("policyDocuments[0] (bad): "),
        "{e}"
    );
    let ok_doc = doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    assert_eq!(
        code(pub_(
            json!({"policyDocuments": [ok_doc], "variables": {"sourceIp": "nope"}})
        )),
        "InvalidRequestException"
    );
    assert_eq!(
        code(pub_(
            json!({"policyDocuments": [ok_doc], "variables": {"thingAttributes": {"a": "b"}}})
        )),
        "InvalidRequestException"
    );
    // Unknown variables are refused when the request is read (typos must not pass silently).
    assert!(
        serde_json::from_value::<ExplainAuthorizationRequest>(
            json!({"variables": {"clientID": "x"}})
        )
        .is_err()
    );
}
