"""Transports: MQTT over TLS on the mqtts port, MQTT by ALPN (x-amzn-mqtt-ca, mqtt) and
WebSocket at /mqtt on the https port; listeners declared anonymous in the test TOML."""

import ssl
import socket

import pytest

import mqttraw as r
from clients import MosquittoSub, Paho, endpoint, mosquitto_pub, raw, tls_context, topic, uid

TLS_TRANSPORTS = ["tls", "alpn-aws", "alpn-mqtt", "wss"]


@pytest.mark.parametrize("transport", TLS_TRANSPORTS)
@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_pubsub_over_transport(broker, transport, version):
    t = topic(transport)
    with Paho(broker, version=version, transport=transport) as sub, \
            Paho(broker, version=version, transport=transport) as pub:
        sub.connect()
        pub.connect()
        sub.subscribe(t, 2)
        for q in (0, 1, 2):
            pub.publish(t, f"over {transport} q{q}", qos=q)
        got = sub.get_n(3)
        assert [m.payload.decode() for m in got] == [f"over {transport} q{q}" for q in (0, 1, 2)]


@pytest.mark.parametrize("transport", TLS_TRANSPORTS)
def test_across_transports(broker, transport):
    """A message published on one transport reaches subscribers on every other."""
    t = topic("across")
    subs = {tr: Paho(broker, transport=tr) for tr in ["tcp", *TLS_TRANSPORTS]}
    try:
        for s in subs.values():
            s.connect()
            s.subscribe(t, 1)
        with Paho(broker, transport=transport, version=4) as pub:
            pub.connect()
            pub.publish(t, transport, qos=1)
        for tr, s in subs.items():
            assert s.get().payload == transport.encode(), tr
    finally:
        for s in subs.values():
            s.close()


@pytest.mark.ferrocore_only
@pytest.mark.parametrize("protocol", ["x-amzn-mqtt-ca", "mqtt"])
def test_alpn_negotiated(broker, protocol):
    c = raw(broker, transport="alpn-aws" if protocol == "x-amzn-mqtt-ca" else "alpn-mqtt")
    assert c.sock.selected_alpn_protocol() == protocol
    assert c.connect(uid("alpn")).reason == 0
    c.disconnect()


@pytest.mark.ferrocore_only
def test_https_port_still_serves_http_by_alpn(broker):
    """http/1.1 on the same port is HTTP, not MQTT: a plain GET gets an HTTP response."""
    ctx = tls_context(broker, ["http/1.1"])
    with socket.create_connection((broker.host, broker.port("https")), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=broker.host) as tls:
            assert tls.selected_alpn_protocol() in ("http/1.1", None)
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert tls.recv(16).startswith(b"HTTP/1.1 ")


def test_tls_certificate_verifies_against_root_ca(broker):
    """The server certificate chains to the root CA and names 127.0.0.1 and localhost."""
    port, _ = endpoint(broker, "tls")
    for name in ("127.0.0.1", "localhost"):
        ctx = tls_context(broker)
        with socket.create_connection((broker.host, port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=name) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_rejects_untrusting_client(broker):
    """Without our root CA, verification fails (the server doesn't present a public cert)."""
    port, _ = endpoint(broker, "tls")
    ctx = ssl.create_default_context()
    with socket.create_connection((broker.host, port), timeout=10) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(s, server_hostname="localhost")


@pytest.mark.parametrize("transport", ["tls", "alpn-aws", "alpn-mqtt"])
def test_mosquitto_clients_over_tls(broker, transport):
    t = topic("mtls")
    with MosquittoSub(broker, t, transport=transport) as sub:
        sub.ready()
        res = mosquitto_pub(broker, t, "secure", transport=transport)
        assert res.returncode == 0, res.stderr
        assert sub.lines(1) == [f"{t} secure"]


@pytest.mark.parametrize("transport", ["tls", "alpn-mqtt"])
def test_raw_v5_over_tls(broker, transport):
    t = topic()
    c = raw(broker, transport=transport)
    assert c.connect(uid("rawtls")).reason == 0
    c.subscribe((t, 2))
    c.publish(t, b"x", qos=2)
    assert c.next_publish().payload == b"x"
    c.disconnect()


def test_websocket_large_message(broker):
    t = topic("wsbig")
    payload = b"W" * 100_000
    with Paho(broker, transport="wss") as s, Paho(broker, transport="wss") as p:
        s.connect()
        p.connect()
        s.subscribe(t, 1)
        p.publish(t, payload, qos=1)
        assert s.get().payload == payload
