"""Domain configurations (issue 6): server certificates imported the ACM way (boto3's `acm`
client and `ferrocore server-cert import`), Create/Describe/List/Update/DeleteDomainConfiguration
with AWS's shapes and errors (boto3 and the AWS CLI), the certificate presented by SNI (Python's
`ssl` with `server_hostname=` on 127.0.0.1), a re-import presented without a restart, a DISABLED
domain refused at the handshake, and a domain's default authorizer for custom-auth clients that
name none (override refused unless allowed; applicationProtocol enforced)."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import authorizers
import aws
import brokers
import mqttraw
from clients import WAIT, tls_context, uid
from test_custom_auth import Webhook

pytestmark = pytest.mark.ferrocore_only

DOMAIN = "iot.example.test"
NOT_AUTHORIZED = 0x87
TIMEOUT = WAIT * 3  # only to avoid hangs


def server_certificate(folder: Path, name: str, host: str = DOMAIN) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for `host` and its key (openssl)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=DNS:{host}"],
        check=True, capture_output=True)
    return cert, key


def der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


def presented(port: int, server_hostname: str | None) -> bytes:
    """The certificate the server presents on 127.0.0.1:`port` to a client sending SNI
    `server_hostname` (none for None)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        with ctx.wrap_socket(s, server_hostname=server_hostname) as tls:
            return tls.getpeercert(binary_form=True)


def admin(broker, *args: str) -> str:
    """`ferrocore ARGS... --data-dir <the broker's>`; its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FERROCORE_"))}
    p = subprocess.run([str(brokers.ferrocore_bin()), *args, "--data-dir", str(broker.data_dir)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def error_code(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_domain_configurations_with_aws_shapes_and_errors(start_broker, tmp_path):
    b = start_broker()
    iot, acm = aws.iot(b), aws.client(b, "acm")
    cert, key = server_certificate(tmp_path, "domain")
    arn = acm.import_certificate(Certificate=cert.read_bytes(), PrivateKey=key.read_bytes())["CertificateArn"]
    assert re.fullmatch(r"arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}", arn), arn
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["DomainName"] == DOMAIN and detail["Type"] == "IMPORTED" and detail["InUseBy"] == []
    assert "PRIVATE KEY" not in str(detail)

    created = iot.create_domain_configuration(domainConfigurationName="custom", domainName=DOMAIN,
                                              serverCertificateArns=[arn])
    assert created["domainConfigurationName"] == "custom"
    assert re.fullmatch(r"arn:aws:iot:[a-z0-9-]+:\d{12}:domainconfiguration/custom/[a-z0-9]{5}",
                        created["domainConfigurationArn"]), created
    d = iot.describe_domain_configuration(domainConfigurationName="custom")
    assert d["domainName"] == DOMAIN
    assert d["domainConfigurationStatus"] == "ENABLED"
    assert d["domainType"] == "CUSTOMER_MANAGED"
    assert d["serviceType"] == "DATA"
    assert d["authenticationType"] == "DEFAULT" and d["applicationProtocol"] == "DEFAULT"
    assert d["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS13_1_2_2022_10"}
    assert d["serverCertificates"] == [{"serverCertificateArn": arn, "serverCertificateStatus": "VALID"}]
    builtin = iot.describe_domain_configuration(domainConfigurationName="iot:Data-ATS")
    assert builtin["domainType"] == "ENDPOINT"
    assert builtin["domainName"] == iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    names = [c["domainConfigurationName"] for c in iot.list_domain_configurations()["domainConfigurations"]]
    assert names == ["custom", "iot:Data-ATS"]
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"] == [created["domainConfigurationArn"]]

    # AWS's errors.
    again = lambda: iot.create_domain_configuration(domainConfigurationName="custom", domainName=DOMAIN,  # noqa: E731
                                                    serverCertificateArns=[arn])
    assert error_code(again) == "ResourceAlreadyExistsException"
    assert error_code(lambda: iot.create_domain_configuration(
        domainConfigurationName="other", domainName="other.example.test",
        serverCertificateArns=[arn])) == "CertificateValidationException"
    assert error_code(lambda: iot.create_domain_configuration(
        domainConfigurationName="x", domainName=DOMAIN, serverCertificateArns=[arn],
        authorizerConfig={"defaultAuthorizerName": "missing"})) == "InvalidRequestException"
    assert error_code(lambda: iot.describe_domain_configuration(
        domainConfigurationName="missing")) == "ResourceNotFoundException"
    assert error_code(lambda: iot.delete_domain_configuration(
        domainConfigurationName="custom")) == "InvalidRequestException", "ENABLED"
    assert error_code(lambda: iot.update_domain_configuration(
        domainConfigurationName="iot:Data-ATS", domainConfigurationStatus="DISABLED")) == "InvalidRequestException"
    assert error_code(lambda: acm.delete_certificate(CertificateArn=arn)) == "ResourceInUseException"

    # The AWS CLI.
    described = aws.cli(b, "iot", "describe-domain-configuration", "--domain-configuration-name", "custom")
    assert described["domainName"] == DOMAIN
    aws.cli(b, "iot", "update-domain-configuration", "--domain-configuration-name", "custom",
            "--domain-configuration-status", "DISABLED")
    d = iot.describe_domain_configuration(domainConfigurationName="custom")
    assert d["domainConfigurationStatus"] == "DISABLED"
    aws.cli(b, "iot", "delete-domain-configuration", "--domain-configuration-name", "custom")
    assert "ResourceNotFoundException" in aws.cli_error(
        b, "iot", "describe-domain-configuration", "--domain-configuration-name", "custom")
    acm.delete_certificate(CertificateArn=arn)
    assert acm.list_certificates()["CertificateSummaryList"] == []


def test_sni_picks_the_certificate_reimport_applies_without_restart_and_disabled_is_refused(start_broker, tmp_path):
    b = start_broker()
    iot = aws.iot(b)
    first = server_certificate(tmp_path, "first")
    arn = admin(b, "server-cert", "import", "--certificate", str(first[0]), "--private-key", str(first[1])).strip()
    assert arn.startswith("arn:aws:acm:"), arn
    iot.create_domain_configuration(domainConfigurationName="custom", domainName=DOMAIN,
                                    serverCertificateArns=[arn])
    default = der(b.data_dir / "server.pem")
    for listener in ("https", "mqtts"):
        port = b.listener_port(listener)
        assert presented(port, DOMAIN) == der(first[0]), listener
        assert presented(port, DOMAIN.upper()) == der(first[0]), listener
        assert presented(port, "other.example.test") == default, listener
        assert presented(port, None) == default, listener

    # Re-imported under the same ARN: presented from the next handshake, same process.
    pid = b.proc.pid
    second = server_certificate(tmp_path, "second")
    assert admin(b, "server-cert", "import", "--certificate", str(second[0]), "--private-key", str(second[1]),
                 "--arn", arn).strip() == arn
    assert presented(b.listener_port("https"), DOMAIN) == der(second[0])
    assert b.alive() and b.proc.pid == pid
    assert arn in admin(b, "server-cert", "list")

    # DISABLED: the handshake for that name fails (alert access_denied); others go on.
    iot.update_domain_configuration(domainConfigurationName="custom", domainConfigurationStatus="DISABLED")
    with pytest.raises(ssl.SSLError, match="(?i)access.denied"):
        presented(b.listener_port("mqtts"), DOMAIN)
    assert presented(b.listener_port("mqtts"), "other.example.test") == default
    iot.update_domain_configuration(domainConfigurationName="custom", domainConfigurationStatus="ENABLED")
    assert presented(b.listener_port("mqtts"), DOMAIN) == der(second[0])


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def test_domain_default_authorizer_override_and_protocols(start_broker, tmp_path, webhook):
    b = start_broker(tls_anonymous=False)
    iot, acm = aws.iot(b), aws.client(b, "acm")
    for name in ("hook", "other"):
        iot.create_authorizer(authorizerName=name, authorizerFunctionArn=webhook.url, signingDisabled=True,
                              status="ACTIVE")
    cert, key = server_certificate(tmp_path, "domain")
    arn = acm.import_certificate(Certificate=cert.read_bytes(), PrivateKey=key.read_bytes())["CertificateArn"]
    iot.create_domain_configuration(
        domainConfigurationName="custom", domainName=DOMAIN, serverCertificateArns=[arn],
        authorizerConfig={"defaultAuthorizerName": "hook", "allowAuthorizerOverride": False},
        authenticationType="CUSTOM_AUTH")
    trusting = tls_context(b, ["mqtt"])
    trusting.load_verify_locations(cafile=str(cert))
    https = b.listener_port("https")

    def connack(user: str, sni: str | None = DOMAIN, port: int = https) -> int:
        c = mqttraw.RawClient("127.0.0.1", port, version=5, tls=trusting, server_hostname=sni or "localhost",
                              timeout=TIMEOUT)
        try:
            return c.connect(uid("dom"), username=user, password=b"pw").reason
        finally:
            c.sock.close()

    # The domain's default authorizer admits a client naming none (no account default is set).
    assert connack("alice") == 0
    assert webhook.events[-1]["protocolData"]["tls"]["serverName"] == DOMAIN
    # Without the domain's name there is no default authorizer.
    assert connack("alice", sni=None) == NOT_AUTHORIZED
    # Naming another authorizer is refused without calling anything; naming the default is fine.
    calls = len(webhook.events)
    assert connack("alice?x-amz-customauthorizer-name=other") == NOT_AUTHORIZED
    assert len(webhook.events) == calls
    assert connack("alice?x-amz-customauthorizer-name=hook") == 0
    # Allowed once the domain says so.
    iot.update_domain_configuration(domainConfigurationName="custom",
                                    authorizerConfig={"defaultAuthorizerName": "hook",
                                                      "allowAuthorizerOverride": True})
    assert connack("alice?x-amz-customauthorizer-name=other") == 0
    assert webhook.events[-1]["protocolData"]["mqtt"]["username"].endswith("name=other")

    # applicationProtocol MQTT_WSS: MQTT over TLS to that name is closed after the handshake.
    iot.update_domain_configuration(domainConfigurationName="custom", applicationProtocol="MQTT_WSS")
    with pytest.raises(mqttraw.Closed):
        connack("alice")
    assert connack("alice", sni=None) == NOT_AUTHORIZED, "other names are not affected"


class Refuser(authorizers.Webhook):
    """Refuses everyone."""

    def reply(self, event: dict) -> tuple[int, dict]:
        return 200, {"isAuthenticated": False, "principalId": "nobody"}


def test_a_domain_change_reaches_the_connections_open_to_it(start_broker, tmp_path, webhook):
    """Open connections follow their domain: another default authorizer asks it about them at
    once (here one that refuses: DISCONNECT 0x87), and disabling the domain closes them."""
    refuser = Refuser()
    try:
        b = start_broker(tls_anonymous=False)
        iot, acm = aws.iot(b), aws.client(b, "acm")
        iot.create_authorizer(authorizerName="hook", authorizerFunctionArn=webhook.url, signingDisabled=True,
                              status="ACTIVE")
        iot.create_authorizer(authorizerName="refuser", authorizerFunctionArn=refuser.url, signingDisabled=True,
                              status="ACTIVE")
        cert, key = server_certificate(tmp_path, "domain")
        arn = acm.import_certificate(Certificate=cert.read_bytes(), PrivateKey=key.read_bytes())["CertificateArn"]
        iot.create_domain_configuration(
            domainConfigurationName="custom", domainName=DOMAIN, serverCertificateArns=[arn],
            authorizerConfig={"defaultAuthorizerName": "hook", "allowAuthorizerOverride": False})
        trusting = tls_context(b, ["mqtt"])
        trusting.load_verify_locations(cafile=str(cert))

        def connected() -> mqttraw.RawClient:
            c = mqttraw.RawClient("127.0.0.1", b.listener_port("https"), version=5, tls=trusting,
                                  server_hostname=DOMAIN, timeout=TIMEOUT)
            assert c.connect(uid("dom"), username="alice", password=b"pw").reason == 0
            return c

        def closed_not_authorized(c: mqttraw.RawClient) -> bool:
            return [p.reason for p in c.wait_closed(TIMEOUT) if p.type == mqttraw.DISCONNECT] == [NOT_AUTHORIZED]

        c = connected()
        iot.update_domain_configuration(domainConfigurationName="custom",
                                        authorizerConfig={"defaultAuthorizerName": "refuser",
                                                          "allowAuthorizerOverride": False})
        assert closed_not_authorized(c), "the new default authorizer decides the open connection"
        assert refuser.events, "asked"

        iot.update_domain_configuration(domainConfigurationName="custom",
                                        authorizerConfig={"defaultAuthorizerName": "hook",
                                                          "allowAuthorizerOverride": False})
        c = connected()
        iot.update_domain_configuration(domainConfigurationName="custom", domainConfigurationStatus="DISABLED")
        assert closed_not_authorized(c), "a disabled domain's connections are closed"
    finally:
        refuser.close()
