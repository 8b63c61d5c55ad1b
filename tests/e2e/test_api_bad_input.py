"""Malformed requests to the control plane get AWS-shaped 400 errors (the SDKs raise the
modelled exception), never a crash, a hang or a 500."""

from __future__ import annotations

import pytest

import aws
from clients import uid
from pki import Ca

pytestmark = pytest.mark.ferrocore_only


def assert_invalid(status: int, body: dict, code: str = "InvalidRequestException") -> None:
    assert status == 400, body
    assert body["errorType"] == code, body
    assert body["message"], body


@pytest.mark.parametrize(
    "raw",
    [
        b'{"attributePayload": ',
        b"\xff\xfe not json",
        b'{"attributePayload": 5}',
        b'{"attributePayload": {"attributes": {"a": 1}}}',
        b"[]",
        b'"just a string"',
    ],
)
def test_malformed_json_bodies(broker, raw):
    status, body = aws.signed(broker, "POST", f"/things/{uid('bad')}", raw=raw)
    assert_invalid(status, body)


def test_oversized_body(broker):
    raw = b'{"attributePayload": {"attributes": {"a": "' + b"x" * (2 << 20) + b'"}}}'
    status, body = aws.signed(broker, "POST", f"/things/{uid('big')}", raw=raw)
    assert_invalid(status, body)
    assert "larger than" in body["message"]


def test_malformed_query_values(broker):
    status, body = aws.signed(broker, "POST", "/keys-and-certificate?setAsActive=maybe")
    assert_invalid(status, body)
    status, body = aws.signed(broker, "GET", "/things?maxResults=lots")
    assert_invalid(status, body)


def test_unknown_operation_is_aws_shaped(broker):
    status, body = aws.signed(broker, "GET", "/no-such-operation")
    assert status == 404
    assert body["errorType"] and body["message"]


@pytest.mark.parametrize(
    "pem",
    [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_malformed_certificates(broker, pem):
    iot = aws.iot(broker)
    with pytest.raises((iot.exceptions.CertificateValidationException, iot.exceptions.InvalidRequestException)):
        iot.register_certificate_without_ca(certificatePem=pem)
    with pytest.raises((iot.exceptions.CertificateValidationException, iot.exceptions.InvalidRequestException)):
        iot.register_ca_certificate(caCertificate=pem, certificateMode="SNI_ONLY")


def test_truncated_der_certificate(broker, pki):
    pem = Ca(pki, uid("Truncated CA")).pem
    lines = pem.strip().splitlines()
    truncated = "\n".join(lines[:3] + lines[-1:]) + "\n"
    iot = aws.iot(broker)
    with pytest.raises((iot.exceptions.CertificateValidationException, iot.exceptions.InvalidRequestException)):
        iot.register_certificate_without_ca(certificatePem=truncated)


@pytest.mark.parametrize(
    "csr",
    [
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "garbage",
    ],
)
def test_malformed_csr(broker, csr):
    iot = aws.iot(broker)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_certificate_from_csr(certificateSigningRequest=csr)


def test_empty_required_members(broker):
    # botocore refuses empty strings before sending; a raw request gets the server's answer.
    status, body = aws.signed(broker, "POST", "/certificate/register-no-ca", {"certificatePem": ""})
    assert status == 400, body
    assert body["errorType"] in ("CertificateValidationException", "InvalidRequestException")
    status, body = aws.signed(broker, "POST", "/certificates", {"certificateSigningRequest": ""})
    assert_invalid(status, body)


def test_the_server_survives_bad_input(broker):
    for raw in (b"{", b"\x00" * 1000, b'{"a":' * 1000):
        aws.signed(broker, "POST", f"/things/{uid('x')}", raw=raw)
        aws.signed(broker, "PATCH", f"/things/{uid('x')}", raw=raw)
        aws.signed(broker, "POST", "/cacertificate", raw=raw)
    assert aws.iot(broker).describe_endpoint()["endpointAddress"]
