"""What the end-to-end tests share beyond `tests.support` (where the hub process, `HubProcess`,
and `eventually` live): the hub's HTTP API as the tests read it. Test modules import these from
here, never from each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.support import ONESTOP_TOKEN, HubProcess, eventually

AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *args: str, timeout_s: float) -> tuple[str, dict[str, Any]]:
    """`python -m bench --quick ARGS` in the test's folder (`--var`); what it printed, once it
    exited 0 (else the test fails with the end of its output), and its results."""
    output = tmp_path / "results.json"
    run = subprocess.run(
        [
            sys.executable, "-m", "bench", "--quick", *args,
            "--var", str(tmp_path / "var"), "--output", str(output),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run.stdout, json.loads(output.read_text(encoding="utf-8"))


class HubApi:
    """The hub's procedure API, as the one-stop system reads it (`procedures.read`)."""

    def __init__(self, http: aiohttp.ClientSession, hub: HubProcess) -> None:
        self.http = http
        self.hub = hub
        self.base = f"{hub.base_url}/api/v1"

    def log_tail(self) -> str:
        return self.hub.log_tail()

    async def get(self, path: str, timeout_s: float = 60) -> Any:
        """GET a JSON answer, waiting for the hub to listen (it may be starting)."""

        async def answer() -> tuple[Any] | None:
            try:
                async with self.http.get(self.base + path, headers=AUTH) as response:
                    assert response.status == 200, (response.status, await response.text())
                    return (await response.json(),)
            except aiohttp.ClientConnectionError:
                return None

        (body,) = await eventually(
            answer, timeout_s, lambda: f"the hub answering GET {path}\n{self.log_tail()}"
        )
        return body

    async def runs(self) -> list[dict[str, Any]]:
        body = await self.get("/procedure-sync-runs")
        items: list[dict[str, Any]] = body["items"]
        return items

    async def wait_run_done(self, timeout_s: float) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []

        async def done() -> bool:
            runs[:] = await self.runs()
            return bool(runs) and all(r["state"] not in ("listing", "fetching") for r in runs)

        await eventually(
            done, timeout_s, lambda: f"the sync finished: {runs}\n{self.log_tail()}", every_s=0.2
        )
        return runs

    async def all_procedures(self) -> list[dict[str, Any]]:
        """Every procedure the hub holds, paged through with the exact cursor."""
        items: list[dict[str, Any]] = []
        cursor = 0
        while True:
            page = await self.get(f"/procedures?cursor={cursor}&limit=400")
            if not page["items"]:
                return items
            items += page["items"]
            assert page["next_cursor"] > cursor, page["next_cursor"]
            cursor = page["next_cursor"]
