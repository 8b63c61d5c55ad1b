"""Devices admitted by a WebAssembly authorizer (issue 6): the built-in `wasm` function runs a
module in the broker's process, through the release binary.

The function `wasm-allow` runs crates/authorizers/testdata/allow.wat (text format; the module
admits the password "secret" as principal wasmdevice under a policy allowing connect and
publish / subscribe / receive on wasm/*, and denies other passwords); `wasm-runaway` runs a
module whose `authorize` loops forever. The authorizers `wasm` (ACTIVE, the account's
default) and `runaway` (ACTIVE) name them as `ferrocore:function/<name>`, signing disabled.

- mosquitto_pub and paho with a username and password over TLS without ALPN on a
  `custom_auth = true` listener publish and receive under the returned policy; a publish
  outside it is not delivered; a wrong password is refused 0x87 / 5;
- the runaway module runs out of fuel: 0x88 / 3 (server unavailable), while the broker keeps
  serving certificate clients and the other module's devices;
- TestInvokeAuthorizer runs the module as a device's connection would, and names the runaway
  module's failure;
- a module that imports anything stops `serve` at start, naming the import."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import aws
from authorizers import assert_serves_certificates, certificate_device, connack_code
from clients import uid
from test_custom_auth import LEGACY_LISTENER, NOT_AUTHORIZED, SERVER_UNAVAILABLE, TIMEOUT, mosquitto, observer, paho_tls

pytestmark = pytest.mark.ferrocore_only

ALLOW_MODULE = Path(__file__).resolve().parents[2] / "crates" / "authorizers" / "testdata" / "allow.wat"
# The ABI's exports around an `authorize` made of `body`.
MODULE = """(module
  {imports}
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "authorize") (param i32 i32) (result i64) {body}))"""
RUNAWAY_MODULE = MODULE.format(imports="", body="(loop $forever (br $forever)) (i64.const 0)")
PASSWORD = "secret"


def wasm_function(name: str, module: Path) -> str:
    return f'\n[[authorizer_function]]\nname = "{name}"\nkind = "wasm"\nmodule = "{module}"\n'


@pytest.fixture
def wasm_broker(start_broker, tmp_path):
    runaway = tmp_path / "runaway.wat"
    runaway.write_text(RUNAWAY_MODULE)
    config = LEGACY_LISTENER + wasm_function("wasm-allow", ALLOW_MODULE) + wasm_function("wasm-runaway", runaway)
    b = start_broker(tls_anonymous=False, config=config)
    iot = aws.iot(b)
    for authorizer, function in (("wasm", "wasm-allow"), ("runaway", "wasm-runaway")):
        iot.create_authorizer(authorizerName=authorizer, authorizerFunctionArn=f"ferrocore:function/{function}",
                              signingDisabled=True, status="ACTIVE")
    iot.set_default_authorizer(authorizerName="wasm")
    return b


def test_username_and_password_through_the_module(wasm_broker):
    b = wasm_broker
    port = b.listener_port("legacy")
    t = uid("t")
    watch = observer(b)
    watch.subscribe("wasm/#")
    watch.subscribe("other/#")
    # paho subscribes and mosquitto_pub publishes, each admitted by the module (the account's
    # default authorizer: the usernames name none).
    with paho_tls(b, port, user="device1", password=PASSWORD) as sub:
        sub.connect()
        assert sub.subscribe(f"wasm/{t}", qos=1) == [1]
        for version in ("mqttv5", "mqttv311"):
            pub = subprocess.run(mosquitto("mosquitto_pub", b, port, "device2", PASSWORD, version)
                                 + ["-t", f"wasm/{t}", "-m", version, "-q", "1"],
                                 capture_output=True, text=True, timeout=TIMEOUT)
            assert pub.returncode == 0, pub.stdout + pub.stderr
            assert sub.get().payload == version.encode()
        # Outside wasm/* nothing is delivered (QoS 0: mosquitto_pub has nothing to report).
        outside = subprocess.run(mosquitto("mosquitto_pub", b, port, "device2", PASSWORD)
                                 + ["-t", f"other/{t}", "-m", "outside", "-q", "0"],
                                 capture_output=True, text=True, timeout=TIMEOUT)
        assert outside.returncode == 0, outside.stdout + outside.stderr
    watch.publish(f"wasm/{t}/marker", b"")
    seen = watch.until(f"wasm/{t}/marker")
    assert [m.topic for m in seen] == [f"wasm/{t}", f"wasm/{t}"], [m.topic for m in seen]
    watch.close()

    for version, refused in ((5, NOT_AUTHORIZED), (4, 5)):
        assert connack_code(b, port, version, "device1", b"wrong") == refused
        assert connack_code(b, port, version, "device1", PASSWORD.encode()) == 0
    wrong = subprocess.run(mosquitto("mosquitto_pub", b, port, "device2", "wrong") + ["-t", f"wasm/{t}", "-m", "x"],
                           capture_output=True, text=True, timeout=TIMEOUT)
    assert wrong.returncode != 0
    assert "not authori" in (wrong.stdout + wrong.stderr).lower(), wrong.stdout + wrong.stderr
    assert PASSWORD not in b.log(), "passwords are never logged"


def test_a_runaway_module_fails_closed_while_the_broker_serves(wasm_broker, pki):
    b = wasm_broker
    port = b.listener_port("legacy")
    device = certificate_device(b, pki)
    runaway_user = "device1?x-amz-customauthorizer-name=runaway"
    for version, unavailable in ((5, SERVER_UNAVAILABLE), (4, 3)):
        assert connack_code(b, port, version, runaway_user, PASSWORD.encode()) == unavailable
    assert "ran out of fuel" in b.log()

    # Devices hammering the runaway module do not hold up anyone else.
    codes: list[int] = []
    hammering = [threading.Thread(target=lambda: codes.append(connack_code(b, port, 5, runaway_user,
                                                                           PASSWORD.encode())))
                 for _ in range(6)]
    for thread in hammering:
        thread.start()
    assert connack_code(b, port, 5, "device1", PASSWORD.encode()) == 0
    assert_serves_certificates(b, device)
    for thread in hammering:
        thread.join(TIMEOUT)
    assert codes == [SERVER_UNAVAILABLE] * 6


def test_test_invoke_authorizer_runs_the_module(wasm_broker):
    iot = aws.iot(wasm_broker)
    for password, allowed in ((PASSWORD, True), ("wrong", False)):
        out = iot.test_invoke_authorizer(authorizerName="wasm",
                                         mqttContext={"username": "device1", "password": password.encode(),
                                                      "clientId": "device1"})
        assert (out["isAuthenticated"], out["principalId"]) == (allowed, "wasmdevice" if allowed else "nobody")
        if allowed:
            assert [json.loads(p)["Statement"][1]["Resource"] for p in out["policyDocuments"]] == [
                "arn:aws:iot:*:*:topic/wasm/*"]
    with pytest.raises(ClientError) as refused:
        iot.test_invoke_authorizer(authorizerName="runaway", mqttContext={"username": "device1",
                                                                          "password": PASSWORD.encode()})
    assert refused.value.response["Error"]["Code"] == "InvalidResponseException"
    assert "ran out of fuel" in refused.value.response["Error"]["Message"]


def test_a_module_that_imports_anything_stops_serve(start_broker, tmp_path):
    module = tmp_path / "imports.wat"
    module.write_text(MODULE.format(imports='(import "env" "log" (func (param i32 i32)))', body="(i64.const 0)"))
    with pytest.raises(RuntimeError) as refused:
        start_broker(tls_anonymous=False, config=wasm_function("bad", module))
    message = str(refused.value)
    assert '[[authorizer_function]] "bad"' in message, message
    assert "it imports env.log; an authorizer module may import nothing" in message, message
