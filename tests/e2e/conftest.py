"""Fixtures of the end-to-end suite.

`broker`: one broker per test session (per xdist worker) for tests that need nothing special;
tests keep independent by using unique client ids and topics (clients.uid / clients.topic).
`start_broker(**opts)`: a dedicated broker with options (see brokers.make_broker), stopped at
teardown. The target is Ferrocore's release binary, or Mosquitto with
FERROCORE_E2E_TARGET=mosquitto (to validate the tests themselves).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import brokers  # noqa: E402


def pytest_report_header(config):
    t = brokers.target()
    where = brokers.ferrocore_bin() if t == "ferrocore" else brokers.mosquitto_bin()
    return f"e2e target: {t} ({where})"


def pytest_collection_modifyitems(config, items):
    if brokers.target() != "mosquitto":
        return
    for item in items:
        if item.get_closest_marker("ferrocore_only"):
            item.add_marker(pytest.mark.skip(reason="Ferrocore-specific"))
        m = item.get_closest_marker("mosquitto_xfail")
        if m:
            item.add_marker(pytest.mark.xfail(reason="Mosquitto: " + (m.args[0] if m.args else ""), strict=False))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _dump_logs(request, started):
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for b in started:
            print(f"\n----- {b.kind} log ({b.log_path}), last 6000 chars -----\n{b.log()[-6000:]}")


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = brokers.make_broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(autouse=True)
def _shared_broker_log_on_failure(request):
    """Shows the shared broker's log when a test that used it fails."""
    yield
    if "broker" in request.fixturenames:
        _dump_logs(request, [request.getfixturevalue("broker")])


@pytest.fixture
def start_broker(request, tmp_path):
    started: list[brokers.BrokerBase] = []

    def start(**opts) -> brokers.BrokerBase:
        b = brokers.make_broker(tmp_path / f"broker{len(started)}", **opts)
        started.append(b)
        b.start()
        return b

    yield start
    _dump_logs(request, started)
    for b in started:
        b.stop()


@pytest.fixture
def pki(tmp_path) -> Path:
    """A folder for the test's CAs, certificates and keys (see pki.py)."""
    return tmp_path
