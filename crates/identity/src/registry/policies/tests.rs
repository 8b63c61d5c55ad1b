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
