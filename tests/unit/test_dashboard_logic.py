"""The dashboard's pure parts: lag histograms, connector stats and state, charts, input checks,
the dossier timeline, and the two language catalogues."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from hub.cli import main
from hub.dashboard import checks, i18n
from hub.dashboard.api import unavailable
from hub.dashboard.board import SAMPLE_MARGIN_S, interval_start, until_next_interval
from hub.dashboard.formats import clock
from hub.dashboard.pages import BASE, NAV, _env
from hub.dashboard.timeline import timeline_page
from hub.errors import StoreUnavailable
from hub.outage import State
from hub.plugins import built_in
from hub.store.base import DeliveryEntry, DossierView, HistoryEntry
from hub.synclag import RATIO, bucket_of, bucket_value_s, percentiles
from hub.watch import ConnectorStats

ROOT = Path(__file__).resolve().parents[2]


@given(st.floats(min_value=0.002, max_value=10 * 86400))
def test_a_lag_reads_back_within_half_a_bucket(lag_s: float) -> None:
    value = bucket_value_s(bucket_of(lag_s))
    assert lag_s / math.sqrt(RATIO) * 0.999 <= value <= lag_s * math.sqrt(RATIO) * 1.001


def test_sub_millisecond_and_negative_lags_are_bucket_zero() -> None:
    assert bucket_of(0.0005) == bucket_of(-3) == 0
    assert bucket_value_s(0) == 0.0


def test_percentiles_are_nearest_rank_of_the_histogram() -> None:
    rng = random.Random(7)
    lags = [rng.uniform(0.1, 600) for _ in range(1001)]
    counts: dict[int, int] = {}
    for lag in lags:
        counts[bucket_of(lag)] = counts.get(bucket_of(lag), 0) + 1
    found = percentiles(counts, (0.5, 0.95, 1.0))
    ordered = sorted(lags)
    for q in (0.5, 0.95, 1.0):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        value = found[q]
        assert value is not None
        assert abs(value - exact) / exact <= math.sqrt(RATIO) - 1 + 1e-9
    assert percentiles({}, (0.5,)) == {0.5: None}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_connector_stats_count_rates_failures_and_the_oldest_held() -> None:
    clock = Clock()
    stats = ConnectorStats(clock)
    stats.took(1, clock.now - 30)
    stats.took(2, None)
    clock.now += 60
    assert stats.oldest_held_age_s() == pytest.approx(90)
    stats.settled(1, "done")
    stats.settled(2, "parked", "refused: 0912345678", "m-2", "CODE")
    assert stats.oldest_held_age_s() is None
    per_min, error_rate = stats.rates()
    assert (stats.done, stats.parked, error_rate) == (1, 1, 0.5)
    assert per_min == pytest.approx(1.0)
    assert stats.failures[0].message_id == "m-2"
    assert stats.last_success_at == clock.now
    clock.now += 600  # outside the window: the rates forget, the totals do not
    assert stats.rates() == (0.0, None)
    stats.took(3, None)
    stats.released(3)
    assert stats.oldest_held_age_s() is None


@pytest.mark.parametrize("text", ["", " ", "x" * 65, "a\x00b", "\u202e"])
def test_search_text_refuses_nonsense(text: str) -> None:
    with pytest.raises(checks.BadInput):
        checks.search_text(text)


def test_input_checks() -> None:
    assert checks.search_text(" 000.00 ") == "000.00"
    assert checks.message_ids(["a", "a", "b"]) == ["a", "b"]
    for bad in ([], "a", [1], ["x" * 201], ["ok"] * 1001):
        with pytest.raises(checks.BadInput):
            checks.message_ids(bad)
    assert checks.moment("since", "2026-11-23T08:00") == datetime(2026, 11, 23, 8, tzinfo=UTC)
    with pytest.raises(checks.BadInput):
        checks.moment("since", "tomorrow")
    with pytest.raises(checks.BadInput):
        checks.number("hours", "1e9", 24, 0.1, 336)
    assert checks.code("x" * 101) is None


def test_the_timeline_orders_hops_and_masks_payloads() -> None:
    event = {
        "event_id": "e1",
        "vendor_status": "TIEP_NHAN",
        "record": {"owner_name": "Nguyễn Văn An", "phone": "0912345678"},
    }
    view = DossierView(
        snapshot=None,
        confirmed={},
        history=[
            HistoryEntry(
                1, "record", 2, "t", "2026-11-23T01:00:00+00:00", "onestop", True, {}, event
            ),
            HistoryEntry(
                2,
                "step",
                1,
                "t",
                "2026-11-23T01:05:00+00:00",
                "onestop",
                False,
                {"national_portal": "2026-11-23T01:06:00+00:00"},
                {"event_id": "e2"},
            ),
        ],
        deliveries=[
            DeliveryEntry(
                "national_portal", "parked", "refused 0912345678", "2026-11-23T01:02:00+00:00"
            ),
            DeliveryEntry("national_portal", "delivered", "version 1", "2026-11-23T01:04:00+00:00"),
        ],
    )
    hops = timeline_page(view, size=100, page=0).hops  # newest first
    assert [h.kind for h in hops] == [
        "confirmed",
        "late",
        "mapped",
        "received",
        "delivered",
        "parked",
        "queued",
        "mapped",
        "received",
    ]
    assert hops[0].actor == "national_portal"
    assert hops[-2].label == "TIEP_NHAN → accepted"
    assert hops[-1].payload["record"]["phone"]  # shown, masked
    shown = repr([h.as_json() for h in hops])
    assert "0912345678" not in shown
    assert "Nguyễn Văn An" not in shown


def test_both_languages_have_the_same_words() -> None:
    vi, en = i18n.catalogue("vi"), i18n.catalogue("en")
    assert set(vi) == set(en)
    assert i18n.pick(None, None) == "vi"
    assert i18n.pick("en", "vi") == "en"
    assert i18n.pick("xx", "en") == "en"
    assert i18n.translate("en", "login.locked", minutes=5).endswith("5 minutes.")
    assert i18n.translate("vi", "no.such.key") == "no.such.key"


def test_each_connector_brings_its_page_words_in_both_languages() -> None:
    """A connector's flow page is named by words in its own package, not the core's."""
    flows = {
        "national_portal": "procedures",
        "payment_platform": "payments",
        "ministry": "ministries",
        "vdxp": "vdxp",
    }
    for connector in built_in():
        if connector.locale is None:
            continue
        vi, en = (i18n.read(connector.locale, lang) for lang in i18n.LANGUAGES)
        assert set(vi) == set(en), connector.name
        key = flows[connector.name]
        assert {f"nav.{key}", f"flow.{key}"} <= set(vi), connector.name
        assert f"nav.{key}" not in i18n.read("hub.dashboard", "vi"), "the core names no flow"
    i18n.add_words("connectors.vdxp")
    assert i18n.translate("en", "flow.vdxp") == "Document interchange axis (VDXP)"


def test_every_state_has_words_in_both_languages_and_the_old_one_is_gone() -> None:
    for lang in i18n.LANGUAGES:
        words = i18n.catalogue(lang)
        for state in State:
            assert f"state.{state}" in words, (lang, state)
        assert "state.circuit_open" not in words
        assert "{time}" in words["state.since"]
        assert "{time}" in words["stale.notice"]


def test_a_since_is_the_time_alone_today_and_the_date_too_before() -> None:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 16:00 in Hà Nội
    assert clock("2026-11-23T23:40:01+00:00", now) == "06:40:01"  # 24 Nov, UTC+7
    assert clock("2026-11-23T16:59:59+00:00", now) == "2026-11-23 23:59:59"
    assert clock(None, now) == "-"
    assert clock("not a time", now) == "not a time"


def test_a_pause_reason_is_one_short_printable_line() -> None:
    assert checks.pause_reason(None) == ""
    assert checks.pause_reason("  bảo trì  ") == "bảo trì"
    for bad in ("x" * 201, "a\x00b", "a\nb", 7, ["x"]):
        with pytest.raises(checks.BadInput):
            checks.pause_reason(bad)


def _card(state: State, since: str | None, reason: str) -> dict[str, object]:
    return {
        "name": f"c_{state}",
        "kind": "queue",
        "state": str(state),
        "since": since,
        "reason": reason,
        "last_success_at": None,
        "throughput_per_min": None,
        "error_rate": None,
        "queue_depth": 3,
        "oldest_waiting_s": None,
        "dead_letters": 0,
        "rate_window_s": 300,
    }


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_overview_shows_each_state_with_its_reason_and_since(lang: str) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    reasons = {
        State.up: "",
        State.degraded: "12% of the messages settled failed",
        State.down: "HTTP 503 from DVCQG",
        State.credentials_refused: "DVCQG refused the hub's credentials",
        State.paused: "paused by alice: <b>maintenance</b>",
    }
    cards = [_card(s, None if s is State.degraded else since, r) for s, r in reasons.items()]

    def t(key: str, **values: object) -> str:
        return i18n.translate(lang, key, **values)

    html = _env.get_template("overview.html").render(
        t=t,
        lang=lang,
        switch_url="?",
        path=f"{BASE}/",
        query="",
        user=None,
        csrf="",
        nav=NAV,
        base=BASE,
        refresh_s=5,
        flash=None,
        data={
            "generated_at": since,
            "completeness": {
                "ratio": 1.0,
                "confirmed": 1,
                "unconfirmed": 0,
                "dossiers": 1,
                "min_ratio": 0.95,
                "below_min": False,
            },
            "lag": {
                "window_h": 24,
                "p50_s": 1.0,
                "p95_s": 2.0,
                "samples": 1,
                "p95_max_s": 3600,
                "over_max": False,
            },
            "connectors": cards,
        },
    )
    for state in reasons:
        assert f'class="card state-{state}"' in html
        assert t(f"state.{state}") in html
    assert html.count(t("state.since", time=clock(since))) == 4  # all but degraded
    assert "HTTP 503 from DVCQG" in html
    assert "<b>maintenance" not in html  # escaped
    assert 'data-testid="stale-notice"' in html
    assert t("stale.notice", time="{time}") in html  # the script fills in the time
    labels = html.split("data-labels='", 1)[1].split("'", 1)[0]
    assert set(json.loads(labels)) == {str(s) for s in State}


def test_check_config_names_the_dashboard_users_and_warns(tmp_path: Path) -> None:
    raw = {
        "mappings_dir": str(ROOT / "mappings"),
        "dashboard": {
            "users": {
                "an": {"password_hash": "$argon2id$x", "role": "operator"},
                "binh": {"password_hash": "$argon2id$y", "role": "viewer"},
            }
        },
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "dashboard: /dashboard/ and /api/v1/admin/; 1 operator(s), 1 viewer(s)" in result.output
    raw["dashboard"] = {"users": {}, "cookie_secure": False}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)])
    assert "nobody can log in" in result.output
    assert "cookie_secure is off" in result.output
    raw["dashboard"] = {"users": {"x": {"password_hash": "h", "role": "root"}}}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert CliRunner().invoke(main, ["check-config", "-c", str(path)]).exit_code == 1


async def test_a_store_outage_answers_503_on_the_dashboard_only() -> None:
    async def broken(_: web.Request) -> web.Response:
        raise StoreUnavailable("store read failed: disk I/O error")

    app = web.Application(middlewares=[unavailable])
    app.add_routes([web.get("/dashboard/", broken), web.get("/api/v1/other", broken)])
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/dashboard/")
        assert r.status == 503
        assert (await r.json())["error"] == "unavailable"
        assert (await client.get("/api/v1/other")).status == 500


def test_a_long_timeline_shows_page_by_page_newest_first_with_payloads_masked() -> None:
    history = [
        HistoryEntry(
            i,
            "step",
            4,
            "t",
            f"2026-11-23T01:{i:02d}:00+00:00",
            "onestop",
            True,
            {},
            {"event_id": f"e{i}", "record": {"phone": "0912345678"}},
        )
        for i in range(10)
    ]
    view = DossierView(snapshot=None, confirmed={}, history=history, deliveries=[])
    newest = timeline_page(view, size=6, page=0)
    assert (newest.total, newest.first, len(newest.hops)) == (30, 0, 6)
    assert [h.kind for h in newest.hops] == ["queued", "mapped", "received"] * 2
    received = [h for h in newest.hops if h.kind == "received"]
    assert [h.event_id for h in received] == [9, 8]
    assert received[0].payload is not None
    assert "0912345678" not in repr(received[0].payload)
    oldest = timeline_page(view, size=6, page=4)
    assert (oldest.first, [h.event_id for h in oldest.hops if h.kind == "received"]) == (24, [1, 0])
    assert timeline_page(view, size=6, page=9).hops == []


def test_retries_in_a_row_show_as_one_hop_that_counts_them() -> None:
    def line(outcome: str, minute: int, connector: str = "national_portal") -> DeliveryEntry:
        return DeliveryEntry(
            connector, outcome, f"{outcome} {minute}", f"2026-11-23T01:{minute:02d}:00+00:00"
        )

    view = DossierView(
        snapshot=None,
        confirmed={},
        history=[],
        deliveries=[
            *(line("retry", m) for m in range(1, 8)),
            line("retry", 8, "ministry.civil_status"),
            line("parked", 9),
            line("retry", 10),
        ],
    )
    hops = timeline_page(view, size=100, page=0).hops
    assert [(h.kind, h.actor, h.count) for h in hops] == [
        ("retry", "national_portal", 1),
        ("parked", "national_portal", 1),
        ("retry", "ministry.civil_status", 1),
        ("retry", "national_portal", 7),
    ]
    seven = hops[-1]
    assert (seven.first_at, seven.at, seven.detail) == (
        "2026-11-23T01:01:00+00:00",
        "2026-11-23T01:07:00+00:00",
        "retry 7",
    )
    assert seven.as_json()["count"] == 7


def test_numbers_are_written_as_the_page_language_writes_them() -> None:
    from hub.dashboard.formats import duration, money, number, percent

    assert number(1382.49, "vi") == "1.382,49"
    assert number(1382.49, "en") == "1,382.49"
    assert number(2771, "vi") == "2.771"
    assert number(2_000_000, "en") == "2,000,000"
    assert money(150000, "vi") == "150.000 đ"
    assert money(150000, "en") == "150,000 VND"
    assert percent(0.9512, "vi") == "95,1 %"
    assert duration(60.4, "vi") == "60,4 s"
    assert duration(268 * 3600, "en") == "268.0 h"
    assert number(None, "vi") == "-"


def test_a_skipped_message_is_neither_throughput_nor_a_failure() -> None:
    from hub.watch import ConnectorStats

    now = [1_000_000.0]
    stats = ConnectorStats(clock=lambda: now[0])
    now[0] += 600
    for key in range(40):
        stats.took(key, None)
        stats.settled(key, "done")
    for key in range(40, 1000):
        stats.took(key, None)
        stats.settled(key, "skipped")
    per_min, error_rate = stats.rates()
    assert per_min == 40 / 5  # forty hand-offs over the five-minute window
    assert error_rate == 0.0
    assert (stats.done, stats.skipped) == (40, 960)
    assert stats.oldest_held_age_s() is None


@given(
    st.floats(min_value=1e9, max_value=2e9, allow_nan=False),
    st.sampled_from([0.5, 10.0, 60.0, 300.0]),
    # Short of the next boundary by more than a float's rounding at 1e9 s.
    st.floats(min_value=0, max_value=0.99),
)
def test_replicas_sampling_apart_stamp_the_interval_that_ended(
    now: float, interval: float, other_at: float
) -> None:
    """Two replicas waking anywhere in the same interval stamp the same start, the interval
    just before; each wakes just after the next boundary."""
    start = interval_start(now, interval)
    other = math.floor(now / interval) * interval + other_at * interval
    assert interval_start(other, interval) == start
    assert now - 2 * interval < start <= now - interval
    wake = now + until_next_interval(now, interval)
    assert wake > now
    assert interval_start(wake, interval) == pytest.approx(start + interval)
    assert wake - (start + 2 * interval) == pytest.approx(SAMPLE_MARGIN_S, abs=1e-6)
