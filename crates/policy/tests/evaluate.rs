//! Evaluation edge cases through the public API: deny over allow, NotAction / NotResource,
//! unresolvable variables (Deny included), policy language versions, IfExists, Null,
//! ForAllValues on empty sets, time, the Ferrocore extensions, explanations and errors.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ferrocore_policy::{
    Action, Arns, CompiledPolicy, Decision, Effect, ErrorKind, Outcome, PolicySet, Request,
    StatementId, ThingContext, parse,
};

fn arns() -> Arns {
    Arns::new("us-east-1", "123456789012")
}

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn set(statements: &str) -> PolicySet {
    PolicySet::parse([("p", doc(statements).as_str())]).unwrap()
}

fn publish(set: &PolicySet, topic: &str, req: &Request) -> Decision {
    set.evaluate(Action::Publish, &arns().topic(topic), req)
}

const ALLOW_ALL_PUBLISH: &str = r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}"#;

#[test]
fn deny_wins_over_allow_across_policies_and_reports_the_first_deny() {
    let allow = doc(ALLOW_ALL_PUBLISH);
    let deny = doc(
        r#"{"Sid":"A","Effect":"Allow","Action":"iot:*","Resource":"*"},
           {"Sid":"NoSecrets","Effect":"Deny","Action":"iot:Publish",
            "Resource":"arn:aws:iot:us-east-1:123456789012:topic/secret/*"}"#,
    );
    let s = PolicySet::parse([("allow", allow.as_str()), ("deny", deny.as_str())]).unwrap();
    let r = Request::new();
    let d = publish(&s, "secret/x", &r);
    assert_eq!(
        d,
        Decision::ExplicitDeny(StatementId {
            policy: 1,
            statement: 1
        })
    );
    assert_eq!(d.as_aws_str(), "EXPLICIT_DENY");
    let why = s.statement(d.statement().unwrap()).unwrap();
    assert_eq!(why.policy_name, "deny");
    assert_eq!(why.sid, Some("NoSecrets"));
    assert_eq!(why.effect, Effect::Deny);
    // Allowed: the first applicable Allow in policy order is reported.
    let d = publish(&s, "public/x", &r);
    assert_eq!(
        d,
        Decision::Allowed(StatementId {
            policy: 0,
            statement: 0
        })
    );
    assert_eq!(d.as_aws_str(), "ALLOWED");
    assert!(
        s.evaluate(Action::Subscribe, &arns().topic_filter("secret/#"), &r)
            .is_allowed()
    );
}

#[test]
fn nothing_applies_is_an_implicit_deny() {
    let r = Request::new();
    assert_eq!(
        publish(&PolicySet::default(), "t", &r),
        Decision::ImplicitDeny
    );
    let s = set(r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":"*"}"#);
    let d = publish(&s, "t", &r);
    assert_eq!(d, Decision::ImplicitDeny);
    assert_eq!(d.as_aws_str(), "IMPLICIT_DENY");
    assert_eq!(d.statement(), None);
}

#[test]
fn allow_all() {
    let s = PolicySet::allow_all("dev-allow-all");
    let r = Request::new();
    for a in Action::ALL {
        assert!(
            s.evaluate(a, "arn:aws:iot:r:1:anything/x", &r).is_allowed(),
            "{a}"
        );
    }
    assert!(
        s.evaluate(Action::ListRetainedMessages, "*", &r)
            .is_allowed()
    );
}

#[test]
fn actions_ignore_case_and_take_wildcards() {
    let r = Request::new();
    let s = set(r#"{"Effect":"Allow","Action":"IOT:publish","Resource":"*"}"#);
    assert!(publish(&s, "t", &r).is_allowed());
    let s = set(r#"{"Effect":"Allow","Action":"iot:Re*","Resource":"*"}"#);
    assert!(s.evaluate(Action::Receive, "*", &r).is_allowed());
    assert!(s.evaluate(Action::RetainPublish, "*", &r).is_allowed());
    assert!(!s.evaluate(Action::Publish, "*", &r).is_allowed());
    let s = set(r#"{"Effect":"Allow","Action":"iot:?ublish","Resource":"*"}"#);
    assert!(s.evaluate(Action::Publish, "*", &r).is_allowed());
    // Jobs: both the current and the older action names.
    for name in [
        "iotjobsdata:*",
        "iotjobsdata:DescribeJobExecution",
        "iot:DescribeJobExecution",
        "*",
    ] {
        let s = set(&format!(
            r#"{{"Effect":"Allow","Action":"{name}","Resource":"*"}}"#
        ));
        assert!(
            s.evaluate(Action::DescribeJobExecution, &arns().thing("t"), &r)
                .is_allowed(),
            "{name}"
        );
    }
    let s = set(r#"{"Effect":"Allow","Action":"iot:*","Resource":"*"}"#);
    assert!(
        s.evaluate(Action::DescribeJobExecution, &arns().thing("t"), &r)
            .is_allowed()
    );
    // Other services' actions are valid and grant nothing here.
    let s = set(
        r#"{"Effect":"Allow","Action":["greengrass:*","iotevents:BatchPutMessage"],"Resource":"*"}"#,
    );
    assert!(
        Action::ALL
            .iter()
            .all(|&a| !s.evaluate(a, "*", &r).is_allowed())
    );
}

#[test]
fn not_action() {
    let r = Request::new();
    let s =
        set(r#"{"Effect":"Allow","NotAction":["iot:Publish","iot:RetainPublish"],"Resource":"*"}"#);
    assert!(!publish(&s, "t", &r).is_allowed());
    assert!(!s.evaluate(Action::RetainPublish, "*", &r).is_allowed());
    assert!(s.evaluate(Action::Subscribe, "*", &r).is_allowed());
    assert!(s.evaluate(Action::Connect, "*", &r).is_allowed());
    // Deny everything but Connect.
    let s = set(r#"{"Effect":"Allow","Action":"*","Resource":"*"},
           {"Effect":"Deny","NotAction":"iot:Conn*","Resource":"*"}"#);
    assert!(s.evaluate(Action::Connect, "*", &r).is_allowed());
    assert!(!s.evaluate(Action::Receive, "*", &r).is_allowed());
}

#[test]
fn not_resource() {
    let r = Request::new().with_client_id("c1");
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish",
            "NotResource":["arn:aws:iot:us-east-1:123456789012:topic/admin/*",
                           "arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/private"]}"#);
    assert!(publish(&s, "data", &r).is_allowed());
    assert!(!publish(&s, "admin/x", &r).is_allowed());
    assert!(!publish(&s, "c1/private", &r).is_allowed());
    assert!(publish(&s, "c2/private", &r).is_allowed());
    // With the variable unresolvable the whole statement does not apply.
    assert!(!publish(&s, "data", &Request::new()).is_allowed());
}

#[test]
fn unresolvable_variable_switches_off_a_deny() {
    // The documented danger: a Deny naming a thing variable does nothing without a thing.
    let s = set(&format!(
        r#"{ALLOW_ALL_PUBLISH},
           {{"Sid":"NoAdmin","Effect":"Deny","Action":"iot:Publish",
             "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${{iot:Connection.Thing.ThingName}}/admin"}}"#
    ));
    let with_thing = Request::new().with_thing(ThingContext::new("t1"));
    assert!(matches!(
        publish(&s, "t1/admin", &with_thing),
        Decision::ExplicitDeny(_)
    ));
    let without = Request::new().with_client_id("t1");
    assert!(publish(&s, "t1/admin", &without).is_allowed());
    let e = s.explain(Action::Publish, &arns().topic("t1/admin"), &without);
    assert_eq!(
        e.statements[1].outcome,
        Outcome::UnresolvedVariable {
            variable: "iot:Connection.Thing.ThingName".into()
        }
    );
    // Even a variable only in a condition switches the whole statement off.
    let s = set(&format!(
        r#"{ALLOW_ALL_PUBLISH},
           {{"Effect":"Deny","Action":"iot:Publish","Resource":"*",
             "Condition":{{"StringNotEquals":{{"iot:ClientId":"${{iot:Connection.Thing.ThingName}}"}}}}}}"#
    ));
    assert!(publish(&s, "x", &without).is_allowed());
    assert!(
        !publish(
            &s,
            "x",
            &Request::new()
                .with_client_id("a")
                .with_thing(ThingContext::new("b"))
        )
        .is_allowed()
    );
    assert!(
        publish(
            &s,
            "x",
            &Request::new()
                .with_client_id("b")
                .with_thing(ThingContext::new("b"))
        )
        .is_allowed()
    );
}

#[test]
fn unresolvable_variable_switches_off_the_whole_allow() {
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish",
            "Resource":["arn:aws:iot:us-east-1:123456789012:topic/public",
                        "arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}"]}"#);
    assert!(
        publish(
            &s,
            "public",
            &Request::new().with_thing(ThingContext::new("t"))
        )
        .is_allowed()
    );
    assert!(!publish(&s, "public", &Request::new()).is_allowed());
}

#[test]
fn policy_language_versions() {
    let r = Request::new().with_client_id("c1");
    let body = r#""Statement":{"Effect":"Allow","Action":"iot:Publish",
        "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}${*}"}"#;
    let v2012 = format!(r#"{{"Version":"2012-10-17",{body}}}"#);
    let v2008 = format!(r#"{{"Version":"2008-10-17",{body}}}"#);
    let none = format!("{{{body}}}");
    let s = PolicySet::parse([("p", v2012.as_str())]).unwrap();
    assert!(publish(&s, "c1*", &r).is_allowed());
    assert!(!publish(&s, "c1x", &r).is_allowed());
    for text in [&v2008, &none] {
        let s = PolicySet::parse([("p", text.as_str())]).unwrap();
        assert!(!publish(&s, "c1*", &r).is_allowed());
        // No variables: "${*}" is the characters '$' and '{', a wildcard, and '}'.
        assert!(publish(&s, "${iot:ClientId}${x}", &r).is_allowed());
    }
}

#[test]
fn if_exists_and_null() {
    let r = Request::new().with_client_id("c");
    // A Deny with a negated IfExists still denies when the key is missing.
    let s = set(&format!(
        r#"{ALLOW_ALL_PUBLISH},
           {{"Effect":"Deny","Action":"iot:Publish","Resource":"*",
             "Condition":{{"StringNotEqualsIfExists":{{"iot:Connection.Thing.ThingTypeName":"sensor"}}}}}}"#
    ));
    assert!(!publish(&s, "t", &r).is_allowed());
    let typed = |t: &str| Request::new().with_thing(ThingContext::new("x").with_type(t));
    assert!(publish(&s, "t", &typed("sensor")).is_allowed());
    assert!(!publish(&s, "t", &typed("lamp")).is_allowed());
    // Allow only clients without a thing.
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"*",
            "Condition":{"Null":{"iot:Connection.Thing.ThingName":"true"}}}"#);
    assert!(publish(&s, "t", &r).is_allowed());
    assert!(!publish(&s, "t", &typed("x")).is_allowed());
    // Guarding a thing-variable Deny: IfExists keeps it meaningful without a thing.
    let s = set(&format!(
        r#"{ALLOW_ALL_PUBLISH},
           {{"Effect":"Deny","Action":"iot:Publish","Resource":"*",
             "Condition":{{"StringEqualsIfExists":{{"iot:Connection.Thing.Attributes[blocked]":"yes"}}}}}}"#
    ));
    let blocked =
        Request::new().with_thing(ThingContext::new("x").with_attribute("blocked", "yes"));
    assert!(!publish(&s, "t", &blocked).is_allowed());
    // Note the IfExists Deny applies when the key is absent: a blunt instrument.
    assert!(!publish(&s, "t", &r).is_allowed());
}

#[test]
fn for_all_values_on_an_absent_key_is_vacuously_true() {
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["LastWill"]}}}"#);
    // Publish has no connect attributes: the condition holds.
    assert!(publish(&s, "t", &Request::new()).is_allowed());
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"*",
            "Condition":{"ForAnyValue:StringEquals":{"iot:ConnectAttributes":["LastWill"]}}}"#);
    assert!(!publish(&s, "t", &Request::new()).is_allowed());
}

#[test]
fn time_conditions_and_uses_time() {
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"*",
            "Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},
                         "NumericGreaterThanEquals":{"aws:EpochTime":1700000000}}}"#);
    assert!(s.uses_time());
    let mut r = Request::new();
    // No time set: the keys are absent, the Allow does not apply.
    assert!(!publish(&s, "t", &r).is_allowed());
    r.set_time_ms(1_800_000_000_000);
    assert!(publish(&s, "t", &r).is_allowed());
    r.set_time_ms(1_900_000_000_000);
    assert!(!publish(&s, "t", &r).is_allowed());
    r.set_time_ms(1_600_000_000_000);
    assert!(!publish(&s, "t", &r).is_allowed());
    assert!(!set(ALLOW_ALL_PUBLISH).uses_time());
    // A time variable counts too.
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish",
            "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${aws:EpochTime}"}"#);
    assert!(s.uses_time());
    assert!(publish(&s, "1600000000", &r).is_allowed());
}

#[test]
fn ferrocore_principal_claims_and_context() {
    let s = set(r#"{"Effect":"Allow","Action":"iot:Publish",
            "Resource":"arn:aws:iot:us-east-1:123456789012:topic/users/${ferrocore:Claims.sub}/*"},
           {"Effect":"Allow","Action":"iot:Subscribe",
            "Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/admin/*",
            "Condition":{"ForAnyValue:StringEquals":{"ferrocore:Claims.groups":"admins"}}},
           {"Effect":"Allow","Action":"iot:Connect",
            "Resource":"arn:aws:iot:us-east-1:123456789012:client/${ferrocore:PrincipalId}-*",
            "Condition":{"StringEquals":{"ferrocore:Context.site":"plant-7"}}}"#);
    let r = Request::new()
        .with_principal_id("alice")
        .with_claim("sub", ["u-42"])
        .with_claim("groups", ["ops", "admins"])
        .with_context("site", "plant-7");
    assert!(publish(&s, "users/u-42/x", &r).is_allowed());
    assert!(!publish(&s, "users/u-43/x", &r).is_allowed());
    assert!(
        s.evaluate(Action::Subscribe, &arns().topic_filter("admin/#"), &r)
            .is_allowed()
    );
    assert!(
        s.evaluate(Action::Connect, &arns().client("alice-1"), &r)
            .is_allowed()
    );
    let outsider = Request::new()
        .with_principal_id("alice")
        .with_claim("groups", ["ops"]);
    assert!(
        !s.evaluate(
            Action::Subscribe,
            &arns().topic_filter("admin/#"),
            &outsider
        )
        .is_allowed()
    );
    assert!(
        !s.evaluate(Action::Connect, &arns().client("alice-1"), &outsider)
            .is_allowed()
    );
    // A claim value with an MQTT wildcard is not substituted.
    let sneaky = Request::new().with_claim("sub", ["#"]);
    assert!(!publish(&s, "users/#/x", &sneaky).is_allowed());
}

#[test]
fn explain_agrees_with_evaluate_and_says_why() {
    let s = set(
        r#"{"Sid":"conn","Effect":"Allow","Action":"iot:Connect","Resource":"*"},
           {"Sid":"pub","Effect":"Allow","Action":"iot:Publish",
             "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*",
             "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
           {"Sid":"nope","Effect":"Deny","Action":"iot:Publish",
             "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/admin"}"#,
    );
    let r = Request::new()
        .with_client_id("c")
        .with_source_ip("10.1.2.3".parse().unwrap());
    let e = s.explain(Action::Publish, &arns().topic("c/x"), &r);
    assert_eq!(e.decision, publish(&s, "c/x", &r));
    assert!(e.decision.is_allowed());
    let outcomes: Vec<_> = e.statements.iter().map(|t| t.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::ActionNotCovered,
            Outcome::Applies,
            Outcome::ResourceNotCovered
        ]
    );
    assert_eq!(e.statements[1].sid.as_deref(), Some("pub"));
    assert_eq!(e.statements[1].policy_name, "p");
    let far = Request::new()
        .with_client_id("c")
        .with_source_ip("192.0.2.1".parse().unwrap());
    let e = s.explain(Action::Publish, &arns().topic("c/x"), &far);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(
        e.statements[1].outcome,
        Outcome::ConditionNotMet {
            condition: "IpAddress aws:SourceIp".into()
        }
    );
    let e = s.explain(Action::Publish, &arns().topic("c/admin"), &r);
    assert!(matches!(e.decision, Decision::ExplicitDeny(id) if id.statement == 2));
    assert_eq!(e.decision, publish(&s, "c/admin", &r));
    let why = s.statement(e.decision.statement().unwrap()).unwrap();
    assert_eq!(
        why.to_string(),
        "policy \"p\" statement 2 (Sid \"nope\"), Deny"
    );
}

#[test]
fn sets_share_compiled_policies() {
    let a = Arc::new(CompiledPolicy::parse("a", &doc(ALLOW_ALL_PUBLISH)).unwrap());
    assert_eq!(a.name(), "a");
    assert_eq!(a.statement_count(), 1);
    let s1 = PolicySet::new([a.clone()]);
    let s2 = PolicySet::new([a.clone(), a.clone()]);
    assert_eq!(Arc::strong_count(&a), 4);
    assert!(publish(&s1, "t", &Request::new()).is_allowed());
    assert_eq!(s2.policies().len(), 2);
    let d = parse(&doc(ALLOW_ALL_PUBLISH)).unwrap();
    let s3 = PolicySet::compile([("x", &d), ("y", &d)]).unwrap();
    assert_eq!(s3.policies()[1].name(), "y");
}

#[test]
fn compile_errors_name_the_place() {
    let e = |statements: &str| parse(&doc(statements)).unwrap_err();
    let err = e(r#"{"Effect":"Allow","Action":"Publish","Resource":"*"}"#);
    assert_eq!(err.path, "Statement[0].Action[0]");
    assert_eq!(err.kind, ErrorKind::InvalidAction("Publish".into()));
    let err = e(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":["*","topic/x"]}"#);
    assert_eq!(err.path, "Statement[0].Resource[1]");
    assert_eq!(err.kind, ErrorKind::InvalidResource("topic/x".into()));
    assert_eq!(
        err.to_string(),
        "Policy document is Malformed: Statement[0].Resource[1]: resource \"topic/x\" is not \"*\" or an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)"
    );
    let err = e(r#"{"Effect":"Allow","Action":"iot:Publish","NotResource":"arn:aws:iot:r:1"}"#);
    assert_eq!(err.path, "Statement[0].NotResource[0]");
    let err =
        e(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/${}"}"#);
    assert!(matches!(err.kind, ErrorKind::InvalidVariable { .. }));
    let err = e(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/${iot:ClientId, 'x'}"}"#,
    );
    assert!(err.to_string().contains("default values"), "{err}");
    let err = e(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"*",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}}"#);
    assert_eq!(err.path, "Statement[0].Condition.IpAddress.aws:SourceIp");
    assert!(matches!(err.kind, ErrorKind::InvalidConditionValue { .. }));
    for ok in [
        "*",
        "**",
        "arn:aws:iot:*:*:*",
        "arn:aws-cn:iot:cn-north-1:1:topic/x",
        "arn:::::",
    ] {
        assert!(
            parse(&doc(&format!(
                r#"{{"Effect":"Allow","Action":"iot:*","Resource":"{ok}"}}"#
            )))
            .is_ok(),
            "{ok}"
        );
    }
    for bad in [
        "",
        "arn:aws:iot:r:topic/x",
        "*x",
        "iot:*",
        "${iot:ClientId}",
    ] {
        assert!(
            parse(&doc(&format!(
                r#"{{"Effect":"Allow","Action":"iot:*","Resource":"{bad}"}}"#
            )))
            .is_err(),
            "{bad}"
        );
    }
    for bad in [
        "",
        "iot",
        "iot:",
        ":Publish",
        "io t:Publish",
        "iot:Pub lish",
        "iot:a:b",
        "*:Publish",
    ] {
        assert!(
            parse(&doc(&format!(
                r#"{{"Effect":"Allow","Action":"{bad}","Resource":"*"}}"#
            )))
            .is_err(),
            "{bad}"
        );
    }
}

#[test]
fn request_is_reusable_and_only_connect_attributes_change() {
    let s = set(r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":[]}}},
           {"Effect":"Allow","Action":"iot:Publish","Resource":"*",
            "Condition":{"Null":{"iot:ConnectAttributes":"true"}}}"#);
    let mut r = Request::new().with_client_id("c");
    r.set_connect(Some(ferrocore_policy::ConnectContext {
        persistent: true,
        last_will_topic: None,
    }));
    assert!(
        !s.evaluate(Action::Connect, &arns().client("c"), &r)
            .is_allowed()
    );
    r.set_connect(None);
    assert!(publish(&s, "t", &r).is_allowed());
}
