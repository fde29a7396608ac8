"""A generated hub store for the dashboard benchmark: a province's worth of history.

`ensure_store(spec)` returns a SQLite store file holding `spec.dossiers` dossiers (1,000,000 by
default) and `spec.events` rows of their history (10,000,000), with the rows the other pages
read beside them: delivery records (about two per dossier), payments and their callbacks,
ministry hand-offs, axis documents and statuses, the national catalogue (5,000 procedures,
applied through the hub's own catalogue code) and an audit log.

The schema is the hub's own: the file is opened once with `SqliteStore.open`, which applies
every migration in `hub/migrations/` (a migration added later is picked up too), and the bulk
rows are then written with the stdlib `sqlite3` in large transactions, with the secondary
indexes of the big tables dropped meanwhile and built again at the end (the same SQL as the
migrations'). The file is left in WAL mode, as the hub keeps it. No `ANALYZE` is run: the hub
never runs one, so the query planner sees what it sees in production.

The data look real: codes like `000.20.41.H41-251123-0001` (the receiving unit, the day, a
sequence per unit and day), the one-stop simulator's procedures, names and status paths,
canonical `DossierEvent` JSON payloads (one template per procedure, status and kind, built
with the pydantic models and filled in by string formatting), times spread over the 90 days
before generation, steps confirmed by DVCQG a fraction of a second to a few seconds after they
were received, and `spec.unconfirmed_share` (2 %) of the dossiers not yet confirmed. A few
dossiers (`spec.heavy_dossiers`) have a long history, from 5 % of `spec.heavy_events` rows up
to all of them (`HEAVY_SHARES`), for the dossier page's cost per history row and worst case.

Generated files are cached under `var/bench/dashboard-store/`, keyed by the sizes, the
schema (a digest of the migration files) and `GENERATOR_VERSION` (bump it when the data written
change), and reused while they are younger than `max_age_h` (the overview's 24-hour window
must hold recent rows; one store per size is kept, they are large). A file
being generated carries a `.partial` suffix until it is complete, so an interrupted run is
never mistaken for a finished one.

`python -m bench.dashboard_store [--quick] [--dossiers N --events M] [--force]` generates (or
reuses) one from the command line. This module must never write outside `var/bench/`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import json
import random
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from connectors.national_portal.catalogue_mapping import CatalogueCodes, procedure_from_wire
from connectors.national_portal.procedures.lifecycle import on_record
from connectors.national_portal.procedures.versioning import record_json
from hub.config import DashboardConfig
from hub.masking import name_key
from hub.store.sqlite import SqliteStore
from hub.synclag import bucket_of
from schemas.canonical import (
    Attachment,
    DossierEvent,
    DossierRecord,
    DossierStatus,
    Fee,
    ProcessingStep,
    ResultDocument,
)
from sims.national_portal.catalogue import generate as generate_catalogue
from sims.one_stop.simulator import (
    DESK,
    ENDED,
    FAMILY,
    GAP_S,
    GIVEN,
    MIDDLE,
    NOTE,
    PROCEDURES,
    RESUMED_TEXT,
    RETURN_INFO,
    STAGE_DAYS,
    STEP_TEXT,
    UNITS,
    WEIGHTED_PATHS,
    Procedure,
)

GENERATOR_VERSION = 5
DESTINATION = "national_portal"  # whose delivery state the rows hold (DVCQG)
FOLDER = Path("var/bench/dashboard-store")
VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
SOURCE = "onestop"  # the bench hub's source system (bench.hubproc)
PROVINCE = "41.H41"
HISTORY_DAYS = 90
BLOCK_DOSSIERS = 10_000  # dossiers generated, sorted by arrival and inserted per transaction
CATALOGUE_MAPPING = Path("mappings/national_portal_catalogue.yaml")
DAY_S = 86_400
MAX_REPEATS = 12  # records sent again per dossier, at most
HEAVY_SHARES = (1.0, 0.5, 0.25, 0.125, 0.05)  # of `heavy_events`, for the long histories


@dataclass(frozen=True)
class StoreSpec:
    """What to generate. The defaults are the issue's: 1M dossiers, 10M history rows."""

    dossiers: int = 1_000_000
    events: int = 10_000_000
    deliveries_per_dossier: float = 2.0
    unconfirmed_share: float = 0.02
    late_share: float = 0.005  # events kept in history only (applied = 0)
    heavy_dossiers: int = 10
    heavy_events: int = 2_000
    payment_share: float = 0.3  # dossiers with a payment row
    ministry_share: float = 0.05
    vdxp_share: float = 0.02
    procedures: int = 5_000
    audit_rows: int = 5_000
    seed: int = 7

    @classmethod
    def quick(cls) -> StoreSpec:
        return cls(dossiers=50_000, events=500_000, procedures=1_000, audit_rows=1_000)

    def key(self, schema: str) -> str:
        extras = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return f"d{self.dossiers}-e{self.events}-s{schema}-g{GENERATOR_VERSION}-{extras[:6]}"


@dataclass
class GeneratedStore:
    """A generated store file and what is known about it (also saved beside it as JSON)."""

    path: Path
    spec: dict[str, Any]
    generated_at: str
    now_epoch: float
    seconds: float
    size_bytes: int
    counts: dict[str, int]
    samples: dict[str, Any]
    phases_s: dict[str, float] = field(default_factory=dict)
    reused: bool = False

    @property
    def age_h(self) -> float:
        return (time.time() - self.now_epoch) / 3600

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "path"}
        out["path"] = str(self.path)
        out["size_gb"] = round(self.size_bytes / 1e9, 2)
        out["age_h"] = round(self.age_h, 2)
        return out


def schema_digest() -> str:
    """A digest of the hub's migration files: a new or changed migration means a new store."""
    folder = resources.files("hub") / "migrations"
    digest = hashlib.sha256()
    for f in sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name):
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:10]


def _say(text: str) -> None:
    print(f"[bench]   dashboard store: {text}", flush=True)


# -- entry points -------------------------------------------------------------------------------


async def ensure_store(
    spec: StoreSpec, folder: Path = FOLDER, max_age_h: float = 12.0, force: bool = False
) -> GeneratedStore:
    """The cached store for `spec` if there is one younger than `max_age_h`, else a new one."""
    path, known = _cached(spec, folder, max_age_h, force)
    if known is not None:
        return known
    generated = await generate(spec, path)
    _save_meta(generated)
    return generated


def _cached(
    spec: StoreSpec, folder: Path, max_age_h: float, force: bool
) -> tuple[Path, GeneratedStore | None]:
    folder.mkdir(parents=True, exist_ok=True)
    key = spec.key(schema_digest())
    path = folder / f"{key}.db"
    if not force and path.exists():
        known = _load_meta(path)
        if known is not None and known.age_h <= max_age_h:
            known.reused = True
            _say(f"reusing {path} ({known.size_bytes / 1e9:.2f} GB, {known.age_h:.1f} h old)")
            return path, known
        if known is not None:
            _say(f"{path} is {known.age_h:.1f} h old (over {max_age_h} h): generating again")
    # One store per size is kept (they are large): older ones of the same sizes go.
    same_sizes = f"d{spec.dossiers}-e{spec.events}-"
    for stale in folder.glob(same_sizes + "*"):
        if not stale.name.endswith(".partial"):
            stale.unlink()
    return path, None


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _save_meta(store: GeneratedStore) -> None:
    text = json.dumps(store.summary(), indent=2)
    _meta_path(store.path).write_text(text, encoding="utf-8")


def _load_meta(path: Path) -> GeneratedStore | None:
    try:
        raw = json.loads(_meta_path(path).read_text(encoding="utf-8"))
        return GeneratedStore(
            path=path,
            spec=raw["spec"],
            generated_at=raw["generated_at"],
            now_epoch=float(raw["now_epoch"]),
            seconds=float(raw["seconds"]),
            size_bytes=path.stat().st_size,
            counts=raw["counts"],
            samples=raw["samples"],
            phases_s=raw.get("phases_s", {}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def generate(spec: StoreSpec, path: Path) -> GeneratedStore:
    """Write a new store at `path` (through `path.partial`, renamed when complete)."""
    partial_path = path.with_name(path.name + ".partial")
    _remove(partial_path)
    started = time.perf_counter()
    now = time.time()
    phases: dict[str, float] = {}
    _say(f"generating {spec.dossiers:,} dossiers, {spec.events:,} history rows into {partial_path}")
    async with SqliteStore.open(partial_path, synchronous="OFF") as store:
        mark = time.perf_counter()
        await _catalogue(store, spec)
        phases["schema_and_catalogue"] = round(time.perf_counter() - mark, 1)
    generator = _Generator(spec, now)
    counts, samples = await asyncio.to_thread(generator.write, partial_path, phases)
    size = _publish(partial_path, path)
    seconds = round(time.perf_counter() - started, 1)
    _say(f"done in {seconds:.0f} s: {size / 1e9:.2f} GB, {counts}")
    return GeneratedStore(
        path=path,
        spec=asdict(spec),
        generated_at=datetime.fromtimestamp(now, UTC).isoformat(),
        now_epoch=now,
        seconds=seconds,
        size_bytes=size,
        counts=counts,
        samples=samples,
        phases_s=phases,
    )


def _remove(path: Path) -> None:
    for each in (path, *_sidecars(path)):
        each.unlink(missing_ok=True)


def _publish(partial_path: Path, path: Path) -> int:
    """The finished file under its final name; its size."""
    partial_path.rename(path)
    return path.stat().st_size


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


async def _catalogue(store: SqliteStore, spec: StoreSpec) -> None:
    """The national catalogue, applied the way a sync applies it (one transaction each)."""
    if spec.procedures <= 0:
        return
    codes = CatalogueCodes.load(CATALOGUE_MAPPING)
    records = generate_catalogue(spec.procedures, spec.seed)
    for i, raw in enumerate(records.values()):
        procedure = procedure_from_wire(raw, codes, "000.00.00.H41")
        record = record_json(procedure)
        await store.slices["procedures"].apply(
            None, procedure.code, partial(on_record, record=record)
        )
        if (i + 1) % max(1, spec.procedures // 5) == 0:
            _say(f"catalogue {i + 1:,} / {spec.procedures:,} procedures")


# -- templates ----------------------------------------------------------------------------------

# Datetime sentinels: pydantic serialises each of them as one recognisable string.
_T = {
    name: datetime(2001, 1, 1, 0, 0, i, tzinfo=VN_TZ)
    for i, name in enumerate(("occ", "recv", "due", "ret", "end", "start", "sdue"), start=1)
}


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in plain if not unicodedata.combining(c)).lower()


def _template(json_text: str) -> str:
    """A pydantic dump with sentinels → a `%(name)s` template."""
    text = json_text.replace("%", "%%")
    for name, moment in _T.items():
        text = text.replace(f'"{moment.isoformat()}"', f'"%({name})s"')
    for name in ("CODE", "RECEIPT", "OWNER", "CID", "EMAIL", "PHONE", "EID", "HANDLER", "HM"):
        text = text.replace(f"@{name}@", f"%({name.lower()})s")
    for n in range(1, 5):
        text = text.replace(f"@UUID{n}@", f"%(u{n})s")
    return text


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def _content(proc: Procedure, status: int, previous: int) -> str:
    if status == 4 and previous in RESUMED_TEXT:
        return RESUMED_TEXT[previous]
    fee_name, amount = (proc.fees[0][0], _vnd(proc.fees[0][2])) if proc.fees else ("", "0")
    doc = proc.documents[-1].lower()
    return STEP_TEXT[status].format(doc=doc, fee=fee_name.lower(), amount=amount)


def _record_model(proc: Procedure, status: int) -> DossierRecord:
    finished = status in (9, 10)
    return DossierRecord(
        dossier_code="@CODE@",
        status=DossierStatus(status),
        procedure_code=proc.code,
        procedure_name=proc.name,
        field_code=proc.field_code,
        field_name=proc.field_name,
        receipt_number="@RECEIPT@",
        owner_name="@OWNER@",
        applicant_type="1",
        applicant_id="@CID@",
        other_info="",
        email="@EMAIL@",
        fax="",
        phone="@PHONE@",
        summary=f"{proc.name} cho ông/bà @OWNER@",
        received_at=_T["recv"],
        due_at=_T["due"],
        returned_at=_T["ret"] if status == 10 else None,
        return_info=RETURN_INFO[0] if status == 10 else "",
        return_method="0",
        processing_ended_at=_T["end"] if status in ENDED or status == 10 else None,
        handling_unit=UNITS[proc.unit],
        note=NOTE.get(status, ""),
        submitted_documents=[
            Attachment(
                file_id=f"@UUID{n}@",
                name=f"{name}.pdf",
                deleted=False,
                component_code=f"TP{n}",
                url=f"https://motcua.example/tai-lieu/@UUID{n}@.pdf",
            )
            for n, name in enumerate(proc.documents[:4], 1)
        ],
        fees=[
            Fee(name=name, code=code, collection_method="2", amount_vnd=amount, kind=kind)
            for name, code, amount, kind in proc.fees
        ],
        result_documents=[
            ResultDocument(
                name=name,
                component_code=f"KQ{n}",
                document_id=f"@UUID{n}@",
                url=f"https://motcua.example/ket-qua/@UUID{n}@.pdf",
            )
            for n, name in enumerate(proc.results, 1)
        ]
        if finished
        else [],
    )


def _handler(status: int, proc: Procedure) -> tuple[str, str]:
    if status == 1:
        return "Công dân", "Cổng Dịch vụ công"
    if status in (2, 3, 7, 10):
        return DESK
    if status == 9:
        return "Trưởng phòng", proc.department
    return "Chuyên viên", proc.department


@dataclass(frozen=True)
class _Templates:
    record_event: dict[tuple[int, int], str]  # (procedure index, status) → template
    step_event: dict[tuple[int, int, int], str]  # (procedure index, status, previous)
    record: dict[tuple[int, int], str]


def _templates() -> _Templates:
    record_event, step_event, record = {}, {}, {}
    for p, proc in enumerate(PROCEDURES):
        for status in range(1, 11):
            model = _record_model(proc, status)
            record[(p, status)] = _template(model.model_dump_json())
            event = DossierEvent(
                event_id="@EID@",
                source_system=SOURCE,
                kind="record",
                dossier_code="@CODE@",
                status=DossierStatus(status),
                occurred_at=_T["occ"],
                vendor_status=str(status),
                record=model,
            )
            record_event[(p, status)] = _template(event.model_dump_json())
            title, department = _handler(status, proc)
            for previous in range(0, 11):
                step = ProcessingStep(
                    dossier_code="@CODE@",
                    status=DossierStatus(status),
                    processed_at=_T["occ"],
                    handler_name="@HANDLER@",
                    handler_title=title,
                    department=department,
                    content=_content(proc, status, previous),
                    started_at=_T["start"],
                    due_at=_T["sdue"],
                )
                event = DossierEvent(
                    event_id="@EID@",
                    source_system=SOURCE,
                    kind="step",
                    dossier_code="@CODE@",
                    status=DossierStatus(status),
                    occurred_at=_T["occ"],
                    vendor_status=str(status),
                    step=step,
                )
                step_event[(p, status, previous)] = _template(event.model_dump_json())
    return _Templates(record_event, step_event, record)


# -- the generator ------------------------------------------------------------------------------

_PATHS = [path for path, _ in WEIGHTED_PATHS]
_CUMULATIVE = [sum(w for _, w in WEIGHTED_PATHS[: i + 1]) for i in range(len(WEIGHTED_PATHS))]
_WITH_FEES = [i for i, p in enumerate(PROCEDURES) if p.fees]
_HANDOFF_PROCEDURES = {"1.001612": "business_registration", "1.000894": "civil_status"}
_AGENCIES = ("000.00.01.G09", "000.00.00.G12", "000.22.41.H41", "000.20.41.H41")
_OPERATORS = ("alice", "binh.tran", "ada")


def _iso_vn(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), VN_TZ).isoformat()


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


@dataclass
class _Dossier:
    """One dossier's life as generated: what the dossiers row and the other tables need."""

    code: str
    proc: int
    statuses: list[int]
    times: list[float]
    values: dict[str, str]
    events: int = 0
    version: int = 0
    confirmed: bool = True
    last_received: float = 0.0


@dataclass
class _Block:
    events: list[tuple[float, tuple[Any, ...]]] = field(default_factory=list)
    dossiers: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[tuple[Any, ...]] = field(default_factory=list)
    deliveries: list[tuple[float, tuple[Any, ...]]] = field(default_factory=list)
    payments: list[tuple[Any, ...]] = field(default_factory=list)
    callbacks: list[tuple[float, tuple[Any, ...]]] = field(default_factory=list)
    handoffs: list[tuple[Any, ...]] = field(default_factory=list)
    documents: list[tuple[Any, ...]] = field(default_factory=list)
    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    intake: list[tuple[Any, ...]] = field(default_factory=list)


_INSERT = {
    "dossier_events": "INSERT INTO dossier_events (idem_key, dossier_code, kind, status, "
    "occurred_at, received_at, source_system, payload, applied) VALUES (?,?,?,?,?,?,?,?,?)",
    "event_deliveries": "INSERT INTO event_deliveries (event_id, destination, sent_at) "
    "VALUES (?,?,?)",
    "dossiers": "INSERT INTO dossiers (code, status, status_key, record_json, record_key, "
    "version, feed_seq, updated_at, procedure_code, owner_key) VALUES (?,?,?,?,?,?,?,?,?,?)",
    "destination_state": "INSERT INTO destination_state (dossier_code, destination, version, "
    "holds, status_at, behind) VALUES (?,?,?,?,?,?)",
    "deliveries": "INSERT INTO deliveries (dossier_code, connector, outcome, detail, at) "
    "VALUES (?,?,?,?,?)",
    "payments": "INSERT INTO payments (transaction_id, reference, dossier_code, day, paid_at, "
    "outcome, amount_vnd, currency, result_json, first_seen_at, updated_at, checks, checked_at, "
    "event_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "payment_callbacks": "INSERT INTO payment_callbacks (at, verdict, code, reason, "
    "transaction_id, reference, body_json) VALUES (?,?,?,?,?,?,?)",
    "ministry_handoffs": "INSERT OR IGNORE INTO ministry_handoffs VALUES (?,?,?,?,?,?)",
    "vdxp_documents": "INSERT INTO vdxp_documents (document_id, direction, transfer_id, "
    "dossier_code, from_organ, to_organs, code, subject, business_type, attachments, folder, "
    "state, axis_id, detail, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "vdxp_statuses": "INSERT OR IGNORE INTO vdxp_statuses VALUES (?,?,?,?,?,?,?,?)",
    "vdxp_intake": "INSERT OR IGNORE INTO vdxp_intake (transport_id, messagetype, from_organ, "
    "verdict, code, reason, document_id, taken_at, acked_at) VALUES (?,?,?,?,?,?,?,?,?)",
    "audit_log": "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?,?,?,?,?)",
    "sync_lag": "INSERT INTO sync_lag (destination, minute, bucket, n) VALUES (?,?,?,?)",
    "connector_samples": "INSERT INTO connector_samples (at, connector, done, retried, parked, "
    "queue_depth, dead_letters, last_success) VALUES (?,?,?,?,?,?,?,?)",
}
# Tables whose secondary indexes are dropped during the load and built again after it.
_BULK_TABLES = tuple(t for t in _INSERT if t not in ("sync_lag", "connector_samples"))


class _Generator:
    def __init__(self, spec: StoreSpec, now: float) -> None:
        self.spec = spec
        self.now = now
        self.start = now - HISTORY_DAYS * DAY_S
        self.rng = random.Random(spec.seed)
        self.templates = _templates()
        self.sequences: dict[tuple[str, str], int] = {}
        heavy = min(spec.heavy_dossiers, max(0, spec.dossiers // 100))
        # In the first 60 % of the history, so that their long lives end before now.
        step = max(1, int(spec.dossiers * 0.6) // (heavy + 1))
        self.heavy = {
            step * (k + 1): round(spec.heavy_events * HEAVY_SHARES[k % len(HEAVY_SHARES)])
            for k in range(heavy)
        }
        normal_events = spec.events - sum(self.heavy.values())
        self.mean = max(2.0, normal_events / max(1, spec.dossiers - heavy))
        self.emitted_normal = 0
        self.normal_seen = 0
        self.counts: dict[str, int] = dict.fromkeys(_INSERT, 0)
        self.samples: dict[str, Any] = {"heavy_codes": [], "typical_codes": []}
        self.max_events = 0
        defaults = DashboardConfig()
        self.keep_s = defaults.samples_keep_days * DAY_S
        self.sample_s = defaults.sample_interval_s
        self.lag_since = now - self.keep_s
        self.lag: dict[tuple[int, int], int] = {}  # (minute, bucket) → confirmations

    # -- per dossier ----------------------------------------------------------------------------

    def _path(self) -> list[int]:
        pick = self.rng.random() * _CUMULATIVE[-1]
        return list(_PATHS[bisect.bisect_right(_CUMULATIVE, pick)])

    def _code(self, proc: Procedure, created: float) -> str:
        day = datetime.fromtimestamp(created, VN_TZ).strftime("%y%m%d")
        unit = f"000.{proc.unit}.{PROVINCE}"
        seq = self.sequences.get((unit, day), 0) + 1
        self.sequences[(unit, day)] = seq
        return f"{unit}-{day}-{seq:04d}"

    def _values(self, code: str) -> dict[str, str]:
        rng = self.rng
        family, middle, given = rng.choice(FAMILY), rng.choice(MIDDLE), rng.choice(GIVEN)
        born = rng.randint(1950, 2005)
        sex = (0 if born < 2000 else 2) + rng.randint(0, 1)
        return {
            "code": code,
            "receipt": code.split("-", 1)[1],
            "owner": f"{family} {middle} {given}",
            "cid": f"041{sex}{born % 100:02d}{rng.randint(0, 999_999):06d}",
            "email": f"{_ascii(given)}.{_ascii(family)}{rng.randint(1, 999)}@example.com",
            "phone": f"09{rng.randint(0, 99_999_999):08d}",
            "u1": _uuid(rng),
            "u2": _uuid(rng),
            "u3": _uuid(rng),
            "u4": _uuid(rng),
            "handler": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
        }

    def _timeline(self, index: int, created: float) -> tuple[list[int], list[float], int]:
        """Statuses reached by now with their times, and how many repeated records follow
        them; normal dossiers keep the running total of history rows on `spec.events`."""
        rng, latest = self.rng, self.now - 60
        heavy = index in self.heavy
        if heavy:
            path = [2, 4]
            while 2 * len(path) < self.heavy[index] - 4:
                path += [5, 4] if rng.random() < 0.5 else [6, 4]
            path += [9, 10]
        else:
            path = self._path()
        times = [created]
        for status in path[1:]:
            times.append(
                times[-1] + (rng.randint(60, 1_800) if heavy else rng.randint(*GAP_S[status]))
            )
        reached = max(1, bisect.bisect_right(times, latest))  # a recent dossier is in progress
        path, times = path[:reached], times[:reached]
        if heavy:
            return path, times, 0
        self.normal_seen += 1
        target = max(2, round(self.normal_seen * self.mean) - self.emitted_normal)
        if 2 * len(path) > target:
            keep = max(1, target // 2)
            path, times = path[:keep], times[:keep]
        return path, times, max(0, min(MAX_REPEATS, target - 2 * len(path)))

    def dossier(self, index: int, block: _Block) -> None:
        spec, rng = self.spec, self.rng
        span = HISTORY_DAYS * DAY_S - 3_600
        created = self.start + (index + rng.random()) * span / spec.dossiers
        statuses, times, repeats = self._timeline(index, created)
        heavy = index in self.heavy
        proc_index = rng.choice(_WITH_FEES) if 6 in statuses else rng.randrange(len(PROCEDURES))
        proc = PROCEDURES[proc_index]
        code = self._code(proc, created)
        d = _Dossier(code, proc_index, statuses, times, self._values(code))
        d.confirmed = rng.random() >= spec.unconfirmed_share
        self._events(d, repeats, block)
        if not heavy:
            self.emitted_normal += d.events
        self._dossier_row(d, index, block)
        self._deliveries(d, block)
        self._others(d, block)
        if heavy:
            self.samples["heavy_codes"].append(code)
        elif len(self.samples["typical_codes"]) < 20 and len(statuses) >= 4 and index % 997 == 0:
            self.samples["typical_codes"].append(code)
        self.max_events = max(self.max_events, d.events)

    def _events(self, d: _Dossier, repeats: int, block: _Block) -> None:
        rng = self.rng
        values = dict(d.values)
        due = d.times[0] + (PROCEDURES[d.proc].days + 1) * DAY_S
        values["recv"], values["due"] = _iso_vn(d.times[0]), _iso_vn(due)
        ended_at: float | None = None  # the newest status that ended processing
        last = len(d.statuses) - 1
        # Records the one-stop sent again (an edit, a re-sync) after some of the statuses.
        again = sorted(rng.randrange(len(d.statuses)) for _ in range(repeats))
        for k, (status, at) in enumerate(zip(d.statuses, d.times, strict=True)):
            previous = d.statuses[k - 1] if k else 0
            if status in ENDED:
                ended_at = at
            values["ret"] = _iso_vn(at)
            values["end"] = _iso_vn(ended_at if ended_at is not None else at)
            begun = d.times[k - 1] if k else at
            values["start"] = _iso_vn(begun)
            values["sdue"] = _iso_vn(begun + (STAGE_DAYS[status] or 10) * DAY_S)
            unconfirmed = not d.confirmed and k == last
            self._event(d, values, "record", k, at, previous, False, block)
            self._event(d, values, "step", k, at, previous, unconfirmed, block)
            following = d.times[k + 1] if k < last else min(self.now - 30, at + 3_600)
            for n in range(again.count(k)):
                moment = at + (following - at) * rng.uniform(0.05, 0.95)
                self._event(d, values, f"record/{n}", k, moment, previous, False, block)
        d.values.update({k: values[k] for k in ("recv", "due", "ret", "end")})

    def _event(
        self,
        d: _Dossier,
        values: dict[str, str],
        tag: str,
        k: int,
        at: float,
        previous: int,
        unconfirmed: bool,
        block: _Block,
    ) -> None:
        rng, templates = self.rng, self.templates
        status = d.statuses[k]
        received_at = at + rng.uniform(0.5, 90.0)
        eid = hashlib.sha256(f"{d.code}/{tag}/{k}".encode()).hexdigest()
        values["eid"] = f"sha256:{eid}"
        values["occ"] = occ = _iso_vn(at)
        if tag == "step":
            kind, payload = "step", templates.step_event[(d.proc, status, previous)] % values
            lag = rng.lognormvariate(-0.9, 0.8)  # DVCQG confirms it: median 0.4 s
            sent = None if unconfirmed else _iso_utc(received_at + lag)
            if not unconfirmed and tag == "step" and received_at + lag >= self.lag_since:
                # DVCQG confirmed the state carrying this status: one count of sync lag.
                slot = (int((received_at + lag) // 60), bucket_of(received_at + lag - at))
                self.lag[slot] = self.lag.get(slot, 0) + 1
        else:
            kind, payload, sent = "record", templates.record_event[(d.proc, status)] % values, None
            d.version += 1
        applied = 0 if rng.random() < self.spec.late_share else 1
        row = (
            f"{SOURCE}:sha256:{eid}",
            d.code,
            kind,
            status,
            occ,
            _iso_utc(received_at),
            SOURCE,
            payload,
            applied,
            sent,
        )
        block.events.append((received_at, row))
        d.events += 1
        d.last_received = max(d.last_received, received_at)

    def _dossier_row(self, d: _Dossier, index: int, block: _Block) -> None:
        status, at = d.statuses[-1], d.times[-1]
        key = json.dumps([_iso_vn(at), 1, status])
        record_key = json.dumps([_iso_vn(at), 0, status])
        record = self.templates.record[(d.proc, status)] % d.values
        confirmed_version = d.version if d.confirmed else d.version - 1
        confirmed_at = d.times[-1] if d.confirmed else d.times[-2] if len(d.times) > 1 else None
        block.dossiers.append(
            (
                d.code,
                status,
                key,
                record,
                record_key,
                d.version,
                index + 1,
                _iso_utc(d.last_received),
                PROCEDURES[d.proc].code,
                name_key(d.values["owner"]),
            )
        )
        # What DVCQG confirmed: all of it, or all but the newest version and its step.
        block.states.append(
            (d.code, DESTINATION, confirmed_version, 1, confirmed_at, int(not d.confirmed))
        )

    def _deliveries(self, d: _Dossier, block: _Block) -> None:
        rng = self.rng
        wanted = int(self.spec.deliveries_per_dossier)
        if rng.random() < self.spec.deliveries_per_dossier - wanted:
            wanted += 1
        if rng.random() < 0.01:  # a transient failure before the delivery
            at = d.times[-1] + 1.0
            detail = "DVCQG unavailable: HTTP 503; retry in 30 s"
            row = (d.code, "national_portal", "retry", detail, _iso_utc(at))
            block.deliveries.append((at, row))
            wanted = max(0, wanted - 1)
        if rng.random() < 0.001:
            at = d.times[-1] + 2.0
            detail = "refused by DVCQG: error_code 07 (dữ liệu không hợp lệ)"
            row = (d.code, "national_portal", "parked", detail, _iso_utc(at))
            block.deliveries.append((at, row))
            wanted = max(0, wanted - 1)
        versions = list(range(max(1, d.version - wanted + 1), d.version + 1))
        if not d.confirmed:
            versions = versions[:-1]
        for v in versions[-wanted:] if wanted else []:
            at = d.times[min(v - 1, len(d.times) - 1)] + rng.uniform(1.0, 100.0)
            row = (d.code, "national_portal", "delivered", f"version {v}", _iso_utc(at))
            block.deliveries.append((at, row))

    def _others(self, d: _Dossier, block: _Block) -> None:
        spec, rng = self.spec, self.rng
        proc = PROCEDURES[d.proc]
        if proc.fees and 4 in d.statuses and rng.random() < spec.payment_share * 2:
            self._payment(d, proc, block)
        system = _HANDOFF_PROCEDURES.get(proc.code)
        if system and len(d.statuses) > 1 and rng.random() < spec.ministry_share * 7.5:
            at = _iso_utc(d.times[1] + 5)
            ref = f"HS{rng.randint(0, 99_999_999):08d}"
            block.handoffs.append((system, d.code, proc.code, d.statuses[1], ref, at))
            detail = f"handed off to {system}, receipt {ref}"
            row = (d.code, f"ministry.{system}", "delivered", detail, at)
            block.deliveries.append((d.times[1] + 5, row))
        if rng.random() < spec.vdxp_share:
            self._document(d, block)

    def _payment(self, d: _Dossier, proc: Procedure, block: _Block) -> None:
        rng = self.rng
        paid = d.times[min(2, len(d.times) - 1)] + rng.uniform(60, 3_600)
        draw = rng.random()
        outcome = "paid" if draw < 0.97 else "pending" if draw < 0.99 else "failed"
        amount = sum(f[2] for f in proc.fees)
        tx = f"{rng.randint(0, 10**12):012d}"
        ref = f"{d.code}-{rng.randint(1, 9)}"
        paid_iso = datetime.fromtimestamp(int(paid), VN_TZ).isoformat()
        result = {
            "reference": ref,
            "dossier_code": d.code,
            "transaction_id": tx,
            "amount_vnd": amount,
            "currency": "VND",
            "bank": rng.choice(("VCB", "BIDV", "CTG", "AGRIBANK", "TCB")),
            "paid_at": paid_iso,
            "outcome": outcome,
            "platform_code": "00" if outcome == "paid" else "01",
            "source": "callback",
            "payer_info": "***",
        }
        seen = _iso_utc(paid + rng.uniform(1, 30))
        raw = "\x1f".join(("payment", tx, ref, outcome))
        event_id = (
            "pay-" + hashlib.sha256(raw.encode()).hexdigest()[:32] if outcome != "pending" else None
        )
        day = datetime.fromtimestamp(paid, VN_TZ).date().isoformat()
        block.payments.append(
            (
                tx,
                ref,
                d.code,
                day,
                _iso_utc(int(paid)),
                outcome,
                amount,
                "VND",
                json.dumps(result, ensure_ascii=False),
                seen,
                seen,
                0,
                None,
                event_id,
            )
        )
        body = json.dumps(
            {
                "MaThamChieu": ref,
                "MaGiaoDich": tx,
                "SoTien": str(amount),
                "MaLoi": "00",
                "ThongTinGiaoDich": "***",
                "MaXacThuc": "***",
            },
            ensure_ascii=False,
        )
        verdicts = ["accepted"] + (["duplicate"] if rng.random() < 0.05 else [])
        for verdict in verdicts:
            at = paid + rng.uniform(1, 60)
            block.callbacks.append((at, (_iso_utc(at), verdict, None, None, tx, ref, body)))
        if rng.random() < 0.005:
            at = paid + 90
            row = (
                _iso_utc(at),
                "refused",
                "bad_signature",
                "MaXacThuc does not match",
                tx,
                ref,
                body,
            )
            block.callbacks.append((at, row))

    def _document(self, d: _Dossier, block: _Block) -> None:
        rng = self.rng
        at = d.times[-1] + rng.uniform(60, 3_600)
        doc_id = _uuid(rng)
        out = rng.random() < 0.5
        organ = rng.choice(_AGENCIES)
        attachments = json.dumps(
            [
                {
                    "attachment_id": _uuid(rng),
                    "name": "ho-so.pdf",
                    "content_type": "application/pdf",
                    "size_bytes": rng.randint(20_000, 5_000_000),
                    "file": "a1.pdf",
                    "description": None,
                }
            ]
        )
        created = _iso_utc(at)
        block.documents.append(
            (
                doc_id,
                "out" if out else "in",
                _uuid(rng) if out else None,
                d.code,
                "000.00.41.H41" if out else organ,
                json.dumps([organ] if out else ["000.00.41.H41"]),
                f"{rng.randint(1, 9999)}/UBND-VP",
                f"V/v hồ sơ {d.code}",
                0,
                attachments,
                f"{'out' if out else 'in'}/{doc_id}",
                "sent" if out else "received",
                f"axis-{doc_id[:8]}",
                None,
                created,
                created,
            )
        )
        if out:
            for n, status_code in enumerate(("01", "03", "05", "06")):
                when = at + 60 * (n + 1)
                key = f"{doc_id}|{organ}|{status_code}|{int(when)}"
                block.statuses.append(
                    (
                        key,
                        doc_id,
                        d.code,
                        organ,
                        status_code,
                        None,
                        _iso_utc(when),
                        _iso_utc(when + 2),
                    )
                )
                block.intake.append(
                    (
                        f"st-{doc_id[:8]}-{n}",
                        "status",
                        organ,
                        "accepted",
                        None,
                        None,
                        doc_id,
                        _iso_utc(when + 2),
                        _iso_utc(when + 3),
                    )
                )
        else:
            block.intake.append(
                (
                    f"ed-{doc_id}",
                    "edoc",
                    organ,
                    "accepted",
                    None,
                    None,
                    doc_id,
                    created,
                    _iso_utc(at + 1),
                )
            )

    def audit(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for i in range(self.spec.audit_rows):
            at = self.start + (i + rng.random()) * HISTORY_DAYS * DAY_S / self.spec.audit_rows
            action = rng.choice(("dead_letter.replay", "dead_letter.discard", "session.login"))
            target = f"national_portal/{_uuid(rng)}" if action != "session.login" else "dashboard"
            detail = json.dumps({"message_ids": 1, "reason": "operator"})
            yield (_iso_utc(at), rng.choice(_OPERATORS), action, target, detail)

    def connector_samples(self) -> Iterator[tuple[Any, ...]]:
        """One row per connector per sample interval over the days the hub keeps them."""
        rng = self.rng
        rates = {"national_portal": 60.0, "one_stop": 60.0, "business_registration": 3.0,
                 "civil_status": 3.0, "vdxp": 2.0}  # fmt: skip
        at = self.now - self.keep_s
        dead = dict.fromkeys(rates, 0)
        while at < self.now:
            hour = datetime.fromtimestamp(at, VN_TZ).hour
            busy = 1.0 if 7 <= hour < 17 else 0.15  # office hours
            for name, rate in rates.items():
                done = max(0, round(rng.gauss(rate * busy, (rate * busy) ** 0.5)))
                retried = 1 if rng.random() < 0.02 else 0
                parked = 1 if rng.random() < 0.0005 else 0
                dead[name] += parked
                depth = rng.randint(0, 3) if done else 0
                yield (at, name, done, retried, parked, depth, dead[name], at - rng.uniform(0, 5))
            at += self.sample_s

    # -- writing ---------------------------------------------------------------------------------

    def write(self, path: Path, phases: dict[str, float]) -> tuple[dict[str, int], dict[str, Any]]:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA cache_size=-1000000")  # 1 GB: the unique idem_key index
            # The catalogue's procedure events count as published, as in a running hub.
            db.execute("DELETE FROM outbox")
            indexes = _drop_indexes(db)
            mark = time.perf_counter()
            self._rows(db)
            phases["rows"] = round(time.perf_counter() - mark, 1)
            mark = time.perf_counter()
            for n, (name, sql) in enumerate(indexes, 1):
                _say(f"index {n}/{len(indexes)} {name} …")
                db.execute(sql)
            phases["indexes"] = round(time.perf_counter() - mark, 1)
            db.execute("UPDATE feed_sequence SET seq = ? WHERE id = 1", (self.spec.dossiers,))
            self._samples(db)
            db.execute("PRAGMA journal_mode=WAL")
        finally:
            db.close()
        counts = {**self.counts, "max_events_per_dossier": self.max_events}
        return counts, self.samples

    def _rows(self, db: sqlite3.Connection) -> None:
        spec = self.spec
        started = time.perf_counter()
        next_report = 0.1
        for first in range(0, spec.dossiers, BLOCK_DOSSIERS):
            block = _Block()
            for index in range(first, min(spec.dossiers, first + BLOCK_DOSSIERS)):
                self.dossier(index, block)
            self._insert(db, block)
            done = min(spec.dossiers, first + BLOCK_DOSSIERS) / spec.dossiers
            if done >= next_report or done == 1.0:
                elapsed = time.perf_counter() - started
                _say(
                    f"{done:4.0%} {self.counts['dossiers']:,} dossiers, "
                    f"{self.counts['dossier_events']:,} history rows, {elapsed:.0f} s "
                    f"(about {elapsed / done - elapsed:.0f} s left before the indexes)"
                )
                next_report = done + 0.1
        db.execute("BEGIN")
        self._many(db, "audit_log", list(self.audit()))
        lag = sorted((DESTINATION, m, b, n) for (m, b), n in self.lag.items())
        self._many(db, "sync_lag", lag)
        self._many(db, "connector_samples", list(self.connector_samples()))
        db.execute("COMMIT")

    def _insert(self, db: sqlite3.Connection, block: _Block) -> None:
        db.execute("BEGIN")
        events = _by_time(block.events)
        self._many(db, "dossier_events", [e[:-1] for e in events])
        # The rows just written hold the block's newest ids, in order: the steps DVCQG
        # confirmed (the last field) are recorded by id.
        last = db.execute("SELECT MAX(id) FROM dossier_events").fetchone()[0] or 0
        first = last - len(events) + 1
        sent = [(first + i, DESTINATION, e[-1]) for i, e in enumerate(events) if e[-1]]
        self._many(db, "event_deliveries", sent)
        self._many(db, "dossiers", block.dossiers)
        self._many(db, "destination_state", block.states)
        self._many(db, "deliveries", _by_time(block.deliveries))
        self._many(db, "payments", block.payments)
        self._many(db, "payment_callbacks", _by_time(block.callbacks))
        self._many(db, "ministry_handoffs", block.handoffs)
        self._many(db, "vdxp_documents", block.documents)
        self._many(db, "vdxp_statuses", block.statuses)
        self._many(db, "vdxp_intake", block.intake)
        db.execute("COMMIT")

    def _many(self, db: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            db.executemany(_INSERT[table], rows)
            self.counts[table] += len(rows)

    def _samples(self, db: sqlite3.Connection) -> None:
        """Codes and prefixes the benchmark asks for, with how many rows each one reaches."""
        samples = self.samples
        day = datetime.fromtimestamp(self.now - DAY_S, VN_TZ).strftime("%y%m%d")
        unit = f"000.20.{PROVINCE}"
        prefixes = {"unit_day": f"{unit}-{day}", "unit": f"{unit}-", "any": "000."}
        samples["prefixes"] = {
            name: {
                "q": q,
                "matches": db.execute(
                    "SELECT count(*) FROM dossiers WHERE code >= ? AND code < ?", (q, q + "\uffff")
                ).fetchone()[0],
            }
            for name, q in prefixes.items()
        }
        unconfirmed = db.execute(
            "SELECT dossier_code FROM destination_state WHERE destination = ? AND behind = 1 "
            "LIMIT 1",
            (DESTINATION,),
        ).fetchone()
        samples["unconfirmed_code"] = unconfirmed[0] if unconfirmed else None
        samples["history_rows"] = {
            code: db.execute(
                "SELECT count(*) FROM dossier_events WHERE dossier_code = ?", (code,)
            ).fetchone()[0]
            for code in samples["heavy_codes"] + samples["typical_codes"][:1]
        }
        rows = db.execute(
            "SELECT payload FROM dossier_events WHERE id % 9973 = 1 LIMIT 300"
        ).fetchall()
        for (payload,) in rows:  # every payload must read as a canonical event
            DossierEvent.model_validate_json(payload)
        for (record,) in db.execute("SELECT record_json FROM dossiers LIMIT 100"):
            DossierRecord.model_validate_json(record)
        samples["payloads_validated"] = len(rows) + 100


def _by_time(rows: list[tuple[float, tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """Rows in arrival order, as the hub would have written them (ids follow time)."""
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows]


def _drop_indexes(db: sqlite3.Connection) -> list[tuple[str, str]]:
    marks = ",".join("?" * len(_BULK_TABLES))
    rows = db.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
        f"AND tbl_name IN ({marks}) ORDER BY name",
        _BULK_TABLES,
    ).fetchall()
    for name, _ in rows:
        db.execute(f'DROP INDEX "{name}"')
    return [(str(n), str(s)) for n, s in rows]


# -- command line -------------------------------------------------------------------------------


def spec_from(args: argparse.Namespace) -> StoreSpec:
    base = StoreSpec.quick() if args.quick else StoreSpec()
    changes: dict[str, Any] = {}
    if args.dossiers is not None:
        changes["dossiers"] = args.dossiers
    if args.events is not None:
        changes["events"] = args.events
    return StoreSpec(**{**asdict(base), **changes})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dossiers", type=int, help="dossiers in the generated store")
    parser.add_argument("--events", type=int, help="history rows in the generated store")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard_store", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="50k dossiers, 500k history rows")
    parser.add_argument("--force", action="store_true", help="generate even if one is cached")
    parser.add_argument("--max-age-h", type=float, default=12.0, help="reuse a younger one")
    add_arguments(parser)
    args = parser.parse_args(argv)
    spec = spec_from(args)
    store = asyncio.run(ensure_store(spec, max_age_h=args.max_age_h, force=args.force))
    print(json.dumps(store.summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
