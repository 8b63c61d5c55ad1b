"""Keep alive enforcement, server keep alive, client-id takeover, assigned client identifier."""

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

import mqttraw as r
from clients import Paho, props, raw, topic, uid


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_keepalive_enforced(broker, version):
    """A client silent for longer than 1.5x its keep alive is disconnected (v5: DISCONNECT 0x8D
    first, or a plain close)."""
    c = raw(broker, version)
    ack = c.connect(uid("ka"), keepalive=1)
    assert ack.reason == 0
    got = c.wait_closed(timeout=15)
    for p in got:
        assert p.type == r.DISCONNECT and p.reason == 0x8D, f"unexpected {p}"


def test_keepalive_pings_keep_connection(broker):
    c = raw(broker)
    c.connect(uid("ka-ping"), keepalive=2)
    for _ in range(6):  # 3 s of activity at a third of the keep alive
        c.ping()
        time.sleep(0.5)
    c.ping()
    c.disconnect()


def test_server_keep_alive(start_broker):
    b = start_broker(max_keepalive=10)
    c = raw(b)
    ack = c.connect(uid("ska"), keepalive=600)
    assert ack.reason == 0
    assert ack.prop(r.SERVER_KEEP_ALIVE) == 10
    c.disconnect()
    c = raw(b)
    ack = c.connect(uid("ska0"), keepalive=0)
    assert ack.prop(r.SERVER_KEEP_ALIVE) == 10
    c.disconnect()


@pytest.mark.parametrize("version", [
    pytest.param(4, id="v311"),
    pytest.param(5, id="v5", marks=pytest.mark.mosquitto_xfail("2.0.11 closes without DISCONNECT 0x8E")),
])
def test_client_id_takeover(broker, version):
    cid, t = uid("takeover"), topic()
    old = raw(broker, version)
    old.connect(cid)
    new = raw(broker, version)
    assert new.connect(cid).reason == 0
    got = old.wait_closed(timeout=10)
    if version == 5:
        assert [(p.type, p.reason) for p in got] == [(r.DISCONNECT, 0x8E)], got
    else:
        assert got == []
    # The new connection works.
    new.subscribe((t, 1))
    new.publish(t, b"still here", qos=1)
    assert new.next_publish().payload == b"still here"
    new.disconnect()


def test_takeover_keeps_persistent_session(broker):
    cid, t = uid("takeover-s"), topic()
    old = raw(broker)
    old.connect(cid, props=[(r.SESSION_EXPIRY, 300)])
    old.subscribe((t, 1))
    new = raw(broker)
    ack = new.connect(cid, clean=False, props=[(r.SESSION_EXPIRY, 300)])
    assert ack.reason == 0 and ack.session_present
    with Paho(broker) as p:
        p.connect()
        p.publish(t, b"to the new one", qos=1)
    assert new.next_publish().payload == b"to the new one"
    new.disconnect()
    old.close()


def test_assigned_client_identifier(broker):
    with Paho(broker, client_id="") as a, Paho(broker, client_id="") as b:
        ack_a, ack_b = a.connect(), b.connect()
        ida = ack_a.properties.AssignedClientIdentifier
        idb = ack_b.properties.AssignedClientIdentifier
        assert ida and idb and ida != idb
        # The assigned identifier is usable.
        t = topic()
        a.subscribe(t, 1)
        b.publish(t, b"hi", qos=1)
        assert a.get().payload == b"hi"


def test_v311_zero_length_client_id(broker):
    with Paho(broker, client_id="", version=4) as c:
        assert c.connect().rc == 0


def test_v5_connack_capabilities(broker):
    c = raw(broker)
    ack = c.connect(uid("caps"))
    assert ack.reason == 0
    # Absent means "available" for these; present must say 1 in the default (MQTT) mode.
    for p in (r.RETAIN_AVAILABLE, r.WILDCARD_SUB_AVAILABLE, r.SHARED_SUB_AVAILABLE, r.SUB_ID_AVAILABLE):
        assert ack.prop(p, 1) == 1, f"property 0x{p:02x}"
    assert ack.prop(r.MAXIMUM_QOS, 2) == 2
    c.disconnect()


def test_v5_user_properties_on_connect_accepted(broker):
    with Paho(broker, connect_properties=props(PacketTypes.CONNECT, UserProperty=[("a", "b")])) as c:
        c.connect()


def test_default_mode_keeps_specification_behaviour(broker):
    """Unlike --compat aws: QoS 2 and no keep-alive clamp."""
    c = raw(broker)
    ack = c.connect(uid("spec"), keepalive=5)
    assert ack.prop(r.MAXIMUM_QOS, 2) == 2
    assert ack.prop(r.SERVER_KEEP_ALIVE, 5) == 5
    c.disconnect()
