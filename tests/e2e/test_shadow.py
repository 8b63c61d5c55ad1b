"""Device shadows through the real binary: the MQTT reserved topics (paho-mqtt), the HTTPS data
plane (boto3 `iot-data`, SigV4 with the admin credentials; once the AWS CLI v1) and a device's
certificate on the HTTPS port.

The cases restate, with our own values, the examples of AWS's "Device Shadow service documents"
and "Interacting with shadows" pages: an update of `desired` answered on update/accepted,
update/delta and update/documents; a device's report clearing the delta; partial updates of
nested objects; `null` deleting a key or a section; version conflicts; delete then get; the
size and nesting limits; invalid JSON; named shadows and their listing; shadows of things not
in the registry. Then authorization (a device limited to its own shadow, over MQTT and HTTPS)
and crash safety (an acknowledged update survives SIGKILL).

Negative checks never sleep: what must not be published is followed by a request whose answer
is published after it would have been (one shadow's requests are answered in order), and
nothing may arrive before that marker."""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import threading

import pytest
from botocore.exceptions import ClientError

import aws
from clients import WAIT, Paho, rc_value, uid
from pki import ACCOUNT, REGION, Device, api_device, cert_arn

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
NOT_AUTHORIZED = 0x87


# ---------------------------------------------------------------------------------------------
# helpers: HTTPS (boto3 iot-data)


def data(broker):
    """A boto3 iot-data client signed with the admin credentials of the broker's data dir."""
    return aws.client(broker, "iot-data")


def _named(name: str | None) -> dict:
    return {"shadowName": name} if name is not None else {}


def http_update(d, thing: str, doc: dict | bytes, name: str | None = None) -> dict:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    out = d.update_thing_shadow(thingName=thing, payload=payload, **_named(name))
    return json.loads(out["payload"].read())


def http_get(d, thing: str, name: str | None = None) -> dict:
    return json.loads(d.get_thing_shadow(thingName=thing, **_named(name))["payload"].read())


def http_delete(d, thing: str, name: str | None = None) -> dict:
    return json.loads(d.delete_thing_shadow(thingName=thing, **_named(name))["payload"].read())


def http_error(call, *args, **kwargs) -> tuple[str, int, str]:
    """Runs a boto3 call expecting an AWS error: (error code, HTTP status, message)."""
    with pytest.raises(ClientError) as e:
        call(*args, **kwargs)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def assert_epoch_seconds(ts) -> None:
    """Shadow timestamps are epoch seconds (integers), not milliseconds."""
    assert isinstance(ts, int) and 1_600_000_000 < ts < 10_000_000_000, ts


def big(n: int) -> str:
    return "x" * n


def nest(levels: int) -> dict:
    """An object `levels` deep counting itself as level 1: nest(1) == {"k": 1},
    nest(2) == {"k": {"k": 1}}. Used as a `desired` section, it is the section's depth in the
    way the limit counts it (the section object is level 1)."""
    doc: dict | int = 1
    for _ in range(levels):
        doc = {"k": doc}
    assert isinstance(doc, dict)
    return doc


# ---------------------------------------------------------------------------------------------
# helpers: MQTT


class ShadowTopics:
    """An allow-all paho client (the anonymous --dev listener) subscribed to one shadow's answer
    topics (get/+, update/+, delete/+), able to publish requests to it."""

    def __init__(self, broker, thing: str, name: str | None = None, client: Paho | None = None):
        self.thing = thing
        self.name = name
        self.prefix = f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")
        self.own = client is None
        self.p = client or Paho(broker, client_id=uid("shadow-app"))
        if self.own:
            self.p.connect()
        for op in ("get", "update", "delete"):
            assert self.p.subscribe(f"{self.prefix}/{op}/+", qos=1) == [1]

    def publish(self, op: str, doc: dict | bytes | None = None) -> None:
        payload = doc if isinstance(doc, bytes) else (b"" if doc is None else json.dumps(doc).encode())
        self.p.publish(f"{self.prefix}/{op}", payload, qos=1)

    def next(self) -> tuple[str, dict]:
        """The next answer: (suffix after the prefix, e.g. "update/accepted", parsed JSON)."""
        m = self.p.get()
        assert m.topic.startswith(self.prefix + "/"), f"unexpected topic {m.topic}"
        return m.topic[len(self.prefix) + 1:], json.loads(m.payload)

    def take(self, *suffixes: str) -> dict[str, dict]:
        """The next len(suffixes) answers, which must be exactly those (in any order)."""
        got: dict[str, dict] = {}
        for _ in suffixes:
            suffix, doc = self.next()
            assert suffix in suffixes and suffix not in got, f"unexpected {suffix}: {doc} (after {list(got)})"
            got[suffix] = doc
        return got

    def expect(self, suffix: str) -> dict:
        return self.take(suffix)[suffix]

    def nothing_before_get(self, token: str = "marker") -> dict:
        """Asks for the shadow and asserts that its get answer is the very next message: nothing
        else was published for the shadow before. Returns the answer (accepted or rejected)."""
        self.publish("get", {"clientToken": token})
        suffix, doc = self.next()
        assert suffix in ("get/accepted", "get/rejected"), f"unexpected {suffix}: {doc}"
        assert doc.get("clientToken") == token, doc
        return doc

    def until_get(self, token: str = "marker") -> dict[str, dict]:
        """Asks for the shadow and returns every answer up to its get answer (included), by
        suffix; each suffix at most once."""
        self.publish("get", {"clientToken": token})
        got: dict[str, dict] = {}
        while True:
            suffix, doc = self.next()
            assert suffix not in got, f"{suffix} twice: {got[suffix]} then {doc}"
            got[suffix] = doc
            if suffix in ("get/accepted", "get/rejected") and doc.get("clientToken") == token:
                return got

    def update(self, doc: dict | bytes, *suffixes: str) -> dict[str, dict]:
        self.publish("update", doc)
        return self.take(*suffixes)

    def close(self) -> None:
        if self.own:
            self.p.close()

    def __enter__(self) -> "ShadowTopics":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# update, delta, documents (AWS's request/response examples, our values)


def test_desired_update_is_accepted_with_delta_and_documents(broker):
    thing = uid("lamp")
    with ShadowTopics(broker, thing) as s:
        desired = {"color": "amber", "brightness": 40}
        got = s.update({"state": {"desired": desired}, "clientToken": "tok-1"},
                       "update/accepted", "update/delta", "update/documents")

        acc = got["update/accepted"]
        assert acc["state"] == {"desired": desired}
        assert set(acc["metadata"]) == {"desired"}
        assert set(acc["metadata"]["desired"]) == {"color", "brightness"}
        for leaf in acc["metadata"]["desired"].values():
            assert_epoch_seconds(leaf["timestamp"])
        assert acc["version"] == 1
        assert acc["clientToken"] == "tok-1"
        assert_epoch_seconds(acc["timestamp"])

        delta = got["update/delta"]
        assert delta["state"] == desired  # nothing reported yet: all of desired
        assert set(delta["metadata"]) == {"color", "brightness"}
        assert delta["version"] == 1
        assert delta["clientToken"] == "tok-1"
        assert_epoch_seconds(delta["timestamp"])

        docs = got["update/documents"]
        assert docs.get("previous") is None  # the update created the shadow
        assert docs["current"]["state"] == {"desired": desired}
        assert docs["current"]["metadata"]["desired"].keys() == desired.keys()
        assert docs["current"]["version"] == 1
        assert docs["clientToken"] == "tok-1"
        assert_epoch_seconds(docs["timestamp"])

        # GET shows the delta too, with desired's metadata for it.
        doc = s.nothing_before_get("g-1")
        assert doc["state"] == {"desired": desired, "delta": desired}
        assert doc["metadata"]["desired"].keys() == desired.keys()
        assert doc["version"] == 1


def test_reported_update_clears_the_delta(broker):
    thing = uid("lamp")
    with ShadowTopics(broker, thing) as s:
        s.update({"state": {"reported": {"color": "white", "brightness": 40, "uptime": 12}}},
                 "update/accepted", "update/documents")
        got = s.update({"state": {"desired": {"color": "amber"}}},
                       "update/accepted", "update/delta", "update/documents")
        assert got["update/delta"]["state"] == {"color": "amber"}  # brightness agrees; uptime is reported only
        assert got["update/delta"]["version"] == 2

        # The device reports what it was asked for: accepted and documents, no delta.
        got = s.update({"state": {"reported": {"color": "amber"}}, "clientToken": "rep"},
                       "update/accepted", "update/documents")
        assert got["update/accepted"]["state"] == {"reported": {"color": "amber"}}
        assert got["update/accepted"]["version"] == 3
        docs = got["update/documents"]
        assert docs["previous"]["version"] == 2 and docs["current"]["version"] == 3
        assert docs["previous"]["state"]["reported"]["color"] == "white"
        assert docs["current"]["state"] == {
            "desired": {"color": "amber"},
            "reported": {"color": "amber", "brightness": 40, "uptime": 12},
        }
        assert docs["clientToken"] == "rep"
        doc = s.nothing_before_get()
        assert "delta" not in doc["state"]
        assert "delta" not in doc["metadata"]
        assert doc["version"] == 3

        # The delta names every key still differing, not only those of the last request.
        s.update({"state": {"desired": {"brightness": 80, "mode": "eco"}}},
                 "update/accepted", "update/delta", "update/documents")
        got = s.update({"state": {"desired": {"color": "red"}}},
                       "update/accepted", "update/delta", "update/documents")
        assert got["update/delta"]["state"] == {"color": "red", "brightness": 80, "mode": "eco"}
        # A report that leaves part of the delta: AWS's pages do not say whether a delta is
        # published then (Ferrocore publishes one only for requests with `desired`); if one
        # is, it must be the remaining difference.
        s.publish("update", {"state": {"reported": {"color": "red", "brightness": 80}}})
        got = s.until_get()
        assert {"update/accepted", "update/documents", "get/accepted"} <= got.keys() <= {
            "update/accepted", "update/documents", "update/delta", "get/accepted"}, got
        if "update/delta" in got:
            assert got["update/delta"]["state"] == {"mode": "eco"}
        assert got["get/accepted"]["state"]["delta"] == {"mode": "eco"}


def test_partial_update_merges_nested_objects_and_replaces_arrays(broker):
    d = data(broker)
    thing = uid("rgb")
    http_update(d, thing, {"state": {"desired": {
        "light": {"color": {"r": 250, "g": 250, "b": 0}, "on": True},
        "schedule": [6, 12, 18],
    }}})
    acc = http_update(d, thing, {"state": {"desired": {"light": {"color": {"r": 20}}}}})
    assert acc["state"] == {"desired": {"light": {"color": {"r": 20}}}}  # only what was sent
    assert acc["version"] == 2
    http_update(d, thing, {"state": {"desired": {"schedule": [7]}}})

    doc = http_get(d, thing)
    assert doc["state"]["desired"] == {
        "light": {"color": {"r": 20, "g": 250, "b": 0}, "on": True},
        "schedule": [7],
    }
    assert doc["metadata"]["desired"]["light"]["color"].keys() == {"r", "g", "b"}
    assert len(doc["metadata"]["desired"]["schedule"]) == 1
    assert doc["version"] == 3

    # Nested delta: only the differing leaves, under their full path.
    http_update(d, thing, {"state": {"reported": {
        "light": {"color": {"r": 20, "g": 250, "b": 9}, "on": True},
        "schedule": [7],
    }}})
    doc = http_get(d, thing)
    assert doc["state"]["delta"] == {"light": {"color": {"b": 0}}}


def test_null_deletes_a_key_and_a_section(broker):
    d = data(broker)
    thing = uid("nulls")
    with ShadowTopics(broker, thing) as s:
        s.update({"state": {"desired": {"fan": "on", "speed": 3, "timer": {"on": 30, "off": 5}},
                            "reported": {"fan": "off"}}},
                 "update/accepted", "update/delta", "update/documents")
        acc = s.update({"state": {"desired": {"speed": None, "timer": {"off": None}}}},
                       "update/accepted", "update/delta", "update/documents")["update/accepted"]
        assert acc["state"] == {"desired": {"speed": None, "timer": {"off": None}}}
        doc = http_get(d, thing)
        assert doc["state"]["desired"] == {"fan": "on", "timer": {"on": 30}}
        assert doc["metadata"]["desired"].keys() == {"fan", "timer"}
        assert doc["metadata"]["desired"]["timer"].keys() == {"on"}

        # "desired": null removes the section, and with it the delta.
        got = s.update({"state": {"desired": None}}, "update/accepted", "update/documents")
        assert got["update/accepted"]["state"] == {"desired": None}
        doc = s.nothing_before_get()
        assert doc["state"] == {"reported": {"fan": "off"}}
        assert "desired" not in doc["metadata"]
        assert doc["version"] == 3


def test_version_conflict_over_mqtt_and_https(broker):
    d = data(broker)
    thing = uid("versioned")
    with ShadowTopics(broker, thing) as s:
        s.update({"state": {"reported": {"v": 1}}}, "update/accepted", "update/documents")

        rej = s.update({"state": {"reported": {"v": 2}}, "version": 7, "clientToken": "stale"},
                       "update/rejected")["update/rejected"]
        assert rej["code"] == 409
        assert rej["message"] == "Version conflict"
        assert rej["clientToken"] == "stale"
        assert_epoch_seconds(rej["timestamp"])

        code, status, _ = http_error(d.update_thing_shadow, thingName=thing,
                                     payload=json.dumps({"state": {"reported": {"v": 2}}, "version": 0}).encode())
        assert (code, status) == ("ConflictException", 409)

        # Refusals changed nothing and published nothing else.
        doc = s.nothing_before_get()
        assert doc["version"] == 1 and doc["state"] == {"reported": {"v": 1}}

        acc = s.update({"state": {"reported": {"v": 2}}, "version": 1},
                       "update/accepted", "update/documents")["update/accepted"]
        assert acc["version"] == 2
        assert http_update(d, thing, {"state": {"reported": {"v": 3}}, "version": 2})["version"] == 3


def test_delete_then_get_is_404_and_a_new_shadow_continues_the_version(broker):
    d = data(broker)
    thing = uid("deleted")
    with ShadowTopics(broker, thing) as s:
        s.update({"state": {"desired": {"x": 1}}}, "update/accepted", "update/delta", "update/documents")
        s.update({"state": {"reported": {"x": 1}}}, "update/accepted", "update/documents")

        s.publish("delete", {"clientToken": "del-1"})
        acc = s.expect("delete/accepted")
        assert acc["version"] == 2
        assert acc["clientToken"] == "del-1"
        assert_epoch_seconds(acc["timestamp"])

        s.publish("get", {"clientToken": "get-1"})
        rej = s.expect("get/rejected")
        assert rej["code"] == 404
        assert "No shadow exists with name" in rej["message"]
        assert rej["clientToken"] == "get-1"

        s.publish("delete", {"clientToken": "del-2"})
        rej = s.expect("delete/rejected")
        assert rej["code"] == 404 and rej["clientToken"] == "del-2"

        assert http_error(d.get_thing_shadow, thingName=thing)[:2] == ("ResourceNotFoundException", 404)
        assert http_error(d.delete_thing_shadow, thingName=thing)[:2] == ("ResourceNotFoundException", 404)

        # Re-created within 48 hours, the shadow counts on from the deleted one's version.
        acc = s.update({"state": {"reported": {"x": 2}}}, "update/accepted", "update/documents")["update/accepted"]
        assert acc["version"] == 3
        assert http_get(d, thing)["state"] == {"reported": {"x": 2}}


def test_https_updates_and_deletes_publish_on_mqtt_and_gets_do_not(broker):
    d = data(broker)
    thing = uid("via-https")
    with ShadowTopics(broker, thing) as s:
        answer = http_update(d, thing, {"state": {"desired": {"valve": "open"}}, "clientToken": "h1"})
        got = s.take("update/accepted", "update/delta", "update/documents")
        assert got["update/accepted"] == answer
        assert answer["clientToken"] == "h1" and answer["version"] == 1
        assert got["update/delta"]["state"] == {"valve": "open"}
        assert got["update/documents"]["current"]["version"] == 1

        doc = http_get(d, thing)
        assert doc["state"]["delta"] == {"valve": "open"}
        # A refused HTTPS update answers the caller only: no update/rejected.
        assert http_error(d.update_thing_shadow, thingName=thing, payload=b"{oops")[:2] == (
            "InvalidRequestException", 400)
        assert s.nothing_before_get()["version"] == 1  # the GET above published nothing either

        answer = http_delete(d, thing)
        assert answer["version"] == 1
        assert s.expect("delete/accepted")["version"] == 1


def test_named_shadows_have_their_own_topics_and_documents(broker):
    d = data(broker)
    thing = uid("multi")
    with ShadowTopics(broker, thing) as classic, ShadowTopics(broker, thing, "config", client=classic.p) as named:
        got = named.update({"state": {"desired": {"interval": 60}}, "clientToken": "n1"},
                           "update/accepted", "update/delta", "update/documents")
        assert got["update/accepted"]["version"] == 1
        assert got["update/delta"]["state"] == {"interval": 60}

        # The classic shadow does not exist; nothing was published on its topics.
        rej = classic.nothing_before_get()
        assert rej["code"] == 404
        assert http_error(d.get_thing_shadow, thingName=thing)[:2] == ("ResourceNotFoundException", 404)

        assert http_get(d, thing, "config")["state"]["desired"] == {"interval": 60}
        http_update(d, thing, {"state": {"reported": {"interval": 60}}}, name="config")
        assert named.take("update/accepted", "update/documents")["update/documents"]["current"]["version"] == 2
        assert "delta" not in named.nothing_before_get()["state"]

        assert http_delete(d, thing, "config")["version"] == 2
        assert named.expect("delete/accepted")["version"] == 2
        assert http_error(d.get_thing_shadow, thingName=thing, shadowName="config")[:2] == (
            "ResourceNotFoundException", 404)


# ---------------------------------------------------------------------------------------------
# limits and bad input


def test_state_over_8_kib_is_413(broker):
    d = data(broker)
    thing = uid("big")
    with ShadowTopics(broker, thing) as s:
        # Under the limit is fine...
        s.update({"state": {"desired": {"blob": big(5000)}}},
                 "update/accepted", "update/delta", "update/documents")
        # ...but the limit is on the state after the merge: desired + reported.
        rej = s.update({"state": {"reported": {"blob2": big(4000)}}, "clientToken": "too-big"},
                       "update/rejected")["update/rejected"]
        assert rej["code"] == 413
        assert rej["clientToken"] == "too-big"
        rej = s.update({"state": {"desired": {"other": big(9000)}}}, "update/rejected")["update/rejected"]
        assert rej["code"] == 413

        code, status, _ = http_error(d.update_thing_shadow, thingName=thing,
                                     payload=json.dumps({"state": {"reported": {"blob2": big(9000)}}}).encode())
        assert (code, status) == ("RequestEntityTooLargeException", 413)

        doc = s.nothing_before_get()
        assert doc["version"] == 1
        assert doc["state"]["desired"] == {"blob": big(5000)}
        assert "reported" not in doc["state"]


def test_nesting_deeper_than_6_is_400(broker):
    """The section object counts as level 1 (nest(1) is {"k": 1}): 6 levels pass, 7 do not."""
    d = data(broker)
    thing = uid("deep")
    with ShadowTopics(broker, thing) as s:
        s.update({"state": {"desired": nest(6)}}, "update/accepted", "update/delta", "update/documents")
        rej = s.update({"state": {"reported": nest(7)}, "clientToken": "deep"}, "update/rejected")["update/rejected"]
        assert rej["code"] == 400
        assert "nesting" in rej["message"] and "6" in rej["message"], rej
        assert rej["clientToken"] == "deep"
        # Arrays nest like objects.
        rej = s.update({"state": {"desired": {"a": [[[[[[1]]]]]]}}}, "update/rejected")["update/rejected"]
        assert rej["code"] == 400
        code, status, _ = http_error(d.update_thing_shadow, thingName=thing,
                                     payload=json.dumps({"state": {"desired": nest(8)}}).encode())
        assert (code, status) == ("InvalidRequestException", 400)
        assert s.nothing_before_get()["version"] == 1


@pytest.mark.parametrize("payload, code, message", [
    (b"{not json", 400, "Invalid JSON"),
    (b"[1, 2]", 400, None),
    (b'{"clientToken": "c"}', 400, "Missing required node: state"),
    (b'{"state": 5}', 400, None),
    (b'{"state": {"desired": [1, 2]}}', 400, None),
    (b'{"state": {"reported": "on"}}', 400, None),
    (b'{"state": {"desired": {"list": [1, null]}}}', 400, None),
    (b'{"state": {"desired": {"a": 1}}, "version": "one"}', 400, None),
    (b'{"state": {"desired": {"a": 1}}, "clientToken": "' + b"t" * 65 + b'"}', 400, None),
    (b'{"state": {"desired": {"name": "\xff\xfe"}}}', 415, None),
], ids=["not-json", "not-object", "no-state", "state-number", "desired-array", "reported-string",
        "null-in-array", "version-string", "token-too-long", "not-utf8"])
def test_invalid_update_documents_are_refused(broker, payload, code, message):
    d = data(broker)
    thing = uid("bad")
    with ShadowTopics(broker, thing) as s:
        rej = s.update(payload, "update/rejected")["update/rejected"]
        assert rej["code"] == code, rej
        if message is not None:
            assert rej["message"] == message, rej
        assert_epoch_seconds(rej["timestamp"])
        expected = {400: "InvalidRequestException", 415: "UnsupportedDocumentEncodingException"}[code]
        assert http_error(d.update_thing_shadow, thingName=thing, payload=payload)[:2] == (expected, code)
        # Nothing was created.
        assert s.nothing_before_get()["code"] == 404


def test_the_limits_are_configurable(start_broker):
    b = start_broker(args=["--max-shadow-size", "200", "--max-shadow-depth", "3", "--max-shadow-name-len", "8"])
    d = data(b)
    thing = uid("tight")
    assert http_update(d, thing, {"state": {"desired": {"s": big(150)}}})["version"] == 1
    assert http_error(d.update_thing_shadow, thingName=thing,
                      payload=json.dumps({"state": {"reported": {"s": big(100)}}}).encode())[:2] == (
        "RequestEntityTooLargeException", 413)
    assert http_update(d, thing, {"state": {"desired": nest(3)}})["version"] == 2
    code, status, msg = http_error(d.update_thing_shadow, thingName=thing,
                                   payload=json.dumps({"state": {"desired": nest(4)}}).encode())
    assert (code, status) == ("InvalidRequestException", 400)
    assert "3" in msg, msg
    assert http_update(d, thing, {"state": {"desired": {"a": 1}}}, name="n" * 8)["version"] == 1
    assert http_error(d.update_thing_shadow, thingName=thing, shadowName="n" * 9,
                      payload=b'{"state":{"desired":{"a":1}}}')[:2] == ("InvalidRequestException", 400)


# ---------------------------------------------------------------------------------------------
# named shadows listed, things not in the registry, the CLI


def test_named_shadows_are_listed_with_paging_and_the_classic_one_is_not(broker):
    d = data(broker)
    thing = uid("lister")
    names = ["beta", "alpha", "gamma", "delta-1", "epsilon", "zeta:2"]
    http_update(d, thing, {"state": {"reported": {"classic": True}}})
    for n in names:
        http_update(d, thing, {"state": {"reported": {"name": n}}}, name=n)

    def pages(page_size: int) -> list[list[str]]:
        out, token = [], None
        while True:
            kw = {"nextToken": token} if token else {}
            r = d.list_named_shadows_for_thing(thingName=thing, pageSize=page_size, **kw)
            assert_epoch_seconds(r["timestamp"])
            out.append(r["results"])
            token = r.get("nextToken")
            if not token:
                return out
            assert len(out) <= len(names), "paging does not end"

    got = pages(4)
    assert [len(p) for p in got] == [4, 2]
    assert sorted(sum(got, [])) == sorted(names)
    got = pages(1)
    assert [len(p) for p in got] == [1] * 6
    assert sorted(sum(got, [])) == sorted(names)
    all_at_once = d.list_named_shadows_for_thing(thingName=thing)
    assert sorted(all_at_once["results"]) == sorted(names)
    assert "nextToken" not in all_at_once

    http_delete(d, thing, "gamma")
    assert sorted(d.list_named_shadows_for_thing(thingName=thing)["results"]) == sorted(set(names) - {"gamma"})
    # A thing with only a classic shadow, and a thing with none: empty lists.
    other = uid("classic-only")
    http_update(d, other, {"state": {"reported": {"a": 1}}})
    assert d.list_named_shadows_for_thing(thingName=other)["results"] == []
    assert d.list_named_shadows_for_thing(thingName=uid("nobody"))["results"] == []


def test_shadows_of_things_not_in_the_registry_and_of_deleted_things(broker):
    iot, d = aws.iot(broker), data(broker)
    ghost = uid("ghost")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=ghost)
    assert http_update(d, ghost, {"state": {"reported": {"here": True}}})["version"] == 1
    assert http_update(d, ghost, {"state": {"reported": {"n": 1}}}, name="aux")["version"] == 1
    assert http_get(d, ghost)["state"]["reported"] == {"here": True}
    assert d.list_named_shadows_for_thing(thingName=ghost)["results"] == ["aux"]

    # Deleting a thing leaves its shadows.
    real = uid("real")
    iot.create_thing(thingName=real)
    http_update(d, real, {"state": {"reported": {"kept": True}}})
    iot.delete_thing(thingName=real)
    assert http_get(d, real)["state"]["reported"] == {"kept": True}


def test_aws_cli_get_thing_shadow_writes_the_outfile(broker, tmp_path):
    d = data(broker)
    thing = uid("cli")
    http_update(d, thing, {"state": {"desired": {"mode": "auto"}, "reported": {"mode": "manual"}}})
    out = tmp_path / "out.json"
    aws.cli(broker, "iot-data", "get-thing-shadow", "--thing-name", thing, str(out))
    doc = json.loads(out.read_text())
    assert doc["state"] == {"desired": {"mode": "auto"}, "reported": {"mode": "manual"}, "delta": {"mode": "auto"}}
    assert doc["version"] == 1


# ---------------------------------------------------------------------------------------------
# authorization: a device limited to its own shadow


def own_shadow_policy(thing: str) -> str:
    """Connect as the thing; publish, subscribe to and receive its shadow topics (classic and
    named); read its classic shadow over HTTPS. Nothing else."""
    shadow = f"$aws/things/{thing}/shadow"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{thing}"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/{shadow}/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/{shadow}/*"},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/{shadow}/*"},
        {"Effect": "Allow", "Action": "iot:GetThingShadow", "Resource": f"{ARN}:thing/{thing}"},
    ]})


def shadow_device(broker, pki) -> tuple[str, Device]:
    """A registered thing with a certificate carrying own_shadow_policy."""
    iot = aws.iot(broker)
    thing = uid("device")
    iot.create_thing(thingName=thing)
    dev = api_device(iot, pki)
    iot.attach_thing_principal(thingName=thing, principal=cert_arn(dev.id))
    policy = uid("shadow-pol")
    iot.create_policy(policyName=policy, policyDocument=own_shadow_policy(thing))
    iot.attach_policy(policyName=policy, target=cert_arn(dev.id))
    return thing, dev


def device_client(broker, dev: Device, client_id: str) -> Paho:
    """A paho v5 client presenting `dev`'s certificate on the non-anonymous MQTT/TLS listener,
    recording each PUBACK's reason code (`ack_of(mid)`)."""
    p = Paho(broker, client_id=client_id, transport="tcp")
    p.port = broker.listener_port("mqtts")
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    p.c.tls_set_context(ctx)
    acks: dict[int, queue.Queue] = {}
    lock = threading.Lock()

    def q(mid: int) -> queue.Queue:
        with lock:
            return acks.setdefault(mid, queue.Queue())

    p.c.on_publish = lambda client, userdata, mid, reason_code, properties: q(mid).put(rc_value(reason_code))
    p.ack_of = lambda mid: q(mid).get(timeout=WAIT)  # type: ignore[attr-defined]
    return p


def puback(p: Paho, topic: str, doc: dict | None = None) -> int:
    info = p.publish(topic, json.dumps(doc).encode() if doc is not None else b"", qos=1, wait=False)
    return p.ack_of(info.mid)  # type: ignore[attr-defined]


def test_a_device_may_use_its_own_shadow_topics_only(broker, pki):
    d = data(broker)
    thing, dev = shadow_device(broker, pki)
    other = uid("other")
    http_update(d, other, {"state": {"desired": {"locked": True}}})

    with device_client(broker, dev, thing) as p:
        p.connect()
        mine = f"$aws/things/{thing}/shadow"
        theirs = f"$aws/things/{other}/shadow"
        assert p.subscribe(f"{theirs}/update/accepted", qos=1) == [NOT_AUTHORIZED]
        assert p.subscribe(f"{theirs}/#", qos=1) == [NOT_AUTHORIZED]
        assert p.subscribe(f"{mine}/update/+", qos=1) == [1]
        assert p.subscribe(f"{mine}/name/+/update/+", qos=1) == [1]

        assert puback(p, f"{theirs}/update", {"state": {"desired": {"locked": False}}}) == NOT_AUTHORIZED
        assert puback(p, f"{theirs}/delete") == NOT_AUTHORIZED
        assert puback(p, f"{theirs}/name/x/update", {"state": {"reported": {"a": 1}}}) == NOT_AUTHORIZED
        assert puback(p, f"{theirs}/get") == NOT_AUTHORIZED

        assert puback(p, f"{mine}/update", {"state": {"reported": {"ok": True}}, "clientToken": "mine"}) == 0
        m = p.get()
        assert m.topic == f"{mine}/update/accepted"
        assert json.loads(m.payload)["clientToken"] == "mine"
        assert p.get().topic == f"{mine}/update/documents"
        assert puback(p, f"{mine}/name/cfg/update", {"state": {"reported": {"ok": 1}}}) == 0
        assert p.get().topic == f"{mine}/name/cfg/update/accepted"

    other_doc = http_get(d, other)
    assert other_doc["version"] == 1
    assert other_doc["state"]["desired"] == {"locked": True}
    assert d.list_named_shadows_for_thing(thingName=other)["results"] == []


def https_as_device(broker, dev: Device, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    """A request to the HTTPS port with `dev`'s certificate and no SigV4 signature."""
    ctx = ssl.create_default_context(cafile=str(broker.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    conn = http.client.HTTPSConnection("localhost", broker.listener_port("https"), context=ctx, timeout=WAIT)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        text = r.read()
        return r.status, json.loads(text) if text else {}
    finally:
        conn.close()


def test_a_device_certificate_reads_its_own_shadow_over_https(broker, pki):
    d = data(broker)
    thing, dev = shadow_device(broker, pki)
    other = uid("other")
    http_update(d, thing, {"state": {"desired": {"fw": "1.2"}}})
    http_update(d, thing, {"state": {"desired": {"fw": "1.3"}}}, name="ota")
    http_update(d, other, {"state": {"desired": {"fw": "9.9"}}})

    status, doc = https_as_device(broker, dev, "GET", f"/things/{thing}/shadow")
    assert status == 200, doc
    assert doc["state"]["desired"] == {"fw": "1.2"} and doc["version"] == 1

    assert https_as_device(broker, dev, "GET", f"/things/{other}/shadow")[0] == 403
    # iot:GetThingShadow on thing/<thing> does not cover its named shadows (thing/<thing>/<name>).
    assert https_as_device(broker, dev, "GET", f"/things/{thing}/shadow?name=ota")[0] == 403
    # Nor does it allow an update or a delete.
    status, _ = https_as_device(broker, dev, "POST", f"/things/{thing}/shadow",
                                json.dumps({"state": {"reported": {"fw": "1.2"}}}).encode())
    assert status == 403
    assert https_as_device(broker, dev, "DELETE", f"/things/{thing}/shadow")[0] == 403
    assert http_get(d, thing)["version"] == 1


# ---------------------------------------------------------------------------------------------
# crash safety


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_accepted_updates_survive_sigkill(start_broker, durability):
    b = start_broker(args=["--durability", durability])
    thing = uid("durable")
    with ShadowTopics(b, thing) as s:
        s.update({"state": {"desired": {"target": 21}}}, "update/accepted", "update/delta", "update/documents")
        acc = s.update({"state": {"reported": {"target": 21}}, "clientToken": "last-mqtt"},
                       "update/accepted", "update/documents")["update/accepted"]
        assert acc["version"] == 2
    d = data(b)
    assert http_update(d, thing, {"state": {"desired": {"fan": "low"}}}, name="hvac")["version"] == 1
    assert http_update(d, thing, {"state": {"reported": {"fan": "off"}}}, name="hvac")["version"] == 2
    before = {None: http_get(d, thing), "hvac": http_get(d, thing, "hvac")}
    # The last acknowledged writes, with no GET after them.
    last = http_update(d, thing, {"state": {"desired": {"fan": "high"}}}, name="hvac")
    assert last["version"] == 3
    with ShadowTopics(b, thing) as s:
        acc = s.update({"state": {"desired": {"target": 23}}}, "update/accepted", "update/delta", "update/documents")
        assert acc["update/accepted"]["version"] == 3

    b.kill()  # SIGKILL: no shutdown path at all
    b.start()

    d = data(b)
    classic = http_get(d, thing)
    assert classic["version"] == 3
    assert classic["state"] == {"desired": {"target": 23}, "reported": {"target": 21}, "delta": {"target": 23}}
    assert classic["metadata"]["reported"] == before[None]["metadata"]["reported"]
    hvac = http_get(d, thing, "hvac")
    assert hvac["version"] == 3
    assert hvac["state"] == {"desired": {"fan": "high"}, "reported": {"fan": "off"}, "delta": {"fan": "high"}}
    assert hvac["metadata"]["reported"] == before["hvac"]["metadata"]["reported"]
    assert d.list_named_shadows_for_thing(thingName=thing)["results"] == ["hvac"]
    # And the service goes on from there.
    assert http_update(d, thing, {"state": {"reported": {"target": 23}}})["version"] == 4
