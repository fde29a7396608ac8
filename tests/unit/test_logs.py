"""The log pipeline masks personal data and secrets before anything is written."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from hub.logs import configure_logging


@pytest.fixture(autouse=True)
def _rebind_logging_after() -> Iterator[None]:
    # These tests bind logging to capsys's stream, which closes after them; later tests
    # (an in-process hub) must not write to it.
    yield
    configure_logging("INFO", "json")


def test_structlog_events_are_json_with_personal_data_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    structlog.get_logger("test").info(
        "facade_item_refused",
        dossier_code="000.00.41.H41-221005-0012",
        item={"ChuHoSo": "Nguyễn Văn An", "MaDoiTuong": "001203004567", "Email": "an@example.com"},
        reason="liên hệ 0912345678 hoặc an@example.com",
        password="hunter2",
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "facade_item_refused"
    assert event["dossier_code"] == "000.00.41.H41-221005-0012"
    for secret in ("Nguyễn Văn An", "001203004567", "an@example.com", "0912345678", "hunter2"):
        assert secret not in line
    assert event["item"]["MaDoiTuong"].endswith("567")


def test_standard_library_records_go_through_the_same_masking(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("aiohttp.access").warning("client 0987654321 failed")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "0987654321" not in line
    assert json.loads(line)["event"].startswith("client ")
