"""The `iot` control plane for IoT policies through boto3 and the AWS CLI v1: policies and
their versions, attachments to certificates and thing groups, GetEffectivePolicies (group
inheritance) and TestAuthorization (allow, explicit deny, implicit deny), AWS's error classes,
and policies surviving a restart."""

from __future__ import annotations

import datetime
import json

import pytest

import aws
from clients import uid
from pki import ACCOUNT, REGION, cert_arn

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str, resource: str) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action: str, resource: str) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def publish(topic: str) -> str:
    return doc(allow("iot:Publish", f"{ARN}:topic/{topic}"))


def policy_arn(name: str) -> str:
    return f"{ARN}:policy/{name}"


def group_arn(name: str) -> str:
    return f"{ARN}:thinggroup/{name}"


def new_cert(iot, active: bool = True) -> str:
    return iot.create_keys_and_certificate(setAsActive=active)["certificateId"]


def status(e) -> int:
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def message(e) -> str:
    return e.value.response["Error"]["Message"]


def names(policies: list[dict]) -> list[str]:
    return [p["policyName"] for p in policies]


# ---------------------------------------------------------------------------------------------
# policies


def test_create_get_list_delete_policy(broker):
    iot = aws.iot(broker)
    name = uid("pol")
    document = publish("a/b")
    out = iot.create_policy(policyName=name, policyDocument=document, tags=[{"Key": "team", "Value": "x"}])
    assert out["policyName"] == name
    assert out["policyArn"] == policy_arn(name)
    assert out["policyDocument"] == document
    assert out["policyVersionId"] == "1"

    got = iot.get_policy(policyName=name)
    assert got["policyName"] == name
    assert got["policyArn"] == policy_arn(name)
    assert got["policyDocument"] == document
    assert got["defaultVersionId"] == "1"
    assert got["generationId"]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((got["creationDate"] - now).total_seconds()) < 300
    assert got["lastModifiedDate"] == got["creationDate"]

    others = [uid("pol") for _ in range(3)]
    for n in others:
        iot.create_policy(policyName=n, policyDocument=publish("x"))
    listed = []
    for page in iot.get_paginator("list_policies").paginate(PaginationConfig={"PageSize": 2}):
        assert len(page["policies"]) <= 2
        listed.extend(page["policies"])
    assert {"policyName": name, "policyArn": policy_arn(name)} in listed
    order = names(listed)
    assert len(order) == len(set(order))
    # Newest first by default, oldest first with ascendingOrder.
    assert order.index(others[2]) < order.index(others[0])
    up = names(iot.list_policies(ascendingOrder=True, pageSize=250)["policies"])
    assert up.index(others[0]) < up.index(others[2])

    iot.delete_policy(policyName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.get_policy(policyName=name)
    assert status(e) == 404
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_policy(policyName=name)


def test_create_policy_errors(broker):
    iot = aws.iot(broker)
    name = uid("pol")
    iot.create_policy(policyName=name, policyDocument=publish("t"))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_policy(policyName=name, policyDocument=publish("t"))
    assert status(e) == 409
    assert e.value.response["resourceArn"] == policy_arn(name)

    bad = doc({"Effect": "Perhaps", "Action": "iot:Publish", "Resource": "*"})
    with pytest.raises(iot.exceptions.MalformedPolicyException) as e:
        iot.create_policy(policyName=uid("pol"), policyDocument=bad)
    assert status(e) == 400
    assert message(e).startswith("Policy document is Malformed")
    assert "Statement[0].Effect" in message(e)
    with pytest.raises(iot.exceptions.MalformedPolicyException):
        iot.create_policy(policyName=uid("pol"), policyDocument="{not json")
    too_long = doc(*[allow("iot:Publish", f"{ARN}:topic/{'x' * 60}/{i}") for i in range(40)])
    with pytest.raises(iot.exceptions.MalformedPolicyException) as e:
        iot.create_policy(policyName=uid("pol"), policyDocument=too_long)
    assert "2048" in message(e)

    # The name pattern is [\w+=,.@-]+, 1 to 128 characters: the server checks it.
    iot.create_policy(policyName=uid("p_+=,.@-"), policyDocument=publish("t"))
    for bad_name in ["a:b", "a*b", "x" * 129]:
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.create_policy(policyName=bad_name, policyDocument=publish("t"))


def test_policy_versions(broker):
    iot = aws.iot(broker)
    name = uid("pol")
    iot.create_policy(policyName=name, policyDocument=publish("v1"))
    v2 = iot.create_policy_version(policyName=name, policyDocument=publish("v2"))
    assert v2["policyVersionId"] == "2"
    assert v2["isDefaultVersion"] is False
    assert v2["policyArn"] == policy_arn(name)
    v3 = iot.create_policy_version(policyName=name, policyDocument=publish("v3"), setAsDefault=True)
    assert (v3["policyVersionId"], v3["isDefaultVersion"]) == ("3", True)
    got = iot.get_policy(policyName=name)
    assert (got["defaultVersionId"], got["policyDocument"]) == ("3", publish("v3"))
    assert got["lastModifiedDate"] >= got["creationDate"]

    iot.create_policy_version(policyName=name, policyDocument=publish("v4"))
    iot.create_policy_version(policyName=name, policyDocument=publish("v5"))
    with pytest.raises(iot.exceptions.VersionsLimitExceededException) as e:
        iot.create_policy_version(policyName=name, policyDocument=publish("v6"))
    assert status(e) == 409
    with pytest.raises(iot.exceptions.MalformedPolicyException):
        iot.create_policy_version(policyName=name, policyDocument="[]")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_policy_version(policyName=uid("missing"), policyDocument=publish("x"))

    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == [
        ("5", False), ("4", False), ("3", True), ("2", False), ("1", False)
    ]
    assert all(isinstance(v["createDate"], datetime.datetime) for v in versions)

    one = iot.get_policy_version(policyName=name, policyVersionId="1")
    assert one["policyDocument"] == publish("v1")
    assert one["isDefaultVersion"] is False
    assert one["policyName"] == name
    got = iot.get_policy(policyName=name)
    assert one["generationId"] == got["generationId"]
    assert one["lastModifiedDate"] == got["lastModifiedDate"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy_version(policyName=name, policyVersionId="9")

    iot.set_default_policy_version(policyName=name, policyVersionId="1")
    assert iot.get_policy(policyName=name)["policyDocument"] == publish("v1")
    assert iot.get_policy(policyName=name)["generationId"] != got["generationId"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.set_default_policy_version(policyName=name, policyVersionId="42")

    with pytest.raises(iot.exceptions.DeleteConflictException) as e:
        iot.delete_policy_version(policyName=name, policyVersionId="1")
    assert status(e) == 409
    iot.delete_policy_version(policyName=name, policyVersionId="4")
    # Version ids are not reused.
    assert iot.create_policy_version(policyName=name, policyDocument=publish("v6"))["policyVersionId"] == "6"

    # DeletePolicy needs the default version alone.
    with pytest.raises(iot.exceptions.DeleteConflictException) as e:
        iot.delete_policy(policyName=name)
    assert "DeletePolicyVersion" in message(e)
    for v in ["2", "3", "5", "6"]:
        iot.delete_policy_version(policyName=name, policyVersionId=v)
    iot.delete_policy(policyName=name)


# ---------------------------------------------------------------------------------------------
# attachments


def test_attach_detach_and_listings(broker):
    iot = aws.iot(broker)
    cid = new_cert(iot)
    root, child = uid("root"), uid("child")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    on_cert, on_root, on_child = uid("pc"), uid("pr"), uid("pch")
    for n in (on_cert, on_root, on_child):
        iot.create_policy(policyName=n, policyDocument=publish(n))
    iot.attach_policy(policyName=on_cert, target=cert_arn(cid))
    iot.attach_policy(policyName=on_cert, target=cert_arn(cid))  # idempotent
    iot.attach_policy(policyName=on_root, target=group_arn(root))
    iot.attach_policy(policyName=on_child, target=group_arn(child))
    iot.attach_policy(policyName=on_root, target=cert_arn(cid))

    assert names(iot.list_attached_policies(target=cert_arn(cid))["policies"]) == sorted([on_cert, on_root])
    assert iot.list_attached_policies(target=group_arn(child))["policies"] == [
        {"policyName": on_child, "policyArn": policy_arn(on_child)}
    ]
    rec = names(iot.list_attached_policies(target=group_arn(child), recursive=True)["policies"])
    assert sorted(rec) == sorted([on_child, on_root])
    paged = []
    for page in iot.get_paginator("list_attached_policies").paginate(
        target=group_arn(child), recursive=True, PaginationConfig={"PageSize": 1}
    ):
        assert len(page["policies"]) <= 1
        paged.extend(names(page["policies"]))
    assert paged == sorted(rec)

    targets = []
    for page in iot.get_paginator("list_targets_for_policy").paginate(
        policyName=on_root, PaginationConfig={"PageSize": 1}
    ):
        targets.extend(page["targets"])
    assert sorted(targets) == sorted([cert_arn(cid), group_arn(root)])

    with pytest.raises(iot.exceptions.DeleteConflictException) as e:
        iot.delete_policy(policyName=on_root)
    assert "DetachPolicy" in message(e)

    iot.detach_policy(policyName=on_root, target=cert_arn(cid))
    iot.detach_policy(policyName=on_root, target=cert_arn(cid))  # idempotent
    assert iot.list_targets_for_policy(policyName=on_root)["targets"] == [group_arn(root)]

    # Errors.
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=uid("missing"), target=cert_arn(cid))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=on_cert, target=cert_arn("0" * 64))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=on_cert, target=group_arn(uid("nogroup")))
    for bad in [f"{ARN}:thing/x", "arn:aws:iot:eu-west-1:000000000000:cert/" + "0" * 64, "nonsense",
                "us-east-1:0c0e4e33-0000-0000-0000-000000000000"]:
        with pytest.raises(iot.exceptions.InvalidRequestException) as e:
            iot.attach_policy(policyName=on_cert, target=bad)
        assert status(e) == 400
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_attached_policies(target=cert_arn("0" * 64))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_targets_for_policy(policyName=uid("missing"))


def test_attachment_limits(broker):
    iot = aws.iot(broker)
    cid = new_cert(iot)
    group = uid("g")
    iot.create_thing_group(thingGroupName=group)
    pols = [uid(f"lim{i}") for i in range(11)]
    for n in pols:
        iot.create_policy(policyName=n, policyDocument=publish("t"))
    for n in pols[:10]:
        iot.attach_policy(policyName=n, target=cert_arn(cid))
    with pytest.raises(iot.exceptions.LimitExceededException) as e:
        iot.attach_policy(policyName=pols[10], target=cert_arn(cid))
    assert status(e) == 410
    # AWS: at most two policies per thing group.
    iot.attach_policy(policyName=pols[0], target=group_arn(group))
    iot.attach_policy(policyName=pols[1], target=group_arn(group))
    with pytest.raises(iot.exceptions.LimitExceededException):
        iot.attach_policy(policyName=pols[2], target=group_arn(group))


def test_deletes_keep_attachments_consistent(broker):
    iot = aws.iot(broker)
    cid = new_cert(iot, active=False)
    pol = uid("pol")
    iot.create_policy(policyName=pol, policyDocument=publish("t"))
    iot.attach_policy(policyName=pol, target=cert_arn(cid))
    with pytest.raises(iot.exceptions.DeleteConflictException) as e:
        iot.delete_certificate(certificateId=cid)
    assert pol in message(e)
    iot.delete_certificate(certificateId=cid, forceDelete=True)
    assert iot.list_targets_for_policy(policyName=pol)["targets"] == []

    group = uid("g")
    iot.create_thing_group(thingGroupName=group)
    iot.attach_policy(policyName=pol, target=group_arn(group))
    iot.delete_thing_group(thingGroupName=group)
    assert iot.list_targets_for_policy(policyName=pol)["targets"] == []
    iot.delete_policy(policyName=pol)


# ---------------------------------------------------------------------------------------------
# the resolver: GetEffectivePolicies and TestAuthorization


def fleet(iot) -> dict:
    """A certificate attached to thing T (non-exclusively), T in group `child` of `root`, a
    policy on each of the certificate, `child` and `root`."""
    f = {"cert": new_cert(iot), "thing": uid("thing"), "root": uid("root"), "child": uid("child")}
    iot.create_thing(thingName=f["thing"], attributePayload={"attributes": {"site": "s1"}})
    iot.create_thing_group(thingGroupName=f["root"])
    iot.create_thing_group(thingGroupName=f["child"], parentGroupName=f["root"])
    iot.add_thing_to_thing_group(thingGroupName=f["child"], thingName=f["thing"])
    iot.attach_thing_principal(thingName=f["thing"], principal=cert_arn(f["cert"]))
    f["on_cert"], f["on_child"], f["on_root"] = uid("a-cert"), uid("b-child"), uid("c-root")
    thing_var = "${iot:Connection.Thing.ThingName}"
    iot.create_policy(
        policyName=f["on_cert"],
        policyDocument=doc(
            allow("iot:Connect", f"{ARN}:client/{thing_var}"),
            allow("iot:Publish", f"{ARN}:topic/dev/${{iot:ClientId}}/*"),
            deny("iot:Publish", f"{ARN}:topic/dev/*/secret"),
        ),
    )
    iot.create_policy(policyName=f["on_child"], policyDocument=doc(allow("iot:Subscribe", f"{ARN}:topicfilter/site/${{iot:Connection.Thing.Attributes[site]}}/*")))
    iot.create_policy(policyName=f["on_root"], policyDocument=doc(allow("iot:Receive", f"{ARN}:topic/fleet/*")))
    iot.attach_policy(policyName=f["on_cert"], target=cert_arn(f["cert"]))
    iot.attach_policy(policyName=f["on_child"], target=group_arn(f["child"]))
    iot.attach_policy(policyName=f["on_root"], target=group_arn(f["root"]))
    return f


def test_get_effective_policies_inherits_from_groups(broker):
    iot = aws.iot(broker)
    f = fleet(iot)
    out = iot.get_effective_policies(principal=cert_arn(f["cert"]), thingName=f["thing"])["effectivePolicies"]
    assert names(out) == [f["on_cert"], f["on_root"], f["on_child"]]
    by_name = {p["policyName"]: p for p in out}
    assert by_name[f["on_root"]]["policyArn"] == policy_arn(f["on_root"])
    assert by_name[f["on_root"]]["policyDocument"] == iot.get_policy(policyName=f["on_root"])["policyDocument"]
    # The thing alone: what its groups give.
    assert names(iot.get_effective_policies(thingName=f["thing"])["effectivePolicies"]) == [f["on_root"], f["on_child"]]
    # The certificate alone: no client id, so no thing under a non-exclusive attachment.
    assert names(iot.get_effective_policies(principal=cert_arn(f["cert"]))["effectivePolicies"]) == [f["on_cert"]]
    # A new default version is what is in force.
    iot.create_policy_version(policyName=f["on_root"], policyDocument=publish("v2"), setAsDefault=True)
    out = iot.get_effective_policies(thingName=f["thing"])["effectivePolicies"]
    assert out[0]["policyDocument"] == publish("v2")
    # Leaving the group drops the inherited policies.
    iot.remove_thing_from_thing_group(thingGroupName=f["child"], thingName=f["thing"])
    assert iot.get_effective_policies(principal=cert_arn(f["cert"]), thingName=f["thing"])["effectivePolicies"][0]["policyName"] == f["on_cert"]
    assert names(iot.get_effective_policies(thingName=f["thing"])["effectivePolicies"]) == []

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_effective_policies(thingName=uid("ghost"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_effective_policies(principal=cert_arn("0" * 64))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.get_effective_policies()
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.get_effective_policies(principal=cert_arn(f["cert"]), cognitoIdentityPoolId="us-east-1:pool")


def test_test_authorization_allow_explicit_and_implicit_deny(broker):
    iot = aws.iot(broker)
    f = fleet(iot)
    t = f["thing"]
    infos = [
        {"actionType": "CONNECT", "resources": [f"{ARN}:client/{t}"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev/{t}/temp"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev/{t}/secret"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev/other/temp"]},
        {"actionType": "SUBSCRIBE", "resources": [f"{ARN}:topicfilter/site/s1/#"]},
        {"actionType": "RECEIVE", "resources": [f"{ARN}:topic/fleet/news"]},
    ]
    out = iot.test_authorization(principal=cert_arn(f["cert"]), clientId=t, authInfos=infos)["authResults"]
    assert [r["authDecision"] for r in out] == [
        "ALLOWED", "ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY", "ALLOWED", "ALLOWED"
    ]
    assert [r["authInfo"] for r in out] == infos
    assert names(out[1]["allowed"]["policies"]) == [f["on_cert"]]
    assert out[1]["allowed"]["policies"][0]["policyArn"] == policy_arn(f["on_cert"])
    assert names(out[1]["denied"]["implicitDeny"]["policies"]) == [f["on_root"], f["on_child"]]
    assert names(out[2]["denied"]["explicitDeny"]["policies"]) == [f["on_cert"]]
    assert out[2]["allowed"]["policies"] == []
    assert names(out[3]["denied"]["implicitDeny"]["policies"]) == [f["on_cert"], f["on_root"], f["on_child"]]
    assert names(out[4]["allowed"]["policies"]) == [f["on_child"]]
    assert all(r["missingContextValues"] == [] for r in out)

    # Another client id: the thing is not the connection's, its variables are missing.
    other = iot.test_authorization(principal=cert_arn(f["cert"]), clientId="someone-else", authInfos=infos[:1])["authResults"][0]
    assert other["authDecision"] == "IMPLICIT_DENY"
    assert other["missingContextValues"] == ["iot:Connection.Thing.ThingName"]

    # Skipping the certificate's policy and adding another.
    extra = uid("extra")
    iot.create_policy(policyName=extra, policyDocument=doc(allow("iot:Publish", f"{ARN}:topic/dev/*")))
    out = iot.test_authorization(
        principal=cert_arn(f["cert"]), clientId=t, authInfos=infos[2:4],
        policyNamesToAdd=[extra], policyNamesToSkip=[f["on_cert"]],
    )["authResults"]
    assert [r["authDecision"] for r in out] == ["ALLOWED", "ALLOWED"]
    assert names(out[0]["allowed"]["policies"]) == [extra]

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.test_authorization(principal=cert_arn(f["cert"]), authInfos=infos[:1], policyNamesToAdd=[uid("missing")])
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.test_authorization(principal=cert_arn("0" * 64), authInfos=infos[:1])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.test_authorization(authInfos=infos[:1])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        aws_infos = [{"resources": [f"{ARN}:topic/x"]}]
        iot.test_authorization(principal=cert_arn(f["cert"]), authInfos=aws_infos)


# ---------------------------------------------------------------------------------------------
# the AWS CLI v1 drives every operation


def test_cli_drives_every_policy_operation(broker, tmp_path):
    iot = aws.iot(broker)
    f = fleet(iot)
    name = uid("cli")
    v1 = tmp_path / "v1.json"
    v1.write_text(json.dumps(json.loads(doc(allow("iot:Publish", f"{ARN}:topic/cli/*"))), indent=2))
    v2 = tmp_path / "v2.json"
    v2.write_text(doc(deny("iot:Publish", f"{ARN}:topic/cli/*"), allow("iot:Publish", f"{ARN}:topic/other/*")))
    bad = tmp_path / "bad.json"
    bad.write_text('{"Version": "2012-10-17", "Statement": []}')

    def cli(*args: str) -> dict:
        return aws.cli(broker, "iot", *args)

    out = cli("create-policy", "--policy-name", name, "--policy-document", f"file://{v1}")
    assert (out["policyArn"], out["policyVersionId"]) == (policy_arn(name), "1")
    assert out["policyDocument"] == v1.read_text()
    assert cli("get-policy", "--policy-name", name)["defaultVersionId"] == "1"
    assert name in names(cli("list-policies")["policies"])
    # The model's own pageSize / marker: the CLI v1 then pages no further itself.
    page = cli("list-policies", "--ascending-order", "--page-size", "1")
    assert len(page["policies"]) == 1 and page["nextMarker"]
    second = cli("list-policies", "--ascending-order", "--page-size", "1", "--marker", page["nextMarker"])
    assert second["policies"] != page["policies"]
    out = cli("create-policy-version", "--policy-name", name, "--policy-document", f"file://{v2}", "--set-as-default")
    assert (out["policyVersionId"], out["isDefaultVersion"]) == ("2", True)
    versions = cli("list-policy-versions", "--policy-name", name)["policyVersions"]
    assert [v["versionId"] for v in versions] == ["2", "1"]
    assert cli("get-policy-version", "--policy-name", name, "--policy-version-id", "1")["policyDocument"] == v1.read_text()
    cli("set-default-policy-version", "--policy-name", name, "--policy-version-id", "1")
    assert cli("get-policy", "--policy-name", name)["defaultVersionId"] == "1"

    target = cert_arn(f["cert"])
    cli("attach-policy", "--policy-name", name, "--target", target)
    assert name in names(cli("list-attached-policies", "--target", target)["policies"])
    cli("attach-policy", "--policy-name", name, "--target", group_arn(f["root"]))
    rec = names(cli("list-attached-policies", "--target", group_arn(f["child"]), "--recursive")["policies"])
    assert set(rec) == {name, f["on_child"], f["on_root"]}
    assert set(cli("list-targets-for-policy", "--policy-name", name)["targets"]) == {target, group_arn(f["root"])}
    eff = cli("get-effective-policies", "--principal", target, "--thing-name", f["thing"])["effectivePolicies"]
    assert set(names(eff)) == {f["on_cert"], name, f["on_root"], f["on_child"]}

    infos = json.dumps([
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/cli/x"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/nowhere"]},
    ])
    res = cli("test-authorization", "--principal", target, "--client-id", f["thing"], "--auth-infos", infos)["authResults"]
    assert [r["authDecision"] for r in res] == ["ALLOWED", "IMPLICIT_DENY"]
    cli("set-default-policy-version", "--policy-name", name, "--policy-version-id", "2")
    res = cli("test-authorization", "--principal", target, "--auth-infos", infos)["authResults"]
    assert res[0]["authDecision"] == "EXPLICIT_DENY"
    assert names(res[0]["denied"]["explicitDeny"]["policies"]) == [name]

    # AWS's error classes through the CLI.
    err = aws.cli_error(broker, "iot", "create-policy", "--policy-name", uid("cli"), "--policy-document", f"file://{bad}")
    assert "MalformedPolicyException" in err
    err = aws.cli_error(broker, "iot", "create-policy", "--policy-name", name, "--policy-document", f"file://{v1}")
    assert "ResourceAlreadyExistsException" in err
    for _ in range(3):
        cli("create-policy-version", "--policy-name", name, "--policy-document", f"file://{v1}")
    err = aws.cli_error(broker, "iot", "create-policy-version", "--policy-name", name, "--policy-document", f"file://{v1}")
    assert "VersionsLimitExceededException" in err
    err = aws.cli_error(broker, "iot", "delete-policy-version", "--policy-name", name, "--policy-version-id", "2")
    assert "DeleteConflictException" in err
    err = aws.cli_error(broker, "iot", "get-policy", "--policy-name", uid("missing"))
    assert "ResourceNotFoundException" in err
    err = aws.cli_error(broker, "iot", "attach-policy", "--policy-name", name, "--target", "nonsense")
    assert "InvalidRequestException" in err
    other = iot.create_thing_group(thingGroupName=uid("full"))["thingGroupName"]
    cli("attach-policy", "--policy-name", name, "--target", group_arn(other))
    cli("attach-policy", "--policy-name", f["on_root"], "--target", group_arn(other))
    err = aws.cli_error(broker, "iot", "attach-policy", "--policy-name", f["on_child"], "--target", group_arn(other))
    assert "LimitExceededException" in err

    # Tear down with the CLI: detach everywhere, delete the other versions, delete.
    for t in cli("list-targets-for-policy", "--policy-name", name)["targets"]:
        cli("detach-policy", "--policy-name", name, "--target", t)
    assert cli("list-targets-for-policy", "--policy-name", name)["targets"] == []
    for v in cli("list-policy-versions", "--policy-name", name)["policyVersions"]:
        if not v["isDefaultVersion"]:
            cli("delete-policy-version", "--policy-name", name, "--policy-version-id", v["versionId"])
    cli("delete-policy", "--policy-name", name)
    assert "ResourceNotFoundException" in aws.cli_error(broker, "iot", "get-policy", "--policy-name", name)


# ---------------------------------------------------------------------------------------------
# durability


def test_restart_keeps_policies_and_attachments(start_broker):
    b = start_broker()
    iot = aws.iot(b)
    f = fleet(iot)
    iot.create_policy_version(policyName=f["on_cert"], policyDocument=publish("v2"), setAsDefault=True)
    iot.create_policy_version(policyName=f["on_cert"], policyDocument=publish("v3"))
    iot.delete_policy_version(policyName=f["on_cert"], policyVersionId="1")
    detached = uid("gone")
    iot.create_policy(policyName=detached, policyDocument=publish("t"))
    iot.attach_policy(policyName=detached, target=cert_arn(f["cert"]))
    iot.detach_policy(policyName=detached, target=cert_arn(f["cert"]))

    def snapshot(iot) -> dict:
        out = {
            "policy": iot.get_policy(policyName=f["on_cert"]),
            "versions": iot.list_policy_versions(policyName=f["on_cert"])["policyVersions"],
            "attached": iot.list_attached_policies(target=cert_arn(f["cert"]))["policies"],
            "targets": iot.list_targets_for_policy(policyName=f["on_root"])["targets"],
            "detached": iot.list_targets_for_policy(policyName=detached)["targets"],
            "effective": iot.get_effective_policies(principal=cert_arn(f["cert"]), thingName=f["thing"]),
        }
        for v in out.values():
            if isinstance(v, dict):
                v.pop("ResponseMetadata", None)
        return out

    before = snapshot(iot)
    assert [v["versionId"] for v in before["versions"]] == ["3", "2"]
    assert before["detached"] == []
    b.restart()
    iot = aws.iot(b)
    assert snapshot(iot) == before
    # Version ids continue after a restart.
    assert iot.create_policy_version(policyName=f["on_cert"], policyDocument=publish("v4"))["policyVersionId"] == "4"
