#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;
use crate::registry::tests::{ctx, run};
use crate::registry::{RegistryRecord, ThingPrincipal, WriteOp};

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn payload(pairs: &[(&str, &str)], merge: bool) -> Option<AttributePayload> {
    Some(AttributePayload {
        attributes: attrs(pairs),
        merge,
    })
}

fn thing(s: &mut RegistryState, name: &str, type_name: Option<&str>, a: &[(&str, &str)]) {
    let req = CreateThingRequest {
        thing_name: name.into(),
        thing_type_name: type_name.map(Into::into),
        attribute_payload: payload(a, false),
        ..Default::default()
    };
    run(s, |s, c| create_thing(s, c, req)).unwrap();
}

fn thing_type(s: &mut RegistryState, name: &str) {
    let req = CreateThingTypeRequest {
        thing_type_name: name.into(),
        ..Default::default()
    };
    run(s, |s, c| create_thing_type(s, c, req)).unwrap();
}

fn group(s: &mut RegistryState, name: &str, parent: Option<&str>) -> Result<(), RegistryError> {
    let req = CreateThingGroupRequest {
        thing_group_name: name.into(),
        parent_group_name: parent.map(Into::into),
        ..Default::default()
    };
    run(s, |s, c| create_thing_group(s, c, req)).map(|_| ())
}

fn add(s: &mut RegistryState, group: &str, thing: &str) -> Result<(), RegistryError> {
    let req = ThingGroupMembershipRequest {
        thing_group_name: Some(group.into()),
        thing_name: Some(thing.into()),
        ..Default::default()
    };
    run(s, |s, c| add_thing_to_thing_group(s, c, req)).map(|_| ())
}

fn remove(s: &mut RegistryState, group: &str, thing: &str) -> Result<(), RegistryError> {
    let req = ThingGroupMembershipRequest {
        thing_group_name: Some(group.into()),
        thing_name: Some(thing.into()),
        ..Default::default()
    };
    run(s, |s, c| remove_thing_from_thing_group(s, c, req)).map(|_| ())
}

fn update(s: &mut RegistryState, req: UpdateThingRequest) -> Result<(), RegistryError> {
    run(s, |s, c| update_thing(s, c, req)).map(|_| ())
}

fn code(r: Result<impl std::fmt::Debug, RegistryError>) -> &'static str {
    r.unwrap_err().aws_error_code()
}

/// `ctx()` moved `ms` milliseconds later.
fn later(ms: i64) -> Ctx {
    let mut c = ctx();
    c.now_ms += ms;
    c
}

fn deprecate(s: &mut RegistryState, name: &str, undo: bool) {
    let req = DeprecateThingTypeRequest {
        thing_type_name: name.into(),
        undo_deprecate: undo,
    };
    run(s, |s, c| deprecate_thing_type(s, c, req)).unwrap();
}

fn list_all_things(s: &RegistryState, req: ListThingsRequest) -> Vec<String> {
    list_things(s, &ctx(), req)
        .unwrap()
        .things
        .into_iter()
        .map(|t| t.thing_name)
        .collect()
}

// ------------------------------------------------------------------------------------- things

#[test]
fn create_thing_refuses_billing_groups_and_unusable_types() {
    let mut s = RegistryState::default();
    let req = CreateThingRequest {
        thing_name: "t".into(),
        billing_group_name: Some("bg".into()),
        ..Default::default()
    };
    let err = run(&mut s, |s, c| create_thing(s, c, req)).unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("billingGroupName"), "{err}");

    let req = CreateThingRequest {
        thing_name: "t".into(),
        thing_type_name: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(
        code(run(&mut s, |s, c| create_thing(s, c, req))),
        "ResourceNotFoundException"
    );

    thing_type(&mut s, "old");
    deprecate(&mut s, "old", false);
    let req = CreateThingRequest {
        thing_name: "t".into(),
        thing_type_name: Some("old".into()),
        ..Default::default()
    };
    let err = run(&mut s, |s, c| create_thing(s, c, req)).unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("deprecated"), "{err}");
    assert!(s.things.is_empty());
}

#[test]
fn typed_things_may_have_fifty_attributes_untyped_three() {
    let mut s = RegistryState::default();
    thing_type(&mut s, "ty");
    let fifty: Vec<(String, String)> = (0..50).map(|i| (format!("a{i}"), "v".into())).collect();
    let fifty: Vec<(&str, &str)> = fifty
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    thing(&mut s, "typed", Some("ty"), &fifty);
    let req = CreateThingRequest {
        thing_name: "untyped".into(),
        attribute_payload: payload(&fifty[..4], false),
        ..Default::default()
    };
    assert_eq!(
        code(run(&mut s, |s, c| create_thing(s, c, req))),
        "InvalidRequestException"
    );
    // Removing the type of a thing with 50 attributes would leave too many.
    let req = UpdateThingRequest {
        thing_name: "typed".into(),
        remove_thing_type: true,
        ..Default::default()
    };
    assert_eq!(code(update(&mut s, req)), "InvalidRequestException");
}

#[test]
fn list_things_pages_by_name_and_filters() {
    let mut s = RegistryState::default();
    thing_type(&mut s, "lamp");
    thing(&mut s, "a", Some("lamp"), &[("color", "red")]);
    thing(&mut s, "b", None, &[("color", "reddish")]);
    thing(&mut s, "c", Some("lamp"), &[("color", "blue")]);
    thing(&mut s, "d", None, &[("size", "1")]);
    thing(&mut s, "e", None, &[]);

    // Pages of two follow the tokens and end without one.
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let req = ListThingsRequest {
            max_results: Some(2),
            next_token: token,
            ..Default::default()
        };
        let page = list_things(&s, &ctx(), req).unwrap();
        assert!(page.things.len() <= 2);
        names.extend(page.things.into_iter().map(|t| t.thing_name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);

    let one = list_things(&s, &ctx(), ListThingsRequest::default()).unwrap();
    let a = &one.things[0];
    assert_eq!(a.thing_arn, "arn:aws:iot:us-east-1:123456789012:thing/a");
    assert_eq!(a.thing_type_name.as_deref(), Some("lamp"));
    assert_eq!(a.version, 1);
    assert_eq!(a.attributes, attrs(&[("color", "red")]));
    assert!(one.next_token.is_none());

    let by_type = ListThingsRequest {
        thing_type_name: Some("lamp".into()),
        ..Default::default()
    };
    assert_eq!(list_all_things(&s, by_type), ["a", "c"]);
    let exact = ListThingsRequest {
        attribute_name: Some("color".into()),
        attribute_value: Some("red".into()),
        ..Default::default()
    };
    assert_eq!(list_all_things(&s, exact), ["a"]);
    let prefix = ListThingsRequest {
        attribute_name: Some("color".into()),
        attribute_value: Some("red".into()),
        use_prefix_attribute_value: Some(true),
        ..Default::default()
    };
    assert_eq!(list_all_things(&s, prefix), ["a", "b"]);
    let has = ListThingsRequest {
        attribute_name: Some("color".into()),
        ..Default::default()
    };
    assert_eq!(list_all_things(&s, has), ["a", "b", "c"]);
    let both = ListThingsRequest {
        attribute_name: Some("color".into()),
        attribute_value: Some("blue".into()),
        thing_type_name: Some("lamp".into()),
        ..Default::default()
    };
    assert_eq!(list_all_things(&s, both), ["c"]);
    let unknown_type = ListThingsRequest {
        thing_type_name: Some("nope".into()),
        ..Default::default()
    };
    assert!(list_all_things(&s, unknown_type).is_empty());
    // A filtered page still ends on the last match and resumes after it.
    let first = list_things(
        &s,
        &ctx(),
        ListThingsRequest {
            attribute_name: Some("color".into()),
            max_results: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let second = list_things(
        &s,
        &ctx(),
        ListThingsRequest {
            attribute_name: Some("color".into()),
            max_results: Some(1),
            next_token: first.next_token,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(second.things[0].thing_name, "b");
}

#[test]
fn list_things_refuses_bad_parameters() {
    let s = RegistryState::default();
    let bad = [
        ListThingsRequest {
            max_results: Some(0),
            ..Default::default()
        },
        ListThingsRequest {
            max_results: Some(251),
            ..Default::default()
        },
        ListThingsRequest {
            next_token: Some("zz".into()),
            ..Default::default()
        },
        ListThingsRequest {
            attribute_value: Some("x".into()),
            ..Default::default()
        },
        ListThingsRequest {
            attribute_name: Some("a b".into()),
            ..Default::default()
        },
        ListThingsRequest {
            attribute_name: Some("a".into()),
            attribute_value: Some("x y".into()),
            ..Default::default()
        },
        ListThingsRequest {
            thing_type_name: Some("a/b".into()),
            ..Default::default()
        },
    ];
    for req in bad {
        let dbg = format!("{req:?}");
        let err = list_things(&s, &ctx(), req).unwrap_err();
        assert_eq!(err.http_status(), 400, "{dbg}");
    }
    let max = ListThingsRequest {
        max_results: Some(250),
        ..Default::default()
    };
    assert!(list_things(&s, &ctx(), max).is_ok());
}

#[test]
fn update_thing_merges_replaces_and_counts_versions() {
    let mut s = RegistryState::default();
    thing(&mut s, "t", None, &[("a", "1"), ("b", "2")]);
    // Merge: a new value, an empty value removes, others stay.
    let req = UpdateThingRequest {
        thing_name: "t".into(),
        attribute_payload: payload(&[("a", "9"), ("b", ""), ("c", "3")], true),
        ..Default::default()
    };
    update(&mut s, req).unwrap();
    let t = &s.things["t"];
    assert_eq!(t.attributes, attrs(&[("a", "9"), ("c", "3")]));
    assert_eq!(t.version, 2);
    // Replace.
    let req = UpdateThingRequest {
        thing_name: "t".into(),
        attribute_payload: payload(&[("z", "0")], false),
        expected_version: Some(2),
        ..Default::default()
    };
    update(&mut s, req).unwrap();
    assert_eq!(s.things["t"].attributes, attrs(&[("z", "0")]));
    assert_eq!(s.things["t"].version, 3);
    // No payload: attributes unchanged, version still + 1.
    let req = UpdateThingRequest {
        thing_name: "t".into(),
        ..Default::default()
    };
    update(&mut s, req).unwrap();
    assert_eq!(s.things["t"].attributes, attrs(&[("z", "0")]));
    assert_eq!(describe_thing(&s, &ctx(), "t").unwrap().version, 4);
}

#[test]
fn update_thing_refusals() {
    let mut s = RegistryState::default();
    thing(&mut s, "t", None, &[]);
    thing_type(&mut s, "ty");
    let stale = UpdateThingRequest {
        thing_name: "t".into(),
        expected_version: Some(7),
        ..Default::default()
    };
    let err = update(&mut s, stale).unwrap_err();
    assert_eq!(err.aws_error_code(), "VersionConflictException");
    assert_eq!(err.http_status(), 409);
    let missing = UpdateThingRequest {
        thing_name: "nope".into(),
        ..Default::default()
    };
    assert_eq!(code(update(&mut s, missing)), "ResourceNotFoundException");
    let both = UpdateThingRequest {
        thing_name: "t".into(),
        thing_type_name: Some("ty".into()),
        remove_thing_type: true,
        ..Default::default()
    };
    assert_eq!(code(update(&mut s, both)), "InvalidRequestException");
    let no_type = UpdateThingRequest {
        thing_name: "t".into(),
        thing_type_name: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(code(update(&mut s, no_type)), "ResourceNotFoundException");
    let bad_attr = UpdateThingRequest {
        thing_name: "t".into(),
        attribute_payload: payload(&[("bad name", "x")], true),
        ..Default::default()
    };
    assert_eq!(code(update(&mut s, bad_attr)), "InvalidRequestException");
    let four = UpdateThingRequest {
        thing_name: "t".into(),
        attribute_payload: payload(&[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")], true),
        ..Default::default()
    };
    assert_eq!(code(update(&mut s, four)), "InvalidRequestException");
    assert_eq!(s.things["t"].version, 1, "refusals change nothing");
}

#[test]
fn update_thing_sets_and_removes_types_but_not_deprecated_ones() {
    let mut s = RegistryState::default();
    thing(&mut s, "t", None, &[]);
    thing_type(&mut s, "ty");
    thing_type(&mut s, "other");
    let set = |name: &str| UpdateThingRequest {
        thing_name: "t".into(),
        thing_type_name: Some(name.into()),
        ..Default::default()
    };
    update(&mut s, set("ty")).unwrap();
    assert_eq!(s.things["t"].type_name.as_deref(), Some("ty"));
    // Deprecating its type later leaves the thing alone, and it may keep it.
    deprecate(&mut s, "ty", false);
    update(&mut s, set("ty")).unwrap();
    deprecate(&mut s, "other", false);
    assert_eq!(
        code(update(&mut s, set("other"))),
        "InvalidRequestException"
    );
    deprecate(&mut s, "other", true);
    update(&mut s, set("other")).unwrap();
    let remove = UpdateThingRequest {
        thing_name: "t".into(),
        remove_thing_type: true,
        ..Default::default()
    };
    update(&mut s, remove).unwrap();
    assert_eq!(s.things["t"].type_name, None);
    // Deprecated and no longer set: refused.
    assert_eq!(code(update(&mut s, set("ty"))), "InvalidRequestException");
}

#[test]
fn delete_thing_rules() {
    let mut s = RegistryState::default();
    let del = |name: &str, v: Option<i64>| DeleteThingRequest {
        thing_name: name.into(),
        expected_version: v,
    };
    // A missing thing: success, nothing changes.
    let (_, changes) = delete_thing(&s, &ctx(), del("ghost", Some(3))).unwrap();
    assert!(changes.is_empty());

    thing(&mut s, "t", None, &[]);
    assert_eq!(
        code(run(&mut s, |s, c| delete_thing(s, c, del("t", Some(2))))),
        "VersionConflictException"
    );

    // Attached principals block the deletion.
    let principal = "arn:aws:iot:us-east-1:123456789012:cert/00".to_owned();
    s.apply(&[Change::ThingPrincipal {
        thing: "t".into(),
        principal: principal.clone(),
        new: Some(ThingPrincipal {
            thing: "t".into(),
            principal: principal.clone(),
            exclusive: false,
        }),
    }]);
    let err = run(&mut s, |s, c| delete_thing(s, c, del("t", None))).unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("DetachThingPrincipal"), "{err}");
    s.apply(&[Change::ThingPrincipal {
        thing: "t".into(),
        principal,
        new: None,
    }]);

    // Its memberships go in the same change set.
    group(&mut s, "g1", None).unwrap();
    group(&mut s, "g2", None).unwrap();
    add(&mut s, "g1", "t").unwrap();
    add(&mut s, "g2", "t").unwrap();
    let (_, changes) = delete_thing(&s, &ctx(), del("t", Some(1))).unwrap();
    assert_eq!(changes.len(), 3);
    s.apply(&changes);
    assert!(s.things.is_empty());
    assert!(s.group_things.is_empty());
    assert!(s.thing_groups_of.is_empty());
}

// -------------------------------------------------------------------------------- thing types

fn type_props(description: &str, searchable: &[&str]) -> Option<ThingTypeProperties> {
    Some(ThingTypeProperties {
        thing_type_description: Some(description.into()),
        searchable_attributes: Some(searchable.iter().map(|s| (*s).to_owned()).collect()),
        mqtt5_configuration: None,
    })
}

#[test]
fn create_thing_type_is_idempotent_and_describes() {
    let mut s = RegistryState::default();
    let req = |d: &str| CreateThingTypeRequest {
        thing_type_name: "lamp".into(),
        thing_type_properties: type_props(d, &["watts"]),
        tags: Some(vec![Tag {
            key: "k".into(),
            value: None,
        }]),
    };
    let first = run(&mut s, |s, c| create_thing_type(s, c, req("bulbs"))).unwrap();
    assert_eq!(
        first.thing_type_arn,
        "arn:aws:iot:us-east-1:123456789012:thingtype/lamp"
    );
    let again = run(&mut s, |s, c| create_thing_type(s, c, req("bulbs"))).unwrap();
    assert_eq!(first, again);
    let err = run(&mut s, |s, c| create_thing_type(s, c, req("other"))).unwrap_err();
    assert_eq!(err.aws_error_code(), "ResourceAlreadyExistsException");

    let d = describe_thing_type(&s, &ctx(), "lamp").unwrap();
    assert_eq!(d.thing_type_id, first.thing_type_id);
    assert_eq!(
        d.thing_type_properties.thing_type_description.as_deref(),
        Some("bulbs")
    );
    assert!(!d.thing_type_metadata.deprecated);
    assert_eq!(d.thing_type_metadata.deprecation_date, None);
    assert_eq!(d.thing_type_metadata.creation_date, 1_700_000_000.0);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json["thingTypeProperties"]["searchableAttributes"],
        serde_json::json!(["watts"])
    );
    assert_eq!(
        code(describe_thing_type(&s, &ctx(), "nope")),
        "ResourceNotFoundException"
    );
}

#[test]
fn thing_type_properties_are_validated() {
    let mut s = RegistryState::default();
    let mqtt5 = |a: PropagatingAttribute| ThingTypeProperties {
        mqtt5_configuration: Some(Mqtt5Configuration {
            propagating_attributes: vec![a],
        }),
        ..Default::default()
    };
    let bad = [
        type_props("d", &["a", "b", "c", "d"]).unwrap(),
        type_props("d", &["a", "a"]).unwrap(),
        type_props("d", &["bad name"]).unwrap(),
        type_props("line\nbreak", &[]).unwrap(),
        type_props(&"x".repeat(2029), &[]).unwrap(),
        mqtt5(PropagatingAttribute {
            user_property_key: Some("k".into()),
            thing_attribute: Some("a".into()),
            connection_attribute: Some("iot:ClientId".into()),
        }),
        mqtt5(PropagatingAttribute {
            user_property_key: Some("k".into()),
            ..Default::default()
        }),
        mqtt5(PropagatingAttribute {
            user_property_key: None,
            thing_attribute: Some("a".into()),
            ..Default::default()
        }),
        mqtt5(PropagatingAttribute {
            user_property_key: Some("bad key".into()),
            thing_attribute: Some("a".into()),
            ..Default::default()
        }),
        mqtt5(PropagatingAttribute {
            user_property_key: Some("k".into()),
            connection_attribute: Some("iot/x".into()),
            ..Default::default()
        }),
    ];
    for props in bad {
        let dbg = format!("{props:?}");
        let req = CreateThingTypeRequest {
            thing_type_name: "t".into(),
            thing_type_properties: Some(props),
            tags: None,
        };
        let err = run(&mut s, |s, c| create_thing_type(s, c, req)).unwrap_err();
        assert_eq!(err.aws_error_code(), "InvalidRequestException", "{dbg}");
    }
    let good = CreateThingTypeRequest {
        thing_type_name: "t".into(),
        thing_type_properties: Some(ThingTypeProperties {
            thing_type_description: Some("Lamps, all kinds: ä ✓".into()),
            searchable_attributes: Some(vec!["a".into(), "b".into(), "c".into()]),
            mqtt5_configuration: Some(Mqtt5Configuration {
                propagating_attributes: vec![
                    PropagatingAttribute {
                        user_property_key: Some("serial".into()),
                        thing_attribute: Some("serialNumber".into()),
                        ..Default::default()
                    },
                    PropagatingAttribute {
                        user_property_key: Some("$client".into()),
                        connection_attribute: Some("iot:ClientId".into()),
                        ..Default::default()
                    },
                ],
            }),
        }),
        tags: None,
    };
    run(&mut s, |s, c| create_thing_type(s, c, good)).unwrap();
    assert!(s.thing_types.contains_key("t"));
}

#[test]
fn list_thing_types_pages_and_filters_by_name() {
    let mut s = RegistryState::default();
    for n in ["a", "b", "c"] {
        thing_type(&mut s, n);
    }
    deprecate(&mut s, "b", false);
    let first = list_thing_types(
        &s,
        &ctx(),
        ListThingTypesRequest {
            max_results: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.thing_types.len(), 2);
    assert!(first.thing_types[1].thing_type_metadata.deprecated);
    let second = list_thing_types(
        &s,
        &ctx(),
        ListThingTypesRequest {
            max_results: Some(2),
            next_token: first.next_token,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(second.thing_types[0].thing_type_name, "c");
    assert!(second.next_token.is_none());
    let named = list_thing_types(
        &s,
        &ctx(),
        ListThingTypesRequest {
            thing_type_name: Some("b".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(named.thing_types.len(), 1);
    assert_eq!(
        named.thing_types[0].thing_type_arn,
        "arn:aws:iot:us-east-1:123456789012:thingtype/b"
    );
    let bad = ListThingTypesRequest {
        max_results: Some(-1),
        ..Default::default()
    };
    assert_eq!(
        code(list_thing_types(&s, &ctx(), bad)),
        "InvalidRequestException"
    );
}

#[test]
fn deprecation_is_reversible_and_keeps_its_date() {
    let mut s = RegistryState::default();
    thing_type(&mut s, "t");
    deprecate(&mut s, "t", false);
    let t = &s.thing_types["t"];
    assert!(t.deprecated);
    assert_eq!(t.deprecation_date_ms, Some(ctx().now_ms));
    // Deprecating again later changes nothing (the 5-minute wait is not extended).
    let req = DeprecateThingTypeRequest {
        thing_type_name: "t".into(),
        undo_deprecate: false,
    };
    let (_, changes) = deprecate_thing_type(&s, &later(60_000), req).unwrap();
    assert!(changes.is_empty());
    let d = describe_thing_type(&s, &ctx(), "t").unwrap();
    assert_eq!(
        d.thing_type_metadata.deprecation_date,
        Some(1_700_000_000.0)
    );
    deprecate(&mut s, "t", true);
    let t = &s.thing_types["t"];
    assert!(!t.deprecated);
    assert_eq!(t.deprecation_date_ms, None);
    let missing = DeprecateThingTypeRequest {
        thing_type_name: "nope".into(),
        undo_deprecate: false,
    };
    assert_eq!(
        code(run(&mut s, |s, c| deprecate_thing_type(s, c, missing))),
        "ResourceNotFoundException"
    );
}

#[test]
fn thing_types_are_deleted_five_minutes_after_deprecation_when_unused() {
    let mut s = RegistryState::default();
    thing_type(&mut s, "t");
    assert_eq!(
        code(delete_thing_type(&s, &ctx(), "nope")),
        "ResourceNotFoundException"
    );
    let err = delete_thing_type(&s, &later(3_600_000), "t").unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("not deprecated"), "{err}");

    thing(&mut s, "user", Some("t"), &[]);
    deprecate(&mut s, "t", false);
    let err = delete_thing_type(&s, &later(THING_TYPE_DELETE_DELAY_MS - 1), "t").unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("in 1 seconds"), "{err}");
    let err = delete_thing_type(&s, &later(THING_TYPE_DELETE_DELAY_MS), "t").unwrap_err();
    assert!(err.to_string().contains("user"), "{err}");

    let req = UpdateThingRequest {
        thing_name: "user".into(),
        remove_thing_type: true,
        ..Default::default()
    };
    update(&mut s, req).unwrap();
    let (_, changes) = delete_thing_type(&s, &later(THING_TYPE_DELETE_DELAY_MS), "t").unwrap();
    s.apply(&changes);
    assert!(s.thing_types.is_empty());
}

#[test]
fn update_thing_type_replaces_the_given_properties() {
    let mut s = RegistryState::default();
    let req = CreateThingTypeRequest {
        thing_type_name: "t".into(),
        thing_type_properties: type_props("old", &["a"]),
        tags: None,
    };
    run(&mut s, |s, c| create_thing_type(s, c, req)).unwrap();
    let upd = |p: ThingTypeProperties| UpdateThingTypeRequest {
        thing_type_name: "t".into(),
        thing_type_properties: Some(p),
    };
    let only_description = ThingTypeProperties {
        thing_type_description: Some("new".into()),
        ..Default::default()
    };
    run(&mut s, |s, c| {
        update_thing_type(s, c, upd(only_description))
    })
    .unwrap();
    let p = &s.thing_types["t"].properties;
    assert_eq!(p.thing_type_description.as_deref(), Some("new"));
    assert_eq!(p.searchable_attributes, Some(vec!["a".to_owned()]));
    let clear = ThingTypeProperties {
        searchable_attributes: Some(vec![]),
        ..Default::default()
    };
    run(&mut s, |s, c| update_thing_type(s, c, upd(clear))).unwrap();
    assert_eq!(s.thing_types["t"].properties.searchable_attributes, None);
    let too_many = ThingTypeProperties {
        searchable_attributes: Some(vec!["a".into(), "b".into(), "c".into(), "d".into()]),
        ..Default::default()
    };
    assert_eq!(
        code(run(&mut s, |s, c| update_thing_type(s, c, upd(too_many)))),
        "InvalidRequestException"
    );
    let missing = UpdateThingTypeRequest {
        thing_type_name: "nope".into(),
        thing_type_properties: None,
    };
    assert_eq!(
        code(run(&mut s, |s, c| update_thing_type(s, c, missing))),
        "ResourceNotFoundException"
    );
}

// ------------------------------------------------------------------------------- thing groups

#[test]
fn create_thing_group_is_idempotent_and_describes_its_ancestry() {
    let mut s = RegistryState::default();
    group(&mut s, "root", None).unwrap();
    group(&mut s, "mid", Some("root")).unwrap();
    let req = |d: &str| CreateThingGroupRequest {
        thing_group_name: "leaf".into(),
        parent_group_name: Some("mid".into()),
        thing_group_properties: Some(ThingGroupProperties {
            thing_group_description: Some(d.into()),
            attribute_payload: payload(&[("floor", "2")], false),
        }),
        tags: None,
    };
    let first = run(&mut s, |s, c| create_thing_group(s, c, req("leaves"))).unwrap();
    let again = run(&mut s, |s, c| create_thing_group(s, c, req("leaves"))).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        first.thing_group_arn,
        "arn:aws:iot:us-east-1:123456789012:thinggroup/leaf"
    );
    let err = run(&mut s, |s, c| create_thing_group(s, c, req("other"))).unwrap_err();
    assert_eq!(err.aws_error_code(), "ResourceAlreadyExistsException");
    // Same properties under another parent: a different group.
    assert_eq!(
        code(group(&mut s, "mid", None)),
        "ResourceAlreadyExistsException"
    );

    let d = describe_thing_group(&s, &ctx(), "leaf").unwrap();
    assert_eq!(d.thing_group_id, first.thing_group_id);
    assert_eq!(d.version, 1);
    assert_eq!(
        d.thing_group_metadata.parent_group_name.as_deref(),
        Some("mid")
    );
    let chain: Vec<&str> = d
        .thing_group_metadata
        .root_to_parent_thing_groups
        .iter()
        .map(|g| g.group_name.as_str())
        .collect();
    assert_eq!(chain, ["root", "mid"]);
    assert_eq!(
        d.thing_group_metadata.root_to_parent_thing_groups[0].group_arn,
        "arn:aws:iot:us-east-1:123456789012:thinggroup/root"
    );
    assert_eq!(d.thing_group_metadata.creation_date, 1_700_000_000.0);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json["thingGroupProperties"],
        serde_json::json!({
            "thingGroupDescription": "leaves",
            "attributePayload": {"attributes": {"floor": "2"}}
        })
    );
    let root = describe_thing_group(&s, &ctx(), "root").unwrap();
    assert!(
        root.thing_group_metadata
            .root_to_parent_thing_groups
            .is_empty()
    );
    assert_eq!(
        code(describe_thing_group(&s, &ctx(), "nope")),
        "ResourceNotFoundException"
    );
}

#[test]
fn group_hierarchy_limits() {
    let mut s = RegistryState::default();
    assert_eq!(
        code(group(&mut s, "orphan", Some("nope"))),
        "ResourceNotFoundException"
    );
    // Levels 1..=7 are allowed, an 8th is not.
    group(&mut s, "l1", None).unwrap();
    for level in 2..=MAX_GROUP_DEPTH {
        group(
            &mut s,
            &format!("l{level}"),
            Some(&format!("l{}", level - 1)),
        )
        .unwrap();
    }
    let err = group(&mut s, "l8", Some("l7")).unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("7 levels"), "{err}");
    assert_eq!(s.group_ancestors("l7").len(), 6);
    assert_eq!(s.group_root("l7"), "l1");

    // 100 direct children, not 101.
    group(&mut s, "p", None).unwrap();
    for i in 0..MAX_CHILD_GROUPS {
        group(&mut s, &format!("c{i}"), Some("p")).unwrap();
    }
    assert_eq!(
        code(group(&mut s, "c100", Some("p"))),
        "InvalidRequestException"
    );

    // 50 attributes, not 51.
    let many: BTreeMap<String, String> =
        (0..51).map(|i| (format!("a{i}"), "v".to_owned())).collect();
    let req = CreateThingGroupRequest {
        thing_group_name: "big".into(),
        thing_group_properties: Some(ThingGroupProperties {
            thing_group_description: None,
            attribute_payload: Some(AttributePayload {
                attributes: many,
                merge: false,
            }),
        }),
        ..Default::default()
    };
    assert_eq!(
        code(run(&mut s, |s, c| create_thing_group(s, c, req))),
        "InvalidRequestException"
    );
    for bad in ["", "a b", "x/y"] {
        assert_eq!(code(group(&mut s, bad, None)), "InvalidRequestException");
    }
}

fn group_names(r: ListThingGroupsResponse) -> Vec<String> {
    r.thing_groups.into_iter().map(|g| g.group_name).collect()
}

#[test]
fn list_thing_groups_filters_by_parent_prefix_and_recursion() {
    let mut s = RegistryState::default();
    group(&mut s, "a", None).unwrap();
    group(&mut s, "a1", Some("a")).unwrap();
    group(&mut s, "a1x", Some("a1")).unwrap();
    group(&mut s, "a2", Some("a")).unwrap();
    group(&mut s, "b", None).unwrap();
    let list = |parent: Option<&str>, prefix: Option<&str>, recursive: Option<bool>| {
        let req = ListThingGroupsRequest {
            parent_group: parent.map(Into::into),
            name_prefix_filter: prefix.map(Into::into),
            recursive,
            ..Default::default()
        };
        group_names(list_thing_groups(&s, &ctx(), req).unwrap())
    };
    assert_eq!(list(None, None, None), ["a", "a1", "a1x", "a2", "b"]);
    assert_eq!(list(None, None, Some(true)), ["a", "a1", "a1x", "a2", "b"]);
    assert_eq!(list(None, None, Some(false)), ["a", "b"]);
    assert_eq!(list(Some("a"), None, None), ["a1", "a2"]);
    assert_eq!(list(Some("a"), None, Some(false)), ["a1", "a2"]);
    assert_eq!(list(Some("a"), None, Some(true)), ["a1", "a1x", "a2"]);
    assert_eq!(list(None, Some("a1"), None), ["a1", "a1x"]);
    assert_eq!(list(Some("a"), Some("a2"), Some(true)), ["a2"]);

    let first = list_thing_groups(
        &s,
        &ctx(),
        ListThingGroupsRequest {
            max_results: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        first.thing_groups[0].group_arn,
        "arn:aws:iot:us-east-1:123456789012:thinggroup/a"
    );
    let rest = list_thing_groups(
        &s,
        &ctx(),
        ListThingGroupsRequest {
            max_results: Some(3),
            next_token: first.next_token.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(group_names(first), ["a", "a1", "a1x"]);
    assert_eq!(group_names(rest), ["a2", "b"]);

    let missing_parent = ListThingGroupsRequest {
        parent_group: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(
        code(list_thing_groups(&s, &ctx(), missing_parent)),
        "ResourceNotFoundException"
    );
}

#[test]
fn update_thing_group_merges_and_checks_the_version() {
    let mut s = RegistryState::default();
    let req = CreateThingGroupRequest {
        thing_group_name: "g".into(),
        thing_group_properties: Some(ThingGroupProperties {
            thing_group_description: Some("first".into()),
            attribute_payload: payload(&[("a", "1"), ("b", "2")], false),
        }),
        ..Default::default()
    };
    run(&mut s, |s, c| create_thing_group(s, c, req)).unwrap();
    let upd = |props: Option<ThingGroupProperties>, v: Option<i64>| UpdateThingGroupRequest {
        thing_group_name: "g".into(),
        thing_group_properties: props,
        expected_version: v,
    };
    let merge = ThingGroupProperties {
        thing_group_description: None,
        attribute_payload: payload(&[("a", ""), ("c", "3")], true),
    };
    let answer = run(&mut s, |s, c| {
        update_thing_group(s, c, upd(Some(merge), Some(1)))
    })
    .unwrap();
    assert_eq!(answer.version, 2);
    let g = &s.thing_groups["g"];
    assert_eq!(g.attributes, attrs(&[("b", "2"), ("c", "3")]));
    assert_eq!(g.description.as_deref(), Some("first"));

    let stale = ThingGroupProperties::default();
    let err = run(&mut s, |s, c| {
        update_thing_group(s, c, upd(Some(stale), Some(1)))
    })
    .unwrap_err();
    assert_eq!(err.aws_error_code(), "VersionConflictException");

    let replace = ThingGroupProperties {
        thing_group_description: Some(String::new()),
        attribute_payload: payload(&[("z", "9")], false),
    };
    let answer = run(&mut s, |s, c| {
        update_thing_group(s, c, upd(Some(replace), None))
    })
    .unwrap();
    assert_eq!(answer.version, 3);
    let g = &s.thing_groups["g"];
    assert_eq!(g.attributes, attrs(&[("z", "9")]));
    assert_eq!(g.description, None);

    assert_eq!(
        code(run(&mut s, |s, c| update_thing_group(
            s,
            c,
            upd(None, None)
        ))),
        "InvalidRequestException"
    );
    let missing = UpdateThingGroupRequest {
        thing_group_name: "nope".into(),
        thing_group_properties: Some(ThingGroupProperties::default()),
        expected_version: None,
    };
    assert_eq!(
        code(run(&mut s, |s, c| update_thing_group(s, c, missing))),
        "ResourceNotFoundException"
    );
}

#[test]
fn delete_thing_group_rules() {
    let mut s = RegistryState::default();
    let del = |name: &str, v: Option<i64>| DeleteThingGroupRequest {
        thing_group_name: name.into(),
        expected_version: v,
    };
    let (_, changes) = delete_thing_group(&s, &ctx(), del("ghost", None)).unwrap();
    assert!(changes.is_empty());

    group(&mut s, "p", None).unwrap();
    group(&mut s, "c", Some("p")).unwrap();
    thing(&mut s, "t1", None, &[]);
    thing(&mut s, "t2", None, &[]);
    add(&mut s, "c", "t1").unwrap();
    add(&mut s, "c", "t2").unwrap();
    let err = run(&mut s, |s, c| delete_thing_group(s, c, del("p", None))).unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("child"), "{err}");
    assert_eq!(
        code(run(&mut s, |s, c| delete_thing_group(
            s,
            c,
            del("c", Some(5))
        ))),
        "VersionConflictException"
    );
    let (_, changes) = delete_thing_group(&s, &ctx(), del("c", Some(1))).unwrap();
    assert_eq!(changes.len(), 3);
    s.apply(&changes);
    assert!(s.group_things.is_empty() && s.thing_groups_of.is_empty());
    assert_eq!(s.things.len(), 2, "the things stay");
    run(&mut s, |s, c| delete_thing_group(s, c, del("p", None))).unwrap();
    assert!(s.thing_groups.is_empty());
}

#[test]
fn membership_by_name_or_arn() {
    let mut s = RegistryState::default();
    group(&mut s, "g", None).unwrap();
    thing(&mut s, "t", None, &[]);
    let by_arn = ThingGroupMembershipRequest {
        thing_group_arn: Some("arn:aws:iot:us-east-1:123456789012:thinggroup/g".into()),
        thing_arn: Some("arn:aws:iot:us-east-1:123456789012:thing/t".into()),
        override_dynamic_groups: Some(true),
        ..Default::default()
    };
    run(&mut s, |s, c| add_thing_to_thing_group(s, c, by_arn)).unwrap();
    assert!(s.group_things.contains(&("g".into(), "t".into())));
    // Again: idempotent, no change.
    let (_, changes) = add_thing_to_thing_group(
        &s,
        &ctx(),
        ThingGroupMembershipRequest {
            thing_group_name: Some("g".into()),
            thing_name: Some("t".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(changes.is_empty());

    let bad = [
        ThingGroupMembershipRequest {
            thing_name: Some("t".into()),
            ..Default::default()
        },
        ThingGroupMembershipRequest {
            thing_group_name: Some("g".into()),
            ..Default::default()
        },
        ThingGroupMembershipRequest {
            thing_group_name: Some("g".into()),
            thing_group_arn: Some("arn:aws:iot:us-east-1:123456789012:thinggroup/h".into()),
            thing_name: Some("t".into()),
            ..Default::default()
        },
        ThingGroupMembershipRequest {
            thing_group_name: Some("g".into()),
            thing_arn: Some("arn:aws:iot:eu-west-1:123456789012:thing/t".into()),
            ..Default::default()
        },
        ThingGroupMembershipRequest {
            thing_group_name: Some("g".into()),
            thing_arn: Some("arn:aws:iot:us-east-1:123456789012:thinggroup/t".into()),
            ..Default::default()
        },
        ThingGroupMembershipRequest {
            thing_group_name: Some("g".into()),
            thing_name: Some("bad name".into()),
            ..Default::default()
        },
    ];
    for req in bad {
        let dbg = format!("{req:?}");
        let err = add_thing_to_thing_group(&s, &ctx(), req.clone()).unwrap_err();
        assert_eq!(err.aws_error_code(), "InvalidRequestException", "{dbg}");
        let err = remove_thing_from_thing_group(&s, &ctx(), req).unwrap_err();
        assert_eq!(err.aws_error_code(), "InvalidRequestException", "{dbg}");
    }
    assert_eq!(code(add(&mut s, "nope", "t")), "ResourceNotFoundException");
    assert_eq!(code(add(&mut s, "g", "nope")), "ResourceNotFoundException");
    assert_eq!(
        code(remove(&mut s, "nope", "t")),
        "ResourceNotFoundException"
    );

    remove(&mut s, "g", "t").unwrap();
    assert!(s.group_things.is_empty());
    // Removing a non-member succeeds and changes nothing.
    remove(&mut s, "g", "t").unwrap();
}

#[test]
fn a_thing_is_in_at_most_ten_groups_and_one_per_hierarchy() {
    let mut s = RegistryState::default();
    thing(&mut s, "t", None, &[]);
    for i in 0..=MAX_GROUPS_PER_THING {
        group(&mut s, &format!("g{i:02}"), None).unwrap();
    }
    for i in 0..MAX_GROUPS_PER_THING {
        add(&mut s, &format!("g{i:02}"), "t").unwrap();
    }
    let err = add(&mut s, "g10", "t").unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("10"), "{err}");
    // Already a member: still fine at the limit.
    add(&mut s, "g00", "t").unwrap();

    // One hierarchy: root r with children x and y, x with child xx.
    group(&mut s, "r", None).unwrap();
    group(&mut s, "x", Some("r")).unwrap();
    group(&mut s, "y", Some("r")).unwrap();
    group(&mut s, "xx", Some("x")).unwrap();
    thing(&mut s, "u", None, &[]);
    add(&mut s, "xx", "u").unwrap();
    for other in ["r", "x", "y"] {
        let err = add(&mut s, other, "u").unwrap_err();
        assert_eq!(err.aws_error_code(), "InvalidRequestException", "{other}");
        assert!(err.to_string().contains("same hierarchy"), "{err}");
    }
    // Another hierarchy is fine.
    add(&mut s, "g00", "u").unwrap();
    // After leaving xx, u may join another group of that hierarchy.
    remove(&mut s, "xx", "u").unwrap();
    add(&mut s, "y", "u").unwrap();
}

#[test]
fn listing_members_and_memberships() {
    let mut s = RegistryState::default();
    group(&mut s, "r", None).unwrap();
    group(&mut s, "c", Some("r")).unwrap();
    group(&mut s, "cc", Some("c")).unwrap();
    group(&mut s, "other", None).unwrap();
    for t in ["t1", "t2", "t3", "t4"] {
        thing(&mut s, t, None, &[]);
    }
    add(&mut s, "r", "t3").unwrap();
    add(&mut s, "c", "t2").unwrap();
    add(&mut s, "cc", "t1").unwrap();
    add(&mut s, "other", "t4").unwrap();
    add(&mut s, "other", "t1").unwrap();

    let list = |group: &str, recursive: Option<bool>, max: Option<i64>, token: Option<String>| {
        let req = ListThingsInThingGroupRequest {
            thing_group_name: group.into(),
            recursive,
            next_token: token,
            max_results: max,
        };
        list_things_in_thing_group(&s, &ctx(), req).unwrap()
    };
    assert_eq!(list("r", None, None, None).things, ["t3"]);
    assert_eq!(list("r", Some(false), None, None).things, ["t3"]);
    assert_eq!(list("r", Some(true), None, None).things, ["t1", "t2", "t3"]);
    assert_eq!(list("c", Some(true), None, None).things, ["t1", "t2"]);
    let first = list("r", Some(true), Some(2), None);
    assert_eq!(first.things, ["t1", "t2"]);
    let rest = list("r", Some(true), Some(2), first.next_token);
    assert_eq!(rest.things, ["t3"]);
    assert!(rest.next_token.is_none());
    let missing = ListThingsInThingGroupRequest {
        thing_group_name: "nope".into(),
        ..Default::default()
    };
    assert_eq!(
        code(list_things_in_thing_group(&s, &ctx(), missing)),
        "ResourceNotFoundException"
    );

    let groups_of = |thing: &str, max: Option<i64>, token: Option<String>| {
        let req = ListThingGroupsForThingRequest {
            thing_name: thing.into(),
            next_token: token,
            max_results: max,
        };
        list_thing_groups_for_thing(&s, &ctx(), req).unwrap()
    };
    let first = groups_of("t1", Some(1), None);
    assert_eq!(first.thing_groups[0].group_name, "cc");
    assert_eq!(
        first.thing_groups[0].group_arn,
        "arn:aws:iot:us-east-1:123456789012:thinggroup/cc"
    );
    let rest = groups_of("t1", Some(1), first.next_token);
    assert_eq!(rest.thing_groups[0].group_name, "other");
    assert!(rest.next_token.is_none());
    assert!(groups_of("t2", None, None).thing_groups.len() == 1);
    let missing = ListThingGroupsForThingRequest {
        thing_name: "nope".into(),
        ..Default::default()
    };
    assert_eq!(
        code(list_thing_groups_for_thing(&s, &ctx(), missing)),
        "ResourceNotFoundException"
    );
    let bad_token = ListThingGroupsForThingRequest {
        thing_name: "t1".into(),
        next_token: Some("xyz".into()),
        ..Default::default()
    };
    assert_eq!(
        code(list_thing_groups_for_thing(&s, &ctx(), bad_token)),
        "InvalidRequestException"
    );
}

#[test]
fn types_groups_and_memberships_reload_from_records() {
    let mut s = RegistryState::default();
    let mut all = Vec::new();
    let mut step = |s: &mut RegistryState, changes: Vec<Change>| {
        s.apply(&changes);
        all.extend(changes);
    };
    let req = CreateThingTypeRequest {
        thing_type_name: "ty".into(),
        thing_type_properties: type_props("d", &["a"]),
        tags: None,
    };
    let changes = create_thing_type(&s, &ctx(), req).unwrap().1;
    step(&mut s, changes);
    let req = DeprecateThingTypeRequest {
        thing_type_name: "ty".into(),
        undo_deprecate: false,
    };
    let changes = deprecate_thing_type(&s, &ctx(), req).unwrap().1;
    step(&mut s, changes);
    let req = CreateThingGroupRequest {
        thing_group_name: "g".into(),
        ..Default::default()
    };
    let changes = create_thing_group(&s, &ctx(), req).unwrap().1;
    step(&mut s, changes);
    let req = CreateThingGroupRequest {
        thing_group_name: "h".into(),
        parent_group_name: Some("g".into()),
        ..Default::default()
    };
    let changes = create_thing_group(&s, &ctx(), req).unwrap().1;
    step(&mut s, changes);
    let req = CreateThingRequest {
        thing_name: "t".into(),
        ..Default::default()
    };
    let changes = create_thing(&s, &ctx(), req).unwrap().1;
    step(&mut s, changes);
    let req = ThingGroupMembershipRequest {
        thing_group_name: Some("h".into()),
        thing_name: Some("t".into()),
        ..Default::default()
    };
    let changes = add_thing_to_thing_group(&s, &ctx(), req).unwrap().1;
    step(&mut s, changes);

    // The store keeps the last record of each key.
    let mut latest: BTreeMap<(String, String), RegistryRecord> = BTreeMap::new();
    for c in &all {
        match c.write_op().unwrap() {
            WriteOp::PutRegistry(r) => {
                latest.insert((r.kind.clone(), r.key.clone()), r);
            }
            other => panic!("{other:?}"),
        }
    }
    let records: Vec<RegistryRecord> = latest.into_values().collect();
    let reloaded = RegistryState::from_records(&records).unwrap();
    assert_eq!(reloaded.thing_types, s.thing_types);
    assert_eq!(reloaded.thing_groups, s.thing_groups);
    assert_eq!(reloaded.things, s.things);
    assert_eq!(reloaded.group_things, s.group_things);
    assert!(reloaded.thing_types["ty"].deprecated);
    assert_eq!(
        describe_thing_group(&reloaded, &ctx(), "h")
            .unwrap()
            .thing_group_metadata
            .parent_group_name
            .as_deref(),
        Some("g")
    );
}
