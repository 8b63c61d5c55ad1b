"""Helpers for custom-authorizer tests: a webhook authorizer (a Python HTTP server on
127.0.0.1 speaking AWS's authorizer request/response JSON) and RSA token signing with openssl."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


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
