"""What the bad-input corpus found at the ministry push door, the log-in doors and the axis
transfer door (tests/integration/test_corpus_ministry_door.py, test_corpus_login_doors.py,
test_corpus_transfer_door.py), each pinned here without HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from connectors.ministry.auth import hmac_signature, verify_hmac
from connectors.ministry.config import HmacAuth
from connectors.ministry.intake import _kept
from connectors.ministry.mapping import MAX_DOCUMENT_DEPTH, MappingFailed, MinistryMapping, as_json
from connectors.webhook.client import WebhookClient
from hub.errors import DestinationRejected, ValidationFailed
from hub.masking import mask_text
from hub.subscribers import SubscriberConfig
from schemas.canonical import content_id
from schemas.text import one_line

ROOT = Path(__file__).resolve().parents[2]
CIVIL = MinistryMapping.load(ROOT / "mappings" / "ministry_civil_status.yaml")
STAMP = 1_700_000_000
HMAC = HmacAuth(kind="hmac", key_id="hub-key", secret=SecretStr("bi-mat"))
PATH = "/api/v1/ministries/civil_status/results"


def nested(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def civil_result(**changes: Any) -> dict[str, Any]:
    item = {
        "id": "KQ-1",
        "maHoSo": "000.00.41.H41-261101-0001",
        "trangThai": "DA_DANG_KY",
        "thoiDiem": "2026-11-20T10:00:00+07:00",
    }
    return {**item, **changes}


@pytest.mark.parametrize(
    "text", ["x" * 200_000, "0" * 200_000, "ệ" * 200_000, "a.b@c" * 40_000, "0912345678 " * 20_000]
)
def test_masking_a_long_run_takes_linear_time(text: str) -> None:
    """Each pattern was tried from every character of a run: minutes of a core for 200,000
    characters of one letter (a pushed field too long, kept masked), the hub held up."""
    start = time.monotonic()
    mask_text(text)
    assert time.monotonic() - start < 5.0  # linear: well under a second; quadratic: minutes


def test_masking_still_finds_what_it_masks() -> None:
    masked = mask_text("viết cho an.nguyen@example.vn hoặc gọi 0912345678.")
    assert "an.nguyen" not in masked
    assert "0912345678" not in masked
    assert "@example.vn" in masked


def test_a_payload_holding_a_lone_surrogate_still_has_an_id() -> None:
    assert content_id({"a": "\ud800"}) != content_id({"a": "\udc00"})
    assert content_id({"a": "x"}) == content_id({"a": "x"})


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("id", "KQ-\ud800"),
        ("id", "KQ-\x1b1"),
        ("id", "KQ-\u202e1"),
        ("id", "KQ\r\n1"),
        ("id", "KQ\t1"),
        ("maHoSo", "000.00.41.H41-261101-\ud8000001"),
        ("maHoSo", "000.00.41.H41-261101-\n0001"),
    ],
)
def test_a_result_id_or_dossier_code_that_is_no_one_line_text_is_refused(
    field: str, bad: str
) -> None:
    """Such an id reached the store (500), or the one-stop's `X-Hub-Event-Id` header, which
    no HTTP client sends: the subscriber counted as down, every event held back."""
    with pytest.raises(ValidationFailed) as refused:
        CIVIL.result("civil_status", civil_result(**{field: bad}))
    assert refused.value.code == "invalid"


def test_one_line_text_keeps_real_characters() -> None:
    assert one_line("KQ-1 Trần 漢字 👩‍👩‍👧") == "KQ-1 Trần 漢字 👩‍👩‍👧"
    with pytest.raises(ValueError, match="line break"):
        one_line("a\rb")


def test_a_document_nested_too_deep_is_a_mapping_failure_not_a_crash() -> None:
    """Python ran out of stack on an item 900 levels deep (500); now the mapping refuses it,
    and what operators keep of it is the reason."""
    deep = civil_result(ghiChu=nested(900))
    with pytest.raises(MappingFailed) as failed:
        CIVIL.result("civil_status", deep)
    assert failed.value.at == "document"
    with pytest.raises(MappingFailed):
        CIVIL.pushed_items({"ketQua": [deep]})
    kept, fingerprint = _kept(deep)
    assert "deeper" in kept["unreadable"]
    assert fingerprint.startswith("sha256:")
    assert as_json(nested(MAX_DOCUMENT_DEPTH - 1)) == nested(MAX_DOCUMENT_DEPTH - 1)


@pytest.mark.parametrize(
    "stamp", ["9" * 400, "-" + "9" * 400, "9" * 5000, "١٧٠٠٠٠٠٠٠٠", "1_700_000_000", "+1700000000"]
)
def test_a_timestamp_that_is_no_unix_seconds_is_refused(stamp: str) -> None:
    """Four hundred nines are an int, too large to subtract from the clock (500)."""
    signature = hmac_signature("bi-mat", "POST", PATH, stamp, b"{}")
    headers = {"X-Api-Key": "hub-key", "X-Timestamp": stamp, "X-Signature": signature}
    assert verify_hmac(HMAC, "POST", PATH, headers, b"{}", STAMP) == "timestamp is not unix seconds"


def test_a_right_signature_still_passes() -> None:
    signature = hmac_signature("bi-mat", "POST", PATH, str(STAMP), b"{}")
    headers = {"X-Api-Key": "hub-key", "X-Timestamp": str(STAMP), "X-Signature": signature}
    assert verify_hmac(HMAC, "POST", PATH, headers, b"{}", STAMP) is None


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b"])
async def test_an_event_no_header_can_carry_is_refused_not_an_outage(bad: str) -> None:
    """aiohttp will not send such a header: an error the guard took for the subscriber being
    down, which held every other event back."""
    config = SubscriberConfig(url="http://127.0.0.1:9/", events=["ministry.#"])
    async with aiohttp.ClientSession() as http:
        client = WebhookClient("one_stop", config, http)
        with pytest.raises(DestinationRejected) as refused:
            await client.post({"event_id": bad, "type": "ministry.result"})
    assert refused.value.code == "unsendable"
