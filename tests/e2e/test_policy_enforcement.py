"""IoT policies enforced by the real binary: devices whose certificates carry least-privilege
policies (made with boto3: create_policy + attach_policy, with ${iot:Connection.Thing.ThingName}
and ${iot:ClientId}) do exactly what they are allowed over MQTT/TLS (paho v5 and 3.1.1, the
mosquitto clients) and nothing else; anonymous WebSocket clients get their listener's
anonymous_policy; TestAuthorization agrees with the broker; policy changes (a new default
version, a detach, a thing group's policy) reach open connections; `--compat aws` closes a 3.1.1
connection on a denied PUBLISH.

Negative checks never sleep: a denied message is followed by an allowed marker on the same
connection, and whoever would have received the first must get the marker first."""

from __future__ import annotations

import json
import queue
import ssl
import subprocess
import threading

import pytest

import aws
from clients import WAIT, MosquittoSub, Paho, rc_value, uid
from pki import ACCOUNT, REGION, Device, api_device, cert_arn

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
NOT_AUTHORIZED = 0x87
THING = "${iot:Connection.Thing.ThingName}"
CLIENT = "${iot:ClientId}"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], *resources: str) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": list(resources)}


def deny(action: str | list[str], *resources: str) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": list(resources)}


def least_privilege() -> str:
    """A thing may connect as itself, publish under e2e/<thing>/out/ (not .../forbidden, and
    retain only under .../out/keep/), subscribe to and receive e2e/<thing>/in/..."""
    return doc(
        allow("iot:Connect", f"{ARN}:client/{THING}"),
        allow("iot:Publish", f"{ARN}:topic/e2e/{THING}/out/*"),
        allow("iot:RetainPublish", f"{ARN}:topic/e2e/{THING}/out/keep/*"),
        deny("iot:Publish", f"{ARN}:topic/e2e/{THING}/out/forbidden"),
        allow("iot:Subscribe", f"{ARN}:topicfilter/e2e/{THING}/in/*"),
        allow("iot:Receive", f"{ARN}:topic/e2e/{THING}/in/*"),
    )


class Fleet:
    """A thing with a certificate attached and a policy attached to the certificate."""

    def __init__(self, broker, pki, document: str):
        self.iot = aws.iot(broker)
        self.thing = uid("thing")
        self.iot.create_thing(thingName=self.thing)
        self.dev: Device = api_device(self.iot, pki)
        self.cert = cert_arn(self.dev.id)
        self.iot.attach_thing_principal(thingName=self.thing, principal=self.cert)
        self.policy = uid("pol")
        self.iot.create_policy(policyName=self.policy, policyDocument=document)
        self.iot.attach_policy(policyName=self.policy, target=self.cert)


def device(broker, dev: Device, client_id: str, version: int = 5) -> Paho:
    """A paho client presenting `dev`'s certificate on the (non-anonymous) mqtts listener."""
    p = Paho(broker, client_id=client_id, version=version, transport="tcp")
    p.port = broker.listener_port("mqtts")
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    p.c.tls_set_context(ctx)
    return track_acks(p)


def track_acks(p: Paho) -> Paho:
    """Records the reason code of every PUBACK (paho's on_publish) by message id."""
    acks: dict[int, queue.Queue] = {}
    lock = threading.Lock()

    def q(mid: int) -> queue.Queue:
        with lock:
            return acks.setdefault(mid, queue.Queue())

    def on_publish(client, userdata, mid, reason_code, properties):
        q(mid).put(rc_value(reason_code))

    p.c.on_publish = on_publish
    p.ack_of = lambda mid: q(mid).get(timeout=WAIT)  # type: ignore[attr-defined]
    return p


def publish_rc(p: Paho, topic: str, payload: bytes = b"x", qos: int = 1, retain: bool = False) -> int:
    """Publishes at QoS 1 and returns the PUBACK's reason code (0 on 3.1.1, always)."""
    info = p.publish(topic, payload, qos=qos, retain=retain, wait=False)
    return p.ack_of(info.mid)  # type: ignore[attr-defined]


def observer(broker, topic_filter: str) -> Paho:
    """An allow-all client on the anonymous dev listener, subscribed to `topic_filter`."""
    o = Paho(broker, client_id=uid("observer"), transport="tcp")
    o.connect()
    assert o.subscribe(topic_filter, qos=1) == [1]
    return o


def topics(msgs) -> list[str]:
    return [m.topic for m in msgs]


# ---------------------------------------------------------------------------------------------
# least privilege over MQTT/TLS


def test_a_device_does_what_its_policy_allows_and_nothing_else_v5(broker, pki):
    f = Fleet(broker, pki, least_privilege())
    t = f.thing
    with observer(broker, f"e2e/{t}/#") as watch:
        # iot:Connect only as the thing (the thing variables resolve only then).
        with device(broker, f.dev, uid("someone-else")) as other:
            assert other.connect(expect_success=False).rc == NOT_AUTHORIZED
        with device(broker, f.dev, t) as d:
            d.connect()
            assert publish_rc(d, f"e2e/{t}/out/temp", b"21") == 0
            assert publish_rc(d, f"e2e/{t}/in/x") == NOT_AUTHORIZED  # not covered
            assert publish_rc(d, f"e2e/{t}/out/forbidden") == NOT_AUTHORIZED  # explicit deny
            assert publish_rc(d, f"e2e/{t}/out/temp", retain=True) == NOT_AUTHORIZED  # RetainPublish
            assert publish_rc(d, f"e2e/{t}/out/keep/last", b"kept", retain=True) == 0
            d.publish(f"e2e/{t}/in/qos0", b"dropped", qos=0)  # denied, nothing to say
            assert publish_rc(d, f"e2e/{t}/out/marker") == 0
            got = watch.until(f"e2e/{t}/out/marker")
            assert topics(got) == [f"e2e/{t}/out/temp", f"e2e/{t}/out/keep/last"]

            assert d.subscribe(f"e2e/{t}/in/#", qos=1) == [1]
            assert d.subscribe(f"e2e/{t}/out/#", qos=1) == [NOT_AUTHORIZED]
            assert d.subscribe("#", qos=1) == [NOT_AUTHORIZED]
            watch.publish(f"e2e/{t}/in/cmd", b"on", qos=1)
            msg = d.get()
            assert (msg.topic, msg.payload) == (f"e2e/{t}/in/cmd", b"on")
            # Still connected after all those denials.
            assert publish_rc(d, f"e2e/{t}/out/alive") == 0


def test_a_device_on_3_1_1_is_acknowledged_and_dropped_and_gets_suback_0x80(broker, pki):
    f = Fleet(broker, pki, least_privilege())
    t = f.thing
    with observer(broker, f"e2e/{t}/#") as watch, device(broker, f.dev, t, version=4) as d:
        d.connect()
        assert publish_rc(d, f"e2e/{t}/in/x") == 0  # acknowledged ...
        assert publish_rc(d, f"e2e/{t}/out/marker") == 0
        assert watch.until(f"e2e/{t}/out/marker") == []  # ... and dropped
        assert d.subscribe(f"e2e/{t}/in/#", qos=1) == [1]
        assert d.subscribe(f"e2e/{t}/out/#", qos=1) == [0x80]
        watch.publish(f"e2e/{t}/in/cmd", b"on", qos=1)
        assert d.get().topic == f"e2e/{t}/in/cmd"


def mosquitto(tool: str, broker, dev: Device, client_id: str, version: str = "mqttv5") -> list[str]:
    return [tool, "-h", broker.host, "-p", str(broker.listener_port("mqtts")), "-V", version,
            "--cafile", str(broker.ca), "--cert", str(dev.cert), "--key", str(dev.key),
            "-i", client_id]


def test_mosquitto_clients_with_a_least_privilege_certificate(broker, pki):
    f = Fleet(broker, pki, least_privilege())
    t = f.thing

    def pub(topic: str, version: str, client_id: str = t) -> subprocess.CompletedProcess:
        return subprocess.run(
            mosquitto("mosquitto_pub", broker, f.dev, client_id, version) + ["-t", topic, "-m", topic, "-q", "1"],
            capture_output=True, text=True, timeout=WAIT * 3,
        )

    with observer(broker, f"e2e/{t}/#") as watch:
        for version in ("mqttv5", "mqttv311"):
            assert pub(f"e2e/{t}/out/{version}", version).returncode == 0
            pub(f"e2e/{t}/in/{version}", version)  # denied: 0x87 on v5, dropped on 3.1.1
            assert pub(f"e2e/{t}/out/{version}-marker", version).returncode == 0
            assert topics(watch.until(f"e2e/{t}/out/{version}-marker")) == [f"e2e/{t}/out/{version}"]
        # Another client id: not the thing, no iot:Connect.
        refused = pub(f"e2e/{t}/out/x", "mqttv5", client_id=uid("other"))
        assert refused.returncode != 0
        assert "not authori" in (refused.stderr + refused.stdout).lower(), refused

    # mosquitto_sub receives what the policy lets it receive.
    sub = subprocess.Popen(
        ["stdbuf", "-oL"] + mosquitto("mosquitto_sub", broker, f.dev, t)
        + ["-t", f"e2e/{t}/in/#", "-q", "1", "-v", "-d"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.rstrip("\n")) for x in sub.stdout], daemon=True).start()
    try:
        while "received SUBACK" not in lines.get(timeout=WAIT):
            pass
        with Paho(broker, transport="tcp") as p:
            p.connect()
            p.publish(f"e2e/{t}/in/cmd", b"go", qos=1)
        while True:
            line = lines.get(timeout=WAIT)
            if not line.startswith(("Client ", "Subscribed ")):
                assert line == f"e2e/{t}/in/cmd go"
                break
    finally:
        sub.terminate()
        sub.wait(timeout=WAIT)


# ---------------------------------------------------------------------------------------------
# TestAuthorization says what the broker does


def test_test_authorization_agrees_with_the_broker(broker, pki):
    f = Fleet(broker, pki, least_privilege())
    t = f.thing

    def decision(action: str, resource: str, client_id: str = t) -> str:
        out = f.iot.test_authorization(
            principal=f.cert, clientId=client_id,
            authInfos=[{"actionType": action, "resources": [f"{ARN}:{resource}"]}],
        )["authResults"][0]
        return out["authDecision"]

    # CONNECT
    for client_id in (t, uid("other")):
        expected = decision("CONNECT", f"client/{client_id}", client_id)
        with device(broker, f.dev, client_id) as p:
            rc = p.connect(expect_success=False).rc
        assert (rc == 0) == (expected == "ALLOWED"), (client_id, expected, rc)

    publishes = [f"e2e/{t}/out/a", f"e2e/{t}/out/forbidden", f"e2e/{t}/in/a", "elsewhere/x"]
    filters = [f"e2e/{t}/in/#", f"e2e/{t}/in/+", f"e2e/{t}/out/#", "#"]
    receives = [f"e2e/{t}/in/a", f"e2e/{t}/out/a"]
    with device(broker, f.dev, t) as d, Paho(broker, transport="tcp") as watch:
        d.connect()
        watch.connect()
        for topic in publishes:
            expected = decision("PUBLISH", f"topic/{topic}")
            rc = publish_rc(d, topic)
            assert (rc == 0) == (expected == "ALLOWED"), (topic, expected, rc)
        for flt in filters:
            expected = decision("SUBSCRIBE", f"topicfilter/{flt}")
            granted = d.subscribe(flt, qos=1)
            assert (granted == [1]) == (expected == "ALLOWED"), (flt, expected, granted)
        # RECEIVE: the device subscribed to e2e/<t>/in/# (allowed); a wider filter is refused,
        # so receive e2e/<t>/out/a is tested through the decision alone, and the broker's
        # delivery of both through what arrives.
        for topic in receives:
            expected = decision("RECEIVE", f"topic/{topic}")
            watch.publish(topic, b"r", qos=1)
            watch.publish(f"e2e/{t}/in/marker", b"m", qos=1)
            got = topics(d.until(f"e2e/{t}/in/marker"))
            delivered = topic in got
            subscribed = topic.startswith(f"e2e/{t}/in/")
            if subscribed:
                assert delivered == (expected == "ALLOWED"), (topic, expected, got)
            else:
                assert not delivered and expected != "ALLOWED"


# ---------------------------------------------------------------------------------------------
# policy changes reach open connections


def test_a_new_default_version_stops_deliveries_and_a_detach_closes(broker, pki):
    f = Fleet(broker, pki, least_privilege())
    t = f.thing
    with device(broker, f.dev, t) as d, Paho(broker, transport="tcp") as publisher:
        d.connect()
        publisher.connect()
        assert d.subscribe(f"e2e/{t}/in/#", qos=1) == [1]
        publisher.publish(f"e2e/{t}/in/a", b"1", qos=1)
        assert d.get().payload == b"1"

        # Version 2 (default): receive only e2e/<thing>/in/ok/...
        narrowed = doc(
            allow("iot:Connect", f"{ARN}:client/{THING}"),
            allow("iot:Subscribe", f"{ARN}:topicfilter/e2e/{THING}/in/*"),
            allow("iot:Receive", f"{ARN}:topic/e2e/{THING}/in/ok/*"),
        )
        out = f.iot.create_policy_version(policyName=f.policy, policyDocument=narrowed, setAsDefault=True)
        assert out["isDefaultVersion"]
        publisher.publish(f"e2e/{t}/in/a", b"2", qos=1)
        publisher.publish(f"e2e/{t}/in/ok/marker", b"3", qos=1)
        assert [m.payload for m in d.until(f"e2e/{t}/in/ok/marker")] == []
        # The publish it was allowed a moment ago is now denied.
        assert publish_rc(d, f"e2e/{t}/out/x") == NOT_AUTHORIZED

        # Back to version 1: everything under in/ again.
        f.iot.set_default_policy_version(policyName=f.policy, policyVersionId="1")
        publisher.publish(f"e2e/{t}/in/b", b"4", qos=1)
        assert d.get().payload == b"4"

        # Detached: no policy, no iot:Connect: the connection is closed with 0x87.
        f.iot.detach_policy(policyName=f.policy, target=f.cert)
        assert rc_value(d.wait_disconnected()) == NOT_AUTHORIZED
    with device(broker, f.dev, t) as again:
        assert again.connect(expect_success=False).rc == NOT_AUTHORIZED


def test_a_thing_group_policy_reaches_its_things_connections(broker, pki):
    iot = aws.iot(broker)
    f = Fleet(broker, pki, doc(allow("iot:Connect", f"{ARN}:client/{THING}")))
    t = f.thing
    parent, child = uid("site"), uid("line")
    iot.create_thing_group(thingGroupName=parent)
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=t)
    with device(broker, f.dev, t) as d, Paho(broker, transport="tcp") as publisher:
        d.connect()
        publisher.connect()
        assert d.subscribe(f"e2e/{t}/in/#", qos=1) == [NOT_AUTHORIZED]
        # A policy attached to the parent group: inherited by the thing's connection at once.
        group_policy = uid("grp")
        iot.create_policy(policyName=group_policy, policyDocument=doc(
            allow(["iot:Subscribe"], f"{ARN}:topicfilter/e2e/{THING}/in/*"),
            allow(["iot:Receive"], f"{ARN}:topic/e2e/{THING}/in/*"),
        ))
        iot.attach_policy(policyName=group_policy, target=f"{ARN}:thinggroup/{parent}")
        assert d.subscribe(f"e2e/{t}/in/#", qos=1) == [1]
        publisher.publish(f"e2e/{t}/in/a", b"1", qos=1)
        assert d.get().payload == b"1"
        # Out of the group: Receive is gone (the subscription stays, Receive governs).
        iot.remove_thing_from_thing_group(thingGroupName=child, thingName=t)
        publisher.publish(f"e2e/{t}/in/b", b"2", qos=1)
        iot.add_thing_to_thing_group(thingGroupName=child, thingName=t)
        publisher.publish(f"e2e/{t}/in/c", b"3", qos=1)
        assert d.get().payload == b"3"


# ---------------------------------------------------------------------------------------------
# anonymous listeners with a policy, over WebSocket


ANONYMOUS_POLICY = doc(
    allow("iot:Connect", f"{ARN}:client/ws-*"),
    allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/ws/{CLIENT}/*"),
    allow("iot:Subscribe", f"{ARN}:topicfilter/ws/{CLIENT}/*"),
)


def ws_client(broker, port: int, client_id: str, version: int = 5) -> Paho:
    """Paho over plain WebSocket (/mqtt) to `port`."""
    p = Paho(broker, client_id=client_id, version=version, transport="tcp")
    p.c.transport = "websockets"
    p.c.ws_set_options(path="/mqtt")
    p.port = port
    return track_acks(p)


def test_anonymous_websocket_clients_get_their_listeners_policy(start_broker, tmp_path):
    policy_file = tmp_path / "anonymous.json"
    policy_file.write_text(ANONYMOUS_POLICY)
    b = start_broker(config=(
        '[[listener]]\nname = "ws-limited"\ntransport = "ws"\naddress = "127.0.0.1:0"\n'
        f'anonymous = true\nanonymous_policy = "{policy_file}"\n\n'
        '[[listener]]\nname = "ws-open"\ntransport = "ws"\naddress = "127.0.0.1:0"\nanonymous = true\n\n'
    ))
    limited, open_port = b.listener_port("ws-limited"), b.listener_port("ws-open")
    me = uid("ws")
    with ws_client(b, limited, uid("intruder")) as x:
        assert x.connect(expect_success=False).rc == NOT_AUTHORIZED
    with ws_client(b, limited, me) as c, ws_client(b, open_port, uid("anything")) as free:
        c.connect()
        free.connect()
        assert free.subscribe("ws/#", qos=1) == [1]  # no policy named: allow-all
        assert c.subscribe(f"ws/{me}/#", qos=1) == [1]
        assert c.subscribe("ws/#", qos=1) == [NOT_AUTHORIZED]
        assert publish_rc(c, f"ws/{me}/a") == 0
        assert publish_rc(c, "ws/someone-else/a") == NOT_AUTHORIZED
        assert c.get().topic == f"ws/{me}/a"
        free.publish(f"ws/{me}/b", b"x", qos=1)
        assert c.get().topic == f"ws/{me}/b"
        assert topics(free.get_n(2)) == [f"ws/{me}/a", f"ws/{me}/b"]
    # 3.1.1 over the same listener: SUBACK 0x80.
    with ws_client(b, limited, uid("ws"), version=4) as c3:
        c3.connect()
        assert c3.subscribe("ws/#", qos=1) == [0x80]
    log = b.log()
    assert "denied by policy" in log and "anonymous (listener ws-limited)" in log


def test_the_dev_listener_takes_the_anonymous_policy_flag(start_broker, tmp_path):
    policy_file = tmp_path / "dev.json"
    policy_file.write_text(ANONYMOUS_POLICY)
    b = start_broker(args=["--anonymous-policy", str(policy_file)], tls_anonymous=False)
    with Paho(b, client_id=uid("nope"), transport="tcp") as x:
        assert x.connect(expect_success=False).rc == NOT_AUTHORIZED
    me = uid("ws")
    with track_acks(Paho(b, client_id=me, transport="tcp")) as c:
        c.connect()
        assert publish_rc(c, "other/topic") == NOT_AUTHORIZED
        assert publish_rc(c, f"ws/{me}/ok") == 0
    log = b.log()
    assert "denied by policy" in log
    assert "anonymous (listener mqtt)" in log and "iot:Publish" in log
    assert 'dev.json' in log


# ---------------------------------------------------------------------------------------------
# --compat aws


def test_compat_aws_closes_3_1_1_on_a_denied_publish_and_answers_v5_with_0x87(start_broker, tmp_path):
    policy_file = tmp_path / "anonymous.json"
    policy_file.write_text(ANONYMOUS_POLICY)
    b = start_broker(compat_aws=True, args=["--anonymous-policy", str(policy_file)])
    me = uid("ws")
    with track_acks(Paho(b, client_id=me, version=4, transport="tcp")) as c:
        c.connect()
        c.publish(f"ws/{me}/ok", b"fine", qos=1)
        c.publish("forbidden/x", b"no", qos=1, wait=False)
        c.wait_disconnected()
    with track_acks(Paho(b, client_id=uid("ws"), version=4, transport="tcp")) as c:
        c.connect()
        c.c.subscribe("forbidden/#", 1)
        c.wait_disconnected()
    me = uid("ws")  # a new client id: AWS allows one CONNECT per client id and second
    with track_acks(Paho(b, client_id=me, version=5, transport="tcp")) as c:
        c.connect()
        assert publish_rc(c, "forbidden/x") == NOT_AUTHORIZED
        assert c.subscribe("forbidden/#", qos=1) == [NOT_AUTHORIZED]
        assert publish_rc(c, f"ws/{me}/still-here") == 0
