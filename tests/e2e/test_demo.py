"""`hub demo` as a newcomer runs it: it starts everything, traffic reaches the DVCQG
simulator through the hub, and Ctrl-C stops it all with nothing left running."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from hub.demo import DEMO_PROCEDURES

pytestmark = pytest.mark.slow


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


def _wait_for(path: Path, pattern: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(pattern, path.read_text(errors="replace"))
        if match:
            return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} never appeared:\n{path.read_text()[-2000:]}")
