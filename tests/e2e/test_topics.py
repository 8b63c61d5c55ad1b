"""Topic filters: `+` and `#`, `$`-topics not matched by a leading wildcard, shared
subscriptions `$share/group/filter`."""

import collections
import queue
import time

import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

import mqttraw as r
from clients import Paho, raw, topic, uid

NO_RETAINED = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_wildcards(broker, version):
    base = topic("w")
    names = [f"{base}/a", f"{base}/a/x", f"{base}/b/x", f"{base}/b/y/x", base]
    filters = {
        f"{base}/+": {f"{base}/a"},
        f"{base}/+/x": {f"{base}/a/x", f"{base}/b/x"},
        f"{base}/#": set(names),  # `#` also matches the parent level
        f"{base}/b/#": {f"{base}/b/x", f"{base}/b/y/x"},
        f"{base}/+/+/x": {f"{base}/b/y/x"},
        f"{base}": {base},
    }
    subs = {}
    try:
        for f in filters:
            s = Paho(broker, version=version)
            s.connect()
            s.subscribe(f, 1)
            subs[f] = s
        with Paho(broker, version=version) as pub:
            pub.connect()
            for n in names:
                pub.publish(n, n, qos=1)
        for f, want in filters.items():
            got = {m.topic for m in subs[f].get_n(len(want))}
            assert got == want, f"filter {f}"
            assert subs[f].drain() == [], f"filter {f} got more than expected"
    finally:
        for s in subs.values():
            s.close()


def test_single_level_wildcard_matches_empty_level(broker):
    base = topic("empty")
    with Paho(broker) as sub, Paho(broker) as pub:
        sub.connect()
        pub.connect()
        sub.subscribe(f"{base}/+/end", 1)
        pub.publish(f"{base}//end", b"1", qos=1)
        assert sub.get().topic == f"{base}//end"


def test_leading_wildcard_does_not_match_dollar_topics(broker):
    u = uid("dollar")
    dollar = f"$e2e/{u}/x"
    ordinary = f"e2e/{u}/x"
    with Paho(broker) as hash_, Paho(broker) as plus, Paho(broker) as explicit, Paho(broker) as pub:
        for c in (hash_, plus, explicit, pub):
            c.connect()
        hash_.subscribe("#", options=NO_RETAINED)
        plus.subscribe(f"+/{u}/x", options=NO_RETAINED)
        explicit.subscribe(f"$e2e/{u}/+", 1)
        pub.publish(dollar, b"dollar", qos=1)
        pub.publish(ordinary, b"ordinary", qos=1)
        assert explicit.get().topic == dollar
        # Both messages come from one publisher on one connection: once `ordinary` is in, the
        # broker has routed `dollar` too.
        for c in (hash_, plus):
            got = [m.topic for m in c.until(ordinary) if u in m.topic]
            assert got == [], f"a leading wildcard matched {got}"


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_shared_subscription_each_message_to_one_member(broker, version):
    t = topic("shared")
    group = uid("g")
    n = 40
    members = [Paho(broker, version=version) for _ in range(3)]
    try:
        for m in members:
            m.connect()
            assert m.subscribe(f"$share/{group}/{t}", 1) == [1]
        with Paho(broker) as normal, Paho(broker) as other_group, Paho(broker) as pub:
            normal.connect()
            other_group.connect()
            normal.subscribe(t, 1)
            other_group.subscribe(f"$share/{uid('h')}/{t}", 1)
            pub.connect()
            for i in range(n):
                pub.publish(t, str(i), qos=1)
            # A plain subscriber and every other group each get every message.
            assert sorted(int(m.payload) for m in normal.get_n(n)) == list(range(n))
            assert sorted(int(m.payload) for m in other_group.get_n(n)) == list(range(n))
            # Within the group, each message goes to exactly one member.
            counts = collections.Counter()
            deadline = time.monotonic() + 10 * n
            while sum(counts.values()) < n and time.monotonic() < deadline:
                for mem in members:
                    try:
                        counts[int(mem.messages.get(timeout=0.05).payload)] += 1
                    except queue.Empty:
                        pass
            assert sorted(counts) == list(range(n))
            assert set(counts.values()) == {1}, "a message reached two members of one group"
            # Nothing more reaches the group: a last message goes to one member only.
            pub.publish(t, b"end", qos=1)
            normal.get()
            other_group.get()
    finally:
        for m in members:
            m.close()


def test_shared_subscription_with_wildcard_filter(broker):
    base = topic("sharedw")
    group = uid("g")
    with Paho(broker) as a, Paho(broker) as pub:
        a.connect()
        a.subscribe(f"$share/{group}/{base}/+", 1)
        pub.connect()
        pub.publish(f"{base}/x", b"1", qos=1)
        m = a.get()
        assert (m.topic, m.payload) == (f"{base}/x", b"1")


def test_shared_subscription_unsubscribe(broker):
    t, group = topic("sharedu"), uid("g")
    with Paho(broker) as a, Paho(broker) as b, Paho(broker) as pub:
        a.connect()
        b.connect()
        a.subscribe(f"$share/{group}/{t}", 1)
        b.subscribe(f"$share/{group}/{t}", 1)
        a.unsubscribe(f"$share/{group}/{t}")
        pub.connect()
        for i in range(10):
            pub.publish(t, str(i), qos=1)
        assert sorted(int(m.payload) for m in b.get_n(10)) == list(range(10))
        assert a.drain() == []


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("bad", ["a/#/b", "a/b#", "a+/b", "#/a", ""])
def test_invalid_filters_rejected(broker, version, bad):
    """A SUBACK failure code, or (allowed for a malformed filter) DISCONNECT / close."""
    c = raw(broker, version)
    c.connect(uid("badfilter"))
    f = f"{topic()}/{bad}" if bad else ""
    c.send(r.subscribe(1, [(f, 1)], version=version))
    try:
        p = c.expect(lambda q: q.type in (r.SUBACK, r.DISCONNECT))
    except r.Closed:
        return
    if p.type == r.SUBACK:
        assert p.reasons[0] >= 0x80, p
    else:
        assert p.reason >= 0x80, p
    c.close()
