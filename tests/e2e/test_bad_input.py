"""Bad input on raw sockets: malformed packets, oversize remaining length, first packet not
CONNECT, second CONNECT, silence before CONNECT, thousands of idle and half-open connections.
Each gets the right reason code or a clean close, and the broker keeps serving."""

import os
import resource
import socket
import struct
import time

import pytest

import mqttraw as r
from clients import Paho, raw, topic, uid


@pytest.fixture
def still_serving(broker):
    yield
    with Paho(broker) as c:  # the broker survived whatever the test sent
        c.connect()
        t = topic("alive")
        c.subscribe(t, 1)
        c.publish(t, b"ok", qos=1)
        assert c.get().payload == b"ok"


def closed_with(c, allowed_reasons=()):
    """The server closes; if it sent anything first it is a DISCONNECT with an allowed reason
    (or a failed CONNACK)."""
    got = c.wait_closed(timeout=15)
    for p in got:
        if p.type == r.DISCONNECT:
            assert p.reason in allowed_reasons, f"DISCONNECT reason 0x{p.reason:02x}, wanted {allowed_reasons}"
        else:
            assert p.type == r.CONNACK and p.reason != 0, f"unexpected {p}"
    return got


def tcp(broker):
    s = socket.create_connection((broker.host, broker.port("mqtt")), timeout=15)
    return s


# -- before CONNECT --------------------------------------------------------------------------


@pytest.mark.parametrize("first", [
    pytest.param(r.pingreq(), id="pingreq"),
    pytest.param(r.publish("a/b", b"x"), id="publish"),
    pytest.param(r.subscribe(1, [("a", 0)], version=4), id="subscribe"),
    pytest.param(b"\xe0\x00", id="disconnect"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
    pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", id="tls-hello"),
])
def test_first_packet_not_connect(broker, still_serving, first):
    c = raw(broker, 4)
    c.send(first)
    got = c.wait_closed(timeout=15)
    assert not any(p.type == r.CONNACK and p.reason == 0 for p in got), got


@pytest.mark.parametrize("connect", [
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTX") + b"\x04\x02\x00\x3c" + r.mqtt_str("x")), id="bad-protocol-name"),
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x04\x03\x00\x3c" + r.mqtt_str("x")), id="reserved-flag"),
    pytest.param(r.packet(r.CONNECT, 1, r.mqtt_str("MQTT") + b"\x04\x02\x00\x3c" + r.mqtt_str("x")), id="fixed-header-flags"),
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x04\x02\x00\x3c"), id="truncated"),
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x04\x02\x00\x3c" + b"\x00\x03\xff\xfe\xfd"), id="bad-utf8-client-id"),
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x04\x42\x00\x3c" + r.mqtt_str("x")), id="password-without-username"),
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x05\x02\x00\x3c" + b"\x05\x11\x00" + r.mqtt_str("x")), id="v5-truncated-properties"),
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x05\x02\x00\x3c" + b"\x02\x99\x00" + r.mqtt_str("x")), id="v5-unknown-property"),
    pytest.param(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x05\x02\x00\x3c" + b"\x06\x11\x00\x00\x00\x01\x11" + r.mqtt_str("x")), id="v5-duplicate-property"),
])
def test_malformed_connect(broker, still_serving, connect):
    c = raw(broker, 5)
    c.send(connect)
    got = c.wait_closed(timeout=15)
    assert not any(p.type == r.CONNACK and p.reason == 0 for p in got), got


def test_unsupported_protocol_level(broker, still_serving):
    c = raw(broker, 4)
    c.send(r.packet(r.CONNECT, 0, r.mqtt_str("MQTT") + b"\x07\x02\x00\x3c" + r.mqtt_str(uid("lvl"))))
    got = c.wait_closed(timeout=15)
    # 3.1.1: CONNACK 0x01 (unacceptable protocol version) or close; 5: 0x84.
    assert all(p.type == r.CONNACK and p.reason in (0x01, 0x84) for p in got), got


def test_second_connect_v5(broker, still_serving):
    c = raw(broker)
    assert c.connect(uid("twice")).reason == 0
    c.send(r.connect(uid("twice-again")))
    closed_with(c, (0x82,))  # Protocol Error


def test_second_connect_v311(broker, still_serving):
    c = raw(broker, 4)
    assert c.connect(uid("twice")).reason == 0
    c.send(r.connect(uid("twice-again"), version=4))
    closed_with(c)


# -- after CONNECT ---------------------------------------------------------------------------


def connected(broker, version=5):
    c = raw(broker, version)
    assert c.connect(uid("bad")).reason == 0
    return c


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("data", [
    pytest.param(b"\x30\xff\xff\xff\xff\x01", id="remaining-length-5-bytes"),
    pytest.param(b"\x36\x05\x00\x01a\x00\x01", id="publish-qos3"),
    pytest.param(b"\x80\x06\x00\x01\x00\x01a\x00", id="subscribe-flags-0"),
    pytest.param(b"\x82\x02\x00\x01", id="subscribe-no-filters"),
    pytest.param(b"\x82\x06\x00\x01\x00\x01a\x03", id="subscribe-qos3"),
    pytest.param(b"\xa2\x02\x00\x01", id="unsubscribe-no-filters"),
    pytest.param(b"\x00\x00", id="reserved-type-0"),
    pytest.param(b"\x32\x05\x00\x01a\x00\x00", id="publish-packet-id-0"),
])
def test_malformed_packet_closes(broker, still_serving, version, data):
    c = connected(broker, version)
    c.send(data)
    closed_with(c, (0x81, 0x82))


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("name", [
    pytest.param("a/+/b", id="plus"),
    pytest.param("a/#", id="hash"),
    pytest.param("", id="empty"),
    pytest.param("a\x00b", id="nul"),
])
def test_invalid_topic_name_in_publish(broker, still_serving, version, name):
    c = connected(broker, version)
    c.send(r.publish(name, b"x", qos=1, pid=1, version=version))
    got = c.wait_closed(timeout=15)
    for p in got:
        assert p.type == r.DISCONNECT and p.reason in (0x81, 0x82, 0x90), p


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_invalid_utf8_topic(broker, still_serving, version):
    c = connected(broker, version)
    body = b"\x00\x03\xc3\x28a" + b"\x00\x01" + (b"\x00" if version == 5 else b"") + b"x"
    c.send(r.packet(r.PUBLISH, 2, body))
    closed_with(c, (0x81, 0x82, 0x90))


def test_oversize_remaining_length_rejected_from_header(start_broker):
    """A PUBLISH announcing 1 MB on a broker limited to 10 kB is refused from the fixed header:
    the server does not wait for the body."""
    b = start_broker(max_packet_size=10_000)
    for version in (4, 5):
        c = raw(b, version)
        assert c.connect(uid("big")).reason == 0
        c.send(b"\x30" + r.varint(1_000_000) + b"\x00\x01a")
        closed_with(c, (0x95,))  # Packet too large


@pytest.mark.ferrocore_only
def test_oversize_default_limit(broker, still_serving):
    """Default limits (AWS's): a 200 MB announcement is refused at once."""
    c = connected(broker)
    c.send(b"\x30" + r.varint(200_000_000))
    closed_with(c, (0x95,))


@pytest.mark.ferrocore_only
def test_payload_over_128kb_refused(broker, still_serving):
    c = connected(broker)
    c.send(r.publish(topic(), b"x" * (128 * 1024 + 1), qos=1, pid=1))
    got = c.wait_closed(timeout=15)
    assert got and got[-1].type == r.DISCONNECT and got[-1].reason in (0x95, 0x97), got


def test_client_disconnects_mid_packet(broker, still_serving):
    c = connected(broker)
    c.send(r.publish(topic(), b"x" * 1000, qos=1, pid=1)[:500])
    c.close()


# -- silence and crowds ----------------------------------------------------------------------


@pytest.mark.ferrocore_only
def test_silent_connection_dropped(start_broker):
    b = start_broker(connect_timeout=1)
    silent = socket.create_connection((b.host, b.port("mqtt")), timeout=30)
    partial = socket.create_connection((b.host, b.port("mqtt")), timeout=30)
    partial.sendall(r.connect(uid("partial"))[:5])
    tls_silent = socket.create_connection((b.host, b.port("mqtts")), timeout=30)
    for s in (silent, partial, tls_silent):
        s.settimeout(30)
        try:
            assert s.recv(100) == b""  # EOF: the server closed it
        except ConnectionResetError:
            pass
        s.close()


def raise_fd_limit():
    """Thousands of sockets in this process, and in the broker started after this (it inherits
    the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 16384)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 8000:
        pytest.skip(f"file descriptor limit {want} too low")


def works(b):
    c = raw(b)
    assert c.connect(uid("works")).reason == 0
    t = topic()
    c.subscribe((t, 1))
    c.publish(t, b"fine", qos=1)
    assert c.next_publish().payload == b"fine"
    c.disconnect()


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.ferrocore_only
def test_thousands_of_idle_and_half_open_connections(start_broker):
    raise_fd_limit()
    b = start_broker(connect_timeout=2, args=["--max-connect-rate-per-ip", "0"])
    pid = b.proc.pid
    baseline = fd_count(pid)
    n = 3000
    socks = []
    try:
        for i in range(n):
            s = socket.socket()
            s.setblocking(True)
            s.connect((b.host, b.port("mqtt")))
            kind = i % 3
            if kind == 1:
                s.sendall(r.connect(uid("half"))[:7])  # half a CONNECT, then nothing
            elif kind == 2:
                s.shutdown(socket.SHUT_WR)  # half-closed
            socks.append(s)
        # The broker still serves a normal client while they hang around. (A raw client:
        # paho's select() loop cannot handle descriptors above 1024.)
        works(b)
        assert rss_kb(pid) < 512 * 1024, "RSS above 512 MB with 3000 idle connections"
        # After the connect timeout they are all gone on the server side.
        deadline = time.monotonic() + 60
        while fd_count(pid) > baseline + 50:
            assert time.monotonic() < deadline, f"{fd_count(pid)} fds open (baseline {baseline})"
            time.sleep(0.5)
    finally:
        for s in socks:
            s.close()
    assert b.alive()


@pytest.mark.ferrocore_only
def test_thousands_of_idle_mqtt_clients(start_broker):
    """Connected, idle MQTT clients (keep alive 0) are kept, and the broker still works."""
    raise_fd_limit()
    b = start_broker(args=["--max-connect-rate-per-ip", "0"])
    pid = b.proc.pid
    clients = []
    try:
        for i in range(2000):
            s = socket.create_connection((b.host, b.port("mqtt")), timeout=30)
            s.sendall(r.connect(uid(f"idle{i}"), version=4, keepalive=0))
            clients.append(s)
        for s in clients:
            assert s.recv(4) == b"\x20\x02\x00\x00"  # CONNACK accepted
        works(b)
        assert rss_kb(pid) < 512 * 1024
    finally:
        for s in clients:
            s.close()
    assert b.alive()
