"""Prometheus metrics at /metrics: connections, policy denials by action, store commits."""

from __future__ import annotations

import urllib.request

import pytest

from clients import WAIT, Paho, uid

pytestmark = pytest.mark.ferrocore_only

NO_SUBSCRIBE = """{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish", "iot:Receive"], "Resource": "*"}]}"""


def scrape(broker) -> dict[str, float]:
    url = f"http://127.0.0.1:{broker.port('metrics')}/metrics"
    with urllib.request.urlopen(url, timeout=WAIT) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_connections_and_denials(start_broker, tmp_path):
    policy = tmp_path / "no-subscribe.json"
    policy.write_text(NO_SUBSCRIBE)
    b = start_broker(args=["--anonymous-policy", str(policy)], tls_anonymous=False)
    assert scrape(b)['ferrocore_policy_denials_total{action="iot:Subscribe"}'] == 0
    with Paho(b, client_id=uid("metrics"), transport="tcp") as p:
        p.connect()
        assert p.subscribe("a/#", qos=1) == [0x87]
        assert p.subscribe("b/#", qos=1) == [0x87]
        after = scrape(b)
        assert after["ferrocore_connections"] >= 1
    assert after['ferrocore_policy_denials_total{action="iot:Subscribe"}'] == 2
    assert after['ferrocore_policy_denials_total{action="iot:Publish"}'] == 0
    assert after['ferrocore_store_group_commits_total{result="failed"}'] == 0
