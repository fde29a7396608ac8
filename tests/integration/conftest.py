"""Fixtures shared by integration test modules (the broker's are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.corpus_world import summary_lines
from tests.integration.dashboard_world import DashboardWorld, dashboard_world


@pytest.fixture
async def dash(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[DashboardWorld]:
    """A hub with the dashboard on, DVCQG's simulator, and operators of every role."""
    async with dashboard_world(tmp_path, rabbit_url, broker_prefix) as world:
        yield world


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The bad-input corpus's count of cases per door and how they were answered, shown in
    every run that sent any (a passing one too: captured output is shown only on failure)."""
    lines = summary_lines()
    if lines:
        terminalreporter.section("bad-input corpus")
        for line in lines:
            terminalreporter.write_line(line)
