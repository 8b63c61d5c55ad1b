"""Custom authentication under attack and under failure (issue 6), through the release binary:
every attempt below is refused — CONNACK 0x87 / 5 (not authorized) when the credentials or the
authorizer's configuration are at fault, 0x88 / 3 (server unavailable) when the authorizer's
function fails — and none of them stops the broker from serving certificate clients (each test
ends with a certificate client's connect + publish round trip, the process alive).

The authorizers are webhooks on 127.0.0.1 (`Hostile`) that answer by the MQTT user name (before
`?`): `alice` gets a valid answer admitting her, the names of MALFORMED get a broken answer,
`hang` waits until the test releases it. Each malformed case has its own authorizer, so that one
authorizer's circuit breaker (5 failures in a row) never decides another case's outcome."""

from __future__ import annotations

import ssl
import threading
import time
import urllib.parse

import pytest

import aws
import mqttraw
from authorizers import (Webhook, assert_serves_certificates, certificate_device, connack_code, raw_tls, sign,
                         signing_key)
from brokers import free_port
from clients import uid
from pki import ACCOUNT, REGION

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
NOT_AUTHORIZED, SERVER_UNAVAILABLE = 0x87, 0x88
REFUSED = {5: NOT_AUTHORIZED, 4: 5}  # MQTT 5 reason / 3.1.1 return code
UNAVAILABLE = {5: SERVER_UNAVAILABLE, 4: 3}
HOOK = "hostile"
ALLOW = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
# A valid policy of more than 2048 characters not counting whitespace.
BIG_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": [f"{ARN}:topic/t{i}" for i in range(60)]}]}
MAX_MQTT_STRING = 65535


def answer(**members) -> dict:
    """A valid answer admitting alice, with `members` replaced (None: left out)."""
    body = {"isAuthenticated": True, "principalId": "alice", "policyDocuments": [ALLOW],
            "refreshAfterInSeconds": 600, "disconnectAfterInSeconds": 3600}
    body.update(members)
    return {name: value for name, value in body.items() if value is not None}


# Answers AWS would reject as a Lambda authorizer's response: (HTTP status, body).
MALFORMED: dict[str, tuple[int, dict | str]] = {
    "notjson": (200, "<html>not JSON</html>"),
    "empty": (200, ""),
    "notobject": (200, "[true]"),
    "noauthenticated": (200, answer(isAuthenticated=None)),
    "noprincipal": (200, answer(principalId=None)),
    "badprincipal": (200, answer(principalId="alice@example.com")),
    "longprincipal": (200, answer(principalId="a" * 129)),
    "elevenpolicies": (200, answer(policyDocuments=[ALLOW] * 11)),
    "bigpolicy": (200, answer(policyDocuments=[BIG_POLICY])),
    "invalidpolicy": (200, answer(policyDocuments=[{"Version": "2012-10-17", "Statement": [
        {"Effect": "Perhaps", "Action": "iot:*", "Resource": "*"}]}])),
    "policynotjson": (200, answer(policyDocuments=["{not JSON"])),
    "refreshlow": (200, answer(refreshAfterInSeconds=299)),
    "disconnecthigh": (200, answer(disconnectAfterInSeconds=86401)),
    "negative": (200, answer(refreshAfterInSeconds=-1)),
    "fraction": (200, answer(disconnectAfterInSeconds=600.5)),
    "authstring": (200, answer(isAuthenticated="true")),
    "principalnumber": (200, answer(principalId=7)),
    "policiesobject": (200, answer(policyDocuments=ALLOW)),
    "policynumber": (200, answer(policyDocuments=[42])),
    "refreshstring": (200, answer(refreshAfterInSeconds="600")),
    "duplicate": (200, '{"isAuthenticated": false, "isAuthenticated": true, "principalId": "alice", '
                       f'"policyDocuments": [{{"Version": "2012-10-17", "Statement": []}}]}}'),
    "huge": (200, answer(padding="x" * (300 * 1024))),
    "status500": (500, answer()),
    "status503": (503, answer()),
    "status404": (404, answer()),
}


class Hostile(Webhook):
    """Answers by the user name before `?`: alice is admitted, a MALFORMED name gets that
    answer, `hang` waits until `release` is set and then gets `after_release`, anyone else is
    denied (a valid isAuthenticated false)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.after_release: tuple[int, dict | str] = (500, "released")
        self.waiting = 0
        self.lock = threading.Lock()

    def reply(self, event: dict) -> tuple[int, dict | str]:
        user = user_of(event)
        if user == "alice":
            return 200, answer()
        if user in MALFORMED:
            return MALFORMED[user]
        if user == "hang":
            with self.lock:
                self.waiting += 1
            self.release.wait(120)
            with self.lock:
                self.waiting -= 1
            return self.after_release
        return 200, answer(isAuthenticated=False, principalId="nobody", policyDocuments=[])

    def close(self):
        self.release.set()
        super().close()


def user_of(event: dict) -> str:
    return event.get("protocolData", {}).get("mqtt", {}).get("username", "").split("?", 1)[0]


def calls(hook: Hostile, user: str) -> int:
    return sum(1 for event in hook.events if user_of(event) == user)


def username(user: str, authorizer: str = HOOK, **params: str) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return f"{user}?x-amz-customauthorizer-name={authorizer}" + (f"&{query}" if query else "")


@pytest.fixture
def hook():
    h = Hostile()
    yield h
    h.close()


def broker_with(start_broker, hook: Hostile, **options):
    """A broker (certificate-only TLS listeners, the built-in mqtts one taking custom
    authentication) with `hook` as the ACTIVE authorizer HOOK, unsigned, token key `tok`."""
    b = start_broker(tls_anonymous=False, **options)
    aws.iot(b).create_authorizer(authorizerName=HOOK, authorizerFunctionArn=hook.url, signingDisabled=True,
                                 tokenKeyName="tok", status="ACTIVE")
    return b


def test_bad_and_missing_token_signatures(start_broker, hook, pki):
    """With signing enabled, the signature is checked before the function is asked: missing,
    made for another token, by another key, not base64, oversized — each 0x87 / 5, the webhook
    never called; the right signature admits."""
    b = start_broker(tls_anonymous=False)
    device = certificate_device(b, pki)
    key, public = signing_key(pki)
    other_folder = pki / "other"
    other_folder.mkdir()
    other_key, _ = signing_key(other_folder)
    aws.iot(b).create_authorizer(authorizerName="signed", authorizerFunctionArn=hook.url, tokenKeyName="tok",
                                 tokenSigningPublicKeys={"k1": public}, status="ACTIVE")
    port = b.listener_port("mqtts")
    token = uid("token")

    def signed_user(signature: str | None, tok: str | None = token) -> str:
        params = {}
        if signature is not None:
            params["x-amz-customauthorizer-signature"] = urllib.parse.quote(signature, safe="")
        if tok is not None:
            params["tok"] = tok
        return username("alice", "signed", **params)

    attacks = {
        "missing signature": signed_user(None),
        "signature of another token": signed_user(sign(key, "another token")),
        "signature by another key": signed_user(sign(other_key, token)),
        "signature not base64": signed_user("!!not*base64!!"),
        "empty signature": signed_user(""),
        "oversized signature": signed_user("A" * 3000),
        "signature without token": signed_user(sign(key, token), tok=None),
        "truncated signature": signed_user(sign(key, token)[:-8]),
    }
    for version in (5, 4):
        for attack, user in attacks.items():
            assert connack_code(b, port, version, user, b"") == REFUSED[version], attack
    assert hook.events == [], "a bad signature never reaches the function"
    assert connack_code(b, port, 5, signed_user(sign(key, token)), b"") == 0
    assert len(hook.events) == 1 and hook.events[0]["signatureVerified"] is True
    assert_serves_certificates(b, device)


def test_unknown_inactive_and_oversized_credentials(start_broker, hook, pki):
    """An unknown, invalid or INACTIVE authorizer, a token over 6144 characters, and the
    largest user names and passwords MQTT can carry: refused (0x87 / 5), the oversized token
    and the unusable authorizers without calling the function."""
    b = broker_with(start_broker, hook)
    device = certificate_device(b, pki)
    iot = aws.iot(b)
    iot.create_authorizer(authorizerName="off", authorizerFunctionArn=hook.url, signingDisabled=True)
    port = b.listener_port("mqtts")
    not_called = {
        "unknown authorizer": username("alice", "nosuchauthorizer"),
        "authorizer name too long": username("alice", "a" * 129),
        "authorizer name invalid": username("alice", "bad%20name%2F"),
        "INACTIVE authorizer": username("alice", "off"),
        "token over 6144 characters": username("alice", tok="t" * 6145),
        "empty token": username("alice", tok=""),
        "token given twice": username("alice", tok="one") + "&tok=two",
        # The largest user name MQTT can carry, most of it a token far over the limit.
        "65535-byte user name with an oversized token": username("alice", tok="t" * MAX_MQTT_STRING)[
            :MAX_MQTT_STRING],
    }
    for version in (5, 4):
        for case, user in not_called.items():
            assert connack_code(b, port, version, user, b"pw") == REFUSED[version], case
    assert hook.events == [], "none of these reaches the function"

    # Within the limits, the function decides: a 6144-character token and the largest user
    # names and passwords reach it, and it denies the ones that are not alice's.
    assert connack_code(b, port, 5, username("alice", tok="t" * 6144), b"pw") == 0
    assert len(hook.events[-1]["token"]) == 6144
    iot.set_default_authorizer(authorizerName=HOOK)
    for version in (5, 4):
        assert connack_code(b, port, version, "z" * MAX_MQTT_STRING, b"pw") == REFUSED[version]
        assert connack_code(b, port, version, username("z", pad="p" * 60000), b"p" * MAX_MQTT_STRING) == \
            REFUSED[version]
    assert len(hook.events[-1]["protocolData"]["mqtt"]["username"]) > 60000
    assert_serves_certificates(b, device)


def test_malformed_answers_fail_closed(start_broker, hook, pki):
    """Each answer AWS would reject (not JSON, missing or bad principalId, 11 policies, a
    policy over 2048 characters, an invalid policy, lifetimes outside 300-86400 s, wrong types,
    a member twice, a body over 256 KiB, a non-2xx status) is a failure of the function:
    0x88 / 3 after the function was asked once per attempt; a valid answer still admits. (The
    circuit breaker is kept out of the way here, so that every case reaches the function.)"""
    b = broker_with(start_broker, hook, args=["--authorizer-breaker-failures", "1000"])
    device = certificate_device(b, pki)
    port = b.listener_port("mqtts")
    for case in MALFORMED:
        assert connack_code(b, port, 5, username(case), b"pw") == SERVER_UNAVAILABLE, case
        assert calls(hook, case) == 1, case
    for case in ("notjson", "elevenpolicies", "status500"):
        assert connack_code(b, port, 4, username(case), b"pw") == UNAVAILABLE[4], case
    assert connack_code(b, port, 5, username("alice"), b"pw") == 0
    assert_serves_certificates(b, device)


def test_unreachable_webhook_and_the_circuit_breaker(start_broker, hook, pki):
    """A webhook that refuses connections: 0x88 / 3. After 5 failures in a row the authorizer's
    circuit opens: still 0x88, without calling the function (a failing webhook that answers
    500 is not called a sixth time)."""
    b = broker_with(start_broker, hook, args=["--authorizer-breaker-cool-down", "1h"])
    device = certificate_device(b, pki)
    iot = aws.iot(b)
    iot.create_authorizer(authorizerName="refused", authorizerFunctionArn=f"http://127.0.0.1:{free_port()}/auth",
                          signingDisabled=True, status="ACTIVE")
    port = b.listener_port("mqtts")
    for version in (5, 4):
        assert connack_code(b, port, version, username("alice", "refused"), b"pw") == UNAVAILABLE[version]
    for attempt in range(7):
        assert connack_code(b, port, 5, username("status500"), b"pw") == SERVER_UNAVAILABLE, attempt
    assert calls(hook, "status500") == 5, "the open circuit keeps the failing function from being called"
    # Another authorizer's circuit is its own.
    iot.create_authorizer(authorizerName="healthy", authorizerFunctionArn=hook.url, signingDisabled=True,
                          status="ACTIVE")
    assert connack_code(b, port, 5, username("alice", "healthy"), b"pw") == 0
    assert_serves_certificates(b, device)


def test_webhook_timeout(start_broker, hook, pki):
    """A webhook that does not answer within the server's 5 s: 0x88 / 3 (two clients stuck on
    it at once, MQTT 5 and 3.1.1), while certificate clients keep connecting."""
    b = broker_with(start_broker, hook)
    device = certificate_device(b, pki)
    port = b.listener_port("mqtts")
    clients = {}
    for version in (5, 4):
        clients[version] = raw_tls(b, port, version)
        clients[version].send(connect_packet(version, username("hang")))
    try:
        assert_serves_certificates(b, device)
        for version, c in clients.items():
            assert c.expect(mqttraw.CONNACK).reason == UNAVAILABLE[version]
    finally:
        for c in clients.values():
            c.sock.close()
    assert_serves_certificates(b, device)


def test_a_hung_authorizer_stalls_nothing_else(start_broker, hook, pki):
    """Several clients stuck on an authorizer that does not answer (the server's timeouts
    raised so that only the webhook decides when they end): certificate clients connect and
    publish meanwhile; a client over the authorizer's concurrency limit waits for a call slot
    (no fifth call reaches the webhook), and every stuck client gets its answer, in turn, when
    the webhook finally gives it."""
    b = broker_with(start_broker, hook, connect_timeout=600,
                    args=["--authorizer-timeout", "600s", "--authorizer-max-concurrent-calls", "4"])
    device = certificate_device(b, pki)
    port = b.listener_port("mqtts")
    stuck = [raw_tls(b, port, 5) for _ in range(5)]
    try:
        for c in stuck[:4]:
            c.send(connect_packet(5, username("hang")))
        wait_for(lambda: hook.waiting == 4, "four calls waiting in the webhook")
        stuck[4].send(connect_packet(5, username("hang")))
        assert_serves_certificates(b, device)
        assert hook.waiting == 4, "over the limit: a fifth call went out"
        assert not any(map(has_data, stuck)), "a stuck client got an answer before the webhook gave one"
        hook.after_release = (200, answer())
        hook.release.set()
        for c in stuck:
            assert c.expect(mqttraw.CONNACK).reason == 0
    finally:
        for c in stuck:
            c.sock.close()
    assert_serves_certificates(b, device)


def has_data(c: mqttraw.RawClient) -> bool:
    """Whether the server sent `c` anything (TLS records without data, such as session
    tickets, do not count); never waits."""
    c.sock.setblocking(False)
    try:
        return bool(c.sock.recv(1))
    except ssl.SSLWantReadError:
        return False
    finally:
        c.sock.settimeout(c.timeout)


def connect_packet(version: int, user: str) -> bytes:
    return mqttraw.connect(uid("raw"), version=version, username=user, password=b"pw")


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    """Polls `condition` (only to avoid hangs: the bound is no timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not reached: {what}"
        time.sleep(0.05)
