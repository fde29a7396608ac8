"""The flow pages' pure parts: filtering, paging, totals and CSV of a flow table; how each
kind of value reads; connectors' display names; every word a flow page needs, in both
languages, with no two connectors giving one key different words; the charts' plans."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest

from hub.dashboard import charts, flows, formats, i18n
from hub.plugins import built_in


@pytest.fixture(autouse=True)
def _payment_words() -> None:
    i18n.add_words("connectors.payment_platform")


COLUMNS = [
    flows.Column("paid_at", "time"),
    flows.Column("dossier_code", "dossier"),
    flows.Column("amount_vnd", "money"),
    flows.Column("outcome", "value", filter=True),
    flows.Column("reason"),
]


def _rows(n: int) -> list[dict[str, Any]]:
    # Newest first, one an hour back from 2026-12-06 10:00 UTC (17:00 in Vietnam).
    return [
        {
            "paid_at": datetime(2026, 12, 6, 10 - i % 10, tzinfo=UTC)
            .replace(day=6 - i // 10)
            .isoformat(),
            "dossier_code": f"000.00.41.H41-261206-{i:04d}",
            "amount_vnd": 150_000,
            "outcome": "failed" if i % 3 == 0 else "paid",
            "reason": "=cmd()" if i == 0 else f"lý do {i}",
            "ignored": "not a column",
        }
        for i in range(n)
    ]


def _label(lang: str = "vi") -> flows.Label:
    return lambda column, value: formats.cell(lang, column, value)


def _select(params: dict[str, str], rows: int = 60, window: int = flows.WINDOW) -> dict[str, Any]:
    tab = flows.table("payments", COLUMNS, _rows(rows), window)
    query = flows.query_of("payments", tab["columns"], params)
    return flows.select(tab, query, _label())


def test_a_table_keeps_its_columns_only_and_pages_newest_first() -> None:
    first = _select({})
    assert first["total"] == 60
    assert first["pages"] == 3
    assert first["page"] == 0
    assert len(first["rows"]) == flows.PER_PAGE
    assert "ignored" not in first["rows"][0]
    assert first["rows"][0]["dossier_code"].endswith("-0000")
    last = _select({"payments-page": "2"})
    assert [r["dossier_code"][-4:] for r in last["rows"]] == [f"{i:04d}" for i in range(50, 60)]
    assert _select({"payments-page": "99"})["page"] == 2  # past the end: the last page
    assert _select({"payments-page": "x"})["page"] == 0
    assert first["sums"] == {"amount_vnd": 60 * 150_000}
    assert first["options"] == {"outcome": ["failed", "paid"]}
    assert not first["capped"]
    assert _select({}, rows=60, window=60)["capped"]


def test_filters_by_value_by_text_in_either_form_and_by_local_day() -> None:
    failed = _select({"payments-outcome": "failed"})
    assert failed["total"] == 20
    assert failed["sums"]["amount_vnd"] == 20 * 150_000
    # The text a person reads matches too: the value's words, not only its code.
    assert _select({"payments-q": "KHÔNG THÀNH CÔNG"})["total"] == 20
    assert _select({"payments-q": "261206-0042"})["total"] == 1
    day = _select({"payments-since": "2026-12-05", "payments-until": "2026-12-05"})
    assert day["total"] == 10
    for row in day["rows"]:
        local = flows.local_moment(row["paid_at"])
        assert local is not None
        assert local.date() == date(2026, 12, 5)
    # A day is the province's: 4 December 17:30 UTC is already the 5th in Vietnam.
    edge = flows.table(
        "t",
        COLUMNS,
        [{"paid_at": "2026-12-04T17:30:00+00:00"}, {"paid_at": "2026-12-04T16:59:59+00:00"}],
    )
    on_5th = flows.select(
        edge, flows.query_of("t", edge["columns"], {"t-since": "2026-12-05"}), _label()
    )
    assert [r["paid_at"] for r in on_5th["rows"]] == ["2026-12-04T17:30:00+00:00"]
    with pytest.raises(flows.BadFilter):
        _select({"payments-since": "06/12/2026"})
    # Another table's parameters are not this one's.
    assert _select({"callbacks-outcome": "failed"})["total"] == 60


def test_the_csv_has_every_matching_row_as_the_page_reads_it() -> None:
    tab = flows.table("payments", COLUMNS, _rows(60))
    query = flows.query_of("payments", tab["columns"], {"payments-outcome": "failed"})
    selected = flows.select(tab, query, _label(), per_page=None)
    text = flows.to_csv(selected, lambda c: i18n.translate("vi", f"col.payments.{c}"), _label())
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 1 + 20
    assert rows[1][0] == "2026-12-06 17:00:00"  # UTC+7, to the second
    assert rows[1][2] == "150.000 đ"
    assert rows[1][4] == "'=cmd()"  # never a formula in a spreadsheet
    assert {r[3] for r in rows[1:]} == {"Không thành công"}
    assert rows[0][:4] == ["Thời điểm giao dịch", "Mã hồ sơ", "Số tiền", "Kết quả"]


def test_values_read_as_their_kind_says() -> None:
    i18n.add_words("connectors.payment_platform")
    i18n.add_words("connectors.ministry")
    i18n.add_words("connectors.national_portal")
    cell = formats.cell
    assert cell("vi", {"key": "outcome", "kind": "value"}, "paid") == "Đã thanh toán"
    assert cell("en", {"key": "outcome", "kind": "value"}, "paid") == "Paid"
    assert cell("vi", {"key": "outcome", "kind": "value"}, "new_code") == "new_code"
    assert cell("vi", {"key": "status", "kind": "value"}, "accepted") == "Được tiếp nhận"
    assert cell("vi", {"key": "x", "kind": "money"}, 1_382_490) == "1.382.490 đ"
    assert cell("en", {"key": "x", "kind": "money"}, 150_000) == "150,000 VND"
    assert cell("vi", {"key": "x", "kind": "time"}, "2026-12-06T10:00:00.123456+00:00") == (
        "2026-12-06 17:00:00"
    )
    assert cell("vi", {"key": "x", "kind": "time"}, "2026-12-06T10:00:00") == "2026-12-06 17:00:00"
    assert cell("vi", {"key": "x", "kind": "text"}, None) == "-"
    assert cell("vi", {"key": "counts", "kind": "counts"}, {"done": 3, "failed": 1}) == (
        "đã đọc: 3, lỗi: 1"
    )
    assert cell("vi", {"key": "system", "kind": "connector"}, "ministry.tax") == (
        "Hệ thống bộ ngành “tax”"
    )


def test_connectors_go_by_their_display_names() -> None:
    i18n.add_words("connectors.national_portal")
    assert formats.connector_name("national_portal", "vi") == "Cổng DVCQG"
    assert formats.connector_name("national_portal.catalogue", "vi") == (
        "Danh mục TTHC (Cổng DVCQG)"
    )
    assert formats.connector_name("one_stop", "vi") == "Hệ thống một cửa điện tử"
    names = {"ministry.tax": "Hệ thống quản lý thuế"}
    assert formats.connector_name("ministry.tax", "vi", names) == "Hệ thống quản lý thuế"
    assert formats.connector_name("something_else", "vi") == "something_else"


def _flow_words() -> dict[str, dict[str, dict[str, str]]]:
    """Each connector's words, by connector and language."""
    return {
        c.name: {lang: i18n.read(c.locale, lang) for lang in i18n.LANGUAGES}
        for c in built_in()
        if c.locale
    }


def test_no_two_connectors_give_one_key_different_words() -> None:
    """The catalogues merge into one: a key two connectors both define must read the same."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    core = {lang: i18n.read("hub.dashboard", lang) for lang in i18n.LANGUAGES}
    for name, by_lang in _flow_words().items():
        for lang, words in by_lang.items():
            for key, text in words.items():
                assert key not in core[lang] or core[lang][key] == text, (name, key)
                other = seen.setdefault((lang, key), (name, text))
                assert other[1] == text, (key, other[0], name)


def test_the_glossary_words_and_none_of_those_to_avoid() -> None:
    """DOMAIN.md's words operators use: tin lỗi, loại bỏ, tạm giữ; never thư lỗi, hàng đợi
    đỗ, hủy, cách ly, cầu dao."""
    words = dict(i18n.read("hub.dashboard", "vi"))
    for by_lang in _flow_words().values():
        words.update(by_lang["vi"])
    text = " ".join(words.values()).casefold()
    for avoid in ("thư lỗi", "hàng đợi đỗ", "hủy", "cách ly", "cầu dao", "«"):
        assert avoid not in text, avoid
    assert words["nav.dead_letters"] == "Tin lỗi"
    assert words["dead.discard"] == "Loại bỏ"
    assert "tạm giữ" in words["table.quarantine"].casefold()


def test_every_flow_column_and_fact_has_words_in_both_languages() -> None:
    """Read from the flows' sources: each `Column("…")` of a table and each `fact("…")`."""
    import ast
    import inspect

    from connectors.ministry import dashboard as ministry
    from connectors.national_portal import dashboard as portal
    from connectors.payment_platform import dashboard as payments
    from connectors.vdxp import dashboard as vdxp

    for module, connector in (
        (portal, "national_portal"),
        (payments, "payment_platform"),
        (ministry, "ministry"),
        (vdxp, "vdxp"),
    ):
        by_lang = _flow_words()[connector]
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "table"):
                continue
            key = ast.literal_eval(node.args[0])
            columns = [
                ast.literal_eval(c.args[0])
                for c in ast.walk(node.args[1])
                if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "Column"
            ]
            assert columns, key
            for lang, words in by_lang.items():
                assert f"table.{key}" in words, (lang, key)
                for column in columns:
                    assert f"col.{key}.{column}" in words, (lang, key, column)
        facts = [
            ast.literal_eval(n.args[0])
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "fact"
        ]
        for lang, words in by_lang.items():
            for name in facts:
                assert f"fact.{name}" in words, (lang, name)


# -- charts -----------------------------------------------------------------------------------


def test_value_ticks_are_round() -> None:
    assert [charts.nice_max(v) for v in (0, 0.7, 3, 11, 480)] == [1, 1, 5, 20, 500]
    assert charts.value_ticks(1) == [0, 0.2, 0.4, 0.6, 0.8, 1]
    assert charts.value_ticks(20) == [0, 5, 10, 15, 20]
    assert charts.value_ticks(500) == [0, 100, 200, 300, 400, 500]


def test_time_ticks_fall_on_round_local_times() -> None:
    start = datetime(2026, 12, 6, 1, 7, tzinfo=UTC).timestamp()
    ticks = charts.time_ticks(start, start + 24 * 3600)
    labels = [charts.time_label(t, False) for t in ticks]
    assert labels[:3] == ["09:00", "12:00", "15:00"]  # every 3 hours, at local full hours
    assert len(ticks) <= charts.MAX_TIME_TICKS
    hour = charts.time_ticks(start, start + 3600)
    assert [charts.time_label(t, False) for t in hour] == [
        "08:10",
        "08:20",
        "08:30",
        "08:40",
        "08:50",
        "09:00",
    ]


def test_a_chart_plan_spans_the_range_breaks_at_gaps_and_scales_its_unit() -> None:
    start = datetime(2026, 12, 6, 0, 0, tzinfo=UTC).timestamp()
    points: list[tuple[float, float | None]] = [(start + 60 * i, 7200.0 * i) for i in (1, 2, 30)]
    gapped = charts.with_gaps(points, 60)
    assert [v for _, v in gapped] == [7200.0, 14400.0, None, 216000.0]
    scale, unit = charts.seconds_unit(216000)
    assert (scale, unit) == (3600.0, "h")
    plan = charts.line_chart(
        "Độ trễ",
        [("p95", gapped)],
        start=start,
        end=start + 3600,
        unit=unit,
        number=lambda v: formats.grouped(v, 0, "vi"),
        scale=scale,
    )
    assert plan["x"]["min"] == start * 1000
    assert plan["x"]["max"] == (start + 3600) * 1000
    assert plan["y"]["max"] == 100
    assert [t[1] for t in plan["y"]["ticks"]][-1] == "100"
    first = plan["series"][0]["points"][0]
    assert first[1] == 2.0
    assert first[2] == "2026-12-06 07:01:00"
    assert first[3] == "2 h"
    assert plan["series"][0]["points"][2][1] is None
    assert charts.line_chart("x", [], start=start, end=start + 60)["empty"]
