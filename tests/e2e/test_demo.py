"""`hub demo` as a newcomer runs it: it starts everything, traffic reaches the DVCQG
simulator through the hub, the ministry systems' results come back, transfers and documents
travel over the document axis, and Ctrl-C stops it all with nothing left running."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil
import pytest

from sims.demo import AXIS_DEPARTMENT, AXIS_MINISTRY, DEMO_OPERATORS, DEMO_PROCEDURES, DEMO_UNIT

pytestmark = pytest.mark.slow

# Each ministry system of the demo, and where the demo prints its simulator's state.
SYSTEMS = {
    "business_registration": r"business registration\s+POST \S+\s+\(state: GET ([^\s)]+)",
    "civil_status": r"civil status \(REST\)\s+POST \S+\s+\(state: GET ([^\s)]+)",
}
# What the ministry on the document axis answers to each transfer, in order.
AXIS_STATUSES = ["01", "03", "05", "06"]


def test_demo_runs_the_flow_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub.cli",
                "demo",
                "--port",
                "0",
                "--dossiers",
                "10",
                "--rate",
                "50",
            ],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            state_url = _wait_for(log_path, r"state: GET ([^\s)]+)", 120)
            deadline = time.monotonic() + 60
            held = 0
            while time.monotonic() < deadline and held < 10:
                with urllib.request.urlopen(state_url, timeout=5) as r:  # noqa: S310 - loopback
                    state = json.loads(r.read())
                held = len(state.get("dossiers", {}))
                time.sleep(0.5)
            assert held >= 10, log_path.read_text()[-2000:]
            # The catalogue synced at start reaches the one-stop receiver, once per procedure.
            receiver_url = _wait_for(log_path, r"one-stop event receiver\s+GET\s+(\S+)", 10)
            created = 0
            while time.monotonic() < deadline + 60 and created < DEMO_PROCEDURES:
                with urllib.request.urlopen(receiver_url, timeout=5) as r:  # noqa: S310 - loopback
                    receiver = json.loads(r.read())
                created = receiver["types"].get("procedure.created", 0)
                time.sleep(0.5)
            assert created == DEMO_PROCEDURES, log_path.read_text()[-2000:]
            # Fees are paid on the simulated platform and reach the one-stop receiver: the
            # honest and repeated callbacks at once, a pending one through a status check.
            paid = 0
            while time.monotonic() < deadline + 90 and paid < 5:
                with urllib.request.urlopen(receiver_url, timeout=5) as r:  # noqa: S310 - loopback
                    receiver = json.loads(r.read())
                paid = receiver["types"].get("payment.paid", 0)
                time.sleep(0.5)
            assert paid >= 5, log_path.read_text()[-2000:]
            assert receiver["receipts"]["duplicates"] == 0
            assert "payment_callback_refused" in log_path.read_text()  # the badly signed one
            assert "payment_status_checked" in log_path.read_text()
            # The demo's accepted dossiers of the ministries' procedures are handed off, and
            # their results (polled over SOAP, pushed over REST) reach the one-stop receiver,
            # once each (so do those of traffic dossiers handed off while still accepted).
            results: list[dict[str, Any]] = []
            systems: Counter[str] = Counter()
            while time.monotonic() < deadline + 150 and min(systems[s] for s in SYSTEMS) < 2:
                receiver = _get_json(receiver_url)
                results = [e for e in receiver["events"] if e["type"] == "ministry.result"]
                systems = Counter(
                    e["system"] for e in results if e["dossier_code"].startswith(f"{DEMO_UNIT}-")
                )
                time.sleep(0.5)
            assert min(systems[s] for s in SYSTEMS) >= 2, (systems, log_path.read_text()[-2000:])
            assert receiver["receipts"]["duplicates"] == 0
            assert len({(e["system"], e["dossier_code"]) for e in results}) == len(results)
            assert {e["status_name"] for e in results} == {"processed"}
            for system, pattern in SYSTEMS.items():
                state = _get_json(_wait_for(log_path, pattern, 10))
                decided = {e["dossier_code"] for e in results if e["system"] == system}
                assert decided <= set(state["accepted"]), (system, decided, state["accepted"])
            # Each round hands a demo dossier to the ministry over the document axis (its
            # statuses come back) and the department sends the hub a document naming one:
            # both reach the one-stop receiver, linked to their dossier, each event once.
            complete: set[str] = set()
            documents: list[dict[str, Any]] = []
            while time.monotonic() < deadline + 180 and not (complete and documents):
                receiver = _get_json(receiver_url)
                complete, documents = _axis_events(receiver["events"])
                time.sleep(0.5)
            assert complete, (receiver["types"], log_path.read_text()[-2000:])
            assert documents, (receiver["types"], log_path.read_text()[-2000:])
            axis_ids = [e["event_id"] for e in receiver["events"] if e["type"].startswith("vdxp.")]
            assert len(axis_ids) == len(set(axis_ids))
            assert not set(axis_ids) & set(receiver["duplicated_events"])
            assert receiver["receipts"]["duplicates"] == 0
            # The dashboard: the demo operator logs in and sees every connector's card.
            dashboard = _wait_for(log_path, r"dashboard\s+(\S+)/dashboard/", 10)
            overview = _dashboard_overview(dashboard, *DEMO_OPERATORS["operator"])
            names = {c["name"] for c in overview["connectors"]}
            assert {"national_portal", "vdxp", "payment_platform"} <= names, names
            assert overview["completeness"]["dossiers"] >= 10
            # The printed status command answers: ready, every connector with its state.
            command = _wait_for(log_path, r"connector states\s+(\S.*)", 10)
            status = subprocess.run(
                [sys.executable, "-m", "hub.cli", *command.split()[1:]],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert status.returncode == 0, status.stderr
            assert ": READY" in status.stdout
            assert re.search(r"^national_portal\s+(up|degraded)\s", status.stdout, re.M), (
                status.stdout
            )
        finally:
            demo.send_signal(signal.SIGINT)
            code = demo.wait(60)
    text = log_path.read_text()
    assert code == 0, text[-2000:]
    assert "demo stopped; nothing left running" in text
    assert (tmp_path / "var" / "rabbitmq").is_dir()
    leftovers = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline", "cwd"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or []) or p.info["cwd"] == str(tmp_path)
    ]
    assert leftovers == []


def _axis_events(events: list[dict[str, Any]]) -> tuple[set[str], list[dict[str, Any]]]:
    """(the transfers whose every status reached the receiver, the documents received from
    the department), each linked to a demo dossier; a status arriving twice fails."""
    statuses: defaultdict[str, list[str]] = defaultdict(list)
    for e in events:
        if e["type"] == "vdxp.status" and e["from_organ"] == AXIS_MINISTRY:
            assert e["dossier_code"].startswith(f"{DEMO_UNIT}-"), e
            assert e["document_id"].startswith(f"{DEMO_UNIT},"), e
            statuses[e["document_id"]].append(e["status"])
    assert all(len(codes) == len(set(codes)) for codes in statuses.values()), statuses
    complete = {d for d, codes in statuses.items() if sorted(codes) == AXIS_STATUSES}
    documents = [
        e
        for e in events
        if e["type"] == "vdxp.document"
        and e["from_organ"] == AXIS_DEPARTMENT
        and (e["dossier_code"] or "").startswith(f"{DEMO_UNIT}-")
        and len(e["attachments"]) == 1
    ]
    return complete, documents


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
        return json.loads(r.read())


def _wait_for(path: Path, pattern: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(pattern, path.read_text(errors="replace"))
        if match:
            return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} never appeared:\n{path.read_text()[-2000:]}")


def _dashboard_overview(base: str, user: str, password: str) -> dict[str, Any]:
    """Log in to the admin API and read the overview, with the session cookie."""
    login = urllib.request.Request(  # noqa: S310 - loopback
        f"{base}/api/v1/admin/session",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as r:  # noqa: S310 - loopback
        cookie = r.headers["Set-Cookie"].split(";")[0]
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base}/api/v1/admin/overview", headers={"Cookie": cookie}
    )
    with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - loopback
        data: dict[str, Any] = json.loads(r.read())
    return data
