"""The process: graceful SIGTERM (MQTT 5 clients get DISCONNECT 0x8B, exit status 0), a port
already in use (one-line error naming the flag), listeners.json, serve --help, the generated
server identity, listeners that are not anonymous."""

import json
import socket
import ssl
import stat
import subprocess

import pytest

import mqttraw as r
from brokers import Ferrocore, HOST, ferrocore_bin
from clients import Paho, raw, uid


@pytest.mark.mosquitto_xfail("2.0.11 closes without DISCONNECT 0x8B")
def test_sigterm_disconnects_v5_clients_with_0x8b(start_broker):
    b = start_broker()
    v5 = [raw(b, 5), raw(b, 5, transport="tls")]
    v3 = raw(b, 4)
    for c in v5 + [v3]:
        assert c.connect(uid("term")).reason == 0
    b.signal(15)
    for c in v5:
        got = c.wait_closed(timeout=30)
        assert [(p.type, p.reason) for p in got] == [(r.DISCONNECT, 0x8B)], got  # Server shutting down
    assert v3.wait_closed(timeout=30) == []
    assert b.wait(timeout=30) == 0


def test_sigterm_with_no_clients_exits_zero(start_broker):
    b = start_broker()
    b.signal(15)
    assert b.wait(timeout=30) == 0


@pytest.mark.ferrocore_only
@pytest.mark.parametrize("flag", ["--listen-mqtt", "--listen-mqtts", "--listen-https"])
def test_port_in_use_is_a_one_line_error_naming_the_flag(tmp_path, flag):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        addrs = {"--listen-mqtt": f"{HOST}:0", "--listen-mqtts": f"{HOST}:0", "--listen-https": f"{HOST}:0"}
        addrs[flag] = f"{HOST}:{port}"
        cmd = [str(ferrocore_bin()), "serve", "--data-dir", str(tmp_path / "data"), "--dev"]
        for f, a in addrs.items():
            cmd += [f, a]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    errors = [l for l in p.stderr.splitlines() if flag in l]
    assert len(errors) == 1, f"no single line naming {flag}:\n{p.stderr}"
    assert str(port) in errors[0]
    assert "panicked" not in p.stderr and "backtrace" not in p.stderr.lower()
    assert not (tmp_path / "data" / "listeners.json").exists()


@pytest.mark.ferrocore_only
def test_listeners_json(start_broker):
    b = start_broker()
    doc = json.loads((b.data_dir / "listeners.json").read_text())
    assert doc["pid"] == b.proc.pid
    by_name = {l["name"]: l for l in doc["listeners"]}
    assert {"mqtt", "mqtts", "https", "e2e-mqtts", "e2e-https"} <= set(by_name)
    for name, transport, tls in [("mqtt", "mqtt", False), ("mqtts", "mqtts", True), ("https", "https", True)]:
        entry = by_name[name]
        assert entry["transport"] == transport and entry["tls"] == tls
        host, port = entry["address"].rsplit(":", 1)
        assert host == HOST and int(port) > 0
    assert by_name["mqtt"]["anonymous"] is True  # --dev
    assert by_name["mqtts"]["anonymous"] is False
    assert by_name["e2e-mqtts"]["anonymous"] is True
    b.stop()
    assert not (b.data_dir / "listeners.json").exists()


@pytest.mark.ferrocore_only
def test_serve_help_documents_settings():
    out = subprocess.run([str(ferrocore_bin()), "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    for flag in ["--config", "--data-dir", "--listen-mqtts", "--listen-https", "--listen-mqtt", "--dev",
                 "--endpoint-name", "--durability", "--compat", "--connect-timeout", "--max-keep-alive"]:
        assert flag in out, flag
    assert "FERROCORE_DATA_DIR" in out and "FERROCORE_LISTEN_MQTTS" in out


@pytest.mark.ferrocore_only
def test_generated_identity(start_broker):
    b = start_broker()
    data = b.data_dir
    assert (data / "root-ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    keys = [p for p in data.rglob("*") if p.is_file() and "key" in p.name]
    assert keys, "no key files in the data directory"
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, f"{k} is not mode 0600"
    # A restart keeps the same root CA (devices keep trusting it).
    ca = (data / "root-ca.pem").read_bytes()
    b.restart()
    assert (data / "root-ca.pem").read_bytes() == ca
    with Paho(b, transport="tls") as c:
        c.connect()


@pytest.mark.ferrocore_only
def test_admin_credentials_and_aws_config(start_broker):
    """First start writes the admin key (shared-credentials format, 0600) and an aws-config
    naming the region, the bound HTTPS endpoint and the root CA; a restart keeps the key."""
    b = start_broker()
    creds = b.data_dir / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    text = creds.read_text()
    assert "[default]" in text and "aws_access_key_id = AKIA" in text
    assert "aws_secret_access_key = " in text
    config = (b.data_dir / "aws-config").read_text()
    assert "region = us-east-1" in config
    listeners = json.loads((b.data_dir / "listeners.json").read_text())["listeners"]
    https = next(l for l in listeners if l["name"] == "https")  # the --listen-https listener
    assert f"endpoint_url = https://localhost:{https['address'].rsplit(':', 1)[1]}" in config
    assert f"ca_bundle = {b.data_dir / 'root-ca.pem'}" in config
    b.restart()
    assert creds.read_text() == text
    assert "aws_secret_access_key" not in b.log(), "the secret must never be logged"


@pytest.mark.ferrocore_only
@pytest.mark.parametrize("transport", ["mqtts", "https"])
def test_listener_not_anonymous_refuses_anonymous_clients(start_broker, transport):
    """The --listen-mqtts / --listen-https listeners are not anonymous: until device
    authentication exists, a client without credentials is refused (or disconnected)."""
    b = start_broker()
    port = b.listener_port(transport)
    ctx = ssl.create_default_context(cafile=str(b.ca))
    if transport == "https":
        ctx.set_alpn_protocols(["mqtt"])
    c = r.RawClient(b.host, port, version=5, tls=ctx)
    c.send(r.connect(uid("anon")))
    got = c.wait_closed(timeout=30)
    assert not any(p.type == r.CONNACK and p.reason == 0 for p in got), got


@pytest.mark.ferrocore_only
def test_settings_flag_over_environment_over_file(tmp_path):
    b = Ferrocore(tmp_path / "b", config="max_keep_alive = 5\nmax_topic_aliases = 3\nmax_inflight = 7\n",
                  env={"FERROCORE_MAX_KEEP_ALIVE": "40"}, args=["--max-topic-aliases", "2"])
    b.start()
    try:
        c = raw(b)
        ack = c.connect(uid("env"), keepalive=600)
        assert ack.prop(r.RECEIVE_MAXIMUM) == 7  # the file
        assert ack.prop(r.SERVER_KEEP_ALIVE) == 40  # the environment beats the file
        assert ack.prop(r.TOPIC_ALIAS_MAXIMUM) == 2  # the flag beats the file
        c.disconnect()
    finally:
        b.stop()
