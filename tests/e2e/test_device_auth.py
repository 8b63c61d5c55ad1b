"""Device authentication by X.509 certificate through the real binary: certificates made by the
control plane (boto3) or by a CA of our own (the openssl CLI) connect with paho-mqtt and the
mosquitto clients over the non-anonymous MQTT-over-TLS listener and over the HTTPS port with ALPN
x-amzn-mqtt-ca; INACTIVE, REVOKED, unknown and unregistered-CA certificates are refused; open
connections close when their certificate is revoked or deactivated, when their CA is
deactivated, and when a CRL attached to their CA lists them; JITR registers PENDING_ACTIVATION and
announces it on $aws/events/certificates/registered/<caCertificateId>."""

from __future__ import annotations

import json
import queue
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

import aws
import pki as _pki
from clients import WAIT, Paho, rc_value, topic, uid
from pki import Ca, Device, cert_arn, register_ca, self_signed

pytestmark = pytest.mark.ferrocore_only

NOT_AUTHORIZED = 0x87
CLOSE_WITHIN = 5.0  # generous: only to avoid hangs


# ---------------------------------------------------------------------------------------------
# certificates with a policy that allows everything (authorization is test_policy_enforcement's)

ALLOW_ALL = "e2e-device-auth-allow-all"


def allow_everything(iot, dev: Device) -> None:
    try:
        iot.create_policy(policyName=ALLOW_ALL, policyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
        }))
    except iot.exceptions.ResourceAlreadyExistsException:
        pass
    iot.attach_policy(policyName=ALLOW_ALL, target=cert_arn(dev.id))


def api_device(iot, root, active: bool = True) -> Device:
    dev = _pki.api_device(iot, root, active)
    allow_everything(iot, dev)
    return dev


def register_device(iot, ca: Ca, cn: str) -> Device:
    dev = _pki.register_device(iot, ca, cn)
    allow_everything(iot, dev)
    return dev


# ---------------------------------------------------------------------------------------------
# clients with a device certificate

# Where a device connects: the non-anonymous MQTT-over-TLS listener (port 8883's role), or the
# HTTPS port with ALPN x-amzn-mqtt-ca (port 443's role).
WHERE = ["mqtts", "alpn"]


def device_port(broker, where: str) -> int:
    return broker.listener_port("mqtts" if where == "mqtts" else "https")


def device_context(broker, device: Device | None, where: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    if device is not None:
        ctx.load_cert_chain(str(device.cert), str(device.key))
    if where == "alpn":
        ctx.set_alpn_protocols(["x-amzn-mqtt-ca"])
    return ctx


def device_client(broker, device: Device | None, where: str = "mqtts", version: int = 5) -> Paho:
    """A paho client presenting `device`'s certificate (or none)."""
    p = Paho(broker, client_id=uid("dev"), version=version, transport="tcp")
    p.port = device_port(broker, where)
    p.c.tls_set_context(device_context(broker, device, where))
    return p


def refused(p: Paho) -> str:
    """Connects expecting refusal; returns how (TLS error text or the CONNACK code). With TLS
    1.3 the client's handshake ends before the server has checked its certificate, so the
    alert arrives on the first read and paho reports a lost connection instead of a CONNACK."""
    try:
        ack = p.connect(expect_success=False)
    except (ssl.SSLError, OSError) as e:
        return f"TLS: {e}"
    finally:
        p.close()
    assert ack.rc != 0, "connected with a certificate that should be refused"
    return f"rc {ack.rc}"


def tls_alert(broker, device: Device, where: str) -> str:
    """The TLS alert a raw TLS connection presenting `device` gets (on the first read: TLS
    1.3), e.g. SSLV3_ALERT_CERTIFICATE_REVOKED."""
    import socket

    ctx = device_context(broker, device, where)
    with socket.create_connection((broker.host, device_port(broker, where)), timeout=WAIT) as s:
        try:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                data = t.recv(16)
        except ssl.SSLError as e:
            return e.reason or str(e)
    raise AssertionError(f"no TLS alert (read {data!r})")


def assert_closed_by_server(p: Paho, version: int) -> None:
    reason = p.wait_disconnected(CLOSE_WITHIN)
    if version == 5:
        assert rc_value(reason) == NOT_AUTHORIZED, reason


def roundtrip(p: Paho) -> None:
    t = topic("dev")
    p.subscribe(t, qos=1)
    p.publish(t, b"ping", qos=1)
    assert p.get().payload == b"ping"


def mosquitto(tool: str, broker, device: Device | None, where: str) -> list[str]:
    cmd = [tool, "-h", broker.host, "-p", str(device_port(broker, where)), "-V", "mqttv5",
           "--cafile", str(broker.ca), "-i", uid("mosq")]
    if device is not None:
        cmd += ["--cert", str(device.cert), "--key", str(device.key)]
    if where == "alpn":
        cmd += ["--tls-alpn", "x-amzn-mqtt-ca"]
    return cmd


# ---------------------------------------------------------------------------------------------
# connecting


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("version", [5, 4])
def test_api_made_certificate_connects_with_paho(broker, pki, where, version):
    iot = aws.iot(broker)
    dev = api_device(iot, pki)
    with device_client(broker, dev, where, version) as p:
        p.connect()
        roundtrip(p)


@pytest.mark.parametrize("where", WHERE)
def test_mosquitto_clients_with_a_certificate(broker, pki, where):
    iot = aws.iot(broker)
    dev = api_device(iot, pki)
    t = topic("mosq")
    sub = subprocess.Popen(
        ["stdbuf", "-oL"] + mosquitto("mosquitto_sub", broker, dev, where)
        + ["-t", t, "-q", "1", "-C", "1", "-W", str(int(WAIT * 2)), "-d"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read():
        for line in sub.stdout:
            lines.put(line.rstrip("\n"))
        lines.put("\0EOF")

    import threading

    threading.Thread(target=read, daemon=True).start()
    trace = []
    while True:
        line = lines.get(timeout=WAIT)
        trace.append(line)
        assert line != "\0EOF", f"mosquitto_sub exited: {trace}"
        if "received SUBACK" in line:
            break
    pub = subprocess.run(
        mosquitto("mosquitto_pub", broker, dev, where) + ["-t", t, "-m", "hello", "-q", "1"],
        capture_output=True, text=True, timeout=WAIT * 3,
    )
    assert pub.returncode == 0, pub.stderr
    while True:
        line = lines.get(timeout=WAIT)
        trace.append(line)
        assert line != "\0EOF", f"mosquitto_sub exited: {trace}"
        if line == "hello":
            break
    assert sub.wait(timeout=WAIT) == 0


def test_a_certificate_registered_under_our_ca_connects(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("Fleet CA"))
    register_ca(iot, ca)
    dev = register_device(iot, ca, "fleet-1")
    with device_client(broker, dev, "alpn") as p:
        p.connect()
        roundtrip(p)


def test_refused_certificates(broker, pki):
    iot = aws.iot(broker)
    inactive = api_device(iot, pki, active=False)
    revoked = api_device(iot, pki)
    iot.update_certificate(certificateId=revoked.id, newStatus="REVOKED")
    unknown = self_signed(pki, "stranger")
    foreign_ca = Ca(pki, uid("Unregistered CA"))
    foreign = foreign_ca.device("foreign")
    for name, dev in [("inactive", inactive), ("revoked", revoked), ("unknown", unknown),
                      ("unregistered CA", foreign)]:
        for where in WHERE:
            how = refused(device_client(broker, dev, where))
            print(f"{name} on {where}: {how}")
            alert = tls_alert(broker, dev, where)
            expected = "CERTIFICATE_REVOKED" if name == "revoked" else "CERTIFICATE_UNKNOWN"
            assert alert.endswith(expected), f"{name} on {where}: {alert}"
            # mosquitto_pub gives up with an error too.
            p = subprocess.run(
                mosquitto("mosquitto_pub", broker, dev, where) + ["-t", topic(), "-m", "x", "-q", "1"],
                capture_output=True, text=True, timeout=WAIT * 3,
            )
            assert p.returncode != 0, f"{name} on {where}: mosquitto_pub published"
    # The refusals say why in the log, by certificate id (never a key).
    log = broker.log()
    assert revoked.id in log and "REVOKED" in log


def test_without_a_certificate_the_device_listeners_say_not_authorized(broker):
    for where in WHERE:
        with device_client(broker, None, where) as p:
            assert p.connect(expect_success=False).rc == NOT_AUTHORIZED


# ---------------------------------------------------------------------------------------------
# live revocation


@pytest.mark.parametrize("status", ["REVOKED", "INACTIVE"])
@pytest.mark.parametrize("version", [5, 4])
def test_status_change_closes_open_connections(broker, pki, status, version):
    iot = aws.iot(broker)
    dev = api_device(iot, pki)
    bystander = api_device(iot, pki)
    with device_client(broker, dev, "mqtts", version) as a, \
            device_client(broker, dev, "alpn", version) as b, \
            device_client(broker, bystander, "mqtts", version) as c:
        for p in (a, b, c):
            p.connect()
        iot.update_certificate(certificateId=dev.id, newStatus=status)
        assert_closed_by_server(a, version)
        assert_closed_by_server(b, version)
        # Another certificate's connection is untouched.
        roundtrip(c)
    refused(device_client(broker, dev))
    if status == "INACTIVE":
        iot.update_certificate(certificateId=dev.id, newStatus="ACTIVE")
        with device_client(broker, dev) as p:
            p.connect()


def test_deleting_a_certificate_closes_its_connection(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("Del CA"))
    register_ca(iot, ca)
    dev = register_device(iot, ca, "to-delete")
    with device_client(broker, dev) as p:
        p.connect()
        iot.update_certificate(certificateId=dev.id, newStatus="INACTIVE")
        assert_closed_by_server(p, 5)
    iot.delete_certificate(certificateId=dev.id, forceDelete=True)  # detaches its policy
    refused(device_client(broker, dev))


def test_deactivating_the_ca_closes_its_devices_connections(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("Deactivated CA"))
    ca_id = register_ca(iot, ca)
    dev = register_device(iot, ca, "under-ca")
    other = api_device(iot, pki)
    with device_client(broker, dev) as p, device_client(broker, other) as q:
        p.connect()
        q.connect()
        iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
        assert_closed_by_server(p, 5)
        roundtrip(q)
    refused(device_client(broker, dev, "alpn"))
    iot.update_ca_certificate(certificateId=ca_id, newStatus="ACTIVE")
    with device_client(broker, dev) as p:
        p.connect()


def test_a_crl_refuses_listed_certificates_and_closes_their_connections(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("CRL CA"))
    ca_id = register_ca(iot, ca)
    listed = register_device(iot, ca, "listed")
    kept = register_device(iot, ca, "kept")
    with device_client(broker, listed) as p, device_client(broker, kept, "alpn") as q:
        p.connect()
        q.connect()
        status, body = aws.signed(broker, "PUT", f"/cacertificate/{ca_id}/crl", {"crlPem": ca.crl([listed])})
        assert status == 200, body
        assert_closed_by_server(p, 5)
        roundtrip(q)
    refused(device_client(broker, listed, "alpn"))
    assert tls_alert(broker, listed, "mqtts").endswith("CERTIFICATE_REVOKED")
    # Removing the CRL lets it back in.
    status, body = aws.signed(broker, "DELETE", f"/cacertificate/{ca_id}/crl")
    assert status == 200, body
    with device_client(broker, listed) as p:
        p.connect()


# ---------------------------------------------------------------------------------------------
# JITR


def test_jitr_registers_pending_activation_and_announces_it(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("JITR CA"))
    ca_id = register_ca(iot, ca, allowAutoRegistration=True)
    dev = ca.device("newcomer")
    with Paho(broker, transport="tcp") as watcher:  # anonymous, on the dev listener
        watcher.connect()
        assert watcher.subscribe("$aws/events/certificates/registered/#", qos=1) == [1]
        refused(device_client(broker, dev))
        msg = watcher.get()
        assert msg.topic == f"$aws/events/certificates/registered/{ca_id}"
        event = json.loads(msg.payload)
        assert event["certificateId"] == dev.id
        assert event["caCertificateId"] == ca_id
        assert event["certificateStatus"] == "PENDING_ACTIVATION"
        assert event["awsAccountId"] == "000000000000"
        assert isinstance(event["timestamp"], int) and event["timestamp"] > 1_600_000_000_000
        registered_at = event["certificateRegistrationTimestamp"]
        described = iot.describe_certificate(certificateId=dev.id)["certificateDescription"]
        assert described["status"] == "PENDING_ACTIVATION"
        assert described["caCertificateId"] == ca_id

        # A PENDING_ACTIVATION certificate trying again: refused and announced again.
        refused(device_client(broker, dev, "alpn"))
        again = json.loads(watcher.get().payload)
        assert again["certificateId"] == dev.id
        assert again["certificateRegistrationTimestamp"] == registered_at

    # The operator (or a rule) activates it and gives it a policy: it connects.
    iot.update_certificate(certificateId=dev.id, newStatus="ACTIVE")
    allow_everything(iot, dev)
    with device_client(broker, dev) as p:
        p.connect()
        roundtrip(p)


def test_no_jitr_without_auto_registration(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("Plain CA"))
    register_ca(iot, ca, allowAutoRegistration=False)
    dev = ca.device("unregistered")
    refused(device_client(broker, dev))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=dev.id)


# ---------------------------------------------------------------------------------------------
# the HTTPS port


@pytest.mark.parametrize("alpn", ["x-amzn-http-ca", "http/1.1"])
def test_a_certificate_alone_does_not_reach_the_control_plane(broker, pki, alpn):
    iot = aws.iot(broker)
    dev = api_device(iot, pki)
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    ctx.set_alpn_protocols([alpn])
    url = f"https://localhost:{broker.listener_port('https')}/things"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, context=ctx, timeout=10)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
