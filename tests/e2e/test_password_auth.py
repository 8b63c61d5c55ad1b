"""The built-in `password` authorizer (issue 6): a Mosquitto password file made by the real
`mosquitto_passwd` and a Mosquitto ACL file, declared as an `[[authorizer_function]]` and named
by an authorizer's `authorizerFunctionArn = "ferrocore:function/<name>"` (created with boto3,
signing disabled, ACTIVE, the account's default). mosquitto_pub / mosquitto_sub and paho connect
with `-u/-P` over TLS without ALPN on a `custom_auth = true` listener.

The ACL is enforced as Mosquitto enforces it: a subscription to `#` is granted and delivers only
what `read` allows; `write` decides publishing; `deny` wins; `%c` / `%u` patterns are the client's
own; a wrong password is refused (0x87 / 5); the files are read again when they change."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import aws
import mqttraw
from brokers import ferrocore_bin
from clients import WAIT, tls_context, uid
from pki import ACCOUNT, REGION
from test_custom_auth import LEGACY_LISTENER, mosquitto, observer, paho_tls

pytestmark = pytest.mark.ferrocore_only

FUNCTION = "mosq"
AUTHORIZER = "passwords"
NOT_AUTHORIZED_V5, NOT_AUTHORIZED_V4 = 0x87, 5
TIMEOUT = WAIT * 3  # only to avoid hangs
ACL = """\
# Mosquitto ACL
user alice
topic readwrite alice/#
topic deny alice/secret/#
user bob
topic read alice/news/#
pattern readwrite devices/%c/#
pattern write users/%u/+/out
"""


def passwd(path, user: str, password: str, *flags: str) -> None:
    subprocess.run(["mosquitto_passwd", *flags, "-b", str(path), user, password], check=True, timeout=TIMEOUT)


@pytest.fixture
def files(tmp_path):
    pw = tmp_path / "passwd"
    passwd(pw, "alice", "alice pw", "-c")              # $7$ (PBKDF2-SHA512), mosquitto 2's default
    passwd(pw, "bob", "bob-pw", "-H", "sha512")        # $6$, mosquitto 1.x's
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    return pw, acl


def password_config(pw, acl, options: str = "") -> str:
    """The legacy listener and the password function over `pw` and `acl`, with `options`."""
    return LEGACY_LISTENER + (
        f'\n[[authorizer_function]]\nname = "{FUNCTION}"\nkind = "password"\n'
        f'password_file = "{pw}"\nacl_file = "{acl}"\n{options}'
    )


@pytest.fixture
def pw_broker(start_broker, files):
    b = start_broker(tls_anonymous=False, config=password_config(*files))
    iot = aws.iot(b)
    iot.create_authorizer(authorizerName=AUTHORIZER, authorizerFunctionArn=f"ferrocore:function/{FUNCTION}",
                          signingDisabled=True, status="ACTIVE")
    iot.set_default_authorizer(authorizerName=AUTHORIZER)
    return b


def pub(b, user: str, password: str, topic: str, client_id: str | None = None) -> subprocess.CompletedProcess:
    cmd = mosquitto("mosquitto_pub", b, b.listener_port("legacy"), user, password)
    if client_id:
        cmd[cmd.index("-i") + 1] = client_id
    return subprocess.run(cmd + ["-t", topic, "-m", "x", "-q", "1"], capture_output=True, text=True, timeout=TIMEOUT)


def connack(b, user: str, password: bytes, version: int) -> int:
    c = mqttraw.RawClient(b.host, b.listener_port("legacy"), version=version, tls=tls_context(b, None),
                          timeout=TIMEOUT)
    try:
        return c.connect(uid("raw"), username=user, password=password).reason
    finally:
        c.sock.close()


def published(watch, b, attempts: list[tuple[str, str, str, str | None]]) -> set[str]:
    """Runs each (user, password, topic, client id) publish, then a marker of alice's; the topics
    the allow-all observer saw before the marker."""
    marker = f"alice/marker-{uid('m')}"
    for user, password, topic, client_id in attempts:
        pub(b, user, password, topic, client_id)
    done = pub(b, "alice", "alice pw", marker)
    assert done.returncode == 0, done.stdout + done.stderr
    return {m.topic for m in watch.until(marker)}


def test_mosquitto_acl_is_enforced(pw_broker, files):
    b = pw_broker
    t = uid("t")
    watch = observer(b)
    watch.subscribe("#")

    # Mosquitto grants every subscription; `read` decides what it delivers.
    bob = paho_tls(b, b.listener_port("legacy"), user="bob", password="bob-pw")
    bob.connect()
    assert bob.subscribe("#", qos=1) == [1]

    ok = pub(b, "alice?x-amz-customauthorizer-name=" + AUTHORIZER, "alice pw", f"alice/news/{t}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert bob.get(TIMEOUT).topic == f"alice/news/{t}"

    seen = published(watch, b, [
        ("alice", "alice pw", f"alice/other/{t}", None),          # allowed, bob may not read it
        ("alice", "alice pw", f"alice/secret/{t}", None),         # deny wins
        ("alice", "alice pw", f"bob/{t}", None),                  # nothing allows it
        ("bob", "bob-pw", f"alice/news/{t}/bob", None),           # read only
        ("alice", "alice pw", f"devices/dev-{t}/state", f"dev-{t}"),     # %c
        ("alice", "alice pw", f"devices/other-{t}/state", f"dev2-{t}"),  # not its client id
        ("bob", "bob-pw", f"users/bob/{t}/out", None),            # %u
        ("bob", "bob-pw", f"users/alice/{t}/out", None),          # not its username
        ("bob", "bob-pw", f"users/bob/{t}/x/out", None),          # + is one level
    ])
    assert seen == {f"alice/news/{t}", f"alice/other/{t}", f"devices/dev-{t}/state", f"users/bob/{t}/out"}, seen
    # bob received only what it may read (its own publishes to alice/news/... were refused).
    assert [m.topic for m in bob.drain()] == [], "bob received more than alice/news"
    bob.disconnect()
    watch.close()


@pytest.mark.parametrize("version,refused", [(5, NOT_AUTHORIZED_V5), (4, NOT_AUTHORIZED_V4)])
def test_wrong_password_or_unknown_user_is_refused(pw_broker, version, refused):
    assert connack(pw_broker, "alice", b"alice pw", version) == 0
    assert connack(pw_broker, "alice", b"wrong", version) == refused
    assert connack(pw_broker, "nobody", b"alice pw", version) == refused
    out = pub(pw_broker, "bob", "wrong", "alice/x")
    assert out.returncode != 0
    assert "not authori" in (out.stdout + out.stderr).lower(), out.stdout + out.stderr


def test_files_edited_while_running_take_effect(pw_broker, files):
    b = pw_broker
    pw, acl = files
    t = uid("t")
    assert connack(b, "carol", b"carol pw", 5) == NOT_AUTHORIZED_V5
    # A user added by mosquitto_passwd, one by `ferrocore passwd` (argon2id), and their ACL.
    passwd(pw, "carol", "carol pw")
    made = subprocess.run([str(ferrocore_bin()), "passwd", str(pw), "dave"], input="dave pw\n",
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert made.returncode == 0, made.stderr
    assert "dave pw" not in made.stdout + made.stderr
    assert pw.stat().st_mode & 0o777 == 0o600
    assert any(line.startswith("dave:$argon2id$") for line in pw.read_text().splitlines())
    acl.write_text(ACL + "user carol\ntopic write carol/#\nuser dave\ntopic write dave/#\n")

    deadline = time.monotonic() + TIMEOUT  # the files are looked at every few seconds
    while connack(b, "carol", b"carol pw", 5) != 0:
        assert time.monotonic() < deadline, "carol never admitted"
        time.sleep(0.5)
    assert connack(b, "dave", b"dave pw", 5) == 0
    assert connack(b, "dave", b"carol pw", 5) == NOT_AUTHORIZED_V5

    watch = observer(b)
    watch.subscribe("#")
    seen = published(watch, b, [
        ("carol", "carol pw", f"carol/{t}", None),
        ("dave", "dave pw", f"dave/{t}", None),
        ("dave", "dave pw", f"carol/{t}/dave", None),
    ])
    assert seen == {f"carol/{t}", f"dave/{t}"}, seen

    # A file that does not parse leaves the previous one in force, and the log says which line.
    acl.write_text("user carol\ntopic maybe carol/#\n")
    deadline = time.monotonic() + TIMEOUT
    while "line 2" not in b.log():
        assert time.monotonic() < deadline, "the broken ACL file was not reported"
        assert connack(b, "carol", b"carol pw", 5) == 0
        time.sleep(0.5)
    seen = published(watch, b, [("carol", "carol pw", f"carol/{t}/still", f"c-{t}")])
    assert seen == {f"carol/{t}/still"}, seen
    assert "carol pw" not in b.log() and "$7$" not in b.log()
    watch.close()


def test_a_changed_named_policy_applies_to_open_connections_at_once(start_broker, files):
    """The function's named `policies` are looked up when it answers; a new default version of
    one re-authenticates the connections of authorizers with built-in functions at once, so
    an open connection gets the new permissions without reconnecting or waiting for its
    refresh (refresh_after is an hour here)."""
    config = password_config(*files, 'policies = ["Extra"]\nrefresh_after = 3600\n')
    b = start_broker(tls_anonymous=False, config=config)
    iot = aws.iot(b)

    def extra(topic: str) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/extra/{topic}"},
        ]})

    iot.create_policy(policyName="Extra", policyDocument=extra("one"))
    iot.create_authorizer(authorizerName=AUTHORIZER, authorizerFunctionArn=f"ferrocore:function/{FUNCTION}",
                          signingDisabled=True, status="ACTIVE")
    iot.set_default_authorizer(authorizerName=AUTHORIZER)
    c = mqttraw.RawClient(b.host, b.listener_port("legacy"), tls=tls_context(b, None), timeout=TIMEOUT)
    try:
        assert c.connect(uid("extra"), username="alice", password=b"alice pw").reason == 0
        assert c.publish("extra/one", qos=1).reason == 0
        assert c.publish("extra/two", qos=1).reason == NOT_AUTHORIZED_V5
        iot.create_policy_version(policyName="Extra", policyDocument=extra("two"), setAsDefault=True)
        deadline = time.monotonic() + TIMEOUT
        while c.publish("extra/two", qos=1).reason != 0:
            assert time.monotonic() < deadline, "the new policy version never reached the open connection"
            time.sleep(0.05)
        assert c.publish("extra/one", qos=1).reason == NOT_AUTHORIZED_V5
    finally:
        c.close()


def test_a_removed_user_is_refused_at_once_even_with_a_cached_answer(pw_broker, files):
    """The answer cache does not outlive a change of the password file: the same client id
    and password (a byte-identical request, answered from the cache before) are refused as soon
    as the user is removed."""
    b = pw_broker
    pw, _ = files
    client_id = uid("cached")

    def connect() -> int:
        c = mqttraw.RawClient(b.host, b.listener_port("legacy"), version=5, tls=tls_context(b, None),
                              timeout=TIMEOUT)
        try:
            return c.connect(client_id, username="bob", password=b"bob-pw").reason
        finally:
            c.sock.close()

    assert connect() == 0
    assert connect() == 0  # from the cache
    subprocess.run(["mosquitto_passwd", "-D", str(pw), "bob"], check=True, timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while connect() != NOT_AUTHORIZED_V5:
        assert time.monotonic() < deadline, "bob still admitted after his removal"
        time.sleep(0.2)
