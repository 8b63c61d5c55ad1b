"""The data plane (`iot-data`) on the HTTPS port, driven the way users drive AWS IoT Core's:
boto3's `iot-data` client and the AWS CLI v1 signed with the admin credentials, and devices
presenting their certificate in the TLS handshake with no signature (Python http.client), decided
by their IoT policies.

Publish (QoS 0 and 1, MQTT 5 properties, retain, percent-encoded topics) is checked on a paho
subscriber; GetRetainedMessage / ListRetainedMessages (paging) against what was retained;
GetConnection / ListSubscriptions against live paho clients and offline persistent sessions;
DeleteConnection by what the client sees (DISCONNECT 0x98), what a will watcher sees, and what a
reconnect finds (session present or not). Every error is checked as the exception botocore
raises for it (the modelled class), also for the raw certificate calls, whose responses go
through botocore's own rest-json error parser.

Negative checks never sleep: whatever must not arrive is followed by a marker that must arrive
first."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from urllib.parse import quote, urlencode

import botocore.parsers
import pytest
from paho.mqtt.packettypes import PacketTypes

import aws
import mqttraw
from clients import WAIT, Paho, props, raw, rc_value, topic, uid
from pki import ACCOUNT, REGION, Device, api_device, cert_arn

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
ADMINISTRATIVE_ACTION = 0x98
# Timestamps are checked for plausibility against the test's clock, with a wide margin: the
# server and the test share the machine; this is not a timing assertion.
SLACK_MS = 120_000


def data(broker):
    """boto3's iot-data client, configured only by the broker's aws-config and credentials."""
    return aws.client(broker, "iot-data")


def now_ms() -> int:
    return int(time.time() * 1000)


def plausible_ms(value, before: int, after: int | None = None) -> None:
    after = now_ms() if after is None else after
    assert isinstance(value, int), f"not an integer of milliseconds: {value!r}"
    assert before - SLACK_MS <= value <= after + SLACK_MS, (
        f"{value} is not a Unix time in ms between {before} and {after} (± {SLACK_MS} ms)"
    )


def props_of(msg) -> dict:
    """The MQTT 5 properties a paho message arrived with, as a dict (absent ones left out)."""
    p = getattr(msg, "properties", None)
    if p is None:
        return {}
    out = {}
    for name in ("UserProperty", "ContentType", "ResponseTopic", "CorrelationData",
                 "PayloadFormatIndicator", "MessageExpiryInterval"):
        if hasattr(p, name):
            out[name] = getattr(p, name)
    return out


def subscriber(broker, *filters: str, qos: int = 1, version: int = 5) -> Paho:
    """An allow-all client on the anonymous dev listener, subscribed to `filters`."""
    s = Paho(broker, client_id=uid("dp-sub"), version=version)
    s.connect()
    for f in filters:
        assert s.subscribe(f, qos) == [qos]
    return s


def wait_for(what: str, probe, timeout: float = WAIT):
    """Polls `probe` until it returns something truthy (the server works asynchronously after
    a client's disconnect); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def disconnected_status(dp, cid: str) -> dict:
    """GetConnection once the server has noticed `cid` is gone (connected=False)."""
    def probe():
        out = dp.get_connection(clientId=cid)
        return out if out["connected"] is False else None
    return wait_for(f"GetConnection({cid}) connected=False", probe)


def session_gone(dp, cid: str) -> bool:
    """Waits until `cid` has no session (ListSubscriptions: ResourceNotFoundException)."""
    def probe():
        try:
            dp.list_subscriptions(clientId=cid)
            return False
        except dp.exceptions.ResourceNotFoundException:
            return True
    return wait_for(f"ListSubscriptions({cid}) -> ResourceNotFoundException", probe)


def status_without_session(dp, cid: str, reason: str) -> None:
    """GetConnection of a client with neither a connection nor a session: not found, or (AWS
    keeps the last disconnection for a while) connected=False with `reason`."""
    try:
        out = dp.get_connection(clientId=cid)
    except dp.exceptions.ResourceNotFoundException:
        return
    assert out["connected"] is False, out
    assert out["disconnectReason"] == reason, out


# ---------------------------------------------------------------------------------------------
# certificate callers: unsigned HTTPS with a device certificate in the TLS handshake


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else {}

    def __repr__(self) -> str:
        return f"HTTP {self.status} {self.headers.get('x-amzn-errortype', '')} {self.body[:300]!r}"


def device_context(broker, dev: Device, alpn: str | None = "x-amzn-http-ca") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    if alpn:
        ctx.set_alpn_protocols([alpn])
    return ctx


def device_request(broker, dev: Device, method: str, path: str, body: bytes | None = None,
                   headers: dict[str, str] | None = None, alpn: str | None = "x-amzn-http-ca") -> Response:
    """An unsigned request on the (non-anonymous) HTTPS listener presenting `dev`'s certificate,
    as curl --cert/--key would send it. The server certificate covers `localhost`."""
    conn = http.client.HTTPSConnection(
        "localhost", broker.listener_port("https"), context=device_context(broker, dev, alpn), timeout=WAIT,
    )
    try:
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/octet-stream")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def label(name: str) -> str:
    """A URI label percent-encoded the way the AWS SDKs send it (`/` as %2F)."""
    return quote(name, safe="")


def botocore_exception(dp, operation: str, r: Response) -> type:
    """The exception class botocore raises for this raw response to `operation`: its rest-json
    parser reads the code (x-amzn-ErrorType, else the body), then the client maps it."""
    op = dp.meta.service_model.operation_model(operation)
    parsed = botocore.parsers.create_parser("rest-json").parse(
        {"status_code": r.status, "headers": r.headers, "body": r.body}, op.output_shape,
    )
    assert "Error" in parsed, f"{operation}: not an error: {r}"
    return dp.exceptions.from_code(parsed["Error"]["Code"])


def assert_error(dp, operation: str, r: Response, status: int, exception: str) -> None:
    assert r.status == status, f"{operation}: expected {status} {exception}, got {r}"
    cls = botocore_exception(dp, operation, r)
    assert cls is getattr(dp.exceptions, exception), f"{operation}: botocore raises {cls.__name__} for {r}"
    assert isinstance(r.json().get("message"), str), f"{operation}: no message in {r}"


def policy_doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], *resources: str) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": list(resources)}


def deny(action: str | list[str], *resources: str) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": list(resources)}


def device_with_policy(broker, pki, *statements: dict) -> Device:
    """An ACTIVE certificate made by CreateKeysAndCertificate with one policy attached."""
    iot = aws.iot(broker)
    dev = api_device(iot, pki)
    name = uid("dp-pol")
    iot.create_policy(policyName=name, policyDocument=policy_doc(*statements))
    iot.attach_policy(policyName=name, target=cert_arn(dev.id))
    return dev


# ---------------------------------------------------------------------------------------------
# Publish (SigV4, boto3)


@pytest.mark.parametrize("qos", [0, 1])
def test_publish_reaches_a_subscriber_with_the_payload_intact(broker, qos):
    dp = data(broker)
    t = topic("pub")
    payload = bytes(range(256)) * 3 + b"\x00end"
    with subscriber(broker, t, qos=1) as s5, subscriber(broker, t, qos=1, version=4) as s4:
        out = dp.publish(topic=t, qos=qos, payload=payload)
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
        for s in (s5, s4):
            m = s.get()
            assert (m.topic, m.payload, m.qos, m.retain) == (t, payload, qos, False)


def test_publish_without_qos_is_qos0_and_an_empty_body_is_an_empty_message(broker):
    dp = data(broker)
    t = topic("pubdefault")
    with subscriber(broker, t) as s:
        dp.publish(topic=t)
        m = s.get()
        assert (m.payload, m.qos) == (b"", 0)


@pytest.mark.parametrize("qos", [0, 1])
def test_publish_mqtt5_properties_are_forwarded(broker, qos):
    dp = data(broker)
    t = topic("pubprops")
    user = [{"deviceName": "alpha"}, {"deviceCnt": "45"}, {"deviceName": "beta"}, {"ü": "ß ✓"}]
    correlation = b"\x00\x01corr\xff"
    payload = json.dumps({"temperature": 21.5, "unit": "°C"}).encode()
    with subscriber(broker, t) as s:
        dp.publish(
            topic=t, qos=qos, payload=payload,
            userProperties=user,
            payloadFormatIndicator="UTF8_DATA",
            contentType="application/json; charset=utf-8",
            responseTopic="reply/to/me",
            correlationData=base64.b64encode(correlation).decode(),
            messageExpiry=300,
        )
        m = s.get()
        assert (m.payload, m.qos) == (payload, qos)
        p = props_of(m)
        # One user property per object, in the order sent, duplicates kept.
        assert p.get("UserProperty") == [("deviceName", "alpha"), ("deviceCnt", "45"),
                                         ("deviceName", "beta"), ("ü", "ß ✓")]
        assert p.get("ContentType") == "application/json; charset=utf-8"
        assert p.get("ResponseTopic") == "reply/to/me"
        assert p.get("CorrelationData") == correlation
        assert p.get("PayloadFormatIndicator") == 1
        # The remaining lifetime is forwarded: at most what was given, and not expired.
        assert 1 <= p.get("MessageExpiryInterval", 0) <= 300, p


def test_publish_with_unspecified_bytes_format_and_no_properties(broker):
    dp = data(broker)
    t = topic("pubbytes")
    payload = b"\xff\xfe not utf-8 \xc3"
    with subscriber(broker, t) as s:
        dp.publish(topic=t, qos=1, payload=payload, payloadFormatIndicator="UNSPECIFIED_BYTES")
        dp.publish(topic=t, qos=1, payload=b"plain")
        first, second = s.get_n(2)
        assert first.payload == payload
        assert props_of(first).get("PayloadFormatIndicator", 0) == 0
        assert second.payload == b"plain"
        p = props_of(second)
        for absent in ("UserProperty", "ContentType", "ResponseTopic", "CorrelationData", "MessageExpiryInterval"):
            assert absent not in p, f"{absent} appeared on a publish without it: {p}"


def test_publish_answers_ok_with_a_trace_id(broker):
    t = topic("pubanswer")
    with subscriber(broker, t) as s:
        status, body = aws.signed(broker, "POST", f"/topics/{label(t)}?qos=1", raw=b"signed", service="iotdata")
        assert status == 200, body
        assert body.get("message") == "OK", body
        assert isinstance(body.get("traceId"), str) and body["traceId"], body
        assert s.get().payload == b"signed"


def test_topics_with_slashes_and_characters_needing_percent_encoding(broker):
    dp = data(broker)
    base = topic("enc")
    names = [
        f"{base}/a/b c/ü",
        f"{base}/100%/done",
        f"{base}/q?x=1&y=2",
        f"{base}/semi;colon,comma'quote\"/tilde~",
        f"{base}//double/",
    ]
    with subscriber(broker, f"{base}/#") as s:
        for i, name in enumerate(names):
            dp.publish(topic=name, qos=1, payload=f"m{i}".encode())
        got = {m.topic: m.payload for m in s.get_n(len(names))}
        assert got == {name: f"m{i}".encode() for i, name in enumerate(names)}
    # The same names through retain / GetRetainedMessage.
    for i, name in enumerate(names):
        dp.publish(topic=name, qos=1, retain=True, payload=f"r{i}".encode())
    for i, name in enumerate(names):
        out = dp.get_retained_message(topic=name)
        assert (out["topic"], out["payload"]) == (name, f"r{i}".encode())
        dp.publish(topic=name, qos=1, retain=True, payload=b"")
        with pytest.raises(dp.exceptions.ResourceNotFoundException):
            dp.get_retained_message(topic=name)


def test_raw_slashes_in_the_path_name_the_same_topic(broker):
    """curl users write /topics/a/b/c; the SDKs send /topics/a%2Fb%2Fc: one topic."""
    t = topic("rawslash")
    with subscriber(broker, t) as s:
        status, body = aws.signed(broker, "POST", f"/topics/{t}?qos=1", raw=b"raw", service="iotdata")
        assert status == 200, body
        m = s.get()
        assert (m.topic, m.payload) == (t, b"raw")
    status, body = aws.signed(broker, "POST", f"/topics/{t}?qos=1&retain=true", raw=b"kept", service="iotdata")
    assert status == 200, body
    status, body = aws.signed(broker, "GET", f"/retainedMessage/{t}", service="iotdata")
    assert status == 200, body
    assert (body["topic"], base64.b64decode(body["payload"])) == (t, b"kept")
    data(broker).publish(topic=t, retain=True, payload=b"")


@pytest.mark.parametrize("qos", [2, 3])
def test_invalid_qos_is_an_invalid_request(broker, qos):
    dp = data(broker)
    t = topic("badqos")
    with subscriber(broker, t) as s:
        with pytest.raises(dp.exceptions.InvalidRequestException):
            dp.publish(topic=t, qos=qos, payload=b"never")
        dp.publish(topic=t, qos=1, payload=b"marker")
        assert s.get().payload == b"marker"


@pytest.mark.parametrize("query", ["qos=-1", "qos=one", "retain=maybe", "messageExpiry=-5"])
def test_malformed_publish_query_is_an_invalid_request(broker, query):
    status, body = aws.signed(broker, "POST", f"/topics/{label(topic('badq'))}?{query}", raw=b"x", service="iotdata")
    assert status == 400, body
    assert body["errorType"].split(":")[0] == "InvalidRequestException", body


@pytest.mark.parametrize("suffix", ["+/x", "#", "a/+", "a/#"])
def test_publish_to_a_wildcard_topic_is_an_invalid_request(broker, suffix):
    dp = data(broker)
    with pytest.raises(dp.exceptions.InvalidRequestException):
        dp.publish(topic=f"{topic('wild')}/{suffix}", qos=1, payload=b"x")


def test_bad_mqtt5_headers_are_invalid_requests(broker):
    dp = data(broker)
    t = topic("badhdr")
    with pytest.raises(dp.exceptions.InvalidRequestException):
        dp.publish(topic=t, payload=b"x", correlationData="not base64 !!!")
    with pytest.raises(dp.exceptions.InvalidRequestException):
        dp.publish(topic=t, payload=b"x", userProperties={"not": "an array"})


# ---------------------------------------------------------------------------------------------
# retained messages (SigV4, boto3)


def test_retain_then_get_retained_message_then_delete(broker):
    dp = data(broker)
    t = topic("ret")
    user = [{"deviceName": "alpha"}, {"deviceCnt": "45"}]
    before = now_ms()
    dp.publish(topic=t, qos=1, retain=True, payload=b"\x01first\x00", userProperties=user)
    after = now_ms()
    out = dp.get_retained_message(topic=t)
    assert out["topic"] == t
    assert out["payload"] == b"\x01first\x00"
    assert out["qos"] == 1
    plausible_ms(out["lastModifiedTime"], before, after)
    # userProperties: the base64 of a JSON array of one-member objects (boto3 decodes the blob).
    assert json.loads(out["userProperties"]) == user

    # A new subscriber gets it, retained, with its properties.
    with Paho(broker) as s:
        s.connect()
        s.subscribe(t, 1)
        m = s.get()
        assert (m.payload, m.retain, m.qos) == (b"\x01first\x00", True, 1)
        assert props_of(m).get("UserProperty") == [("deviceName", "alpha"), ("deviceCnt", "45")]

    # Replaced at QoS 0 without properties: the answer follows, userProperties absent.
    dp.publish(topic=t, qos=0, retain=True, payload=b"second")
    out2 = dp.get_retained_message(topic=t)  # a retained publish is stored before its 200
    assert out2["payload"] == b"second"
    assert out2["qos"] == 0
    assert "userProperties" not in out2, out2
    assert out2["lastModifiedTime"] >= out["lastModifiedTime"]

    # Retain with an empty body deletes it.
    dp.publish(topic=t, qos=1, retain=True, payload=b"")
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.get_retained_message(topic=t)
    listed = [x["topic"] for page in dp.get_paginator("list_retained_messages").paginate()
              for x in page.get("retainedTopics", [])]
    assert t not in listed


def test_retained_message_published_over_mqtt_is_visible_to_the_data_plane(broker):
    dp = data(broker)
    t = topic("retmqtt")
    before = now_ms()
    with Paho(broker) as p:
        p.connect()
        p.publish(t, b"from mqtt", qos=1, retain=True,
                  properties=props(PacketTypes.PUBLISH, UserProperty=[("k", "v"), ("k", "w")]))
    out = dp.get_retained_message(topic=t)
    assert (out["topic"], out["payload"], out["qos"]) == (t, b"from mqtt", 1)
    plausible_ms(out["lastModifiedTime"], before)
    assert json.loads(out["userProperties"]) == [{"k": "v"}, {"k": "w"}]
    dp.publish(topic=t, retain=True, payload=b"")


def test_get_retained_message_on_a_topic_without_one_is_not_found(broker):
    dp = data(broker)
    t = topic("noret")
    dp.publish(topic=t, qos=1, payload=b"not retained")
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.get_retained_message(topic=t)


def test_list_retained_messages_pages(start_broker):
    b = start_broker()
    dp = data(b)
    assert dp.list_retained_messages().get("retainedTopics", []) == []
    base = topic("list")
    sizes = {f"{base}/{i}": i * 10 + 1 for i in range(5)}
    before = now_ms()
    for i, (t, size) in enumerate(sizes.items()):
        dp.publish(topic=t, qos=i % 2, retain=True, payload=b"x" * size)
    # The QoS 0 ones are not acknowledged: wait until all five are there.
    wait_for("five retained messages", lambda: len(dp.list_retained_messages().get("retainedTopics", [])) == 5)
    after = now_ms()

    pages, token = [], None
    while True:
        kw = {"maxResults": 2}
        if token:
            kw["nextToken"] = token
        out = dp.list_retained_messages(**kw)
        pages.append(out["retainedTopics"])
        token = out.get("nextToken")
        if not token:
            break
        assert len(pages) < 10, "paging does not end"
    assert [len(p) for p in pages] == [2, 2, 1]
    summaries = [s for p in pages for s in p]
    assert sorted(s["topic"] for s in summaries) == sorted(sizes)  # each once
    for s in summaries:
        i = int(s["topic"].rsplit("/", 1)[1])
        assert s["payloadSize"] == sizes[s["topic"]]
        assert s["qos"] == i % 2
        plausible_ms(s["lastModifiedTime"], before, after)
        assert "payload" not in s

    # boto3's paginator agrees.
    paged = [s["topic"] for page in dp.get_paginator("list_retained_messages").paginate(
        PaginationConfig={"PageSize": 2}) for s in page["retainedTopics"]]
    assert sorted(paged) == sorted(sizes)

    # Deleting one (empty retained payload) removes it from the list; the token of a page
    # still works after a change.
    first = dp.list_retained_messages(maxResults=2)
    on_first = [s["topic"] for s in first["retainedTopics"]]
    victim = on_first[0]
    dp.publish(topic=victim, qos=1, retain=True, payload=b"")
    rest = dp.list_retained_messages(maxResults=200, nextToken=first["nextToken"])
    assert sorted(s["topic"] for s in rest["retainedTopics"]) == sorted(set(sizes) - set(on_first))
    remaining = [s["topic"] for s in dp.list_retained_messages()["retainedTopics"]]
    assert sorted(remaining) == sorted(t for t in sizes if t != victim)
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.get_retained_message(topic=victim)


@pytest.mark.parametrize("query", ["maxResults=0", "maxResults=201", "maxResults=ten", "nextToken=%25%25bad%25%25"])
def test_list_retained_messages_bad_paging_is_an_invalid_request(broker, query):
    status, body = aws.signed(broker, "GET", f"/retainedMessage?{query}", service="iotdata")
    assert status == 400, body
    assert body["errorType"].split(":")[0] == "InvalidRequestException", body


# ---------------------------------------------------------------------------------------------
# GetConnection / ListSubscriptions (SigV4, boto3)


def test_get_connection_of_a_connected_client(broker):
    dp = data(broker)
    before = now_ms()
    with Paho(broker, client_id=uid("dp-conn"), keepalive=45) as c:
        c.connect()
        after = now_ms()
        out = dp.get_connection(clientId=c.client_id)
        assert out["connected"] is True
        assert out["clientId"] == c.client_id
        assert out["cleanSession"] is True
        assert out["keepAliveDuration"] == 45
        plausible_ms(out["connectedSince"], before, after)
        assert "disconnectedSince" not in out and "disconnectReason" not in out, out
        for k in ("sourceIp", "sourcePort", "targetIp", "targetPort"):
            assert k not in out, f"{k} without includeSocketInformation: {out}"

        out = dp.get_connection(clientId=c.client_id, includeSocketInformation=True)
        local_ip, local_port = c.c.socket().getsockname()[:2]
        assert out["sourceIp"] == local_ip == "127.0.0.1"
        assert out["sourcePort"] == local_port
        assert out["targetIp"] == "127.0.0.1"
        assert out["targetPort"] == broker.port("mqtt")
        assert out["connected"] is True


def test_get_connection_of_a_persistent_session_after_the_client_left(broker):
    dp = data(broker)
    cid = uid("dp-gone")
    before = now_ms()
    with Paho(broker, client_id=cid, clean=False, session_expiry=3600, keepalive=30) as c:
        c.connect()
        out = dp.get_connection(clientId=cid)
        assert (out["connected"], out["cleanSession"]) == (True, False)
        assert out.get("sessionExpiry") == 3600, out
    out = disconnected_status(dp, cid)
    after = now_ms()
    assert out["clientId"] == cid
    assert out["cleanSession"] is False
    plausible_ms(out["disconnectedSince"], before, after)
    assert out["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert "connectedSince" not in out, out
    # No socket any more, even when asked for it.
    out = dp.get_connection(clientId=cid, includeSocketInformation=True)
    assert out["connected"] is False
    for k in ("sourcePort", "targetPort"):
        assert k not in out, f"{k} for a disconnected client: {out}"
    # The session is ended the AWS way: DeleteConnection with cleanSession.
    dp.delete_connection(clientId=cid, cleanSession=True)
    assert session_gone(dp, cid)
    status_without_session(dp, cid, "API_INITIATED_DISCONNECT")


def test_get_connection_of_a_lost_connection(broker):
    """A client that vanishes without DISCONNECT: CONNECTION_LOST (or a keepalive timeout)."""
    dp = data(broker)
    cid = uid("dp-lost")
    c = raw(broker)
    c.connect(cid, clean=False, props=[(mqttraw.SESSION_EXPIRY, 3600)])
    c.close()
    out = disconnected_status(dp, cid)
    assert out["disconnectReason"] in ("CONNECTION_LOST", "MQTT_KEEP_ALIVE_TIMEOUT"), out
    dp.delete_connection(clientId=cid, cleanSession=True)


def test_a_clean_session_is_gone_once_disconnected(broker):
    dp = data(broker)
    with Paho(broker, client_id=uid("dp-clean")) as c:
        c.connect()
        cid = c.client_id
        assert dp.get_connection(clientId=cid)["connected"] is True
        assert dp.list_subscriptions(clientId=cid)["subscriptions"] == []
    assert session_gone(dp, cid)
    status_without_session(dp, cid, "CLIENT_INITIATED_DISCONNECT")


def test_get_connection_names_the_thing_of_a_certificate_client(broker, pki):
    """A device connecting as its thing (client id = thing name, certificate attached)."""
    iot = aws.iot(broker)
    thing = uid("dp-thing")
    iot.create_thing(thingName=thing)
    dev = device_with_policy(broker, pki, allow("iot:*", "*"))
    iot.attach_thing_principal(thingName=thing, principal=cert_arn(dev.id))
    p = Paho(broker, client_id=thing)
    p.port = broker.listener_port("mqtts")
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    p.c.tls_set_context(ctx)
    with p:
        p.connect()
        out = data(broker).get_connection(clientId=thing, includeSocketInformation=True)
        assert out["connected"] is True
        assert out["thingName"] == thing
        assert out["targetPort"] == broker.listener_port("mqtts")


def test_get_connection_of_an_unknown_client_is_not_found(broker):
    dp = data(broker)
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.get_connection(clientId=uid("nobody"))
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.list_subscriptions(clientId=uid("nobody"))
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.delete_connection(clientId=uid("nobody"))


def test_client_ids_starting_with_a_dollar_are_invalid_requests(broker):
    dp = data(broker)
    for call in (dp.get_connection, dp.delete_connection, dp.list_subscriptions):
        with pytest.raises(dp.exceptions.InvalidRequestException):
            call(clientId="$reserved")
    with pytest.raises(dp.exceptions.InvalidRequestException):
        dp.get_connection(clientId="x" * 129)


def test_client_ids_needing_percent_encoding(broker):
    dp = data(broker)
    cid = f"{uid('dp')}/a b/ü%?"
    with Paho(broker, client_id=cid) as c:
        c.connect()
        c.subscribe(topic("enc"), 1)
        out = dp.get_connection(clientId=cid)
        assert (out["clientId"], out["connected"]) == (cid, True)
        assert len(dp.list_subscriptions(clientId=cid)["subscriptions"]) == 1
        dp.delete_connection(clientId=cid)
        assert rc_value(c.wait_disconnected()) == ADMINISTRATIVE_ACTION


def test_list_subscriptions_shows_filters_and_qos(broker):
    dp = data(broker)
    base = topic("subs")
    filters = {f"{base}/exact": 1, f"{base}/+/plus": 0, f"{base}/deep/#": 1, f"{base}/zero": 0}
    with Paho(broker, client_id=uid("dp-subs"), clean=False, session_expiry=600) as c:
        c.connect()
        for f, q in filters.items():
            assert c.subscribe(f, q) == [q]
        out = dp.list_subscriptions(clientId=c.client_id)
        assert {s["topicFilter"]: s["qos"] for s in out["subscriptions"]} == filters
        assert len(out["subscriptions"]) == len(filters)
        assert not out.get("nextToken")

        # Paging: maxResults=2 over four filters.
        pages, token = [], None
        while True:
            kw = {"clientId": c.client_id, "maxResults": 2}
            if token:
                kw["nextToken"] = token
            page = dp.list_subscriptions(**kw)
            pages.append(page["subscriptions"])
            token = page.get("nextToken")
            if not token:
                break
            assert len(pages) < 10, "paging does not end"
        assert [len(p) for p in pages] == [2, 2]
        assert sorted(s["topicFilter"] for p in pages for s in p) == sorted(filters)
        paged = [s["topicFilter"] for pg in dp.get_paginator("list_subscriptions").paginate(
            clientId=c.client_id, PaginationConfig={"PageSize": 3}) for s in pg["subscriptions"]]
        assert sorted(paged) == sorted(filters)

        # An unsubscribe and a changed QoS show.
        c.unsubscribe(f"{base}/zero")
        c.subscribe(f"{base}/exact", 0)
        out = dp.list_subscriptions(clientId=c.client_id)
        assert {s["topicFilter"]: s["qos"] for s in out["subscriptions"]} == {
            f"{base}/exact": 0, f"{base}/+/plus": 0, f"{base}/deep/#": 1}
    # An offline persistent session keeps listing its subscriptions.
    disconnected_status(dp, c.client_id)
    out = dp.list_subscriptions(clientId=c.client_id)
    assert {s["topicFilter"] for s in out["subscriptions"]} == {f"{base}/exact", f"{base}/+/plus", f"{base}/deep/#"}
    dp.delete_connection(clientId=c.client_id, cleanSession=True)


# ---------------------------------------------------------------------------------------------
# DeleteConnection (SigV4, boto3)


@pytest.mark.parametrize("clean_session", [False, True], ids=["keep-session", "clean-session"])
@pytest.mark.parametrize("prevent_will", [False, True], ids=["will", "no-will"])
def test_delete_connection(broker, clean_session, prevent_will):
    dp = data(broker)
    cid, wt, t = uid("dp-del"), topic("will"), topic("queued")
    with subscriber(broker, wt) as watcher:
        victim = Paho(broker, client_id=cid, clean=False, session_expiry=3600,
                      will={"topic": wt, "payload": b"victim gone", "qos": 1})
        with victim:
            victim.connect()
            assert victim.subscribe(t, 1) == [1]
            out = dp.delete_connection(clientId=cid, cleanSession=clean_session, preventWillMessage=prevent_will)
            assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
            # MQTT 5 DISCONNECT 0x98 (administrative action).
            assert rc_value(victim.wait_disconnected()) == ADMINISTRATIVE_ACTION

        if clean_session:
            assert session_gone(dp, cid)
            status_without_session(dp, cid, "API_INITIATED_DISCONNECT")
        else:
            status = disconnected_status(dp, cid)
            assert status["disconnectReason"] == "API_INITIATED_DISCONNECT", status
            subs = dp.list_subscriptions(clientId=cid)["subscriptions"]
            assert [(s["topicFilter"], s["qos"]) for s in subs] == [(t, 1)]

        if prevent_will:
            # A marker will, after the victim is gone: the watcher must see it first.
            marker = Paho(broker, client_id=uid("dp-marker"), will={"topic": wt, "payload": b"marker", "qos": 1})
            with marker:
                marker.connect()
                dp.delete_connection(clientId=marker.client_id)
                marker.wait_disconnected()
            m = watcher.get()
            assert m.payload == b"marker", f"the will was published despite preventWillMessage: {m.payload!r}"
        else:
            m = watcher.get()
            assert (m.topic, m.payload) == (wt, b"victim gone")

        # While it is away, a QoS 1 message for its subscription.
        dp.publish(topic=t, qos=1, payload=b"while away")

    again = Paho(broker, client_id=cid, clean=False, session_expiry=3600)
    with again:
        ack = again.connect()
        assert ack.session_present is (not clean_session)
        if not clean_session:
            # The session (subscription and queue) survived.
            m = again.get()
            assert (m.topic, m.payload) == (t, b"while away")
    dp.delete_connection(clientId=cid, cleanSession=True)


def test_delete_connection_of_a_clean_session_client_and_of_a_v311_client(broker):
    dp = data(broker)
    wt = topic("will311")
    with subscriber(broker, wt) as watcher:
        for version in (5, 4):
            c = Paho(broker, client_id=uid(f"dp-v{version}"), version=version,
                     will={"topic": wt, "payload": f"v{version}".encode(), "qos": 1})
            with c:
                c.connect()
                dp.delete_connection(clientId=c.client_id)
                reason = c.wait_disconnected()
                if version == 5:
                    assert rc_value(reason) == ADMINISTRATIVE_ACTION
            assert watcher.get().payload == f"v{version}".encode()
            assert session_gone(dp, c.client_id)
            status_without_session(dp, c.client_id, "API_INITIATED_DISCONNECT")


def test_delete_connection_of_an_offline_persistent_session(broker):
    dp = data(broker)
    cid, t = uid("dp-offline"), topic("off")
    with Paho(broker, client_id=cid, clean=False, session_expiry=3600) as c:
        c.connect()
        c.subscribe(t, 1)
    disconnected_status(dp, cid)
    # cleanSession=false on a session with no connection: nothing to do, the session stays.
    dp.delete_connection(clientId=cid)
    assert dp.get_connection(clientId=cid)["connected"] is False
    assert len(dp.list_subscriptions(clientId=cid)["subscriptions"]) == 1
    # cleanSession=true ends it.
    dp.delete_connection(clientId=cid, cleanSession=True)
    assert session_gone(dp, cid)
    with Paho(broker, client_id=cid, clean=False, session_expiry=3600) as c:
        assert c.connect().session_present is False
    dp.delete_connection(clientId=cid, cleanSession=True)


def test_delete_connection_of_a_will_client_retained_will(broker):
    """A will with retain set, published by DeleteConnection: GetRetainedMessage shows it."""
    dp = data(broker)
    wt = topic("retwill")
    with subscriber(broker, wt) as watcher:
        with Paho(broker, client_id=uid("dp-rw"),
                  will={"topic": wt, "payload": b"offline", "qos": 1, "retain": True}) as c:
            c.connect()
            dp.delete_connection(clientId=c.client_id)
            c.wait_disconnected()
        assert watcher.get().payload == b"offline"
    out = dp.get_retained_message(topic=wt)
    assert (out["payload"], out["qos"]) == (b"offline", 1)
    dp.publish(topic=wt, retain=True, payload=b"")


# ---------------------------------------------------------------------------------------------
# the AWS CLI v1


def test_aws_cli_publish_and_retained_messages(start_broker):
    b = start_broker()
    t, kept = topic("cli"), [topic("cli-kept-a"), topic("cli-kept-b")]
    with subscriber(b, t) as s:
        assert aws.cli(b, "iot-data", "publish", "--topic", t, "--qos", "1", "--payload", "hello") == {}
        m = s.get()
        assert (m.topic, m.payload, m.qos) == (t, b"hello", 1)
        aws.cli(b, "iot-data", "publish", "--topic", t, "--qos", "0", "--payload", "props",
                "--user-properties", '[{"deviceName": "alpha"}, {"deviceCnt": "45"}]',
                "--content-type", "text/plain")
        m = s.get()
        assert m.payload == b"props"
        assert props_of(m).get("UserProperty") == [("deviceName", "alpha"), ("deviceCnt", "45")]
        assert props_of(m).get("ContentType") == "text/plain"
    for i, k in enumerate(kept):
        aws.cli(b, "iot-data", "publish", "--topic", k, "--qos", "1", "--retain", "--payload", f"kept {i}")
    out = aws.cli(b, "iot-data", "get-retained-message", "--topic", kept[0])
    assert out["topic"] == kept[0]
    assert base64.b64decode(out["payload"]) == b"kept 0"
    assert out["qos"] == 1
    assert isinstance(out["lastModifiedTime"], int)
    # --page-size 1: the CLI follows nextToken through every page.
    out = aws.cli(b, "iot-data", "list-retained-messages", "--page-size", "1")
    assert sorted(x["topic"] for x in out["retainedTopics"]) == sorted(kept)
    assert {x["topic"]: x["payloadSize"] for x in out["retainedTopics"]} == {k: 6 for k in kept}
    # Deleted with an empty retained payload; the CLI reports the 404 by its AWS name.
    aws.cli(b, "iot-data", "publish", "--topic", kept[0], "--qos", "1", "--retain", "--payload", "")
    err = aws.cli_error(b, "iot-data", "get-retained-message", "--topic", kept[0])
    assert "ResourceNotFoundException" in err, err
    err = aws.cli_error(b, "iot-data", "publish", "--topic", t, "--qos", "2", "--payload", "x")
    assert "InvalidRequestException" in err, err


# ---------------------------------------------------------------------------------------------
# certificate callers (no SigV4): decided by the certificate's policies


def own_prefix() -> str:
    return f"dev/{uid('own')}"


@pytest.mark.parametrize("alpn", ["x-amzn-http-ca", "http/1.1", None])
def test_certificate_publishes_where_its_policy_allows(broker, pki, alpn):
    dp = data(broker)
    own = own_prefix()
    other = f"dev/{uid('other')}/t"
    dev = device_with_policy(broker, pki, allow("iot:Publish", f"{ARN}:topic/{own}/*"))
    with subscriber(broker, f"{own}/#", other) as s:
        # Denied first, then allowed: the subscriber must see the allowed one first.
        r = device_request(broker, dev, "POST", f"/topics/{label(other)}?qos=1", b"denied", alpn=alpn)
        assert_error(dp, "Publish", r, 403, "ForbiddenException")
        r = device_request(broker, dev, "POST", f"/topics/{label(own + '/t')}?qos=1", b"\x00allowed\xff", alpn=alpn)
        assert r.status == 200, r
        assert r.json().get("message") == "OK", r
        m = s.get()
        assert (m.topic, m.payload, m.qos) == (f"{own}/t", b"\x00allowed\xff", 1)
        # Raw slashes (as curl users write them) and QoS 0 with MQTT 5 headers.
        r = device_request(
            broker, dev, "POST", f"/topics/{own}/deeper/x?qos=0&contentType=text%2Fplain", b"raw",
            headers={
                "x-amz-mqtt5-user-properties": base64.b64encode(b'[{"a":"1"},{"b":"2"}]').decode(),
                "x-amz-mqtt5-correlation-data": base64.b64encode(b"cd").decode(),
                "x-amz-mqtt5-payload-format-indicator": "UTF8_DATA",
            },
            alpn=alpn,
        )
        assert r.status == 200, r
        m = s.get()
        assert (m.topic, m.payload) == (f"{own}/deeper/x", b"raw")
        p = props_of(m)
        assert p.get("UserProperty") == [("a", "1"), ("b", "2")]
        assert (p.get("ContentType"), p.get("CorrelationData"), p.get("PayloadFormatIndicator")) == (
            "text/plain", b"cd", 1)
        # A bad QoS is a bad request for a certificate caller too.
        r = device_request(broker, dev, "POST", f"/topics/{label(own + '/t')}?qos=2", b"x", alpn=alpn)
        assert_error(dp, "Publish", r, 400, "InvalidRequestException")


def test_certificate_explicit_deny_wins(broker, pki):
    dp = data(broker)
    own = own_prefix()
    dev = device_with_policy(
        broker, pki,
        allow("iot:Publish", f"{ARN}:topic/{own}/*"),
        deny("iot:Publish", f"{ARN}:topic/{own}/forbidden"),
    )
    with subscriber(broker, f"{own}/#") as s:
        r = device_request(broker, dev, "POST", f"/topics/{label(own + '/forbidden')}?qos=1", b"no")
        assert_error(dp, "Publish", r, 403, "ForbiddenException")
        r = device_request(broker, dev, "POST", f"/topics/{label(own + '/fine')}?qos=1", b"yes")
        assert r.status == 200, r
        assert s.get().payload == b"yes"


def test_certificate_retain_needs_retain_publish(broker, pki):
    dp = data(broker)
    own = own_prefix()
    dev = device_with_policy(
        broker, pki,
        allow("iot:Publish", f"{ARN}:topic/{own}/*"),
        allow("iot:RetainPublish", f"{ARN}:topic/{own}/keep/*"),
    )
    plain, keep = f"{own}/plain", f"{own}/keep/x"
    r = device_request(broker, dev, "POST", f"/topics/{label(plain)}?qos=1&retain=true", b"no")
    assert_error(dp, "Publish", r, 403, "ForbiddenException")
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.get_retained_message(topic=plain)
    r = device_request(broker, dev, "POST", f"/topics/{label(keep)}?qos=1&retain=true", b"kept")
    assert r.status == 200, r
    out = dp.get_retained_message(topic=keep)
    assert (out["payload"], out["qos"]) == (b"kept", 1)
    # Deleting it is a retained publish too.
    r = device_request(broker, dev, "POST", f"/topics/{label(plain)}?retain=true", b"")
    assert_error(dp, "Publish", r, 403, "ForbiddenException")
    r = device_request(broker, dev, "POST", f"/topics/{label(keep)}?qos=1&retain=true", b"")
    assert r.status == 200, r
    with pytest.raises(dp.exceptions.ResourceNotFoundException):
        dp.get_retained_message(topic=keep)


def test_certificate_get_retained_message_per_policy(broker, pki):
    dp = data(broker)
    own = own_prefix()
    readable, secret, elsewhere = f"{own}/r", f"{own}/secret", f"dev/{uid('else')}/r"
    for t in (readable, secret, elsewhere):
        dp.publish(topic=t, qos=1, retain=True, payload=f"value of {t}".encode(),
                   userProperties=[{"k": "v"}])
    dev = device_with_policy(
        broker, pki,
        allow("iot:GetRetainedMessage", f"{ARN}:topic/{own}/*"),
        deny("iot:GetRetainedMessage", f"{ARN}:topic/{own}/secret"),
    )
    r = device_request(broker, dev, "GET", f"/retainedMessage/{label(readable)}")
    assert r.status == 200, r
    body = r.json()
    assert body["topic"] == readable
    assert base64.b64decode(body["payload"]) == f"value of {readable}".encode()
    assert body["qos"] == 1
    plausible_ms(body["lastModifiedTime"], now_ms() - 60_000)
    assert json.loads(base64.b64decode(body["userProperties"])) == [{"k": "v"}]
    for t in (secret, elsewhere):
        r = device_request(broker, dev, "GET", f"/retainedMessage/{label(t)}")
        assert_error(dp, "GetRetainedMessage", r, 403, "ForbiddenException")
    # Allowed but nothing retained there: 404.
    r = device_request(broker, dev, "GET", f"/retainedMessage/{label(own + '/none')}")
    assert_error(dp, "GetRetainedMessage", r, 404, "ResourceNotFoundException")
    # GetRetainedMessage does not grant listing.
    r = device_request(broker, dev, "GET", "/retainedMessage?maxResults=10")
    assert_error(dp, "ListRetainedMessages", r, 403, "ForbiddenException")
    for t in (readable, secret, elsewhere):
        dp.publish(topic=t, retain=True, payload=b"")


def test_certificate_list_retained_messages_needs_the_action_on_star(broker, pki):
    dp = data(broker)
    t = topic("certlist")
    dp.publish(topic=t, qos=1, retain=True, payload=b"listed")
    lister = device_with_policy(broker, pki, allow("iot:ListRetainedMessages", "*"))
    # A resource other than `*` does not grant it (AWS: the resource is `*` only).
    narrow = device_with_policy(broker, pki, allow("iot:ListRetainedMessages", f"{ARN}:topic/*"))
    topics, token = [], None
    while True:
        q = {"maxResults": "50", **({"nextToken": token} if token else {})}
        r = device_request(broker, lister, "GET", f"/retainedMessage?{urlencode(q)}")
        assert r.status == 200, r
        body = r.json()
        topics += [x["topic"] for x in body["retainedTopics"]]
        token = body.get("nextToken")
        if not token:
            break
    assert t in topics
    r = device_request(broker, narrow, "GET", "/retainedMessage")
    assert_error(dp, "ListRetainedMessages", r, 403, "ForbiddenException")
    dp.publish(topic=t, retain=True, payload=b"")


def test_certificate_get_connection_and_list_subscriptions_are_forbidden(broker, pki):
    dp = data(broker)
    dev = device_with_policy(broker, pki, allow("iot:*", "*"))
    with Paho(broker, client_id=uid("dp-watched")) as c:
        c.connect()
        c.subscribe(topic("w"), 1)
        for path, op in [(f"/connections/{label(c.client_id)}", "GetConnection"),
                         (f"/connections/{label(c.client_id)}?includeSocketInformation=true", "GetConnection"),
                         (f"/connections/{label(c.client_id)}/subscriptions", "ListSubscriptions")]:
            r = device_request(broker, dev, "GET", path)
            assert_error(dp, op, r, 403, "ForbiddenException")
        # The client is untouched.
        assert dp.get_connection(clientId=c.client_id)["connected"] is True


def test_certificate_delete_connection_per_policy(broker, pki):
    dp = data(broker)
    allowed_id, other_id = uid("dp-kickable"), uid("dp-protected")
    dev = device_with_policy(broker, pki, allow("iot:DeleteConnection", f"{ARN}:client/{allowed_id}"))
    wt = topic("certwill")
    with subscriber(broker, wt) as watcher, \
            Paho(broker, client_id=allowed_id, will={"topic": wt, "payload": b"kicked", "qos": 1}) as a, \
            Paho(broker, client_id=other_id) as b:
        a.connect()
        b.connect()
        r = device_request(broker, dev, "DELETE", f"/connections/{label(other_id)}")
        assert_error(dp, "DeleteConnection", r, 403, "ForbiddenException")
        r = device_request(broker, dev, "DELETE", f"/connections/{label(allowed_id)}?preventWillMessage=false")
        assert r.status == 200, r
        assert rc_value(a.wait_disconnected()) == ADMINISTRATIVE_ACTION
        assert watcher.get().payload == b"kicked"
        assert dp.get_connection(clientId=other_id)["connected"] is True
        # Gone now: 404 (the caller may delete it, so it may know).
        session_gone(dp, allowed_id)
        r = device_request(broker, dev, "DELETE", f"/connections/{label(allowed_id)}")
        assert_error(dp, "DeleteConnection", r, 404, "ResourceNotFoundException")


def test_certificate_without_policies_may_do_nothing(broker, pki):
    dp = data(broker)
    dev = api_device(aws.iot(broker), pki)  # ACTIVE, no policy
    t = topic("nopol")
    dp.publish(topic=t, qos=1, retain=True, payload=b"x")
    r = device_request(broker, dev, "POST", f"/topics/{label(t)}?qos=1", b"x")
    assert_error(dp, "Publish", r, 403, "ForbiddenException")
    r = device_request(broker, dev, "GET", f"/retainedMessage/{label(t)}")
    assert_error(dp, "GetRetainedMessage", r, 403, "ForbiddenException")
    r = device_request(broker, dev, "GET", "/retainedMessage")
    assert_error(dp, "ListRetainedMessages", r, 403, "ForbiddenException")
    dp.publish(topic=t, retain=True, payload=b"")


def refused_or_unauthorized(broker, dp, dev: Device, alpn: str) -> str:
    """An unsigned publish presenting `dev`: the TLS handshake refuses it, or the request gets
    401 UnauthorizedException. Returns how."""
    try:
        r = device_request(broker, dev, "POST", f"/topics/{label(topic('refused'))}?qos=1", b"x", alpn=alpn)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException) as e:
        return f"TLS: {e!r}"
    assert_error(dp, "Publish", r, 401, "UnauthorizedException")
    return "401"


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
@pytest.mark.parametrize("alpn", ["x-amzn-http-ca", "http/1.1"])
def test_inactive_or_revoked_certificates_are_refused(broker, pki, status, alpn):
    iot, dp = aws.iot(broker), data(broker)
    own = own_prefix()
    dev = device_with_policy(broker, pki, allow("iot:*", "*"))
    with subscriber(broker, f"{own}/#") as s:
        r = device_request(broker, dev, "POST", f"/topics/{label(own + '/before')}?qos=1", b"before", alpn=alpn)
        assert r.status == 200, r
        assert s.get().payload == b"before"
        iot.update_certificate(certificateId=dev.id, newStatus=status)
        how = refused_or_unauthorized(broker, dp, dev, alpn)
        print(f"{status} certificate on {alpn}: {how}")
        # Nothing of it got through: an admin marker is the first thing the subscriber sees.
        try:
            device_request(broker, dev, "POST", f"/topics/{label(own + '/after')}?qos=1", b"after", alpn=alpn)
        except (ssl.SSLError, ConnectionError, http.client.HTTPException):
            pass
        dp.publish(topic=f"{own}/marker", qos=1, payload=b"marker")
        assert s.get().payload == b"marker"


def test_a_certificate_never_gets_a_control_plane_answer(broker, pki):
    iot = aws.iot(broker)
    dev = device_with_policy(broker, pki, allow("iot:*", "*"))
    thing = uid("dp-cp")
    iot.create_thing(thingName=thing)
    for method, path, body in [
        ("GET", "/things", None),
        ("GET", f"/things/{thing}", None),
        ("DELETE", f"/things/{thing}", None),
        ("GET", "/policies", None),
        ("GET", "/certificates", None),
        ("PUT", f"/certificates/{dev.id}?newStatus=REVOKED", None),
        ("POST", "/keys-and-certificate?setAsActive=true", b"{}"),
        ("GET", "/endpoint", None),
    ]:
        r = device_request(broker, dev, method, path, body,
                           headers={"Content-Type": "application/json"} if body else None)
        assert r.status in (403, 404), f"{method} {path} by a certificate: {r}"
        assert r.headers.get("x-amzn-errortype"), f"{method} {path}: no AWS error shape: {r}"
    # Nothing happened.
    assert iot.describe_thing(thingName=thing)["thingName"] == thing
    cert = iot.describe_certificate(certificateId=dev.id)["certificateDescription"]
    assert cert["status"] == "ACTIVE"
    iot.delete_thing(thingName=thing)
    # And its data-plane rights still work on the same connection kind.
    t = topic("cp-after")
    with subscriber(broker, t) as s:
        r = device_request(broker, dev, "POST", f"/topics/{label(t)}?qos=1", b"still a device")
        assert r.status == 200, r
        assert s.get().payload == b"still a device"
