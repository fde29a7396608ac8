"""What the benchmark sends: one-stop dossier lives, and what DVCQG must hold afterwards.

Dossiers come from the one-stop simulator's planner (realistic records and steps in the DVCQG
wire format); each phase renumbers them so that every dossier code is unique in the phase,
whatever the plan size. An *event* is one facade item: a dossier record or a step.

This module must never talk to the network: it only builds data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sims.national_portal.simulator import step_key
from sims.one_stop.simulator import OneStopTraffic

Record = dict[str, Any]
StepKey = tuple[str, str, str, str]
PLAN_CHUNK = 2000  # dossiers per call of the planner (its sequence numbers have 4 digits)


@dataclass(frozen=True)
class Script:
    """One dossier's life: (record at that status, step) pairs, in the order they happen."""

    code: str
    pairs: list[tuple[Record, Record]]

    @property
    def events(self) -> int:
        return 2 * len(self.pairs)


@dataclass
class Workload:
    scripts: list[Script] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(s.events for s in self.scripts)

    def final_status(self) -> dict[str, str]:
        """The newest record's TrangThaiHoSo per dossier: what DVCQG must hold at the end."""
        return {s.code: str(s.pairs[-1][0]["TrangThaiHoSo"]) for s in self.scripts if s.pairs}

    def step_keys(self) -> set[StepKey]:
        return {step_key(step) for s in self.scripts for _, step in s.pairs}


def _renumber(pairs: list[tuple[Record, Record]], code: str) -> None:
    for record, step in pairs:
        record["MaHoSo"] = code
        record["SoBienNhan"] = code.split("-", 1)[1]
        step["MaHoSo"] = code


def build(events: int, *, seed: int, madonvi: str, tag: int) -> Workload:
    """Dossier scripts holding exactly `events` events (rounded up to even), codes unique.

    `tag` (0–99) goes into every code so that two workloads of one run never share a dossier.
    """
    planner = OneStopTraffic("http://unused.invalid", "-", "-", madonvi, seed=seed)
    workload = Workload()
    left, number, chunk_seed = max(events, 2), 0, seed
    while left > 0:
        planner.seed = chunk_seed
        for plan in planner.plan(PLAN_CHUNK):
            if left <= 0:
                break
            number += 1
            unit_and_date = plan.code.rsplit("-", 1)[0]
            code = f"{unit_and_date}-{tag:02d}{number:06d}"
            pairs = plan.pairs[: (left + 1) // 2]
            _renumber(pairs, code)
            workload.scripts.append(Script(code, pairs))
            left -= 2 * len(pairs)
        chunk_seed += 1
    return workload
