"""The AWS CLI (v1) and boto3 pointed at a Ferrocore, the way a user would: through the
`credentials` and `aws-config` files Ferrocore writes into its data directory.

`iot(broker)` is a boto3 `iot` client; `cli(broker, "iot", "list-things")` runs `aws` and
returns its parsed JSON output; `cli_error(...)` runs it expecting failure and returns stderr.
"""

from __future__ import annotations

import configparser
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
import botocore.session

import brokers

VENV_BIN = Path(sys.executable).parent


def aws_env(broker: brokers.Ferrocore) -> dict[str, str]:
    """Environment that makes the AWS CLI and boto3 use `broker`'s files and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(broker.data_dir / "credentials")
    env["AWS_CONFIG_FILE"] = str(broker.data_dir / "aws-config")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def endpoint(broker: brokers.Ferrocore) -> str:
    return f"https://localhost:{broker.port('https')}"


def session(broker: brokers.Ferrocore) -> boto3.session.Session:
    """A boto3 session configured only by the broker's credentials and config files."""
    env = aws_env(broker)
    core = botocore.session.Session()
    core.set_config_variable("credentials_file", env["AWS_SHARED_CREDENTIALS_FILE"])
    core.set_config_variable("config_file", env["AWS_CONFIG_FILE"])
    # This machine may export AWS_CA_BUNDLE, which would beat the config file's ca_bundle; an
    # instance variable beats both, so set it from the file the user would rely on.
    config = configparser.ConfigParser()
    config.read(env["AWS_CONFIG_FILE"])
    core.set_config_variable("ca_bundle", config["default"]["ca_bundle"])
    return boto3.session.Session(botocore_session=core)


def client(broker: brokers.Ferrocore, service: str = "iot"):
    """A client whose endpoint, region and CA bundle come from the broker's aws-config."""
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return session(broker).client(service, config=cfg)


def iot(broker: brokers.Ferrocore):
    return client(broker, "iot")


def _run_cli(broker: brokers.Ferrocore, args: tuple[str, ...]) -> subprocess.CompletedProcess:
    cmd = [str(VENV_BIN / "aws"), *args, "--output", "json", "--cli-read-timeout", "20"]
    return subprocess.run(cmd, env=aws_env(broker), capture_output=True, text=True, timeout=60)


def cli(broker: brokers.Ferrocore, *args: str) -> dict:
    """Runs `aws ARGS...` (endpoint, region, CA bundle from the aws-config file)."""
    p = _run_cli(broker, args)
    assert p.returncode == 0, f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
    return json.loads(p.stdout) if p.stdout.strip() else {}


def cli_error(broker: brokers.Ferrocore, *args: str) -> str:
    """Runs `aws ARGS...` expecting it to fail; returns its stderr."""
    p = _run_cli(broker, args)
    assert p.returncode != 0, f"aws {' '.join(args)} succeeded:\n{p.stdout}"
    return p.stderr


def signed(
    broker: brokers.Ferrocore,
    method: str,
    path: str,
    body: dict | None = None,
    raw: bytes | None = None,
    service: str = "iot",
) -> tuple[int, dict]:
    """A SigV4-signed request as botocore would send it, for what boto3 has no operation for
    (Ferrocore's extensions) or will not send (malformed bodies: `raw`). Returns the status and
    the JSON body, with the error type header as `errorType` on errors."""
    sess = session(broker)
    creds = sess.get_credentials().get_frozen_credentials()
    url = endpoint(broker) + path
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = AWSRequest(method=method, url=url, data=data, headers=headers)
    SigV4Auth(creds, service, sess.region_name).add_auth(request)
    prepared = request.prepare()
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    req = urllib.request.Request(url, data=data, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            text = r.read()
            return r.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as e:
        return e.code, {**json.loads(e.read() or b"{}"), "errorType": e.headers.get("x-amzn-ErrorType")}
