"""Turns one run's results into a readable table with each target beside its figure.

The targets are issue 17's, each a ratio in the same run or a bound: dossier events delivered
at least 0.8 × the raw relay ceiling, p99 step latency under 100 ms at 500 events/s offered;
payment callbacks at least 0.5 × the ceiling with the `00` reply's p99 under 50 ms at 32 in
flight, every reply `00` and every transaction at the one-stop exactly once; SOAP hand-offs at
least 0.8 × a bare zeep client; 50 KB axis documents at least 0.7 × a bare client both ways;
peak RSS under 150 MB and flat over a long stream; a full catalogue sync within 20% of the
ideal its rate limit and concurrency allow in both settings, and a no-change re-sync
announcing nothing. `targets_table` lists every judged figure at the end, and for a miss the
stage of the flow's profile (`bench.stages`) that costs the most CPU per event. After a DVCQG outage
under steady traffic (the recovery phase), the time until DVCQG holds everything sent before
it came back must be within 1.2 × the ideal + 5 s (ideal = backlog ÷ (rate limit × batch size
− offered rate): traffic goes on while the backlog drains), the hub's peak RSS under 300 MB,
and nothing may be parked. Issue 21's, from the scale phase (replicas on PostgreSQL): dossier
events through one replica on PostgreSQL at least 0.8 × one hub on SQLite, and payment
callbacks on PostgreSQL at least 0.5 × the ceiling measured around that phase; its details end
with the projection to 8 and 32 cores (`scale_details`).
This module must never measure anything: it only formats what the phases returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stages import STAGES
from connectors.national_portal.config import NationalPortalConfig

# Issue 17's targets, each a ratio in the same run (or a bound) on the machine of the run.
RATIO_TARGET = 0.8  # dossier events delivered / raw relay ceiling
P99_TARGET_MS = 100.0  # step latency at `LATENCY_RATE_TARGET` offered
LATENCY_RATE_TARGET = 500.0
PAYMENT_RATIO_TARGET = 0.5  # payment callbacks / raw relay ceiling (SQLite and PostgreSQL)
PG_TO_SQLITE_TARGET = 0.8  # dossier events, 1 replica on PostgreSQL / 1 hub on SQLite
PAYMENT_P99_TARGET_MS = 50.0  # `00` reply at 32 in flight
SOAP_RATIO_TARGET = 0.8  # SOAP hand-offs / bare zeep client
AXIS_RATIO_TARGET = 0.7  # 50 KB axis documents / bare client, both ways
PEAK_RSS_TARGET_MB = 150.0
FLAT_SLOPE_MB_PER_10K = 1.0
MIN_EVENTS_TO_JUDGE_SLOPE = 50_000  # below this, a second-half slope is mostly noise
CATALOGUE_RATIO_TARGET = 1.2
RECOVERY_FACTOR, RECOVERY_SLACK_S = 1.2, 5.0  # recovery <= factor × ideal + slack

Row = tuple[str, str, str, str]


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISS")


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _failed(figure: str, result: dict[str, Any]) -> list[Row]:
    """One short line; the whole error is in the JSON file."""
    first = str(result["error"]).splitlines()[0] if result["error"] else "unknown error"
    short = first if len(first) <= 90 else first[:87] + "..."
    return [(figure, f"failed: {short}", "", "FAIL")]


def _relay_rows(relay: dict[str, Any]) -> list[Row]:
    if "error" in relay:
        return _failed("raw relay ceiling", relay)
    return [("raw relay ceiling", _num(relay["messages_per_s"], " msg/s"), "(reference)", "")]


def ratio(results: dict[str, Any]) -> float | None:
    """Dossier events delivered / the relay ceiling measured around the throughput phase (or
    the run's relay phase for results written before it was)."""
    hub = results.get("throughput", {})
    relay = hub.get("relay_baseline") or results.get("relay", {})
    ceiling, rate = relay.get("messages_per_s"), hub.get("events_per_s")
    if not isinstance(ceiling, int | float) or not isinstance(rate, int | float) or not ceiling:
        return None
    return round(rate / ceiling, 3)


def _throughput_rows(tput: dict[str, Any], share: float | None) -> list[Row]:
    if "error" in tput:
        return _failed("hub throughput", tput)
    ok = None if share is None else share >= RATIO_TARGET
    base = tput.get("relay_baseline") or {}
    around = (
        f"{_num(base.get('before_msg_per_s'))} before, {_num(base.get('after_msg_per_s'))} after"
    )
    return [
        ("  relay ceiling around the phase", around + " msg/s", "(reference)", ""),
        ("hub throughput (delivered)", _num(tput["events_per_s"], " events/s"), "", ""),
        ("  hub / raw ceiling", _num(share, "", 2), f">= {RATIO_TARGET}", _verdict(ok)),
        ("  accepted at the facade", _num(tput["accepted_events_per_s"], " events/s"), "", ""),
    ]


def _latency_rows(lat: dict[str, Any]) -> list[Row]:
    if "error" in lat:
        return _failed("step latency", lat)
    p99 = lat["p99_ms"]
    rate = _num(lat["offered_events_per_s"], " events/s")
    return [
        (f"step latency at {rate} p50", _num(lat["p50_ms"], " ms", 1), "", ""),
        ("  p99", _num(p99, " ms", 1), f"< {P99_TARGET_MS:.0f} ms", _verdict(p99 < P99_TARGET_MS)),
        ("  max", _num(lat["max_ms"], " ms", 1), "", ""),
    ]


def _soak_rows(soak: dict[str, Any]) -> list[Row]:
    if "error" in soak:
        return _failed("hub RSS (soak)", soak)
    peak, slope = soak["rss_peak_mb"], soak["slope_mb_per_10k_events"]
    judged = slope is not None and soak["events"] >= MIN_EVENTS_TO_JUDGE_SLOPE
    flat = abs(slope) <= FLAT_SLOPE_MB_PER_10K if judged else None
    flat_target = f"|x| <= {FLAT_SLOPE_MB_PER_10K} (flat)" if judged else "(run too short)"
    events = _num(soak["events"])
    return [
        (f"hub RSS over {events} events: start", _num(soak["rss_start_mb"], " MB", 1), "", ""),
        (
            "  peak",
            _num(peak, " MB", 1),
            f"< {PEAK_RSS_TARGET_MB:.0f} MB",
            _verdict(peak < PEAK_RSS_TARGET_MB),
        ),
        ("  end", _num(soak["rss_end_mb"], " MB", 1), "", ""),
        (
            "  slope, second half",
            _num(slope, " MB/10k events", 2),
            flat_target,
            _verdict(flat),
        ),
        ("  soak throughput", _num(soak["events_per_s"], " events/s"), "", ""),
    ]


def _catalogue_setting_rows(name: str, figures: dict[str, Any]) -> list[Row]:
    setting, full, again = figures["setting"], figures["full_sync"], figures["resync"]
    ideal, ratio_ = figures["ideal"]["ideal_s"], full["ratio_to_ideal"]
    rate = _num(setting["rate_limit_per_s"], "/s")
    label = f"  {name.replace('_', '-')}: concurrency {setting['concurrency']}, rate {rate}"
    peak = figures["rss"]["peak_full_sync_mb"]
    produced = again["events_delivered"] + again["changes_counted"]
    out: list[Row] = [
        (f"{label}: wall", _num(full["wall_s"], " s", 2), f"ideal {_num(ideal, ' s', 2)}", ""),
        (
            "    wall / ideal",
            _num(ratio_, "", 2),
            f"<= {CATALOGUE_RATIO_TARGET}",
            _verdict(ratio_ <= CATALOGUE_RATIO_TARGET),
        ),
    ]
    if full["state"] != "done" or again["state"] != "done":
        out.append(("    run states", f"{full['state']}, {again['state']}", "done", "MISS"))
    delivered = full.get("all_created_delivered_after_post_s")
    return [
        *out,
        ("    hub peak RSS", _num(peak, " MB", 1), f"< {PEAK_RSS_TARGET_MB:.0f} MB",
         _verdict(peak is not None and peak < PEAK_RSS_TARGET_MB)),
        ("    subscriber holds every created", _num(delivered, " s after POST", 2), "", ""),
        ("    no-change re-sync: wall", _num(again["wall_s"], " s", 2), "", ""),
        ("      re-sync / first sync", _num(again["ratio_to_first_sync"], "", 2), "", ""),
        ("      events produced", _num(produced), "0", _verdict(produced == 0)),
    ]  # fmt: skip


def _catalogue_rows(cat: dict[str, Any]) -> list[Row]:
    if "error" in cat:
        return _failed("catalogue sync", cat)
    title = (
        f"catalogue sync: {_num(cat['procedures'])} procedures, "
        f"{_num(cat['latency_ms'])} ms per DVCQG call"
    )
    out: list[Row] = [(title, "", "", "")]
    for name, figures in cat["settings"].items():
        out += _catalogue_setting_rows(name, figures)
    return out


def catalogue_details(cat: dict[str, Any]) -> list[str]:
    """Lines under the table: what each catalogue sync asked of DVCQG and what it cost."""
    if "settings" not in cat:
        return []
    sub = cat["subscriber_config"]
    lines = [
        f"  catalogue: subscriber one_stop concurrency {sub['concurrency']}, "
        f"rate limit {sub['rate_limit_per_s']:.0f}/s"
    ]
    for name, figures in cat["settings"].items():
        full, again, ideal = figures["full_sync"], figures["resync"], figures["ideal"]
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in figures["cpu_cores_used"].items())
        lines += [
            f"  catalogue {name}: ideal {ideal['ideal_s']} s = max(N/rate "
            f"{ideal['rate_bound_s']} s, N*latency/concurrency {ideal['concurrency_bound_s']} s)"
            f" + {ideal['sequential_calls_s']} s sequential calls ({ideal['bound']} bound); "
            f"with the limiter's burst {ideal['ideal_with_burst_s']} s, ratio "
            f"{full['ratio_to_ideal_with_burst']}",
            f"    full sync: run {full['run_s']} s, {full['procedures_per_s']} procedures/s, "
            f"worker cycle {full['worker_cycle_ms']} ms, DVCQG calls {full['dvcqg_calls']}, "
            f"peak in flight {full['dvcqg_peak_in_flight']}, counts {full['counts']}",
            f"    re-sync: wall / ideal {again['ratio_to_ideal']}, counts {again['counts']}, "
            f"DVCQG calls {again['dvcqg_calls']}, worker cycle {again['worker_cycle_ms']} ms",
            f"    CPU cores used (full sync): {cpu}; store {figures['store_mb']} MB; "
            f"RSS idle {figures['rss']['idle_mb']} MB, re-sync peak "
            f"{figures['rss']['peak_resync_mb']} MB",
        ]
    return lines


def _payment_variant_rows(label: str, v: dict[str, Any]) -> list[Row]:
    once = v["events"]
    exact = once["distinct_events"] == v["transactions"] and not once["extra"]
    return [
        (f"{label}: accepted", _num(v["callbacks_per_s"], " callbacks/s"), "", ""),
        ("    00 reply p50", _num(v["p50_ms"], " ms", 1), "", ""),
        ("    p95 / p99", f"{_num(v['p95_ms'], '', 1)} / {_num(v['p99_ms'], ' ms', 1)}", "", ""),
        ("    replies not 00", _num(v["not_00"]), "0", _verdict(v["not_00"] == 0)),
        (
            "    drain to the one-stop",
            f"{_num(v['drain_s'], ' s', 2)} ({_num(v['drain_after_last_reply_s'], ' s', 2)}"
            " after the last reply)",
            "",
            "",
        ),
        (
            "    payment.paid events held",
            f"{_num(once['distinct_events'])} of {_num(v['transactions'])}",
            "exactly once",
            _verdict(exact),
        ),
    ]


def _payments_rows(pay: dict[str, Any], relay_ran: bool) -> list[Row]:
    if "error" in pay:
        return _failed("payment callbacks", pay)
    out: list[Row] = []
    base = pay.get("relay_baseline") or {}
    if "before_msg_per_s" in base:
        around = f"{_num(base['before_msg_per_s'])} before, {_num(base['after_msg_per_s'])} after"
        out.append(("  relay ceiling around the phase", around + " msg/s", "(reference)", ""))
    elif not relay_ran and "messages_per_s" in base:
        out.append(("raw relay ceiling", _num(base["messages_per_s"], " msg/s"), "(reference)", ""))
    variants = pay["variants"]
    title = f"payment callbacks, {_num(pay['callbacks'])} at {pay['concurrency']} in flight"
    out += _payment_variant_rows(title, variants["unique"])
    out.append(("    callbacks / raw ceiling", _num(pay["ratio_to_relay"], "", 3), "", ""))
    rss = pay["rss"]
    figures = " / ".join(_num(rss[k], "", 1) for k in ("after_start_mb", "idle_mb", "peak_mb"))
    ok = rss["peak_mb"] < PEAK_RSS_TARGET_MB
    target = f"< {PEAK_RSS_TARGET_MB:.0f} MB"
    out.append(("    hub RSS start / seeded / peak", f"{figures} MB", target, _verdict(ok)))
    if "duplicates" in variants:
        share = f"{pay['repeat_share']:.0%}"
        out += _payment_variant_rows(f"  with {share} posted twice", variants["duplicates"])
    return out


def payments_details(pay: dict[str, Any]) -> list[str]:
    """Lines under the table: seeding, the subscriber's settings, CPU per variant."""
    if "variants" not in pay:
        return []
    sub, seeding = pay["subscriber_config"], pay["seeding"]
    base = pay.get("relay_baseline") or {}
    lines = [
        f"  payments: require_known_dossier {pay['require_known_dossier']}; subscriber one_stop "
        f"concurrency {sub['concurrency']}, rate limit {sub['rate_limit_per_s']:.0f}/s; "
        f"seeding {pay['callbacks']} dossiers took {seeding['accepted_s']} s "
        f"({seeding['at_dvcqg_s']} s until DVCQG held them); relay baseline "
        f"{base.get('messages_per_s')} msg/s ({base.get('source')})",
    ]
    for name, v in pay["variants"].items():
        cpu = ", ".join(f"{k} {x:.2f}" for k, x in v["cpu_cores_used"].items())
        repeat = v.get("repeat_latency")
        repeats = (
            f"; repeats p50 {repeat['p50_ms']} ms, p99 {repeat['p99_ms']} ms" if repeat else ""
        )
        lines.append(
            f"    {name}: {v['callbacks_posted']} posts ({v['repeats_posted']} repeats) in "
            f"{v['seconds']} s, max {v['max_ms']} ms, mean {v['mean_ms']} ms{repeats}; events "
            f"held when all replied {v['events_held_when_all_replied']}; {v['events']}; "
            f"CPU cores used: {cpu}; RSS peak {v['rss_peak_mb']} MB"
        )
    return lines


def _triple(lat: dict[str, Any], unit: str = " ms") -> str:
    return " / ".join(_num(lat.get(k), "", 1) for k in ("p50_ms", "p95_ms", "p99_ms")) + unit


def _ministries_rows(mins: dict[str, Any]) -> list[Row]:
    if "error" in mins:
        return _failed("ministry connectors", mins)
    soap, push = mins["soap"], mins["push"]
    hub, raw = soap["hub"], soap["raw"]
    title = f"SOAP hand-offs, {_num(hub['dossiers'])} at {mins['concurrency']} in flight: hub"
    peak = mins["rss"]["peak_mb"]
    return [
        (title, _num(hub["round_trips_per_s"], " round trips/s"), "", ""),
        ("    raw zeep client, same simulator", _num(raw["calls_per_s"], " calls/s"),
         "(reference)", ""),
        ("    hub / raw", _num(soap["ratio_hub_to_raw"], "", 2), "", ""),
        (f"ministry result push → one-stop, {_num(push['pushes'])} one at a time",
         "p50 / p95 / p99", "", ""),
        ("    through the hub", _triple(push["hub_to_event"]), "", ""),
        ("    posted directly to the receiver", _triple(push["raw_to_event"]), "(reference)", ""),
        ("    added by the hub", _triple(push["added_ms"]), "", ""),
        ("    hub RSS start / peak", f"{_num(mins['rss']['after_start_mb'], '', 1)} / "
         f"{_num(peak, ' MB', 1)}", f"< {PEAK_RSS_TARGET_MB:.0f} MB",
         _verdict(peak < PEAK_RSS_TARGET_MB)),
    ]  # fmt: skip


def ministries_details(mins: dict[str, Any]) -> list[str]:
    """Lines under the table: settings, what the simulator saw, CPU per measurement."""
    if "soap" not in mins:
        return []
    hub, raw, push = mins["soap"]["hub"], mins["soap"]["raw"], mins["push"]
    settings = mins["settings"]

    def cpu(figures: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in figures["cpu_cores_used"].items())

    return [
        f"  ministries: settings {settings}",
        f"    SOAP through the hub: {hub['seconds']} s (dossiers posted in {hub['posted_s']} s), "
        f"NopHoSo calls {hub['nophoso_calls']} ({hub['calls_beyond_one_per_dossier']} beyond one "
        f"per dossier), simulator peak in flight {hub['simulator_peak_in_flight']}; "
        f"CPU cores used: {cpu(hub)}; RSS peak {hub['rss_peak_mb']} MB",
        f"    SOAP raw: {raw['seconds']} s, replies {raw['replies']}, simulator peak in flight "
        f"{raw['simulator_peak_in_flight']}; CPU cores used: {cpu(raw)}",
        f"    push: hub reply p50 / p95 / p99 {_triple(push['hub_reply'])}; max through the hub "
        f"{push['hub_to_event']['max_ms']} ms, direct {push['raw_to_event']['max_ms']} ms; "
        f"CPU cores used (through the hub): {cpu(push)}; duplicate receipts "
        f"{mins['duplicate_receipts']}",
    ]


def _recovery_outage_rows(outage: str, o: dict[str, Any], rate: str) -> list[Row]:
    title = f"recovery, DVCQG down {outage} s, {rate} kept on: backlog"
    if "error" in o:
        return _failed(f"recovery, DVCQG down {outage} s", o)
    if o["complete"]:
        took = _num(o["recovery_s"], " s", 1)
    else:
        took = f"not complete after {_num(o['catch_up_limit_s'], ' s')}"
    target = (
        f"<= {_num(o['target_s'], ' s', 1)} ({RECOVERY_FACTOR} x ideal "
        f"{_num(o['ideal_s'], ' s', 1)} + {RECOVERY_SLACK_S:.0f} s)"
    )
    parked, peak = o["parked_at_end"], o["rss_peak_mb"]
    before = o.get("rss_peak_before_traffic_mb")  # the log-ins' argon2 checks, 64 MiB each
    parked_verdict = "" if parked is None else ("ok" if parked == 0 else "FAIL")
    probes = f"{_num(o['probe_latency_s'], ' s', 2)} / {_num(o['probes'])}"
    return [
        (title, _num(o["backlog_messages"], " messages"), "", ""),
        ("    time to 100% complete", took, target, _verdict(o["within_target"])),
        ("    recovery / ideal", _num(o["ratio_to_ideal"], "", 2), "", ""),
        ("    probe latency / probes", probes, "", ""),
        ("    drain after the probe", _num(o["drain_after_probe_s"], " s", 1), "", ""),
        ("    peak backlog during the outage", _num(o["peak_backlog_messages"], " messages"),
         "", ""),
        ("    hub peak RSS (VmHWM) from the traffic on", _num(peak, " MB", 1),
         f"< {PEAK_RSS_TARGET_MB:.0f} MB",
         _verdict(None if peak is None else peak < PEAK_RSS_TARGET_MB)),
        ("      before it, log-ins and warm-up", _num(before, " MB", 1), "(reference)", ""),
        ("    messages parked", _num(parked), "0", parked_verdict),
    ]  # fmt: skip


def _recovery_rows(rec: dict[str, Any]) -> list[Row]:
    if "error" in rec:
        return _failed("recovery after a DVCQG outage", rec)
    rate = _num(rec["offered_events_per_s"], " events/s")
    out: list[Row] = []
    for outage, figures in rec["outages"].items():
        out += _recovery_outage_rows(outage, figures, rate)
    return out


def recovery_details(rec: dict[str, Any]) -> list[str]:
    """Lines under the table: the formula and settings, then where each catch-up's time went."""
    if "outages" not in rec:
        return []
    s = rec["settings"]
    lines = [
        f"  recovery: traffic {rec['traffic']}; {rec['formula']} "
        f"= backlog / ({s['rate_limit_per_s']:g} x {s['batch_size']} - "
        f"{rec['offered_events_per_s']:g}) events/s; backlog = /readyz waiting at the switch "
        f"back; {rec['target']}; hub: concurrency {s['concurrency']}, linger {s['linger_ms']} ms,"
        f" probes {s['first_probe_s']:g} s doubling to {s['max_probe_interval_s']:g} s, "
        f"retry attempts {s['retry_attempts']}, hold_max {s['hold_max_s']:g} s",
    ]
    for outage, o in rec["outages"].items():
        if "error" in o:
            continue
        c = o["catch_up"]
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in o["cpu_cores_used"].items())
        catch_cpu = ", ".join(f"{k} {v:.2f}" for k, v in c["cpu_cores_used"].items())
        lines += [
            f"    {outage} s, catch-up after the probe: {c['calls_per_s_after_probe']} DVCQG "
            f"calls/s {c['dvcqg_calls']}, {c['messages_settled_per_s_after_probe']} messages "
            f"settled/s ({c['messages_per_call']} per call; {c['records_per_call']} records, "
            f"{c['steps_per_call']} steps per call); {c['events_offered_meanwhile']} events "
            f"offered meanwhile, {c['waiting_at_end']} messages still waiting when complete; "
            f"CPU cores used: {catch_cpu}",
            f"      last backlog step landed {o['last_backlog_step_landed_s']} s after the "
            f"switch; DVCQG calls during the outage {o['dvcqg_calls_during_outage']}; hub "
            f"outages logged {o['hub_outage_log']['outages']}, held at most {o['held_max']}; "
            f"{o['events_sent']} events sent, send slip max {o['max_send_slip_ms']} ms; "
            f"CPU cores used over outage and catch-up: {cpu}",
        ]
    return lines


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    if "relay" in results:
        out += _relay_rows(results["relay"])
    if "throughput" in results:
        out += _throughput_rows(results["throughput"], ratio(results))
    if "latency" in results:
        out += _latency_rows(results["latency"])
    if "soak" in results:
        out += _soak_rows(results["soak"])
    if "catalogue" in results:
        out += _catalogue_rows(results["catalogue"])
    if "payments" in results:
        out += _payments_rows(results["payments"], "relay" in results)
    if "ministries" in results:
        out += _ministries_rows(results["ministries"])
    if "recovery" in results:
        out += _recovery_rows(results["recovery"])
    if "scale" in results:
        out += _scale_rows(results["scale"])
    return out


def table(results: dict[str, Any]) -> str:
    header: Row = ("figure", "measured", "target", "")
    lines = [header, *rows(results)]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in text)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# -- CPU per event by stage ---------------------------------------------------------------------

STAGE_FLOWS = (
    ("dossier_events", "dossier events"),
    ("dossier_events_one_item", "one per call"),
    ("payment_callbacks", "payments"),
    ("catalogue_concurrency_bound", "catalogue"),
)


def stages_table(stages: dict[str, Any]) -> str:
    """Hub CPU ms per event, one column per flow, one row per stage (`bench.stages`)."""
    if "error" in stages:
        return "\n".join("  ".join(r) for r in _failed("CPU per event by stage", stages))
    flows = [(key, title) for key, title in STAGE_FLOWS if key in stages.get("flows", {})]
    data = {key: stages["flows"][key] for key, _ in flows}
    names: list[str] = []
    for figures in data.values():
        names += [s for s in figures.get("stages", {}) if s not in names]
    order = list(STAGES)
    names.sort(key=lambda s: order.index(s) if s in order else len(order))

    def cell(key: str, stage: str) -> str:
        found = data[key].get("stages", {}).get(stage)
        if not found:
            return ""
        return f"{found['cpu_ms_per_event']:.3f} ({found['share']:.0%})"

    header = ("hub CPU ms per event (share)", *(title for _, title in flows))
    lines: list[tuple[str, ...]] = [header]
    lines += [(stage, *(cell(key, stage) for key, _ in flows)) for stage in names]
    lines.append(
        ("total (psutil)", *(_num(data[k].get("hub_cpu_ms_per_event"), "", 3) for k, _ in flows))
    )
    lines.append(
        ("hub cores used", *(_num(data[k].get("hub_cores_used"), "", 2) for k, _ in flows))
    )
    lines.append(
        (
            "events/s while profiled",
            *(_num(data[k].get("events_per_s_while_profiled"), "", 0) for k, _ in flows),
        )
    )
    errors = [f"{k}: {data[k]['error']}" for k, _ in flows if "error" in data[k]]
    disk = stages.get("disk")
    if disk:
        errors.append(
            "disk, wall ms p50 / p99: fsync of 4 KB "
            + " / ".join(_num(disk["fsync_4kb"][k], "", 2) for k in ("p50_ms", "p99_ms"))
            + "; SQLite WAL commit, synchronous=FULL (the hub's) "
            + " / ".join(_num(disk["sqlite_commit_full"][k], "", 2) for k in ("p50_ms", "p99_ms"))
            + ", NORMAL "
            + " / ".join(_num(disk["sqlite_commit_normal"][k], "", 3) for k in ("p50_ms", "p99_ms"))
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*(t.rstrip() for t in text), *errors])


# -- every target at the end ------------------------------------------------------------------

# figure, value, target, met, and what it measures (a key of `_CAUSES`, for a miss's cause)
Target = tuple[str, Any, str, bool | None, str]


def _stage_of(results: dict[str, Any], flow: str | None) -> str:
    """The stage that costs the flow most CPU per event, from the stages phase of the run."""
    figures = results.get("stages", {}).get("flows", {}).get(flow or "", {})
    stages = figures.get("stages") or {}
    if not stages:
        return ""
    name, top = max(stages.items(), key=lambda kv: kv[1]["cpu_ms_per_event"])
    cores = figures.get("hub_cores_used")
    return (
        f"{name}: {top['cpu_ms_per_event']:.3f} of {figures['hub_cpu_ms_per_event']:.3f} "
        f"CPU ms/event ({top['share']:.0%}); hub {cores} cores"
    )


def _targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    share = ratio(results)
    if "throughput" in results and "error" not in results["throughput"]:
        out.append(
            (
                "dossier events / raw ceiling",
                share,
                f">= {RATIO_TARGET}",
                None if share is None else share >= RATIO_TARGET,
                "throughput",
            )
        )
    lat = results.get("latency", {})
    if "p99_ms" in lat:
        rate = lat["offered_events_per_s"]
        judged = rate >= LATENCY_RATE_TARGET
        out.append(
            (
                f"step p99 at {rate:g} events/s",
                lat["p99_ms"],
                f"< {P99_TARGET_MS:.0f} ms at {LATENCY_RATE_TARGET:g}/s",
                lat["p99_ms"] < P99_TARGET_MS if judged else None,
                "latency",
            )
        )
    soak = results.get("soak", {})
    if "rss_peak_mb" in soak:
        out.append(
            (
                f"hub peak RSS over {soak['events']:,} events",
                soak["rss_peak_mb"],
                f"< {PEAK_RSS_TARGET_MB:.0f} MB",
                soak["rss_peak_mb"] < PEAK_RSS_TARGET_MB,
                "soak",
            )
        )
    pay = results.get("payments", {})
    if "variants" in pay:
        unique = pay["variants"]["unique"]
        out.append(
            (
                "payment callbacks / raw ceiling",
                pay["ratio_to_relay"],
                f">= {PAYMENT_RATIO_TARGET}",
                None
                if pay["ratio_to_relay"] is None
                else pay["ratio_to_relay"] >= PAYMENT_RATIO_TARGET,
                "payments",
            )
        )
        out.append(
            (
                f"payment 00 p99 at {pay['concurrency']} in flight",
                unique["p99_ms"],
                f"< {PAYMENT_P99_TARGET_MS:.0f} ms",
                unique["p99_ms"] < PAYMENT_P99_TARGET_MS,
                "payment_p99",
            )
        )
    mins = results.get("ministries", {})
    if "soap" in mins:
        soap = mins["soap"]["ratio_hub_to_raw"]
        out.append(
            (
                "SOAP hand-offs / bare zeep",
                soap,
                f">= {SOAP_RATIO_TARGET}",
                None if soap is None else soap >= SOAP_RATIO_TARGET,
                "soap",
            )
        )
    out += _axis_targets(results.get("vdxp", {}))
    out += _scale_targets(results.get("scale", {}))
    for name, figures in results.get("catalogue", {}).get("settings", {}).items():
        value = figures["full_sync"]["ratio_to_ideal"]
        out.append(
            (
                f"catalogue {name.replace('_', '-')} wall / ideal",
                value,
                f"<= {CATALOGUE_RATIO_TARGET}",
                value <= CATALOGUE_RATIO_TARGET,
                f"catalogue_{name}",
            )
        )
    return out  # fmt: skip


def _axis_targets(vdxp: dict[str, Any]) -> list[Target]:
    loads = vdxp.get("loads") or {}
    if not loads:
        return []
    small = min(loads.values(), key=lambda load: load["attachment_bytes"])
    out: list[Target] = []
    for mode in ("receive", "send"):
        value = small[mode]["ratio_hub_to_raw"]
        ok = None if value is None else value >= AXIS_RATIO_TARGET
        size = f"{small['attachment_bytes'] / 1000:.0f} KB"
        out.append(
            (
                f"axis {size} {mode} / bare client",
                value,
                f">= {AXIS_RATIO_TARGET}",
                ok,
                f"axis_{mode}",
            )
        )
    return out


def _scale_targets(sc: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    pg1 = sc.get("dossiers", {}).get("postgresql_1", {})
    if "ratio_to_sqlite" in pg1:
        value = pg1["ratio_to_sqlite"]
        ok = None if value is None else value >= PG_TO_SQLITE_TARGET
        out.append(
            (
                "dossier events 1 replica PostgreSQL / SQLite",
                value,
                f">= {PG_TO_SQLITE_TARGET}",
                ok,
                "pg_to_sqlite",
            )
        )
    pay = sc.get("payments_postgresql", {})
    if "ratio_to_relay" in pay:
        value = pay["ratio_to_relay"]
        ok = None if value is None else value >= PAYMENT_RATIO_TARGET
        out.append(
            (
                "payment callbacks PostgreSQL / raw ceiling",
                value,
                f">= {PAYMENT_RATIO_TARGET}",
                ok,
                "payments_postgresql",
            )
        )
    return out  # fmt: skip


def misses(results: dict[str, Any]) -> list[str]:
    """The judged figures that missed their target."""
    return [figure for figure, _, _, met, _ in _targets(results) if met is False]


def machine_held(pay: dict[str, Any]) -> str:
    """What holds a round the whole machine ran: how busy its cores were, and each process's
    CPU per callback (the hub, PostgreSQL, the broker, the bench's own client)."""
    machine = pay.get("machine") or {}
    per = pay.get("cpu_ms_per_callback") or {}
    if not machine or not per:
        return ""
    names = (("hub", "hub"), ("postgresql", "PG"), ("rabbitmq", "broker"), ("bench", "client"))
    parts = " ".join(f"{label} {per[key]:.2f}" for key, label in names if key in per)
    return (
        f"machine {machine['busy_share']:.0%} busy of {machine['cores']} cores; "
        f"CPU ms/callback {parts}"
    )


def _ms_per_item(cores: Any, rate: Any) -> float | None:
    ok = isinstance(cores, int | float) and isinstance(rate, int | float) and rate > 0
    return cores * 1000 / rate if ok else None


def one_core_held(share: Any, rate: Any, ms: float | None, target: float, unit: str) -> str:
    """A ratio held by the hub's CPU: the hub spent `ms` of CPU per item while it reached
    `share` at `rate` items/s. One whole core at that cost sustains `1000 / ms` items/s (a
    hub is one Python process: one core for its code, a little more from SQLite's own
    thread), and `target` needs at most the cost shown on one core. Where `ms` counts work
    that went on after the last reply (the payments' deliveries), the measured ratio can be
    above what one core sustains: the difference is the backlog left at the last reply."""
    ok = isinstance(share, int | float) and isinstance(rate, int | float) and rate > 0
    if ms is None or not ms or not ok:
        return ""
    per_item = share / rate  # the ratio one item/s is worth
    return (
        f"hub {ms:.2f} CPU ms/{unit}: one whole core sustains {per_item * 1000 / ms:.2f}; "
        f"{target:g} needs <= {per_item * 1000 / target:.2f} ms/{unit}"
    )


def cost_pair(hub: tuple[Any, str], bare: tuple[Any, str], target: float, unit: str) -> str:
    """A ratio against a bare client, both held by their CPU: each one's CPU per item (with
    what to say beside it, such as its cores); at equal cores the ratio is the bare client's
    cost over the hub's, and `target` needs the hub at most the bare cost / target."""
    (hub_ms, hub_note), (bare_ms, bare_note) = hub, bare
    if not isinstance(hub_ms, int | float) or not isinstance(bare_ms, int | float) or not hub_ms:
        return ""
    return (
        f"CPU ms/{unit}: hub {hub_ms:.2f}{hub_note}, bare {bare_ms:.2f}{bare_note}; at equal "
        f"cores {bare_ms / hub_ms:.2f}; {target:g} needs the hub <= {bare_ms / target:.2f} "
        f"ms/{unit}"
    )


def pair_held(hub: tuple[Any, Any], bare: tuple[Any, Any], target: float, unit: str) -> str:
    """`cost_pair` from each side's (cores, items/s)."""
    hub_ms, bare_ms = _ms_per_item(*hub), _ms_per_item(*bare)
    if hub_ms is None or bare_ms is None:
        return ""
    return cost_pair(
        (hub_ms, f" at {hub[0]:.2f} cores"), (bare_ms, f" at {bare[0]:.2f} cores"), target, unit
    )


def _cores(figures: dict[str, Any], name: str = "hub") -> Any:
    return (figures.get("cpu_cores_used") or {}).get(name)


def _throughput_cause(results: dict[str, Any]) -> str:
    tput = results.get("throughput", {})
    rate = tput.get("events_per_s")
    ms = _ms_per_item(_cores(tput), rate)
    return one_core_held(ratio(results), rate, ms, RATIO_TARGET, "event")


def _latency_cause(results: dict[str, Any]) -> str:
    """Why the step latency is what it is: the rate one-item calls were answered at against
    the rate offered (below it, calls queue and latency grows with the run), the hub's CPU
    per event at that rate (near one whole core, everything queues), and DVCQG's batching,
    which waits up to `linger_ms` for company whatever the hub's speed."""
    lat = results.get("latency", {})
    linger = NationalPortalConfig.model_fields["linger_ms"].default
    answered = lat.get("answered_events_per_s")
    offered = lat.get("offered_events_per_s")
    parts = [f"a DVCQG batch waits up to linger_ms={linger}"]
    cores = _cores(lat)
    if (ms := _ms_per_item(cores, answered)) is not None:
        parts.insert(0, f"hub {cores:.2f} cores at {ms:.2f} CPU ms/event")
    if answered is not None and offered:
        parts.insert(0, f"calls answered at {answered:g}/s of {offered:g}/s offered")
    return "; ".join(parts)


def _payments_cause(results: dict[str, Any]) -> str:
    pay = results.get("payments", {})
    unique = pay.get("variants", {}).get("unique", {})
    rate = unique.get("callbacks_per_s")
    # The hub's CPU from the first callback until every event was delivered, per callback:
    # the replies and the deliveries of their events.
    ms = (unique.get("cpu_ms_per_callback") or {}).get("hub")
    return one_core_held(pay.get("ratio_to_relay"), rate, ms, PAYMENT_RATIO_TARGET, "callback")


def _payment_p99_cause(results: dict[str, Any]) -> str:
    """Little's law: with N callbacks in flight at R a second, a reply takes N / R on
    average, so a p99 under the bound needs more than N / bound a second."""
    pay = results.get("payments", {})
    rate, flight = (
        pay.get("variants", {}).get("unique", {}).get("callbacks_per_s"),
        pay.get("concurrency"),
    )
    if not isinstance(rate, int | float) or not rate or not isinstance(flight, int):
        return ""
    return (
        f"{flight} in flight at {rate:.0f}/s: {flight / rate * 1000:.0f} ms a reply on average "
        f"(Little's law); p99 < {PAYMENT_P99_TARGET_MS:.0f} ms needs more than "
        f"{flight * 1000 / PAYMENT_P99_TARGET_MS:.0f}/s"
    )


def _soap_cause(results: dict[str, Any]) -> str:
    soap = results.get("ministries", {}).get("soap", {})
    hub, raw = soap.get("hub", {}), soap.get("raw", {})
    return pair_held(
        (_cores(hub), hub.get("round_trips_per_s")),
        (_cores(raw, "client"), raw.get("calls_per_s")),
        SOAP_RATIO_TARGET,
        "hand-off",
    )


def _axis_cause(results: dict[str, Any], mode: str) -> str:
    loads = results.get("vdxp", {}).get("loads") or {}
    if not loads:
        return ""
    small = min(loads.values(), key=lambda load: load["attachment_bytes"])[mode]
    hub, raw = small.get("hub", {}), small.get("raw", {})
    # `cpu_ms_per_document` is each side's worker (the hub, the bare client) over its rounds.
    return cost_pair(
        (hub.get("cpu_ms_per_document"), ""),
        (raw.get("cpu_ms_per_document"), ""),
        AXIS_RATIO_TARGET,
        "document",
    )


def _catalogue_cause(results: dict[str, Any], setting: str) -> str:
    """A wall / ideal ratio: what the hub's CPU per procedure was, and the ratio one whole
    core would give if the CPU were all that held it (above the target: the CPU cannot be
    all; below it: the hub also waited on something)."""
    figures = results.get("catalogue", {}).get("settings", {}).get(setting, {})
    full = figures.get("full_sync", {})
    cores, value = _cores(figures), full.get("ratio_to_ideal")
    ms = _ms_per_item(cores, full.get("procedures_per_s"))
    if ms is None or not isinstance(value, int | float):
        return ""
    return (
        f"hub {cores:.2f} cores, {ms:.2f} CPU ms/procedure; on one whole core at that cost "
        f"{value * cores:.2f}"
    )


def _soak_cause(results: dict[str, Any]) -> str:
    """Memory: where the resident set began and how it grew in the second half (a leak keeps
    growing; a flat slope over a short run is a warm-up)."""
    soak = results.get("soak", {})
    start, slope = soak.get("rss_start_mb"), soak.get("slope_mb_per_10k_events")
    if not isinstance(start, int | float):
        return ""
    grew = f"{slope:.2f} MB per 10,000 events" if isinstance(slope, int | float) else "unknown"
    return f"hub RSS {start:.1f} MB at the start; second half's slope {grew}"


def _pg_to_sqlite_cause(results: dict[str, Any]) -> str:
    """One replica on PostgreSQL against one hub on SQLite: each one's CPU per event, by
    process (the scale phase's closed-loop runs)."""
    runs = results.get("scale", {}).get("dossiers", {})
    pg, lite = runs.get("postgresql_1", {}), runs.get("sqlite_1", {})
    pg_cpu, lite_cpu = pg.get("cpu_ms_per_event") or {}, lite.get("cpu_ms_per_event") or {}
    if not pg_cpu or not lite_cpu:
        return ""
    return f"CPU ms/event on PostgreSQL {_cpu_cell(pg_cpu)}; on SQLite {_cpu_cell(lite_cpu)}"


def _payments_pg_cause(results: dict[str, Any]) -> str:
    return machine_held(results.get("scale", {}).get("payments_postgresql", {}))


_CAUSES: dict[str, Callable[[dict[str, Any]], str]] = {
    "throughput": _throughput_cause,
    "latency": _latency_cause,
    "payments": _payments_cause,
    "payment_p99": _payment_p99_cause,
    "soap": _soap_cause,
    "axis_receive": lambda results: _axis_cause(results, "receive"),
    "axis_send": lambda results: _axis_cause(results, "send"),
    "catalogue_rate_bound": lambda results: _catalogue_cause(results, "rate_bound"),
    "catalogue_concurrency_bound": lambda results: _catalogue_cause(results, "concurrency_bound"),
    "payments_postgresql": _payments_pg_cause,
    "soak": _soak_cause,
    "pg_to_sqlite": _pg_to_sqlite_cause,
}
# The flow of the stages phase (its top stage) behind each kind of target.
_STAGE_FLOWS = {
    "throughput": "dossier_events",
    "pg_to_sqlite": "dossier_events",
    "latency": "dossier_events_one_item",
    "payments": "payment_callbacks",
    "payment_p99": "payment_callbacks",
    "payments_postgresql": "payment_callbacks",
    "catalogue_concurrency_bound": "catalogue_concurrency_bound",
}


def held_by(results: dict[str, Any], kind: str) -> str:
    """Why a target was missed, from this run's own measurements: the cause its kind has
    (CPU per item against one core or against the bare client, Little's law, the busy
    machine) and the stage that costs its flow most CPU."""
    cause = _CAUSES[kind](results) if kind in _CAUSES else ""
    stage = _stage_of(results, _STAGE_FLOWS.get(kind))
    return "; ".join(h for h in (cause, stage) if h)


def targets_table(results: dict[str, Any]) -> str:
    """Every judged figure against its target; for a miss, what holds it (`held_by`)."""
    header = ("target", "measured", "target", "", "held by (measured in this run)")
    lines: list[tuple[str, ...]] = [header]
    for figure, value, target, met, kind in _targets(results):
        held = held_by(results, kind) if met is False else ""
        digits = 1 if isinstance(value, float) and value >= 10 else 3
        lines.append((figure, _num(value, "", digits), target, _verdict(met), held))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(t.rstrip() for t in text)


# -- replicas on PostgreSQL (the scale phase) -----------------------------------------------------

SCALE_RUNS = (
    ("sqlite_1", "1 hub on SQLite"),
    ("postgresql_1", "1 replica on PostgreSQL"),
    ("postgresql_2", "2 replicas on PostgreSQL"),
    ("postgresql_3", "3 replicas on PostgreSQL"),
)


def _cpu_cell(per_event: dict[str, Any]) -> str:
    names = (("hubs", "hubs"), ("broker", "broker"), ("postgresql", "PG"))
    return " / ".join(f"{label} {_num(per_event.get(key), '', 3)}" for key, label in names)


def _scale_run_rows(label: str, run: dict[str, Any]) -> list[Row]:
    if "error" in run:
        return _failed(f"  {label}", run)
    return [
        (f"  {label}", _num(run["events_per_s"], " events/s"), "", ""),
        ("    / raw ceiling", _num(run.get("ratio_to_relay"), "", 2), "(reference)", ""),
        ("    / SQLite", _num(run.get("ratio_to_sqlite"), "", 2), "", ""),
        ("    CPU ms/event", _cpu_cell(run["cpu_ms_per_event"]), "", ""),
    ]


def _payment_rows(label: str, pay: dict[str, Any], judged: bool) -> list[Row]:
    """A payments run of the scale phase: its rate, its ratio (against the target when
    `judged`, else for reference) and where the machine's CPU went."""
    if "error" in pay:
        return _failed(f"  {label}", pay)
    if not pay:
        return []
    ratio_ = pay["ratio_to_relay"]
    target, verdict = ("(reference)", "")
    if judged:
        met = None if ratio_ is None else ratio_ >= PAYMENT_RATIO_TARGET
        target, verdict = f">= {PAYMENT_RATIO_TARGET}", _verdict(met)
    return [
        (f"  {label}", _num(pay["callbacks_per_s"], " /s"), "", ""),
        ("    / raw ceiling", _num(ratio_, "", 2), target, verdict),
        ("    where the CPU went", machine_held(pay), "", ""),
    ]


def _scale_flow_rows(sc: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    out += _payment_rows("payment callbacks on PostgreSQL", sc.get("payments_postgresql", {}), True)
    out += _payment_rows(
        "payment callbacks on PostgreSQL, 2 replicas",
        sc.get("payments_postgresql_2_replicas", {}),
        False,
    )
    axis = sc.get("axis_postgresql", {})
    if "error" in axis:
        out += _failed("  50 KB axis documents on PostgreSQL", axis)
    elif axis:
        out += [
            ("  50 KB axis documents on PostgreSQL, receive",
             _num(axis["receive_documents_per_s"], " /s", 1), "", ""),
            ("  50 KB axis documents on PostgreSQL, send",
             _num(axis["send_documents_per_s"], " /s", 1), "", ""),
        ]  # fmt: skip
    return out


def _scale_rows(sc: dict[str, Any]) -> list[Row]:
    if "error" in sc:
        return _failed("scale (replicas on PostgreSQL)", sc)
    out: list[Row] = [
        ("scale: raw relay ceiling", _num(sc["relay_baseline"]["messages_per_s"], " msg/s"),
         "(reference)", ""),
        ("  dossier events (closed loop)", "", "", ""),
    ]  # fmt: skip
    runs = sc.get("dossiers", {})
    for key, label in SCALE_RUNS:
        if key in runs:
            out += _scale_run_rows(label, runs[key])
    out += _scale_flow_rows(sc)
    for key, label in (("replica_kill", "replica kill"), ("broker_node_kill", "broker-node kill")):
        figures = sc.get("failover", {}).get(key, {})
        if "error" in figures:
            out += _failed(f"  failover pause, {label}", figures)
        elif figures:
            out.append((f"  failover pause, {label}", _num(figures["pause_s"], " s", 2), "", ""))
    return out


def scale_details(sc: dict[str, Any]) -> list[str]:
    """The projection to 8 and 32 cores, in words, from the phase's measured CPU per event."""
    proj = sc.get("projection")
    if not proj:
        return []
    cost = proj["cpu_ms_per_event"]
    lines = [
        f"  scale: projection from {proj['basis']} (CPU ms per event: hub shared by the replicas "
        f"{cost['hub_parallel']:.3f}, hub on the active consumer only {cost['hub_serial']:.3f}, "
        f"broker {cost['broker']:.3f}, PostgreSQL {cost['postgresql']:.3f}; the load "
        "generator's own CPU left out). The broker and PostgreSQL are serial parts, a core "
        "each; the replicas take the other cores; one replica is the active consumer of the "
        "DVCQG work queue and carries all delivery work."
    ]
    for machine in proj["machines"]:
        limits = ", ".join(
            f"{name} {_num(value, '/s')}" for name, value in machine["limits_events_per_s"].items()
        )
        lines.append(
            f"    {machine['cores']} cores ({machine['replicas']} replica(s)): "
            f"{_num(machine['events_per_s'], ' events/s')}, held by {machine['bottleneck']}, "
            f"then {machine['next']} ({limits})"
        )
    return lines
