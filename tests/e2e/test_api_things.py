"""The `iot` control plane for things, thing types and thing groups, through boto3 and the
AWS CLI v1."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

import aws
from clients import uid

pytestmark = pytest.mark.ferrocore_only


def test_create_thing_is_idempotent_and_describe_returns_it(broker):
    iot = aws.iot(broker)
    name = uid("thing")
    created = iot.create_thing(thingName=name, attributePayload={"attributes": {"room": "1"}})
    assert created["thingName"] == name
    assert created["thingArn"] == f"arn:aws:iot:us-east-1:000000000000:thing/{name}"
    again = iot.create_thing(thingName=name, attributePayload={"attributes": {"room": "1"}})
    assert again["thingId"] == created["thingId"]
    described = iot.describe_thing(thingName=name)
    assert described["thingId"] == created["thingId"]
    assert described["attributes"] == {"room": "1"}
    assert described["version"] == 1
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"room": "2"}})
    assert e.value.response["resourceId"] == created["thingId"]


def test_errors_raise_the_modelled_exceptions(broker):
    iot = aws.iot(broker)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=uid("missing"))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing(thingName=uid("bad") + "!")


def test_aws_cli_uses_the_data_directory_files(broker):
    name = uid("cli")
    out = aws.cli(broker, "iot", "create-thing", "--thing-name", name)
    assert out["thingName"] == name
    assert aws.cli(broker, "iot", "describe-thing", "--thing-name", name)["version"] == 1
    err = aws.cli_error(broker, "iot", "describe-thing", "--thing-name", uid("none"))
    assert "ResourceNotFoundException" in err


def test_unsigned_and_wrongly_signed_requests_get_aws_403(broker):
    import json
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(broker.ca))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{aws.endpoint(broker)}/things", context=ctx, timeout=10)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(e.value.read())["message"] == "Missing Authentication Token"

    wrong = aws.session(broker).client(
        "iot",
        endpoint_url=aws.endpoint(broker),
        verify=str(broker.ca),
        aws_access_key_id=aws.session(broker).get_credentials().access_key,
        aws_secret_access_key="x" * 40,
    )
    with pytest.raises(ClientError) as e:
        wrong.describe_thing(thingName="anything")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# ------------------------------------------------------------------------------------------
# Things: ListThings, UpdateThing, DeleteThing


def _all(iot, operation: str, result_key: str, **kwargs) -> list:
    """Every item of a paginated listing, through botocore's paginator."""
    items = []
    for page in iot.get_paginator(operation).paginate(**kwargs):
        items.extend(page[result_key])
    return items


def test_list_things_filters_and_pages(broker):
    iot = aws.iot(broker)
    tag = uid("suite")  # a unique attribute value: the broker is shared with other tests
    type_name = uid("lamp")
    iot.create_thing_type(thingTypeName=type_name)
    names = sorted(uid("lt") for _ in range(5))
    for i, name in enumerate(names):
        typed = i % 2 == 0
        iot.create_thing(
            thingName=name,
            **({"thingTypeName": type_name} if typed else {}),
            attributePayload={"attributes": {"suite": f"{tag}-{i}"}},
        )

    listed = _all(
        iot,
        "list_things",
        "things",
        attributeName="suite",
        attributeValue=tag,
        usePrefixAttributeValue=True,
        PaginationConfig={"PageSize": 2},
    )
    assert [t["thingName"] for t in listed] == names
    first = listed[0]
    assert first["thingArn"] == f"arn:aws:iot:us-east-1:000000000000:thing/{names[0]}"
    assert first["thingTypeName"] == type_name
    assert first["attributes"] == {"suite": f"{tag}-0"}
    assert first["version"] == 1
    assert "thingTypeName" not in listed[1]

    page = iot.list_things(attributeName="suite", attributeValue=tag, usePrefixAttributeValue=True,
                           maxResults=2)
    assert len(page["things"]) == 2 and page["nextToken"]

    exact = iot.list_things(attributeName="suite", attributeValue=f"{tag}-3")["things"]
    assert [t["thingName"] for t in exact] == [names[3]]
    assert iot.list_things(attributeName="suite", attributeValue=tag)["things"] == []
    typed = _all(iot, "list_things", "things", thingTypeName=type_name)
    assert [t["thingName"] for t in typed] == [names[0], names[2], names[4]]

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.list_things(maxResults=251)
    assert "maxResults" in e.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_things(nextToken="not-a-token")


def test_update_thing_merges_attributes_and_checks_versions(broker):
    iot = aws.iot(broker)
    name, type_name = uid("upd"), uid("type")
    iot.create_thing_type(thingTypeName=type_name)
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})

    iot.update_thing(
        thingName=name,
        attributePayload={"attributes": {"a": "9", "b": "", "c": "3"}, "merge": True},
        expectedVersion=1,
    )
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"a": "9", "c": "3"}
    assert d["version"] == 2

    iot.update_thing(thingName=name, thingTypeName=type_name,
                     attributePayload={"attributes": {"z": "0"}})
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"z": "0"}
    assert d["thingTypeName"] == type_name
    assert d["version"] == 3

    with pytest.raises(iot.exceptions.VersionConflictException) as e:
        iot.update_thing(thingName=name, attributePayload={"attributes": {}}, expectedVersion=1)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    iot.update_thing(thingName=name, removeThingType=True)
    d = iot.describe_thing(thingName=name)
    assert "thingTypeName" not in d
    assert d["version"] == 4

    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, thingTypeName=type_name, removeThingType=True)
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.update_thing(thingName=name, attributePayload={
            "attributes": {"a": "1", "b": "2", "c": "3", "d": "4"}})
    assert "at most 3 attributes" in e.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing(thingName=uid("missing"), attributePayload={"attributes": {}})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing(thingName=name, thingTypeName=uid("no-type"))


def test_delete_thing(broker):
    iot = aws.iot(broker)
    name, group = uid("del"), uid("delgroup")
    iot.create_thing(thingName=name)
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)

    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing(thingName=name, expectedVersion=2)
    iot.delete_thing(thingName=name, expectedVersion=1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)
    # Its group memberships went with it.
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == []
    # Deleting a thing that does not exist succeeds, as on AWS.
    iot.delete_thing(thingName=name)
    iot.delete_thing(thingName=uid("never"), expectedVersion=3)


def test_create_thing_refuses_billing_groups(broker):
    iot = aws.iot(broker)
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing(thingName=uid("bill"), billingGroupName="anything")
    assert "billingGroupName" in e.value.response["Error"]["Message"]


# ------------------------------------------------------------------------------------------
# Thing types


def test_thing_types(broker):
    iot = aws.iot(broker)
    name = uid("tt")
    props = {
        "thingTypeDescription": "traffic lights",
        "searchableAttributes": ["wattage", "model"],
        "mqtt5Configuration": {"propagatingAttributes": [
            {"userPropertyKey": "model", "thingAttribute": "model"},
            {"userPropertyKey": "client", "connectionAttribute": "iot:ClientId"},
        ]},
    }
    created = iot.create_thing_type(thingTypeName=name, thingTypeProperties=props,
                                    tags=[{"Key": "team", "Value": "ops"}])
    assert created["thingTypeArn"] == f"arn:aws:iot:us-east-1:000000000000:thingtype/{name}"
    again = iot.create_thing_type(thingTypeName=name, thingTypeProperties=props)
    assert again["thingTypeId"] == created["thingTypeId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing_type(thingTypeName=name,
                              thingTypeProperties={"thingTypeDescription": "other"})

    d = iot.describe_thing_type(thingTypeName=name)
    assert d["thingTypeId"] == created["thingTypeId"]
    assert d["thingTypeProperties"] == props
    meta = d["thingTypeMetadata"]
    assert meta["deprecated"] is False
    assert "deprecationDate" not in meta
    assert meta["creationDate"].timestamp() > 1_600_000_000  # epoch seconds, parsed

    listed = iot.list_thing_types(thingTypeName=name)["thingTypes"]
    assert [t["thingTypeName"] for t in listed] == [name]
    assert listed[0]["thingTypeArn"] == created["thingTypeArn"]
    everything = _all(iot, "list_thing_types", "thingTypes", PaginationConfig={"PageSize": 1})
    assert name in [t["thingTypeName"] for t in everything]

    iot.update_thing_type(thingTypeName=name,
                          thingTypeProperties={"thingTypeDescription": "lights"})
    d = iot.describe_thing_type(thingTypeName=name)
    assert d["thingTypeProperties"]["thingTypeDescription"] == "lights"
    assert d["thingTypeProperties"]["searchableAttributes"] == ["wattage", "model"]

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing_type(thingTypeName=uid("tt"), thingTypeProperties={
            "searchableAttributes": ["a", "b", "c", "d"]})
    assert "3 searchable" in e.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=uid("missing"))


def test_deprecated_thing_types(broker):
    iot = aws.iot(broker)
    name = uid("dep")
    iot.create_thing_type(thingTypeName=name)
    in_use = uid("user")
    iot.create_thing(thingName=in_use, thingTypeName=name)

    # Not deprecated: cannot be deleted.
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_type(thingTypeName=name)
    assert "not deprecated" in e.value.response["Error"]["Message"]

    iot.deprecate_thing_type(thingTypeName=name)
    meta = iot.describe_thing_type(thingTypeName=name)["thingTypeMetadata"]
    assert meta["deprecated"] is True
    assert meta["deprecationDate"] >= meta["creationDate"]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing(thingName=uid("new"), thingTypeName=name)
    assert "deprecated" in e.value.response["Error"]["Message"]
    # Things that had it keep it.
    assert iot.describe_thing(thingName=in_use)["thingTypeName"] == name
    # Deprecated moments ago: AWS wants 5 minutes before deletion.
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_type(thingTypeName=name)
    assert "seconds" in e.value.response["Error"]["Message"]

    iot.deprecate_thing_type(thingTypeName=name, undoDeprecate=True)
    meta = iot.describe_thing_type(thingTypeName=name)["thingTypeMetadata"]
    assert meta["deprecated"] is False
    iot.create_thing(thingName=uid("new"), thingTypeName=name)

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.deprecate_thing_type(thingTypeName=uid("missing"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_thing_type(thingTypeName=uid("missing"))


# ------------------------------------------------------------------------------------------
# Static thing groups


def test_thing_group_hierarchy(broker):
    iot = aws.iot(broker)
    root, mid, leaf = uid("root"), uid("mid"), uid("leaf")
    created = iot.create_thing_group(
        thingGroupName=root,
        thingGroupProperties={"thingGroupDescription": "site",
                              "attributePayload": {"attributes": {"city": "Oslo"}}},
        tags=[{"Key": "k", "Value": "v"}],
    )
    assert created["thingGroupArn"] == f"arn:aws:iot:us-east-1:000000000000:thinggroup/{root}"
    again = iot.create_thing_group(
        thingGroupName=root,
        thingGroupProperties={"thingGroupDescription": "site",
                              "attributePayload": {"attributes": {"city": "Oslo"}}},
    )
    assert again["thingGroupId"] == created["thingGroupId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=mid, parentGroupName=root)
    iot.create_thing_group(thingGroupName=leaf, parentGroupName=mid)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing_group(thingGroupName=uid("orphan"), parentGroupName=uid("missing"))

    d = iot.describe_thing_group(thingGroupName=leaf)
    assert d["version"] == 1
    meta = d["thingGroupMetadata"]
    assert meta["parentGroupName"] == mid
    assert meta["rootToParentThingGroups"] == [
        {"groupName": root, "groupArn": created["thingGroupArn"]},
        {"groupName": mid, "groupArn": f"arn:aws:iot:us-east-1:000000000000:thinggroup/{mid}"},
    ]
    assert meta["creationDate"].timestamp() > 1_600_000_000
    d = iot.describe_thing_group(thingGroupName=root)
    assert d["thingGroupProperties"] == {"thingGroupDescription": "site",
                                         "attributePayload": {"attributes": {"city": "Oslo"}}}
    assert "parentGroupName" not in d["thingGroupMetadata"]

    def names(**kwargs):
        return [g["groupName"] for g in _all(iot, "list_thing_groups", "thingGroups", **kwargs)]

    assert names(parentGroup=root) == [mid]
    assert names(parentGroup=root, recursive=True) == sorted([mid, leaf])
    assert names(namePrefixFilter=root) == [root]
    assert root in names(PaginationConfig={"PageSize": 1})
    assert leaf not in names(recursive=False)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups(parentGroup=uid("missing"))

    # A hierarchy is at most 7 levels deep.
    parent = leaf
    for _ in range(4):
        child = uid("deep")
        iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
        parent = child
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing_group(thingGroupName=uid("deep"), parentGroupName=parent)
    assert "7 levels" in e.value.response["Error"]["Message"]


def test_update_and_delete_thing_groups(broker):
    iot = aws.iot(broker)
    parent, child = uid("pg"), uid("cg")
    iot.create_thing_group(
        thingGroupName=parent,
        thingGroupProperties={"attributePayload": {"attributes": {"a": "1", "b": "2"}}},
    )
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent)

    out = iot.update_thing_group(
        thingGroupName=parent,
        thingGroupProperties={"thingGroupDescription": "new",
                              "attributePayload": {"attributes": {"a": "", "c": "3"},
                                                   "merge": True}},
        expectedVersion=1,
    )
    assert out["version"] == 2
    props = iot.describe_thing_group(thingGroupName=parent)["thingGroupProperties"]
    assert props == {"thingGroupDescription": "new",
                     "attributePayload": {"attributes": {"b": "2", "c": "3"}}}
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_thing_group(thingGroupName=parent, thingGroupProperties={},
                               expectedVersion=1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_group(thingGroupName=uid("missing"), thingGroupProperties={})

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_group(thingGroupName=parent)
    assert "child" in e.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing_group(thingGroupName=child, expectedVersion=9)
    iot.delete_thing_group(thingGroupName=child, expectedVersion=1)
    iot.delete_thing_group(thingGroupName=parent)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=parent)
    # Deleting a missing group succeeds (the model lists no ResourceNotFound for it).
    iot.delete_thing_group(thingGroupName=parent)


def test_thing_group_membership(broker):
    iot = aws.iot(broker)
    root, a, b, other = uid("mroot"), uid("ma"), uid("mb"), uid("mother")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=a, parentGroupName=root)
    iot.create_thing_group(thingGroupName=b, parentGroupName=root)
    iot.create_thing_group(thingGroupName=other)
    t1, t2 = sorted([uid("mt"), uid("mt")])
    iot.create_thing(thingName=t1)
    iot.create_thing(thingName=t2)
    arn = "arn:aws:iot:us-east-1:000000000000"

    iot.add_thing_to_thing_group(thingGroupName=a, thingName=t1)
    iot.add_thing_to_thing_group(thingGroupArn=f"{arn}:thinggroup/{root}",
                                 thingArn=f"{arn}:thing/{t2}")
    iot.add_thing_to_thing_group(thingGroupName=a, thingName=t1)  # idempotent
    iot.add_thing_to_thing_group(thingGroupName=other, thingName=t1, overrideDynamicGroups=True)

    # One group per hierarchy.
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.add_thing_to_thing_group(thingGroupName=b, thingName=t1)
    assert "same hierarchy" in e.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupName=uid("missing"), thingName=t1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupName=a, thingName=uid("missing"))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName=a)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName=a, thingArn="arn:aws:iot:eu-west-1:1:thing/x")

    assert iot.list_things_in_thing_group(thingGroupName=root)["things"] == [t2]
    assert _all(iot, "list_things_in_thing_group", "things", thingGroupName=root,
                recursive=True, PaginationConfig={"PageSize": 1}) == [t1, t2]
    page = iot.list_things_in_thing_group(thingGroupName=root, recursive=True, maxResults=1)
    assert page["things"] == [t1] and page["nextToken"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_things_in_thing_group(thingGroupName=uid("missing"))

    groups = _all(iot, "list_thing_groups_for_thing", "thingGroups", thingName=t1,
                  PaginationConfig={"PageSize": 1})
    assert groups == sorted(
        [{"groupName": g, "groupArn": f"{arn}:thinggroup/{g}"} for g in (a, other)],
        key=lambda g: g["groupName"],
    )
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups_for_thing(thingName=uid("missing"))

    iot.remove_thing_from_thing_group(thingGroupName=a, thingName=t1)
    iot.remove_thing_from_thing_group(thingGroupName=a, thingName=t1)  # idempotent
    iot.remove_thing_from_thing_group(thingGroupArn=f"{arn}:thinggroup/{root}",
                                      thingArn=f"{arn}:thing/{t2}")
    assert iot.list_things_in_thing_group(thingGroupName=root, recursive=True)["things"] == []
    # Out of that hierarchy, t1 may join another of its groups.
    iot.add_thing_to_thing_group(thingGroupName=b, thingName=t1)
    # Deleting a group drops its memberships.
    iot.delete_thing_group(thingGroupName=other)
    groups = iot.list_thing_groups_for_thing(thingName=t1)["thingGroups"]
    assert [g["groupName"] for g in groups] == [b]


def test_a_thing_is_in_at_most_ten_groups(broker):
    iot = aws.iot(broker)
    thing = uid("ten")
    iot.create_thing(thingName=thing)
    groups = [uid("g10") for _ in range(11)]
    for g in groups:
        iot.create_thing_group(thingGroupName=g)
    for g in groups[:10]:
        iot.add_thing_to_thing_group(thingGroupName=g, thingName=thing)
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.add_thing_to_thing_group(thingGroupName=groups[10], thingName=thing)
    assert "10 thing groups" in e.value.response["Error"]["Message"]


# ------------------------------------------------------------------------------------------
# The AWS CLI v1 on every resource kind


def test_aws_cli_on_things_types_and_groups(broker):
    thing, type_name, parent, child = uid("cli"), uid("clitype"), uid("clip"), uid("clic")
    out = aws.cli(broker, "iot", "create-thing-type", "--thing-type-name", type_name,
                  "--thing-type-properties",
                  '{"thingTypeDescription": "cli type", "searchableAttributes": ["serial"]}')
    assert out["thingTypeName"] == type_name
    d = aws.cli(broker, "iot", "describe-thing-type", "--thing-type-name", type_name)
    assert d["thingTypeProperties"]["searchableAttributes"] == ["serial"]
    listed = aws.cli(broker, "iot", "list-thing-types", "--thing-type-name", type_name)
    assert [t["thingTypeName"] for t in listed["thingTypes"]] == [type_name]

    aws.cli(broker, "iot", "create-thing", "--thing-name", thing, "--thing-type-name", type_name)
    aws.cli(broker, "iot", "update-thing", "--thing-name", thing, "--attribute-payload",
            '{"attributes": {"serial": "42"}, "merge": true}', "--expected-version", "1")
    listed = aws.cli(broker, "iot", "list-things", "--attribute-name", "serial",
                     "--attribute-value", "42", "--thing-type-name", type_name)
    assert [t["thingName"] for t in listed["things"]] == [thing]
    err = aws.cli_error(broker, "iot", "update-thing", "--thing-name", thing,
                        "--expected-version", "1")
    assert "VersionConflictException" in err

    aws.cli(broker, "iot", "create-thing-group", "--thing-group-name", parent)
    aws.cli(broker, "iot", "create-thing-group", "--thing-group-name", child,
            "--parent-group-name", parent,
            "--thing-group-properties", '{"thingGroupDescription": "cli child"}')
    d = aws.cli(broker, "iot", "describe-thing-group", "--thing-group-name", child)
    assert d["thingGroupMetadata"]["parentGroupName"] == parent
    aws.cli(broker, "iot", "add-thing-to-thing-group", "--thing-group-name", child,
            "--thing-name", thing)
    out = aws.cli(broker, "iot", "list-things-in-thing-group", "--thing-group-name", parent,
                  "--recursive")
    assert out["things"] == [thing]
    out = aws.cli(broker, "iot", "list-thing-groups-for-thing", "--thing-name", thing)
    assert [g["groupName"] for g in out["thingGroups"]] == [child]
    out = aws.cli(broker, "iot", "list-thing-groups", "--parent-group", parent)
    assert [g["groupName"] for g in out["thingGroups"]] == [child]
    out = aws.cli(broker, "iot", "update-thing-group", "--thing-group-name", child,
                  "--thing-group-properties", '{"thingGroupDescription": "renamed"}')
    assert out["version"] == 2
    err = aws.cli_error(broker, "iot", "delete-thing-group", "--thing-group-name", parent)
    assert "InvalidRequestException" in err
    aws.cli(broker, "iot", "remove-thing-from-thing-group", "--thing-group-name", child,
            "--thing-name", thing)
    aws.cli(broker, "iot", "delete-thing-group", "--thing-group-name", child)
    aws.cli(broker, "iot", "delete-thing-group", "--thing-group-name", parent)

    aws.cli(broker, "iot", "deprecate-thing-type", "--thing-type-name", type_name)
    d = aws.cli(broker, "iot", "describe-thing-type", "--thing-type-name", type_name)
    assert d["thingTypeMetadata"]["deprecated"] is True
    err = aws.cli_error(broker, "iot", "delete-thing-type", "--thing-type-name", type_name)
    assert "InvalidRequestException" in err
    aws.cli(broker, "iot", "deprecate-thing-type", "--thing-type-name", type_name,
            "--undo-deprecate")
    aws.cli(broker, "iot", "update-thing-type", "--thing-type-name", type_name,
            "--thing-type-properties", '{"thingTypeDescription": "updated"}')

    aws.cli(broker, "iot", "delete-thing", "--thing-name", thing)
    err = aws.cli_error(broker, "iot", "describe-thing", "--thing-name", thing)
    assert "ResourceNotFoundException" in err
    err = aws.cli_error(broker, "iot", "create-thing-group", "--thing-group-name", uid("bad") + "!")
    assert "InvalidRequestException" in err


# ------------------------------------------------------------------------------------------
# Durability


def test_registry_survives_a_restart(start_broker):
    b = start_broker(ferrocore_only=True)
    iot = aws.iot(b)
    type_name, old_type = uid("rtype"), uid("rold")
    root, child = uid("rroot"), uid("rchild")
    t1, t2 = sorted([uid("rt"), uid("rt")])
    iot.create_thing_type(thingTypeName=type_name,
                          thingTypeProperties={"thingTypeDescription": "kept"})
    iot.create_thing_type(thingTypeName=old_type)
    iot.deprecate_thing_type(thingTypeName=old_type)
    iot.create_thing(thingName=t1, thingTypeName=type_name,
                     attributePayload={"attributes": {"k": "v"}})
    iot.create_thing(thingName=t2)
    iot.update_thing(thingName=t2, attributePayload={"attributes": {"x": "1"}})
    iot.create_thing_group(thingGroupName=root,
                           thingGroupProperties={"thingGroupDescription": "root"})
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=t1)
    iot.add_thing_to_thing_group(thingGroupName=root, thingName=t2)
    before = {
        "t1": iot.describe_thing(thingName=t1),
        "t2": iot.describe_thing(thingName=t2),
        "type": iot.describe_thing_type(thingTypeName=type_name),
        "old": iot.describe_thing_type(thingTypeName=old_type),
        "child": iot.describe_thing_group(thingGroupName=child),
    }

    b.restart()
    iot = aws.iot(b)
    after = {
        "t1": iot.describe_thing(thingName=t1),
        "t2": iot.describe_thing(thingName=t2),
        "type": iot.describe_thing_type(thingTypeName=type_name),
        "old": iot.describe_thing_type(thingTypeName=old_type),
        "child": iot.describe_thing_group(thingGroupName=child),
    }
    for key, value in before.items():
        value.pop("ResponseMetadata")
        after[key].pop("ResponseMetadata")
        assert after[key] == value, key
    assert after["t2"]["version"] == 2
    assert after["old"]["thingTypeMetadata"]["deprecated"] is True
    assert iot.list_things_in_thing_group(thingGroupName=root, recursive=True)["things"] == [t1, t2]
    groups = iot.list_thing_groups_for_thing(thingName=t1)["thingGroups"]
    assert [g["groupName"] for g in groups] == [child]
    assert [t["thingName"] for t in iot.list_things(thingTypeName=type_name)["things"]] == [t1]


def test_delete_thing_refuses_while_principals_are_attached(broker):
    """AWS answers InvalidRequestException while a certificate is attached to the thing."""
    iot = aws.iot(broker)
    name = uid("withcert")
    iot.create_thing(thingName=name)
    cert = iot.create_keys_and_certificate(setAsActive=False)
    iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing(thingName=name)
    assert "DetachThingPrincipal" in e.value.response["Error"]["Message"]
    assert iot.describe_thing(thingName=name)["thingName"] == name
    iot.detach_thing_principal(thingName=name, principal=cert["certificateArn"])
    iot.delete_thing(thingName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)
