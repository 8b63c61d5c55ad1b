"""`ferrocore policy explain` and `ferrocore policy lint` with the real binary: explain agrees
with TestAuthorization (boto3) for allow, explicit deny and implicit deny and names the deciding
statement, for a certificate (id, prefix or ARN) and for a thing; policy files are evaluated
locally without a server; the ExplainAuthorization API (a Ferrocore extension) answers
SigV4-signed requests with AWS-shaped errors; lint flags bad files and passes good ones."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import aws
import brokers
from clients import uid
from pki import ACCOUNT, REGION, cert_arn

pytestmark = pytest.mark.ferrocore_only

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
THING_VAR = "${iot:Connection.Thing.ThingName}"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The binary with only its flags configuring it (no AWS_* / FERROCORE_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FERROCORE_"))}
    return subprocess.run(
        [str(brokers.ferrocore_bin()), *args], env=env, capture_output=True, text=True, timeout=120, input=stdin
    )


def admin(broker, *args: str) -> subprocess.CompletedProcess:
    return run(*args, "--data-dir", str(broker.data_dir))


def status(p: subprocess.CompletedProcess, code: int) -> str:
    assert p.returncode == code, f"exit {p.returncode} (wanted {code})\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    assert "panicked" not in p.stderr, p.stderr
    return p.stdout


@pytest.fixture
def fleet(broker) -> dict:
    """A certificate attached (non-exclusively) to thing T (attribute site=s1) in group G; policy
    `device` on the certificate (Connect as the thing, Publish under dev/<client id>/, Deny
    dev/*/secret), policy `site` on the group (Subscribe under site/<site attribute>/)."""
    iot = aws.iot(broker)
    f = {
        "cert": iot.create_keys_and_certificate(setAsActive=True)["certificateId"],
        "thing": uid("thing"),
        "group": uid("group"),
        "device": uid("device"),
        "site": uid("site"),
    }
    iot.create_thing(thingName=f["thing"], attributePayload={"attributes": {"site": "s1"}})
    iot.create_thing_group(thingGroupName=f["group"])
    iot.add_thing_to_thing_group(thingGroupName=f["group"], thingName=f["thing"])
    iot.attach_thing_principal(thingName=f["thing"], principal=cert_arn(f["cert"]))
    iot.create_policy(
        policyName=f["device"],
        policyDocument=doc(
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{THING_VAR}"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/dev/${{iot:ClientId}}/*"},
            {"Sid": "NoSecret", "Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/dev/*/secret"},
        ),
    )
    iot.create_policy(
        policyName=f["site"],
        policyDocument=doc(
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": f"{ARN}:topicfilter/site/${{iot:Connection.Thing.Attributes[site]}}/*",
            }
        ),
    )
    iot.attach_policy(policyName=f["device"], target=cert_arn(f["cert"]))
    iot.attach_policy(policyName=f["site"], target=f"{ARN}:thinggroup/{f['group']}")
    return f


def explain_json(broker, *args: str) -> tuple[int, dict]:
    p = admin(broker, "policy", "explain", *args, "--json")
    assert p.returncode in (0, 1), f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.returncode, json.loads(p.stdout)


def test_explain_agrees_with_test_authorization(broker, fleet):
    iot = aws.iot(broker)
    t, c = fleet["thing"], fleet["cert"]
    cases = [
        # (actionType, action, resource ARN, decision, deciding (policy, statement, sid))
        ("CONNECT", "iot:Connect", f"{ARN}:client/{t}", "ALLOWED", (fleet["device"], 0, None)),
        ("PUBLISH", "iot:Publish", f"{ARN}:topic/dev/{t}/temp", "ALLOWED", (fleet["device"], 1, None)),
        ("PUBLISH", "iot:Publish", f"{ARN}:topic/dev/{t}/secret", "EXPLICIT_DENY", (fleet["device"], 2, "NoSecret")),
        ("PUBLISH", "iot:Publish", f"{ARN}:topic/dev/other/temp", "IMPLICIT_DENY", None),
        ("SUBSCRIBE", "iot:Subscribe", f"{ARN}:topicfilter/site/s1/#", "ALLOWED", (fleet["site"], 0, None)),
        ("SUBSCRIBE", "iot:Subscribe", f"{ARN}:topicfilter/site/s2/#", "IMPLICIT_DENY", None),
        ("RECEIVE", "iot:Receive", f"{ARN}:topic/site/s1/x", "IMPLICIT_DENY", None),
    ]
    for action_type, action, resource, decision, deciding in cases:
        ta = iot.test_authorization(
            principal=cert_arn(c), clientId=t, authInfos=[{"actionType": action_type, "resources": [resource]}]
        )["authResults"][0]
        code, out = explain_json(broker, "--cert", c, "--client-id", t, "--action", action, "--resource", resource)
        assert out["decision"] == ta["authDecision"] == decision, (action, resource)
        assert code == (0 if decision == "ALLOWED" else 1)
        assert out["missingContextValues"] == ta["missingContextValues"]
        assert out["resource"] == resource
        assert out["principal"] == cert_arn(c)
        assert (out["clientId"], out["thingName"]) == (t, t)
        if deciding is None:
            assert "decidedBy" not in out
        else:
            d = out["decidedBy"]
            assert (d["policyName"], d["statementIndex"], d.get("sid")) == deciding
            assert d["policyVersionId"] == "1"
            assert d["effect"] == ("Deny" if decision == "EXPLICIT_DENY" else "Allow")
        assert [p["policyName"] for p in out["policies"]] == [fleet["device"], fleet["site"]]
        assert len(out["statements"]) == 4

    # The human form names the deciding statement as the broker's denial log does.
    p = admin(broker, "policy", "explain", "--cert", c, "--client-id", t, "--action", "iot:Publish",
              "--resource", f"dev/{t}/secret", "-v")
    text = status(p, 1)
    assert text.startswith(f"EXPLICIT_DENY: iot:Publish on {ARN}:topic/dev/{t}/secret\n"), text
    assert f'decided by:  policy "{fleet["device"]}" statement 2 (Sid "NoSecret"), Deny' in text
    assert "OUTCOME" in text and "applies" in text and "action not covered" in text
    assert any(l.startswith("*") and "NoSecret" in l for l in text.splitlines()), text

    # A unique prefix of the certificate id and its ARN work too; short resources get the
    # action's type.
    for given in (c[:10], cert_arn(c)):
        code, out = explain_json(broker, "--cert", given, "--client-id", t, "--action", "iot:Subscribe",
                                 "--resource", "site/s1/#")
        assert (code, out["decision"], out["resource"]) == (0, "ALLOWED", f"{ARN}:topicfilter/site/s1/#")


def test_explain_a_thing_and_other_client_ids(broker, fleet):
    t, c = fleet["thing"], fleet["cert"]
    # A thing: its certificate, its name as client id.
    code, out = explain_json(broker, "--thing", t, "--action", "iot:Connect", "--resource", f"client/{t}")
    assert (code, out["decision"], out["principal"], out["clientId"]) == (0, "ALLOWED", cert_arn(c), t)
    # Without --client-id the certificate's thing's name is assumed, and said.
    p = admin(broker, "policy", "explain", "--cert", c, "--action", "iot:Connect", "--resource", f"client/{t}")
    assert f"note: client id {t} assumed" in status(p, 0)
    # Another client id: not the thing's connection, its variables have no value.
    code, out = explain_json(broker, "--cert", c, "--client-id", "intruder", "--action", "iot:Connect",
                             "--resource", "client/intruder")
    assert (code, out["decision"]) == (1, "IMPLICIT_DENY")
    assert out["missingContextValues"] == ["iot:Connection.Thing.ThingName"]
    assert out["statements"][0]["outcome"] == "unresolved variable: iot:Connection.Thing.ThingName"
    assert [p["policyName"] for p in out["policies"]] == [fleet["device"]]
    # What-if: another attribute value.
    code, out = explain_json(broker, "--thing", t, "--attr", "site=s2", "--action", "iot:Subscribe",
                             "--resource", "site/s2/x")
    assert (code, out["decision"]) == (0, "ALLOWED")


def test_explain_policy_files_locally_without_a_server(tmp_path, broker, fleet):
    policy = tmp_path / "sensor.json"
    policy.write_text(doc(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{THING_VAR}"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/sensors/{THING_VAR}/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {"Sid": "NoDebug", "Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/sensors/*/debug"},
    ))
    nowhere = ["--data-dir", str(tmp_path / "no-server")]

    def local(*args: str) -> subprocess.CompletedProcess:
        return run("policy", "explain", "--policy", str(policy), *args, *nowhere)

    text = status(local("--thing-name", "lamp", "--source-ip", "10.1.2.3", "--action", "iot:Publish",
                        "--resource", "sensors/lamp/temp"), 0)
    assert text.startswith(f"ALLOWED: iot:Publish on {ARN}:topic/sensors/lamp/temp\n"), text
    assert 'decided by:  policy "sensor.json" statement 1, Allow' in text

    text = status(local("--thing-name", "lamp", "--source-ip", "10.1.2.3", "--action", "iot:Publish",
                        "--resource", "sensors/lamp/debug"), 1)
    assert 'policy "sensor.json" statement 2 (Sid "NoDebug"), Deny' in text

    out = json.loads(status(local("--thing-name", "lamp", "--source-ip", "192.0.2.1", "--action", "iot:Publish",
                                  "--resource", "sensors/lamp/temp", "--json"), 1))
    assert out["decision"] == "IMPLICIT_DENY"
    assert out["statements"][1]["outcome"] == "condition not met: IpAddress aws:SourceIp"

    out = json.loads(status(local("--client-id", "lamp", "--action", "iot:Connect", "--resource", "lamp", "--json"), 1))
    assert out["missingContextValues"] == ["iot:Connection.Thing.ThingName"]
    assert "principal" not in out

    # Another account: said, with the flags that fix it.
    text = status(local("--thing-name", "lamp", "--account-id", "123456789012", "--action", "iot:Connect",
                        "--resource", "lamp"), 1)
    assert f"pass --region {REGION} --account-id {ACCOUNT}" in text

    # The same file on the server, in the certificate's context, decides alike.
    t, c = fleet["thing"], fleet["cert"]
    for resource, decision in ((f"client/{t}", "ALLOWED"), ("client/other", "IMPLICIT_DENY")):
        p = run("policy", "explain", "--policy", str(policy), *nowhere, "--thing-name", t,
                "--action", "iot:Connect", "--resource", resource, "--json")
        local_out = json.loads(p.stdout)
        code, server_out = explain_json(broker, "--cert", c, "--client-id", t, "--policy", str(policy),
                                        "--action", "iot:Connect", "--resource", resource)
        assert local_out["decision"] == server_out["decision"] == decision
        assert server_out["policies"] == [{"policyName": "sensor.json"}]
        assert local_out["statements"] == server_out["statements"]

    # Bad input: one line, exit 2.
    p = run("policy", "explain", "--action", "iot:Publish", "--resource", "x", *nowhere)
    assert p.returncode == 2 and "--policy FILE" in p.stderr, p.stderr
    p = local("--action", "iot:Nope", "--resource", "x")
    assert "InvalidRequestException: action 'iot:Nope'" in p.stderr and p.returncode == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"Version": "2012-10-17", "Statement": []}')
    p = run("policy", "explain", "--policy", str(bad), "--action", "iot:Publish", "--resource", "x", *nowhere)
    assert p.returncode == 2 and "MalformedPolicyException" in p.stderr, p.stderr


def test_explain_api_and_its_errors(broker, fleet):
    t, c = fleet["thing"], fleet["cert"]
    code, out = aws.signed(broker, "POST", "/explain-authorization",
                           {"principal": cert_arn(c), "clientId": t, "action": "iot:Publish", "resource": f"dev/{t}/x"})
    assert (code, out["decision"], out["decidedBy"]["policyName"]) == (200, "ALLOWED", fleet["device"])
    code, out = aws.signed(broker, "POST", "/explain-authorization",
                           {"action": "iot:Publish", "resource": "a/b", "variables": {"clientId": "c"},
                            "policyDocuments": [doc({"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/a/*"})]})
    assert (code, out["decision"], out["decidedBy"]["policyName"]) == (200, "ALLOWED", "policyDocuments[0]")

    for body, status_code, error in [
        ({"principal": cert_arn(c), "action": "iot:Nope", "resource": "x"}, 400, "InvalidRequestException"),
        ({"principal": cert_arn(c), "resource": "x"}, 400, "InvalidRequestException"),
        ({"principal": cert_arn("0" * 64), "action": "iot:Publish", "resource": "x"}, 404, "ResourceNotFoundException"),
        ({"thingName": uid("missing"), "action": "iot:Publish", "resource": "x"}, 404, "ResourceNotFoundException"),
        ({"action": "iot:Publish", "resource": "x", "policyDocuments": ["{}"]}, 400, "MalformedPolicyException"),
        ({"action": "iot:Publish", "resource": "x", "policyDocuments": [doc({"Effect": "Allow", "Action": "*", "Resource": "*"})],
          "variables": {"sourceIP": "1.2.3.4"}}, 400, "InvalidRequestException"),
    ]:
        code, out = aws.signed(broker, "POST", "/explain-authorization", body)
        assert (code, out["errorType"]) == (status_code, error), (body, out)
        assert out.get("message"), out

    # Through the CLI: one line, exit 2.
    p = admin(broker, "policy", "explain", "--cert", "0" * 64, "--action", "iot:Publish", "--resource", "x")
    assert p.returncode == 2 and p.stderr.startswith("error: ResourceNotFoundException:"), p.stderr


BAD = doc(
    {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
    {"Sid": "Cmd", "Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/cmd/${{iot:ClientId}}/#"},
    {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/{THING_VAR}/admin"},
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/x/${{iot:Thing.ThingName}}"},
)

GOOD = doc(
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{THING_VAR}"},
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/sensors/{THING_VAR}/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/commands/{THING_VAR}/*"},
    {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/commands/{THING_VAR}/*"},
)


def test_lint_flags_a_bad_file_and_passes_a_good_one(tmp_path):
    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    bad.write_text(BAD)
    good.write_text(GOOD)
    nowhere = ["--data-dir", str(tmp_path / "no-server")]

    text = status(run("policy", "lint", str(bad), str(good), *nowhere), 1)
    lines = text.splitlines()
    assert lines[0].startswith(f"{bad}: error[allow-all] Statement[0]: Allow of iot:* on \"*\""), text
    assert any(l.startswith(f'{bad}: warning[client-id-filter] Statement[1] (Sid "Cmd")') for l in lines), text
    assert any(f"{bad}: warning[deny-variable] Statement[2]" in l and '"Null"' in l for l in lines), text
    assert any(f"{bad}: error[unknown-variable] Statement[3]" in l and "iot:Connection.Thing.ThingName" in l for l in lines), text
    assert f"{good}: no findings" in lines
    assert lines[-1] == "2 documents: 2 errors, 2 warnings, 0 info"

    assert status(run("policy", "lint", str(good), *nowhere), 0).strip().endswith("0 errors, 0 warnings, 0 info")
    # Standard input, JSON, thresholds and skipped checks.
    out = json.loads(status(run("policy", "lint", "-", "--json", *nowhere, stdin=BAD), 1))
    codes = [f["code"] for f in out["results"][0]["findings"]]
    assert codes == ["allow-all", "client-id-filter", "deny-variable", "unknown-variable"]
    assert out["results"][0]["findings"][1]["sid"] == "Cmd"
    status(run("policy", "lint", str(bad), "--fail-on", "never", *nowhere), 0)
    warn_only = tmp_path / "warn.json"
    warn_only.write_text(doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"}))
    assert "warning[broad-connect]" in status(run("policy", "lint", str(warn_only), "--fail-on", "error", *nowhere), 0)
    status(run("policy", "lint", str(warn_only), "--allow", "broad-connect", *nowhere), 0)
    # For anonymous clients thing variables never resolve.
    text = status(run("policy", "lint", str(good), "--for", "anonymous", *nowhere), 1)
    assert "error[never-resolves]" in text
    # Not a policy at all: an error finding; an unreadable file: exit 2.
    broken = tmp_path / "broken.json"
    broken.write_text('{"Version": "2012-10-17", "Statement": {"Effect": "Allow"}}')
    assert "error[malformed]" in status(run("policy", "lint", str(broken), *nowhere), 1)
    p = run("policy", "lint", str(tmp_path / "missing.json"), *nowhere)
    assert p.returncode == 2 and p.stderr.startswith("error: cannot read"), p.stderr


def test_lint_a_policy_on_the_server(broker):
    iot = aws.iot(broker)
    name = uid("open")
    iot.create_policy(policyName=name, policyDocument=doc({"Effect": "Allow", "Action": "iot:*", "Resource": "*"}))
    text = status(admin(broker, "policy", "lint", "--name", name), 1)
    assert text.startswith(f"policy {name}: error[allow-all]"), text
    p = admin(broker, "policy", "lint", "--name", uid("missing"))
    assert p.returncode == 2 and "ResourceNotFoundException" in p.stderr, p.stderr
