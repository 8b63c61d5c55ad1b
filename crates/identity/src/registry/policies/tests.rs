#![allow(clippy::unwrap_used)]

use ferrocore_policy::Action;

use super::*;
use crate::registry::tests::{ctx, run};
use crate::registry::{
    CreateThingGroupRequest, CreateThingRequest, RegisterCertificateWithoutCaRequest,
    RegistryRecord, ThingGroupMembershipRequest, WriteOp, add_thing_to_thing_group,
    attach_thing_principal, create_thing, create_thing_group, detach_thing_principal,
    register_certificate_without_ca,
};
use crate::testing::{TestCa, ten_years};

const NOW: i64 = 1_700_000_000;

/// An empty state whose ARNs are `ctx()`'s.
pub(crate) fn state() -> RegistryState {
    RegistryState {
        arns: ctx().arns,
        ..Default::default()
    }
}

pub(crate) fn allow(topic: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/{topic}"}}]}}"#
    )
}

/// Registers a certificate (without a CA) with subject CN `cn`; returns its id.
pub(crate) fn cert(s: &mut RegistryState, ca: &TestCa, cn: &str) -> String {
    let pem = ca.sign(cn, ten_years(NOW - 3600));
    let req = RegisterCertificateWithoutCaRequest {
        certificate_pem: Some(pem),
        status: Some("ACTIVE".into()),
    };
    run(s, |s, c| register_certificate_without_ca(s, c, req))
        .unwrap()
        .certificate_id
}

pub(crate) fn thing(s: &mut RegistryState, name: &str) {
    let req = CreateThingRequest {
        thing_name: name.into(),
        ..Default::default()
    };
    run(s, |s, c| create_thing(s, c, req)).unwrap();
}

pub(crate) fn group(s: &mut RegistryState, name: &str, parent: Option<&str>) {
    let req = CreateThingGroupRequest {
        thing_group_name: name.into(),
        parent_group_name: parent.map(str::to_owned),
        ..Default::default()
    };
    run(s, |s, c| create_thing_group(s, c, req)).unwrap();
}

pub(crate) fn join(s: &mut RegistryState, thing: &str, group: &str) {
    let req = ThingGroupMembershipRequest {
        thing_group_name: Some(group.into()),
        thing_name: Some(thing.into()),
        ..Default::default()
    };
    run(s, |s, c| add_thing_to_thing_group(s, c, req)).unwrap();
}

pub(crate) fn attach_thing(s: &mut RegistryState, thing: &str, cert: &str, exclusive: bool) {
    let principal = certificate_arn(&ctx().arns, cert);
    let kind = exclusive.then_some("EXCLUSIVE_THING");
    run(s, |s, c| {
        attach_thing_principal(s, c, thing, Some(&principal), kind)
    })
    .unwrap();
}

/// A policy record with the given versions (the last one default).
fn record(name: &str, docs: &[&str]) -> PolicyRecord {
    PolicyRecord {
        name: name.into(),
        versions: docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    i as u64 + 1,
                    PolicyVersionRecord {
                        document: (*d).to_owned(),
                        create_date_ms: 0,
                    },
                )
            })
            .collect(),
        default_version: docs.len() as u64,
        next_version: docs.len() as u64 + 1,
        creation_date_ms: 0,
        last_modified_date_ms: 0,
        generation_id: "g".into(),
    }
}

fn put_policy(s: &mut RegistryState, name: &str, docs: &[&str]) {
    s.apply(&[Change::Policy {
        name: name.into(),
        new: Some(record(name, docs)),
    }]);
}

fn attach(s: &mut RegistryState, policy: &str, target: &str, attached: bool) {
    s.apply(&[Change::PolicyAttachment {
        policy: policy.into(),
        target: target.into(),
        attached,
    }]);
}

fn cert_target(id: &str) -> String {
    certificate_arn(&ctx().arns, id)
}

fn group_target(name: &str) -> String {
    thing_group_arn(&ctx().arns, name)
}

fn names(p: &ConnectionPolicies) -> Vec<&str> {
    p.policies.iter().map(|(n, _, _)| n.as_str()).collect()
}

/// A state with certificate `c` (returned), thing `lamp` in group `child` of `root`, and
/// policies `on-cert`, `on-child`, `on-root` attached where their names say.
fn fleet() -> (RegistryState, String) {
    let mut s = state();
    let ca = TestCa::new("test CA", ten_years(NOW));
    let c = cert(&mut s, &ca, "lamp-cert");
    thing(&mut s, "lamp");
    group(&mut s, "root", None);
    group(&mut s, "child", Some("root"));
    join(&mut s, "lamp", "child");
    for (p, target) in [
        ("on-cert", cert_target(&c)),
        ("on-child", group_target("child")),
        ("on-root", group_target("root")),
    ] {
        put_policy(&mut s, p, &[&allow(p)]);
        attach(&mut s, p, &target, true);
    }
    (s, c)
}

#[test]
fn non_exclusive_thing_needs_the_client_id_to_be_its_name() {
    let (mut s, c) = fleet();
    attach_thing(&mut s, "lamp", &c, false);

    let p = s.connection_policies(&c, "lamp");
    assert_eq!(p.thing.as_ref().unwrap().name, "lamp");
    assert_eq!(names(&p), ["on-cert", "on-root", "on-child"]);
    assert_eq!(p.depends_on.thing.as_deref(), Some("lamp"));
    assert_eq!(p.depends_on.groups, ["root", "child"]);
    assert_eq!(p.depends_on.certificate_id, c);

    // Another client id: no thing, so no group policies.
    let p = s.connection_policies(&c, "lamp-2");
    assert!(p.thing.is_none());
    assert_eq!(names(&p), ["on-cert"]);
    assert!(p.depends_on.groups.is_empty());
}

#[test]
fn a_thing_named_like_the_client_but_not_attached_is_not_the_connections() {
    let (s, c) = fleet();
    let p = s.connection_policies(&c, "lamp");
    assert!(p.thing.is_none());
    assert_eq!(names(&p), ["on-cert"]);
}

#[test]
fn exclusive_thing_comes_from_the_certificate_whatever_the_client_id() {
    let (mut s, c) = fleet();
    attach_thing(&mut s, "lamp", &c, true);
    for client in ["lamp", "anything", ""] {
        let p = s.connection_policies(&c, client);
        assert_eq!(p.thing.as_ref().unwrap().name, "lamp", "{client}");
        assert_eq!(names(&p), ["on-cert", "on-root", "on-child"]);
    }
}

#[test]
fn non_exclusive_picks_the_thing_named_by_the_client_id_among_several() {
    let (mut s, c) = fleet();
    thing(&mut s, "other");
    attach_thing(&mut s, "lamp", &c, false);
    attach_thing(&mut s, "other", &c, false);
    assert_eq!(
        s.connection_policies(&c, "other").thing.unwrap().name,
        "other"
    );
    assert_eq!(
        s.connection_policies(&c, "lamp").thing.unwrap().name,
        "lamp"
    );
    // After a detach, the thing is no longer the connection's.
    let principal = cert_target(&c);
    run(&mut s, |s, cx| {
        detach_thing_principal(s, cx, "lamp", Some(&principal))
    })
    .unwrap();
    assert!(s.connection_policies(&c, "lamp").thing.is_none());
}

#[test]
fn group_ancestors_bring_their_policies_once() {
    let (mut s, c) = fleet();
    attach_thing(&mut s, "lamp", &c, false);
    // The same policy on the certificate and on a group counts once, where first seen.
    attach(&mut s, "on-root", &cert_target(&c), true);
    let p = s.connection_policies(&c, "lamp");
    assert_eq!(names(&p), ["on-cert", "on-root", "on-child"]);
    assert_eq!(p.depends_on.policies, ["on-cert", "on-root", "on-child"]);
    // A second hierarchy.
    group(&mut s, "other-root", None);
    put_policy(&mut s, "on-other", &[&allow("o")]);
    attach(&mut s, "on-other", &group_target("other-root"), true);
    join(&mut s, "lamp", "other-root");
    let p = s.connection_policies(&c, "lamp");
    assert_eq!(names(&p), ["on-cert", "on-root", "on-child", "on-other"]);
    assert_eq!(p.depends_on.groups, ["root", "child", "other-root"]);
}

#[test]
fn the_default_version_is_the_one_in_force() {
    let (mut s, c) = fleet();
    put_policy(&mut s, "on-cert", &[&allow("v1"), &allow("v2")]);
    let p = s.connection_policies(&c, "x");
    assert_eq!(p.policies[0].1, 2);
    assert_eq!(p.policies[0].2, allow("v2"));
    let mut r = s.policies["on-cert"].clone();
    r.default_version = 1;
    s.apply(&[Change::Policy {
        name: "on-cert".into(),
        new: Some(r),
    }]);
    let p = s.connection_policies(&c, "x");
    assert_eq!(
        (p.policies[0].1, p.policies[0].2.as_str()),
        (1, &*allow("v1"))
    );
}

#[test]
fn detached_policies_are_no_longer_in_force() {
    let (mut s, c) = fleet();
    attach_thing(&mut s, "lamp", &c, false);
    attach(&mut s, "on-root", &group_target("root"), false);
    attach(&mut s, "on-cert", &cert_target(&c), false);
    assert_eq!(names(&s.connection_policies(&c, "lamp")), ["on-child"]);
    // An unknown certificate has nothing.
    let p = s.connection_policies(&"0".repeat(64), "lamp");
    assert!(p.policies.is_empty() && p.thing.is_none());
}

#[test]
fn changes_say_which_connections_they_touch() {
    let (mut s, c) = fleet();
    attach_thing(&mut s, "lamp", &c, false);
    let deps = s.connection_policies(&c, "lamp").depends_on;
    let arns = ctx().arns;
    let touching = [
        Change::PolicyAttachment {
            policy: "new".into(),
            target: cert_target(&c),
            attached: true,
        },
        Change::PolicyAttachment {
            policy: "new".into(),
            target: group_target("root"),
            attached: true,
        },
        Change::Policy {
            name: "on-child".into(),
            new: None,
        },
        Change::GroupMembership {
            group: "elsewhere".into(),
            thing: "lamp".into(),
            member: true,
        },
        Change::Thing {
            name: "lamp".into(),
            new: None,
        },
        Change::ThingPrincipal {
            thing: "other".into(),
            principal: cert_target(&c),
            new: None,
        },
        Change::Certificate {
            id: c.clone(),
            new: None,
        },
        Change::ThingGroup {
            name: "root".into(),
            new: None,
        },
    ];
    for change in &touching {
        assert!(deps.is_touched_by(change, &arns), "{change:?}");
    }
    let not_touching = [
        Change::PolicyAttachment {
            policy: "new".into(),
            target: group_target("unrelated"),
            attached: true,
        },
        Change::Policy {
            name: "unrelated".into(),
            new: None,
        },
        Change::Thing {
            name: "other".into(),
            new: None,
        },
        Change::RegistrationCode { new: None },
    ];
    for change in &not_touching {
        assert!(!deps.is_touched_by(change, &arns), "{change:?}");
    }
    let keys = deps.keys();
    assert!(keys.contains(&DependencyKey::Certificate(c.clone())));
    assert!(keys.contains(&DependencyKey::ThingGroup("root".into())));
    assert!(keys.contains(&DependencyKey::Policy("on-cert".into())));
}

#[test]
fn authorization_compiles_once_and_knows_the_certificate() {
    let (mut s, c) = fleet();
    attach_thing(&mut s, "lamp", &c, false);
    let cache = PolicyCache::default();
    let cert_ctx = certificate_context(&c, &s.certificates[&c].pem);
    assert_eq!(
        cert_ctx.subject.get(DnField::CommonName),
        ["lamp-cert".to_owned()]
    );
    assert_eq!(cert_ctx.id.as_deref(), Some(c.as_str()));
    assert!(cert_ctx.serial_number.is_some());
    let a = ConnectionAuthorization::compile(
        &cache,
        s.connection_policies(&c, "lamp"),
        Some(cert_ctx.clone()),
    )
    .unwrap();
    assert_eq!(cache.len(), 3);
    let arns = ferrocore_policy::Arns::new("us-east-1", "123456789012");
    let req = a.request("lamp");
    assert!(
        a.set
            .evaluate(Action::Publish, &arns.topic("on-root"), &req)
            .is_allowed()
    );
    assert!(
        !a.set
            .evaluate(Action::Publish, &arns.topic("elsewhere"), &req)
            .is_allowed()
    );
    assert_eq!(req.thing().unwrap().name, "lamp");
    // Again: same compiled policies.
    let b =
        ConnectionAuthorization::compile(&cache, s.connection_policies(&c, "lamp"), None).unwrap();
    assert!(Arc::ptr_eq(&a.set.policies()[0], &b.set.policies()[0]));
    // A policy deleted and created again with another document is compiled again.
    let gone = Change::Policy {
        name: "on-cert".into(),
        new: None,
    };
    cache.forget(std::slice::from_ref(&gone));
    assert_eq!(cache.len(), 2);
    put_policy(&mut s, "on-cert", &[&allow("changed")]);
    let d =
        ConnectionAuthorization::compile(&cache, s.connection_policies(&c, "lamp"), None).unwrap();
    assert!(
        d.set
            .evaluate(Action::Publish, &arns.topic("changed"), &a.request("lamp"))
            .is_allowed()
    );
}

#[test]
fn policies_and_attachments_reload() {
    let (s, _) = fleet();
    let mut changes: Vec<Change> = s
        .policies
        .iter()
        .map(|(n, p)| Change::Policy {
            name: n.clone(),
            new: Some(p.clone()),
        })
        .collect();
    changes.extend(
        s.policy_targets
            .iter()
            .map(|(p, t)| Change::PolicyAttachment {
                policy: p.clone(),
                target: t.clone(),
                attached: true,
            }),
    );
    let records: Vec<RegistryRecord> = changes
        .iter()
        .map(|c| match c.write_op().unwrap() {
            WriteOp::PutRegistry(r) => r,
            other => panic!("{other:?}"),
        })
        .collect();
    let reloaded = RegistryState::from_records(&records).unwrap();
    assert_eq!(reloaded.policies, s.policies);
    assert_eq!(reloaded.policy_targets, s.policy_targets);
    assert_eq!(reloaded.target_policies, s.target_policies);
    let detach = Change::PolicyAttachment {
        policy: "a".into(),
        target: "b".into(),
        attached: false,
    };
    assert!(matches!(
        detach.write_op().unwrap(),
        WriteOp::DeleteRegistry { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Operations

fn create(
    s: &mut RegistryState,
    name: &str,
    doc: &str,
) -> Result<CreatePolicyResponse, RegistryError> {
    let req = CreatePolicyRequest {
        policy_name: name.into(),
        policy_document: Some(doc.into()),
        tags: None,
    };
    run(s, |s, c| create_policy(s, c, req))
}

fn new_version(
    s: &mut RegistryState,
    name: &str,
    doc: &str,
    set_as_default: bool,
) -> Result<CreatePolicyVersionResponse, RegistryError> {
    let req = CreatePolicyVersionRequest {
        policy_name: name.into(),
        policy_document: Some(doc.into()),
        set_as_default,
    };
    run(s, |s, c| create_policy_version(s, c, req))
}

fn attach_op(s: &mut RegistryState, policy: &str, target: &str) -> Result<Empty, RegistryError> {
    run(s, |s, c| attach_policy(s, c, policy, Some(target)))
}

fn detach_op(s: &mut RegistryState, policy: &str, target: &str) -> Result<Empty, RegistryError> {
    run(s, |s, c| detach_policy(s, c, policy, Some(target)))
}

fn code(r: Result<impl std::fmt::Debug, RegistryError>) -> (&'static str, u16) {
    let e = r.unwrap_err();
    (e.aws_error_code(), e.http_status())
}

#[test]
fn create_policy_validates_name_and_document() {
    let mut s = state();
    let made = create(&mut s, "p_1+=,.@-", &allow("a")).unwrap();
    assert_eq!(made.policy_version_id, "1");
    assert_eq!(
        made.policy_arn,
        "arn:aws:iot:us-east-1:123456789012:policy/p_1+=,.@-"
    );
    assert_eq!(made.policy_document, allow("a"));
    for bad in ["", "a b", "a/b", "a:b", "é", &"n".repeat(129)] {
        assert_eq!(
            code(create(&mut s, bad, &allow("a"))),
            ("InvalidRequestException", 400),
            "{bad:?}"
        );
    }
    create(&mut s, &"n".repeat(128), &allow("a")).unwrap();
    let e = create(&mut s, "bad", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"iot:*","Resource":"*"}]}"#)
        .unwrap_err();
    assert_eq!(e.aws_error_code(), "MalformedPolicyException");
    assert_eq!(e.http_status(), 400);
    assert!(
        e.to_string().starts_with("Policy document is Malformed"),
        "{e}"
    );
    assert!(e.to_string().contains("Statement[0].Effect"), "{e}");
    assert_eq!(
        code(create(&mut s, "bad", "not json")),
        ("MalformedPolicyException", 400)
    );
    let req = CreatePolicyRequest {
        policy_name: "nodoc".into(),
        ..Default::default()
    };
    assert_eq!(
        code(run(&mut s, |s, c| create_policy(s, c, req))),
        ("InvalidRequestException", 400)
    );
    // Not idempotent: the same name again is refused, whatever the document.
    let e = create(&mut s, "p_1+=,.@-", &allow("a")).unwrap_err();
    assert_eq!(
        e,
        RegistryError::ResourceAlreadyExists {
            message: e.to_string(),
            resource_id: Some("p_1+=,.@-".into()),
            resource_arn: Some(made.policy_arn.clone()),
        }
    );
    assert!(!s.policies.contains_key("bad"));
}

#[test]
fn get_and_list_policies() {
    let mut s = state();
    for (i, name) in ["b", "a", "c"].into_iter().enumerate() {
        let req = CreatePolicyRequest {
            policy_name: name.into(),
            policy_document: Some(allow(name)),
            tags: None,
        };
        let c = Ctx {
            now_ms: 1_000 * (i as i64 + 1),
            ..ctx()
        };
        let (_, changes) = create_policy(&s, &c, req).unwrap();
        s.apply(&changes);
    }
    let g = get_policy(&s, &ctx(), "a").unwrap();
    assert_eq!(g.default_version_id, "1");
    assert_eq!(g.policy_document, allow("a"));
    assert_eq!(g.creation_date, 2.0);
    assert_eq!(g.last_modified_date, 2.0);
    assert!(!g.generation_id.is_empty());
    assert_eq!(
        code(get_policy(&s, &ctx(), "zzz")),
        ("ResourceNotFoundException", 404)
    );
    let names = |r: &ListPoliciesResponse| -> Vec<String> {
        r.policies.iter().map(|p| p.policy_name.clone()).collect()
    };
    // Newest first by default, oldest first when ascending.
    let all = list_policies(&s, &ctx(), &MarkerPage::default()).unwrap();
    assert_eq!(names(&all), ["c", "a", "b"]);
    let page = MarkerPage {
        page_size: Some(2),
        ascending: true,
        ..Default::default()
    };
    let first = list_policies(&s, &ctx(), &page).unwrap();
    assert_eq!(names(&first), ["b", "a"]);
    let page = MarkerPage {
        marker: first.next_marker.clone(),
        ..page
    };
    let second = list_policies(&s, &ctx(), &page).unwrap();
    assert_eq!(names(&second), ["c"]);
    assert!(second.next_marker.is_none());
    let bad = MarkerPage {
        page_size: Some(0),
        ..Default::default()
    };
    assert_eq!(
        code(list_policies(&s, &ctx(), &bad)),
        ("InvalidRequestException", 400)
    );
}

#[test]
fn versions_are_limited_to_five_and_never_reused() {
    let mut s = state();
    create(&mut s, "p", &allow("v1")).unwrap();
    for v in 2..=5 {
        let made = new_version(&mut s, "p", &allow(&format!("v{v}")), false).unwrap();
        assert_eq!(made.policy_version_id, v.to_string());
        assert!(!made.is_default_version);
    }
    assert_eq!(
        code(new_version(&mut s, "p", &allow("v6"), true)),
        ("VersionsLimitExceededException", 409)
    );
    assert_eq!(
        code(new_version(&mut s, "p", "{", true)),
        ("MalformedPolicyException", 400)
    );
    assert_eq!(
        code(new_version(&mut s, "nope", &allow("x"), true)),
        ("ResourceNotFoundException", 404)
    );
    run(&mut s, |s, c| delete_policy_version(s, c, "p", "3")).unwrap();
    let made = new_version(&mut s, "p", &allow("v6"), true).unwrap();
    assert_eq!(made.policy_version_id, "6");
    assert!(made.is_default_version);
    let g = get_policy(&s, &ctx(), "p").unwrap();
    assert_eq!(
        (g.default_version_id.as_str(), g.policy_document),
        ("6", allow("v6"))
    );
    let listed = list_policy_versions(&s, &ctx(), "p").unwrap();
    let ids: Vec<(&str, bool)> = listed
        .policy_versions
        .iter()
        .map(|v| (v.version_id.as_str(), v.is_default_version))
        .collect();
    assert_eq!(
        ids,
        [
            ("6", true),
            ("5", false),
            ("4", false),
            ("2", false),
            ("1", false)
        ]
    );
    let v2 = get_policy_version(&s, &ctx(), "p", "2").unwrap();
    assert_eq!(
        (v2.policy_document, v2.is_default_version),
        (allow("v2"), false)
    );
    assert_eq!(
        code(get_policy_version(&s, &ctx(), "p", "3")),
        ("ResourceNotFoundException", 404)
    );
    for bad in ["x", "", "-1", "99999999999999999999999"] {
        assert_eq!(
            code(get_policy_version(&s, &ctx(), "p", bad)),
            ("InvalidRequestException", 400),
            "{bad:?}"
        );
    }
}

#[test]
fn default_version_switches_and_cannot_be_deleted() {
    let mut s = state();
    create(&mut s, "p", &allow("v1")).unwrap();
    new_version(&mut s, "p", &allow("v2"), false).unwrap();
    let before = s.policies["p"].generation_id.clone();
    run(&mut s, |s, c| set_default_policy_version(s, c, "p", "2")).unwrap();
    assert_eq!(s.policies["p"].default_version, 2);
    assert_ne!(s.policies["p"].generation_id, before);
    // Idempotent.
    let (_, changes) = set_default_policy_version(&s, &ctx(), "p", "2").unwrap();
    assert!(changes.is_empty());
    assert_eq!(
        code(run(&mut s, |s, c| set_default_policy_version(
            s, c, "p", "7"
        ))),
        ("ResourceNotFoundException", 404)
    );
    assert_eq!(
        code(run(&mut s, |s, c| delete_policy_version(s, c, "p", "2"))),
        ("DeleteConflictException", 409)
    );
    assert_eq!(
        code(run(&mut s, |s, c| delete_policy_version(s, c, "p", "9"))),
        ("ResourceNotFoundException", 404)
    );
    run(&mut s, |s, c| delete_policy_version(s, c, "p", "1")).unwrap();
    assert_eq!(s.policies["p"].versions.len(), 1);
}

#[test]
fn delete_policy_needs_one_version_and_no_targets() {
    let (mut s, c) = fleet();
    new_version(&mut s, "on-cert", &allow("v2"), true).unwrap();
    let e = run(&mut s, |s, cx| delete_policy(s, cx, "on-cert")).unwrap_err();
    assert_eq!(e.aws_error_code(), "DeleteConflictException");
    assert!(e.to_string().contains("non-default versions (1)"), "{e}");
    run(&mut s, |s, cx| delete_policy_version(s, cx, "on-cert", "1")).unwrap();
    let e = run(&mut s, |s, cx| delete_policy(s, cx, "on-cert")).unwrap_err();
    assert_eq!(e.aws_error_code(), "DeleteConflictException");
    assert!(e.to_string().contains(&cert_target(&c)), "{e}");
    detach_op(&mut s, "on-cert", &cert_target(&c)).unwrap();
    run(&mut s, |s, cx| delete_policy(s, cx, "on-cert")).unwrap();
    assert!(!s.policies.contains_key("on-cert"));
    assert_eq!(
        code(run(&mut s, |s, cx| delete_policy(s, cx, "on-cert"))),
        ("ResourceNotFoundException", 404)
    );
}

#[test]
fn attach_checks_policy_target_and_limits() {
    let mut s = state();
    let ca = TestCa::new("test CA", ten_years(NOW));
    let c = cert(&mut s, &ca, "d");
    group(&mut s, "g", None);
    for i in 0..12 {
        create(&mut s, &format!("p{i:02}"), &allow("x")).unwrap();
    }
    let ct = cert_target(&c);
    let gt = group_target("g");
    assert_eq!(
        code(attach_op(&mut s, "missing", &ct)),
        ("ResourceNotFoundException", 404)
    );
    assert_eq!(
        code(attach_op(&mut s, "p00", &cert_target(&"0".repeat(64)))),
        ("ResourceNotFoundException", 404)
    );
    assert_eq!(
        code(attach_op(&mut s, "p00", &group_target("nope"))),
        ("ResourceNotFoundException", 404)
    );
    for bad in [
        "",
        "cert/abc",
        "arn:aws:iot:eu-west-1:123456789012:cert/00",
        "arn:aws:iot:us-east-1:123456789012:thing/t",
        "arn:aws:iot:us-east-1:123456789012:cert/xyz",
        "us-east-1:4a1b2c3d-0000-0000-0000-000000000000",
    ] {
        assert_eq!(
            code(attach_op(&mut s, "p00", bad)),
            ("InvalidRequestException", 400),
            "{bad:?}"
        );
    }
    for i in 0..10 {
        attach_op(&mut s, &format!("p{i:02}"), &ct).unwrap();
    }
    // Idempotent even at the limit.
    attach_op(&mut s, "p00", &ct).unwrap();
    assert_eq!(
        code(attach_op(&mut s, "p10", &ct)),
        ("LimitExceededException", 410)
    );
    attach_op(&mut s, "p00", &gt).unwrap();
    attach_op(&mut s, "p01", &gt).unwrap();
    assert_eq!(
        code(attach_op(&mut s, "p02", &gt)),
        ("LimitExceededException", 410)
    );
    // The limits are configurable.
    s.policy_limits = PolicyLimits {
        max_policies_per_certificate: 11,
        max_policies_per_thing_group: 3,
    };
    attach_op(&mut s, "p10", &ct).unwrap();
    attach_op(&mut s, "p02", &gt).unwrap();
    assert_eq!(s.policies_of_target(&ct).count(), 11);
    assert_eq!(s.targets_of_policy("p00").collect::<Vec<_>>(), [&ct, &gt]);
}

#[test]
fn detach_is_idempotent() {
    let (mut s, c) = fleet();
    let ct = cert_target(&c);
    detach_op(&mut s, "on-cert", &ct).unwrap();
    assert_eq!(s.policies_of_target(&ct).count(), 0);
    let (_, changes) = detach_policy(&s, &ctx(), "on-cert", Some(&ct)).unwrap();
    assert!(changes.is_empty());
    detach_op(&mut s, "never-existed", &ct).unwrap();
    assert_eq!(
        code(detach_op(&mut s, "on-cert", "bogus")),
        ("InvalidRequestException", 400)
    );
    assert_eq!(
        code(run(&mut s, |s, cx| detach_policy(s, cx, "on-cert", None))),
        ("InvalidRequestException", 400)
    );
}

#[test]
fn listings_of_attachments() {
    let (mut s, c) = fleet();
    group(&mut s, "grandchild", Some("child"));
    put_policy(&mut s, "on-grandchild", &[&allow("g")]);
    attach(&mut s, "on-grandchild", &group_target("grandchild"), true);
    let list = |s: &RegistryState, target: String, recursive: bool| {
        let req = ListAttachedPoliciesRequest {
            target,
            recursive,
            ..Default::default()
        };
        list_attached_policies(s, &ctx(), req)
            .unwrap()
            .policies
            .into_iter()
            .map(|p| p.policy_name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(&s, group_target("grandchild"), false),
        ["on-grandchild"]
    );
    assert_eq!(
        list(&s, group_target("grandchild"), true),
        ["on-child", "on-grandchild", "on-root"]
    );
    assert_eq!(list(&s, cert_target(&c), true), ["on-cert"]);
    let req = ListAttachedPoliciesRequest {
        target: group_target("missing"),
        ..Default::default()
    };
    assert_eq!(
        code(list_attached_policies(&s, &ctx(), req)),
        ("ResourceNotFoundException", 404)
    );
    // Paging.
    let req = ListAttachedPoliciesRequest {
        target: group_target("grandchild"),
        recursive: true,
        page_size: Some(2),
        ..Default::default()
    };
    let first = list_attached_policies(&s, &ctx(), req.clone()).unwrap();
    assert_eq!(first.policies.len(), 2);
    let second = list_attached_policies(
        &s,
        &ctx(),
        ListAttachedPoliciesRequest {
            marker: first.next_marker.clone(),
            ..req
        },
    )
    .unwrap();
    assert_eq!(second.policies[0].policy_name, "on-root");
    assert!(second.next_marker.is_none());

    attach(&mut s, "on-root", &cert_target(&c), true);
    let req = ListTargetsForPolicyRequest {
        policy_name: "on-root".into(),
        page_size: Some(1),
        ..Default::default()
    };
    let first = list_targets_for_policy(&s, &ctx(), req.clone()).unwrap();
    assert_eq!(first.targets, [cert_target(&c)]);
    let second = list_targets_for_policy(
        &s,
        &ctx(),
        ListTargetsForPolicyRequest {
            marker: first.next_marker,
            ..req
        },
    )
    .unwrap();
    assert_eq!(second.targets, [group_target("root")]);
    assert!(second.next_marker.is_none());
    let req = ListTargetsForPolicyRequest {
        policy_name: "missing".into(),
        ..Default::default()
    };
    assert_eq!(
        code(list_targets_for_policy(&s, &ctx(), req)),
        ("ResourceNotFoundException", 404)
    );
}

fn effective(
    s: &RegistryState,
    principal: Option<String>,
    thing: Option<&str>,
) -> Result<Vec<String>, RegistryError> {
    let req = GetEffectivePoliciesRequest {
        principal,
        cognito_identity_pool_id: None,
        thing_name: thing.map(str::to_owned),
    };
    Ok(get_effective_policies(s, &ctx(), req)?
        .effective_policies
        .into_iter()
        .map(|p| p.policy_name)
        .collect())
}

#[test]
fn effective_policies_come_from_the_resolver() {
    let (mut s, c) = fleet();
    let p = Some(cert_target(&c));
    // Not attached to the thing: only the certificate's.
    assert_eq!(effective(&s, p.clone(), Some("lamp")).unwrap(), ["on-cert"]);
    attach_thing(&mut s, "lamp", &c, false);
    assert_eq!(
        effective(&s, p.clone(), Some("lamp")).unwrap(),
        ["on-cert", "on-root", "on-child"]
    );
    // Without a thing name the client id is unknown: no thing under a non-exclusive
    // attachment.
    assert_eq!(effective(&s, p.clone(), None).unwrap(), ["on-cert"]);
    // A thing alone: its groups' policies.
    assert_eq!(
        effective(&s, None, Some("lamp")).unwrap(),
        ["on-root", "on-child"]
    );
    let full = get_effective_policies(
        &s,
        &ctx(),
        GetEffectivePoliciesRequest {
            principal: p.clone(),
            thing_name: Some("lamp".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(full.effective_policies[0].policy_document, allow("on-cert"));
    assert_eq!(
        full.effective_policies[0].policy_arn,
        "arn:aws:iot:us-east-1:123456789012:policy/on-cert"
    );
    assert_eq!(
        code(effective(&s, None, None)),
        ("InvalidRequestException", 400)
    );
    assert_eq!(
        code(effective(&s, None, Some("ghost"))),
        ("ResourceNotFoundException", 404)
    );
    assert_eq!(
        code(effective(&s, Some(cert_target(&"f".repeat(64))), None)),
        ("ResourceNotFoundException", 404)
    );
    assert_eq!(
        code(effective(&s, Some(group_target("root")), None)),
        ("InvalidRequestException", 400)
    );
    let cognito = GetEffectivePoliciesRequest {
        cognito_identity_pool_id: Some("us-east-1:x".into()),
        principal: p,
        ..Default::default()
    };
    assert_eq!(
        code(get_effective_policies(&s, &ctx(), cognito)),
        ("InvalidRequestException", 400)
    );
}

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

fn test_auth(
    s: &RegistryState,
    principal: &str,
    client_id: Option<&str>,
    infos: &[(&str, &[&str])],
    add: &[&str],
    skip: &[&str],
) -> Result<Vec<AuthResult>, RegistryError> {
    let req = TestAuthorizationRequest {
        principal: Some(principal.to_owned()),
        cognito_identity_pool_id: None,
        auth_infos: Some(
            infos
                .iter()
                .map(|(a, r)| AuthInfo {
                    action_type: Some((*a).to_owned()),
                    resources: r.iter().map(|x| (*x).to_owned()).collect(),
                })
                .collect(),
        ),
        client_id: client_id.map(str::to_owned),
        policy_names_to_add: Some(add.iter().map(|x| (*x).to_owned()).collect()),
        policy_names_to_skip: Some(skip.iter().map(|x| (*x).to_owned()).collect()),
    };
    Ok(test_authorization(s, &ctx(), &PolicyCache::default(), req)?.auth_results)
}

fn listed(p: &PolicyList) -> Vec<&str> {
    p.policies.iter().map(|p| p.policy_name.as_str()).collect()
}

#[test]
fn test_authorization_allows_denies_and_explains() {
    let (mut s, c) = fleet();
    attach_thing(&mut s, "lamp", &c, false);
    put_policy(
        &mut s,
        "device",
        &[&doc(&format!(
            r#"{{"Effect":"Allow","Action":["iot:Connect"],"Resource":"{ARN}:client/${{iot:Connection.Thing.ThingName}}"}},
               {{"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/dev/${{iot:ClientId}}/*"}},
               {{"Effect":"Deny","Action":"iot:Publish","Resource":"{ARN}:topic/dev/*/secret"}}"#
        ))],
    );
    put_policy(
        &mut s,
        "extra",
        &[&doc(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{ARN}:topicfilter/x/#"}}"#
        ))],
    );
    attach(&mut s, "device", &cert_target(&c), true);
    let principal = cert_target(&c);
    let connect = format!("{ARN}:client/lamp");
    let mine = format!("{ARN}:topic/dev/lamp/t");
    let secret = format!("{ARN}:topic/dev/lamp/secret");
    let theirs = format!("{ARN}:topic/dev/other/t");
    let results = test_auth(
        &s,
        &principal,
        Some("lamp"),
        &[
            ("CONNECT", &[&connect]),
            ("PUBLISH", &[&mine]),
            ("PUBLISH", &[&secret]),
            ("PUBLISH", &[&theirs]),
            ("PUBLISH", &[&mine, &theirs]),
        ],
        &[],
        &[],
    )
    .unwrap();
    let decisions: Vec<&str> = results.iter().map(|r| r.auth_decision.as_str()).collect();
    assert_eq!(
        decisions,
        [
            "ALLOWED",
            "ALLOWED",
            "EXPLICIT_DENY",
            "IMPLICIT_DENY",
            "IMPLICIT_DENY"
        ]
    );
    assert_eq!(
        results[0].auth_info.resources,
        std::slice::from_ref(&connect)
    );
    assert_eq!(listed(&results[1].allowed), ["device"]);
    assert_eq!(
        listed(&results[1].denied.implicit_deny),
        ["on-cert", "on-root", "on-child"]
    );
    assert_eq!(listed(&results[2].denied.explicit_deny), ["device"]);
    assert!(results[2].allowed.policies.is_empty());
    assert_eq!(
        listed(&results[3].denied.implicit_deny),
        ["device", "on-cert", "on-root", "on-child"]
    );

    // Without the client id the thing is unknown: the thing variable is missing.
    let results = test_auth(&s, &principal, None, &[("CONNECT", &[&connect])], &[], &[]).unwrap();
    assert_eq!(results[0].auth_decision, "IMPLICIT_DENY");
    assert_eq!(
        results[0].missing_context_values,
        ["iot:Connection.Thing.ThingName"]
    );

    // Skipping and adding policies.
    let filter = format!("{ARN}:topicfilter/x/#");
    let results = test_auth(
        &s,
        &principal,
        Some("lamp"),
        &[("SUBSCRIBE", &[&filter]), ("CONNECT", &[&connect])],
        &["extra"],
        &["device"],
    )
    .unwrap();
    assert_eq!(results[0].auth_decision, "ALLOWED");
    assert_eq!(listed(&results[0].allowed), ["extra"]);
    assert_eq!(results[1].auth_decision, "IMPLICIT_DENY");
    // The answer agrees with what the broker's authorization decides.
    let cache = PolicyCache::default();
    let a = ConnectionAuthorization::compile(
        &cache,
        s.connection_policies(&c, "lamp"),
        Some(certificate_context(&c, &s.certificates[&c].pem)),
    )
    .unwrap();
    let req = a.request("lamp");
    for (resource, expected) in [
        (&mine, "ALLOWED"),
        (&secret, "EXPLICIT_DENY"),
        (&theirs, "IMPLICIT_DENY"),
    ] {
        assert_eq!(
            a.set.evaluate(Action::Publish, resource, &req).as_aws_str(),
            expected
        );
    }
}

#[test]
fn test_authorization_refuses_bad_requests() {
    let (s, c) = fleet();
    let p = cert_target(&c);
    let r = format!("{ARN}:topic/t");
    let cases: Vec<(Result<Vec<AuthResult>, RegistryError>, &str)> = vec![
        (
            test_auth(&s, &p, None, &[], &[], &[]),
            "InvalidRequestException",
        ),
        (
            test_auth(&s, &p, None, &[("FLY", &[&r])], &[], &[]),
            "InvalidRequestException",
        ),
        (
            test_auth(&s, &p, None, &[("PUBLISH", &[])], &[], &[]),
            "InvalidRequestException",
        ),
        (
            test_auth(
                &s,
                &p,
                None,
                &[("PUBLISH", &[r.as_str()][..]); 11],
                &[],
                &[],
            ),
            "InvalidRequestException",
        ),
        (
            test_auth(&s, "nonsense", None, &[("PUBLISH", &[&r])], &[], &[]),
            "InvalidRequestException",
        ),
        (
            test_auth(
                &s,
                &cert_target(&"a".repeat(64)),
                None,
                &[("PUBLISH", &[&r])],
                &[],
                &[],
            ),
            "ResourceNotFoundException",
        ),
        (
            test_auth(&s, &p, None, &[("PUBLISH", &[&r])], &["missing"], &[]),
            "ResourceNotFoundException",
        ),
    ];
    for (result, expected) in cases {
        assert_eq!(result.unwrap_err().aws_error_code(), expected);
    }
    let no_principal = TestAuthorizationRequest {
        auth_infos: Some(vec![AuthInfo {
            action_type: Some("PUBLISH".into()),
            resources: vec![r],
        }]),
        ..Default::default()
    };
    assert_eq!(
        code(test_authorization(
            &s,
            &ctx(),
            &PolicyCache::default(),
            no_principal
        )),
        ("InvalidRequestException", 400)
    );
}

#[test]
fn deleting_a_certificate_or_group_keeps_attachments_consistent() {
    use crate::registry::{
        DeleteThingGroupRequest, delete_certificate, delete_thing_group, update_certificate,
    };
    let (mut s, c) = fleet();
    run(&mut s, |s, cx| update_certificate(s, cx, &c, "INACTIVE")).unwrap();
    let e = run(&mut s, |s, cx| delete_certificate(s, cx, &c, false)).unwrap_err();
    assert_eq!(e.aws_error_code(), "DeleteConflictException");
    assert!(e.to_string().contains("on-cert"), "{e}");
    run(&mut s, |s, cx| delete_certificate(s, cx, &c, true)).unwrap();
    assert!(!s.certificates.contains_key(&c));
    assert_eq!(s.targets_of_policy("on-cert").count(), 0);
    assert!(!s.target_policies.iter().any(|(t, _)| *t == cert_target(&c)));

    group(&mut s, "leaf", Some("child"));
    put_policy(&mut s, "on-leaf", &[&allow("l")]);
    attach(&mut s, "on-leaf", &group_target("leaf"), true);
    let req = DeleteThingGroupRequest {
        thing_group_name: "leaf".into(),
        ..Default::default()
    };
    run(&mut s, |s, cx| delete_thing_group(s, cx, req)).unwrap();
    assert_eq!(s.targets_of_policy("on-leaf").count(), 0);
    // The policy can go now.
    run(&mut s, |s, cx| delete_policy(s, cx, "on-leaf")).unwrap();
}
