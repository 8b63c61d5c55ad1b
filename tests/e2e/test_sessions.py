"""Clean and persistent sessions: 3.1.1 clean session, MQTT 5 clean start and session expiry,
the session-present flag, offline QoS 1/2 queueing, redelivery of inflight messages on resume,
exactly-once for inbound QoS 2 across a reconnect."""

import time

import pytest

import mqttraw as r
from clients import Paho, raw, topic, uid


def test_v311_persistent_session_queues_offline_messages(broker):
    cid, t = uid("persist311"), topic()
    s = Paho(broker, client_id=cid, version=4, clean=False)
    ack = s.connect()
    assert not ack.session_present
    s.subscribe(t, 2)
    s.disconnect()

    with Paho(broker) as pub:
        pub.connect()
        for i in range(3):
            pub.publish(t, f"q1-{i}", qos=1)
        for i in range(3):
            pub.publish(t, f"q2-{i}", qos=2)

    s = Paho(broker, client_id=cid, version=4, clean=False)
    try:
        ack = s.connect()
        assert ack.session_present
        got = s.get_n(6)
        assert [m.payload.decode() for m in got] == [f"q1-{i}" for i in range(3)] + [f"q2-{i}" for i in range(3)]
        assert [m.qos for m in got] == [1, 1, 1, 2, 2, 2]
        # The subscription is still there: live messages flow too.
        with Paho(broker) as pub:
            pub.connect()
            pub.publish(t, b"live", qos=1)
        assert s.get().payload == b"live"
    finally:
        s.close()


def test_v311_clean_session_discards_state(broker):
    cid, t = uid("clean311"), topic()
    s = Paho(broker, client_id=cid, version=4, clean=False)
    s.connect()
    s.subscribe(t, 1)
    s.disconnect()

    with Paho(broker) as pub:
        pub.connect()
        pub.publish(t, b"queued", qos=1)

    # A clean session throws the persistent one away: no session present, no queued message.
    c = raw(broker, 4)
    assert not c.connect(cid, clean=True).session_present
    marker = topic("marker")
    c.subscribe((marker, 1))
    with Paho(broker) as pub:
        pub.connect()
        pub.publish(t, b"after", qos=1)
        pub.publish(marker, b"m", qos=1)
    assert c.next_publish().topic == marker
    c.disconnect()  # waits until the server has closed the connection
    # ...and a clean session leaves nothing behind.
    c = raw(broker, 4)
    assert not c.connect(cid, clean=False).session_present
    c.disconnect()


def test_v311_takeover_of_clean_session_does_not_reuse_it(broker):
    """[MQTT-3.1.2-6]: state of a CleanSession=1 session MUST NOT be reused in any subsequent
    session, even when the next connection takes the client id over while it is still open."""
    cid, t = uid("clean-takeover"), topic()
    old = raw(broker, 4)
    old.connect(cid, clean=True)
    old.subscribe((t, 1))
    new = raw(broker, 4)
    ack = new.connect(cid, clean=False)
    assert ack.reason == 0
    assert not ack.session_present, "the clean session was resumed"
    marker = topic("marker")
    new.subscribe((marker, 1))
    with Paho(broker) as pub:
        pub.connect()
        pub.publish(t, b"to the old subscription", qos=1)
        pub.publish(marker, b"m", qos=1)
    p = new.next_publish()
    assert p.topic == marker, f"the old subscription was inherited: {p}"
    old.close()
    new.disconnect()


@pytest.mark.parametrize("qos", [1, 2])
def test_v5_session_expiry_keeps_session(broker, qos):
    cid, t = uid("persist5"), topic()
    s = Paho(broker, client_id=cid, clean=True, session_expiry=300)
    assert not s.connect().session_present
    s.subscribe(t, qos)
    s.disconnect()

    with Paho(broker) as pub:
        pub.connect()
        for i in range(5):
            pub.publish(t, f"m{i}", qos=qos)

    with Paho(broker, client_id=cid, clean=False, session_expiry=300) as s:
        assert s.connect().session_present
        got = s.get_n(5)
        assert [m.payload.decode() for m in got] == [f"m{i}" for i in range(5)]
        assert {m.qos for m in got} == {qos}


def test_v5_clean_start_discards_session(broker):
    cid, t = uid("cleanstart"), topic()
    s = Paho(broker, client_id=cid, session_expiry=300)
    s.connect()
    s.subscribe(t, 1)
    s.disconnect()
    with Paho(broker) as pub:
        pub.connect()
        pub.publish(t, b"queued", qos=1)
    with Paho(broker, client_id=cid, clean=True, session_expiry=300) as s:
        assert not s.connect().session_present
        marker = topic("marker")
        s.subscribe(marker, 1)
        with Paho(broker) as pub:
            pub.connect()
            pub.publish(marker, b"m", qos=1)
        assert s.until(marker) == []


def test_v5_session_expiry_zero_ends_session_at_disconnect(broker):
    cid, t = uid("exp0"), topic()
    c = raw(broker)
    c.connect(cid)  # Session Expiry absent: 0
    c.subscribe((t, 1))
    c.disconnect()
    c = raw(broker)
    assert not c.connect(cid, clean=False, props=[(r.SESSION_EXPIRY, 300)]).session_present
    c.disconnect()


def test_v5_session_expires(broker):
    """A session with a 1 s expiry is gone a few seconds after the client left (the wait is only
    a generous margin, not a timing assertion)."""
    cid, t = uid("exp1"), topic()
    s = Paho(broker, client_id=cid, session_expiry=1)
    s.connect()
    s.subscribe(t, 1)
    s.disconnect()
    with Paho(broker) as pub:
        pub.connect()
        pub.publish(t, b"to expire", qos=1)
    time.sleep(3)
    with Paho(broker, client_id=cid, clean=False, session_expiry=300) as s:
        assert not s.connect().session_present
        marker = topic("marker")
        s.subscribe(marker, 1)
        with Paho(broker) as pub:
            pub.connect()
            pub.publish(marker, b"m", qos=1)
        assert s.until(marker) == []


def test_v5_disconnect_can_set_session_expiry(broker):
    """A client connecting with expiry > 0 may change it at DISCONNECT; 0 ends the session."""
    cid = uid("discexp")
    c = raw(broker)
    c.connect(cid, props=[(r.SESSION_EXPIRY, 300)])
    c.subscribe((topic(), 1))
    c.disconnect(0, props=[(r.SESSION_EXPIRY, 0)])
    c = raw(broker)
    ack = c.connect(cid, clean=False, props=[(r.SESSION_EXPIRY, 300)])
    assert ack.reason == 0 and not ack.session_present
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_unacknowledged_qos1_redelivered_on_resume_with_dup(broker, version):
    cid, t = uid("redeliver"), topic()
    props = [(r.SESSION_EXPIRY, 300)] if version == 5 else None
    sub = raw(broker, version)
    sub.connect(cid, clean=False, props=props)
    sub.subscribe((t, 1))
    with Paho(broker) as pub:
        pub.connect()
        pub.publish(t, b"unacked", qos=1)
    first = sub.next_publish(auto_ack=False)
    assert (first.payload, first.qos) == (b"unacked", 1)
    sub.close()  # never PUBACKed

    sub = raw(broker, version)
    try:
        ack = sub.connect(cid, clean=False, props=props)
        assert ack.session_present
        again = sub.next_publish()
        assert (again.topic, again.payload, again.qos) == (t, b"unacked", 1)
        assert again.dup, "a redelivered PUBLISH must carry DUP=1"
    finally:
        sub.disconnect()


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_qos2_pubrel_resent_on_resume(broker, version):
    """Outbound QoS 2: the client PUBRECs and vanishes; on resume the server resends PUBREL (not
    the PUBLISH) and the flow completes."""
    cid, t = uid("pubrel"), topic()
    props = [(r.SESSION_EXPIRY, 300)] if version == 5 else None
    sub = raw(broker, version)
    sub.connect(cid, clean=False, props=props)
    sub.subscribe((t, 2))
    with Paho(broker) as pub:
        pub.connect()
        pub.publish(t, b"exactly once", qos=2)
    p = sub.next_publish(auto_ack=False)
    sub.send(r.ack(r.PUBREC, p.pid, version=version))
    sub.expect(lambda q: q.type == r.PUBREL and q.pid == p.pid)
    sub.close()  # no PUBCOMP

    sub = raw(broker, version)
    try:
        assert sub.connect(cid, clean=False, props=props).session_present
        rel = sub.expect(lambda q: q.type in (r.PUBREL, r.PUBLISH))
        assert rel.type == r.PUBREL and rel.pid == p.pid, f"expected PUBREL {p.pid}, got {rel}"
        sub.send(r.ack(r.PUBCOMP, p.pid, version=version))
        sub.ping()
        assert not [q for q in sub.pending if q.type == r.PUBLISH]
    finally:
        sub.disconnect()


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_inbound_qos2_exactly_once_across_reconnect(broker, version):
    """The publisher sends a QoS 2 PUBLISH, gets PUBREC, reconnects, resends it with DUP, then
    PUBREL: subscribers get the message exactly once."""
    cid, t, marker = uid("in-qos2"), topic(), topic("marker")
    props = [(r.SESSION_EXPIRY, 300)] if version == 5 else None
    with Paho(broker) as sub:
        sub.connect()
        sub.subscribe(t, 2)
        sub.subscribe(marker, 2)  # paho hands QoS 2 messages over at PUBREL: keep the marker in step

        pub = raw(broker, version)
        pub.connect(cid, clean=False, props=props)
        pub.send(r.publish(t, b"once", qos=2, pid=77, version=version))
        pub.expect(lambda q: q.type == r.PUBREC and q.pid == 77)
        pub.close()

        pub = raw(broker, version)
        assert pub.connect(cid, clean=False, props=props).session_present
        pub.send(r.publish(t, b"once", qos=2, pid=77, dup=True, version=version))
        pub.expect(lambda q: q.type == r.PUBREC and q.pid == 77)
        pub.send(r.ack(r.PUBREL, 77, version=version))
        comp = pub.expect(lambda q: q.type == r.PUBCOMP and q.pid == 77)
        assert comp.reason == 0
        pub.publish(marker, b"m", qos=2)
        pub.disconnect()
        assert [m.payload for m in sub.until(marker)] == [b"once"]


def test_v5_pubrel_for_unknown_packet_id(broker):
    c = raw(broker)
    c.connect(uid("pubrel-unknown"))
    c.send(r.ack(r.PUBREL, 4242))
    comp = c.expect(r.PUBCOMP)
    # 0x92 (Packet Identifier not found) is the precise answer; Success is allowed.
    assert comp.pid == 4242 and comp.reason in (0x00, 0x92)
    c.disconnect()


def test_v311_empty_client_id_needs_clean_session(broker):
    c = raw(broker, 4)
    ack = c.connect("", clean=False)
    assert ack.reason == 0x02  # identifier rejected
    c.close()
    c = raw(broker, 4)
    assert c.connect("", clean=True).reason == 0
    c.disconnect()


@pytest.mark.ferrocore_only
def test_offline_queue_is_bounded(start_broker):
    """--max-queued-messages 10: an offline session keeps at most 10 messages (new ones beyond the
    limit are refused), and the first ten arrive on resume."""
    b = start_broker(args=["--max-queued-messages", "10"])
    cid, t = uid("bounded"), topic()
    s = Paho(b, client_id=cid, session_expiry=300)
    s.connect()
    s.subscribe(t, 1)
    s.disconnect()
    with Paho(b) as pub:
        pub.connect()
        for i in range(30):
            pub.publish(t, f"m{i}", qos=1)
    with Paho(b, client_id=cid, clean=False, session_expiry=300) as s:
        assert s.connect().session_present
        got = [m.payload.decode() for m in s.get_n(10)]
        assert got == [f"m{i}" for i in range(10)]
        marker = topic("marker")
        s.subscribe(marker, 1)
        with Paho(b) as pub:
            pub.connect()
            pub.publish(marker, b"m", qos=1)
        assert s.until(marker) == []
