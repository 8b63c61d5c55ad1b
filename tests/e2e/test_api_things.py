"""The `iot` control plane for things, thing types and thing groups, through boto3 and the
AWS CLI v1."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

import aws
from clients import uid

pytestmark = pytest.mark.ferrocore_only


def test_create_thing_is_idempotent_and_describe_returns_it(broker):
    iot = aws.iot(broker)
    name = uid("thing")
    created = iot.create_thing(thingName=name, attributePayload={"attributes": {"room": "1"}})
    assert created["thingName"] == name
    assert created["thingArn"] == f"arn:aws:iot:us-east-1:000000000000:thing/{name}"
    again = iot.create_thing(thingName=name, attributePayload={"attributes": {"room": "1"}})
    assert again["thingId"] == created["thingId"]
    described = iot.describe_thing(thingName=name)
    assert described["thingId"] == created["thingId"]
    assert described["attributes"] == {"room": "1"}
    assert described["version"] == 1
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"room": "2"}})
    assert e.value.response["resourceId"] == created["thingId"]


def test_errors_raise_the_modelled_exceptions(broker):
    iot = aws.iot(broker)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=uid("missing"))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing(thingName=uid("bad") + "!")


def test_aws_cli_uses_the_data_directory_files(broker):
    name = uid("cli")
    out = aws.cli(broker, "iot", "create-thing", "--thing-name", name)
    assert out["thingName"] == name
    assert aws.cli(broker, "iot", "describe-thing", "--thing-name", name)["version"] == 1
    err = aws.cli_error(broker, "iot", "describe-thing", "--thing-name", uid("none"))
    assert "ResourceNotFoundException" in err


def test_unsigned_and_wrongly_signed_requests_get_aws_403(broker):
    import json
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(broker.ca))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{aws.endpoint(broker)}/things", context=ctx, timeout=10)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(e.value.read())["message"] == "Missing Authentication Token"

    wrong = aws.session(broker).client(
        "iot",
        endpoint_url=aws.endpoint(broker),
        verify=str(broker.ca),
        aws_access_key_id=aws.session(broker).get_credentials().access_key,
        aws_secret_access_key="x" * 40,
    )
    with pytest.raises(ClientError) as e:
        wrong.describe_thing(thingName="anything")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
