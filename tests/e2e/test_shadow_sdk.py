"""The AWS IoT Device SDK v2 for Python (awsiotsdk, awscrt) against the real binary: a device
with a certificate whose policy allows only its own shadow topics connects with
`mqtt5_client_builder.mtls_from_path` (our root CA as `ca_filepath`, host `localhost`, the
MQTT/TLS port) and drives its shadow with `iotshadow.IotShadowClientV2`, classic and named,
through a whole desired -> delta -> reported cycle: an application sets `desired` (boto3
iot-data over HTTPS, or a second SDK client), the device's delta stream gets the delta, the
device reports, a get shows no delta and the versions expected, and delete works. The same
cycle also runs over MQTT 3.1.1 (`mqtt_connection_builder.mtls_from_path`), which the V2
client accepts too.

Nothing here changes the SDK's behaviour: what the SDK needs from the server (CONNACK, SUBACK
for its wildcard response subscriptions, clientToken echoed on accepted and rejected) is what
is under test."""

from __future__ import annotations

import json
import queue
from concurrent.futures import Future

import awsiot
import pytest
from awscrt import mqtt5, mqtt_request_response
from awsiot import iotshadow, mqtt5_client_builder, mqtt_connection_builder

import aws
from clients import WAIT, settle, uid
from pki import ACCOUNT, REGION, Device, api_device, cert_arn

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
TIMEOUT = WAIT * 3  # only to avoid hangs


def shadow_policy(thing: str) -> str:
    """Least privilege for a device and its application: connect as `<thing>` or
    `<thing>-app`; publish, subscribe to and receive the thing's shadow topics (classic and
    named)."""
    shadow = f"$aws/things/{thing}/shadow"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": [f"{ARN}:client/{thing}", f"{ARN}:client/{thing}-app"]},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/{shadow}/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/{shadow}/*"},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/{shadow}/*"},
    ]})


def provision(broker, pki) -> tuple[str, Device]:
    """A registered thing and an ACTIVE certificate attached to it, carrying shadow_policy."""
    iot = aws.iot(broker)
    thing = uid("sdk-thing")
    iot.create_thing(thingName=thing)
    dev = api_device(iot, pki)
    iot.attach_thing_principal(thingName=thing, principal=cert_arn(dev.id))
    policy = uid("sdk-shadow")
    iot.create_policy(policyName=policy, policyDocument=shadow_policy(thing))
    iot.attach_policy(policyName=policy, target=cert_arn(dev.id))
    return thing, dev


class SdkClient:
    """An MQTT 5 client built the way the SDK's samples build one (mtls_from_path), or with
    `protocol="3.1.1"` an MQTT 3.1.1 connection (mqtt_connection_builder.mtls_from_path), with
    the shadow client V2 on top."""

    def __init__(self, broker, dev: Device, client_id: str, protocol: str = "5"):
        self.connected: Future = Future()
        self.stopped: Future = Future()
        self.connection = None
        if protocol == "3.1.1":
            self.connection = mqtt_connection_builder.mtls_from_path(
                endpoint="localhost",
                port=broker.listener_port("mqtts"),
                cert_filepath=str(dev.cert),
                pri_key_filepath=str(dev.key),
                ca_filepath=str(broker.ca),
                client_id=client_id,
                clean_session=True,
            )
            result = self.connection.connect().result(TIMEOUT)
            assert result["session_present"] is False
            self._shadow_client(self.connection)
            return
        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint="localhost",  # the server certificate names localhost
            port=broker.listener_port("mqtts"),
            cert_filepath=str(dev.cert),
            pri_key_filepath=str(dev.key),
            ca_filepath=str(broker.ca),
            client_id=client_id,
            on_lifecycle_connection_success=lambda data: settle(self.connected, data),
            on_lifecycle_connection_failure=lambda data: settle(self.connected, error=data.exception),
            on_lifecycle_stopped=lambda data: settle(self.stopped),
        )
        self.client.start()
        try:
            success = self.connected.result(TIMEOUT)
        except Exception:
            self.client.stop()
            raise
        assert success.connack_packet.reason_code == mqtt5.ConnectReasonCode.SUCCESS
        self._shadow_client(self.client)

    def _shadow_client(self, protocol_client) -> None:
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=4,
            max_streaming_subscriptions=4,
            operation_timeout_in_seconds=int(TIMEOUT),
        )
        self.shadow = iotshadow.IotShadowClientV2(protocol_client, options)
        self.streams: list = []

    def stream(self, create, request) -> queue.Queue:
        """Opens a streaming operation (create_*_stream) and waits until it is subscribed;
        its events go to the returned queue."""
        events: queue.Queue = queue.Queue()
        subscribed: Future = Future()

        def on_status(event):
            t = mqtt_request_response.SubscriptionStatusEventType
            if event.type == t.SUBSCRIPTION_ESTABLISHED:
                settle(subscribed, event)
            elif event.type == t.SUBSCRIPTION_HALTED:
                settle(subscribed, error=AssertionError(f"stream subscription halted: {event.error}"))

        s = create(request, awsiot.ServiceStreamOptions(
            incoming_event_listener=events.put,
            subscription_status_listener=on_status,
            deserialization_failure_listener=lambda f: events.put(AssertionError(f"undecodable event: {f}")),
        ))
        s.open()
        self.streams.append(s)
        subscribed.result(TIMEOUT)
        return events

    def close(self) -> None:
        for s in self.streams:
            try:
                s.close()
            except Exception:
                pass
        if self.connection is not None:
            self.connection.disconnect().result(TIMEOUT)
            return
        self.client.stop()
        self.stopped.result(TIMEOUT)


def next_event(events: queue.Queue):
    try:
        e = events.get(timeout=TIMEOUT)
    except queue.Empty:
        raise AssertionError(f"no stream event within {TIMEOUT}s") from None
    if isinstance(e, BaseException):
        raise e
    return e


class Shadow:
    """One shadow (classic when `name` is None) through the SDK's V2 client."""

    def __init__(self, sdk: SdkClient, thing: str, name: str | None):
        self.sdk, self.thing, self.name = sdk, thing, name

    def _kw(self) -> dict:
        return {"thing_name": self.thing, **({"shadow_name": self.name} if self.name else {})}

    def update(self, desired: dict | None = None, reported: dict | None = None):
        state = iotshadow.ShadowState(desired=desired, reported=reported)
        s = self.sdk.shadow
        if self.name:
            f = s.update_named_shadow(iotshadow.UpdateNamedShadowRequest(state=state, **self._kw()))
        else:
            f = s.update_shadow(iotshadow.UpdateShadowRequest(state=state, **self._kw()))
        return f.result(TIMEOUT)

    def get(self):
        s = self.sdk.shadow
        if self.name:
            return s.get_named_shadow(iotshadow.GetNamedShadowRequest(**self._kw())).result(TIMEOUT)
        return s.get_shadow(iotshadow.GetShadowRequest(**self._kw())).result(TIMEOUT)

    def delete(self):
        s = self.sdk.shadow
        if self.name:
            return s.delete_named_shadow(iotshadow.DeleteNamedShadowRequest(**self._kw())).result(TIMEOUT)
        return s.delete_shadow(iotshadow.DeleteShadowRequest(**self._kw())).result(TIMEOUT)

    def get_error(self):
        """A get expected to fail: the service's modeled error (code, message)."""
        with pytest.raises(awsiot.V2ServiceException) as e:
            self.get()
        assert e.value.modeled_error is not None, f"no modeled error: {e.value.message}: {e.value.inner_error}"
        return e.value.modeled_error

    def delta_stream(self) -> queue.Queue:
        s = self.sdk.shadow
        if self.name:
            return self.sdk.stream(s.create_named_shadow_delta_updated_stream,
                                   iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(**self._kw()))
        return self.sdk.stream(s.create_shadow_delta_updated_stream,
                               iotshadow.ShadowDeltaUpdatedSubscriptionRequest(**self._kw()))

    def updated_stream(self) -> queue.Queue:
        s = self.sdk.shadow
        if self.name:
            return self.sdk.stream(s.create_named_shadow_updated_stream,
                                   iotshadow.NamedShadowUpdatedSubscriptionRequest(**self._kw()))
        return self.sdk.stream(s.create_shadow_updated_stream,
                               iotshadow.ShadowUpdatedSubscriptionRequest(**self._kw()))


@pytest.mark.parametrize("protocol, name, app", [
    ("5", None, "https"),
    ("5", None, "sdk"),
    ("5", "settings", "https"),
    ("5", "settings", "sdk"),
    ("3.1.1", None, "https"),
    ("3.1.1", "settings", "sdk"),
], ids=["v5-classic-https", "v5-classic-sdk", "v5-named-https", "v5-named-sdk",
        "v311-classic-https", "v311-named-sdk"])
def test_desired_delta_reported_cycle(broker, pki, protocol, name, app):
    thing, dev = provision(broker, pki)
    data = aws.client(broker, "iot-data")
    named = {"shadowName": name} if name else {}

    device = SdkClient(broker, dev, thing, protocol)
    application = SdkClient(broker, dev, f"{thing}-app", protocol) if app == "sdk" else None
    try:
        mine = Shadow(device, thing, name)
        deltas = mine.delta_stream()
        updates = mine.updated_stream()

        err = mine.get_error()
        assert err.code == 404
        assert "No shadow exists with name" in err.message

        # The device reports its state.
        r = mine.update(reported={"power": "off", "level": 3})
        assert r.version == 1
        assert r.state.reported == {"power": "off", "level": 3}
        assert r.client_token  # the SDK matched its answer by it

        # The application asks for a change.
        wanted = {"power": "on", "level": 3}
        if application is None:
            out = json.loads(data.update_thing_shadow(
                thingName=thing, payload=json.dumps({"state": {"desired": wanted}}).encode(), **named,
            )["payload"].read())
            assert out["version"] == 2
        else:
            r = Shadow(application, thing, name).update(desired=wanted)
            assert r.version == 2
            assert r.state.desired == wanted

        # The device hears of it on its delta stream: only what differs.
        delta = next_event(deltas)
        assert delta.state == {"power": "on"}
        assert delta.version == 2
        assert delta.timestamp is not None

        # It applies the change and reports.
        r = mine.update(reported={"power": "on"})
        assert r.version == 3
        assert r.state.reported == {"power": "on"}

        g = mine.get()
        assert g.version == 3
        assert g.state.desired == wanted
        assert g.state.reported == wanted
        assert g.state.delta is None
        assert deltas.empty(), f"a delta after the report: {deltas.get_nowait()!r}"

        doc = json.loads(data.get_thing_shadow(thingName=thing, **named)["payload"].read())
        assert doc["version"] == 3
        assert doc["state"] == {"desired": wanted, "reported": wanted}

        # update/documents, one per update, in order.
        events = [next_event(updates) for _ in range(3)]
        assert [e.current.version for e in events] == [1, 2, 3]
        assert [e.previous.version for e in events[1:]] == [1, 2]
        assert events[1].current.state.desired == wanted
        assert events[2].previous.state.reported == {"power": "off", "level": 3}
        assert events[2].current.state.reported == wanted

        d = mine.delete()
        assert d.version == 3
        err = mine.get_error()
        assert err.code == 404
        with pytest.raises(data.exceptions.ResourceNotFoundException):
            data.get_thing_shadow(thingName=thing, **named)
    finally:
        if application is not None:
            application.close()
        device.close()


def test_a_refused_update_reaches_the_sdk_as_a_modeled_error(broker, pki):
    """update/rejected carries the clientToken the SDK correlates by, and the code."""
    thing, dev = provision(broker, pki)
    device = SdkClient(broker, dev, thing)
    try:
        mine = Shadow(device, thing, None)
        assert mine.update(reported={"x": 1}).version == 1
        s = device.shadow
        with pytest.raises(awsiot.V2ServiceException) as e:
            s.update_shadow(iotshadow.UpdateShadowRequest(
                thing_name=thing, version=9, state=iotshadow.ShadowState(reported={"x": 2}),
            )).result(TIMEOUT)
        assert e.value.modeled_error is not None, f"{e.value.message}: {e.value.inner_error}"
        assert e.value.modeled_error.code == 409
        assert e.value.modeled_error.client_token
        assert mine.get().version == 1
    finally:
        device.close()
