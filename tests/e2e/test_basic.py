"""Connect, publish and subscribe at QoS 0, 1 and 2 with paho-mqtt (3.1.1 and 5) and the
mosquitto clients."""

import pytest

from clients import MosquittoSub, Paho, mosquitto_pub, topic, uid


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_subscribe(broker, version, qos):
    t = topic()
    with Paho(broker, version=version) as sub, Paho(broker, version=version) as pub:
        sub.connect()
        pub.connect()
        assert sub.subscribe(t, qos) == [qos]
        payloads = [f"m{i}-{qos}".encode() for i in range(5)]
        for p in payloads:
            pub.publish(t, p, qos=qos)
        got = sub.get_n(len(payloads))
        assert [m.payload for m in got] == payloads  # ordered, per publisher and topic
        assert {m.qos for m in got} == {qos}
        assert {m.topic for m in got} == {t}
        assert not any(m.retain for m in got)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("pub_qos,sub_qos", [(2, 1), (2, 0), (1, 0), (0, 2), (1, 2)])
def test_delivered_at_minimum_of_publish_and_subscription_qos(broker, version, pub_qos, sub_qos):
    t = topic()
    with Paho(broker, version=version) as sub, Paho(broker, version=version) as pub:
        sub.connect()
        pub.connect()
        sub.subscribe(t, sub_qos)
        pub.publish(t, b"x", qos=pub_qos)
        assert sub.get().qos == min(pub_qos, sub_qos)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_cross_version_delivery(broker, version):
    """A 3.1.1 publisher reaches a 5 subscriber and the other way round."""
    t = topic()
    other = 9 - version
    with Paho(broker, version=version) as sub, Paho(broker, version=other) as pub:
        sub.connect()
        pub.connect()
        sub.subscribe(t, 1)
        pub.publish(t, b"across", qos=1)
        m = sub.get()
        assert (m.topic, m.payload, m.qos) == (t, b"across", 1)


def test_unsubscribe_stops_delivery(broker):
    t, marker = topic("a"), topic("marker")
    with Paho(broker) as sub, Paho(broker) as pub:
        sub.connect()
        pub.connect()
        sub.subscribe(t, 1)
        sub.subscribe(marker, 1)
        pub.publish(t, b"before", qos=1)
        assert sub.get().payload == b"before"
        assert sub.unsubscribe(t) == [0]
        pub.publish(t, b"after", qos=1)
        pub.publish(marker, b"m", qos=1)
        assert sub.until(marker) == []


def test_large_payload(broker):
    t = topic()
    payload = bytes(range(256)) * 400  # 100 KiB, under AWS's 128 KB limit
    with Paho(broker) as sub, Paho(broker) as pub:
        sub.connect()
        pub.connect()
        sub.subscribe(t, 1)
        pub.publish(t, payload, qos=1)
        assert sub.get().payload == payload


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_clients(broker, version, qos):
    t = topic()
    with MosquittoSub(broker, t, version=version, qos=qos) as sub:
        sub.ready()
        r = mosquitto_pub(broker, t, f"hello {qos}", version=version, qos=qos)
        assert r.returncode == 0, r.stderr
        assert sub.lines(1) == [f"{t} hello {qos}"]


def test_mosquitto_pub_to_paho_and_back(broker):
    t1, t2 = topic("to-paho"), topic("to-mosquitto")
    with Paho(broker, version=4) as p, MosquittoSub(broker, t2) as msub:
        p.connect()
        p.subscribe(t1, 1)
        msub.ready()
        r = mosquitto_pub(broker, t1, "from mosquitto_pub")
        assert r.returncode == 0, r.stderr
        assert p.get().payload == b"from mosquitto_pub"
        p.publish(t2, b"from paho", qos=1)
        assert msub.lines(1) == [f"{t2} from paho"]


def test_many_clients_one_topic(broker):
    """Fan-out to 20 subscribers of mixed versions."""
    t = topic()
    subs = [Paho(broker, version=4 + i % 2, client_id=uid(f"fan{i}")) for i in range(20)]
    try:
        for s in subs:
            s.connect()
            s.subscribe(t, 1)
        with Paho(broker) as pub:
            pub.connect()
            pub.publish(t, b"all", qos=1)
        for s in subs:
            assert s.get().payload == b"all"
    finally:
        for s in subs:
            s.close()
