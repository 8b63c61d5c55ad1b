"""Client helpers: a synchronous wrapper around paho-mqtt 2.x, TLS contexts for each transport,
raw clients, unique names."""

from __future__ import annotations

import queue
import ssl
import subprocess
import threading
import uuid
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

import mqttraw
from brokers import BrokerBase

WAIT = 10.0  # generous: only to avoid hangs, never a timing assertion

# Transports (the `transport` argument of Paho, raw and endpoint):
#   tcp        plain MQTT on the mqtt port
#   tls        MQTT over TLS on the mqtts port
#   alpn-aws   MQTT over TLS with ALPN x-amzn-mqtt-ca on the https port
#   alpn-mqtt  MQTT over TLS with ALPN mqtt on the https port
#   wss        MQTT over WebSocket (TLS) at /mqtt on the https port


def uid(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def topic(prefix: str = "t") -> str:
    return f"e2e/{uuid.uuid4().hex[:12]}/{prefix}"


def tls_context(broker: BrokerBase, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def endpoint(broker: BrokerBase, transport: str) -> tuple[int, ssl.SSLContext | None]:
    if transport == "tcp":
        return broker.port("mqtt"), None
    if transport == "tls":
        return broker.port("mqtts"), tls_context(broker)
    if transport in ("alpn-aws", "alpn-mqtt"):
        alpn = ["x-amzn-mqtt-ca"] if transport == "alpn-aws" else ["mqtt"]
        if broker.kind == "mosquitto":
            # Mosquitto has no ALPN-multiplexed port; its TLS port ignores ALPN, which at least
            # exercises the client side of the test.
            return broker.port("mqtts"), tls_context(broker, alpn)
        return broker.port("https"), tls_context(broker, alpn)
    if transport == "wss":
        return broker.port("https"), tls_context(broker)
    raise ValueError(transport)


def raw(broker: BrokerBase, version: int = 5, transport: str = "tcp", timeout: float = WAIT) -> mqttraw.RawClient:
    port, ctx = endpoint(broker, transport)
    assert transport != "wss", "raw clients speak TCP/TLS only"
    return mqttraw.RawClient(broker.host, port, version=version, tls=ctx, timeout=timeout)


def props(ptype: int, **kw: Any) -> Properties:
    """paho Properties, e.g. props(PacketTypes.PUBLISH, MessageExpiryInterval=5,
    UserProperty=[("a", "1")])."""
    p = Properties(ptype)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


@dataclass
class Connack:
    reason: ReasonCode | int
    session_present: bool
    properties: Properties | None

    @property
    def rc(self) -> int:
        return self.reason.value if isinstance(self.reason, ReasonCode) else int(self.reason)


class Paho:
    """A paho-mqtt client driven synchronously: connect/subscribe/publish wait for their
    acknowledgement, received messages go to a queue."""

    def __init__(
        self,
        broker: BrokerBase,
        client_id: str | None = None,
        version: int = 5,
        transport: str = "tcp",
        clean: bool = True,
        session_expiry: int | None = None,
        keepalive: int = 60,
        will: dict | None = None,
        connect_properties: Properties | None = None,
        username: str | None = None,
        password: str | None = None,
    ):
        self.broker = broker
        self.version = version
        self.client_id = uid("paho") if client_id is None else client_id
        self.transport = transport
        self.clean = clean
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.connect_properties = connect_properties
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        kw: dict[str, Any] = {}
        if version != 5:
            kw["clean_session"] = clean
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=proto,
            transport="websockets" if transport == "wss" else "tcp",
            reconnect_on_failure=False,
            **kw,
        )
        port, ctx = endpoint(broker, transport)
        self.port = port
        if ctx is not None:
            c.tls_set_context(ctx)
        if transport == "wss":
            c.ws_set_options(path="/mqtt")
        if will:
            wp = will.get("properties")
            c.will_set(will["topic"], will.get("payload", b""), will.get("qos", 0), will.get("retain", False), properties=wp)
        if username is not None:
            c.username_pw_set(username, password)
        self.c = c
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connack: queue.Queue[Connack] = queue.Queue()
        self._subacks: dict[int, queue.Queue] = {}
        self._unsubacks: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.disconnected = threading.Event()
        self.disconnect_reason: ReasonCode | None = None
        self.disconnect_properties: Properties | None = None
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_unsubscribe = self._on_unsubscribe
        c.on_disconnect = self._on_disconnect

    # -- callbacks (paho's thread) --

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self._connack.put(Connack(reason_code, bool(flags.session_present), properties))

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _q(self, table: dict, mid: int) -> queue.Queue:
        with self._lock:
            return table.setdefault(mid, queue.Queue())

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self._q(self._subacks, mid).put(reason_codes)

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):
        self._q(self._unsubacks, mid).put(reason_codes)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_reason = reason_code
        self.disconnect_properties = properties
        self.disconnected.set()
        # Unblock anyone waiting for a CONNACK that will never come.
        self._connack.put(Connack(reason_code, False, properties))

    # -- API --

    def connect(self, expect_success: bool = True) -> Connack:
        kw: dict[str, Any] = {}
        cp = self.connect_properties
        if self.version == 5:
            kw["clean_start"] = self.clean
            if self.session_expiry is not None:
                cp = cp or Properties(PacketTypes.CONNECT)
                cp.SessionExpiryInterval = self.session_expiry
            if cp is not None:
                kw["properties"] = cp
        self.disconnected.clear()
        self.c.connect(self.broker.host, self.port, keepalive=self.keepalive, **kw)
        self.c.loop_start()
        ack = self._connack.get(timeout=WAIT)
        if expect_success:
            assert ack.rc == 0, f"CONNECT refused: {ack.reason}"
        return ack

    def subscribe(self, topic_filter: str, qos: int = 0, options: SubscribeOptions | None = None,
                  properties: Properties | None = None) -> list[int]:
        if self.version == 5:
            opts = options or SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic_filter, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic_filter, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        codes = self._q(self._subacks, mid).get(timeout=WAIT)
        return [c.value if isinstance(c, ReasonCode) else int(c) for c in codes]

    def unsubscribe(self, topic_filter: str) -> list[int]:
        rc, mid = self.c.unsubscribe(topic_filter)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        codes = self._q(self._unsubacks, mid).get(timeout=WAIT)
        return [c.value if isinstance(c, ReasonCode) else int(c) for c in codes or []]

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
                properties: Properties | None = None, wait: bool = True) -> mqtt.MQTTMessageInfo:
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if wait:
            info.wait_for_publish(timeout=WAIT)
            assert info.is_published(), f"publish to {topic} not acknowledged"
        return info

    def get(self, timeout: float = WAIT) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client_id}: no message within {timeout}s") from None

    def get_n(self, n: int, timeout: float = WAIT) -> list[mqtt.MQTTMessage]:
        return [self.get(timeout) for _ in range(n)]

    def until(self, marker_topic: str, timeout: float = WAIT) -> list[mqtt.MQTTMessage]:
        """Messages received before the first one on `marker_topic` (excluded)."""
        out = []
        while True:
            m = self.get(timeout)
            if m.topic == marker_topic:
                return out
            out.append(m)

    def drain(self) -> list[mqtt.MQTTMessage]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def disconnect(self, reason: int | None = None, properties: Properties | None = None) -> None:
        if self.c.is_connected():
            kw: dict[str, Any] = {}
            if reason is not None:
                kw["reasoncode"] = ReasonCode(PacketTypes.DISCONNECT, identifier=reason)
            if properties is not None:
                kw["properties"] = properties
            self.c.disconnect(**kw)
            self.disconnected.wait(WAIT)
        self.c.loop_stop()

    def wait_disconnected(self, timeout: float = WAIT) -> ReasonCode | None:
        assert self.disconnected.wait(timeout), f"{self.client_id} still connected after {timeout}s"
        return self.disconnect_reason

    def close(self) -> None:
        try:
            self.disconnect()
        except Exception:
            pass
        self.c.loop_stop()

    def __enter__(self) -> "Paho":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def rc_value(code: Any) -> int:
    return code.value if isinstance(code, ReasonCode) else int(code)


def user_props(msg: mqtt.MQTTMessage) -> list[tuple[str, str]]:
    p = getattr(msg, "properties", None)
    return list(getattr(p, "UserProperty", []) or []) if p else []


def mosquitto_cmd(tool: str, broker: BrokerBase, transport: str = "tcp", version: int = 5) -> list[str]:
    port, ctx = endpoint(broker, transport)
    cmd = [tool, "-h", broker.host, "-p", str(port), "-V", "mqttv5" if version == 5 else "mqttv311"]
    if ctx is not None:
        cmd += ["--cafile", str(broker.ca)]
        if transport == "alpn-aws":
            cmd += ["--tls-alpn", "x-amzn-mqtt-ca"]
        elif transport == "alpn-mqtt":
            cmd += ["--tls-alpn", "mqtt"]
    return cmd


def mosquitto_pub(broker: BrokerBase, topic_name: str, message: str, transport: str = "tcp",
                  version: int = 5, qos: int = 1, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = mosquitto_cmd("mosquitto_pub", broker, transport, version) + [
        "-t", topic_name, "-m", message, "-q", str(qos), "-i", uid("mpub"),
    ] + (extra or [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT * 3)


class MosquittoSub:
    """mosquitto_sub in the background: `ready()` waits for its SUBACK (from the -d trace),
    `lines(n)` returns the first n "topic payload" lines it printed."""

    def __init__(self, broker: BrokerBase, topic_filter: str, transport: str = "tcp", version: int = 5,
                 qos: int = 1, extra: list[str] | None = None):
        # Line-buffered: its stdout is a pipe.
        cmd = ["stdbuf", "-oL"] + mosquitto_cmd("mosquitto_sub", broker, transport, version) + [
            "-t", topic_filter, "-q", str(qos), "-v", "-d", "-i", uid("msub"),
        ] + (extra or [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out: queue.Queue[str] = queue.Queue()
        self.trace: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.put(line.rstrip("\n"))
        self.out.put("\0EOF")

    def _next(self, timeout: float) -> str:
        try:
            line = self.out.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"mosquitto_sub: nothing within {timeout}s; trace: {self.trace}") from None
        if line == "\0EOF":
            raise AssertionError(f"mosquitto_sub exited ({self.proc.wait()}); trace: {self.trace}")
        self.trace.append(line)
        return line

    def ready(self, timeout: float = WAIT) -> None:
        while "received SUBACK" not in self._next(timeout):
            pass

    def lines(self, n: int, timeout: float = WAIT) -> list[str]:
        got: list[str] = []
        while len(got) < n:
            line = self._next(timeout)
            if line.startswith("Client ") or line.startswith("Subscribed (mid"):
                continue  # the -d trace
            got.append(line)
        return got

    def close(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> "MosquittoSub":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def settle(f: Future, value=None, error: BaseException | None = None) -> None:
    """Completes `f` with `value` or `error` unless it is done already: for SDK callbacks,
    where a later lifecycle event (a reconnect attempt) must not override the first."""
    try:
        if error is not None:
            f.set_exception(error)
        else:
            f.set_result(value)
    except InvalidStateError:
        pass


def stop_process(proc: subprocess.Popen) -> None:
    """Terminates `proc` (if still running) and reaps it, killing it after WAIT seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=WAIT)
