"""TestInvokeAuthorizer through boto3 and the AWS CLI v1 against a webhook authorizer: a Python
HTTP server on 127.0.0.1 answering AWS's authorizer response JSON. Unsigned and signed tokens
(an openssl-made RSA-2048 key), the answer's shape (policyDocuments as JSON strings), the event
the webhook receives, and AWS's error classes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import authorizers
import aws
from authorizers import sign
from pki import ACCOUNT, REGION

pytestmark = pytest.mark.ferrocore_only

POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}


class Webhook(authorizers.Webhook):
    """Answers with `self.reply(event)` -> (status, body): by default admits the token "good"."""

    def __init__(self):
        super().__init__()
        self.reply = lambda event: (200, {
            "isAuthenticated": event.get("token") == "good",
            "principalId": "device17",
            "policyDocuments": [POLICY],
            "refreshAfterInSeconds": 600,
            "disconnectAfterInSeconds": 3600,
        })


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory) -> tuple[Path, str]:
    return authorizers.signing_key(tmp_path_factory.mktemp("authorizer-signing"))


def error(e) -> tuple[str, int, str]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_unsigned_token(start_broker, webhook):
    iot = aws.iot(start_broker())
    # Created INACTIVE (AWS's default): TestInvokeAuthorizer tries it before activation.
    iot.create_authorizer(authorizerName="hook", authorizerFunctionArn=webhook.url, signingDisabled=True)
    out = iot.test_invoke_authorizer(
        authorizerName="hook",
        token="good",
        httpContext={"headers": {"x-device": "17"}, "queryString": "?a=b"},
        mqttContext={"username": "user?x-amz-customauthorizer-name=hook", "password": b"pw\x00\xff",
                     "clientId": "device17"},
        tlsContext={"serverName": "iot.example.com"},
    )
    out.pop("ResponseMetadata")
    assert out == {
        "isAuthenticated": True,
        "principalId": "device17",
        "policyDocuments": [json.dumps(POLICY)],
        "refreshAfterInSeconds": 600,
        "disconnectAfterInSeconds": 3600,
    }
    assert all(isinstance(d, str) for d in out["policyDocuments"])
    assert json.loads(out["policyDocuments"][0]) == POLICY
    assert webhook.events == [{
        "token": "good",
        "signatureVerified": False,
        "protocols": ["tls", "http", "mqtt"],
        "protocolData": {
            "tls": {"serverName": "iot.example.com"},
            "http": {"headers": {"x-device": "17"}, "queryString": "?a=b"},
            "mqtt": {"username": "user?x-amz-customauthorizer-name=hook",
                     "password": base64.b64encode(b"pw\x00\xff").decode(), "clientId": "device17"},
        },
    }]

    # A denial is an answer, not an error.
    out = iot.test_invoke_authorizer(authorizerName="hook", token="bad")
    assert (out["isAuthenticated"], out["principalId"]) == (False, "device17")

    # Not cached: every call reaches the webhook.
    iot.test_invoke_authorizer(authorizerName="hook", token="good")
    assert len(webhook.events) == 3


def test_signed_token(start_broker, webhook, signing_key):
    key, public = signing_key
    iot = aws.iot(start_broker())
    iot.create_authorizer(authorizerName="signed", authorizerFunctionArn=webhook.url, tokenKeyName="token",
                          tokenSigningPublicKeys={"k1": public}, status="ACTIVE")
    out = iot.test_invoke_authorizer(authorizerName="signed", token="good", tokenSignature=sign(key, "good"))
    assert out["isAuthenticated"] is True
    assert webhook.events[-1]["signatureVerified"] is True

    for request in ({"token": "good", "tokenSignature": sign(key, "other")},
                    {"token": "good"},
                    {"tokenSignature": sign(key, "good")}):
        with pytest.raises(ClientError) as e:
            iot.test_invoke_authorizer(authorizerName="signed", **request)
        code, status, _ = error(e)
        assert (code, status) == ("InvalidRequestException", 400)
    assert len(webhook.events) == 1, "no call without a verified signature"


def test_errors(start_broker, webhook):
    iot = aws.iot(start_broker())
    with pytest.raises(ClientError) as e:
        iot.test_invoke_authorizer(authorizerName="nope", token="good")
    assert error(e)[:2] == ("ResourceNotFoundException", 404)

    iot.create_authorizer(authorizerName="hook", authorizerFunctionArn=webhook.url, signingDisabled=True)
    for reply, reason in [
        ((500, {"message": "boom"}), "HTTP status 500"),
        ((200, "not json"), "invalid"),
        ((200, {"isAuthenticated": True, "principalId": "bad id!"}), "principalId"),
        ((200, {"isAuthenticated": True, "principalId": "a", "refreshAfterInSeconds": 5}), "refreshAfterInSeconds"),
    ]:
        webhook.reply = lambda event, reply=reply: reply
        with pytest.raises(ClientError) as e:
            iot.test_invoke_authorizer(authorizerName="hook", token="good")
        code, status, message = error(e)
        assert (code, status) == ("InvalidResponseException", 400), message
        assert reason in message and "hook" in message

    iot.create_authorizer(authorizerName="lambda", signingDisabled=True,
                          authorizerFunctionArn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:authorize")
    with pytest.raises(ClientError) as e:
        iot.test_invoke_authorizer(authorizerName="lambda", token="good")
    code, _, message = error(e)
    assert code == "InvalidRequestException" and "Lambda" in message

    iot.create_authorizer(authorizerName="remote", authorizerFunctionArn="http://192.0.2.1:9/authorize",
                          signingDisabled=True)
    with pytest.raises(ClientError) as e:
        iot.test_invoke_authorizer(authorizerName="remote", token="good")
    code, _, message = error(e)
    assert code == "InvalidRequestException" and "loopback" in message


def test_cli(start_broker, webhook, signing_key):
    key, public = signing_key
    b = start_broker()
    iot = aws.iot(b)
    iot.create_authorizer(authorizerName="signed", authorizerFunctionArn=webhook.url, tokenKeyName="token",
                          tokenSigningPublicKeys={"k1": public}, status="ACTIVE")
    out = aws.cli(b, "iot", "test-invoke-authorizer", "--authorizer-name", "signed", "--token", "good",
                  "--token-signature", sign(key, "good"))
    assert out["isAuthenticated"] is True
    assert [json.loads(d) for d in out["policyDocuments"]] == [POLICY]
    assert (out["refreshAfterInSeconds"], out["disconnectAfterInSeconds"]) == (600, 3600)
    assert "InvalidRequestException" in aws.cli_error(b, "iot", "test-invoke-authorizer", "--authorizer-name",
                                                     "signed", "--token", "good", "--token-signature",
                                                     sign(key, "bad"))
    assert "ResourceNotFoundException" in aws.cli_error(b, "iot", "test-invoke-authorizer", "--authorizer-name",
                                                       "nope", "--token", "good")
