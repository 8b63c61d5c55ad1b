//! AWS IoT Core's documented example policies (developer guide: basic and thing policy
//! variables, connect, publish/subscribe/receive, certificate and thing policy examples) as
//! test vectors: each policy with the requests it is documented to allow and to refuse.

#![allow(clippy::unwrap_used)]

use ferrocore_policy::{
    Action, Arns, CertificateContext, ConnectContext, Decision, DistinguishedName, DnField,
    PolicySet, Request, ThingContext,
};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

fn arns() -> Arns {
    Arns::new(REGION, ACCOUNT)
}

fn set(policy: &str) -> PolicySet {
    PolicySet::parse([("example", policy)]).unwrap()
}

fn can(set: &PolicySet, action: Action, name: &str, req: &Request) -> bool {
    let arns = arns();
    let resource = match action {
        Action::Connect => arns.client(name),
        Action::Subscribe => arns.topic_filter(name),
        _ => arns.topic(name),
    };
    set.evaluate(action, &resource, req).is_allowed()
}

fn client(id: &str) -> Request {
    Request::new().with_client_id(id)
}

/// A client whose certificate is attached to the thing named like its client id.
fn thing(name: &str) -> Request {
    Request::new()
        .with_client_id(name)
        .with_thing(ThingContext::new(name))
}

// ---- basic policy variables -------------------------------------------------------------------

#[test]
fn basic_variables_client_id() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Connect"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"]},
          {"Effect": "Allow", "Action": ["iot:Publish"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:ClientId}"]}
        ]}"#);
    let r = client("100-234-3456");
    assert!(can(&p, Action::Connect, "100-234-3456", &r));
    assert!(!can(&p, Action::Connect, "other", &r));
    assert!(can(&p, Action::Publish, "my/topic/100-234-3456", &r));
    assert!(!can(&p, Action::Publish, "my/topic/other", &r));
    assert!(!can(&p, Action::Publish, "my/topic/100-234-3456/sub", &r));
    assert!(!can(&p, Action::Subscribe, "my/topic/100-234-3456", &r));
    // Without a client id (e.g. over HTTPS) the variable does not resolve.
    assert!(!can(&p, Action::Publish, "my/topic/", &Request::new()));
}

#[test]
fn client_id_plus_widens_a_topic_filter_grant() {
    // The documented danger: a client connecting as "+" may subscribe to my/+/topic.
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Subscribe"],
          "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/my/${iot:ClientId}/topic"]}]}"#);
    assert!(can(&p, Action::Subscribe, "my/+/topic", &client("+")));
    assert!(!can(
        &p,
        Action::Subscribe,
        "my/+/topic",
        &client("clientid1")
    ));
    assert!(can(
        &p,
        Action::Subscribe,
        "my/clientid1/topic",
        &client("clientid1")
    ));
    // "#" likewise (an invalid MQTT filter in that position, but the policy grants it).
    assert!(can(&p, Action::Subscribe, "my/#/topic", &client("#")));
    // The documented remedy: only known client ids may connect.
    let connect = set(
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["iot:Connect"], "Resource": ["arn:aws:iot:us-east-1:123456789012:client/clientid1"]}]}"#,
    );
    assert!(can(
        &connect,
        Action::Connect,
        "clientid1",
        &client("clientid1")
    ));
    assert!(!can(&connect, Action::Connect, "+", &client("+")));
}

// ---- connect ------------------------------------------------------------------------------------

#[test]
fn connect_deny_some_client_ids_allow_thing_names() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Deny", "Action": ["iot:Connect"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:client/client1",
                        "arn:aws:iot:us-east-1:123456789012:client/client2"]},
          {"Effect": "Allow", "Action": ["iot:Connect"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}
        ]}"#);
    assert!(can(&p, Action::Connect, "thing-7", &thing("thing-7")));
    // A registered thing named client1 is still refused: Deny wins.
    let d = p.evaluate(
        Action::Connect,
        &arns().client("client1"),
        &thing("client1"),
    );
    assert!(matches!(d, Decision::ExplicitDeny(id) if id.statement == 0));
    // Not a registered thing: the Allow's variable does not resolve.
    assert_eq!(
        p.evaluate(Action::Connect, &arns().client("loner"), &client("loner")),
        Decision::ImplicitDeny
    );
}

fn connecting(persistent: bool, will: Option<&str>) -> Request {
    Request::new()
        .with_client_id("c")
        .with_connect(ConnectContext {
            persistent,
            last_will_topic: will.map(|t| arns().topic(t)),
        })
}

/// Which of (clean, no will), (clean, will), (persistent, no will), (persistent, will) may
/// connect.
fn connect_matrix(p: &PolicySet) -> [bool; 4] {
    let w = Some("my/lastwill/topicName");
    [
        connecting(false, None),
        connecting(false, w),
        connecting(true, None),
        connecting(true, w),
    ]
    .map(|r| {
        p.evaluate(Action::Connect, &arns().client("c"), &r)
            .is_allowed()
    })
}

fn connect_policy(statements: &str) -> PolicySet {
    set(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#
    ))
}

#[test]
fn connect_attributes_examples() {
    let allow = |cond: &str| {
        format!(
            r#"{{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*", "Condition": {cond}}}"#
        )
    };
    let deny = |cond: &str| {
        format!(
            r#"{{"Effect": "Deny", "Action": ["iot:Connect"], "Resource": "*", "Condition": {cond}}}"#
        )
    };
    let all =
        |v: &str| format!(r#"{{"ForAllValues:StringEquals": {{"iot:ConnectAttributes": [{v}]}}}}"#);
    let any =
        |v: &str| format!(r#"{{"ForAnyValue:StringEquals": {{"iot:ConnectAttributes": [{v}]}}}}"#);
    let plain_allow = r#"{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*"}"#;

    // Allows connecting with PersistentConnect (and without it), nothing else.
    let p = connect_policy(&allow(&all(r#""PersistentConnect""#)));
    assert_eq!(connect_matrix(&p), [true, false, true, false]);
    // Disallows PersistentConnect, other features allowed.
    let p = connect_policy(&allow(
        r#"{"ForAllValues:StringNotEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}}"#,
    ));
    assert_eq!(connect_matrix(&p), [true, true, false, false]);
    // The same with an explicit Deny.
    let p = connect_policy(&format!(
        "{plain_allow}, {}",
        deny(&any(r#""PersistentConnect""#))
    ));
    assert_eq!(connect_matrix(&p), [true, true, false, false]);
    // Both allowed, no other feature.
    let p = connect_policy(&allow(&all(r#""PersistentConnect", "LastWill""#)));
    assert_eq!(connect_matrix(&p), [true, true, true, true]);
    // Clean connect with or without LastWill.
    let p = connect_policy(&allow(&all(r#""LastWill""#)));
    assert_eq!(connect_matrix(&p), [true, true, false, false]);
    // Only the default features.
    let p = connect_policy(&allow(&all("")));
    assert_eq!(connect_matrix(&p), [true, false, false, false]);
    // Must use PersistentConnect.
    let p = connect_policy(&allow(&any(r#""PersistentConnect""#)));
    assert_eq!(connect_matrix(&p), [false, false, true, true]);
    // Must have both.
    let p = connect_policy(&format!(
        "{}, {}, {}, {}",
        allow(&all(r#""PersistentConnect", "LastWill""#)),
        deny(&all(r#""PersistentConnect""#)),
        deny(&all(r#""LastWill""#)),
        deny(&all(""))
    ));
    assert_eq!(connect_matrix(&p), [false, false, false, true]);
    // No PersistentConnect, LastWill optional.
    let p = connect_policy(&format!(
        "{}, {}",
        deny(&any(r#""PersistentConnect""#)),
        allow(&all(r#""LastWill""#))
    ));
    assert_eq!(connect_matrix(&p), [true, true, false, false]);
}

#[test]
fn connect_last_will_topic() {
    let will = r#"{"ArnEquals": {"iot:LastWillTopic": "arn:aws:iot:us-east-1:123456789012:topic/my/lastwill/topicName"}}"#;
    let p = connect_policy(&format!(
        r#"{{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*", "Condition": {will}}}"#
    ));
    assert_eq!(connect_matrix(&p), [false, true, false, true]);
    let other = Request::new().with_connect(ConnectContext {
        persistent: false,
        last_will_topic: Some(arns().topic("other")),
    });
    assert!(
        !p.evaluate(Action::Connect, &arns().client("c"), &other)
            .is_allowed()
    );
    // Clean sessions only, with that will.
    let p = connect_policy(&format!(
        r#"{{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*", "Condition": {will}}},
           {{"Effect": "Deny", "Action": ["iot:Connect"], "Resource": "*",
             "Condition": {{"ForAnyValue:StringEquals": {{"iot:ConnectAttributes": ["PersistentConnect"]}}}}}}"#
    ));
    assert_eq!(connect_matrix(&p), [false, true, false, false]);
}

// ---- publish / subscribe / receive ---------------------------------------------------------------

#[test]
fn publish_under_thing_name_prefix() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Connect"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
          {"Effect": "Allow", "Action": ["iot:Publish"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"]}
        ]}"#);
    let r = thing("thing1");
    assert!(can(&p, Action::Connect, "thing1", &r));
    assert!(can(&p, Action::Publish, "thing1/a", &r));
    // '*' crosses '/'.
    assert!(can(&p, Action::Publish, "thing1/a/b/c", &r));
    assert!(!can(&p, Action::Publish, "thing1", &r));
    assert!(!can(&p, Action::Publish, "thing2/a", &r));
    assert!(!can(&p, Action::Publish, "thing1/a", &client("thing1")));
}

#[test]
fn subscribe_and_receive_rooms() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Connect"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:client/client1",
                        "arn:aws:iot:us-east-1:123456789012:client/client2",
                        "arn:aws:iot:us-east-1:123456789012:client/client3"]},
          {"Effect": "Allow", "Action": ["iot:Subscribe"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:ClientId}/room*"]},
          {"Effect": "Allow", "Action": ["iot:Receive"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/room*"]}
        ]}"#);
    let r = client("client2");
    assert!(can(&p, Action::Connect, "client2", &r));
    assert!(!can(&p, Action::Connect, "client4", &client("client4")));
    assert!(can(&p, Action::Subscribe, "client2/room1", &r));
    // The policy's '*' also covers MQTT wildcard filters.
    assert!(can(&p, Action::Subscribe, "client2/room/#", &r));
    assert!(can(&p, Action::Receive, "client2/room42", &r));
    assert!(!can(&p, Action::Receive, "client1/room42", &r));
    assert!(!can(&p, Action::Publish, "client2/room1", &r));
}

#[test]
fn mqtt_wildcards_are_literal_in_policies() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Subscribe"],
          "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/some/+/topic"]}]}"#);
    let r = client("client1");
    assert!(can(&p, Action::Subscribe, "some/+/topic", &r));
    assert!(!can(&p, Action::Subscribe, "some/x/topic", &r));
    assert!(!can(&p, Action::Subscribe, "some/#", &r));
}

#[test]
fn subscribe_to_two_topics() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Subscribe"],
          "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/my/topic",
                       "arn:aws:iot:us-east-1:123456789012:topicfilter/my/othertopic"]}]}"#);
    let r = client("client1");
    assert!(can(&p, Action::Subscribe, "my/topic", &r));
    assert!(can(&p, Action::Subscribe, "my/othertopic", &r));
    assert!(!can(&p, Action::Subscribe, "my/+", &r));
    assert!(!can(&p, Action::Subscribe, "my/topic/x", &r));
}

#[test]
fn publish_prefix_except_bar() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Publish"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]},
          {"Effect": "Deny", "Action": ["iot:Publish"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/bar"]}
        ]}"#);
    let r = client("client1");
    assert!(can(&p, Action::Publish, "client1/foo", &r));
    assert!(can(&p, Action::Publish, "client1/bar/baz", &r));
    assert!(!can(&p, Action::Publish, "client1/bar", &r));
    let d = p.evaluate(Action::Publish, &arns().topic("client1/bar"), &r);
    assert_eq!(p.statement(d.statement().unwrap()).unwrap().index, 1);
}

#[test]
fn old_documentation_thing_variable_is_not_a_variable() {
    // Older examples wrote ${iot:Thing.ThingName}; it is not a documented variable, so a
    // statement naming it never applies (here: the Allow grants nothing).
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Publish"],
          "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:Thing.ThingName}"]}]}"#);
    assert!(!can(&p, Action::Publish, "my/topic/t1", &thing("t1")));
    let e = p.explain(Action::Publish, &arns().topic("my/topic/t1"), &thing("t1"));
    assert_eq!(
        e.statements[0].outcome,
        ferrocore_policy::Outcome::UnresolvedVariable {
            variable: "iot:Thing.ThingName".into()
        }
    );
}

#[test]
fn publish_and_receive_one_provisioning_topic() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Connect"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:client/client1"]},
          {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/iotmonitor/provisioning/987654321098"]},
          {"Effect": "Allow", "Action": ["iot:Subscribe"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/iotmonitor/provisioning/987654321098"]}
        ]}"#);
    let r = client("client1");
    let t = "iotmonitor/provisioning/987654321098";
    assert!(can(&p, Action::Publish, t, &r));
    assert!(can(&p, Action::Receive, t, &r));
    assert!(can(&p, Action::Subscribe, t, &r));
    assert!(!can(&p, Action::RetainPublish, t, &r));
}

#[test]
fn receive_everything_but_a_restricted_topic_with_not_resource() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": "iot:Subscribe",
           "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/topic/*"},
          {"Effect": "Allow", "Action": "iot:Receive",
           "NotResource": "arn:aws:iot:us-east-1:123456789012:topic/topic/restricted"}
        ]}"#);
    let r = client("c");
    assert!(can(&p, Action::Subscribe, "topic/#", &r));
    assert!(can(&p, Action::Receive, "topic/open", &r));
    assert!(can(&p, Action::Receive, "topic/restricted/sub", &r));
    assert!(!can(&p, Action::Receive, "topic/restricted", &r));
}

#[test]
fn deny_receive_of_subtopics() {
    // Denying the topic filter does not stop a#-style subscribers; denying Receive does.
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Subscribe"],
           "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/topic/*"},
          {"Effect": "Allow", "Action": ["iot:Receive"],
           "Resource": "arn:aws:iot:us-east-1:123456789012:topic/topic/*"},
          {"Effect": "Deny", "Action": ["iot:Receive"],
           "Resource": "arn:aws:iot:us-east-1:123456789012:topic/topic/restricted/*"}
        ]}"#);
    let r = client("c");
    assert!(can(&p, Action::Subscribe, "topic/#", &r));
    assert!(can(&p, Action::Receive, "topic/x", &r));
    assert!(!can(&p, Action::Receive, "topic/restricted/x", &r));
}

#[test]
fn reserved_shadow_topics_are_ordinary_resources() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Publish"],
           "Resource": "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"},
          {"Effect": "Allow", "Action": ["iot:Subscribe"],
           "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"}
        ]}"#);
    let r = thing("lamp");
    assert!(can(
        &p,
        Action::Publish,
        "$aws/things/lamp/shadow/update",
        &r
    ));
    assert!(can(
        &p,
        Action::Subscribe,
        "$aws/things/lamp/shadow/update/accepted",
        &r
    ));
    assert!(!can(
        &p,
        Action::Publish,
        "$aws/things/other/shadow/update",
        &r
    ));
}

// ---- thing policy examples ---------------------------------------------------------------------

#[test]
fn thing_is_attached() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": ["*"],
          "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}}}]}"#);
    assert!(can(&p, Action::Connect, "t", &thing("t")));
    assert!(!can(&p, Action::Connect, "t", &client("t")));
}

#[test]
fn thing_type_and_attribute_conditions() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Publish"],
          "Resource": "arn:aws:iot:us-east-1:123456789012:topic/device/stats",
          "Condition": {
            "StringEquals": {"iot:Connection.Thing.Attributes[attributeName]": "attributeValue",
                             "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name"},
            "Bool": {"iot:Connection.Thing.IsAttached": "true"}}}]}"#);
    let good = Request::new().with_client_id("t").with_thing(
        ThingContext::new("t")
            .with_type("Thing_Type_Name")
            .with_attribute("attributeName", "attributeValue"),
    );
    assert!(can(&p, Action::Publish, "device/stats", &good));
    let wrong_type = Request::new().with_thing(
        ThingContext::new("t")
            .with_type("Other")
            .with_attribute("attributeName", "attributeValue"),
    );
    assert!(!can(&p, Action::Publish, "device/stats", &wrong_type));
    let no_attr = Request::new().with_thing(ThingContext::new("t").with_type("Thing_Type_Name"));
    assert!(!can(&p, Action::Publish, "device/stats", &no_attr));
}

#[test]
fn topic_from_thing_attribute() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Publish"],
          "Resource": "arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.Attributes[attributeName]}/*"}]}"#);
    let r =
        Request::new().with_thing(ThingContext::new("t").with_attribute("attributeName", "site-9"));
    assert!(can(&p, Action::Publish, "site-9/temp", &r));
    assert!(!can(&p, Action::Publish, "site-8/temp", &r));
    // Not attached to a thing: not resolved, access denied.
    assert!(!can(&p, Action::Publish, "site-9/temp", &client("t")));
}

// ---- certificate policy examples ---------------------------------------------------------------

fn cert_request(client_id: &str) -> Request {
    Request::new()
        .with_client_id(client_id)
        .with_certificate(CertificateContext {
            id: Some("c1f0ffee".into()),
            serial_number: Some("921285cbb7a5e086".into()),
            subject: DistinguishedName::default()
                .with(DnField::CommonName, "LightBulb Device Cert")
                .with(DnField::CommonName, "Bulb")
                .with(DnField::CommonName, "Administrator")
                .with(DnField::Organization, "Example Corp")
                .with(DnField::Organization, "AnyCompany"),
            ..Default::default()
        })
}

#[test]
fn certificate_id_and_common_name_topics() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [
          {"Effect": "Allow", "Action": ["iot:Publish"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:CertificateId}",
                        "arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}"]},
          {"Effect": "Allow", "Action": ["iot:Connect"],
           "Resource": ["arn:aws:iot:us-east-1:123456789012:client/client1",
                        "arn:aws:iot:us-east-1:123456789012:client/client2",
                        "arn:aws:iot:us-east-1:123456789012:client/client3"]}
        ]}"#);
    let r = cert_request("client2");
    assert!(can(&p, Action::Connect, "client2", &r));
    assert!(can(&p, Action::Publish, "c1f0ffee", &r));
    assert!(can(&p, Action::Publish, "LightBulb Device Cert", &r));
    assert!(!can(&p, Action::Publish, "Administrator", &r));
    assert!(!can(&p, Action::Publish, "c1f0ffee", &client("client2")));
}

#[test]
fn certificate_indexed_common_name() {
    // The documentation's `CommonName.2`, zero-based: the third common name.
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Publish"],
          "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/admin/*"],
          "Condition": {"StringEquals": {"iot:Certificate.Subject.CommonName.2": "Administrator"}}}]}"#);
    assert!(can(&p, Action::Publish, "admin/x", &cert_request("c")));
    let two_names = Request::new().with_certificate(CertificateContext {
        subject: DistinguishedName::default()
            .with(DnField::CommonName, "a")
            .with(DnField::CommonName, "Administrator"),
        ..Default::default()
    });
    assert!(!can(&p, Action::Publish, "admin/x", &two_names));
}

#[test]
fn certificate_any_common_name() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Publish"],
          "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/admin/${iot:Connection.Thing.ThingName}"],
          "Condition": {"ForAnyValue:StringEquals": {"iot:Certificate.Subject.CommonName.List": "Administrator"}}}]}"#);
    let r = cert_request("bulb").with_thing(ThingContext::new("bulb"));
    assert!(can(&p, Action::Publish, "admin/bulb", &r));
    let plain = Request::new()
        .with_thing(ThingContext::new("bulb"))
        .with_certificate(CertificateContext {
            subject: DistinguishedName::default().with(DnField::CommonName, "bulb"),
            ..Default::default()
        });
    assert!(!can(&p, Action::Publish, "admin/bulb", &plain));
}

#[test]
fn certificate_organization_list() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Publish"],
          "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:ClientId}"],
          "Condition": {"ForAllValues:StringEquals": {
            "iot:Certificate.Subject.Organization.List": ["Example Corp", "AnyCompany"]}}}]}"#);
    assert!(can(
        &p,
        Action::Publish,
        "my/topic/client1",
        &cert_request("client1")
    ));
    let other_org = Request::new()
        .with_client_id("client1")
        .with_certificate(CertificateContext {
            subject: DistinguishedName::default()
                .with(DnField::Organization, "Example Corp")
                .with(DnField::Organization, "Evil Inc"),
            ..Default::default()
        });
    assert!(!can(&p, Action::Publish, "my/topic/client1", &other_org));
}

// ---- source IP ----------------------------------------------------------------------------------

#[test]
fn source_ip_condition() {
    let p = set(r#"{
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
          "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}}]}"#);
    let from = |ip: &str| Request::new().with_source_ip(ip.parse().unwrap());
    assert!(can(&p, Action::Connect, "c", &from("203.0.113.77")));
    assert!(can(
        &p,
        Action::Connect,
        "c",
        &from("2001:db8:1234:5678::99")
    ));
    assert!(!can(&p, Action::Connect, "c", &from("198.51.100.1")));
    assert!(!can(&p, Action::Connect, "c", &Request::new()));
}
