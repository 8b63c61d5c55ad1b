"""Devices connecting through a custom authorizer (issue 6): a webhook authorizer (a Python HTTP
server on 127.0.0.1 answering AWS's response JSON) that admits alice with password pw under a
policy allowing connect and publish / subscribe / receive on `alice/*`, and denies everyone
else. The authorizer is ACTIVE, unsigned unless said otherwise, and the account's default.

- mosquitto_pub / mosquitto_sub with `-u 'alice?x-amz-customauthorizer-name=hook' -P pw` over
  TLS without ALPN, on a listener declared `custom_auth = true` (beyond AWS: any port, no ALPN);
- the AWS IoT Device SDK v2 for Python (`direct_with_custom_authorizer`: ALPN `mqtt` on the
  HTTPS port, as on AWS's 443; the signed variant; `websockets_with_custom_authorizer`);
- where custom authentication is not accepted (the built-in MQTT/TLS listener, ALPN
  x-amzn-mqtt-ca), the webhook down (0x88 / 3) while certificate clients still connect, and a
  certificate client never reaching the webhook."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess

import pytest
from awsiot import mqtt5_client_builder

import authorizers
import aws
from authorizers import sign
import mqttraw
from clients import WAIT, Paho, rc_value, tls_context, uid
from pki import ACCOUNT, REGION, api_device, cert_arn

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
AUTHORIZER = "hook"
ALICE_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{ARN}:topic/alice/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/alice/*"},
]}
# A listener for fleets that send neither ALPN nor SNI (beyond AWS).
LEGACY_LISTENER = '[[listener]]\nname = "legacy"\ntransport = "mqtts"\naddress = "127.0.0.1:0"\ncustom_auth = true\n'
NOT_AUTHORIZED, SERVER_UNAVAILABLE = 0x87, 0x88
TIMEOUT = WAIT * 3  # only to avoid hangs


class Webhook(authorizers.Webhook):
    """AWS's authorizer contract over HTTP: admits alice/pw (from the MQTT username before `?`
    and the base64 password), or with `token` set the requests carrying that token; keeps the
    events it got."""

    def __init__(self):
        super().__init__()
        self.token: str | None = None

    def reply(self, event: dict) -> tuple[int, dict]:
        return 200, self.answer(event)

    def answer(self, event: dict) -> dict:
        mqtt = event.get("protocolData", {}).get("mqtt", {})
        user = mqtt.get("username", "").split("?", 1)[0]
        password = base64.b64decode(mqtt.get("password", ""))
        if self.token is not None:
            allowed = event.get("token") == self.token and event.get("signatureVerified") is True
        else:
            allowed = (user, password) == ("alice", b"pw")
        return {
            "isAuthenticated": allowed,
            "principalId": "alice" if allowed else "nobody",
            "policyDocuments": [ALICE_POLICY] if allowed else [],
            "refreshAfterInSeconds": 600,
            "disconnectAfterInSeconds": 3600,
        }


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def custom_broker(start_broker, webhook):
    """A broker with the legacy listener and the webhook as ACTIVE default authorizer."""
    b = start_broker(tls_anonymous=False, config=LEGACY_LISTENER)
    iot = aws.iot(b)
    iot.create_authorizer(authorizerName=AUTHORIZER, authorizerFunctionArn=webhook.url, signingDisabled=True,
                          status="ACTIVE")
    iot.set_default_authorizer(authorizerName=AUTHORIZER)
    return b


def username(user: str = "alice") -> str:
    return f"{user}?x-amz-customauthorizer-name={AUTHORIZER}"


def mosquitto(tool: str, broker, port: int, user: str, password: str, version: str = "mqttv5") -> list[str]:
    """A mosquitto client over TLS without ALPN, trusting the server's root CA."""
    return [tool, "-h", broker.host, "-p", str(port), "-V", version, "--cafile", str(broker.ca),
            "-i", uid("mosq"), "-u", user, "-P", password]


def observer(broker) -> Paho:
    """An allow-all client of the --dev listener, to see what is published anywhere."""
    p = Paho(broker, transport="tcp")
    p.connect()
    return p


def paho_tls(broker, port: int, version: int = 5, client_id: str | None = None, user: str = username(),
             password: str = "pw", alpn: list[str] | None = None) -> Paho:
    p = Paho(broker, client_id=client_id, version=version, transport="tcp", username=user, password=password)
    p.port = port
    p.c.tls_set_context(tls_context(broker, alpn))
    return p


def connack(broker, port: int, version: int, password: bytes = b"pw", alpn: list[str] | None = None) -> int:
    """The CONNACK code (as on the wire: MQTT 5 reason or 3.1.1 return code) of a TLS client
    without a certificate sending alice's username, a new client id each time (no cached
    answer applies)."""
    c = mqttraw.RawClient(broker.host, port, version=version, tls=tls_context(broker, alpn), timeout=TIMEOUT)
    try:
        return c.connect(uid("raw"), username=username(), password=password).reason
    finally:
        c.sock.close()


def test_mosquitto_clients_with_username_and_password(custom_broker, webhook):
    b = custom_broker
    port = b.listener_port("legacy")
    assert {entry["name"]: entry["custom_auth"] for entry in b.listeners()
            if entry["transport"] != "metrics"} == {"mqtts": True, "https": True, "mqtt": False, "legacy": True}
    t = uid("t")
    watch = observer(b)
    watch.subscribe("alice/#")
    watch.subscribe("bob/#")
    sub = subprocess.Popen(
        ["stdbuf", "-oL"] + mosquitto("mosquitto_sub", b, port, username(), "pw")
        + ["-t", f"alice/{t}", "-q", "1", "-C", "1", "-W", str(int(TIMEOUT)), "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # Until the subscriber is subscribed, its message may be missed: publish until it
        # prints one (each publish a new connection through the authorizer).
        outside = subprocess.run(mosquitto("mosquitto_pub", b, port, username(), "pw")
                                 + ["-t", f"bob/{t}", "-m", "outside", "-q", "0"],
                                 capture_output=True, text=True, timeout=TIMEOUT)
        assert outside.returncode == 0, outside.stdout + outside.stderr
        for _ in range(20):
            pub = subprocess.run(mosquitto("mosquitto_pub", b, port, username(), "pw")
                                 + ["-t", f"alice/{t}", "-m", "hello", "-q", "1"],
                                 capture_output=True, text=True, timeout=TIMEOUT)
            assert pub.returncode == 0, pub.stdout + pub.stderr
            try:
                out, _ = sub.communicate(timeout=1)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            raise AssertionError("mosquitto_sub got nothing")
        assert out.strip().splitlines()[-1] == f"alice/{t} hello", out
    finally:
        if sub.poll() is None:
            sub.kill()
        sub.wait()
    # The observer saw alice's messages, never the one outside alice/*.
    seen = watch.until(f"alice/{t}")
    assert all(not m.topic.startswith("bob/") for m in seen), [m.topic for m in seen]
    assert not any(m.topic.startswith("bob/") for m in watch.drain())
    watch.close()

    # The webhook got AWS's authorizer request (the connection had no ALPN).
    event = webhook.events[0]
    assert event["protocols"] == ["tls", "mqtt"]
    assert event["protocolData"]["mqtt"]["username"] == username()
    assert base64.b64decode(event["protocolData"]["mqtt"]["password"]) == b"pw"
    assert event["connectionMetadata"]["id"]

    for version, refusal in (("mqttv5", "not authori"), ("mqttv311", "not authori")):
        wrong = subprocess.run(mosquitto("mosquitto_pub", b, port, username(), "wrong", version)
                               + ["-t", f"alice/{t}", "-m", "x"], capture_output=True, text=True, timeout=TIMEOUT)
        assert wrong.returncode != 0
        assert refusal in (wrong.stdout + wrong.stderr).lower(), wrong.stdout + wrong.stderr


@pytest.mark.parametrize("version", [5, 4])
def test_refusal_codes_and_where_custom_auth_is_refused(custom_broker, webhook, version):
    b = custom_broker
    refused = NOT_AUTHORIZED if version == 5 else 5
    assert connack(b, b.listener_port("legacy"), version, password=b"wrong") == refused
    calls = len(webhook.events)
    # Not with ALPN x-amzn-mqtt-ca on the HTTPS port (AWS's certificate-only protocol).
    assert connack(b, b.listener_port("https"), version, alpn=["x-amzn-mqtt-ca"]) == refused
    assert len(webhook.events) == calls, "certificate-only protocols never ask"
    assert connack(b, b.listener_port("legacy"), version) == 0
    # The built-in MQTT/TLS listener takes custom authentication too (beyond AWS's 8883).
    assert connack(b, b.listener_port("mqtts"), version) == 0
    # ALPN mqtt on the HTTPS port is custom authentication's (AWS's 443).
    with paho_tls(b, b.listener_port("https"), version, alpn=["mqtt"]) as p:
        p.connect()
        t = f"alice/{uid('t')}"
        p.subscribe(t, qos=1)
        p.publish(t, b"ping", qos=1)
        assert p.get().payload == b"ping"


def test_webhook_down_fails_closed_while_certificates_connect(custom_broker, webhook, pki):
    b = custom_broker
    iot = aws.iot(b)
    dev = api_device(iot, pki)
    iot.create_policy(policyName="all", policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
    iot.attach_policy(policyName="all", target=cert_arn(dev.id))
    webhook.close()
    for version, unavailable in ((5, SERVER_UNAVAILABLE), (4, 3)):
        assert connack(b, b.listener_port("legacy"), version) == unavailable
    # Certificates are decided by themselves alone, on every listener, webhook or not.
    for port in (b.listener_port("legacy"), b.listener_port("mqtts")):
        with Paho(b, transport="tcp") as p:
            p.port = port
            ctx = tls_context(b)
            ctx.load_cert_chain(str(dev.cert), str(dev.key))
            p.c.tls_set_context(ctx)
            p.connect()


def test_certificate_clients_never_call_the_authorizer(custom_broker, webhook, pki):
    b = custom_broker
    iot = aws.iot(b)
    dev = api_device(iot, pki)
    iot.create_policy(policyName="all", policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
    iot.attach_policy(policyName="all", target=cert_arn(dev.id))
    for port in (b.listener_port("legacy"), b.listener_port("mqtts")):
        # Even with custom-auth credentials in the username: the certificate decides.
        p = Paho(b, transport="tcp", username=username(), password="pw")
        p.port = port
        ctx = tls_context(b)
        ctx.load_cert_chain(str(dev.cert), str(dev.key))
        p.c.tls_set_context(ctx)
        p.connect()
        p.close()
    assert webhook.events == []


# ---------------------------------------------------------------------------------------------
# the AWS IoT Device SDK v2 for Python


def sdk_pubsub(build, **kwargs) -> None:
    """The SDK client built by `build(**kwargs, callbacks)` round-trips a message on alice/<t>."""
    authorizers.sdk_pubsub(build, f"alice/{uid('sdk')}", **kwargs)


def test_sdk_direct_with_custom_authorizer(custom_broker, webhook):
    b = custom_broker
    sdk_pubsub(
        mqtt5_client_builder.direct_with_custom_authorizer,
        endpoint="localhost",  # the server certificate names localhost
        port=b.listener_port("https"),
        auth_username="alice",
        auth_authorizer_name=AUTHORIZER,
        auth_password=b"pw",
        ca_filepath=str(b.ca),
        client_id=uid("sdk"),
    )
    event = webhook.events[-1]
    assert event["protocols"] == ["tls", "mqtt"]
    assert event["protocolData"]["tls"]["serverName"] == "localhost"
    # The SDK's metrics parameters follow the authorizer's name in the username.
    assert event["protocolData"]["mqtt"]["username"].startswith(f"alice?x-amz-customauthorizer-name={AUTHORIZER}&SDK=")


def test_sdk_websockets_with_custom_authorizer(custom_broker, webhook):
    b = custom_broker
    sdk_pubsub(
        mqtt5_client_builder.websockets_with_custom_authorizer,
        endpoint="localhost",
        port=b.listener_port("https"),
        auth_username="alice",
        auth_authorizer_name=AUTHORIZER,
        auth_password=b"pw",
        ca_filepath=str(b.ca),
        client_id=uid("sdk"),
    )
    event = webhook.events[-1]
    assert event["protocols"] == ["tls", "http", "mqtt"]
    headers = event["protocolData"]["http"]["headers"]
    assert headers.get("sec-websocket-protocol") == "mqtt"


def test_sdk_signed_token(start_broker, webhook, tmp_path):
    key, public = authorizers.signing_key(tmp_path)
    b = start_broker(tls_anonymous=False)
    aws.iot(b).create_authorizer(authorizerName="signed", authorizerFunctionArn=webhook.url, tokenKeyName="tok",
                                 tokenSigningPublicKeys={"k1": public}, status="ACTIVE")
    token = uid("token")
    webhook.token = token
    signed = dict(
        endpoint="localhost",
        port=b.listener_port("https"),
        auth_authorizer_name="signed",
        auth_authorizer_signature=sign(key, token),
        auth_token_key_name="tok",
        auth_token_value=token,
        ca_filepath=str(b.ca),
        client_id=uid("sdk"),
    )
    sdk_pubsub(mqtt5_client_builder.direct_with_custom_authorizer, **signed)
    assert webhook.events[-1]["token"] == token and webhook.events[-1]["signatureVerified"] is True
    assert token not in b.log() and signed["auth_authorizer_signature"][:40] not in b.log(), "secrets logged"

    # A signature of another token: refused before the webhook is asked.
    calls = len(webhook.events)
    p = paho_tls(b, b.listener_port("https"), client_id=uid("bad"), alpn=["mqtt"], password="",
                 user=f"?x-amz-customauthorizer-name=signed&x-amz-customauthorizer-signature="
                      f"{sign(key, 'other').replace('+', '%2B')}&tok={token}")
    assert p.connect(expect_success=False).rc == NOT_AUTHORIZED
    p.close()
    assert len(webhook.events) == calls


def test_websocket_upgrade_headers_and_query_name_the_authorizer(custom_broker, webhook):
    """Over WebSocket the authorizer may be named in the upgrade request's headers or query
    (AWS's MQTT-over-WSS rule), before the MQTT username. An INACTIVE authorizer named there
    refuses, where the default one would admit alice."""
    b = custom_broker
    aws.iot(b).create_authorizer(authorizerName="off", authorizerFunctionArn=webhook.url, signingDisabled=True)

    def wss(path: str = "/mqtt", headers: dict | None = None) -> Paho:
        p = Paho(b, transport="wss", username="alice", password="pw")
        p.c.ws_set_options(path=path, headers=headers)
        return p

    with wss() as p:
        p.connect()
    assert webhook.events[-1]["protocols"] == ["tls", "http", "mqtt"]
    assert webhook.events[-1]["protocolData"]["http"]["headers"]["sec-websocket-protocol"] == "mqtt"
    calls = len(webhook.events)
    for p in (wss(headers={"X-Amz-CustomAuthorizer-Name": "off"}), wss(path="/mqtt?x-amz-customauthorizer-name=off")):
        assert p.connect(expect_success=False).rc == NOT_AUTHORIZED
        p.close()
    assert len(webhook.events) == calls, "an INACTIVE authorizer is not called"


def test_deactivating_the_authorizer_closes_its_connections_at_once(custom_broker, webhook):
    """A connection admitted through an authorizer is re-authenticated when the authorizer
    changes: made INACTIVE, it closes the connection with DISCONNECT 0x87 at once (not at the
    answer's refreshAfterInSeconds), the cached answer notwithstanding."""
    b = custom_broker
    with paho_tls(b, b.listener_port("legacy")) as p:
        p.connect()
        aws.iot(b).update_authorizer(authorizerName=AUTHORIZER, status="INACTIVE")
        assert rc_value(p.wait_disconnected(TIMEOUT)) == NOT_AUTHORIZED


def test_clearing_the_default_authorizer_closes_the_connections_it_admitted(custom_broker, webhook):
    """A change of the account's default authorizer re-authenticates the connections the old
    default admitted: one that named no authorizer is refused once there is no default; one
    that named the authorizer keeps its connection."""
    b = custom_broker
    port = b.listener_port("legacy")
    with paho_tls(b, port, user="alice") as by_default, paho_tls(b, port) as by_name:
        by_default.connect()
        by_name.connect()
        aws.iot(b).clear_default_authorizer()
        assert rc_value(by_default.wait_disconnected(TIMEOUT)) == NOT_AUTHORIZED
        by_name.subscribe("alice/still")
        by_name.publish("alice/still", b"here", qos=1)
        assert by_name.get(TIMEOUT).payload == b"here"


def test_mqtt5_auth_reauthenticates_on_the_open_connection(custom_broker, webhook):
    """An MQTT 5 client that connects with authentication method `custom` (its authentication
    data standing in for the password) re-authenticates with AUTH 0x19 and a new password: an
    accepted one is answered AUTH 0x00 and the connection goes on; a refused one closes it
    with DISCONNECT 0x87."""
    b = custom_broker
    method = [(mqttraw.AUTH_METHOD, "custom")]
    c = mqttraw.RawClient(b.host, b.listener_port("legacy"), tls=tls_context(b), timeout=TIMEOUT)
    try:
        ack = c.connect(uid("reauth"), username=username(), props=method + [(mqttraw.AUTH_DATA, b"pw")])
        assert ack.reason == 0 and ack.prop(mqttraw.AUTH_METHOD) == "custom"

        def auth(data: bytes) -> bytes:
            props = mqttraw.encode_props(method + [(mqttraw.AUTH_DATA, data)])
            return mqttraw.packet(mqttraw.AUTH, 0, bytes([0x19]) + props)

        c.send(auth(b"pw"))
        assert c.expect(mqttraw.AUTH).reason == 0x00
        assert c.subscribe(("alice/reauth", 1)).reasons == [1]

        c.send(auth(b"stolen"))
        closing = c.wait_closed(TIMEOUT)
        assert [p.reason for p in closing if p.type == mqttraw.DISCONNECT] == [NOT_AUTHORIZED]
    finally:
        c.close()


class TokenWebhook(authorizers.Webhook):
    """Admits requests whose token (tokenKeyName `x-token`) is `good` under ALICE_POLICY."""

    def reply(self, event: dict) -> tuple[int, dict]:
        allowed = event.get("token") == "good"
        return 200, {"isAuthenticated": allowed, "principalId": "alice" if allowed else "nobody",
                     "policyDocuments": [ALICE_POLICY] if allowed else [], "refreshAfterInSeconds": 600}


def https_publish(broker, topic: str, headers: dict[str, str], query: str = "") -> tuple[int, str]:
    """An unsigned iot-data Publish on the HTTPS port without a client certificate: the
    status and x-amzn-ErrorType."""
    conn = http.client.HTTPSConnection("localhost", broker.listener_port("https"),
                                       context=tls_context(broker, None), timeout=TIMEOUT)
    try:
        conn.request("POST", f"/topics/{topic}?qos=1{query}", body=b"over https", headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("x-amzn-ErrorType", "")
    finally:
        conn.close()


def test_https_publish_through_a_custom_authorizer(custom_broker):
    """iot-data Publish over HTTPS with custom authentication, as AWS devices do it: the
    authorizer named by the x-amz-customauthorizer-name header or query parameter, the token
    in its tokenKeyName header or query parameter; the answer's policies decide the topic.
    Answers are shared across requests only once enableCachingForHttp is on."""
    b = custom_broker
    hook = TokenWebhook()
    try:
        iot = aws.iot(b)
        iot.create_authorizer(authorizerName="httphook", authorizerFunctionArn=hook.url, signingDisabled=True,
                              tokenKeyName="x-token", status="ACTIVE")
        named = {"x-amz-customauthorizer-name": "httphook"}
        with observer(b) as seen:
            seen.subscribe("alice/#", qos=1)
            assert https_publish(b, "alice/http", {**named, "x-token": "good"}) == (200, "")
            assert seen.get(TIMEOUT).payload == b"over https"
            assert https_publish(b, "alice/query", {}, "&x-amz-customauthorizer-name=httphook&x-token=good") == (200, "")
            assert seen.get(TIMEOUT).topic == "alice/query"
        assert https_publish(b, "bob/http", {**named, "x-token": "good"}) == (403, "ForbiddenException")
        assert https_publish(b, "alice/http", {**named, "x-token": "bad"}) == (401, "UnauthorizedException")
        # The account default (the `hook` authorizer) decides requests that name none: no
        # username and password over HTTPS, so refused.
        assert https_publish(b, "alice/http", {"x-token": "good"}) == (401, "UnauthorizedException")
        event = hook.events[0]
        assert event["protocols"] == ["tls", "http"] and "mqtt" not in event["protocolData"]
        assert event["protocolData"]["http"]["headers"]["x-token"] == "good"

        calls = len(hook.events)
        https_publish(b, "alice/http", {**named, "x-token": "good"})
        https_publish(b, "alice/http", {**named, "x-token": "good"})
        assert len(hook.events) == calls + 2, "no caching without enableCachingForHttp"
        iot.update_authorizer(authorizerName="httphook", enableCachingForHttp=True)
        https_publish(b, "alice/http", {**named, "x-token": "good"})
        https_publish(b, "alice/http", {**named, "x-token": "good"})
        assert len(hook.events) == calls + 3, "cached with enableCachingForHttp"
    finally:
        hook.close()


def test_plain_listener_only_when_declared(start_broker, webhook):
    """A plain listener takes passwords only with custom_auth and allow_plaintext_passwords, and
    says so loudly at start."""
    b = start_broker(tls_anonymous=False, config=(
        '[[listener]]\nname = "lan"\ntransport = "mqtt"\naddress = "127.0.0.1:0"\n'
        "custom_auth = true\nallow_plaintext_passwords = true\n"))
    assert "PLAIN listener with custom authentication" in b.log()

    def plain_connack(user: str) -> int:
        c = mqttraw.RawClient(b.host, b.listener_port("lan"), version=5, timeout=TIMEOUT)
        try:
            return c.connect(uid("raw"), username=user, password=b"pw").reason
        finally:
            c.sock.close()

    iot = aws.iot(b)
    iot.create_authorizer(authorizerName=AUTHORIZER, authorizerFunctionArn=webhook.url, signingDisabled=True,
                          status="ACTIVE")
    # No authorizer named and no default; an unknown one named.
    assert plain_connack("alice") == NOT_AUTHORIZED
    assert plain_connack("alice?x-amz-customauthorizer-name=nope") == NOT_AUTHORIZED
    assert webhook.events == []
    # Named, then by default.
    assert plain_connack(username()) == 0
    iot.set_default_authorizer(authorizerName=AUTHORIZER)
    assert plain_connack("alice") == 0
    assert webhook.events[-1]["protocols"] == ["mqtt"]


def test_listener_default_authorizer(start_broker, webhook):
    """A listener's default_authorizer decides the clients that name none (a migrated fleet
    sending plain usernames), before and without the account's default."""
    b = start_broker(tls_anonymous=False, config=LEGACY_LISTENER + f'default_authorizer = "{AUTHORIZER}"\n')
    aws.iot(b).create_authorizer(authorizerName=AUTHORIZER, authorizerFunctionArn=webhook.url,
                                 signingDisabled=True, status="ACTIVE")
    c = mqttraw.RawClient(b.host, b.listener_port("legacy"), version=4, tls=tls_context(b), timeout=TIMEOUT)
    try:
        assert c.connect(uid("raw"), username="alice", password=b"pw").reason == 0
    finally:
        c.sock.close()
    assert webhook.events[-1]["protocolData"]["mqtt"]["username"] == "alice"
    # Elsewhere a client naming no authorizer has none (no account default).
    https = mqttraw.RawClient(b.host, b.listener_port("https"), version=4, tls=tls_context(b, ["mqtt"]),
                              timeout=TIMEOUT)
    try:
        assert https.connect(uid("raw"), username="alice", password=b"pw").reason == 5
    finally:
        https.sock.close()


def test_compat_aws_refuses_custom_auth_on_the_mqtts_listener(start_broker, webhook):
    """As AWS on 8883: in AWS mode the built-in MQTT/TLS listener is certificate-only."""
    b = start_broker(tls_anonymous=False, args=["--compat", "aws"])
    iot = aws.iot(b)
    iot.create_authorizer(authorizerName="hook", authorizerFunctionArn=webhook.url,
                          signingDisabled=True, status="ACTIVE")
    iot.set_default_authorizer(authorizerName="hook")
    assert connack(b, b.listener_port("mqtts"), 5) == NOT_AUTHORIZED
    assert not webhook.events
    assert connack(b, b.listener_port("https"), 5, alpn=["mqtt"]) == 0
