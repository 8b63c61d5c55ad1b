"""`--compat aws`: AWS IoT Core's departures from the MQTT specification (DESIGN.md): maximum
QoS 1, no retained messages on wildcard subscriptions, keep alive clamped to 30-1200 s, at most
8 topic aliases, and AWS per-connection quotas."""

import pytest

import mqttraw as r
from clients import Paho, raw, topic, uid

pytestmark = pytest.mark.ferrocore_only


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    from brokers import make_broker

    b = make_broker(tmp_path_factory.mktemp("aws"), compat_aws=True)
    b.start()
    yield b
    b.stop()


def test_connack_maximum_qos_1(aws):
    c = raw(aws)
    ack = c.connect(uid("aws-qos"))
    assert ack.reason == 0
    assert ack.prop(r.MAXIMUM_QOS) == 1
    c.disconnect()


def test_qos2_subscription_granted_qos1(aws):
    c = raw(aws)
    c.connect(uid("aws-sub2"))
    ack = c.subscribe((topic(), 2))
    assert ack.reasons[0] in (0x01, 0x9B) or ack.reasons[0] >= 0x80
    assert ack.reasons[0] != 0x02
    c.disconnect()


def test_v5_qos2_publish_disconnects_with_0x9b(aws):
    c = raw(aws)
    c.connect(uid("aws-pub2"))
    c.send(r.publish(topic(), b"x", qos=2, pid=1))
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(r.DISCONNECT, 0x9B)], got  # QoS not supported


def test_qos1_works(aws):
    t = topic()
    with Paho(aws) as s, Paho(aws, version=4) as p:
        s.connect()
        p.connect()
        s.subscribe(t, 1)
        p.publish(t, b"aws", qos=1)
        m = s.get()
        assert (m.payload, m.qos) == (b"aws", 1)


def test_retained_not_sent_to_wildcard_subscriptions(aws):
    base = topic("awsret")
    with Paho(aws) as p:
        p.connect()
        p.publish(f"{base}/a", b"kept", qos=1, retain=True)
        p.publish(f"{base}/b", b"kept", qos=1, retain=True)
    marker = topic("marker")
    for version in (4, 5):
        with Paho(aws, version=version) as s, Paho(aws) as p:
            s.connect()
            p.connect()
            s.subscribe(marker, 1)
            s.subscribe(f"{base}/#", 1)
            s.subscribe(f"{base}/+", 1)
            p.publish(marker, b"m", qos=1)
            assert s.until(marker) == [], "retained message on a wildcard subscription"
            # An exact filter still gets it.
            s.subscribe(f"{base}/a", 1)
            m = s.get()
            assert (m.topic, m.payload, m.retain) == (f"{base}/a", b"kept", True)


def test_retained_not_sent_to_shared_subscriptions(aws):
    t = topic("awsshared")
    with Paho(aws) as p:
        p.connect()
        p.publish(t, b"kept", qos=1, retain=True)
    marker = topic("marker")
    with Paho(aws) as s, Paho(aws) as p:
        s.connect()
        p.connect()
        s.subscribe(marker, 1)
        s.subscribe(f"$share/{uid('g')}/{t}", 1)
        p.publish(marker, b"m", qos=1)
        assert s.until(marker) == []


@pytest.mark.parametrize("asked,clamped", [(5, 30), (29, 30), (0, 1200), (1201, 1200), (65535, 1200)])
def test_keepalive_clamped(aws, asked, clamped):
    c = raw(aws)
    ack = c.connect(uid("aws-ka"), keepalive=asked)
    assert ack.reason == 0
    assert ack.prop(r.SERVER_KEEP_ALIVE) == clamped
    c.disconnect()


@pytest.mark.parametrize("asked", [30, 60, 1200])
def test_keepalive_in_range_kept(aws, asked):
    c = raw(aws)
    ack = c.connect(uid("aws-ka-ok"), keepalive=asked)
    assert ack.prop(r.SERVER_KEEP_ALIVE, asked) == asked
    c.disconnect()


def test_topic_alias_maximum_8(aws):
    c = raw(aws)
    ack = c.connect(uid("aws-alias"))
    assert ack.prop(r.TOPIC_ALIAS_MAXIMUM, 0) <= 8
    c.disconnect()


def test_aws_subscription_quotas(aws):
    """At most 8 filters per SUBSCRIBE and 50 subscriptions per connection: 0x97 beyond."""
    c = raw(aws)
    c.connect(uid("aws-quota"))
    base = topic("quota")
    ack = c.subscribe(*[f"{base}/{i}" for i in range(9)])
    assert ack.reasons == [0] * 8 + [0x97]
    for start in range(8, 50, 7):
        ack = c.subscribe(*[f"{base}/{i}" for i in range(start, min(start + 7, 50))])
        assert set(ack.reasons) == {0}
    assert c.subscribe(f"{base}/50").reasons == [0x97]
    c.disconnect()


def test_aws_connect_rate_per_client_id(aws):
    """A second CONNECT for the same client id within a second is refused with 0x9F."""
    cid = uid("aws-rate")
    first = raw(aws)
    assert first.connect(cid).reason == 0
    second = raw(aws)
    assert second.connect(cid).reason == 0x9F
    first.disconnect()
