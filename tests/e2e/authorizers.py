"""Helpers for custom-authorizer tests: a webhook authorizer (a Python HTTP server on
127.0.0.1 speaking AWS's authorizer request/response JSON), RSA token signing with openssl, an
OpenID provider (tests/e2e/oidc: the npm package oidc-provider, run by Node) issuing
client-credentials access tokens as JWTs, CONNACK codes of raw clients without a certificate,
and the certificate round trip that shows a broker still serves its devices."""

from __future__ import annotations

import base64
import json
import secrets
import select
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from awscrt import mqtt5

import aws
import mqttraw
from brokers import Ferrocore
from clients import WAIT, Paho, settle, stop_process, tls_context, uid
from pki import Device, api_device, cert_arn


class Webhook:
    """Answers each POST with `self.reply(event)` -> (status, body as dict or str); keeps the
    events it got. Subclasses or tests replace `reply`."""

    def __init__(self):
        self.events: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.events.append(event)
                status, body = hook.reply(event)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/authorize"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, event: dict) -> tuple[int, dict | str]:
        raise NotImplementedError

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def signing_key(folder: Path) -> tuple[Path, str]:
    """A new RSA-2048 private key file in `folder` and its public key (PEM)."""
    key = folder / "signing.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
                   check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True, text=True)
    return key, public.stdout


def sign(key: Path, token: str) -> str:
    """AWS's token signature: base64 of RSA PKCS#1 v1.5 over SHA-256 of the token."""
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=token.encode(), check=True,
                         capture_output=True)
    return base64.b64encode(out.stdout).decode()


# ---------------------------------------------------------------------------------------------
# Raw clients without a certificate, and the certificate clients a broker must keep serving


def raw_tls(broker: Ferrocore, port: int, version: int = 5, alpn: list[str] | None = None,
            timeout: float = WAIT * 3) -> mqttraw.RawClient:
    """A raw MQTT client over TLS without a client certificate, trusting the broker's CA."""
    return mqttraw.RawClient(broker.host, port, version=version, tls=tls_context(broker, alpn), timeout=timeout)


def connack_code(broker: Ferrocore, port: int, version: int, username: str | None, password: bytes | None = None,
                 alpn: list[str] | None = None) -> int:
    """The CONNACK code (MQTT 5 reason or 3.1.1 return code) a TLS client without a certificate
    gets for `username` / `password`, with a new client id (no cached answer applies)."""
    c = raw_tls(broker, port, version, alpn)
    try:
        return c.connect(uid("raw"), username=username, password=password).reason
    finally:
        c.sock.close()


def certificate_device(broker: Ferrocore, folder: Path) -> Device:
    """A device certificate (CreateKeysAndCertificate) with an allow-all policy attached."""
    iot = aws.iot(broker)
    device = api_device(iot, folder)
    policy = uid("all")
    iot.create_policy(policyName=policy, policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
    iot.attach_policy(policyName=policy, target=cert_arn(device.id))
    return device


def assert_serves_certificates(broker: Ferrocore, device: Device) -> None:
    """The broker process is alive, and `device` connects over MQTT/TLS with its certificate,
    subscribes, publishes at QoS 1 and receives its message back."""
    assert broker.alive(), f"the broker exited with {broker.proc.returncode}"
    with Paho(broker, transport="tcp") as p:
        p.port = broker.listener_port("mqtts")
        ctx = tls_context(broker)
        ctx.load_cert_chain(str(device.cert), str(device.key))
        p.c.tls_set_context(ctx)
        p.connect()
        t = f"health/{uid('t')}"
        assert p.subscribe(t, qos=1) == [1]
        p.publish(t, b"still here", qos=1)
        assert p.get().payload == b"still here"


def sdk_pubsub(build, topic: str, **kwargs) -> None:
    """Builds an AWS IoT Device SDK v2 MQTT 5 client with `build(**kwargs, callbacks)` (e.g.
    mqtt5_client_builder.direct_with_custom_authorizer), connects, subscribes to `topic`,
    publishes to it at QoS 1 and gets the message back."""
    connected: Future = Future()
    stopped: Future = Future()
    received: Future = Future()
    client = build(
        **kwargs,
        on_publish_received=lambda data: settle(received, data.publish_packet),
        on_lifecycle_connection_success=lambda data: settle(connected, data),
        on_lifecycle_connection_failure=lambda data: settle(connected, error=data.exception),
        on_lifecycle_stopped=lambda data: settle(stopped),
    )
    client.start()
    try:
        success = connected.result(WAIT * 3)
        assert success.connack_packet.reason_code == mqtt5.ConnectReasonCode.SUCCESS
        suback = client.subscribe(mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription(topic_filter=topic, qos=mqtt5.QoS.AT_LEAST_ONCE)])).result(WAIT * 3)
        assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1]
        client.publish(mqtt5.PublishPacket(topic=topic, payload=b"from the sdk", qos=mqtt5.QoS.AT_LEAST_ONCE)).result(
            WAIT * 3)
        packet = received.result(WAIT * 3)
        assert (packet.topic, packet.payload) == (topic, b"from the sdk")
    finally:
        client.stop()
        stopped.result(WAIT * 3)


# ---------------------------------------------------------------------------------------------
# An OpenID provider


OIDC_DIR = Path(__file__).parent / "oidc"
OIDC_START_TIMEOUT = 30.0


class OidcProvider:
    """tests/e2e/oidc/provider.js on a free port of 127.0.0.1 (issuer `http://127.0.0.1:<port>`):
    client-credentials access tokens as RS256 JWTs (`aud` "ferrocore", `sub` the client id,
    `roles` the client's roles), and test-only endpoints to rotate the signing key and to sign
    any header and payload with it. `clients` maps client ids to their roles. Its log is
    `folder/oidc.log`."""

    def __init__(self, folder: Path, clients: dict[str, list[str]]):
        node = shutil.which("node")
        if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(f"the OpenID provider needs Node.js and {OIDC_DIR}/node_modules: run the suite with "
                               "scripts/test e2e, which installs them (npm ci)")
        self.secrets = {client_id: secrets.token_urlsafe(24) for client_id in clients}
        config = folder / "oidc.json"
        config.write_text(json.dumps({"clients": [
            {"client_id": client_id, "client_secret": self.secrets[client_id], "roles": roles}
            for client_id, roles in clients.items()]}))
        config.chmod(0o600)
        self.log_path = folder / "oidc.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([node, str(OIDC_DIR / "provider.js"), str(config)], cwd=OIDC_DIR,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        ready, _, _ = select.select([self.proc.stdout], [], [], OIDC_START_TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            raise RuntimeError(f"the OpenID provider did not start:\n{self.log_path.read_text(errors='replace')}")
        started = json.loads(line)
        self.issuer: str = started["issuer"]
        self.kid: str = started["kid"]

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> dict:
        request = urllib.request.Request(self.issuer + path, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return json.loads(response.read())

    def token(self, client_id: str, resource: str = "urn:ferrocore", scope: str | None = None) -> str:
        """An access token for `client_id` (client_credentials, client_secret_basic). The
        resource picks audience and lifetime: `urn:ferrocore` (aud ferrocore, 600 s),
        `urn:ferrocore:ttl:<n>` (aud ferrocore, n s), another URN (aud that URN)."""
        form = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            form["scope"] = scope
        basic = base64.b64encode(f"{client_id}:{self.secrets[client_id]}".encode()).decode()
        answer = self._post("/token", urllib.parse.urlencode(form).encode(), {
            "Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
        return answer["access_token"]

    def rotate(self) -> str:
        """A new signing key replaces the current one (which leaves the JWKS); its kid."""
        self.kid = self._post("/admin/rotate", b"", {})["kid"]
        return self.kid

    def sign(self, payload: dict, header: dict | None = None) -> str:
        """A compact JWS of `header` (alg RS256 and the current kid unless given) and `payload`,
        signed with the provider's current key."""
        body = json.dumps({"header": header or {}, "payload": payload}).encode()
        return self._post("/admin/sign", body, {"Content-Type": "application/json"})["token"]

    def public_pem(self) -> str:
        """The current signing key's public key, PEM (SPKI)."""
        with urllib.request.urlopen(self.issuer + "/admin/public.pem", timeout=WAIT) as response:
            return response.read().decode()

    def close(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
