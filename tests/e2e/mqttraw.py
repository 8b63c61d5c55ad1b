"""A small, strict MQTT 3.1.1 / 5 client over raw sockets, for tests that need to see (or send)
exactly what is on the wire: reason codes, properties, topic aliases, malformed packets.

It is deliberately independent of the broker's codec: encoding follows the OASIS specifications
directly.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = (
    8, 9, 10, 11, 12, 13, 14, 15,
)
NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
    7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
    12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# MQTT 5 property identifiers.
PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTH_METHOD = 0x15
AUTH_DATA = 0x16
REQUEST_PROBLEM_INFO = 0x17
WILL_DELAY = 0x18
REQUEST_RESPONSE_INFO = 0x19
RESPONSE_INFO = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUB_AVAILABLE = 0x28
SUB_ID_AVAILABLE = 0x29
SHARED_SUB_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTY_TYPES = {
    PAYLOAD_FORMAT: _BYTE, MESSAGE_EXPIRY: _U32, CONTENT_TYPE: _STR, RESPONSE_TOPIC: _STR,
    CORRELATION_DATA: _BIN, SUBSCRIPTION_ID: _VARINT, SESSION_EXPIRY: _U32,
    ASSIGNED_CLIENT_ID: _STR, SERVER_KEEP_ALIVE: _U16, AUTH_METHOD: _STR, AUTH_DATA: _BIN,
    REQUEST_PROBLEM_INFO: _BYTE, WILL_DELAY: _U32, REQUEST_RESPONSE_INFO: _BYTE,
    RESPONSE_INFO: _STR, SERVER_REFERENCE: _STR, REASON_STRING: _STR, RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE, RETAIN_AVAILABLE: _BYTE,
    USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32, WILDCARD_SUB_AVAILABLE: _BYTE,
    SUB_ID_AVAILABLE: _BYTE, SHARED_SUB_AVAILABLE: _BYTE,
}

# Subscription options (MQTT 5 SUBSCRIBE).
NO_LOCAL = 0x04
RETAIN_AS_PUBLISHED = 0x08


def sub_opts(qos: int = 0, no_local: bool = False, rap: bool = False, retain_handling: int = 0) -> int:
    return qos | (NO_LOCAL if no_local else 0) | (RETAIN_AS_PUBLISHED if rap else 0) | (retain_handling << 4)


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


# ---------------------------------------------------------------------------------------------
# Encoding


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def encode_props(props: list[tuple[int, Any]] | None) -> bytes:
    body = bytearray()
    for pid, value in props or []:
        body += varint(pid)
        kind = PROPERTY_TYPES[pid]
        if kind == _BYTE:
            body.append(value)
        elif kind == _U16:
            body += struct.pack("!H", value)
        elif kind == _U32:
            body += struct.pack("!I", value)
        elif kind == _VARINT:
            body += varint(value)
        elif kind in (_STR, _BIN):
            body += mqtt_str(value)
        else:
            body += mqtt_str(value[0]) + mqtt_str(value[1])
    return varint(len(body)) + bytes(body)


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect(
    client_id: str = "",
    version: int = 5,
    clean: bool = True,
    keepalive: int = 60,
    props: list | None = None,
    will: dict | None = None,
    username: str | None = None,
    password: bytes | None = None,
) -> bytes:
    """CONNECT. `version` is 4 (3.1.1) or 5. `will`: topic, payload, qos, retain, props."""
    flags = 0x02 if clean else 0
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = mqtt_str("MQTT") + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        body += encode_props(props)
    body += mqtt_str(client_id)
    if will is not None:
        if version == 5:
            body += encode_props(will.get("props"))
        body += mqtt_str(will["topic"]) + mqtt_str(will.get("payload", b""))
    if username is not None:
        body += mqtt_str(username)
    if password is not None:
        body += mqtt_str(password)
    return packet(CONNECT, 0, body)


def publish(
    topic: str,
    payload: bytes | str = b"",
    qos: int = 0,
    retain: bool = False,
    pid: int | None = None,
    dup: bool = False,
    props: list | None = None,
    version: int = 5,
) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = mqtt_str(topic)
    if qos:
        body += struct.pack("!H", pid or 1)
    if version == 5:
        body += encode_props(props)
    return packet(PUBLISH, flags, body + payload)


def ack(ptype: int, pid: int, reason: int | None = None, props: list | None = None, version: int = 5) -> bytes:
    """PUBACK, PUBREC, PUBREL or PUBCOMP."""
    body = struct.pack("!H", pid)
    if version == 5 and (reason or props):
        body += bytes([reason or 0])
        if props:
            body += encode_props(props)
    return packet(ptype, 2 if ptype == PUBREL else 0, body)


def subscribe(pid: int, filters: list[tuple[str, int]], props: list | None = None, version: int = 5) -> bytes:
    body = struct.pack("!H", pid)
    if version == 5:
        body += encode_props(props)
    for f, opts in filters:
        body += mqtt_str(f) + bytes([opts])
    return packet(SUBSCRIBE, 2, body)


def unsubscribe(pid: int, filters: list[str], props: list | None = None, version: int = 5) -> bytes:
    body = struct.pack("!H", pid)
    if version == 5:
        body += encode_props(props)
    for f in filters:
        body += mqtt_str(f)
    return packet(UNSUBSCRIBE, 2, body)


def pingreq() -> bytes:
    return b"\xc0\x00"


def disconnect(reason: int = 0, props: list | None = None, version: int = 5) -> bytes:
    if version == 5 and (reason or props):
        return packet(DISCONNECT, 0, bytes([reason]) + encode_props(props))
    return b"\xe0\x00"


# ---------------------------------------------------------------------------------------------
# Decoding


@dataclass
class Packet:
    type: int
    flags: int = 0
    raw: bytes = b""
    pid: int | None = None
    reason: int | None = None
    reasons: list[int] = field(default_factory=list)
    props: list[tuple[int, Any]] = field(default_factory=list)
    session_present: bool = False
    topic: str = ""
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False

    @property
    def name(self) -> str:
        return NAMES.get(self.type, f"type{self.type}")

    def prop(self, pid: int, default: Any = None) -> Any:
        for k, v in self.props:
            if k == pid:
                return v
        return default

    def props_all(self, pid: int) -> list[Any]:
        return [v for k, v in self.props if k == pid]

    def __repr__(self) -> str:  # short and readable in assertion messages
        bits = [self.name]
        if self.type == PUBLISH:
            bits += [f"topic={self.topic!r}", f"qos={self.qos}", f"retain={self.retain}", f"payload={self.payload[:40]!r}"]
        if self.pid is not None:
            bits.append(f"pid={self.pid}")
        if self.reason is not None:
            bits.append(f"reason=0x{self.reason:02x}")
        if self.reasons:
            bits.append("reasons=[" + ",".join(f"0x{r:02x}" for r in self.reasons) + "]")
        if self.props:
            bits.append(f"props={self.props}")
        return "<" + " ".join(bits) + ">"


class _Reader:
    def __init__(self, data: bytes):
        self.d, self.i = data, 0

    def left(self) -> int:
        return len(self.d) - self.i

    def byte(self) -> int:
        self.i += 1
        return self.d[self.i - 1]

    def u16(self) -> int:
        self.i += 2
        return struct.unpack("!H", self.d[self.i - 2 : self.i])[0]

    def u32(self) -> int:
        self.i += 4
        return struct.unpack("!I", self.d[self.i - 4 : self.i])[0]

    def varint(self) -> int:
        mult, n = 1, 0
        while True:
            b = self.byte()
            n += (b & 0x7F) * mult
            if not b & 0x80:
                return n
            mult *= 128

    def bin(self) -> bytes:
        n = self.u16()
        self.i += n
        return self.d[self.i - n : self.i]

    def str(self) -> str:
        return self.bin().decode()

    def rest(self) -> bytes:
        r = self.d[self.i :]
        self.i = len(self.d)
        return r

    def props(self) -> list[tuple[int, Any]]:
        end = self.varint()
        end += self.i
        out = []
        while self.i < end:
            pid = self.varint()
            kind = PROPERTY_TYPES.get(pid)
            if kind is None:
                raise ValueError(f"unknown property 0x{pid:02x}")
            value = {
                _BYTE: self.byte, _U16: self.u16, _U32: self.u32, _VARINT: self.varint,
                _STR: self.str, _BIN: self.bin, _PAIR: lambda: (self.str(), self.str()),
            }[kind]()
            out.append((pid, value))
        return out


def decode(first: int, body: bytes, version: int) -> Packet:
    ptype, flags = first >> 4, first & 0x0F
    p = Packet(type=ptype, flags=flags, raw=body)
    r = _Reader(body)
    v5 = version == 5
    if ptype == CONNACK:
        p.session_present = bool(r.byte() & 1)
        p.reason = r.byte()
        if v5 and r.left():
            p.props = r.props()
    elif ptype == PUBLISH:
        p.qos, p.retain, p.dup = (flags >> 1) & 3, bool(flags & 1), bool(flags & 8)
        p.topic = r.str()
        if p.qos:
            p.pid = r.u16()
        if v5:
            p.props = r.props()
        p.payload = r.rest()
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.pid = r.u16()
        p.reason = 0
        if v5 and r.left():
            p.reason = r.byte()
            if r.left():
                p.props = r.props()
    elif ptype in (SUBACK, UNSUBACK):
        p.pid = r.u16()
        if v5:
            p.props = r.props()
        p.reasons = list(r.rest())
    elif ptype in (DISCONNECT, AUTH):
        p.reason = 0
        if v5 and r.left():
            p.reason = r.byte()
            if r.left():
                p.props = r.props()
    return p


# ---------------------------------------------------------------------------------------------
# The client


class RawClient:
    """One connection. Incoming packets not asked for yet are kept in order in `pending`."""

    def __init__(
        self,
        host: str,
        port: int,
        version: int = 5,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,
    ):
        self.version = version
        self.timeout = timeout
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            s = tls.wrap_socket(s, server_hostname=server_hostname or host)
        self.sock = s
        self.buf = bytearray()
        self.pending: list[Packet] = []
        self.closed = False
        self._next_pid = 0
        # Topic aliases the server has set towards us (MQTT 5).
        self.inbound_aliases: dict[int, str] = {}

    # -- plumbing --

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet from the server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet from the server in time") from None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as e:
            if isinstance(e, socket.timeout):
                raise
            self.closed = True
            raise Closed(repr(e)) from None
        if not chunk:
            self.closed = True
            raise Closed("EOF")
        self.buf += chunk

    def _read_packet(self, deadline: float) -> Packet:
        while True:
            if len(self.buf) >= 2:
                mult, n, i = 1, 0, 1
                complete = False
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    n += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        complete = True
                        break
                if complete and len(self.buf) >= i + n:
                    first, body = self.buf[0], bytes(self.buf[i : i + n])
                    del self.buf[: i + n]
                    p = decode(first, body, self.version)
                    if p.type == PUBLISH and self.version == 5:
                        alias = p.prop(TOPIC_ALIAS)
                        if alias is not None:
                            if p.topic:
                                self.inbound_aliases[alias] = p.topic
                            else:
                                p.topic = self.inbound_aliases.get(alias, "")
                    return p
            self._fill(deadline)

    def recv(self, timeout: float | None = None) -> Packet:
        if self.pending:
            return self.pending.pop(0)
        return self._read_packet(time.monotonic() + (timeout or self.timeout))

    def expect(self, pred: Callable[[Packet], bool] | int, timeout: float | None = None) -> Packet:
        """The first packet (pending or new) matching `pred` (a packet type or a predicate);
        others are kept in `pending`."""
        match = (lambda p: p.type == pred) if isinstance(pred, int) else pred
        for i, p in enumerate(self.pending):
            if match(p):
                return self.pending.pop(i)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            p = self._read_packet(deadline)
            if match(p):
                return p
            self.pending.append(p)

    def wait_closed(self, timeout: float = 10.0) -> list[Packet]:
        """Read until the server closes the connection; returns what it sent before closing.
        Raises TimeoutError if it is still open after `timeout` seconds."""
        got = list(self.pending)
        self.pending.clear()
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self._read_packet(deadline))
            except Closed:
                return got

    def close(self) -> None:
        """Close abruptly (no DISCONNECT)."""
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def pid(self) -> int:
        self._next_pid = self._next_pid % 65535 + 1
        return self._next_pid

    # -- MQTT --

    def connect(self, client_id: str = "", **kw) -> Packet:
        self.send(connect(client_id, version=self.version, **kw))
        return self.expect(CONNACK)

    def subscribe(self, *filters: tuple[str, int] | str, props: list | None = None, qos: int = 0) -> Packet:
        fl = [(f, qos) if isinstance(f, str) else f for f in filters]
        pid = self.pid()
        self.send(subscribe(pid, fl, props=props, version=self.version))
        return self.expect(lambda p: p.type == SUBACK and p.pid == pid)

    def unsubscribe(self, *filters: str) -> Packet:
        pid = self.pid()
        self.send(unsubscribe(pid, list(filters), version=self.version))
        return self.expect(lambda p: p.type == UNSUBACK and p.pid == pid)

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False, props: list | None = None) -> Packet | None:
        """Publish and complete the QoS flow; returns the PUBACK / PUBCOMP (or PUBREC when it
        carries a failure reason code)."""
        pid = self.pid() if qos else None
        self.send(publish(topic, payload, qos=qos, retain=retain, pid=pid, props=props, version=self.version))
        if qos == 1:
            return self.expect(lambda p: p.type == PUBACK and p.pid == pid)
        if qos == 2:
            rec = self.expect(lambda p: p.type == PUBREC and p.pid == pid)
            if rec.reason and rec.reason >= 0x80:
                return rec
            self.send(ack(PUBREL, pid, version=self.version))
            return self.expect(lambda p: p.type == PUBCOMP and p.pid == pid)
        return None

    def next_publish(self, timeout: float | None = None, auto_ack: bool = True) -> Packet:
        p = self.expect(PUBLISH, timeout)
        if auto_ack:
            self.ack(p)
        return p

    def ack(self, p: Packet) -> None:
        if p.qos == 1:
            self.send(ack(PUBACK, p.pid, version=self.version))
        elif p.qos == 2:
            self.send(ack(PUBREC, p.pid, version=self.version))
            self.expect(lambda q: q.type == PUBREL and q.pid == p.pid)
            self.send(ack(PUBCOMP, p.pid, version=self.version))

    def ping(self) -> Packet:
        self.send(pingreq())
        return self.expect(PINGRESP)

    def disconnect(self, reason: int = 0, props: list | None = None, wait: bool = True) -> None:
        """Send DISCONNECT and (with `wait`) let the server close the connection, so that it has
        processed the DISCONNECT before whatever the test does next."""
        try:
            self.send(disconnect(reason, props, version=self.version))
            if wait:
                self.wait_closed(timeout=self.timeout)
        except (OSError, TimeoutError, Closed):
            pass
        self.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
