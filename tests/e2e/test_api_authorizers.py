"""The `iot` control plane for custom authorizers through boto3 and the AWS CLI v1:
CreateAuthorizer, DescribeAuthorizer, ListAuthorizers, UpdateAuthorizer, DeleteAuthorizer and
the account's default authorizer (Set, Describe, Clear), AWS's error classes, the function
naming scheme (webhook URL, `ferrocore:function/<name>`, Lambda ARN), the quota, and
authorizers surviving a restart. Running authorizers is tested elsewhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import aws
from pki import ACCOUNT, REGION

pytestmark = pytest.mark.ferrocore_only

WEBHOOK = "https://auth.example.com/iot/authorize"
LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:legacy-authorizer"


def authorizer_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:authorizer/{name}"


def public_key(folder: Path, name: str, *genpkey_args: str) -> str:
    """A PEM public key (SubjectPublicKeyInfo) made with the openssl CLI."""
    key = folder / f"{name}.key"
    subprocess.run(["openssl", "genpkey", *genpkey_args, "-out", str(key)], check=True, capture_output=True)
    out = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("authorizer-keys")
    rsa = ("-algorithm", "RSA", "-pkeyopt")
    return {
        "rsa2048": public_key(folder, "a", *rsa, "rsa_keygen_bits:2048"),
        "rsa2048b": public_key(folder, "b", *rsa, "rsa_keygen_bits:2048"),
        "rsa1024": public_key(folder, "c", *rsa, "rsa_keygen_bits:1024"),
        "ec": public_key(folder, "d", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
    }


def status(e) -> int:
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def message(e) -> str:
    return e.value.response["Error"]["Message"]


def describe(iot, name: str) -> dict:
    return iot.describe_authorizer(authorizerName=name)["authorizerDescription"]


def names(page: dict) -> list[str]:
    return [a["authorizerName"] for a in page["authorizers"]]


def test_create_describe_list_update_delete(start_broker, keys):
    iot = aws.iot(start_broker())
    out = iot.create_authorizer(
        authorizerName="signed",
        authorizerFunctionArn=WEBHOOK,
        tokenKeyName="token",
        tokenSigningPublicKeys={"k1": keys["rsa2048"]},
        status="ACTIVE",
        tags=[{"Key": "team", "Value": "a"}],
    )
    assert (out["authorizerName"], out["authorizerArn"]) == ("signed", authorizer_arn("signed"))
    d = describe(iot, "signed")
    assert d["authorizerFunctionArn"] == WEBHOOK
    assert d["tokenKeyName"] == "token"
    assert d["tokenSigningPublicKeys"] == {"k1": keys["rsa2048"]}
    assert d["status"] == "ACTIVE"
    assert (d["signingDisabled"], d["enableCachingForHttp"]) == (False, False)
    assert d["creationDate"] == d["lastModifiedDate"]

    # Without a status an authorizer is INACTIVE (as on AWS); unsigned ones have no keys.
    iot.create_authorizer(authorizerName="plain", authorizerFunctionArn="ferrocore:function/passwords", signingDisabled=True)
    iot.create_authorizer(authorizerName="legacy", authorizerFunctionArn=LAMBDA, signingDisabled=True, enableCachingForHttp=True)
    plain = describe(iot, "plain")
    assert (plain["status"], plain["signingDisabled"]) == ("INACTIVE", True)
    assert "tokenSigningPublicKeys" not in plain and "tokenKeyName" not in plain
    assert describe(iot, "legacy")["enableCachingForHttp"] is True

    # Newest first; ascending; by status; one per page.
    assert names(iot.list_authorizers()) == ["legacy", "plain", "signed"]
    assert names(iot.list_authorizers(ascendingOrder=True)) == ["signed", "plain", "legacy"]
    assert names(iot.list_authorizers(status="ACTIVE")) == ["signed"]
    assert names(iot.list_authorizers(status="INACTIVE")) == ["legacy", "plain"]
    page = iot.list_authorizers(pageSize=2)
    assert names(page) == ["legacy", "plain"] and page["nextMarker"]
    rest = iot.list_authorizers(pageSize=2, marker=page["nextMarker"])
    assert names(rest) == ["signed"] and "nextMarker" not in rest
    assert all(a["authorizerArn"] == authorizer_arn(a["authorizerName"]) for a in page["authorizers"])

    # Update: the members given change; keys merge by name.
    out = iot.update_authorizer(authorizerName="signed", tokenSigningPublicKeys={"k2": keys["rsa2048b"]}, status="INACTIVE")
    assert out == {"authorizerName": "signed", "authorizerArn": authorizer_arn("signed"), "ResponseMetadata": out["ResponseMetadata"]}
    d = describe(iot, "signed")
    assert d["tokenSigningPublicKeys"] == {"k1": keys["rsa2048"], "k2": keys["rsa2048b"]}
    assert d["status"] == "INACTIVE" and d["tokenKeyName"] == "token"
    assert d["lastModifiedDate"] >= d["creationDate"]
    iot.update_authorizer(authorizerName="plain", authorizerFunctionArn="http://127.0.0.1:9000/auth", enableCachingForHttp=True)
    plain = describe(iot, "plain")
    assert (plain["authorizerFunctionArn"], plain["enableCachingForHttp"]) == ("http://127.0.0.1:9000/auth", True)

    for name in ("signed", "plain", "legacy"):
        assert iot.delete_authorizer(authorizerName=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert iot.list_authorizers()["authorizers"] == []
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        describe(iot, "signed")
    assert status(e) == 404


def test_create_and_update_errors(start_broker, keys):
    b = start_broker()
    iot = aws.iot(b)

    def refused(**req) -> str:
        with pytest.raises(iot.exceptions.InvalidRequestException) as e:
            iot.create_authorizer(**{"authorizerName": "x", "authorizerFunctionArn": WEBHOOK, "tokenKeyName": "token", **req})
        assert status(e) == 400
        return message(e)

    assert "1024 bits" in refused(tokenSigningPublicKeys={"k1": keys["rsa1024"]})
    assert "not RSA" in refused(tokenSigningPublicKeys={"k1": keys["ec"]})
    assert "PUBLIC KEY" in refused(tokenSigningPublicKeys={"k1": "garbage"})
    three = {"k1": keys["rsa2048"], "k2": keys["rsa2048b"], "k3": keys["rsa2048"]}
    assert "one or two" in refused(tokenSigningPublicKeys=three)
    assert "one or two" in refused()
    assert "tokenKeyName" in refused(tokenKeyName="a.b", tokenSigningPublicKeys={"k1": keys["rsa2048"]})
    assert "signingDisabled" in refused(signingDisabled=True, tokenSigningPublicKeys={"k1": keys["rsa2048"]})
    msg = refused(authorizerFunctionArn="my-function", signingDisabled=True)
    assert "ferrocore:function/<name>" in msg and "http://" in msg
    assert "built-in" in refused(authorizerFunctionArn="ferrocore:function/a.b", signingDisabled=True)
    assert "Lambda" in refused(authorizerFunctionArn="arn:aws:lambda:us-east-1:1:function:f", signingDisabled=True)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_authorizer(authorizerName="bad name", authorizerFunctionArn=WEBHOOK, signingDisabled=True)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.describe_authorizer(authorizerName="a+b")
    # Nothing was created by the refusals.
    assert iot.list_authorizers()["authorizers"] == []

    iot.create_authorizer(authorizerName="a", authorizerFunctionArn=WEBHOOK, tokenKeyName="t", tokenSigningPublicKeys={"k1": keys["rsa2048"]})
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_authorizer(authorizerName="a", authorizerFunctionArn=WEBHOOK, signingDisabled=True)
    assert status(e) == 409
    assert e.value.response["resourceArn"] == authorizer_arn("a")
    assert describe(iot, "a")["signingDisabled"] is False

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.update_authorizer(authorizerName="a", tokenSigningPublicKeys={"k2": keys["rsa2048b"], "k3": keys["rsa2048b"]})
    assert "one or two" in message(e)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_authorizer(authorizerName="a", authorizerFunctionArn="nowhere")
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.update_authorizer(authorizerName="missing", status="ACTIVE")
    assert status(e) == 404
    # signingDisabled is not a member of UpdateAuthorizer; sent anyway, it is refused.
    code, body = aws.signed(b, "PUT", "/authorizer/a", {"signingDisabled": True})
    assert (code, body["errorType"]) == (400, "InvalidRequestException")
    assert "signingDisabled cannot change" in body["message"]
    code, body = aws.signed(b, "GET", "/authorizers/?status=ENABLED")
    assert (code, body["errorType"]) == (400, "InvalidRequestException")
    assert describe(iot, "a")["signingDisabled"] is False


def test_default_authorizer_and_delete_rules(start_broker):
    iot = aws.iot(start_broker())
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.describe_default_authorizer()
    assert status(e) == 404
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.clear_default_authorizer()
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.set_default_authorizer(authorizerName="missing")

    iot.create_authorizer(authorizerName="first", authorizerFunctionArn=WEBHOOK, signingDisabled=True, status="ACTIVE")
    iot.create_authorizer(authorizerName="second", authorizerFunctionArn=WEBHOOK, signingDisabled=True)
    # An ACTIVE authorizer is deactivated before it is deleted.
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_authorizer(authorizerName="first")
    assert "INACTIVE" in message(e)

    out = iot.set_default_authorizer(authorizerName="first")
    assert (out["authorizerName"], out["authorizerArn"]) == ("first", authorizer_arn("first"))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.set_default_authorizer(authorizerName="first")
    assert status(e) == 409
    # An INACTIVE authorizer may be the default, replacing the one set.
    iot.set_default_authorizer(authorizerName="second")
    assert iot.describe_default_authorizer()["authorizerDescription"] == describe(iot, "second")
    with pytest.raises(iot.exceptions.DeleteConflictException) as e:
        iot.delete_authorizer(authorizerName="second")
    assert status(e) == 409

    iot.clear_default_authorizer()
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_default_authorizer()
    iot.delete_authorizer(authorizerName="second")
    iot.update_authorizer(authorizerName="first", status="INACTIVE")
    iot.delete_authorizer(authorizerName="first")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_authorizer(authorizerName="first")


def test_at_most_ten_authorizers(start_broker):
    iot = aws.iot(start_broker())
    for i in range(10):
        iot.create_authorizer(authorizerName=f"a{i}", authorizerFunctionArn=WEBHOOK, signingDisabled=True)
    with pytest.raises(iot.exceptions.LimitExceededException) as e:
        iot.create_authorizer(authorizerName="a10", authorizerFunctionArn=WEBHOOK, signingDisabled=True)
    assert status(e) == 410
    iot.delete_authorizer(authorizerName="a0")
    iot.create_authorizer(authorizerName="a10", authorizerFunctionArn=WEBHOOK, signingDisabled=True)


def test_cli_drives_every_authorizer_operation(start_broker, keys, tmp_path):
    b = start_broker()

    def cli(*args: str) -> dict:
        return aws.cli(b, "iot", *args)

    request = tmp_path / "create.json"
    request.write_text(json.dumps({
        "authorizerName": "cli-auth",
        "authorizerFunctionArn": WEBHOOK,
        "tokenKeyName": "token",
        "tokenSigningPublicKeys": {"k1": keys["rsa2048"]},
    }))
    out = cli("create-authorizer", "--cli-input-json", f"file://{request}")
    assert out == {"authorizerName": "cli-auth", "authorizerArn": authorizer_arn("cli-auth")}
    d = cli("describe-authorizer", "--authorizer-name", "cli-auth")["authorizerDescription"]
    assert (d["status"], d["tokenSigningPublicKeys"]) == ("INACTIVE", {"k1": keys["rsa2048"]})
    cli("update-authorizer", "--authorizer-name", "cli-auth", "--status", "ACTIVE")
    assert names(cli("list-authorizers", "--status", "ACTIVE")) == ["cli-auth"]
    assert cli("set-default-authorizer", "--authorizer-name", "cli-auth")["authorizerName"] == "cli-auth"
    assert cli("describe-default-authorizer")["authorizerDescription"]["authorizerName"] == "cli-auth"
    cli("clear-default-authorizer")
    assert "ResourceNotFoundException" in aws.cli_error(b, "iot", "describe-default-authorizer")
    assert "InvalidRequestException" in aws.cli_error(b, "iot", "delete-authorizer", "--authorizer-name", "cli-auth")
    cli("update-authorizer", "--authorizer-name", "cli-auth", "--status", "INACTIVE")
    cli("delete-authorizer", "--authorizer-name", "cli-auth")
    assert "ResourceNotFoundException" in aws.cli_error(b, "iot", "describe-authorizer", "--authorizer-name", "cli-auth")


def test_restart_keeps_authorizers_and_the_default(start_broker, keys):
    b = start_broker()
    iot = aws.iot(b)
    iot.create_authorizer(
        authorizerName="kept", authorizerFunctionArn=WEBHOOK, tokenKeyName="token",
        tokenSigningPublicKeys={"k1": keys["rsa2048"], "k2": keys["rsa2048b"]}, status="ACTIVE",
    )
    iot.create_authorizer(authorizerName="gone", authorizerFunctionArn=WEBHOOK, signingDisabled=True)
    iot.set_default_authorizer(authorizerName="kept")
    iot.delete_authorizer(authorizerName="gone")
    before = describe(iot, "kept")
    b.restart()
    iot = aws.iot(b)
    assert describe(iot, "kept") == before
    assert iot.describe_default_authorizer()["authorizerDescription"] == before
    assert names(iot.list_authorizers()) == ["kept"]
