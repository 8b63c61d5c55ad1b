"""The `iot` control plane for certificates, CA certificates, thing principals and
DescribeEndpoint, through boto3 and the AWS CLI v1; plus Ferrocore's CRL extension through a
SigV4-signed request of our own (boto3 has no operation for it).

Test CAs, device certificates, CSRs and CRLs are made with the `openssl` command line."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

import aws
from clients import uid
from pki import ACCOUNT, REGION, Ca, cert_arn, cert_id, csr_pem, register_ca

pytestmark = pytest.mark.ferrocore_only


def issue_from_csr(iot, root: Path, active: bool = True) -> dict:
    return iot.create_certificate_from_csr(
        certificateSigningRequest=csr_pem(root, uid("dev")), setAsActive=active
    )


# ---------------------------------------------------------------------------------------------
# certificates Ferrocore issues


def test_create_keys_and_certificate_describe_and_the_key_is_nowhere_else(broker):
    iot = aws.iot(broker)
    out = iot.create_keys_and_certificate(setAsActive=True)
    cid = out["certificateId"]
    assert cid == cert_id(out["certificatePem"])
    assert out["certificateArn"] == cert_arn(cid)
    private = out["keyPair"]["PrivateKey"]
    assert "PRIVATE KEY-----" in private
    assert "PUBLIC KEY-----" in out["keyPair"]["PublicKey"]

    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["certificateArn"] == cert_arn(cid)
    assert d["certificateId"] == cid
    assert d["status"] == "ACTIVE"
    assert d["certificateMode"] == "DEFAULT"
    assert d["ownedBy"] == ACCOUNT
    assert d["customerVersion"] == 1
    assert d["generationId"]
    assert "caCertificateId" not in d
    assert d["certificatePem"].strip() == out["certificatePem"].strip()
    assert d["validity"]["notAfter"] == datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((d["creationDate"] - now).total_seconds()) < 300
    assert d["lastModifiedDate"] == d["creationDate"]

    # The private key is in the answer only: not in the log, not in the data directory.
    body = [line for line in private.splitlines() if line and not line.startswith("-----")]
    needles = [body[1].encode(), body[-2].encode()]
    assert not any(n in broker.log().encode() for n in needles)
    for path in broker.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"private key material in {path}"


def test_create_certificate_from_csr(broker, pki):
    iot = aws.iot(broker)
    out = issue_from_csr(iot, pki, active=False)
    assert out["certificateId"] == cert_id(out["certificatePem"])
    d = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert d["status"] == "INACTIVE"
    assert d["certificateMode"] == "DEFAULT"
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_certificate_from_csr(certificateSigningRequest="-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    assert "certificate signing request" in e.value.response["Error"]["Message"]


def test_update_certificate_status_rules(broker, pki):
    iot = aws.iot(broker)
    cid = issue_from_csr(iot, pki, active=False)["certificateId"]
    iot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    iot.update_certificate(certificateId=cid, newStatus="ACTIVE")  # idempotent
    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["status"] == "ACTIVE"
    assert d["customerVersion"] == 2
    for internal in ["PENDING_TRANSFER", "PENDING_ACTIVATION"]:
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.update_certificate(certificateId=cid, newStatus=internal)
    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    with pytest.raises(iot.exceptions.CertificateStateException) as e:
        iot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 406
    assert iot.describe_certificate(certificateId=cid)["certificateDescription"]["status"] == "REVOKED"
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_certificate(certificateId="0" * 64, newStatus="ACTIVE")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId="0" * 64)


def test_delete_certificate_rules(broker, pki):
    iot = aws.iot(broker)
    cid = issue_from_csr(iot, pki, active=True)["certificateId"]
    with pytest.raises(iot.exceptions.CertificateStateException):
        iot.delete_certificate(certificateId=cid)
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    thing = uid("thing")
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=cert_arn(cid))
    with pytest.raises(iot.exceptions.DeleteConflictException) as e:
        iot.delete_certificate(certificateId=cid, forceDelete=True)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    iot.detach_thing_principal(thingName=thing, principal=cert_arn(cid))
    iot.delete_certificate(certificateId=cid)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=cid)


def test_list_certificates_pages_by_creation_date(broker, pki):
    iot = aws.iot(broker)
    mine = [issue_from_csr(iot, pki)["certificateId"] for _ in range(5)]

    def walk(ascending: bool) -> list[dict]:
        pages = iot.get_paginator("list_certificates").paginate(
            ascendingOrder=ascending, PaginationConfig={"PageSize": 2}
        )
        listed = []
        for page in pages:
            assert len(page["certificates"]) <= 2
            listed.extend(page["certificates"])
        return listed

    ascending = walk(True)
    descending = walk(False)
    ids_up = [c["certificateId"] for c in ascending]
    assert len(ids_up) == len(set(ids_up))
    assert set(mine) <= set(ids_up)
    assert ids_up == [c["certificateId"] for c in reversed(descending)]
    dates = [c["creationDate"] for c in ascending]
    assert dates == sorted(dates)
    entry = next(c for c in ascending if c["certificateId"] == mine[0])
    assert entry["certificateArn"] == cert_arn(mine[0])
    assert entry["status"] == "ACTIVE"
    assert entry["certificateMode"] == "DEFAULT"
    # Default order: newest first.
    first = iot.list_certificates(pageSize=1)
    assert first["certificates"][0]["certificateId"] == descending[0]["certificateId"]
    assert "nextMarker" in first
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_certificates(pageSize=251)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_certificates(marker="AAAA")


# ---------------------------------------------------------------------------------------------
# CA certificates and device certificates registered under them


def test_ca_registration(broker, pki):
    iot = aws.iot(broker)
    code = iot.get_registration_code()["registrationCode"]
    assert len(code) == 64
    assert iot.get_registration_code()["registrationCode"] == code
    ca = Ca(pki, uid("Fleet CA"))
    template = uid("jitp")

    with pytest.raises(iot.exceptions.RegistrationCodeValidationException):
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=ca.sign("not-the-code"))
    other = Ca(pki, "someone else")
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=other.sign(code))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.register_ca_certificate(caCertificate=ca.pem)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.register_ca_certificate(
            caCertificate=ca.pem, verificationCertificate=ca.sign(code), certificateMode="SNI_ONLY"
        )
    with pytest.raises(iot.exceptions.CertificateValidationException) as e:
        iot.register_ca_certificate(caCertificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", certificateMode="SNI_ONLY")
    assert "CA certificate is invalid" in e.value.response["Error"]["Message"]

    out = iot.register_ca_certificate(
        caCertificate=ca.pem,
        verificationCertificate=ca.sign(code),
        setAsActive=True,
        allowAutoRegistration=True,
        registrationConfig={"templateName": template},
        tags=[{"Key": "team", "Value": "e2e"}],
    )
    ca_id = out["certificateId"]
    assert ca_id == cert_id(ca.pem)
    assert out["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cacert/{ca_id}"
    described = iot.describe_ca_certificate(certificateId=ca_id)
    d = described["certificateDescription"]
    assert d["status"] == "ACTIVE"
    assert d["autoRegistrationStatus"] == "ENABLE"
    assert d["certificateMode"] == "DEFAULT"
    assert d["ownedBy"] == ACCOUNT
    assert d["customerVersion"] == 1
    assert d["certificatePem"].strip() == ca.pem.strip()
    assert d["validity"]["notBefore"] < d["validity"]["notAfter"]
    assert described["registrationConfig"] == {"templateName": template}
    listed = [c["certificateId"] for page in iot.get_paginator("list_ca_certificates").paginate() for c in page["certificates"]]
    assert ca_id in listed
    only = iot.list_ca_certificates(templateName=template)["certificates"]
    assert [c["certificateId"] for c in only] == [ca_id]

    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=ca.sign(code))
    assert e.value.response["resourceId"] == ca_id
    assert e.value.response["resourceArn"] == out["certificateArn"]

    sni = Ca(pki, uid("SNI CA"))
    sni_id = iot.register_ca_certificate(caCertificate=sni.pem, certificateMode="SNI_ONLY")["certificateId"]
    d = iot.describe_ca_certificate(certificateId=sni_id)["certificateDescription"]
    assert d["certificateMode"] == "SNI_ONLY"
    assert d["status"] == "INACTIVE"
    assert d["autoRegistrationStatus"] == "DISABLE"


def test_register_device_certificates(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("Device CA"))
    device = ca.sign("device-1")
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem=device)
    ca_id = register_ca(iot, ca, setAsActive=True)

    out = iot.register_certificate(certificatePem=device, status="ACTIVE")
    cid = out["certificateId"]
    assert cid == cert_id(device)
    assert out["certificateArn"] == cert_arn(cid)
    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["caCertificateId"] == ca_id
    assert d["status"] == "ACTIVE"
    assert d["certificateMode"] == "DEFAULT"
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.register_certificate(certificatePem=device)
    assert e.value.response["resourceId"] == cid

    second = iot.register_certificate(certificatePem=ca.sign("device-2"), caCertificatePem=ca.pem)["certificateId"]
    assert iot.describe_certificate(certificateId=second)["certificateDescription"]["status"] == "INACTIVE"
    by_ca = [
        c["certificateId"]
        for page in iot.get_paginator("list_certificates_by_ca").paginate(
            caCertificateId=ca_id, PaginationConfig={"PageSize": 1}
        )
        for c in page["certificates"]
    ]
    assert sorted(by_ca) == sorted([cid, second])

    other = Ca(pki, uid("Other CA"))
    register_ca(iot, other, setAsActive=True)
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem=ca.sign("device-3"), caCertificatePem=other.pem)
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem="not a certificate")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.register_certificate(certificatePem=ca.sign("device-4"), status="PENDING_ACTIVATION")

    no_ca = iot.register_certificate_without_ca(certificatePem=Ca(pki, "unregistered").sign("x"), status="ACTIVE")
    d = iot.describe_certificate(certificateId=no_ca["certificateId"])["certificateDescription"]
    assert d["certificateMode"] == "SNI_ONLY"
    assert "caCertificateId" not in d


def test_two_cas_with_one_subject_and_key_conflict(broker, pki):
    iot = aws.iot(broker)
    subject = uid("Twin CA")
    first = Ca(pki, subject)
    twin = Ca(pki, subject, key=first.key)
    assert cert_id(first.pem) != cert_id(twin.pem)
    register_ca(iot, first, setAsActive=True)
    twin_id = register_ca(iot, twin, setAsActive=True)
    device = first.sign("twin-device")
    with pytest.raises(iot.exceptions.CertificateConflictException):
        iot.register_certificate(certificatePem=device)
    cid = iot.register_certificate(certificatePem=device, caCertificatePem=twin.pem)["certificateId"]
    assert iot.describe_certificate(certificateId=cid)["certificateDescription"]["caCertificateId"] == twin_id


def test_update_and_delete_ca_certificate(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("Updatable CA"))
    ca_id = register_ca(iot, ca, setAsActive=True)
    device = iot.register_certificate(certificatePem=ca.sign("d"), status="ACTIVE")["certificateId"]

    iot.update_ca_certificate(
        certificateId=ca_id,
        newAutoRegistrationStatus="ENABLE",
        registrationConfig={"templateBody": "{}", "roleArn": "arn:aws:iam::000000000000:role/jitp"},
    )
    described = iot.describe_ca_certificate(certificateId=ca_id)
    assert described["certificateDescription"]["autoRegistrationStatus"] == "ENABLE"
    assert described["certificateDescription"]["customerVersion"] == 2
    assert described["registrationConfig"]["roleArn"] == "arn:aws:iam::000000000000:role/jitp"
    iot.update_ca_certificate(certificateId=ca_id, removeAutoRegistration=True)
    assert "registrationConfig" not in iot.describe_ca_certificate(certificateId=ca_id)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_ca_certificate(certificateId=ca_id, newStatus="REGISTER_INACTIVE")

    with pytest.raises(iot.exceptions.CertificateStateException):
        iot.delete_ca_certificate(certificateId=ca_id)
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    assert iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]["status"] == "INACTIVE"
    iot.delete_ca_certificate(certificateId=ca_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_ca_certificate(certificateId=ca_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_ca_certificate(certificateId=ca_id, newStatus="ACTIVE")
    # The device certificate registered under it stays, naming it.
    d = iot.describe_certificate(certificateId=device)["certificateDescription"]
    assert d["caCertificateId"] == ca_id


# ---------------------------------------------------------------------------------------------
# thing principals


def test_thing_principals(broker, pki):
    iot = aws.iot(broker)
    a, b, c = (uid("thing") for _ in range(3))
    for t in (a, b, c):
        iot.create_thing(thingName=t)
    one = cert_arn(issue_from_csr(iot, pki)["certificateId"])
    two = cert_arn(issue_from_csr(iot, pki)["certificateId"])

    iot.attach_thing_principal(thingName=a, principal=one)
    iot.attach_thing_principal(thingName=a, principal=one)  # again: nothing changes
    iot.attach_thing_principal(thingName=b, principal=one, thingPrincipalType="NON_EXCLUSIVE_THING")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_thing_principal(thingName=c, principal=one, thingPrincipalType="EXCLUSIVE_THING")
    iot.attach_thing_principal(thingName=a, principal=two, thingPrincipalType="EXCLUSIVE_THING")
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.attach_thing_principal(thingName=b, principal=two)
    assert a in e.value.response["Error"]["Message"]

    assert sorted(iot.list_thing_principals(thingName=a)["principals"]) == sorted([one, two])
    paged = [p for page in iot.get_paginator("list_thing_principals").paginate(thingName=a, PaginationConfig={"PageSize": 1}) for p in page["principals"]]
    assert sorted(paged) == sorted([one, two])
    v2 = iot.list_thing_principals_v2(thingName=a)["thingPrincipalObjects"]
    assert {o["principal"]: o["thingPrincipalType"] for o in v2} == {
        one: "NON_EXCLUSIVE_THING",
        two: "EXCLUSIVE_THING",
    }
    only = iot.list_thing_principals_v2(thingName=a, thingPrincipalType="EXCLUSIVE_THING")
    assert [o["principal"] for o in only["thingPrincipalObjects"]] == [two]
    assert sorted(iot.list_principal_things(principal=one)["things"]) == sorted([a, b])
    paged = [t for page in iot.get_paginator("list_principal_things").paginate(principal=one, PaginationConfig={"PageSize": 1}) for t in page["things"]]
    assert sorted(paged) == sorted([a, b])
    v2 = iot.list_principal_things_v2(principal=two)["principalThingObjects"]
    assert v2 == [{"thingName": a, "thingPrincipalType": "EXCLUSIVE_THING"}]

    iot.detach_thing_principal(thingName=b, principal=one)
    iot.detach_thing_principal(thingName=b, principal=one)  # not attached: nothing to do
    assert iot.list_principal_things(principal=one)["things"] == [a]

    unknown = cert_arn("a" * 64)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName=a, principal=unknown)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName=uid("missing"), principal=one)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_principals(thingName=uid("missing"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_principal_things(principal=unknown)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_thing_principal(thingName=a, principal="us-east-1:a-cognito-identity")


# ---------------------------------------------------------------------------------------------
# DescribeEndpoint


def test_describe_endpoint(broker):
    iot = aws.iot(broker)
    # The test broker has no --endpoint-name: the address is localhost.
    assert iot.describe_endpoint()["endpointAddress"] == "localhost"
    for t in ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"]:
        assert iot.describe_endpoint(endpointType=t)["endpointAddress"] == "localhost"
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.describe_endpoint(endpointType="iot:Nothing")


def test_endpoint_name_is_the_endpoint_address(start_broker):
    b = start_broker(args=["--endpoint-name", "iot.example.test"])
    # aws-config names that (unresolvable) host: reach the server by localhost instead.
    iot = aws.session(b).client("iot", endpoint_url=aws.endpoint(b))
    assert iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == "iot.example.test"


# ---------------------------------------------------------------------------------------------
# the CRL extension


def test_ca_crl_extension(broker, pki):
    iot = aws.iot(broker)
    ca = Ca(pki, uid("CRL CA"))
    ca_id = register_ca(iot, ca, setAsActive=True)
    device = ca.sign("to-revoke")
    path = f"/cacertificate/{ca_id}/crl"

    status, body = aws.signed(broker, "GET", path)
    assert (status, body["errorType"]) == (404, "ResourceNotFoundException")

    crl = ca.crl([device])
    status, body = aws.signed(broker, "PUT", path, {"crlPem": crl})
    assert status == 200, body
    assert body["revokedCount"] == 1
    assert body["crlNumber"] == "01"
    status, got = aws.signed(broker, "GET", path)
    assert status == 200
    assert got["crlPem"] == crl
    assert got["revokedCount"] == 1
    assert got["thisUpdate"] < got["nextUpdate"]

    newer = ca.crl([])
    status, body = aws.signed(broker, "PUT", path, {"crlPem": newer})
    assert status == 200, body
    assert body["crlNumber"] == "02"
    # Going back to the older CRL would un-revoke: refused.
    status, body = aws.signed(broker, "PUT", path, {"crlPem": crl})
    assert (status, body["errorType"]) == (400, "InvalidRequestException")
    # Another CA's CRL.
    status, body = aws.signed(broker, "PUT", path, {"crlPem": Ca(pki, "other").crl([])})
    assert (status, body["errorType"]) == (400, "CertificateValidationException")
    assert "CRL" in body["message"]

    status, _ = aws.signed(broker, "DELETE", path)
    assert status == 200
    status, body = aws.signed(broker, "GET", path)
    assert status == 404
    status, body = aws.signed(broker, "PUT", f"/cacertificate/{'0' * 64}/crl", {"crlPem": crl})
    assert (status, body["errorType"]) == (404, "ResourceNotFoundException")


# ---------------------------------------------------------------------------------------------
# the AWS CLI v1, and a restart


def test_aws_cli(broker, pki):
    out = aws.cli(broker, "iot", "create-keys-and-certificate", "--set-as-active")
    cid = out["certificateId"]
    assert "PRIVATE KEY" in out["keyPair"]["PrivateKey"]
    d = aws.cli(broker, "iot", "describe-certificate", "--certificate-id", cid)["certificateDescription"]
    assert d["status"] == "ACTIVE"
    aws.cli(broker, "iot", "update-certificate", "--certificate-id", cid, "--new-status", "INACTIVE")
    d = aws.cli(broker, "iot", "describe-certificate", "--certificate-id", cid)["certificateDescription"]
    assert d["status"] == "INACTIVE"
    err = aws.cli_error(broker, "iot", "update-certificate", "--certificate-id", cid, "--new-status", "PENDING_TRANSFER")
    assert "InvalidRequestException" in err

    code = aws.cli(broker, "iot", "get-registration-code")["registrationCode"]
    ca = Ca(pki, uid("CLI CA"))
    (pki / "ca.pem").write_text(ca.pem)
    (pki / "verification.pem").write_text(ca.sign(code))
    out = aws.cli(
        broker, "iot", "register-ca-certificate",
        "--ca-certificate", f"file://{pki / 'ca.pem'}",
        "--verification-certificate", f"file://{pki / 'verification.pem'}",
        "--set-as-active",
    )
    assert out["certificateId"] == cert_id(ca.pem)

    thing = uid("cli-thing")
    aws.cli(broker, "iot", "create-thing", "--thing-name", thing)
    aws.cli(broker, "iot", "attach-thing-principal", "--thing-name", thing, "--principal", cert_arn(cid))
    listed = aws.cli(broker, "iot", "list-thing-principals", "--thing-name", thing)["principals"]
    assert listed == [cert_arn(cid)]
    endpoint = aws.cli(broker, "iot", "describe-endpoint", "--endpoint-type", "iot:Data-ATS")
    assert endpoint["endpointAddress"] == "localhost"
    things = aws.cli(broker, "iot", "list-principal-things", "--principal", cert_arn(cid))["things"]
    assert things == [thing]
    aws.cli(broker, "iot", "detach-thing-principal", "--thing-name", thing, "--principal", cert_arn(cid))
    assert aws.cli(broker, "iot", "list-thing-principals", "--thing-name", thing)["principals"] == []

    # The rest of the certificate operations.
    (pki / "req.csr").write_text(csr_pem(pki, uid("cli-csr")))
    from_csr = aws.cli(
        broker, "iot", "create-certificate-from-csr",
        "--certificate-signing-request", f"file://{pki / 'req.csr'}",
    )["certificateId"]
    listed = aws.cli(broker, "iot", "list-certificates", "--page-size", "250")["certificates"]
    assert {from_csr, cid} <= {c["certificateId"] for c in listed}
    (pki / "device.pem").write_text(ca.sign("cli-device"))
    registered = aws.cli(
        broker, "iot", "register-certificate",
        "--certificate-pem", f"file://{pki / 'device.pem'}", "--ca-certificate-pem", f"file://{pki / 'ca.pem'}",
        "--status", "ACTIVE",
    )["certificateId"]
    by_ca = aws.cli(broker, "iot", "list-certificates-by-ca", "--ca-certificate-id", cert_id(ca.pem))
    assert [c["certificateId"] for c in by_ca["certificates"]] == [registered]
    (pki / "stranger.pem").write_text(Ca(pki, uid("No CA")).sign("cli-sni"))
    sni = aws.cli(
        broker, "iot", "register-certificate-without-ca",
        "--certificate-pem", f"file://{pki / 'stranger.pem'}",
    )["certificateId"]
    err = aws.cli_error(broker, "iot", "delete-certificate", "--certificate-id", registered)
    assert "CertificateStateException" in err
    for done in (sni, from_csr):
        aws.cli(broker, "iot", "delete-certificate", "--certificate-id", done)
    err = aws.cli_error(broker, "iot", "describe-certificate", "--certificate-id", sni)
    assert "ResourceNotFoundException" in err

    # The rest of the CA operations.
    ca_id = cert_id(ca.pem)
    d = aws.cli(broker, "iot", "describe-ca-certificate", "--certificate-id", ca_id)["certificateDescription"]
    assert d["status"] == "ACTIVE"
    assert ca_id in [c["certificateId"] for c in aws.cli(broker, "iot", "list-ca-certificates")["certificates"]]
    err = aws.cli_error(broker, "iot", "delete-ca-certificate", "--certificate-id", ca_id)
    assert "CertificateStateException" in err
    aws.cli(
        broker, "iot", "update-ca-certificate", "--certificate-id", ca_id,
        "--new-status", "INACTIVE", "--new-auto-registration-status", "ENABLE",
    )
    d = aws.cli(broker, "iot", "describe-ca-certificate", "--certificate-id", ca_id)["certificateDescription"]
    assert (d["status"], d["autoRegistrationStatus"]) == ("INACTIVE", "ENABLE")
    aws.cli(broker, "iot", "delete-ca-certificate", "--certificate-id", ca_id)


def test_certificates_and_cas_survive_a_restart(start_broker, pki):
    b = start_broker()
    iot = aws.iot(b)
    code = iot.get_registration_code()["registrationCode"]
    ca = Ca(pki, uid("Durable CA"))
    ca_id = register_ca(iot, ca, setAsActive=True, allowAutoRegistration=True)
    device = iot.register_certificate(certificatePem=ca.sign("durable"), status="ACTIVE")["certificateId"]
    issued = iot.create_keys_and_certificate(setAsActive=False)["certificateId"]
    thing = uid("durable")
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=cert_arn(device), thingPrincipalType="EXCLUSIVE_THING")
    assert aws.signed(b, "PUT", f"/cacertificate/{ca_id}/crl", {"crlPem": ca.crl([])})[0] == 200
    before = {
        "ca": iot.describe_ca_certificate(certificateId=ca_id),
        "device": iot.describe_certificate(certificateId=device)["certificateDescription"],
        "issued": iot.describe_certificate(certificateId=issued)["certificateDescription"],
    }

    b.restart()
    iot = aws.iot(b)
    assert iot.get_registration_code()["registrationCode"] == code
    after = {
        "ca": iot.describe_ca_certificate(certificateId=ca_id),
        "device": iot.describe_certificate(certificateId=device)["certificateDescription"],
        "issued": iot.describe_certificate(certificateId=issued)["certificateDescription"],
    }
    for v in (*before.values(), *after.values()):
        v.pop("ResponseMetadata", None)
    assert after == before
    assert iot.list_thing_principals_v2(thingName=thing)["thingPrincipalObjects"] == [
        {"principal": cert_arn(device), "thingPrincipalType": "EXCLUSIVE_THING"}
    ]
    assert aws.signed(b, "GET", f"/cacertificate/{ca_id}/crl")[0] == 200

    # A deleted registration code is replaced by a new one, which also survives.
    iot.delete_registration_code()
    new_code = iot.get_registration_code()["registrationCode"]
    assert new_code != code
    b.restart()
    assert aws.iot(b).get_registration_code()["registrationCode"] == new_code
