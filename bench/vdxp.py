"""The document axis (VDXP): documents received and sent per second, beside a bare client.

One hub (its own store, queue prefix and spool) runs as a `hub run` process with
`connectors.vdxp` on, production defaults otherwise, except two settings: the axis's
`rate_limit_per_s` is set far above what the loopback axis can answer (the default, 50 calls a
second, would be what is measured: a received document costs two calls), and
`poll.interval_s` is an hour, so a receive round starts when the bench asks (`POST
/api/v1/vdxp/poll`), never while documents are being generated; the hub then drains the
backlog itself, a full round (`poll.max_items`) followed by the next at once. Its
`vdxp.document` events go to `one_stop` (events `vdxp.#`, production defaults), a
`WebhookReceiver` in this process, beside the DVCQG simulator the hub always talks to.

The axis simulator (`python -m sims.vdxp.simulator`) runs in a process of its own: it
holds documents in memory and parses each one sent to it, so in this process it would share a
core with the bench and its memory would not be the bench's to count. Two systems are
registered on it: the hub, and `raw`, the bare client's. One agency per load sends documents
(the simulator's `/_sim/documents`; its numbering starts again at each `/_sim/reset`, the
sender keeps DocumentIds unique for the hub); `Bộ Tư pháp` receives the transfers and
answers no status (the only responder is an agency nobody sends to), so no status message is
ever in an inbox. The simulator is reset after every send round, since it keeps every body
it was sent (its request counters are added up before each reset).

For each load (`LOADS`: 1,500 documents with a 50 KiB attachment, 80 with a 5 MiB one, so
that the fastest measurement still takes two or three seconds), untimed first: the dossiers
the transfers name are seeded through `/api/v1/dossier-events` at the start, and the bench
waits until DVCQG holds them (the portal connector is idle afterwards). Then, for each
direction, a warm-up round through the hub, then `ROUNDS` rounds of the hub and of the bare
client in the order baseline, hub, hub, baseline (drift on this shared machine hits both
alike):

* receive, hub: N documents generated into the hub's inbox (each naming a seeded dossier in
  its subject, so the hub links it), then timed from the first `POST /api/v1/vdxp/poll` until
  the axis holds a `done` acknowledgement for all N (each poll's answer, then `/_sim/state`;
  a round takes at most `poll.max_items`, so N = 1,500 takes three) and the receiver holds N
  `vdxp.document` events with those DocumentIds;
* receive, bare client: a child process (`python -m bench.vdxp`, its spec on stdin) with the
  hub's own `AxisClient` and `EdxmlCodec` does the same work one document at a time, as the
  hub does: list (pages of `poll.limit`), `getEdoc` streamed to a file, `read_document` into
  a spool folder, `updateStatus` done;
* send, hub: N transfers posted one after another to `POST /api/v1/vdxp/transfers` as
  multipart (the transfer JSON, then the attachment), each answered 202, timed from the first
  post until the axis has received all N (`/_sim/state` polled every 25 ms);
* send, bare client: the child builds each document as the hub does (`transfer_document`),
  writes it with `EdxmlCodec.write_document` and sends it with `AxisClient.send` (the same
  multipart `sendEdoc`), as many in flight as the hub's `connectors.vdxp.concurrency`.

Figures: documents per second (N ÷ seconds over all rounds) for the hub and the bare client and
their ratio; CPU used by the hub, the axis, the bench, RabbitMQ and the client, and from it the
CPU milliseconds per document of the hub and of the bare client (where the axis simulator is
the bottleneck, as when it parses 5 MiB documents sent to it, the rates of both are its rate
and this is the figure that still compares them); and memory: the hub's resident set right
before each timed round and its peak during it (the kernel's high-water mark `VmHWM`, reset
through `/proc/<pid>/clear_refs` before the round, beside psutil samples every 0.1 s), the
growth set beside the attachment size, and the same for the bare client. Every document is
checked: acknowledged `done` once, delivered once with its attachment's size, or received by
the axis once with it. The report is printed at the end of the phase (`bench.report` does
not know this phase) and everything is in the results file.

This module must never change the hub's code or its production defaults beyond what
`bench.hubproc` and `hub_overrides` below set, nor leave a process running.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e import E2eOptions
from bench.hubproc import (
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    bench_hub,
    child_process,
)
from bench.watch import MB, RssSampler, cpu_meter, process
from connectors.vdxp.config import VdxpConfig
from hub.auth import sha256_hex
from hub.config import deep_merge
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.support import HubProcess, ServedProcess

KiB = 1024
MiB = 1024 * 1024
HUB_ORGAN = UNIT  # the hub's agency, and its system id on the axis
RAW_ORGAN = "000.00.43.H41"  # the bare client's system on the same axis
# The agencies sending documents, one per load: after the simulator is reset its numbering
# starts again, and a DocumentId (sender, date, number) must never repeat for the hub.
SENDERS = ("000.00.42.H41", "000.00.44.H41")
TARGET = "000.00.00.G12"  # receives the transfers, answers nothing
AGENCY_NAMES = {
    SENDERS[0]: "Sở Tư pháp (bench)",
    SENDERS[1]: "Sở Xây dựng (bench)",
    TARGET: "Bộ Tư pháp (bench)",
}
RESPONDER = SENDERS[0]  # the simulator needs one; nobody sends to it, so no status is queued
HUB_SECRET = "bench-axis-hub-secret"  # noqa: S105 - throwaway keys of a loopback benchmark
RAW_SECRET = "bench-axis-raw-secret"  # noqa: S105
RATE_LIMIT_PER_S = 10_000.0  # far above what the loopback axis can answer
POLL_INTERVAL_S = 3600.0  # rounds only when the bench asks for one
SUBSCRIBER = "one_stop"
SOURCE = "bench_vdxp"
DOCUMENT_EVENT = "vdxp.document"
SEED_PATH = "/api/v1/dossier-events"
TRANSFER_PATH = "/api/v1/vdxp/transfers"
POLL_PATH = "/api/v1/vdxp/poll"
SEED_BATCH = 500  # the hub's validation.max_items_per_batch default
SEED_DAY = "261124"
PROCEDURE = "1.000894"
ROUNDS = 2
POLL_S = 0.01
SENT_POLL_S = 0.025
RSS_EVERY_S = 0.1
STALL_S = 120.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=900)
AXIS_READY_S = 30.0
CHILD_TIMEOUT_S = 900.0
RECEIVE_TIMEOUT_S = 900.0
CHILD_START = "timing"  # the line the bare client prints when its timed round begins


@dataclass(frozen=True)
class Load:
    label: str
    attachment_bytes: int
    documents: int
    warm_up: int
    sender: str


LOADS = (
    Load("50 KB", 50 * KiB, 1500, 50, SENDERS[0]),
    Load("5 MB", 5 * MiB, 80, 4, SENDERS[1]),
)


class VdxpBenchFailed(RuntimeError):
    """The hub or the axis refused something, a document went missing, or progress stalled."""


# -- memory ---------------------------------------------------------------------------------------


class Memory:
    """The resident set of one process and its high-water mark, which `reset` brings down to
    the current resident set (Linux: `/proc/<pid>/clear_refs`, the process must be ours)."""

    def __init__(self, pid: int | str = "self") -> None:
        self.proc = Path("/proc") / str(pid)

    def _status(self, key: str) -> float | None:
        try:
            for line in (self.proc / "status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024 / MB
        except (OSError, ValueError, IndexError):
            return None
        return None

    def rss_mb(self) -> float | None:
        return self._status("VmRSS")

    def peak_mb(self) -> float | None:
        return self._status("VmHWM")

    def reset(self) -> bool:
        try:
            (self.proc / "clear_refs").write_text("5")
        except OSError:
            return False
        return True


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- the axis simulator, a process of its own -----------------------------------------------------


class AxisProcess(ServedProcess):
    """`python -m sims.vdxp.simulator` with the bench's systems and agencies."""

    name = "the axis simulator"
    ready_path = "/_sim/state"
    ready_timeout_s = AXIS_READY_S
    failure = VdxpBenchFailed

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, "axis.log")

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "sims.vdxp.simulator"]
        args += ["--host", "127.0.0.1", "--port", str(self.port), "--seed", "1"]
        args += ["--system", f"{HUB_ORGAN}={HUB_SECRET}", "--system", f"{RAW_ORGAN}={RAW_SECRET}"]
        for organ, name in AGENCY_NAMES.items():
            args += ["--agency", f"{organ}={name}"]
        return [*args, "--responder", RESPONDER]


class Axis:
    """The simulator's control endpoints, over HTTP."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.http = http
        self.totals: Counter[str] = Counter()  # requests and counters, across resets

    async def _get(self, path: str) -> dict[str, Any]:
        async with self.http.get(self.base_url + path, timeout=REQUEST_TIMEOUT) as response:
            reply = await response.json()
        if response.status != 200 or not isinstance(reply, dict):
            raise VdxpBenchFailed(f"GET {path}: HTTP {response.status}: {str(reply)[:300]}")
        return reply

    async def state(self) -> dict[str, Any]:
        return await self._get("/_sim/state")

    async def acks(self) -> list[dict[str, Any]]:
        return list((await self._get("/_sim/acks"))["acks"])

    async def sent(self) -> list[dict[str, Any]]:
        return list((await self._get("/_sim/sent"))["sent"])

    async def reset(self) -> None:
        """Forget what was sent (the simulator keeps every body), counters kept here."""
        state = await self.state()
        self.totals.update({f"requests.{k}": int(v) for k, v in state["requests"].items()})
        self.totals.update(
            {
                "sent": int(state["sent"]),
                "repeats": int(state["repeats"]),
                "acks.done": int(state["acks"]["done"]),
                "acks.fail": int(state["acks"]["fail"]),
                "auth_failures": int(state["auth_failures"]),
            }
        )
        async with self.http.post(self.base_url + "/_sim/reset", timeout=REQUEST_TIMEOUT) as r:
            if r.status != 200:
                raise VdxpBenchFailed(f"/_sim/reset: HTTP {r.status}")

    async def generate(
        self,
        system: str,
        sender: str,
        count: int,
        attachment_bytes: int,
        subject: str | None = None,
    ) -> list[str]:
        """`count` documents from `sender` into `system`'s inbox; their DocumentIds."""
        body: dict[str, Any] = {
            "system": system,
            "from": sender,
            "count": count,
            "attachment_bytes": attachment_bytes,
        }
        if subject is not None:
            body["subject"] = subject
        async with self.http.post(
            self.base_url + "/_sim/documents", json=body, timeout=REQUEST_TIMEOUT
        ) as response:
            reply = await response.json()
        if response.status != 200 or not isinstance(reply, dict):
            raise VdxpBenchFailed(f"/_sim/documents: HTTP {response.status}: {str(reply)[:300]}")
        return [str(d) for d in reply["documentIds"]]


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


# -- the hub --------------------------------------------------------------------------------------


def hub_overrides(
    axis_url: str, spool: Path, receiver_url: str, receiver_token: str, token: str
) -> dict[str, Any]:
    return {
        "sources": {
            SOURCE: {
                "api_token_sha256": sha256_hex(token),
                "permissions": ["events.write", "vdxp.send", "vdxp.read", "vdxp.poll"],
                "units": [UNIT],
            }
        },
        "subscribers": {
            SUBSCRIBER: {"url": receiver_url, "token": receiver_token, "events": ["vdxp.#"]}
        },
        "connectors": {
            "vdxp": {
                "enabled": True,
                "base_url": axis_url,
                "system_id": HUB_ORGAN,
                "secret": HUB_SECRET,
                "organ_id": HUB_ORGAN,
                "organ_name": "UBND tỉnh (bench)",
                "spool_dir": str(spool),
                "poll": {"interval_s": POLL_INTERVAL_S},
                "rate_limit_per_s": RATE_LIMIT_PER_S,
                "deliver_to": SUBSCRIBER,
            }
        },
    }


def dossier_codes(count: int) -> list[str]:
    return [f"{UNIT}-{SEED_DAY}-{n:06d}" for n in range(1, count + 1)]


def _seed_event(code: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"bench-vdxp-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "processing",
        "occurred_at": at.isoformat(),
        "record": {
            "procedure_code": PROCEDURE,
            "procedure_name": "Đăng ký khai sinh",
            "owner_name": "Nguyễn Văn An",
            "received_at": at.isoformat(),
        },
    }


class DocumentTally:
    """`vdxp.document` events the receiver holds, by DocumentId, counted incrementally."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.by_document: dict[str, dict[str, Any]] = {}
        self._seen = 0

    def update(self) -> None:
        events = self.receiver.events
        for event in events[self._seen :]:
            if event.get("type") == DOCUMENT_EVENT:
                self.by_document[str(event["document_id"])] = event
        self._seen = len(events)

    def held(self, wanted: set[str]) -> int:
        self.update()
        return len(wanted & self.by_document.keys())


@dataclass
class Rig:
    hub: HubProcess
    axis: Axis
    axis_pid: int
    http: aiohttp.ClientSession
    receiver: WebhookReceiver
    tally: DocumentTally
    sampler: RssSampler
    token: str
    dossiers: Iterator[str]
    transfers: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def seed(self, codes: list[str], portal: DvcqgSimulator) -> dict[str, float]:
        """Tell the hub about every dossier, then wait until DVCQG holds them all."""
        at = datetime.now(UTC) - timedelta(hours=1)
        started = time.perf_counter()
        for start in range(0, len(codes), SEED_BATCH):
            events = [_seed_event(c, at) for c in codes[start : start + SEED_BATCH]]
            async with self.http.post(
                self.hub.base_url + SEED_PATH, json={"events": events}, headers=self.headers
            ) as response:
                reply = await response.json() if response.status == 200 else await response.text()
            if not isinstance(reply, dict) or reply.get("accepted") != len(events):
                raise VdxpBenchFailed(f"dossiers refused: HTTP {response.status}: {reply!s:.500}")
        accepted = time.perf_counter()
        wanted = set(codes)
        await _wait_until(
            lambda: len(wanted & portal.dossiers.keys()), len(wanted), self.hub.check_alive, "DVCQG"
        )
        return {
            "dossiers": len(codes),
            "accepted_s": round(accepted - started, 2),
            "at_dvcqg_s": round(time.perf_counter() - started, 2),
        }

    async def poll(self) -> dict[str, Any]:
        async with self.http.post(
            self.hub.base_url + POLL_PATH, headers=self.headers, timeout=REQUEST_TIMEOUT
        ) as response:
            reply = await response.json()
        if response.status != 200 or not isinstance(reply, dict):
            raise VdxpBenchFailed(f"poll: HTTP {response.status}: {str(reply)[:500]}")
        return reply

    def transfer_forms(self, count: int, content: bytes) -> list[aiohttp.FormData]:
        """`count` multipart transfers, each for a dossier of its own, built before the clock."""
        forms = []
        for _ in range(count):
            self.transfers += 1
            number = self.transfers
            code = next(self.dossiers)
            transfer = {
                "transfer_id": f"bench-{number:05d}",
                "dossier_code": code,
                "to": [TARGET],
                "subject": f"Chuyển hồ sơ {code} để xác minh",
                "code_number": str(number),
                "code_notation": "UBND-VP",
            }
            form = aiohttp.FormData()
            form.add_field(
                "transfer",
                json.dumps(transfer, ensure_ascii=False),
                content_type="application/json",
            )
            form.add_field(
                "file", content, filename=f"ho-so-{number}.pdf", content_type="application/pdf"
            )
            forms.append(form)
        return forms

    async def post_transfer(self, form: aiohttp.FormData) -> str:
        async with self.http.post(
            self.hub.base_url + TRANSFER_PATH,
            data=form,
            headers=self.headers,
            timeout=REQUEST_TIMEOUT,
        ) as response:
            reply = await response.json()
        if response.status != 202 or not isinstance(reply, dict):
            raise VdxpBenchFailed(f"transfer refused: HTTP {response.status}: {str(reply)[:500]}")
        return str(reply["document_id"])


async def _wait_until(
    held: Callable[[], int], target: int, alive: Callable[[], None], what: str
) -> float:
    """perf_counter time at which `held()` reached `target`; fails if it stops moving."""
    last, moved_at = -1, time.perf_counter()
    while True:
        now = time.perf_counter()
        count = held()
        if count >= target:
            return now
        if count != last:
            last, moved_at = count, now
        elif now - moved_at > STALL_S:
            raise VdxpBenchFailed(f"{what}: no progress for {STALL_S:.0f}s at {count}/{target}")
        alive()
        await asyncio.sleep(POLL_S)


# -- one timed round through the hub --------------------------------------------------------------


@dataclass
class Window:
    """What the hub process used over one timed round: CPU, and memory from before to peak."""

    rig: Rig
    memory: Memory
    rss_before_mb: float | None = None
    hwm_reset: bool = False
    started: float = 0.0
    _cpu: Any = None

    @classmethod
    def open(cls, rig: Rig) -> Window:
        window = cls(rig, Memory(rig.hub.pid))
        window.hwm_reset = window.memory.reset()
        window.rss_before_mb = window.memory.rss_mb()
        window._cpu = cpu_meter(
            hub=[process(rig.hub.pid)], axis=[process(rig.axis_pid)], bench=[process()]
        )
        window._cpu.start()
        window.started = time.perf_counter()
        return window

    def close(self) -> dict[str, Any]:
        cpu = self._cpu.stop()
        now = time.perf_counter()
        sampled = [s.rss_mb for s in self.rig.sampler.samples if self.started <= s.at <= now]
        hwm = self.memory.peak_mb() if self.hwm_reset else None
        peaks = [p for p in (hwm, max(sampled, default=None)) if p is not None]
        peak = max(peaks) if peaks else None
        before = self.rss_before_mb
        return {
            "cpu_cores_used": cpu,
            "rss_before_mb": _mb(before),
            "rss_peak_mb": _mb(peak),
            "rss_peak_sampled_mb": _mb(max(sampled, default=None)),
            "rss_growth_mb": _mb(peak - before) if peak is not None and before else None,
            "hwm_reset": self.hwm_reset,
        }


async def hub_receive(rig: Rig, load: Load, count: int) -> dict[str, Any]:
    """`count` documents generated for the hub, then timed until all are acknowledged done on
    the axis and delivered as `vdxp.document` events."""
    subject = f"Trả lời về hồ sơ {next(rig.dossiers)}"
    ids = await rig.axis.generate(HUB_ORGAN, load.sender, count, load.attachment_bytes, subject)
    wanted = set(ids)
    before = await rig.axis.state()
    done_before = int(before["acks"]["done"])
    window = Window.open(rig)
    # One round asked for; a round that stops at poll.max_items starts the next at once, so
    # the hub drains the backlog on its own, as in production.
    report = await rig.poll()
    if report.get("error") or not report["taken"]:
        raise VdxpBenchFailed(f"the first poll round failed or took nothing: {report}")

    async def acknowledged() -> int:
        state = await rig.axis.state()
        return int(state["acks"]["done"]) - done_before

    while (acked := await acknowledged()) < count:
        rig.hub.check_alive()
        if time.perf_counter() - window.started > RECEIVE_TIMEOUT_S:
            raise VdxpBenchFailed(f"{acked}/{count} acknowledged in {RECEIVE_TIMEOUT_S} s")
        await asyncio.sleep(0.05)
    acked_at = time.perf_counter()
    delivered_at = await _wait_until(
        lambda: rig.tally.held(wanted), count, rig.hub.check_alive, "vdxp.document events"
    )
    figures = window.close()
    seconds = max(acked_at, delivered_at) - window.started
    await _check_received(rig, load, wanted)
    return {
        "documents": count,
        "seconds": round(seconds, 3),
        "documents_per_s": round(count / seconds, 2),
        "acknowledged_s": round(acked_at - window.started, 3),
        "delivered_s": round(delivered_at - window.started, 3),
        **figures,
    }


async def _check_received(rig: Rig, load: Load, wanted: set[str]) -> None:
    acks = [a for a in await rig.axis.acks() if a.get("document_id") in wanted]
    done = [a for a in acks if a["status"] == "done"]
    problems = []
    if len(done) != len(wanted) or len(acks) != len(wanted):
        problems.append(f"{len(done)} done of {len(acks)} acknowledgements for {len(wanted)}")
    sizes = {
        tuple(a["size_bytes"] for a in rig.tally.by_document[d]["attachments"]) for d in wanted
    }
    if sizes != {(load.attachment_bytes,)}:
        problems.append(f"delivered attachment sizes {sorted(sizes)[:5]}")
    if problems:
        raise VdxpBenchFailed("received documents: " + "; ".join(problems))


async def hub_send(rig: Rig, load: Load, count: int, content: bytes) -> dict[str, Any]:
    """`count` transfers posted one after another as multipart, timed until the axis has
    received every one."""
    forms = rig.transfer_forms(count, content)
    sent_before = int((await rig.axis.state())["sent"])
    target = sent_before + count

    async def received() -> None:
        while int((await rig.axis.state())["sent"]) < target:
            rig.hub.check_alive()
            await asyncio.sleep(SENT_POLL_S)

    window = Window.open(rig)
    ids = [await rig.post_transfer(form) for form in forms]
    posted_at = time.perf_counter()
    await asyncio.wait_for(received(), STALL_S * 5)
    done_at = time.perf_counter()
    figures = window.close()
    seconds = done_at - window.started
    records = {r["document_id"]: r for r in await rig.axis.sent() if r["from_org"] == HUB_ORGAN}
    missing = [d for d in ids if d not in records]
    odd = [
        d
        for d in ids
        if d in records
        and (
            records[d]["times_sent"] != 1
            or [a["size"] for a in records[d]["attachments"]] != [load.attachment_bytes]
        )
    ]
    if missing or odd:
        raise VdxpBenchFailed(f"sent documents: {len(missing)} missing, {len(odd)} not as posted")
    return {
        "documents": count,
        "seconds": round(seconds, 3),
        "documents_per_s": round(count / seconds, 2),
        "posted_s": round(posted_at - window.started, 3),
        **figures,
    }


# -- one timed round by the bare client (a child process) -----------------------------------------


@dataclass
class RawSpec:
    mode: str  # "receive" or "send"
    load: Load
    count: int
    concurrency: int
    limit: int
    spool: Path
    tag: str

    def as_dict(self, axis_url: str, config: VdxpConfig) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "axis_url": axis_url,
            "attachment_bytes": self.load.attachment_bytes,
            "count": self.count,
            "warm_up": self.load.warm_up,
            "sender": self.load.sender,
            "concurrency": self.concurrency,
            "limit": self.limit,
            "spool": str(self.spool),
            "tag": self.tag,
            "rate_limit_per_s": config.rate_limit_per_s,
            "timeout_s": config.timeout_s,
            "namespace": config.namespace,
            "max_document_bytes": config.max_document_bytes,
            "max_attachment_bytes": config.max_attachment_bytes,
        }


async def raw_round(
    axis: AxisProcess, control: Axis, spec: RawSpec, config: VdxpConfig
) -> dict[str, Any]:
    """The bare client's round in a child process; its figures, checked against the axis."""
    spec.spool.mkdir(parents=True, exist_ok=True)
    log_path = spec.spool.parent / "raw-client.log"
    before = await control.state()
    try:
        async with child_process("bench.vdxp", spec.as_dict(axis.base_url, config), log_path) as (
            out,
            child,
        ):
            result, cpu = await asyncio.wait_for(_follow_child(out, axis.pid), CHILD_TIMEOUT_S)
    finally:
        shutil.rmtree(spec.spool, ignore_errors=True)
    if child.returncode != 0 or result is None:
        raise VdxpBenchFailed(f"the bare client exited with {child.returncode}: {_tail(log_path)}")
    after = await control.state()
    expected = spec.count + spec.load.warm_up
    if spec.mode == "receive":
        done = int(after["acks"]["done"]) - int(before["acks"]["done"])
        if done != expected or result["documents"] != spec.count:
            raise VdxpBenchFailed(f"bare client: {done} acknowledged, {expected} expected")
    else:
        sent = int(after["sent"]) - int(before["sent"])
        if sent != expected or after["repeats"] != before["repeats"]:
            raise VdxpBenchFailed(f"bare client: the axis received {sent}, {expected} expected")
    seconds = float(result["seconds"])
    return {
        "documents": spec.count,
        "in_flight": spec.concurrency if spec.mode == "send" else 1,
        "seconds": round(seconds, 3),
        "documents_per_s": round(spec.count / seconds, 2),
        "cpu_cores_used": {**cpu, "client": round(float(result["cpu_s"]) / seconds, 2)},
        "rss_before_mb": _mb(result["rss_before_mb"]),
        "rss_peak_mb": _mb(result["rss_peak_mb"]),
        "rss_growth_mb": _mb(_minus(result["rss_peak_mb"], result["rss_before_mb"])),
        "hwm_reset": result["hwm_reset"],
    }


def _minus(a: Any, b: Any) -> float | None:
    ok = isinstance(a, int | float) and isinstance(b, int | float)
    return float(a) - float(b) if ok else None


async def _follow_child(
    stdout: asyncio.StreamReader, axis_pid: int
) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """The child's result, and CPU of the axis, this process and RabbitMQ over its timed
    round."""
    meter = cpu_meter(axis=[process(axis_pid)], bench=[process()])
    result: dict[str, Any] | None = None
    cpu: dict[str, float] = {}
    while line := await stdout.readline():
        text = line.decode().strip()
        if text == CHILD_START:
            meter.start()
        elif text.startswith("{"):
            cpu = meter.stop()
            result = json.loads(text)
    return result, cpu


# -- the phase ------------------------------------------------------------------------------------


def _ratio(a: Any, b: Any) -> float | None:
    ok = isinstance(a, int | float) and isinstance(b, int | float) and b
    return round(a / b, 3) if ok else None


def _overall(rounds: list[dict[str, Any]], worker: str) -> dict[str, Any]:
    """All rounds of one kind together; `worker` names the process doing the work in
    `cpu_cores_used` (the hub, or the bare client)."""
    documents = sum(r["documents"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    cpu_s = sum(r["cpu_cores_used"].get(worker, 0.0) * r["seconds"] for r in rounds)
    befores = [r["rss_before_mb"] for r in rounds if r["rss_before_mb"] is not None]
    peaks = [r["rss_peak_mb"] for r in rounds if r["rss_peak_mb"] is not None]
    growths = [r["rss_growth_mb"] for r in rounds if r["rss_growth_mb"] is not None]
    return {
        "documents": documents,
        "seconds": round(seconds, 3),
        "documents_per_s": round(documents / seconds, 2),
        "cpu_ms_per_document": round(cpu_s / documents * 1000, 2),
        "rss_before_mb": min(befores, default=None),
        "rss_peak_mb": max(peaks, default=None),
        "rss_growth_max_mb": max(growths, default=None),
        "rounds": rounds,
    }


@dataclass
class Phase:
    rig: Rig
    axis_proc: AxisProcess
    config: VdxpConfig
    workdir: Path

    def say(self, text: str) -> None:
        print(f"[bench]   vdxp: {text}", flush=True)

    def raw_spec(self, mode: str, load: Load, index: int) -> RawSpec:
        tag = f"{mode}-{load.attachment_bytes}-{index}-{secrets.token_hex(2)}"
        return RawSpec(
            mode,
            load,
            load.documents,
            self.config.concurrency,
            self.config.poll.limit,
            self.workdir / "raw" / tag,
            tag,
        )

    async def direction(self, mode: str, load: Load, content: bytes) -> dict[str, Any]:
        """Warm-up through the hub, then baseline and hub rounds in ABBA order."""
        rig = self.rig

        async def hub_round(count: int) -> dict[str, Any]:
            if mode == "receive":
                return await hub_receive(rig, load, count)
            figures = await hub_send(rig, load, count, content)
            await rig.axis.reset()  # the simulator keeps every body it was sent
            return figures

        rss_at_start = Memory(rig.hub.pid).rss_mb()
        warm = await hub_round(load.warm_up)
        hub_rounds: list[dict[str, Any]] = []
        raw_rounds: list[dict[str, Any]] = []
        for index in range(ROUNDS):
            order = ("raw", "hub") if index % 2 == 0 else ("hub", "raw")
            for who in order:
                self.say(f"{mode} {load.label} × {load.documents}, {who} round {index + 1} …")
                if who == "hub":
                    hub_rounds.append(await hub_round(load.documents))
                else:
                    spec = self.raw_spec(mode, load, index)
                    raw_rounds.append(await raw_round(self.axis_proc, rig.axis, spec, self.config))
                    if mode == "send":
                        await rig.axis.reset()
        hub, raw = _overall(hub_rounds, "hub"), _overall(raw_rounds, "client")
        return {
            "hub": hub,
            "raw": raw,
            "ratio_hub_to_raw": _ratio(hub["documents_per_s"], raw["documents_per_s"]),
            "hub_rss_before_warm_up_mb": _mb(rss_at_start),
            "warm_up": warm,
        }


async def _measure(
    phase: Phase, portal: DvcqgSimulator, dossiers: list[str], loads: tuple[Load, ...]
) -> dict[str, Any]:
    rig = phase.rig
    after_start = Memory(rig.hub.pid).rss_mb()
    phase.say(f"seeding {len(dossiers)} dossiers …")
    seeding = await rig.seed(dossiers, portal)
    seeded = Memory(rig.hub.pid).rss_mb()
    measured: dict[str, Any] = {}
    for load in loads:
        content = os.urandom(load.attachment_bytes)
        measured[load.label] = {
            "attachment_bytes": load.attachment_bytes,
            "documents": load.documents,
            "rounds": ROUNDS,
            "receive": await phase.direction("receive", load, content),
            "send": await phase.direction("send", load, content),
        }
    samples = rig.sampler.samples
    return {
        "seeding": seeding,
        "loads": measured,
        "hub_rss": {
            "after_start_mb": _mb(after_start),
            "seeded_mb": _mb(seeded),
            "peak_sampled_mb": _mb(max((s.rss_mb for s in samples), default=None)),
            "end_mb": _mb(Memory(rig.hub.pid).rss_mb()),
        },
    }


def _dossiers_needed(loads: tuple[Load, ...]) -> int:
    per_load = [
        (1 + ROUNDS)  # one dossier named by each generate call (receive)
        + load.warm_up
        + ROUNDS * load.documents  # one per transfer (send)
        for load in loads
    ]
    return sum(per_load) + 1


async def measure_vdxp(options: E2eOptions, loads: tuple[Load, ...] = LOADS) -> dict[str, Any]:
    """Both directions at each size, hub and bare client; the report printed at the end.
    `loads`: the sizes (`LOADS` by default; the `scale` phase runs a small load alone)."""
    token, receiver_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    workdir = options.workdir / "vdxp"
    shutil.rmtree(workdir, ignore_errors=True)
    dossiers = dossier_codes(_dossiers_needed(loads))
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=receiver_token) as receiver,
        AxisProcess(workdir) as axis_proc,
    ):
        overrides = deep_merge(
            hub_overrides(
                axis_proc.base_url, workdir / "spool", receiver.url, receiver_token, token
            ),
            options.hub_overrides,
        )
        hub = bench_hub(
            workdir, options.broker_url, f"{options.run_id}-vdxp", portal.url, overrides
        )
        async with hub, aiohttp.ClientSession() as http:
            config = VdxpConfig.model_validate(hub.settings["connectors"]["vdxp"])
            tally = DocumentTally(receiver)
            sampler = RssSampler(process(hub.pid), lambda: len(tally.by_document), RSS_EVERY_S)
            rig = Rig(
                hub,
                Axis(axis_proc.base_url, http),
                axis_proc.pid,
                http,
                receiver,
                tally,
                sampler,
                token,
                iter(dossiers),
            )
            sampler.start()
            try:
                measured = await _measure(
                    Phase(rig, axis_proc, config, workdir), portal, dossiers, loads
                )
            finally:
                await sampler.stop()
            await rig.axis.reset()
            axis_totals = dict(rig.axis.totals)
    # The hub's spool holds every document of the phase (gigabytes with the 5 MiB load); the
    # store and the logs stay for a look.
    shutil.rmtree(workdir / "spool", ignore_errors=True)
    result = {
        "settings": {
            "axis": {
                "rate_limit_per_s": config.rate_limit_per_s,
                "concurrency": config.concurrency,
                "batch_size": config.batch_size,
                "poll_limit": config.poll.limit,
                "poll_max_items": config.poll.max_items,
                "timeout_s": config.timeout_s,
            },
            "rounds": ROUNDS,
            "order": "baseline, hub, hub, baseline",
        },
        **measured,
        "duplicate_receipts": sum(n - 1 for n in receiver.receipts.values() if n > 1),
        "axis": axis_totals,
        "hub_exit_code": hub.exit_code,
        "axis_exit_code": axis_proc.exit_code,
    }
    print()
    print(report(result))
    return result


# -- the report -----------------------------------------------------------------------------------


def _num(value: Any, unit: str = "", digits: int = 1) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _mean_cpu(rounds: list[dict[str, Any]]) -> str:
    keys = dict.fromkeys(k for r in rounds for k in r["cpu_cores_used"])
    return ", ".join(
        f"{k} {sum(r['cpu_cores_used'].get(k, 0.0) for r in rounds) / len(rounds):.2f}"
        for k in keys
    )


def _direction_rows(d: dict[str, Any], size_bytes: int) -> list[str]:
    """One column of one direction's rows: rates, ratio, memory."""
    hub, raw = d["hub"], d["raw"]
    return [
        _num(hub["documents_per_s"]),
        _num(raw["documents_per_s"]),
        _num(d["ratio_hub_to_raw"], digits=2),
        f"{_num(hub['cpu_ms_per_document'])} / {_num(raw['cpu_ms_per_document'])}",
        f"{_num(hub['rss_before_mb'])} / {_num(hub['rss_peak_mb'])}",
        f"{_num(hub['rss_growth_max_mb'], ' MB')} vs {_num(size_bytes / MB, ' MB', 2)}",
        _num(raw["rss_growth_max_mb"], " MB"),
    ]


def report(result: dict[str, Any]) -> str:
    """The phase's figures as a table (one column per attachment size) and detail lines."""
    loads = result["loads"]
    labels = list(loads)
    rows: list[tuple[str, ...]] = [("figure", *(f"{k} × {loads[k]['documents']}" for k in labels))]
    for mode, verb in (("receive", "received"), ("send", "sent")):
        names = (
            f"documents {verb}/s through the hub",
            "  bare client, same axis",
            "  hub / bare client",
            "  CPU ms per document, hub / bare",
            "  hub RSS before / peak (MB)",
            "  hub RSS growth vs attachment",
            "  bare client RSS growth",
        )
        columns = [_direction_rows(loads[k][mode], loads[k]["attachment_bytes"]) for k in labels]
        rows += [(name, *(c[i] for c in columns)) for i, name in enumerate(names)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    rss, seeding = result["hub_rss"], result["seeding"]
    lines += [
        f"  vdxp: settings {result['settings']}",
        f"    hub RSS after start {rss['after_start_mb']} MB, with {seeding['dossiers']} dossiers "
        f"{rss['seeded_mb']} MB, sampled peak {rss['peak_sampled_mb']} MB, end {rss['end_mb']} MB;"
        f" seeding {seeding['accepted_s']} s ({seeding['at_dvcqg_s']} s until DVCQG held them)",
    ]
    for label in labels:
        for mode in ("receive", "send"):
            d = loads[label][mode]
            hub, raw = d["hub"], d["raw"]
            per_round = (
                ", ".join(f"{_num(r['documents_per_s'])}/s" for r in hub["rounds"])
                + " | "
                + ", ".join(f"{_num(r['documents_per_s'])}/s" for r in raw["rounds"])
            )
            lines.append(
                f"    {label} {mode}: rounds hub | bare: {per_round}; CPU cores hub rounds: "
                f"{_mean_cpu(hub['rounds'])}; bare rounds: {_mean_cpu(raw['rounds'])}"
            )
            extra = (
                f"acknowledged at {[r['acknowledged_s'] for r in hub['rounds']]} s, delivered at "
                f"{[r['delivered_s'] for r in hub['rounds']]} s"
                if mode == "receive"
                else f"all posted at {[r['posted_s'] for r in hub['rounds']]} s"
            )
            lines.append(
                f"      hub: {extra}; RSS growth per round "
                f"{[r['rss_growth_mb'] for r in hub['rounds']]} MB (warm-up "
                f"{d['warm_up']['rss_growth_mb']} MB); bare client RSS before / peak "
                f"{raw['rss_before_mb']} / {raw['rss_peak_mb']} MB"
            )
    lines.append(
        f"    axis: {result['axis']}; duplicate receipts at the one-stop "
        f"{result['duplicate_receipts']}"
    )
    return "\n".join(lines)


# -- the bare client's process --------------------------------------------------------------------


async def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """`python -m bench.vdxp`: the bare client's warm-up and timed round (see the docstring)."""
    from connectors.vdxp.client import AxisClient
    from connectors.vdxp.edxml import EdxmlCodec

    spool = Path(spec["spool"])
    config = VdxpConfig.model_validate(
        {
            "enabled": True,
            "base_url": spec["axis_url"],
            "system_id": RAW_ORGAN,
            "secret": RAW_SECRET,
            "organ_id": RAW_ORGAN,
            "organ_name": "UBND tỉnh (bare client)",
            "namespace": spec["namespace"],
            "rate_limit_per_s": spec["rate_limit_per_s"],
            "timeout_s": spec["timeout_s"],
            "max_document_bytes": spec["max_document_bytes"],
            "max_attachment_bytes": spec["max_attachment_bytes"],
            "spool_dir": str(spool),
        }
    )
    codec = EdxmlCodec(config.namespace, config.max_document_bytes, config.max_attachment_bytes)
    async with aiohttp.ClientSession() as http:
        client = AxisClient(config, http)
        control = Axis(spec["axis_url"], http)
        if spec["mode"] == "receive":
            work = _RawReceiver(client, codec, spool, int(spec["limit"]))
            size = int(spec["attachment_bytes"])
            sender = str(spec["sender"])
            await control.generate(RAW_ORGAN, sender, int(spec["warm_up"]), size)
            await work.take_all()
            await control.generate(RAW_ORGAN, sender, int(spec["count"]), size)
            return await _timed(work.take_all)
        out = _RawSender(client, codec, config, spool, spec)
        await out.send_all(int(spec["warm_up"]), int(spec["concurrency"]))
        return await _timed(lambda: out.send_all(int(spec["count"]), int(spec["concurrency"])))


async def _timed(work: Callable[[], Any]) -> dict[str, Any]:
    memory = Memory()
    print(CHILD_START, flush=True)
    hwm_reset = memory.reset()
    rss_before = memory.rss_mb()
    cpu_before, started = time.process_time(), time.perf_counter()
    documents = await work()
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_before
    return {
        "documents": documents,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rss_before_mb": rss_before,
        "rss_peak_mb": memory.peak_mb(),
        "hwm_reset": hwm_reset,
    }


class _RawReceiver:
    """List, download, read into the spool, acknowledge done: one document at a time."""

    def __init__(self, client: Any, codec: Any, spool: Path, limit: int) -> None:
        self.client, self.codec, self.spool, self.limit = client, codec, spool, limit
        self.taken = 0
        (spool / "incoming").mkdir(parents=True, exist_ok=True)

    async def take_all(self) -> int:
        before = self.taken
        while True:
            page = await self.client.list("edoc", self.limit)
            for item in page:
                await self._take(item)
            if len(page) < self.limit:
                return self.taken - before

    async def _take(self, item: Any) -> None:
        self.taken += 1
        raw = self.spool / "incoming" / f"{self.taken}.edxml"
        await self.client.download(item.transport_id, raw)
        folder = self.spool / "in" / str(self.taken)
        folder.mkdir(parents=True)
        try:
            with raw.open("rb") as stream:
                await asyncio.to_thread(self.codec.read_document, stream, folder)
        finally:
            raw.unlink(missing_ok=True)
        await self.client.ack(item.transport_id, "done")


class _RawSender:
    """The hub's document for a transfer, written with `write_document`, sent with
    `AxisClient.send`; `concurrency` in flight."""

    def __init__(
        self, client: Any, codec: Any, config: VdxpConfig, spool: Path, spec: dict[str, Any]
    ) -> None:
        from connectors.vdxp.edxml import SpooledAttachment

        self.client, self.codec, self.config, self.spool = client, codec, config, spool
        self.tag = str(spec["tag"])
        self.sent = 0
        spool.mkdir(parents=True, exist_ok=True)
        size = int(spec["attachment_bytes"])
        path = spool / "attachment.pdf"
        path.write_bytes(os.urandom(size))
        self.attachment = SpooledAttachment(
            attachment_id="attachment-1",
            name="ho-so.pdf",
            content_type="application/pdf",
            description=None,
            size_bytes=size,
            path=path,
        )

    async def send_all(self, count: int, concurrency: int) -> int:
        numbers = iter(range(self.sent + 1, self.sent + count + 1))
        self.sent += count

        async def worker() -> None:
            for number in numbers:
                await self._send(number)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count

    async def _send(self, number: int) -> None:
        from connectors.vdxp.mapping import document_id_for, transfer_document
        from schemas.interagency import InterAgencyTransfer, TransferAttachment

        transfer = InterAgencyTransfer(
            transfer_id=f"raw-{self.tag}-{number:05d}",
            dossier_code=f"{UNIT}-{SEED_DAY}-{number:06d}",
            to=[TARGET],
            subject=f"Chuyển hồ sơ số {number} để xác minh",
            code_number=str(number),
            code_notation="UBND-VP",
            attachments=[TransferAttachment(name="ho-so.pdf", content_type="application/pdf")],
        )
        now = datetime.now(UTC)
        document_id = document_id_for(self.config, transfer, now)
        doc = transfer_document(self.config, transfer, (self.attachment,), document_id, now)
        edxml = self.spool / f"{number}.edxml"

        def write() -> None:
            with edxml.open("wb") as out:
                self.codec.write_document(doc, out)

        await asyncio.to_thread(write)
        await self.client.send(edxml)


def _child_main() -> int:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(_child(spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
