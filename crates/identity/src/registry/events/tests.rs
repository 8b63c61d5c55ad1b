#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ferrocore_store::{Durability, RegistryRecord, Store, WriteOp};
use serde_json::json;

use super::*;
use crate::registry::tests::{ctx, run};
use crate::registry::{
    AttributePayload, CreatePolicyRequest, CreatePolicyVersionRequest, CreateThingGroupRequest,
    CreateThingRequest, CreateThingTypeRequest, DeleteThingGroupRequest, DeleteThingRequest,
    DeprecateThingTypeRequest, RegisterCaCertificateRequest, RegisterCertificateWithoutCaRequest,
    Registry, THING_TYPE_DELETE_DELAY_MS, ThingGroupMembershipRequest, ThingGroupProperties,
    ThingTypeProperties, UpdateCaCertificateRequest, UpdateThingGroupRequest, UpdateThingRequest,
    add_thing_to_thing_group, attach_policy, create_policy, create_policy_version, create_thing,
    create_thing_group, create_thing_type, delete_ca_certificate, delete_certificate,
    delete_policy, delete_policy_version, delete_thing, delete_thing_group, delete_thing_type,
    deprecate_thing_type, detach_policy, register_ca_certificate, register_certificate_without_ca,
    remove_thing_from_thing_group, update_ca_certificate, update_certificate, update_thing,
    update_thing_group, uuid_v4,
};
use crate::testing::{TestCa, ten_years};
use crate::x509::Validity;

const ACCOUNT: &str = "123456789012";
/// `ctx()`'s time in Unix milliseconds.
const NOW_MS: i64 = 1_700_000_000_000;

fn update_request(settings: &[(&str, bool)]) -> UpdateEventConfigurationsRequest {
    UpdateEventConfigurationsRequest {
        event_configurations: Some(
            settings
                .iter()
                .map(|(name, enabled)| ((*name).to_owned(), Configuration { enabled: *enabled }))
                .collect(),
        ),
    }
}

fn enable(s: &mut RegistryState, types: &[EventType]) {
    let settings: Vec<(&str, bool)> = types.iter().map(|t| (t.as_str(), true)).collect();
    run(s, |s, c| {
        update_event_configurations(s, c, update_request(&settings))
    })
    .unwrap();
}

fn at(now_ms: i64) -> Ctx {
    Ctx { now_ms, ..ctx() }
}

/// Runs `op` at `ctx` as [`Registry::write`] does: the events from the state before, then the
/// changes applied. Event ids count up from `event-1`.
fn announce_at<T>(
    s: &mut RegistryState,
    ctx: &Ctx,
    op: impl FnOnce(&RegistryState, &Ctx) -> Result<(T, Vec<Change>), RegistryError>,
) -> Vec<RegistryEvent> {
    let (_, changes) = op(s, ctx).unwrap();
    let mut n = 0;
    let events = registry_events(s, &changes, ctx, || {
        n += 1;
        Ok(format!("event-{n}"))
    })
    .unwrap();
    s.apply(&changes);
    events
}

fn announce<T>(
    s: &mut RegistryState,
    op: impl FnOnce(&RegistryState, &Ctx) -> Result<(T, Vec<Change>), RegistryError>,
) -> Vec<RegistryEvent> {
    announce_at(s, &ctx(), op)
}

fn topics(events: &[RegistryEvent]) -> Vec<&str> {
    events.iter().map(|e| e.topic.as_str()).collect()
}

fn thing_request(name: &str, type_name: Option<&str>) -> CreateThingRequest {
    CreateThingRequest {
        thing_name: name.into(),
        thing_type_name: type_name.map(str::to_owned),
        ..Default::default()
    }
}

fn group_request(name: &str, parent: Option<&str>) -> CreateThingGroupRequest {
    CreateThingGroupRequest {
        thing_group_name: name.into(),
        parent_group_name: parent.map(str::to_owned),
        ..Default::default()
    }
}

fn membership(group: &str, thing: &str) -> ThingGroupMembershipRequest {
    ThingGroupMembershipRequest {
        thing_group_name: Some(group.into()),
        thing_name: Some(thing.into()),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Configurations

#[test]
fn every_type_is_off_until_turned_on() {
    let s = RegistryState::default();
    let described = serde_json::to_value(describe_event_configurations(&s, &ctx()).unwrap());
    let off = json!({"Enabled": false});
    assert_eq!(
        described.unwrap(),
        json!({"eventConfigurations": {
            "THING": off, "THING_GROUP": off, "THING_TYPE": off, "THING_GROUP_MEMBERSHIP": off,
            "THING_GROUP_HIERARCHY": off, "THING_TYPE_ASSOCIATION": off, "JOB": off,
            "JOB_EXECUTION": off, "POLICY": off, "CERTIFICATE": off, "CA_CERTIFICATE": off,
        }})
    );
}

#[test]
fn an_update_sets_the_types_it_names_and_keeps_the_others() {
    let mut s = RegistryState::default();
    enable(&mut s, &[EventType::Thing, EventType::ThingGroup]);
    let later = at(NOW_MS + 5000);
    let (_, changes) = update_event_configurations(
        &s,
        &later,
        update_request(&[("THING", false), ("POLICY", true)]),
    )
    .unwrap();
    s.apply(&changes);
    let described = serde_json::to_value(describe_event_configurations(&s, &later).unwrap());
    let described = described.unwrap();
    let enabled = |t: &str| described["eventConfigurations"][t]["Enabled"].clone();
    assert_eq!(enabled("THING"), json!(false));
    assert_eq!(enabled("THING_GROUP"), json!(true));
    assert_eq!(enabled("POLICY"), json!(true));
    assert_eq!(enabled("CERTIFICATE"), json!(false));
    assert_eq!(described["creationDate"], json!(1_700_000_000.0));
    assert_eq!(described["lastModifiedDate"], json!(1_700_000_005.0));
}

#[test]
fn an_unknown_type_refuses_the_whole_update() {
    let mut s = RegistryState::default();
    let err = run(&mut s, |s, c| {
        update_event_configurations(s, c, update_request(&[("THING", true), ("THINGS", true)]))
    })
    .unwrap_err();
    assert_eq!(err.aws_error_code(), "InvalidRequestException");
    assert!(err.to_string().contains("'THINGS'"), "{err}");
    assert!(s.event_configurations.is_none());
    // Naming no type changes nothing.
    let (_, changes) =
        update_event_configurations(&s, &ctx(), UpdateEventConfigurationsRequest::default())
            .unwrap();
    assert!(changes.is_empty());
}

#[test]
fn requests_read_aws_member_names_and_types_their_wire_names() {
    let req: UpdateEventConfigurationsRequest = serde_json::from_value(
        json!({"eventConfigurations": {"CA_CERTIFICATE": {"Enabled": true}, "JOB": {}}}),
    )
    .unwrap();
    let mut s = RegistryState::default();
    run(&mut s, |s, c| update_event_configurations(s, c, req)).unwrap();
    assert!(s.event_enabled(EventType::CaCertificate));
    assert!(!s.event_enabled(EventType::Job));
    for t in EventType::ALL {
        assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        assert_eq!(EventType::parse(t.as_str()).unwrap(), t);
    }
}

#[test]
fn configurations_reload_from_their_record() {
    let mut s = RegistryState::default();
    let (_, changes) = update_event_configurations(
        &s,
        &ctx(),
        update_request(&[("THING", true), ("CERTIFICATE", true)]),
    )
    .unwrap();
    s.apply(&changes);
    let records: Vec<RegistryRecord> = changes
        .iter()
        .map(|c| match c.write_op().unwrap() {
            WriteOp::PutRegistry(r) => r,
            other => panic!("{other:?}"),
        })
        .collect();
    let reloaded = RegistryState::from_records(&records).unwrap();
    assert_eq!(reloaded.event_configurations, s.event_configurations);
}

#[tokio::test]
async fn configurations_survive_a_reopen_and_events_reach_the_listeners_once_enabled() {
    let dir = std::env::temp_dir().join(format!("ferrocore-events-{}", uuid_v4().unwrap()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.db");
    let store = Store::open_sqlite(&path, Durability::Process)
        .await
        .unwrap();
    let registry = Registry::open(store.clone(), ctx().arns).await.unwrap();
    let published = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = published.clone();
    registry.subscribe_events(Arc::new(move |events: &[RegistryEvent]| {
        sink.lock().extend(events.iter().map(|e| e.topic.clone()));
    }));
    registry
        .write(|s, c| create_thing(s, c, thing_request("quiet", None)))
        .await
        .unwrap();
    registry
        .write(|s, c| update_event_configurations(s, c, update_request(&[("THING", true)])))
        .await
        .unwrap();
    registry
        .write(|s, c| create_thing(s, c, thing_request("heard", None)))
        .await
        .unwrap();
    assert_eq!(
        *published.lock(),
        vec!["$aws/events/thing/heard/created".to_owned()]
    );
    store.close().await.unwrap();
    drop(registry);

    let store = Store::open_sqlite(&path, Durability::Process)
        .await
        .unwrap();
    let reopened = Registry::open(store.clone(), ctx().arns).await.unwrap();
    let described = reopened
        .read(|s| describe_event_configurations(s, &ctx()))
        .unwrap();
    for (t, c) in &described.event_configurations {
        assert_eq!(c.enabled, *t == EventType::Thing, "{t:?}");
    }
    assert_eq!(described.creation_date, described.last_modified_date);
    assert!(described.creation_date.is_some());
    store.close().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Events

#[test]
fn nothing_is_announced_while_a_type_is_off() {
    let mut s = RegistryState::default();
    assert!(announce(&mut s, |s, c| create_thing(s, c, thing_request("a", None))).is_empty());
    enable(&mut s, &[EventType::ThingGroup]);
    assert!(announce(&mut s, |s, c| create_thing(s, c, thing_request("b", None))).is_empty());
    // Turning the configuration itself on or off announces nothing.
    let events = announce(&mut s, |s, c| {
        update_event_configurations(s, c, update_request(&[("THING", true)]))
    });
    assert!(events.is_empty());
}

#[test]
fn things_announce_creation_updates_and_deletion() {
    let mut s = RegistryState::default();
    enable(&mut s, &[EventType::Thing]);
    let req = CreateThingRequest {
        attribute_payload: Some(AttributePayload {
            attributes: [("room".to_owned(), "1".to_owned())].into(),
            merge: false,
        }),
        ..thing_request("lamp", None)
    };
    let created = announce(&mut s, |s, c| create_thing(s, c, req));
    let id = s.things["lamp"].id.clone();
    assert_eq!(
        created,
        vec![RegistryEvent {
            topic: "$aws/events/thing/lamp/created".into(),
            payload: json!({
                "eventType": "THING_EVENT", "eventId": "event-1", "timestamp": NOW_MS,
                "operation": "CREATED", "accountId": ACCOUNT, "thingId": id,
                "thingName": "lamp", "versionNumber": 1, "thingTypeName": null,
                "attributes": {"room": "1"},
            }),
        }]
    );
    let update = UpdateThingRequest {
        thing_name: "lamp".into(),
        attribute_payload: Some(AttributePayload {
            attributes: [("room".to_owned(), "2".to_owned())].into(),
            merge: true,
        }),
        ..Default::default()
    };
    let updated = announce(&mut s, |s, c| update_thing(s, c, update));
    assert_eq!(topics(&updated), ["$aws/events/thing/lamp/updated"]);
    assert_eq!(updated[0].payload["operation"], "UPDATED");
    assert_eq!(updated[0].payload["versionNumber"], 2);
    assert_eq!(updated[0].payload["attributes"], json!({"room": "2"}));
    let delete = DeleteThingRequest {
        thing_name: "lamp".into(),
        expected_version: None,
    };
    let deleted = announce(&mut s, |s, c| delete_thing(s, c, delete));
    assert_eq!(topics(&deleted), ["$aws/events/thing/lamp/deleted"]);
    // A deletion describes what it deleted.
    assert_eq!(deleted[0].payload["thingId"], json!(id));
    assert_eq!(deleted[0].payload["versionNumber"], 2);
    assert_eq!(deleted[0].payload["attributes"], json!({"room": "2"}));
}

#[test]
fn thing_types_announce_creation_deprecation_and_deletion() {
    let mut s = RegistryState::default();
    enable(&mut s, &[EventType::ThingType]);
    let req = CreateThingTypeRequest {
        thing_type_name: "bulb".into(),
        thing_type_properties: Some(ThingTypeProperties {
            thing_type_description: Some("A light bulb".into()),
            searchable_attributes: Some(vec!["watts".into()]),
            mqtt5_configuration: None,
        }),
        tags: None,
    };
    let created = announce(&mut s, |s, c| create_thing_type(s, c, req));
    assert_eq!(
        created,
        vec![RegistryEvent {
            topic: "$aws/events/thingType/bulb/created".into(),
            payload: json!({
                "eventType": "THING_TYPE_EVENT", "eventId": "event-1", "timestamp": NOW_MS,
                "operation": "CREATED", "accountId": ACCOUNT,
                "thingTypeId": s.thing_types["bulb"].id, "thingTypeName": "bulb",
                "isDeprecated": false, "deprecationDate": null,
                "searchableAttributes": ["watts"], "propagatingAttributes": [],
                "description": "A light bulb",
            }),
        }]
    );
    let deprecate = |undo| DeprecateThingTypeRequest {
        thing_type_name: "bulb".into(),
        undo_deprecate: undo,
    };
    let deprecated = announce(&mut s, |s, c| deprecate_thing_type(s, c, deprecate(false)));
    assert_eq!(topics(&deprecated), ["$aws/events/thingType/bulb/updated"]);
    assert_eq!(deprecated[0].payload["isDeprecated"], true);
    assert_eq!(deprecated[0].payload["deprecationDate"], NOW_MS);
    let restored = announce(&mut s, |s, c| deprecate_thing_type(s, c, deprecate(true)));
    assert_eq!(restored[0].payload["isDeprecated"], false);
    announce(&mut s, |s, c| deprecate_thing_type(s, c, deprecate(false)));
    let later = at(NOW_MS + THING_TYPE_DELETE_DELAY_MS);
    let deleted = announce_at(&mut s, &later, |s, c| delete_thing_type(s, c, "bulb"));
    assert_eq!(topics(&deleted), ["$aws/events/thingType/bulb/deleted"]);
    assert_eq!(deleted[0].payload["timestamp"], later.now_ms);
    assert_eq!(deleted[0].payload["isDeprecated"], true);
}

#[test]
fn type_associations_are_announced_as_things_gain_change_and_lose_types() {
    let mut s = RegistryState::default();
    for name in ["bulb", "tube"] {
        let req = CreateThingTypeRequest {
            thing_type_name: name.into(),
            ..Default::default()
        };
        run(&mut s, |s, c| create_thing_type(s, c, req)).unwrap();
    }
    enable(&mut s, &[EventType::ThingTypeAssociation]);
    let added = announce(&mut s, |s, c| {
        create_thing(s, c, thing_request("lamp", Some("bulb")))
    });
    assert_eq!(
        added,
        vec![RegistryEvent {
            topic: "$aws/events/thingTypeAssociation/thing/lamp/thingType/bulb/added".into(),
            payload: json!({
                "eventType": "THING_TYPE_ASSOCIATION_EVENT", "eventId": "event-1",
                "timestamp": NOW_MS, "operation": "ADDED", "thingId": s.things["lamp"].id,
                "thingName": "lamp", "thingTypeName": "bulb",
            }),
        }]
    );
    let retype = UpdateThingRequest {
        thing_name: "lamp".into(),
        thing_type_name: Some("tube".into()),
        ..Default::default()
    };
    let changed = announce(&mut s, |s, c| update_thing(s, c, retype));
    assert_eq!(
        topics(&changed),
        [
            "$aws/events/thingTypeAssociation/thing/lamp/thingType/bulb/removed",
            "$aws/events/thingTypeAssociation/thing/lamp/thingType/tube/added",
        ]
    );
    assert_eq!(changed[0].payload["operation"], "REMOVED");
    let same_type = UpdateThingRequest {
        thing_name: "lamp".into(),
        ..Default::default()
    };
    assert!(announce(&mut s, |s, c| update_thing(s, c, same_type)).is_empty());
    enable(&mut s, &[EventType::Thing]);
    let delete = DeleteThingRequest {
        thing_name: "lamp".into(),
        expected_version: None,
    };
    let deleted = announce(&mut s, |s, c| delete_thing(s, c, delete));
    assert_eq!(
        topics(&deleted),
        [
            "$aws/events/thingTypeAssociation/thing/lamp/thingType/tube/removed",
            "$aws/events/thing/lamp/deleted",
        ]
    );
}

#[test]
fn thing_groups_announce_themselves_and_their_place_in_the_hierarchy() {
    let mut s = RegistryState::default();
    enable(
        &mut s,
        &[EventType::ThingGroup, EventType::ThingGroupHierarchy],
    );
    let root = announce(&mut s, |s, c| {
        create_thing_group(s, c, group_request("site", None))
    });
    let site_id = s.thing_groups["site"].id.clone();
    assert_eq!(
        root,
        vec![RegistryEvent {
            topic: "$aws/events/thingGroup/site/created".into(),
            payload: json!({
                "eventType": "THING_GROUP_EVENT", "eventId": "event-1", "timestamp": NOW_MS,
                "operation": "CREATED", "accountId": ACCOUNT, "thingGroupId": site_id,
                "thingGroupName": "site", "versionNumber": 1, "parentGroupName": null,
                "parentGroupId": null, "description": null, "rootToParentThingGroups": null,
                "attributes": {}, "dynamicGroupMappingId": null,
            }),
        }]
    );
    let floor = announce(&mut s, |s, c| {
        create_thing_group(s, c, group_request("floor", Some("site")))
    });
    let floor_id = s.thing_groups["floor"].id.clone();
    assert_eq!(
        topics(&floor),
        [
            "$aws/events/thingGroup/floor/created",
            "$aws/events/thingGroupHierarchy/thingGroup/site/childThingGroup/floor/added",
        ]
    );
    assert_eq!(floor[0].payload["parentGroupId"], json!(site_id));
    assert_eq!(
        floor[1].payload,
        json!({
            "eventType": "THING_GROUP_HIERARCHY_EVENT", "eventId": "event-2",
            "timestamp": NOW_MS, "operation": "ADDED", "accountId": ACCOUNT,
            "thingGroupId": site_id, "thingGroupName": "site", "childGroupId": floor_id,
            "childGroupName": "floor",
        })
    );
    announce(&mut s, |s, c| {
        create_thing_group(s, c, group_request("room", Some("floor")))
    });
    let update = UpdateThingGroupRequest {
        thing_group_name: "room".into(),
        thing_group_properties: Some(ThingGroupProperties {
            thing_group_description: Some("Room 1".into()),
            attribute_payload: None,
        }),
        expected_version: None,
    };
    let updated = announce(&mut s, |s, c| update_thing_group(s, c, update));
    assert_eq!(topics(&updated), ["$aws/events/thingGroup/room/updated"]);
    let payload = &updated[0].payload;
    assert_eq!(payload["versionNumber"], 2);
    assert_eq!(payload["description"], "Room 1");
    assert_eq!(payload["parentGroupName"], "floor");
    assert_eq!(payload["parentGroupId"], json!(floor_id));
    assert_eq!(
        payload["rootToParentThingGroups"],
        json!([
            {"groupArn": format!("arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/site"), "groupId": site_id},
            {"groupArn": format!("arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/floor"), "groupId": floor_id},
        ])
    );
    let delete = DeleteThingGroupRequest {
        thing_group_name: "room".into(),
        expected_version: None,
    };
    let deleted = announce(&mut s, |s, c| delete_thing_group(s, c, delete));
    assert_eq!(
        topics(&deleted),
        [
            "$aws/events/thingGroupHierarchy/thingGroup/floor/childThingGroup/room/removed",
            "$aws/events/thingGroup/room/deleted",
        ]
    );
    assert_eq!(deleted[0].payload["operation"], "REMOVED");
    assert_eq!(deleted[1].payload["description"], "Room 1");
}

#[test]
fn memberships_announce_joining_and_leaving_with_one_membership_id() {
    let mut s = RegistryState::default();
    run(&mut s, |s, c| {
        create_thing_group(s, c, group_request("site", None))
    })
    .unwrap();
    run(&mut s, |s, c| {
        create_thing(s, c, thing_request("lamp", None))
    })
    .unwrap();
    enable(&mut s, &[EventType::ThingGroupMembership, EventType::Thing]);
    let added = announce(&mut s, |s, c| {
        add_thing_to_thing_group(s, c, membership("site", "lamp"))
    });
    let (group_id, thing_id) = (
        s.thing_groups["site"].id.clone(),
        s.things["lamp"].id.clone(),
    );
    let membership_id = added[0].payload["membershipId"].clone();
    assert_eq!(
        added,
        vec![RegistryEvent {
            topic: "$aws/events/thingGroupMembership/thingGroup/site/thing/lamp/added".into(),
            payload: json!({
                "eventType": "THING_GROUP_MEMBERSHIP_EVENT", "eventId": "event-1",
                "timestamp": NOW_MS, "operation": "ADDED", "accountId": ACCOUNT,
                "groupArn": format!("arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/site"),
                "groupId": group_id,
                "thingArn": format!("arn:aws:iot:us-east-1:{ACCOUNT}:thing/lamp"),
                "thingId": thing_id, "membershipId": membership_id,
            }),
        }]
    );
    assert_eq!(membership_id.as_str().map(str::len), Some(36));
    let removed = announce(&mut s, |s, c| {
        remove_thing_from_thing_group(s, c, membership("site", "lamp"))
    });
    assert_eq!(
        topics(&removed),
        ["$aws/events/thingGroupMembership/thingGroup/site/thing/lamp/removed"]
    );
    assert_eq!(removed[0].payload["membershipId"], membership_id);
    // A deleted thing leaves its groups first, named by the ids it had.
    announce(&mut s, |s, c| {
        add_thing_to_thing_group(s, c, membership("site", "lamp"))
    });
    let delete = DeleteThingRequest {
        thing_name: "lamp".into(),
        expected_version: None,
    };
    let deleted = announce(&mut s, |s, c| delete_thing(s, c, delete));
    assert_eq!(
        topics(&deleted),
        [
            "$aws/events/thingGroupMembership/thingGroup/site/thing/lamp/removed",
            "$aws/events/thing/lamp/deleted",
        ]
    );
    assert_eq!(deleted[0].payload["thingId"], json!(thing_id));
    assert_eq!(deleted[0].payload["membershipId"], membership_id);
}

#[test]
fn certificates_and_cas_announce_registration_status_changes_and_deletion() {
    let mut s = RegistryState::default();
    enable(&mut s, &[EventType::Certificate, EventType::CaCertificate]);
    let now_s = NOW_MS / 1000;
    let ca = TestCa::new("Events CA", ten_years(now_s));
    let register_ca = RegisterCaCertificateRequest {
        ca_certificate: Some(ca.cert.pem.clone()),
        certificate_mode: Some("SNI_ONLY".into()),
        set_as_active: true,
        ..Default::default()
    };
    let ca_events = announce(&mut s, |s, c| register_ca_certificate(s, c, register_ca));
    let ca_id = ca.cert.id.clone();
    assert_eq!(
        ca_events,
        vec![RegistryEvent {
            topic: format!("$aws/events/caCertificate/{ca_id}/created"),
            payload: json!({
                "eventType": "CA_CERTIFICATE_EVENT", "eventId": "event-1",
                "timestamp": NOW_MS, "operation": "CREATED", "accountId": ACCOUNT,
                "caCertificateId": ca_id,
                "caCertificateArn": format!("arn:aws:iot:us-east-1:{ACCOUNT}:cacert/{ca_id}"),
                "status": "ACTIVE", "autoRegistrationStatus": "DISABLE",
                "certificateMode": "SNI_ONLY",
            }),
        }]
    );
    let device = ca.sign(
        "device",
        Validity {
            not_before: now_s - 3600,
            not_after: now_s + 86_400,
        },
    );
    let register = RegisterCertificateWithoutCaRequest {
        certificate_pem: Some(device),
        status: Some("ACTIVE".into()),
    };
    let registered = announce(&mut s, |s, c| {
        register_certificate_without_ca(s, c, register)
    });
    let id = s.certificates.keys().next().unwrap().clone();
    assert_eq!(
        registered,
        vec![RegistryEvent {
            topic: format!("$aws/events/certificate/{id}/created"),
            payload: json!({
                "eventType": "CERTIFICATE_EVENT", "eventId": "event-1", "timestamp": NOW_MS,
                "operation": "CREATED", "accountId": ACCOUNT, "certificateId": id,
                "certificateArn": format!("arn:aws:iot:us-east-1:{ACCOUNT}:cert/{id}"),
                "status": "ACTIVE", "caCertificateId": null, "certificateMode": "SNI_ONLY",
            }),
        }]
    );
    let deactivated = announce(&mut s, |s, c| update_certificate(s, c, &id, "INACTIVE"));
    assert_eq!(
        topics(&deactivated),
        [format!("$aws/events/certificate/{id}/updated")]
    );
    assert_eq!(deactivated[0].payload["status"], "INACTIVE");
    let deleted = announce(&mut s, |s, c| delete_certificate(s, c, &id, false));
    assert_eq!(
        topics(&deleted),
        [format!("$aws/events/certificate/{id}/deleted")]
    );
    assert_eq!(deleted[0].payload["status"], "INACTIVE");

    let deactivate_ca = UpdateCaCertificateRequest {
        new_status: Some("INACTIVE".into()),
        ..Default::default()
    };
    let ca_updated = announce(&mut s, |s, c| {
        update_ca_certificate(s, c, &ca_id, deactivate_ca)
    });
    assert_eq!(
        topics(&ca_updated),
        [format!("$aws/events/caCertificate/{ca_id}/updated")]
    );
    assert_eq!(ca_updated[0].payload["status"], "INACTIVE");
    let ca_deleted = announce(&mut s, |s, c| delete_ca_certificate(s, c, &ca_id));
    assert_eq!(
        topics(&ca_deleted),
        [format!("$aws/events/caCertificate/{ca_id}/deleted")]
    );
}

#[test]
fn policies_announce_versions_and_attachments() {
    const DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
    let mut s = RegistryState::default();
    run(&mut s, |s, c| {
        create_thing_group(s, c, group_request("site", None))
    })
    .unwrap();
    enable(&mut s, &[EventType::Policy]);
    let create = CreatePolicyRequest {
        policy_name: "lamps+plugs".into(),
        policy_document: Some(DOCUMENT.into()),
        tags: None,
    };
    let created = announce(&mut s, |s, c| create_policy(s, c, create));
    let policy_arn = format!("arn:aws:iot:us-east-1:{ACCOUNT}:policy/lamps+plugs");
    assert_eq!(
        created,
        vec![RegistryEvent {
            topic: "$aws/events/policy/lamps%2Bplugs/created".into(),
            payload: json!({
                "eventType": "POLICY_EVENT", "eventId": "event-1", "timestamp": NOW_MS,
                "operation": "CREATED", "accountId": ACCOUNT, "policyName": "lamps+plugs",
                "policyArn": policy_arn, "defaultVersionId": "1",
            }),
        }]
    );
    let version = CreatePolicyVersionRequest {
        policy_name: "lamps+plugs".into(),
        policy_document: Some(DOCUMENT.into()),
        set_as_default: true,
    };
    let updated = announce(&mut s, |s, c| create_policy_version(s, c, version));
    assert_eq!(
        topics(&updated),
        ["$aws/events/policy/lamps%2Bplugs/updated"]
    );
    assert_eq!(updated[0].payload["defaultVersionId"], "2");

    let group_arn = format!("arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/site");
    let attached = announce(&mut s, |s, c| {
        attach_policy(s, c, "lamps+plugs", Some(&group_arn))
    });
    assert_eq!(
        attached,
        vec![RegistryEvent {
            topic: "$aws/events/policyAttachment/policy/lamps%2Bplugs/thingGroup/site/added".into(),
            payload: json!({
                "eventType": "POLICY_ATTACHMENT_EVENT", "eventId": "event-1",
                "timestamp": NOW_MS, "operation": "ADDED", "accountId": ACCOUNT,
                "policyName": "lamps+plugs", "policyArn": policy_arn, "target": group_arn,
            }),
        }]
    );
    let detached = announce(&mut s, |s, c| {
        detach_policy(s, c, "lamps+plugs", Some(&group_arn))
    });
    assert_eq!(
        topics(&detached),
        ["$aws/events/policyAttachment/policy/lamps%2Bplugs/thingGroup/site/removed"]
    );
    // Deleting a group detaches its policies.
    announce(&mut s, |s, c| {
        attach_policy(s, c, "lamps+plugs", Some(&group_arn))
    });
    let delete = DeleteThingGroupRequest {
        thing_group_name: "site".into(),
        expected_version: None,
    };
    let group_deleted = announce(&mut s, |s, c| delete_thing_group(s, c, delete));
    assert_eq!(
        topics(&group_deleted),
        ["$aws/events/policyAttachment/policy/lamps%2Bplugs/thingGroup/site/removed"]
    );
    let version_deleted = announce(&mut s, |s, c| {
        delete_policy_version(s, c, "lamps+plugs", "1")
    });
    assert_eq!(
        topics(&version_deleted),
        ["$aws/events/policy/lamps%2Bplugs/updated"]
    );
    let deleted = announce(&mut s, |s, c| delete_policy(s, c, "lamps+plugs"));
    assert_eq!(
        topics(&deleted),
        ["$aws/events/policy/lamps%2Bplugs/deleted"]
    );
    assert_eq!(deleted[0].payload["defaultVersionId"], "2");
}

#[test]
fn certificate_policy_attachments_name_the_certificate() {
    let mut s = RegistryState::default();
    let id = "a".repeat(64);
    let target = format!("arn:aws:iot:us-east-1:{ACCOUNT}:cert/{id}");
    enable(&mut s, &[EventType::Policy]);
    let changes = [Change::PolicyAttachment {
        policy: "p".into(),
        target: target.clone(),
        attached: true,
    }];
    let events = registry_events(&s, &changes, &ctx(), || Ok("e".into())).unwrap();
    assert_eq!(
        topics(&events),
        [format!(
            "$aws/events/policyAttachment/policy/p/certificate/{id}/added"
        )]
    );
    assert_eq!(events[0].payload["target"], json!(target));
}
