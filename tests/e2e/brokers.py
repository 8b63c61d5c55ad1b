"""Brokers under test: the real `ferrocore serve` binary, or Mosquitto as a stand-in that lets
the suite validate itself (FERROCORE_E2E_TARGET=mosquitto).

Both are started on ephemeral ports on 127.0.0.1 (never 1883: a system Mosquitto may be there)
and expose the same surface: `port(transport)`, `ca` (the root CA to trust), `stop()`,
`kill()`, `restart()`.

Transports: "mqtt" (plain TCP), "mqtts" (MQTT over TLS), "https" (the HTTPS port: WebSocket at
/mqtt and MQTT by ALPN). Each is declared anonymous for the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
START_TIMEOUT = 30.0


def target() -> str:
    t = os.environ.get("FERROCORE_E2E_TARGET", "ferrocore")
    if t not in ("ferrocore", "mosquitto"):
        raise RuntimeError(f"FERROCORE_E2E_TARGET={t!r}: expected ferrocore or mosquitto")
    return t


def ferrocore_bin() -> Path:
    """The release binary: $FERROCORE_BIN, else $CARGO_TARGET_DIR/release, else ./target/release,
    else the cache folder scripts/test uses."""
    if os.environ.get("FERROCORE_BIN"):
        return Path(os.environ["FERROCORE_BIN"])
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "ferrocore")
    candidates.append(REPO / "target" / "release" / "ferrocore")
    cache = Path(os.environ.get("FERROCORE_CACHE_DIR", Path.home() / ".cache" / "ferrocore"))
    candidates.append(cache / "target" / "release" / "ferrocore")
    for c in candidates:
        if c.exists():
            return c
    raise RuntimeError(
        "ferrocore release binary not found (tried " + ", ".join(map(str, candidates))
        + "); build it with `cargo build --release` or set FERROCORE_BIN"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float) -> None:
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {HOST}:{port}")
            time.sleep(0.05)


def address_port(address: str) -> int:
    """The port of "127.0.0.1:PORT" or "[::1]:PORT"."""
    return int(address.rsplit(":", 1)[1])


class BrokerBase:
    kind = "?"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "broker.log"
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.host = HOST
        self.ca: Path | None = None

    def port(self, transport: str = "mqtt") -> int:
        try:
            return self.ports[transport]
        except KeyError:
            pytest.skip(f"{self.kind} target has no {transport} listener")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if it does not go. Returns the exit status."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        return self.proc.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def start(self) -> None:
        raise NotImplementedError


class Ferrocore(BrokerBase):
    kind = "ferrocore"

    def __init__(
        self,
        workdir: Path,
        args: list[str] | None = None,
        config: str | None = None,
        data_dir: Path | None = None,
        tls_anonymous: bool = True,
        env: dict[str, str] | None = None,
    ):
        super().__init__(workdir)
        self.data_dir = data_dir or workdir / "data"
        self.args = list(args or [])
        self.extra_config = config or ""
        self.tls_anonymous = tls_anonymous
        self.env = env or {}
        self.ca = self.data_dir / "root-ca.pem"

    def config_text(self) -> str:
        """The TOML given with --config: TLS listeners declared anonymous (until device
        authentication exists only an anonymous listener admits clients), plus the test's own."""
        # The test's own keys first: top-level keys must precede the [[listener]] tables.
        text = self.extra_config + "\n"
        if self.tls_anonymous:
            text += (
                '[[listener]]\nname = "e2e-mqtts"\ntransport = "mqtts"\naddress = "127.0.0.1:0"\n'
                "anonymous = true\n\n"
                '[[listener]]\nname = "e2e-https"\ntransport = "https"\naddress = "127.0.0.1:0"\n'
                "anonymous = true\n\n"
            )
        return text

    def command(self) -> list[str]:
        cmd = [
            str(ferrocore_bin()), "serve",
            "--data-dir", str(self.data_dir),
            "--dev",
            "--listen-mqtt", f"{HOST}:0",
            "--listen-mqtts", f"{HOST}:0",
            "--listen-https", f"{HOST}:0",
            "--listen-metrics", f"{HOST}:0",
        ]
        cfg = self.config_text()
        if cfg:
            path = self.workdir / "ferrocore.toml"
            path.write_text(cfg)
            cmd += ["--config", str(path)]
        return cmd + self.args

    def listeners(self) -> list[dict]:
        return json.loads((self.data_dir / "listeners.json").read_text())["listeners"]

    def listener_port(self, name: str) -> int:
        """The port of the listener called `name` in listeners.json."""
        return next(address_port(l["address"]) for l in self.listeners() if l["name"] == name)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lj = self.data_dir / "listeners.json"
        lj.unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, "RUST_BACKTRACE": "1", **self.env}
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self.alive():
                raise RuntimeError(
                    f"ferrocore exited with {self.proc.returncode} before listening:\n{self.log()[-4000:]}"
                )
            try:
                doc = json.loads(lj.read_text())
                if doc.get("pid", self.proc.pid) != self.proc.pid:
                    raise KeyError("pid")  # another process's file
                listeners = doc["listeners"]
                break
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                if time.monotonic() > deadline:
                    self.kill()
                    raise TimeoutError(f"no {lj} after {START_TIMEOUT}s:\n{self.log()[-4000:]}")
                time.sleep(0.05)
        # Per transport, the first anonymous listener (the --dev one, the test TOML's), else
        # the first of that transport.
        self.ports = {}
        for entry in sorted(listeners, key=lambda e: not e.get("anonymous", False)):
            self.ports.setdefault(entry["transport"], address_port(entry["address"]))
        for port in self.ports.values():
            wait_port(port, deadline)


_MOSQUITTO_PKI: Path | None = None


def mosquitto_pki() -> Path:
    """A CA and a server certificate for 127.0.0.1/localhost, made once per process (openssl)."""
    global _MOSQUITTO_PKI
    if _MOSQUITTO_PKI is not None:
        return _MOSQUITTO_PKI
    d = Path(tempfile.mkdtemp(prefix="ferrocore-e2e-pki-"))

    def run(*a: str) -> None:
        subprocess.run(a, cwd=d, check=True, capture_output=True)

    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    run("openssl", "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=e2e test CA",
        "-days", "2", "-out", "root-ca.pem")
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key")
    run("openssl", "req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "root-ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    _MOSQUITTO_PKI = d
    return d


def mosquitto_bin() -> str:
    for c in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if c and os.path.exists(c):
            return c
    raise RuntimeError("mosquitto not installed (apt-get install mosquitto)")


class Mosquitto(BrokerBase):
    kind = "mosquitto"

    def __init__(self, workdir: Path, conf: str = ""):
        super().__init__(workdir)
        self.extra_conf = conf
        pki = mosquitto_pki()
        self.ca = pki / "root-ca.pem"
        self.data_dir = workdir / "data"

    def start(self) -> None:
        pki = mosquitto_pki()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.ports:
            self.ports = {"mqtt": free_port(), "mqtts": free_port(), "https": free_port()}
        tls = f"cafile {pki / 'root-ca.pem'}\ncertfile {pki / 'server.pem'}\nkeyfile {pki / 'server.key'}\n"
        conf = (
            "per_listener_settings false\nallow_anonymous true\nuser root\nlog_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            f"persistence true\npersistence_location {self.data_dir}/\n"
            f"listener {self.ports['mqtt']} {HOST}\n"
            f"listener {self.ports['mqtts']} {HOST}\n{tls}"
            f"listener {self.ports['https']} {HOST}\nprotocol websockets\n{tls}"
            + self.extra_conf
        )
        path = self.workdir / "mosquitto.conf"
        path.write_text(conf)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [mosquitto_bin(), "-c", str(path)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        for port in self.ports.values():
            while True:
                if not self.alive():
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
                try:
                    wait_port(port, min(deadline, time.monotonic() + 0.2))
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise


def make_broker(
    workdir: Path,
    *,
    compat_aws: bool = False,
    connect_timeout: float | None = None,
    max_keepalive: int | None = None,
    max_packet_size: int | None = None,
    args: list[str] | None = None,
    config: str | None = None,
    mosquitto_conf: str | None = None,
    ferrocore_only: bool = False,
    tls_anonymous: bool = True,
) -> BrokerBase:
    """A configured (not started) broker of the current target.

    Semantic options are mapped for each target; a test needing something a target cannot do is
    skipped there. `args` / `config` are raw Ferrocore flags / TOML; `mosquitto_conf` raw lines."""
    if target() == "mosquitto":
        if ferrocore_only or compat_aws or connect_timeout is not None or args or config:
            pytest.skip("Ferrocore-specific configuration")
        conf = mosquitto_conf or ""
        if max_keepalive is not None:
            conf += f"max_keepalive {max_keepalive}\n"
        if max_packet_size is not None:
            conf += f"max_packet_size {max_packet_size}\n"
        return Mosquitto(workdir, conf)
    a = list(args or [])
    if compat_aws:
        a += ["--compat", "aws"]
    if connect_timeout is not None:
        a += ["--connect-timeout", f"{connect_timeout}s"]
    if max_keepalive is not None:
        a += ["--max-keep-alive", str(max_keepalive)]
    if max_packet_size is not None:
        a += ["--max-packet-size", str(max_packet_size)]
    return Ferrocore(workdir, args=a, config=config, tls_anonymous=tls_anonymous)
