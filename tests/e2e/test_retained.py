"""Retained messages: set, replace, clear by empty payload, delivery on subscribe per retain
handling, retain-as-published, wildcard subscriptions."""

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

import mqttraw as r
from clients import Paho, props, raw, topic, uid


def publish_retained(broker, t, payload, qos=1, properties=None):
    with Paho(broker) as p:
        p.connect()
        p.publish(t, payload, qos=qos, retain=True, properties=properties)


def retained_on_subscribe(broker, filt, version=5, qos=1, options=None):
    """What a fresh subscriber to `filt` gets at subscribe time (marker-terminated)."""
    marker = topic("marker")
    with Paho(broker, version=version) as s:
        s.connect()
        # QoS 2 like the messages it follows: paho hands QoS 2 over at PUBREL.
        s.subscribe(marker, 2)
        if options is not None:
            s.subscribe(filt, options=options)
        else:
            s.subscribe(filt, qos)
        with Paho(broker) as p:
            p.connect()
            p.publish(marker, b"m", qos=2)
        return s.until(marker)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_retained_set_replace_clear(broker, version):
    t = topic("ret")
    publish_retained(broker, t, b"first")
    got = retained_on_subscribe(broker, t, version)
    assert [(m.payload, m.retain) for m in got] == [(b"first", True)]

    publish_retained(broker, t, b"second")
    got = retained_on_subscribe(broker, t, version)
    assert [(m.payload, m.retain) for m in got] == [(b"second", True)]

    publish_retained(broker, t, b"")
    assert retained_on_subscribe(broker, t, version) == []


def test_retained_qos_is_minimum_of_stored_and_subscription(broker):
    t1, t2 = topic("q1"), topic("q2")
    publish_retained(broker, t1, b"x", qos=1)
    publish_retained(broker, t2, b"y", qos=2)
    assert [m.qos for m in retained_on_subscribe(broker, t1, qos=0)] == [0]
    assert [m.qos for m in retained_on_subscribe(broker, t1, qos=2)] == [1]
    assert [m.qos for m in retained_on_subscribe(broker, t2, qos=2)] == [2]


def test_retained_qos0(broker):
    t = topic("q0")
    publish_retained(broker, t, b"zero", qos=0)
    # QoS 0 publish is fire-and-forget: make sure the broker has it before subscribing.
    with Paho(broker) as p:
        p.connect()
        p.publish(topic("sync"), b"", qos=1)
    assert [m.payload for m in retained_on_subscribe(broker, t)] == [b"zero"]


def test_retained_on_wildcard_subscription(broker):
    base = topic("retw")
    for leaf in ("a", "b", "c/d"):
        publish_retained(broker, f"{base}/{leaf}", leaf.encode())
    got = retained_on_subscribe(broker, f"{base}/#")
    assert sorted(m.topic for m in got) == [f"{base}/a", f"{base}/b", f"{base}/c/d"]
    got = retained_on_subscribe(broker, f"{base}/+")
    assert sorted(m.topic for m in got) == [f"{base}/a", f"{base}/b"]


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_live_message_to_existing_subscriber_has_retain_flag_cleared(broker, version):
    t = topic("live")
    with Paho(broker, version=version) as s:
        s.connect()
        s.subscribe(t, 1)
        publish_retained(broker, t, b"live")
        m = s.get()
        assert (m.payload, m.retain) == (b"live", False)
    publish_retained(broker, t, b"")


def test_retain_as_published(broker):
    t = topic("rap")
    with Paho(broker) as rap, Paho(broker) as plain:
        rap.connect()
        plain.connect()
        rap.subscribe(t, options=SubscribeOptions(qos=1, retainAsPublished=True))
        plain.subscribe(t, options=SubscribeOptions(qos=1, retainAsPublished=False))
        publish_retained(broker, t, b"r")
        with Paho(broker) as p:
            p.connect()
            p.publish(t, b"not retained", qos=1)
        assert [(m.payload, m.retain) for m in rap.get_n(2)] == [(b"r", True), (b"not retained", False)]
        assert [(m.payload, m.retain) for m in plain.get_n(2)] == [(b"r", False), (b"not retained", False)]


@pytest.mark.parametrize("handling,first,again", [(0, 1, 1), (1, 1, 0), (2, 0, 0)])
def test_retain_handling(broker, handling, first, again):
    """0: send on every subscribe; 1: only if the subscription is new; 2: never."""
    t = topic("rh")
    publish_retained(broker, t, b"kept")
    opts = SubscribeOptions(qos=1, retainHandling=handling)
    marker = topic("marker")
    with Paho(broker) as s, Paho(broker) as p:
        s.connect()
        p.connect()
        s.subscribe(marker, 1)
        s.subscribe(t, options=opts)
        p.publish(marker, b"1", qos=1)
        assert len(s.until(marker)) == first
        s.subscribe(t, options=opts)  # the same subscription again
        p.publish(marker, b"2", qos=1)
        assert len(s.until(marker)) == again


def test_retained_message_keeps_properties(broker):
    t = topic("retprops")
    up = [("k1", "v1"), ("k2", "v2")]
    publish_retained(
        broker, t, b"{}",
        properties=props(PacketTypes.PUBLISH, UserProperty=up, ContentType="application/json",
                         ResponseTopic="reply/here", CorrelationData=b"\x01\x02"),
    )
    (m,) = retained_on_subscribe(broker, t)
    assert m.properties.UserProperty == up
    assert m.properties.ContentType == "application/json"
    assert m.properties.ResponseTopic == "reply/here"
    assert m.properties.CorrelationData == b"\x01\x02"


def test_retained_to_v311_and_raw_v5(broker):
    """The raw view: RETAIN=1 on the PUBLISH sent at subscribe time."""
    t = topic("rawret")
    publish_retained(broker, t, b"raw")
    for version in (4, 5):
        c = raw(broker, version)
        c.connect(uid("rawret"))
        ack = c.subscribe((t, 1))
        assert ack.reasons == [1]
        p = c.next_publish()
        assert (p.topic, p.payload, p.retain, p.qos) == (t, b"raw", True, 1)
        c.disconnect()


def test_empty_retained_publish_is_delivered_to_current_subscribers(broker):
    t = topic("clear")
    publish_retained(broker, t, b"x")
    with Paho(broker) as s:
        s.connect()
        s.subscribe(t, options=SubscribeOptions(qos=1, retainHandling=2))
        publish_retained(broker, t, b"")
        m = s.get()
        assert m.payload == b""
