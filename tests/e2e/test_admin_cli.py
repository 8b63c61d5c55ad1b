"""The `ferrocore thing|cert|ca` admin commands: the real binary, signing its requests to the
running server's `iot` control plane with the admin key from the data directory (never opening
the database), checked through boto3 and by devices connecting with the files it writes."""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

import aws
import brokers
from clients import WAIT, uid
from pki import Ca

pytestmark = pytest.mark.ferrocore_only

DEVICE_FILES = ("certificate.pem", "private.key", "root-ca.pem", "device.json")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without AWS_* and FERROCORE_* settings, so only the flags and the data
    directory's files configure the command."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FERROCORE_"))}
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(brokers.ferrocore_bin()), *args],
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def admin(broker, *args: str, **kw) -> subprocess.CompletedProcess:
    """`ferrocore ARGS... --data-dir <the broker's>`."""
    return run(*args, "--data-dir", str(broker.data_dir), **kw)


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


def failed(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0, f"succeeded:\n{p.stdout}\n{p.stderr}"
    assert "panicked" not in p.stderr, p.stderr
    return p.stderr


def create_device(broker, out: Path, name: str | None = None, *extra: str) -> dict:
    name = name or uid("dev")
    ok(admin(broker, "thing", "create", name, "--out", str(out), *extra))
    return json.loads((out / "device.json").read_text())


def test_thing_create_writes_working_files(broker, tmp_path):
    iot = aws.iot(broker)
    name = uid("dev")
    out = tmp_path / "device"
    stdout = ok(admin(broker, "thing", "create", name, "--out", str(out), "--attr", "room=kitchen", "--attr", "floor=1"))
    assert name in stdout

    for f in DEVICE_FILES:
        assert (out / f).is_file(), f
    assert stat.S_IMODE((out / "private.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert "PRIVATE KEY-----" in (out / "private.key").read_text()
    assert (out / "root-ca.pem").read_bytes() == broker.ca.read_bytes()

    device = json.loads((out / "device.json").read_text())
    assert device["thingName"] == name
    assert len(device["certificateId"]) == 64
    assert device["certificateArn"].endswith(f":cert/{device['certificateId']}")
    assert device["endpoint"] == iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    mqtts_ports = {brokers.address_port(l["address"]) for l in broker.listeners() if l["transport"] == "mqtts"}
    assert device["port"] in mqtts_ports

    # Registered on the server: the thing with its attributes, the certificate active and
    # attached to it.
    assert iot.describe_thing(thingName=name)["attributes"] == {"room": "kitchen", "floor": "1"}
    cert = iot.describe_certificate(certificateId=device["certificateId"])["certificateDescription"]
    assert cert["status"] == "ACTIVE"
    assert cert["certificatePem"].strip() == (out / "certificate.pem").read_text().strip()
    assert device["certificateArn"] in iot.list_thing_principals(thingName=name)["principals"]


def connect_with(device_dir: Path, host: str, port: int) -> mqtt.ReasonCode | int:
    """Connects over TLS with the device's certificate, key and root CA; returns the CONNACK
    reason code (or raises on a TLS failure)."""
    device = json.loads((device_dir / "device.json").read_text())
    ctx = ssl.create_default_context(cafile=str(device_dir / device["rootCaFile"]))
    ctx.load_cert_chain(device_dir / device["certificateFile"], device_dir / device["privateKeyFile"])
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device["thingName"], protocol=mqtt.MQTTv5)
    c.tls_set_context(ctx)
    result: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code

    c.on_connect = on_connect
    c.connect(host, port, keepalive=30)
    c.loop_start()
    try:
        deadline = time.monotonic() + WAIT
        while "rc" not in result and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        c.disconnect()
        c.loop_stop()
    assert "rc" in result, "no CONNACK"
    return result["rc"]


def test_device_connects_with_its_files_until_revoked(broker, tmp_path):
    out = tmp_path / "device"
    device = create_device(broker, out)
    assert device.get("port"), device
    # Devices need a policy (least privilege by default): one for its own thing.
    iot = aws.iot(broker)
    policy = uid("pol")
    thing = "${iot:Connection.Thing.ThingName}"
    iot.create_policy(policyName=policy, policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"arn:aws:iot:*:*:client/{thing}"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:*:*:topic/e2e/{thing}/*"},
        ],
    }))
    iot.attach_policy(policyName=policy, target=device["certificateArn"])
    rc = connect_with(out, "localhost", device["port"])
    assert not rc.is_failure, rc

    # The files work as they are for mosquitto_pub too.
    pub = subprocess.run(
        ["mosquitto_pub", "-h", "localhost", "-p", str(device["port"]), "-V", "mqttv311",
         "-i", device["thingName"], "--cafile", str(out / "root-ca.pem"),
         "--cert", str(out / "certificate.pem"), "--key", str(out / "private.key"),
         "-t", f"e2e/{device['thingName']}/hello", "-m", "hi", "-q", "1"],
        capture_output=True, text=True, timeout=30,
    )
    assert pub.returncode == 0, pub.stderr

    ok(admin(broker, "cert", "revoke", device["certificateId"]))
    try:
        rc = connect_with(out, "localhost", device["port"])
    except (ssl.SSLError, OSError, AssertionError):
        return  # refused in the handshake, or closed before a CONNACK
    assert rc.is_failure, f"a revoked certificate connected ({rc})"


def test_thing_create_refuses_to_overwrite_without_force(broker, tmp_path):
    out = tmp_path / "device"
    first = create_device(broker, out)
    key_before = (out / "private.key").read_bytes()

    err = failed(admin(broker, "thing", "create", uid("dev"), "--out", str(out)))
    assert "already exist" in err and "--force" in err
    assert (out / "private.key").read_bytes() == key_before

    second = create_device(broker, out, None, "--force")
    assert second["certificateId"] != first["certificateId"]
    assert (out / "private.key").read_bytes() != key_before
    assert stat.S_IMODE((out / "private.key").stat().st_mode) == 0o600


def test_bulk_create_from_csv_is_idempotent(broker, tmp_path):
    iot = aws.iot(broker)
    prefix = uid("bulk")
    names = [f"{prefix}-{i:02d}" for i in range(20)]
    rows = ["thingName,attributes", "# twenty sensors"]
    rows += [f"{n},room=r{i};floor={i % 3}" for i, n in enumerate(names)]
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    out = tmp_path / "fleet"

    stdout = ok(admin(broker, "thing", "bulk-create", "--csv", str(csv_file), "--out", str(out)))
    assert "20 rows: 20 created, 0 skipped (already provisioned), 0 failed" in stdout
    cert_ids = set()
    for i, n in enumerate(names):
        d = out / n
        for f in DEVICE_FILES:
            assert (d / f).is_file(), (n, f)
        assert stat.S_IMODE((d / "private.key").stat().st_mode) == 0o600
        device = json.loads((d / "device.json").read_text())
        assert device["thingName"] == n
        cert_ids.add(device["certificateId"])
        assert iot.describe_thing(thingName=n)["attributes"] == {"room": f"r{i}", "floor": str(i % 3)}
    assert len(cert_ids) == 20
    listed = {c["certificateId"] for c in iot.list_certificates(pageSize=250)["certificates"]}
    assert cert_ids <= listed

    # Again: nothing new.
    stdout = ok(admin(broker, "thing", "bulk-create", "--csv", str(csv_file), "--out", str(out)))
    assert "20 rows: 0 created, 20 skipped (already provisioned), 0 failed" in stdout

    # Two new rows, and one whose thing exists with other attributes: that row fails, the
    # others are created, the exit status says so.
    clash = uid("clash")
    iot.create_thing(thingName=clash, attributePayload={"attributes": {"room": "other"}})
    more = names[:3] + [f"{prefix}-new-1", f"{prefix}-new-2", clash]
    csv2 = tmp_path / "more.csv"
    csv2.write_text("thingName,attributes\n" + "\n".join(f"{n},room=x" if n == clash else n for n in more) + "\n")
    p = admin(broker, "thing", "bulk-create", "--csv", str(csv2), "--out", str(out))
    err = failed(p)
    assert "6 rows: 2 created, 3 skipped (already provisioned), 1 failed" in p.stdout
    assert f"error: line 7 ({clash}): ResourceAlreadyExistsException" in err
    assert not (out / clash / "device.json").exists()


def test_bulk_create_rejects_a_bad_csv_before_creating_anything(broker, tmp_path):
    good = uid("good")
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(f"thingName,attributes\n{good},room=1\nbad name,room=1\n{good}-2,room\n")
    err = failed(admin(broker, "thing", "bulk-create", "--csv", str(csv_file), "--out", str(tmp_path / "out")))
    assert "line 3: thing name \"bad name\" contains ' '" in err
    assert "line 4: attribute \"room\" is not name=value" in err
    iot = aws.iot(broker)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=good)


def test_list_describe_and_certificate_status(broker, tmp_path):
    iot = aws.iot(broker)
    out = tmp_path / "device"
    name = uid("lst")
    device = create_device(broker, out, name, "--attr", "model=x1")
    cert_id = device["certificateId"]

    listed = json.loads(ok(admin(broker, "thing", "list", "--json")))["things"]
    assert name in [t["thingName"] for t in listed]
    table = ok(admin(broker, "thing", "list", "--attribute", "model=x1"))
    assert table.splitlines()[0].split() == ["NAME", "TYPE", "VERSION", "ATTRIBUTES"]
    assert any(line.split()[0] == name for line in table.splitlines()[1:])

    described = ok(admin(broker, "thing", "describe", name))
    assert "thingName:" in described and name in described and "model=x1" in described
    assert json.loads(ok(admin(broker, "thing", "describe", name, "--json")))["attributes"] == {"model": "x1"}

    certs = ok(admin(broker, "cert", "list"))
    assert any(line.split()[:2] == [cert_id, "ACTIVE"] for line in certs.splitlines())
    assert json.loads(ok(admin(broker, "cert", "describe", cert_id, "--json")))["certificateDescription"]["status"] == "ACTIVE"
    # A unique prefix is enough.
    assert "certificateId:" in ok(admin(broker, "cert", "describe", cert_id[:16]))
    pem = ok(admin(broker, "cert", "describe", cert_id, "--pem"))
    assert pem.strip() == (out / "certificate.pem").read_text().strip()

    for command, status in (("deactivate", "INACTIVE"), ("activate", "ACTIVE"), ("revoke", "REVOKED")):
        assert status in ok(admin(broker, "cert", command, cert_id))
        assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == status
    certs = ok(admin(broker, "cert", "list"))
    assert any(line.split()[:2] == [cert_id, "REVOKED"] for line in certs.splitlines())


def test_thing_delete_detaches_when_asked(broker, tmp_path):
    iot = aws.iot(broker)
    name = uid("del")
    device = create_device(broker, tmp_path / "d", name)
    err = failed(admin(broker, "thing", "delete", name))
    assert "--detach" in err
    ok(admin(broker, "thing", "delete", name, "--detach"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)
    # The certificate stays (detached, still active).
    assert iot.describe_certificate(certificateId=device["certificateId"])["certificateDescription"]["status"] == "ACTIVE"


def test_unknown_thing_and_certificate_are_one_clear_line(broker):
    name = uid("missing")
    err = failed(admin(broker, "thing", "describe", name))
    assert err.startswith("error: ResourceNotFoundException: ")
    assert name in err
    assert len(err.strip().splitlines()) == 1, err
    err = failed(admin(broker, "thing", "delete", name))
    assert err.startswith("error: ResourceNotFoundException: ")
    err = failed(admin(broker, "cert", "revoke", "ab" * 32))
    assert err.startswith("error: ResourceNotFoundException: "), err
    err = failed(admin(broker, "cert", "revoke", "not-an-id"))
    assert "is not a certificate ID" in err


def test_wrong_key_from_the_environment_is_explained(broker):
    env = clean_env(AWS_ACCESS_KEY_ID="AKIAUNKNOWNUNKNOWN00", AWS_SECRET_ACCESS_KEY="x" * 40)
    err = failed(admin(broker, "thing", "list", env=env))
    assert err.startswith("error: UnrecognizedClientException: ")
    assert "AWS_ACCESS_KEY_ID" in err
    assert "x" * 40 not in err


def test_server_not_running_or_never_started(start_broker, tmp_path):
    b = start_broker(ferrocore_only=True)
    data_dir = b.data_dir
    b.stop()
    err = failed(run("thing", "list", "--data-dir", str(data_dir)))
    assert err.startswith("error: cannot connect to https://")
    assert "is the server running?" in err
    assert len(err.strip().splitlines()) == 1, err

    empty = tmp_path / "empty"
    err = failed(run("thing", "list", "--data-dir", str(empty)))
    assert "start the server first" in err and "--endpoint-url" in err
    # The default data directory is ./ferrocore-data.
    err = failed(run("thing", "list", cwd=tmp_path))
    assert "ferrocore-data" in err and "start the server first" in err


def test_ca_list_describe_and_crl(broker, tmp_path):
    iot = aws.iot(broker)
    ca = Ca(tmp_path, uid("e2e-ca"))
    ca_pem, crl_pem = ca.cert, tmp_path / "crl.pem"
    crl_pem.write_text(ca.crl([]))
    ca_id = iot.register_ca_certificate(caCertificate=ca.pem, certificateMode="SNI_ONLY", setAsActive=True)[
        "certificateId"
    ]

    assert any(line.split()[:2] == [ca_id, "ACTIVE"] for line in ok(admin(broker, "ca", "list")).splitlines())
    assert ca_id in [c["certificateId"] for c in json.loads(ok(admin(broker, "ca", "list", "--json")))["certificates"]]
    assert ca_id in ok(admin(broker, "ca", "describe", ca_id[:12]))

    out = ok(admin(broker, "ca", "crl", "set", ca_id, str(crl_pem)))
    assert "revoked:" in out and "0" in out
    shown = json.loads(ok(admin(broker, "ca", "crl", "show", ca_id, "--json")))
    assert shown["revokedCount"] == 0
    assert shown["crlPem"].strip() == crl_pem.read_text().strip()
    ok(admin(broker, "ca", "crl", "clear", ca_id))
    failed(admin(broker, "ca", "crl", "show", ca_id))

    # Not a CRL: refused before anything is sent.
    err = failed(admin(broker, "ca", "crl", "set", ca_id, str(ca_pem)))
    assert "is not a PEM CRL" in err


def test_wrong_ca_bundle_is_explained(broker, tmp_path):
    other_ca = Ca(tmp_path, uid("other-ca")).cert
    err = failed(admin(broker, "thing", "list", "--ca-bundle", str(other_ca)))
    assert err.startswith("error: TLS handshake with https://"), err
    assert "--ca-bundle" in err
    assert len(err.strip().splitlines()) == 1, err
