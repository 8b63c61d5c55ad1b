"""Will messages: published when the connection ends abnormally, not on a normal DISCONNECT;
MQTT 5 DISCONNECT 0x04, will delay interval, will on session takeover."""

import time

import pytest

import mqttraw as r
from clients import Paho, raw, topic, uid


def watcher(broker, will_topic):
    w = Paho(broker)
    w.connect()
    w.subscribe(will_topic, 2)
    return w


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_will_sent_on_abnormal_close(broker, version, qos):
    wt = topic("will")
    with watcher(broker, wt) as w:
        c = raw(broker, version)
        ack = c.connect(uid("will"), will={"topic": wt, "payload": b"gone", "qos": qos})
        assert ack.reason == 0
        c.close()  # no DISCONNECT
        m = w.get()
        assert (m.topic, m.payload, m.qos) == (wt, b"gone", qos)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_will_retained(broker, version):
    wt = topic("willret")
    c = raw(broker, version)
    c.connect(uid("willret"), will={"topic": wt, "payload": b"offline", "qos": 1, "retain": True})
    c.close()
    with Paho(broker) as w:
        w.connect()
        # Retained: a later subscriber gets it (wait for it, the will is asynchronous).
        deadline = time.monotonic() + 10
        while True:
            w.subscribe(wt, 1)
            try:
                m = w.get(timeout=0.5)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "retained will never appeared"
                w.unsubscribe(wt)
        assert (m.payload, m.retain) == (b"offline", True)
    with Paho(broker) as p:
        p.connect()
        p.publish(wt, b"", qos=1, retain=True)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_no_will_on_normal_disconnect(broker, version):
    wt = topic("nowill")
    with watcher(broker, wt) as w:
        c = raw(broker, version)
        c.connect(uid("nowill"), will={"topic": wt, "payload": b"should not", "qos": 1})
        c.disconnect()  # DISCONNECT 0x00
        # A second client with a will, closed abnormally after the first one: its will is the
        # marker. The broker handled the first DISCONNECT before this connection even began.
        c2 = raw(broker, version)
        c2.connect(uid("nowill-marker"), will={"topic": wt, "payload": b"marker", "qos": 1})
        c2.close()
        assert w.get().payload == b"marker"
        time.sleep(0.3)
        assert w.drain() == []


def test_v5_disconnect_with_will_message(broker):
    wt = topic("will04")
    with watcher(broker, wt) as w:
        c = raw(broker)
        c.connect(uid("will04"), will={"topic": wt, "payload": b"please", "qos": 1})
        c.disconnect(0x04)  # Disconnect with Will Message
        assert w.get().payload == b"please"


def test_v5_will_properties_forwarded(broker):
    wt = topic("willprops")
    with watcher(broker, wt) as w:
        c = raw(broker)
        c.connect(uid("willprops"), will={
            "topic": wt, "payload": b"{}", "qos": 1,
            "props": [(r.CONTENT_TYPE, "application/json"), (r.USER_PROPERTY, ("a", "1")),
                      (r.USER_PROPERTY, ("b", "2")), (r.RESPONSE_TOPIC, "r/t")],
        })
        c.close()
        m = w.get()
        assert m.properties.ContentType == "application/json"
        assert m.properties.UserProperty == [("a", "1"), ("b", "2")]
        assert m.properties.ResponseTopic == "r/t"


def test_v5_will_delay_not_sent_if_client_reconnects(broker):
    """Will delay 600 s, session expiry 600 s: the client comes back before the delay and the will
    is never published."""
    wt, cid = topic("willdelay"), uid("willdelay")
    with watcher(broker, wt) as w:
        c = raw(broker)
        c.connect(cid, props=[(r.SESSION_EXPIRY, 600)],
                  will={"topic": wt, "payload": b"delayed", "qos": 1, "props": [(r.WILL_DELAY, 600)]})
        c.close()
        c = raw(broker)
        assert c.connect(cid, clean=False, props=[(r.SESSION_EXPIRY, 0)]).session_present
        c.disconnect()
        m = raw(broker)
        m.connect(uid("marker"), will={"topic": wt, "payload": b"marker", "qos": 1})
        m.close()
        assert w.get().payload == b"marker"
        time.sleep(0.3)
        assert w.drain() == []


def test_v5_will_delay_elapses(broker):
    wt = topic("willdelay2")
    with watcher(broker, wt) as w:
        c = raw(broker)
        c.connect(uid("willdelay2"), props=[(r.SESSION_EXPIRY, 600)],
                  will={"topic": wt, "payload": b"late", "qos": 1, "props": [(r.WILL_DELAY, 1)]})
        c.close()
        assert w.get(timeout=15).payload == b"late"


def test_v5_will_sent_when_session_ends_before_delay(broker):
    """Will delay 600 s but session expiry 1 s: the will goes when the session ends."""
    wt = topic("willexp")
    with watcher(broker, wt) as w:
        c = raw(broker)
        c.connect(uid("willexp"), props=[(r.SESSION_EXPIRY, 1)],
                  will={"topic": wt, "payload": b"session over", "qos": 1, "props": [(r.WILL_DELAY, 600)]})
        c.close()
        assert w.get(timeout=15).payload == b"session over"


def test_v5_will_on_takeover(broker):
    """A new connection with the same client id (clean start) ends the old session: the old
    connection's will is published."""
    wt, cid = topic("willtake"), uid("willtake")
    with watcher(broker, wt) as w:
        old = raw(broker)
        old.connect(cid, will={"topic": wt, "payload": b"taken over", "qos": 1})
        new = raw(broker)
        assert new.connect(cid).reason == 0
        assert w.get().payload == b"taken over"
        old.close()
        new.disconnect()
