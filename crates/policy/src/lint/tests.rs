#![allow(clippy::unwrap_used)]

use super::*;

const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

fn doc_of(statements: &str) -> String {
    format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#)
}

fn run(text: &str, principals: Principals) -> Vec<Finding> {
    lint_text(text, &LintOptions { principals }).unwrap()
}

/// The codes found in `statements` (a 2012-10-17 document), for devices with certificates.
fn codes(statements: &str) -> Vec<&'static str> {
    codes_for(statements, Principals::Certificates)
}

fn codes_for(statements: &str, principals: Principals) -> Vec<&'static str> {
    run(&doc_of(statements), principals)
        .into_iter()
        .map(|f| f.code)
        .collect()
}

fn only(statements: &str) -> Finding {
    let mut f = run(&doc_of(statements), Principals::Certificates);
    assert_eq!(f.len(), 1, "{f:#?}");
    f.remove(0)
}

fn allow(action: &str, resource: &str) -> String {
    format!(r#"{{"Effect": "Allow", "Action": "{action}", "Resource": "{ARN}:{resource}"}}"#)
}

fn deny(action: &str, resource: &str) -> String {
    format!(r#"{{"Effect": "Deny", "Action": "{action}", "Resource": "{ARN}:{resource}"}}"#)
}

// ---- AWS's documented example policies ----------------------------------------------------------

#[test]
fn aws_examples_that_are_clean() {
    let clean = [
        // Basic policy variables.
        format!(
            "{},{}",
            allow("iot:Connect", "client/${iot:ClientId}"),
            allow("iot:Publish", "topic/my/topic/${iot:ClientId}")
        ),
        // Deny some client ids, allow thing names.
        format!(
            r#"{{"Effect": "Deny", "Action": ["iot:Connect"],
                "Resource": ["{ARN}:client/client1", "{ARN}:client/client2"]}},
               {}"#,
            allow("iot:Connect", "client/${iot:Connection.Thing.ThingName}")
        ),
        // One provisioning topic.
        format!(
            r#"{},{{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
                "Resource": ["{ARN}:topic/iotmonitor/provisioning/987654321098"]}},{}"#,
            allow("iot:Connect", "client/client1"),
            allow(
                "iot:Subscribe",
                "topicfilter/iotmonitor/provisioning/987654321098"
            )
        ),
        // Reserved shadow topics of the device's own thing.
        format!(
            "{},{}",
            allow(
                "iot:Publish",
                "topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"
            ),
            allow(
                "iot:Subscribe",
                "topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"
            )
        ),
        // Connect anywhere, but only as an attached thing.
        r#"{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": ["*"],
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}}}"#
            .to_owned(),
        // Deny Receive of a subtree (the right way).
        format!(
            "{},{},{}",
            allow("iot:Subscribe", "topicfilter/topic/*"),
            allow("iot:Receive", "topic/topic/*"),
            deny("iot:Receive", "topic/topic/restricted/*")
        ),
        // Certificate policy variables.
        format!(
            "{},{}",
            allow("iot:Publish", "topic/${iot:CertificateId}"),
            allow(
                "iot:Publish",
                "topic/${iot:Certificate.Subject.CommonName}/*"
            )
        ),
        // ConnectAttributes: only clean, will-less connects.
        format!(
            r#"{{"Effect": "Allow", "Action": "iot:Connect", "Resource": "{ARN}:client/${{iot:Connection.Thing.ThingName}}",
                "Condition": {{"ForAllValues:StringEquals": {{"iot:ConnectAttributes": []}}}}}}"#
        ),
        // Thing attributes in a condition.
        format!(
            r#"{{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{ARN}:topic/floors/*",
                "Condition": {{"StringEquals": {{"iot:Connection.Thing.Attributes[floor]": "2"}}}}}}"#
        ),
        // Source address.
        format!(
            r#"{{"Effect": "Allow", "Action": "iot:Connect", "Resource": "{ARN}:client/${{iot:ClientId}}",
                "Condition": {{"IpAddress": {{"aws:SourceIp": "203.0.113.0/24"}}}}}}"#
        ),
    ];
    for statements in &clean {
        assert_eq!(codes(statements), Vec::<&str>::new(), "{statements}");
    }
}

#[test]
fn readme_least_privilege_policy_is_clean() {
    let thing = "${iot:Connection.Thing.ThingName}";
    let s = [
        allow("iot:Connect", &format!("client/{thing}")),
        allow("iot:Publish", &format!("topic/sensors/{thing}/*")),
        allow("iot:Subscribe", &format!("topicfilter/commands/{thing}/*")),
        allow("iot:Receive", &format!("topic/commands/{thing}/*")),
    ]
    .join(",");
    assert_eq!(codes(&s), Vec::<&str>::new());
}

#[test]
fn aws_example_receive_with_not_resource_is_flagged() {
    let f = only(&format!(
        r#"{{"Effect": "Allow", "Action": "iot:Receive", "NotResource": "{ARN}:topic/topic/restricted"}}"#
    ));
    assert_eq!(
        (f.code, f.severity),
        ("not-resource-allow", Severity::Warning)
    );
    assert!(f.message.contains("every resource except"), "{}", f.message);
}

#[test]
fn aws_example_client_id_in_a_topic_filter_is_flagged_unless_connect_is_restricted() {
    let sub = allow("iot:Subscribe", "topicfilter/my/${iot:ClientId}/topic");
    let f = only(&sub);
    assert_eq!(f.code, "client-id-filter");
    assert!(f.message.contains("\"+\""), "{}", f.message);
    // Connecting as any client id (the common pattern) does not help.
    assert_eq!(
        codes(&format!(
            "{},{sub}",
            allow("iot:Connect", "client/${iot:ClientId}")
        )),
        ["client-id-filter"]
    );
    assert_eq!(
        codes(&format!(
            "{},{sub}",
            allow("iot:Connect", "client/sensor-*")
        )),
        ["client-id-filter"]
    );
    // The documented remedy: only known client ids (or thing names) may connect.
    assert!(
        codes(&format!(
            "{},{sub}",
            allow("iot:Connect", "client/clientid1")
        ))
        .is_empty()
    );
    assert!(
        codes(&format!(
            "{},{sub}",
            allow("iot:Connect", "client/${iot:Connection.Thing.ThingName}")
        ))
        .is_empty()
    );
}

#[test]
fn aws_old_thing_variable_is_unknown_with_a_suggestion() {
    let f = only(&allow(
        "iot:Publish",
        "topic/my/topic/${iot:Thing.ThingName}",
    ));
    assert_eq!((f.code, f.severity), ("unknown-variable", Severity::Error));
    assert!(
        f.message
            .contains("did you mean ${iot:Connection.Thing.ThingName}?"),
        "{}",
        f.message
    );
    let f = only(&allow(
        "iot:Publish",
        "topic/${iot:Connection.Thing.Attributes.floor}",
    ));
    assert!(
        f.message.contains("iot:Connection.Thing.Attributes[floor]"),
        "{}",
        f.message
    );
}

// ---- broad statements ---------------------------------------------------------------------------

#[test]
fn allow_all() {
    for s in [
        r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}"#.to_owned(),
        r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#.to_owned(),
        allow("iot:*", "*"),
        r#"{"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive"], "Resource": "arn:aws:iot:*:*:*"}"#
            .to_owned(),
    ] {
        let f = only(&s);
        assert_eq!((f.code, f.severity), ("allow-all", Severity::Error), "{s}");
    }
    // Narrowed by a condition: a warning.
    let f = only(
        r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}"#,
    );
    assert_eq!((f.code, f.severity), ("allow-all", Severity::Warning));
    // A Deny of everything is fine.
    assert!(codes(r#"{"Effect": "Deny", "Action": "iot:*", "Resource": "*"}"#).is_empty());
}

#[test]
fn broad_resources_per_action() {
    assert_eq!(codes(&allow("iot:Connect", "client/*")), ["broad-connect"]);
    assert_eq!(codes(&allow("iot:Publish", "topic/*")), ["broad-topic"]);
    assert_eq!(codes(&allow("iot:Receive", "*")), ["broad-topic"]);
    assert_eq!(
        codes(&allow("iot:Subscribe", "topicfilter/#")),
        ["broad-subscribe"]
    );
    assert_eq!(
        codes(&allow("iot:Subscribe", "topicfilter/*")),
        ["broad-subscribe"]
    );
    assert_eq!(
        codes(&allow("iot:UpdateThingShadow", "thing/*")),
        ["broad-thing"]
    );
    // Narrower ones are not.
    for s in [
        allow("iot:Connect", "client/sensor-*"),
        allow("iot:Publish", "topic/sensors/*"),
        allow("iot:Subscribe", "topicfilter/sensors/#"),
        allow("iot:Subscribe", "topicfilter/+/status"),
        allow(
            "iot:UpdateThingShadow",
            "thing/${iot:Connection.Thing.ThingName}",
        ),
    ] {
        assert!(codes(&s).is_empty(), "{s}");
    }
    // An action wildcard on narrow resources: information only.
    let f = only(&allow("iot:*", "topic/sensors/*"));
    assert_eq!((f.code, f.severity), ("broad-action", Severity::Info));
    assert!(f.message.contains("iot:RetainPublish"), "{}", f.message);
}

#[test]
fn not_action_with_allow() {
    let f = only(
        r#"{"Effect": "Allow", "NotAction": "iot:Connect", "Resource": "arn:aws:iot:us-east-1:123456789012:topic/a"}"#,
    );
    assert_eq!(f.code, "not-action-allow");
    assert!(f.message.contains("iot:Publish"), "{}", f.message);
    // NotAction / NotResource with Deny are fine.
    assert!(
        codes(&format!(
            r#"{{"Effect": "Deny", "NotAction": "iot:Connect", "NotResource": "{ARN}:topic/a"}}"#
        ))
        .is_empty()
    );
}

// ---- variables ----------------------------------------------------------------------------------

#[test]
fn variables_in_a_2008_document_are_literal() {
    for version in [r#""Version": "2008-10-17","#, ""] {
        let text = format!(
            r#"{{{version} "Statement": [{}]}}"#,
            allow("iot:Publish", "topic/${iot:ClientId}/x")
        );
        let f = run(&text, Principals::Certificates);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            (f[0].code, f[0].severity),
            ("literal-variable", Severity::Error)
        );
        assert!(f[0].message.contains("${iot:ClientId}"), "{}", f[0].message);
        assert!(f[0].message.contains("2012-10-17"), "{}", f[0].message);
    }
    // Without ${...} a 2008 document is fine.
    let text = format!(
        r#"{{"Version": "2008-10-17", "Statement": [{}]}}"#,
        allow("iot:Publish", "topic/x")
    );
    assert!(run(&text, Principals::Certificates).is_empty());
}

#[test]
fn multi_valued_variables_are_never_substituted() {
    let f = only(&allow(
        "iot:Publish",
        "topic/${iot:Certificate.Subject.Organization.List}",
    ));
    assert_eq!(
        (f.code, f.severity),
        ("multi-valued-variable", Severity::Error)
    );
    assert!(f.message.contains("ForAnyValue"), "{}", f.message);
}

#[test]
fn variables_the_principals_never_have() {
    let thing = allow("iot:Publish", "topic/${iot:Connection.Thing.ThingName}/x");
    assert!(codes(&thing).is_empty());
    assert_eq!(codes_for(&thing, Principals::Anonymous), ["never-resolves"]);
    assert_eq!(
        codes_for(&thing, Principals::Authorizer),
        ["never-resolves"]
    );
    let claim = allow("iot:Publish", "topic/${ferrocore:Claims.sub}/x");
    assert_eq!(codes(&claim), ["never-resolves"]);
    assert!(codes_for(&claim, Principals::Authorizer).is_empty());
    assert!(codes_for(&claim, Principals::Any).is_empty());
    let client = allow("iot:Publish", "topic/${iot:ClientId}/x");
    assert!(codes_for(&client, Principals::Anonymous).is_empty());
    // A condition key they never have.
    let keyed = format!(
        r#"{{"Effect": "Allow", "Action": "iot:Connect", "Resource": "{ARN}:client/a",
            "Condition": {{"StringEquals": {{"iot:Certificate.Subject.Country": "DE"}}}}}}"#
    );
    assert!(codes(&keyed).is_empty());
    let f = run(&doc_of(&keyed), Principals::Anonymous);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].code, "never-resolves");
    assert!(f[0].message.contains("never holds"), "{}", f[0].message);
}

#[test]
fn client_id_over_https_only_actions() {
    let f = only(&allow("iot:GetThingShadow", "thing/${iot:ClientId}"));
    assert_eq!(f.code, "client-id-over-http");
    assert!(f.message.contains("iot:GetThingShadow"), "{}", f.message);
}

#[test]
fn deny_with_a_variable_that_may_be_missing() {
    let d = deny(
        "iot:Publish",
        "topic/${iot:Connection.Thing.ThingName}/admin",
    );
    let f = only(&d);
    assert_eq!((f.code, f.severity), ("deny-variable", Severity::Warning));
    assert!(f.message.contains("denies nothing"), "{}", f.message);
    assert!(f.message.contains("\"Null\""), "{}", f.message);
    // Guarded by a Deny for the missing case: fine.
    let guard = r#"{"Effect": "Deny", "Action": "iot:*", "Resource": "*",
        "Condition": {"Null": {"iot:Connection.Thing.ThingName": "true"}}}"#;
    assert!(codes(&format!("{d},{guard}")).is_empty());
    let attached = r#"{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*",
        "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "false"}}}"#;
    assert!(codes(&format!("{d},{attached}")).is_empty());
    // A guard for other actions does not count.
    let narrow = r#"{"Effect": "Deny", "Action": "iot:Connect", "Resource": "*",
        "Condition": {"Null": {"iot:Connection.Thing.ThingName": "true"}}}"#;
    assert_eq!(codes(&format!("{d},{narrow}")), ["deny-variable"]);
    // The client id is always there for MQTT-only actions, not for Publish (HTTPS has none).
    assert!(codes(&deny("iot:Subscribe", "topicfilter/${iot:ClientId}/x")).is_empty());
    assert_eq!(
        codes(&deny("iot:Publish", "topic/${iot:ClientId}/admin")),
        ["deny-variable"]
    );
    // Source address and certificate id always have a value for certificates.
    assert!(codes(&deny("iot:Publish", "topic/${iot:CertificateId}/admin")).is_empty());
    // A variable in a Deny's condition value counts too.
    let cond = format!(
        r#"{{"Effect": "Deny", "Action": "iot:Publish", "Resource": "{ARN}:topic/x",
            "Condition": {{"StringNotEquals": {{"iot:ClientId": "${{iot:Connection.Thing.ThingName}}"}}}}}}"#
    );
    assert_eq!(codes(&cond), ["deny-variable"]);
}

// ---- conditions, actions, kinds -----------------------------------------------------------------

#[test]
fn unknown_condition_keys() {
    let c = |op: &str| {
        format!(
            r#"{{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{ARN}:topic/x",
                "Condition": {{"{op}": {{"aws:username": "bob"}}}}}}"#
        )
    };
    let f = only(&c("StringEquals"));
    assert_eq!(f.code, "unknown-condition-key");
    assert!(f.message.contains("never holds"), "{}", f.message);
    let f = only(&c("StringNotEquals"));
    assert!(f.message.contains("always holds"), "{}", f.message);
    let f = only(&c("StringEqualsIfExists"));
    assert!(f.message.contains("always holds"), "{}", f.message);
}

#[test]
fn connect_only_keys_elsewhere() {
    let f = only(&format!(
        r#"{{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{ARN}:topic/x",
            "Condition": {{"ArnEquals": {{"iot:LastWillTopic": "{ARN}:topic/will"}}}}}}"#
    ));
    assert_eq!(f.code, "connect-only-key");
}

#[test]
fn unknown_actions() {
    let f = only(&allow("iot:Publsh", "topic/x"));
    assert_eq!(f.code, "unknown-action");
    assert!(
        f.message.contains("did you mean iot:Publish?"),
        "{}",
        f.message
    );
    let f = only(&allow("iot:CreateThing", "topic/x"));
    assert!(f.message.contains("control-plane"), "{}", f.message);
    // Case does not matter in action names.
    assert!(codes(&allow("IOT:publish", "topic/x")).is_empty());
}

#[test]
fn resource_kind_mismatch() {
    let f = only(&allow("iot:Subscribe", "topic/a/b"));
    assert_eq!(f.code, "resource-kind-mismatch");
    assert!(f.message.contains("topicfilter"), "{}", f.message);
    assert_eq!(
        codes(&allow("iot:Publish", "topicfilter/a/b")),
        ["resource-kind-mismatch"]
    );
    assert_eq!(
        codes(&allow("iot:Connect", "topic/a")),
        ["resource-kind-mismatch"]
    );
    // One of several resources of the right kind is enough; so is a wildcard.
    assert!(
        codes(&format!(
            r#"{{"Effect": "Allow", "Action": ["iot:Publish", "iot:Subscribe"],
                "Resource": ["{ARN}:topic/a", "{ARN}:topicfilter/a"]}}"#
        ))
        .is_empty()
    );
    assert!(codes(&allow("iot:Publish", "t*/sensors")).is_empty());
    assert_eq!(codes(&allow("iot:Publish", "topic*")), ["broad-topic"]);
}

#[test]
fn deny_subscribe_without_receive() {
    let d = deny("iot:Subscribe", "topicfilter/a/secret/*");
    let f = only(&d);
    assert_eq!(f.code, "deny-subscribe-only");
    assert!(f.message.contains("iot:Receive"), "{}", f.message);
    assert!(codes(&format!("{d},{}", deny("iot:Receive", "topic/a/secret/*"))).is_empty());
    // An exact filter is not widened by a broader one's deliveries... it still is, but
    // without a wildcard the author denied one filter on purpose.
    assert!(codes(&deny("iot:Subscribe", "topicfilter/a/secret")).is_empty());
}

#[test]
fn length_limit_is_a_warning_except_for_anonymous_policies() {
    let pad = "x".repeat(DEFAULT_MAX_CHARS);
    let text = doc_of(&allow("iot:Publish", &format!("topic/{pad}")));
    let f = run(&text, Principals::Certificates);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].code, f[0].statement), ("too-long", None));
    assert!(run(&text, Principals::Anonymous).is_empty());
    // Malformed documents are errors, not findings.
    assert!(lint_text("{}", &LintOptions::default()).is_err());
}

#[test]
fn findings_display_with_statement_and_sid() {
    let text = doc_of(&format!(
        r#"{},{{"Sid": "Everything", "Effect": "Allow", "Action": "iot:*", "Resource": "*"}}"#,
        allow("iot:Publish", "topic/a")
    ));
    let f = run(&text, Principals::Certificates);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].statement, Some(1));
    assert_eq!(f[0].sid.as_deref(), Some("Everything"));
    assert!(
        f[0].to_string().starts_with(
            "error[allow-all] Statement[1] (Sid \"Everything\"): Allow of iot:* on \"*\""
        ),
        "{}",
        f[0]
    );
    assert_eq!(Severity::from_name("WARNING"), Some(Severity::Warning));
    assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Error);
    assert_eq!(
        Principals::from_name("anonymous"),
        Some(Principals::Anonymous)
    );
}

#[test]
fn every_code_is_listed_documented_and_used() {
    let module = include_str!("../lint.rs");
    for code in CODES {
        assert!(
            module.contains(&format!("| `{code}` |")),
            "{code} is not in the table"
        );
        // Once in CODES, at least once where a finding is made.
        assert!(
            module.matches(&format!("\"{code}\"")).count() >= 2,
            "{code} is never used"
        );
    }
}

#[test]
fn mqtt_level_wildcards_are_not_variables() {
    assert!(
        codes(&format!(
            "{},{}",
            allow("iot:Publish", "topic/a/${ferrocore:+}/b/${ferrocore:#}"),
            deny("iot:Receive", "topic/a/${ferrocore:+}/secret")
        ))
        .is_empty()
    );
    assert_eq!(
        codes(&allow("iot:Subscribe", "topicfilter/${ferrocore:#}")),
        ["broad-subscribe"]
    );
}
