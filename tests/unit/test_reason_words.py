"""Reasons and outage causes have words in both languages: every code the product can put in
the tables an operator reads during an outage (dead letters, the delivery journal behind a
dossier's why, its timeline and the stuck list, a connector's state and outage log, refused
payment callbacks, the flow tables' held-back and refused items), read from the sources that
raise them, and the raw text is never lost."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.national_portal.mapping import PortalCodes
from hub.dashboard import formats, i18n, reasons
from hub.outage import Cause
from hub.plugins import built_in

ROOT = Path(__file__).resolve().parents[2]
# Every error the hub parks, retries or journals with a code (`HubError.code`).
REFUSALS = (
    "DestinationRejected",
    "UnreadableReply",
    "PermanentError",
    "UndecodableMessage",
    "TransientError",
)


def words(package: str) -> dict[str, dict[str, str]]:
    return {lang: i18n.read(package, lang) for lang in i18n.LANGUAGES}


CORE = words("hub.dashboard")
CONNECTORS = {c.name: words(c.locale) for c in built_in() if c.locale}


def codes_raised(path: Path, names: tuple[str, ...]) -> Iterator[tuple[str | None, int]]:
    """The `code=` of each call to one of `names` in a source file: the constant, or None
    when it is computed (the destination's own code)."""
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in names:
            continue
        for kw in node.keywords:
            if kw.arg == "code":
                value = kw.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield value.value, node.lineno
                else:
                    yield None, node.lineno


def in_both(key: str, *catalogues: dict[str, dict[str, str]]) -> bool:
    return all(any(key in c[lang] for c in catalogues) for lang in i18n.LANGUAGES)


def test_every_outage_cause_and_core_reason_has_words_in_both_languages() -> None:
    assert set(reasons.CAUSES) == {c.value for c in Cause}
    for cause in reasons.CAUSES:
        assert in_both(f"cause.{cause}", CORE), cause
    for code in (*reasons.CORE_REASONS, "other", "raw"):
        assert in_both(f"reason.{code}", CORE), code


@pytest.mark.parametrize("package", ["hub", "connectors"])
def test_every_refusal_code_raised_in_the_sources_has_words(package: str) -> None:
    """Each `DestinationRejected(…, code=…)`, `UnreadableReply(…, code=…)` and the other
    errors the consumer parks or retries with a code (what the dead letters and the delivery
    journal keep): a constant code has words of its own (the connector's or the core's); a
    computed one (the destination's code) falls back on its connector's "refused, code …"."""
    checked = 0
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT)
        connector = rel.parts[1] if package == "connectors" else None
        own = [CONNECTORS[connector]] if connector in CONNECTORS else []
        for code, line in codes_raised(path, REFUSALS):
            checked += 1
            where = f"{rel}:{line}"
            if code is None:
                key = f"reason.{connector}.other" if own else "reason.other"
                assert in_both(key, CORE, *own), (where, key)
                continue
            keys = [f"reason.{connector}.{code}", f"reason.{code}"]
            assert any(in_both(k, CORE, *own) for k in keys), (where, code)
    assert checked > (0 if package == "hub" else 5), package


def test_every_code_a_ministry_hand_off_is_parked_with_has_words() -> None:
    """A hand-off the mapping cannot build or whose reply it cannot read is parked (and
    journaled) with the mapping's code (`connectors.ministry.sink.Unmapped`): every
    `ValidationFailed` code of the mapping and its field maps reads as the ministry's words."""
    i18n.add_words("connectors.ministry")
    ministry = CONNECTORS["ministry"]
    sources = [ROOT / "hub" / "fieldmap.py", ROOT / "connectors" / "ministry" / "mapping.py"]
    found = {c for p in sources for c, _ in codes_raised(p, ("ValidationFailed",)) if c}
    assert {"missing", "unknown_code", "mapping_error", "wrong_type", "no_submit"} <= found
    for code in sorted(found):
        assert in_both(f"reason.ministry.{code}", ministry), code
        worded = reasons.word("vi", "x", connector="ministry.tax", code=code)
        assert worded.words == ministry["vi"][f"reason.ministry.{code}"], code


def test_the_journal_codes_of_the_hub_itself_have_words() -> None:
    """The codes the consumer, the parking queue and the sinks write in the delivery journal
    themselves (not a destination's): a spent retry budget, the broker's delivery limit, a
    handler's crash, a message naming no dossier or one the hub does not hold."""
    for package in ("connectors.national_portal", "connectors.vdxp"):
        i18n.add_words(package)
    own = [
        *("retry_budget", "delivery_limit", "handler_crashed", "outcome_count"),
        *("no_dossier_code", "unknown_dossier", "no_event_id", "not_json", "not_object"),
    ]
    for code in own:
        assert in_both(f"reason.{code}", CORE), code
    for code in ("no_document_id", "unknown_transfer", "edxml_missing"):
        assert in_both(f"reason.vdxp.{code}", CONNECTORS["vdxp"]), code
    worded = reasons.word("vi", "dossier X is not in the store", connector="national_portal",
                          code="unknown_dossier")  # fmt: skip
    assert worded.words == CORE["vi"]["reason.unknown_dossier"]
    axis = reasons.word("vi", "the axis refused it: x", connector="vdxp", code="E42")
    assert axis.words == "Trục văn bản từ chối (mã E42)"


def test_dvcqg_item_codes_from_its_code_table_and_protocol_have_words() -> None:
    table = PortalCodes.load(ROOT / "mappings" / "national_portal.yaml")
    portal = CONNECTORS["national_portal"]
    for code in ("01", "03", "04", table.already_held, table.not_held, "07"):
        assert in_both(f"reason.national_portal.{code}", portal), code
    vi = reasons.word("vi", "DVCQG refused DongBoHoSoMC for X: 04 bad", connector="x", code="04")
    assert vi.words == "Hệ thống nhận từ chối (mã 04)"  # only the core's words here


def test_every_refused_payment_callback_code_has_words() -> None:
    """The callbacks table shows the refusal's code in words: every ValidationFailed code the
    callback door can give (its mapping, its route, the shared validator, `item_error`)."""
    payments = CONNECTORS["payment_platform"]
    sources = [
        ROOT / "connectors" / "payment_platform" / "mapping.py",
        ROOT / "connectors" / "payment_platform" / "routes.py",
        ROOT / "hub" / "validation.py",
    ]
    found = {c for p in sources for c, _ in codes_raised(p, ("ValidationFailed",)) if c}
    assert {"bad_signature", "unreadable", "invalid", "missing"} <= found
    for code in sorted(found):
        assert in_both(f"value.code.{code}", payments), code


def test_words_keep_the_raw_text_and_fill_in_their_values() -> None:
    for package in ("connectors.national_portal", "connectors.ministry"):
        i18n.add_words(package)
    raw = "DVCQG refused DongBoHoSoMC for 000.00.41.H41-261207-0001: 07 refused by a rule"
    worded = reasons.word("vi", raw, connector="national_portal", code="07")
    assert worded.words == "Cổng DVCQG từ chối theo quy tắc nghiệp vụ (mã 07)"
    assert worded.raw == raw
    assert worded.has_words
    other = reasons.word("en", raw, connector="national_portal", code="42")
    assert other.words == "DVCQG refused it (code 42)"
    ministry = reasons.word("vi", "tax refused", connector="ministry.tax", code="refused")
    assert ministry.words == "Hệ thống bộ ngành từ chối hồ sơ"
    cause = reasons.word("vi", "cannot reach DVCQG: OSError(111)", cause="connect_error")
    assert cause.words == "Không kết nối được tới hệ thống nhận"
    paused = reasons.word("vi", "paused by an: bảo trì", code="paused", args={"by": "an"})
    assert paused.words == "Tạm dừng bởi an"
    noted = reasons.word("vi", "x", code="paused", args={"by": "an", "note": "bảo trì"})
    assert noted.words == "Tạm dừng bởi an: bảo trì"
    limit = reasons.word("vi", "dead-lettered by the broker (delivery limit reached)")
    assert limit.code == "delivery_limit"
    spent = reasons.word("en", "retry budget spent (3 tiers): HTTP 500")
    assert spent.words == "Every allowed retry was spent"
    plain = reasons.word("vi", "something the hub never coded")
    assert (plain.words, plain.has_words) == ("something the hub never coded", False)


def _calls(path: Path, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")) == name:
                yield node


def _constant(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _function_codes(path: Path, function: str) -> set[str]:
    """The `ValidationFailed` codes one function of a module raises."""
    tree = ast.parse(path.read_text("utf-8"))
    found = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    return {
        c
        for node in ast.walk(found)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ValidationFailed"
        for kw in node.keywords
        if kw.arg == "code" and (c := _constant(kw.value))
    }


def _validation_codes(*paths: Path) -> set[str]:
    return {c for p in paths for c, _ in codes_raised(p, ("ValidationFailed",)) if c}


def flow_codes() -> dict[str, set[str]]:
    """Every code a flow table's refused or held-back items can carry, by connector, read
    from the sources that decide them."""
    from typing import get_args

    from connectors.ministry.intake import NOT_OURS
    from connectors.vdxp.edxml import EdxmlErrorCode

    portal, ministry, vdxp = (
        ROOT / "connectors" / c for c in ("national_portal", "ministry", "vdxp")
    )
    # The catalogue: a Refused's code (its fifth value), or the mapping's ValidationFailed.
    catalogue = {
        c for call in _calls(portal / "catalogue.py", "Refused") if (c := _constant(call.args[4]))
    }
    catalogue |= _validation_codes(portal / "catalogue_mapping.py")
    catalogue |= _function_codes(portal / "mapping.py", "wire_error")
    catalogue |= _function_codes(ROOT / "hub" / "validation.py", "parse_vnd")
    # A ministry's results: the mapping's codes, and those the intake quarantines with itself.
    results = _validation_codes(ROOT / "hub" / "fieldmap.py", ministry / "mapping.py")
    results |= {NOT_OURS}
    results |= {
        c
        for call in _calls(ministry / "intake.py", "_quarantine")
        for arg in call.args
        if (c := _constant(arg))
    }
    # The axis's intake: edXML's codes, the intake's own refusals, an unreadable download.
    axis = set(get_args(EdxmlErrorCode))
    axis |= {c for call in _calls(vdxp / "intake.py", "Refused") if (c := _constant(call.args[0]))}
    axis |= {
        c
        for p in (vdxp / "client.py", ROOT / "hub" / "httputil.py")
        for c, _ in codes_raised(p, ("UnreadableReply",))
        if c
    }
    return {"national_portal": catalogue, "ministry": results, "vdxp": axis}


def test_every_code_a_flow_table_holds_an_item_back_with_has_words() -> None:
    """The catalogue's held-back records, a ministry's held-back results and the axis's
    refused intake show their reason as words by code (`value.code.<code>`), in both
    languages, the hub's own text folded beside (the callbacks table's way)."""
    found = flow_codes()
    assert {"missing", "not_json", "not_found", "code_mismatch", "bad_amount"} <= found[
        "national_portal"
    ]
    assert {"not_handed_to_system", "conflicting_id", "mapping_error"} <= found["ministry"]
    assert {"malformed", "unknown_organ", "not_addressed", "oversized"} <= found["vdxp"]
    for connector, codes in found.items():
        i18n.add_words(f"connectors.{connector}")
        for code in sorted(codes):
            assert in_both(f"value.code.{code}", CONNECTORS[connector]), (connector, code)
            shown = formats.cell(
                "vi", {"key": "reason_code", "kind": "value", "words": "code"}, code
            )
            assert shown == CONNECTORS[connector]["vi"][f"value.code.{code}"], (connector, code)


def test_each_flow_table_words_its_reason_code_and_folds_its_text() -> None:
    """In every flow table with a reason, the reason's code is a `value` column read in the
    refusal codes' words and the hub's own text a `detail` column (folded away on the page)."""
    from connectors.ministry import dashboard as ministry
    from connectors.national_portal import dashboard as portal
    from connectors.payment_platform import dashboard as payments
    from connectors.vdxp import dashboard as vdxp

    tables = 0
    for module in (portal, payments, ministry, vdxp):
        for call in _calls(Path(module.__file__ or ""), "table"):
            columns = {
                _constant(c.args[0]): c
                for c in ast.walk(call.args[1])
                if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "Column"
            }
            if "reason" not in columns:
                continue
            tables += 1
            reason = columns["reason"]
            assert _constant(reason.args[1]) == "detail", (module.__name__, call.lineno)
            coded = [
                c
                for key, c in columns.items()
                if len(c.args) > 1
                and _constant(c.args[1]) == "value"
                and (
                    key == "code"
                    or any(kw.arg == "words" and _constant(kw.value) == "code" for kw in c.keywords)
                )
            ]
            assert coded, (module.__name__, call.lineno)
    assert tables == 4  # held records, callbacks, held results, the axis's intake
