"""Lifecycle events through the real binary (AWS's presence and subscription events): an
observer subscribed to `$aws/events/#` sees every connection's connected and disconnected
events with AWS's fields, the reason each way of ending a connection is reported with, and
the subscribed / unsubscribed events; client ids with `+` or `#` get none."""

from __future__ import annotations

import json
import queue
import re
import ssl
import time

import pytest

import aws
import mqttraw as r
import pki as _pki
from clients import WAIT, Paho, raw, uid

pytestmark = pytest.mark.ferrocore_only

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Timestamps are checked for plausibility only (server and test share the machine).
SLACK_MS = 120_000

CONNECTED = {"clientId", "timestamp", "eventType", "sessionIdentifier", "principalIdentifier",
             "ipAddress", "versionNumber"}
DISCONNECTED = {"clientId", "timestamp", "eventType", "sessionIdentifier", "principalIdentifier",
                "clientInitiatedDisconnect", "disconnectReason", "versionNumber"}
SUBSCRIPTIONS = {"clientId", "timestamp", "eventType", "sessionIdentifier", "principalIdentifier",
                 "topics"}


class Observer:
    """A client of the allow-all dev listener subscribed to `$aws/events/#`; hands out the
    events of one client id at a time (other clients' events are set aside)."""

    def __init__(self, broker):
        self.p = Paho(broker, client_id=uid("observer"))
        self.p.connect()
        assert self.p.subscribe("$aws/events/#", 1) == [1]
        self.others: list[tuple[str, dict]] = []

    def next(self, client_id: str, timeout: float = WAIT) -> tuple[str, dict]:
        """The next event about `client_id`: (kind, payload), kind being the topic between
        `$aws/events/` and the client id, e.g. `presence/connected`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                m = self.p.messages.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no event about {client_id} within {timeout}s") from None
            assert not m.retain
            event = json.loads(m.payload)
            prefix, _, cid = m.topic.removeprefix("$aws/events/").rpartition("/")
            if cid == client_id:
                assert event["clientId"] == client_id, (m.topic, event)
                return prefix, event
            self.others.append((m.topic, event))

    def expect(self, client_id: str, kind: str) -> dict:
        got, event = self.next(client_id)
        assert got == kind, (got, event)
        return event

    def nothing_about(self, client_id: str, wait: float = 1.0) -> None:
        try:
            kind, event = self.next(client_id, timeout=wait)
        except AssertionError:
            return
        raise AssertionError(f"unexpected event about {client_id}: {kind} {event}")

    def close(self) -> None:
        self.p.close()


@pytest.fixture
def observer(broker):
    o = Observer(broker)
    yield o
    o.close()


def plausible_ms(value, before: int) -> None:
    now = int(time.time() * 1000)
    assert isinstance(value, int) and before - SLACK_MS <= value <= now + SLACK_MS, value


@pytest.mark.parametrize("version", [5, 4])
def test_connected_subscribed_unsubscribed_and_a_clean_disconnect(broker, observer, version):
    before = int(time.time() * 1000)
    cid = uid("ev")
    c = Paho(broker, client_id=cid, version=version)
    c.connect()

    connected = observer.expect(cid, "presence/connected")
    assert set(connected) == CONNECTED, connected
    assert connected["eventType"] == "connected"
    assert connected["ipAddress"] == "127.0.0.1"
    assert connected["principalIdentifier"].startswith("anonymous:")
    assert UUID.match(connected["sessionIdentifier"]), connected
    assert isinstance(connected["versionNumber"], int)
    plausible_ms(connected["timestamp"], before)

    assert c.subscribe("ev/a", 1) == [1]
    sub = observer.expect(cid, "subscriptions/subscribed")
    assert set(sub) == SUBSCRIPTIONS, sub
    assert sub["eventType"] == "subscribed"
    assert sub["topics"] == ["ev/a"]
    assert sub["sessionIdentifier"] == connected["sessionIdentifier"]
    assert sub["principalIdentifier"] == connected["principalIdentifier"]
    c.unsubscribe("ev/a")
    unsub = observer.expect(cid, "subscriptions/unsubscribed")
    assert set(unsub) == SUBSCRIPTIONS, unsub
    assert (unsub["eventType"], unsub["topics"]) == ("unsubscribed", ["ev/a"])

    c.disconnect()
    gone = observer.expect(cid, "presence/disconnected")
    assert set(gone) == DISCONNECTED, gone
    assert gone["eventType"] == "disconnected"
    assert gone["clientInitiatedDisconnect"] is True
    assert gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert gone["sessionIdentifier"] == connected["sessionIdentifier"]
    assert gone["versionNumber"] == connected["versionNumber"]
    plausible_ms(gone["timestamp"], before)

    # The next connection of the client id: a new session identifier, a higher version.
    again = Paho(broker, client_id=cid, version=version)
    again.connect()
    second = observer.expect(cid, "presence/connected")
    assert second["sessionIdentifier"] != connected["sessionIdentifier"]
    assert second["versionNumber"] > connected["versionNumber"]
    again.disconnect()
    observer.expect(cid, "presence/disconnected")


def test_a_dropped_socket_is_a_lost_connection(broker, observer):
    cid = uid("ev-drop")
    c = raw(broker, 5)
    assert c.connect(cid).reason == 0
    observer.expect(cid, "presence/connected")
    c.close()
    gone = observer.expect(cid, "presence/disconnected")
    assert gone["disconnectReason"] == "CONNECTION_LOST"
    assert gone["clientInitiatedDisconnect"] is False


def test_a_silent_client_times_out_its_keep_alive(broker, observer):
    cid = uid("ev-ka")
    c = raw(broker, 4)
    assert c.connect(cid, keepalive=1).reason == 0
    observer.expect(cid, "presence/connected")
    # Nothing sent: the server closes after one and a half keep-alive periods.
    c.wait_closed(timeout=WAIT)
    gone = observer.expect(cid, "presence/disconnected")
    assert gone["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"
    assert gone["clientInitiatedDisconnect"] is False


@pytest.mark.parametrize("error", ["second CONNECT", "malformed"])
def test_a_protocol_error_is_a_client_error(broker, observer, error):
    cid = uid("ev-err")
    c = raw(broker, 5)
    assert c.connect(cid).reason == 0
    observer.expect(cid, "presence/connected")
    if error == "second CONNECT":
        c.send(r.connect(cid, version=5))
    else:
        c.send(bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F]))  # a PUBLISH far beyond any size limit
    got = c.wait_closed(timeout=WAIT)
    assert [p.type for p in got] == [r.DISCONNECT], got
    gone = observer.expect(cid, "presence/disconnected")
    assert gone["disconnectReason"] == "CLIENT_ERROR"


def test_a_duplicate_client_id_takes_over(broker, observer):
    cid = uid("ev-dup")
    first = Paho(broker, client_id=cid)
    first.connect()
    one = observer.expect(cid, "presence/connected")
    second = Paho(broker, client_id=cid)
    second.connect()
    assert first.wait_disconnected().value == 0x8E  # Session taken over
    # Their order is not guaranteed (AWS's neither): the version numbers order them.
    events = dict([observer.next(cid), observer.next(cid)])
    two, gone = events["presence/connected"], events["presence/disconnected"]
    assert gone["disconnectReason"] == "DUPLICATE_CLIENTID"
    assert gone["sessionIdentifier"] == one["sessionIdentifier"]
    assert gone["versionNumber"] == one["versionNumber"] < two["versionNumber"]
    second.disconnect()
    first.close()
    observer.expect(cid, "presence/disconnected")


def test_delete_connection_is_api_initiated(broker, observer):
    cid = uid("ev-api")
    c = Paho(broker, client_id=cid)
    c.connect()
    observer.expect(cid, "presence/connected")
    aws.client(broker, "iot-data").delete_connection(clientId=cid)
    assert c.wait_disconnected().value == 0x98  # Administrative action
    gone = observer.expect(cid, "presence/disconnected")
    assert gone["disconnectReason"] == "API_INITIATED_DISCONNECT"
    assert gone["clientInitiatedDisconnect"] is False
    c.close()


def test_a_deactivated_certificate_is_an_auth_error_naming_the_certificate(broker, observer, pki):
    iot = aws.iot(broker)
    dev = _pki.api_device(iot, pki)
    policy = uid("ev-allow")
    iot.create_policy(policyName=policy, policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }))
    iot.attach_policy(policyName=policy, target=_pki.cert_arn(dev.id))
    cid = uid("ev-cert")
    # The non-anonymous MQTT-over-TLS listener, presenting the device certificate.
    c = Paho(broker, client_id=cid, transport="tcp")
    c.port = broker.listener_port("mqtts")
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    c.c.tls_set_context(ctx)
    c.connect()
    connected = observer.expect(cid, "presence/connected")
    assert connected["principalIdentifier"] == dev.id
    iot.update_certificate(certificateId=dev.id, newStatus="INACTIVE")
    assert c.wait_disconnected().value == 0x87  # Not authorized
    gone = observer.expect(cid, "presence/disconnected")
    assert gone["disconnectReason"] == "AUTH_ERROR"
    assert gone["principalIdentifier"] == dev.id
    c.close()


@pytest.mark.parametrize("cid_shape", ["{}+x", "{}#"])
def test_client_ids_with_wildcards_get_no_events(broker, observer, cid_shape):
    cid = cid_shape.format(uid("ev-wild"))
    c = raw(broker, 5)
    assert c.connect(cid).reason == 0
    assert c.subscribe("ev/w").reasons == [0]
    c.disconnect()
    observer.nothing_about(cid)
