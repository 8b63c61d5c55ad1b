"""Registry events: every type off until UpdateEventConfigurations turns it on (boto3 and the
AWS CLI), then the server itself publishes each committed change on its `$aws/events/...`
topic with AWS's payload; the configuration survives a restart."""

from __future__ import annotations

import json

import pytest

import aws
from clients import Paho, uid

pytestmark = pytest.mark.ferrocore_only

ACCOUNT = "000000000000"
ALL_TYPES = [
    "THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION", "JOB", "JOB_EXECUTION", "POLICY", "CERTIFICATE", "CA_CERTIFICATE",
]
REGISTRY_TYPES = [
    "THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
]


def arn(resource: str) -> str:
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:{resource}"


def observer(broker) -> Paho:
    """An anonymous client of the --dev listener (allow-all) subscribed to every event."""
    p = Paho(broker, transport="tcp")
    p.connect()
    assert p.subscribe("$aws/events/#", qos=1) == [1]
    return p


def registry_events(obs: Paho, n: int) -> list[tuple[str, dict]]:
    """The next `n` registry events (topic, payload), skipping lifecycle events."""
    out = []
    while len(out) < n:
        m = obs.get()
        if m.topic.startswith(("$aws/events/presence/", "$aws/events/subscriptions/")):
            continue
        assert m.qos == 1 and not m.retain, m.topic
        out.append((m.topic, json.loads(m.payload)))
    return out


def one_event(obs: Paho, topic: str) -> dict:
    [(got, payload)] = registry_events(obs, 1)
    assert got == topic
    return payload


def common(payload: dict, event_type: str, operation: str) -> None:
    assert payload["eventType"] == event_type
    assert payload["operation"] == operation
    assert isinstance(payload["timestamp"], int) and payload["timestamp"] > 1_600_000_000_000
    assert isinstance(payload["eventId"], str) and payload["eventId"]


def test_registry_events_are_off_by_default_and_published_per_enabled_type(start_broker):
    b = start_broker()
    iot = aws.iot(b)
    described = iot.describe_event_configurations()
    assert described["eventConfigurations"] == {t: {"Enabled": False} for t in ALL_TYPES}

    with observer(b) as obs:
        # While everything is off, nothing is published.
        quiet_type, quiet_group, quiet = uid("qtype"), uid("qgroup"), uid("quiet")
        iot.create_thing_type(thingTypeName=quiet_type)
        iot.create_thing(thingName=quiet, thingTypeName=quiet_type)
        iot.create_thing_group(thingGroupName=quiet_group)
        iot.add_thing_to_thing_group(thingGroupName=quiet_group, thingName=quiet)
        iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True}})
        marker = uid("marker")
        iot.create_thing(thingName=marker)
        # Events are published in commit order: the first one is the marker's.
        one_event(obs, f"$aws/events/thing/{marker}/created")

        iot.update_event_configurations(
            eventConfigurations={t: {"Enabled": True} for t in REGISTRY_TYPES}
        )
        described = iot.describe_event_configurations()
        assert described["eventConfigurations"] == {
            t: {"Enabled": t in REGISTRY_TYPES} for t in ALL_TYPES
        }
        assert described["lastModifiedDate"] >= described["creationDate"]
        seen: list[dict] = []

        # Thing types.
        bulb = uid("bulb")
        created_type = iot.create_thing_type(
            thingTypeName=bulb,
            thingTypeProperties={"thingTypeDescription": "bulbs", "searchableAttributes": ["watts"]},
        )
        e = one_event(obs, f"$aws/events/thingType/{bulb}/created")
        common(e, "THING_TYPE_EVENT", "CREATED")
        assert e["accountId"] == ACCOUNT
        assert e["thingTypeId"] == created_type["thingTypeId"]
        assert e["thingTypeName"] == bulb
        assert e["isDeprecated"] is False and e["deprecationDate"] is None
        assert e["searchableAttributes"] == ["watts"]
        assert e["description"] == "bulbs"
        seen.append(e)

        # Things and their type.
        lamp = uid("lamp")
        created = iot.create_thing(
            thingName=lamp, thingTypeName=bulb, attributePayload={"attributes": {"room": "1"}}
        )
        (t1, thing), (t2, assoc) = registry_events(obs, 2)
        assert t1 == f"$aws/events/thing/{lamp}/created"
        common(thing, "THING_EVENT", "CREATED")
        assert thing["accountId"] == ACCOUNT
        assert thing["thingId"] == created["thingId"]
        assert thing["thingName"] == lamp
        assert thing["versionNumber"] == 1
        assert thing["thingTypeName"] == bulb
        assert thing["attributes"] == {"room": "1"}
        assert t2 == f"$aws/events/thingTypeAssociation/thing/{lamp}/thingType/{bulb}/added"
        common(assoc, "THING_TYPE_ASSOCIATION_EVENT", "ADDED")
        assert (assoc["thingId"], assoc["thingName"], assoc["thingTypeName"]) == (
            created["thingId"], lamp, bulb
        )
        seen += [thing, assoc]

        iot.update_thing(thingName=lamp, attributePayload={"attributes": {"room": "2"}, "merge": True})
        e = one_event(obs, f"$aws/events/thing/{lamp}/updated")
        common(e, "THING_EVENT", "UPDATED")
        assert e["versionNumber"] == 2 and e["attributes"] == {"room": "2"}
        seen.append(e)

        # Thing groups and their hierarchy.
        site, floor = uid("site"), uid("floor")
        root = iot.create_thing_group(thingGroupName=site)
        e = one_event(obs, f"$aws/events/thingGroup/{site}/created")
        common(e, "THING_GROUP_EVENT", "CREATED")
        assert e["accountId"] == ACCOUNT
        assert e["thingGroupId"] == root["thingGroupId"] and e["thingGroupName"] == site
        assert e["versionNumber"] == 1
        assert e["parentGroupName"] is None and e["parentGroupId"] is None
        assert e["rootToParentThingGroups"] is None
        assert e["attributes"] == {}
        seen.append(e)

        child = iot.create_thing_group(
            thingGroupName=floor,
            parentGroupName=site,
            thingGroupProperties={"attributePayload": {"attributes": {"level": "1"}}},
        )
        (t1, group), (t2, hierarchy) = registry_events(obs, 2)
        assert t1 == f"$aws/events/thingGroup/{floor}/created"
        assert group["thingGroupId"] == child["thingGroupId"]
        assert group["parentGroupName"] == site and group["parentGroupId"] == root["thingGroupId"]
        assert group["rootToParentThingGroups"] == [
            {"groupArn": arn(f"thinggroup/{site}"), "groupId": root["thingGroupId"]}
        ]
        assert group["attributes"] == {"level": "1"}
        assert t2 == f"$aws/events/thingGroupHierarchy/thingGroup/{site}/childThingGroup/{floor}/added"
        common(hierarchy, "THING_GROUP_HIERARCHY_EVENT", "ADDED")
        assert hierarchy["thingGroupId"] == root["thingGroupId"]
        assert hierarchy["thingGroupName"] == site
        assert hierarchy["childGroupId"] == child["thingGroupId"]
        assert hierarchy["childGroupName"] == floor
        seen += [group, hierarchy]

        iot.update_thing_group(
            thingGroupName=floor, thingGroupProperties={"thingGroupDescription": "first floor"}
        )
        e = one_event(obs, f"$aws/events/thingGroup/{floor}/updated")
        common(e, "THING_GROUP_EVENT", "UPDATED")
        assert e["versionNumber"] == 2 and e["description"] == "first floor"
        seen.append(e)

        # Memberships.
        iot.add_thing_to_thing_group(thingGroupName=floor, thingName=lamp)
        added = one_event(
            obs, f"$aws/events/thingGroupMembership/thingGroup/{floor}/thing/{lamp}/added"
        )
        common(added, "THING_GROUP_MEMBERSHIP_EVENT", "ADDED")
        assert added["accountId"] == ACCOUNT
        assert added["groupArn"] == arn(f"thinggroup/{floor}")
        assert added["groupId"] == child["thingGroupId"]
        assert added["thingArn"] == arn(f"thing/{lamp}")
        assert added["thingId"] == created["thingId"]
        assert added["membershipId"]
        iot.remove_thing_from_thing_group(thingGroupName=floor, thingName=lamp)
        removed = one_event(
            obs, f"$aws/events/thingGroupMembership/thingGroup/{floor}/thing/{lamp}/removed"
        )
        common(removed, "THING_GROUP_MEMBERSHIP_EVENT", "REMOVED")
        assert removed["membershipId"] == added["membershipId"]
        seen += [added, removed]

        # Deprecating a type is an update.
        iot.deprecate_thing_type(thingTypeName=bulb)
        e = one_event(obs, f"$aws/events/thingType/{bulb}/updated")
        common(e, "THING_TYPE_EVENT", "UPDATED")
        assert e["isDeprecated"] is True and e["deprecationDate"] == e["timestamp"]
        seen.append(e)

        # Deletions describe what they deleted; relations end first.
        iot.delete_thing(thingName=lamp)
        (t1, assoc), (t2, thing) = registry_events(obs, 2)
        assert t1 == f"$aws/events/thingTypeAssociation/thing/{lamp}/thingType/{bulb}/removed"
        common(assoc, "THING_TYPE_ASSOCIATION_EVENT", "REMOVED")
        assert t2 == f"$aws/events/thing/{lamp}/deleted"
        common(thing, "THING_EVENT", "DELETED")
        assert thing["thingId"] == created["thingId"] and thing["versionNumber"] == 2
        seen += [assoc, thing]

        iot.delete_thing_group(thingGroupName=floor)
        (t1, hierarchy), (t2, group) = registry_events(obs, 2)
        assert t1 == f"$aws/events/thingGroupHierarchy/thingGroup/{site}/childThingGroup/{floor}/removed"
        common(hierarchy, "THING_GROUP_HIERARCHY_EVENT", "REMOVED")
        assert t2 == f"$aws/events/thingGroup/{floor}/deleted"
        common(group, "THING_GROUP_EVENT", "DELETED")
        assert group["thingGroupId"] == child["thingGroupId"]
        seen += [hierarchy, group]

        assert len({e["eventId"] for e in seen}) == len(seen)

        # Turned off again: nothing more (the marker proves it, THING staying on).
        iot.update_event_configurations(
            eventConfigurations={t: {"Enabled": False} for t in REGISTRY_TYPES if t != "THING"}
        )
        iot.create_thing_group(thingGroupName=uid("quiet"))
        marker = uid("marker")
        iot.create_thing(thingName=marker)
        one_event(obs, f"$aws/events/thing/{marker}/created")


def test_event_configurations_through_the_cli_refusals_and_a_restart(start_broker):
    b = start_broker()
    iot = aws.iot(b)
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.update_event_configurations(
            eventConfigurations={"THING": {"Enabled": True}, "THINGS": {"Enabled": True}}
        )
    assert "THINGS" in e.value.response["Error"]["Message"]
    assert iot.describe_event_configurations()["eventConfigurations"]["THING"] == {"Enabled": False}

    aws.cli(b, "iot", "update-event-configurations", "--event-configurations",
            json.dumps({"THING_GROUP": {"Enabled": True}, "CERTIFICATE": {"Enabled": True}}))
    out = aws.cli(b, "iot", "describe-event-configurations")
    assert out["eventConfigurations"] == {
        t: {"Enabled": t in ("THING_GROUP", "CERTIFICATE")} for t in ALL_TYPES
    }
    assert "creationDate" in out and "lastModifiedDate" in out

    b.restart()
    iot = aws.iot(b)
    after = iot.describe_event_configurations()
    assert after["eventConfigurations"] == out["eventConfigurations"]
    with observer(b) as obs:
        group = uid("group")
        iot.create_thing_group(thingGroupName=group)
        e = one_event(obs, f"$aws/events/thingGroup/{group}/created")
        common(e, "THING_GROUP_EVENT", "CREATED")
