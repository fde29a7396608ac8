"""`hub demo` as a newcomer runs it: it starts everything, traffic reaches the DVCQG
simulator through the hub, the ministry systems' results come back, transfers and documents
travel over the document axis, and Ctrl-C stops it all with nothing left running. Its
terminal shows the block of URLs and users and a status line, never a log event: the logs
are in var/demo/hub.log, and SIGUSR1 prints the block again."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil
import pytest

from sims.demo import AXIS_DEPARTMENT, AXIS_MINISTRY, DEMO_OPERATORS, DEMO_PROCEDURES, DEMO_UNIT
from tests.support import eventually, hub_cli

pytestmark = pytest.mark.slow

# Each ministry system of the demo, and where the demo prints its simulator's state.
SYSTEMS = {
    "business_registration": r"business registration\s+POST \S+\s+\(state: GET ([^\s)]+)",
    "civil_status": r"civil status \(REST\)\s+POST \S+\s+\(state: GET ([^\s)]+)",
}
BLOCK_START = "The hub is running. Press Ctrl-C to stop everything."
# What the ministry on the document axis answers to each transfer, in order.
AXIS_STATUSES = ["01", "03", "05", "06"]


async def test_demo_runs_the_flow_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.out"  # what the terminal shows
    hub_log = tmp_path / "var" / "demo" / "hub.log"
    with log_path.open("wb") as log:
        demo = await asyncio.create_subprocess_exec(
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
            cwd=tmp_path,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            state_url = await _printed(log_path, r"state: GET ([^\s)]+)", 120)
            await eventually(
                lambda: len(_get_json(state_url).get("dossiers", {})) >= 10,
                60,
                lambda: f"10 dossiers at the DVCQG simulator\n{_tail(log_path)}",
                every_s=0.5,
            )
            # The catalogue synced at start reaches the one-stop receiver, once per procedure.
            receiver_url = await _printed(log_path, r"one-stop event receiver\s+GET\s+(\S+)", 30)
            receiver: dict[str, Any] = {}

            def received(kind: str) -> int:
                receiver.update(_get_json(receiver_url))
                return int(receiver["types"].get(kind, 0))

            await eventually(
                lambda: received("procedure.created") >= DEMO_PROCEDURES,
                60,
                lambda: f"{DEMO_PROCEDURES} procedures announced\n{_tail(log_path)}",
                every_s=0.5,
            )
            assert receiver["types"]["procedure.created"] == DEMO_PROCEDURES
            # Fees are paid on the simulated platform and reach the one-stop receiver: the
            # honest and repeated callbacks at once, a pending one through a status check.
            await eventually(
                lambda: received("payment.paid") >= 5,
                60,
                lambda: f"5 payments at the one-stop\n{_tail(log_path)}",
                every_s=0.5,
            )
            assert receiver["receipts"]["duplicates"] == 0
            # The badly signed callback refused, the pending one resolved by a status check.
            await _logged(hub_log, "payment_callback_refused", 60)
            await _logged(hub_log, "payment_status_checked", 60)
            # The demo's accepted dossiers of the ministries' procedures are handed off, and
            # their results (polled over SOAP, pushed over REST) reach the one-stop receiver,
            # once each (so do those of traffic dossiers handed off while still accepted).
            results: list[dict[str, Any]] = []
            systems: Counter[str] = Counter()

            def two_results_each() -> bool:
                receiver.update(_get_json(receiver_url))
                results[:] = [e for e in receiver["events"] if e["type"] == "ministry.result"]
                systems.clear()
                systems.update(
                    e["system"] for e in results if e["dossier_code"].startswith(f"{DEMO_UNIT}-")
                )
                return min(systems[s] for s in SYSTEMS) >= 2

            await eventually(
                two_results_each,
                90,
                lambda: f"two results of each ministry: {systems}\n{_tail(log_path)}",
                every_s=0.5,
            )
            assert receiver["receipts"]["duplicates"] == 0
            assert len({(e["system"], e["dossier_code"]) for e in results}) == len(results)
            assert {e["status_name"] for e in results} == {"processed"}
            for system, pattern in SYSTEMS.items():
                state = _get_json(await _printed(log_path, pattern, 30))
                decided = {e["dossier_code"] for e in results if e["system"] == system}
                assert decided <= set(state["accepted"]), (system, decided, state["accepted"])
            # Each round hands a demo dossier to the ministry over the document axis (its
            # statuses come back) and the department sends the hub a document naming one:
            # both reach the one-stop receiver, linked to their dossier, each event once.
            complete: set[str] = set()
            documents: list[dict[str, Any]] = []

            def both_ways() -> bool:
                receiver.update(_get_json(receiver_url))
                found, docs = _axis_events(receiver["events"])
                complete.update(found)
                documents[:] = docs
                return bool(complete and documents)

            await eventually(
                both_ways,
                90,
                lambda: f"axis events both ways: {receiver['types']}\n{_tail(log_path)}",
                every_s=0.5,
            )
            axis_ids = [e["event_id"] for e in receiver["events"] if e["type"].startswith("vdxp.")]
            assert len(axis_ids) == len(set(axis_ids))
            assert not set(axis_ids) & set(receiver["duplicated_events"])
            assert receiver["receipts"]["duplicates"] == 0
            # The dashboard: the demo operator logs in and sees every connector's card.
            dashboard = await _printed(log_path, r"dashboard\s+(\S+)/dashboard/", 30)
            overview = _dashboard_overview(dashboard, *DEMO_OPERATORS["operator"])
            names = {c["name"] for c in overview["connectors"]}
            assert {"national_portal", "vdxp", "payment_platform"} <= names, names
            assert overview["completeness"]["dossiers"] >= 10
            # The printed status command answers: ready, every connector with its state.
            command = await _printed(log_path, r"connector states\s+(\S.*)", 30)
            status = await hub_cli(*command.split()[1:], timeout_s=60)
            assert status.returncode == 0, status.stderr
            assert ": READY" in status.stdout
            assert re.search(r"^national_portal\s+(up|degraded)\s", status.stdout, re.M), (
                status.stdout
            )
            # The terminal: the block, status lines, no log event; SIGUSR1 prints the block.
            shown = log_path.read_text()
            assert '"event": ' not in shown, shown[-2000:]
            assert re.search(r"^\d\d:\d\d:\d\d  dossiers [\d,]+ ", shown, re.M), shown[-2000:]
            assert f"logs                     {Path('var/demo/hub.log')}" in shown
            blocks = shown.count(BLOCK_START)
            demo.send_signal(signal.SIGUSR1)
            await eventually(
                lambda: log_path.read_text().count(BLOCK_START) > blocks,
                30,
                "the block printed again after SIGUSR1",
            )
            assert '"event": "hub_started"' in hub_log.read_text()
        finally:
            demo.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(demo.wait(), 60)
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


async def _printed(path: Path, pattern: str, timeout_s: float) -> str:
    """The first group of `pattern` once the demo printed it."""
    match = await eventually(
        lambda: re.search(pattern, path.read_text(errors="replace")),
        timeout_s,
        lambda: f"{pattern!r} in the demo's output\n{_tail(path)}",
        every_s=0.2,
    )
    return match.group(1)


async def _logged(path: Path, event: str, timeout_s: float) -> None:
    await eventually(
        lambda: event in path.read_text(errors="replace"),
        timeout_s,
        lambda: f"{event} in the demo's log\n{_tail(path)}",
        every_s=0.5,
    )


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


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
