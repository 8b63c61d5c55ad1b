"""Devices with OAuth 2.0 access tokens (issue 6): the built-in `jwt` authorizer function
against a real OpenID provider (tests/e2e/oidc: the npm package oidc-provider issuing
client-credentials access tokens as RS256 JWTs, started per test on a free port of 127.0.0.1,
hence `allow_http = true`), through the release binary.

The function `idp` (kind jwt, issuer found by discovery, audience `ferrocore`) gives every
valid token the policy Base (connect) and maps the `roles` claim to named policies: `sensor`
to SensorPolicy (publish / subscribe / receive under sensors/, publish under telemetry/ with
the OAuth scope telemetry:write), `admin` to FleetAdmin (everything). The authorizer `idp` (`ferrocore:function/idp`, signing disabled, token key
`token`) is ACTIVE and the account's default.

- the AWS IoT Device SDK v2 for Python (direct with the token as password or as the
  username's token parameter, and over WebSocket) and paho publish and receive under the
  role's policies; a narrower role is refused outside them;
- the token's OAuth scopes decide a policy condition (ferrocore:Claims.scope);
- a rotated signing key (a new kid) is picked up, tokens of the removed key are refused;
- a token's expiry ends the connection;
- forged and invalid tokens (alg none, HS256 keyed with the provider's public key, wrong
  audience or issuer, not yet valid, expired, tampered, unknown kid, garbage) are refused
  with 0x87 and the broker keeps serving."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from awsiot import mqtt5_client_builder

import aws
import mqttraw
from authorizers import (OidcProvider, assert_serves_certificates, certificate_device, connack_code, raw_tls,
                         sdk_pubsub)
from clients import Paho, rc_value, tls_context, uid
from pki import ACCOUNT, REGION

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
AUTHORIZER = "idp"
NOT_AUTHORIZED, MAXIMUM_CONNECT_TIME = 0x87, 0xA0
# The provider's clients and their roles.
CLIENTS = {"sensor1": ["sensor"], "admin1": ["admin"], "guest1": []}
POLICIES = {
    "Base": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"}],
    "SensorPolicy": [
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{ARN}:topic/sensors/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/sensors/*"},
        # OAuth scopes reach policy conditions as the multi-valued ferrocore:Claims.scope.
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/telemetry/*",
         "Condition": {"ForAnyValue:StringEquals": {"ferrocore:Claims.scope": "telemetry:write"}}},
    ],
    "FleetAdmin": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
LEEWAY_SECONDS = 5


def jwt_function(issuer: str) -> str:
    return f"""
[[authorizer_function]]
name = "{AUTHORIZER}"
kind = "jwt"
issuer = "{issuer}"
audience = "ferrocore"
allow_http = true
roles_claim = "roles"
default_policies = ["Base"]
leeway = "{LEEWAY_SECONDS}s"

[authorizer_function.role_policies]
sensor = ["SensorPolicy"]
admin = ["FleetAdmin"]
"""


@pytest.fixture
def oidc(tmp_path):
    provider = OidcProvider(tmp_path, CLIENTS)
    yield provider
    provider.close()


@pytest.fixture
def jwt_broker(start_broker, oidc):
    """A broker with certificate-only TLS listeners, the jwt function of `oidc`, the policies
    and the authorizer."""
    b = start_broker(tls_anonymous=False, config=jwt_function(oidc.issuer))
    iot = aws.iot(b)
    for name, statements in POLICIES.items():
        iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    iot.create_authorizer(authorizerName=AUTHORIZER, authorizerFunctionArn=f"ferrocore:function/{AUTHORIZER}",
                          signingDisabled=True, tokenKeyName="token", status="ACTIVE")
    iot.set_default_authorizer(authorizerName=AUTHORIZER)
    return b


def username(client: str = "device") -> str:
    return f"{client}?x-amz-customauthorizer-name={AUTHORIZER}"


def token_connack(b, token: str, version: int = 5) -> int:
    """The CONNACK code of a client sending `token` as its MQTT password over MQTT/TLS."""
    return connack_code(b, b.listener_port("mqtts"), version, username(), token.encode())


def token_client(b, token: str, version: int = 5) -> mqttraw.RawClient:
    """A raw MQTT/TLS client connected with `token` as its password."""
    c = raw_tls(b, b.listener_port("mqtts"), version)
    ack = c.connect(uid("raw"), username=username(), password=token.encode())
    assert ack.reason == 0, f"CONNECT refused: 0x{ack.reason:02x}"
    return c


def paho_with_token(b, token: str, version: int = 5) -> Paho:
    p = Paho(b, version=version, transport="tcp", username=username(), password=token)
    p.port = b.listener_port("mqtts")
    p.c.tls_set_context(tls_context(b))
    return p


def sdk_options(b, **auth) -> dict:
    return dict(endpoint="localhost", port=b.listener_port("https"), auth_authorizer_name=AUTHORIZER,
                ca_filepath=str(b.ca), client_id=uid("sdk"), **auth)


def test_sdk_connects_with_provider_tokens(jwt_broker, oidc):
    """The SDK's custom-authorizer builders with a client-credentials access token: as the
    password (directly, ALPN mqtt on the HTTPS port, and over WebSocket) and as the username's
    token parameter; the sensor role publishes and receives under sensors/."""
    b = jwt_broker
    sdk_pubsub(mqtt5_client_builder.direct_with_custom_authorizer, f"sensors/{uid('direct')}",
               **sdk_options(b, auth_username="sensor1", auth_password=oidc.token("sensor1").encode()))
    sdk_pubsub(mqtt5_client_builder.direct_with_custom_authorizer, f"sensors/{uid('param')}",
               **sdk_options(b, auth_token_key_name="token", auth_token_value=oidc.token("sensor1")))
    sdk_pubsub(mqtt5_client_builder.websockets_with_custom_authorizer, f"sensors/{uid('wss')}",
               **sdk_options(b, auth_username="sensor1", auth_password=oidc.token("sensor1").encode()))
    assert oidc.token("sensor1")[:40] not in b.log(), "tokens are never logged"


def test_roles_map_to_policies(jwt_broker, oidc):
    """paho and raw clients: the sensor role may publish, subscribe and receive under sensors/
    and nothing else; the admin role anything; a client without roles only connects (Base)."""
    b = jwt_broker
    t = uid("t")
    with paho_with_token(b, oidc.token("sensor1")) as sensor, paho_with_token(b, oidc.token("admin1")) as admin:
        sensor.connect()
        admin.connect()
        assert sensor.subscribe(f"sensors/{t}/#", qos=1) == [1]
        assert admin.subscribe(f"fleet/{t}/#", qos=1) == [1]
        sensor.publish(f"sensors/{t}/temp", b"21.5", qos=1)
        assert sensor.get().payload == b"21.5"
        admin.publish(f"sensors/{t}/temp", b"from admin", qos=1)
        assert sensor.get().payload == b"from admin"
        admin.publish(f"fleet/{t}/cmd", b"reboot", qos=1)
        assert admin.get().payload == b"reboot"

    # Outside its role the sensor is refused: PUBACK / SUBACK 0x87, nothing delivered.
    with paho_with_token(b, oidc.token("admin1")) as watch:
        watch.connect()
        assert watch.subscribe(f"fleet/{t}/#", qos=1) == [1]
        sensor = token_client(b, oidc.token("sensor1"))
        try:
            assert sensor.publish(f"fleet/{t}/cmd", b"forged", qos=1).reason == NOT_AUTHORIZED
            assert sensor.subscribe((f"fleet/{t}/#", 1)).reasons == [NOT_AUTHORIZED]
            assert sensor.publish(f"sensors/{t}/ok", b"allowed", qos=1).reason == 0
        finally:
            sensor.sock.close()
        watch.publish(f"fleet/{t}/marker", b"", qos=1)
        assert [m.topic for m in watch.until(f"fleet/{t}/marker")] == [], "the refused publish was delivered"

    # No roles: the default policy (connect) only.
    guest = token_client(b, oidc.token("guest1"))
    try:
        assert guest.publish(f"sensors/{t}/temp", b"x", qos=1).reason == NOT_AUTHORIZED
    finally:
        guest.sock.close()
    # MQTT 3.1.1 clients connect with tokens too.
    assert token_connack(b, oidc.token("sensor1"), version=4) == 0


def test_scopes_reach_policy_conditions(jwt_broker, oidc):
    """SensorPolicy allows publishing under telemetry/ only with the scope telemetry:write
    (`ForAnyValue:StringEquals` on ferrocore:Claims.scope, the space-separated `scope` claim
    split into values)."""
    b = jwt_broker
    t = uid("t")
    for scope, expected in (("telemetry:read telemetry:write", 0), ("telemetry:read", NOT_AUTHORIZED),
                            (None, NOT_AUTHORIZED)):
        c = token_client(b, oidc.token("sensor1", scope=scope))
        try:
            assert c.publish(f"telemetry/{t}", b"x", qos=1).reason == expected, scope
        finally:
            c.sock.close()


def test_token_sources(jwt_broker, oidc):
    """The token is read from the username's token parameter, the MQTT password, and over
    WebSocket an `Authorization: Bearer` header of the upgrade request."""
    b = jwt_broker
    port = b.listener_port("mqtts")
    token = oidc.token("sensor1")
    assert connack_code(b, port, 5, f"{username()}&token={token}", None) == 0
    assert connack_code(b, port, 5, username(), token.encode()) == 0
    ws = Paho(b, transport="wss", username=username())
    ws.c.ws_set_options(path="/mqtt", headers={"Authorization": f"Bearer {token}"})
    with ws:
        ws.connect()
        t = f"sensors/{uid('ws')}"
        assert ws.subscribe(t, qos=1) == [1]
        ws.publish(t, b"over websocket", qos=1)
        assert ws.get().payload == b"over websocket"


def test_rotated_signing_key(jwt_broker, oidc, pki):
    """The provider rotates its signing key (a new kid; the old key leaves the JWKS): a token of
    the new key is accepted (the function fetches the keys again), a token of the removed key
    is refused from then on."""
    b = jwt_broker
    old = oidc.token("sensor1")
    assert token_connack(b, old) == 0
    old_kid = oidc.kid
    new_kid = oidc.rotate()
    assert new_kid != old_kid
    new = oidc.token("sensor1")
    assert header(new)["kid"] == new_kid
    # The function may refetch the keys only so often: retry, bounded only to avoid a hang.
    deadline = time.monotonic() + 120
    while (code := token_connack(b, new)) != 0:
        assert code == NOT_AUTHORIZED, f"0x{code:02x}"
        assert time.monotonic() < deadline, "a token of the rotated key is still refused"
        time.sleep(1)
    assert token_connack(b, old) == NOT_AUTHORIZED
    assert token_connack(b, old, version=4) == 5
    assert_serves_certificates(b, certificate_device(b, pki))


def test_an_expired_token_ends_the_connection(jwt_broker, oidc):
    """A token that expires a few seconds after the CONNECT: the connection ends when it does
    (MQTT 5: DISCONNECT 0xA0, maximum connect time; 3.1.1: closed)."""
    b = jwt_broker
    token = oidc.token("sensor1", resource="urn:ferrocore:ttl:4")
    assert header(token)["alg"] == "RS256" and claims(token)["exp"] - claims(token)["iat"] == 4
    v311 = token_client(b, token, version=4)
    try:
        with paho_with_token(b, token) as p:
            p.connect()
            # Generous: the expiry plus the leeway, on a busy machine; never a timing assertion.
            reason = rc_value(p.wait_disconnected(4 + LEEWAY_SECONDS + 60))
            assert reason == MAXIMUM_CONNECT_TIME, f"0x{reason:02x}"
        v311.wait_closed(4 + LEEWAY_SECONDS + 60)
    finally:
        v311.sock.close()
    # Once past the leeway too, the token no longer connects.
    time.sleep(max(0.0, claims(token)["exp"] + LEEWAY_SECONDS + 1 - time.time()))
    assert token_connack(b, token) == NOT_AUTHORIZED, "an expired token is refused"


def test_forged_and_invalid_tokens_are_refused(jwt_broker, oidc, pki):
    """alg none, HS256 keyed with the provider's public key (RS/HS confusion), a tampered
    payload, a wrong kid, wrong audience (a real token of the provider for another resource),
    wrong issuer, not yet valid, expired, without exp, and garbage: each 0x87 / 5, the broker
    alive and serving; a real token still admits."""
    b = jwt_broker
    device = certificate_device(b, pki)
    now = int(time.time())
    valid = {"iss": oidc.issuer, "aud": "ferrocore", "sub": "sensor1", "client_id": "sensor1", "roles": ["admin"],
             "iat": now, "exp": now + 600}
    assert token_connack(b, oidc.sign(valid)) == 0, "the provider's key signs valid tokens"

    real = oidc.token("sensor1")
    public_pem = oidc.public_pem()
    head, body, signature = real.split(".")
    elevated = b64url(json.dumps({**claims(real), "roles": ["admin"]}))
    forged = {
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, valid),
        "alg none with the key's kid": unsigned({"alg": "none", "kid": oidc.kid}, valid),
        "alg None": unsigned({"alg": "None", "kid": oidc.kid}, valid),
        "HS256 keyed with the public key PEM": hs256({"alg": "HS256", "kid": oidc.kid}, valid, public_pem.encode()),
        "HS256 keyed with the PEM, no newline": hs256({"alg": "HS256", "kid": oidc.kid}, valid,
                                                      public_pem.strip().encode()),
        "HS256 keyed with the public key DER": hs256({"alg": "HS256", "kid": oidc.kid}, valid, pem_der(public_pem)),
        "HS256 without kid": hs256({"alg": "HS256"}, valid, public_pem.encode()),
        "tampered payload": f"{head}.{elevated}.{signature}",
        "signature removed": f"{head}.{body}.",
        "unknown kid": oidc.sign(valid, {"kid": "not-a-key-of-the-provider"}),
        "wrong audience": oidc.token("sensor1", resource="urn:example:other"),
        "wrong issuer": oidc.sign({**valid, "iss": "http://127.0.0.1:1"}),
        "issuer with a trailing slash": oidc.sign({**valid, "iss": oidc.issuer + "/"}),
        "not yet valid": oidc.sign({**valid, "nbf": now + 3600}),
        "issued in the future": oidc.sign({**valid, "iat": now + 3600, "nbf": now + 3600}),
        "expired": oidc.sign({**valid, "iat": now - 7200, "exp": now - 3600}),
        "without exp": oidc.sign({k: v for k, v in valid.items() if k != "exp"}),
        "garbage": "not-a-jwt",
        "two parts": f"{head}.{body}",
        "random base64 parts": f"{b64url('x' * 30)}.{b64url('y' * 30)}.{b64url('z' * 30)}",
        "JSON instead of a JWT": json.dumps(valid),
        "oversized garbage": "A" * 60000,
    }
    for attack, token in forged.items():
        assert token_connack(b, token) == NOT_AUTHORIZED, attack
    for attack in ("alg none", "HS256 keyed with the public key PEM", "wrong audience", "not yet valid"):
        assert token_connack(b, forged[attack], version=4) == 5, attack
    assert b.alive()
    assert token_connack(b, real) == 0
    assert_serves_certificates(b, device)


# ---------------------------------------------------------------------------------------------
# JWTs by hand (RFC 7515 compact serialization)


def b64url(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def header(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[0]))


def claims(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


def unsigned(head: dict, payload: dict) -> str:
    return f"{b64url(json.dumps(head))}.{b64url(json.dumps(payload))}."


def hs256(head: dict, payload: dict, secret: bytes) -> str:
    signing_input = f"{b64url(json.dumps(head))}.{b64url(json.dumps(payload))}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def pem_der(pem: str) -> bytes:
    return base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))
