"""Limits that keep the broker alive (Ferrocore's own settings): maximum connections, per-IP
connect rate, redelivery cap, default session expiry for 3.1.1, AWS size limits, slow
subscribers, and the PROXY protocol on a listener that asks for it."""

import socket
import struct
import time

import pytest

import mqttraw as r
from brokers import Ferrocore
from clients import Paho, raw, topic, uid

pytestmark = pytest.mark.ferrocore_only


def try_connect(b, version=5):
    """(client, CONNACK reason), or (None, None) when the server closed the connection."""
    try:
        c = raw(b, version)
        ack = c.connect(uid("lim"))
        return c, ack.reason
    except (r.Closed, OSError, TimeoutError):
        return None, None


def test_max_connections(start_broker):
    b = start_broker(args=["--max-connections", "5"])
    held = []
    for _ in range(5):
        c, rc = try_connect(b)
        assert rc == 0
        held.append(c)
    extra, rc = try_connect(b)
    assert rc is None or rc != 0, "a sixth connection was admitted"
    # Closing one makes room again.
    held.pop().disconnect()
    deadline = time.monotonic() + 10
    while True:
        c, rc = try_connect(b)
        if rc == 0:
            c.disconnect()
            break
        assert time.monotonic() < deadline, "no room after a client left"
        time.sleep(0.1)
    for c in held:
        c.disconnect()


def local_non_loopback_ip():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_connect_rate_per_ip(tmp_path):
    """Loopback is exempt from the per-IP rate, so this uses the machine's own non-loopback
    address, on a listener bound to it alone."""
    ip = local_non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address")
    b = Ferrocore(
        tmp_path / "rate",
        config=f'[[listener]]\nname = "lan"\ntransport = "mqtt"\naddress = "{ip}:0"\nanonymous = true\n',
        args=["--max-connect-rate-per-ip", "3"],
    )
    b.start()
    try:
        port = b.listener_port("lan")
        admitted = refused = 0
        for _ in range(30):
            try:
                c = r.RawClient(ip, port)
                if c.connect(uid("rate")).reason == 0:
                    admitted += 1
                else:
                    refused += 1
                c.close()
            except (r.Closed, OSError, TimeoutError):
                refused += 1
        assert admitted >= 3 and refused >= 1, (admitted, refused)
    finally:
        b.stop()


def test_redelivery_cap(start_broker):
    """--max-redeliveries 2: a QoS 1 message never acknowledged is dropped after a bounded
    number of resends on resumption."""
    b = start_broker(args=["--max-redeliveries", "2"])
    cid, t = uid("redeliv"), topic()
    c = raw(b)
    c.connect(cid, props=[(r.SESSION_EXPIRY, 300)])
    c.subscribe((t, 1))
    with Paho(b) as p:
        p.connect()
        p.publish(t, b"poison", qos=1)
    sends = 0
    for _ in range(10):
        try:
            c.next_publish(timeout=3, auto_ack=False)
            sends += 1
        except TimeoutError:
            break
        c.close()
        c = raw(b)
        assert c.connect(cid, clean=False, props=[(r.SESSION_EXPIRY, 300)]).session_present
    c.disconnect()
    assert 1 <= sends <= 4, f"sent {sends} times"


def test_v311_default_session_expiry(start_broker):
    b = start_broker(args=["--default-session-expiry", "1s"])
    cid = uid("defexp")
    c = raw(b, 4)
    c.connect(cid, clean=False)
    c.subscribe((topic(), 1))
    c.disconnect()
    time.sleep(3)
    c = raw(b, 4)
    assert not c.connect(cid, clean=False).session_present
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_client_id_longer_than_128_bytes_rejected(broker, version):
    c = raw(broker, version)
    ok = c.connect("c" * 128)
    assert ok.reason == 0
    c.disconnect()
    c = raw(broker, version)
    try:
        ack = c.connect("c" * 129)
        assert ack.reason in (0x02, 0x85), ack  # identifier rejected / Client Identifier not valid
    except r.Closed:
        pass


def test_topic_with_more_than_7_slashes_rejected(broker):
    base = uid("slashes")
    ok = f"{base}/1/2/3/4/5/6/7"
    too_deep = f"{base}/1/2/3/4/5/6/7/8"
    c = raw(broker)
    c.connect(uid("deep"))
    assert c.subscribe((ok, 1)).reasons == [1]
    assert c.subscribe((too_deep, 1)).reasons[0] >= 0x80
    assert c.publish(ok, b"x", qos=1).reason < 0x80
    c.send(r.publish(too_deep, b"x", qos=1, pid=999))
    p = c.expect(lambda q: q.type in (r.PUBACK, r.DISCONNECT) and q.pid in (None, 999))
    assert p.reason >= 0x80, p
    c.close()


def test_slow_subscriber_does_not_stop_the_broker(start_broker):
    """A subscriber that never reads: QoS 0 traffic to it is dropped once its queue is full;
    other subscribers keep getting everything and memory stays bounded."""
    b = start_broker()
    t = topic("slow")
    stuck = socket.create_connection((b.host, b.port("mqtt")))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(r.connect(uid("stuck")) + r.subscribe(1, [(t, 0)]))
    time.sleep(0.5)  # let the subscription land; it reads nothing from here on
    payload = b"p" * 1024
    with Paho(b) as healthy:
        healthy.connect()
        healthy.subscribe(t, 0)
        healthy.subscribe(t + "/end", 1)
        c = raw(b)
        c.connect(uid("flood"))
        for _ in range(30_000):  # 30 MB towards a reader that never reads
            c.send(r.publish(t, payload))
        c.publish(t + "/end", b"end", qos=1)
        got = healthy.until(t + "/end", timeout=60)
        assert len(got) > 0
        c.disconnect()
    rss = int(next(l for l in open(f"/proc/{b.proc.pid}/status") if l.startswith("VmRSS:")).split()[1])
    assert rss < 512 * 1024, f"RSS {rss} kB"
    stuck.close()


def proxy_v2_header(src: str, sport: int, dst: str, dport: int) -> bytes:
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) + addr


def test_proxy_protocol_v2_listener(tmp_path):
    b = Ferrocore(
        tmp_path / "proxy",
        config='[[listener]]\nname = "behind-lb"\ntransport = "mqtt"\naddress = "127.0.0.1:0"\n'
               "proxy_protocol = true\nanonymous = true\n",
        args=["--log-level", "debug"],
    )
    b.start()
    try:
        port = b.listener_port("behind-lb")
        c = r.RawClient(b.host, port)
        c.send(proxy_v2_header("192.0.2.7", 4242, "127.0.0.1", port))
        assert c.connect(uid("proxied")).reason == 0
        c.disconnect()
        # Without the header the listener refuses the connection.
        c = r.RawClient(b.host, port)
        c.send(r.connect(uid("direct")))
        got = c.wait_closed(timeout=30)
        assert not any(p.type == r.CONNACK and p.reason == 0 for p in got)
        # The client's address survives the proxy (it is what the broker logs).
        deadline = time.monotonic() + 10
        while "192.0.2.7:4242" not in b.log():
            assert time.monotonic() < deadline, "the PROXY header's source address is not used"
            time.sleep(0.1)
    finally:
        b.stop()
