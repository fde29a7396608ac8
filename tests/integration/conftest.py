"""Fixtures shared by integration test modules (the broker's are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.dashboard_world import DashboardWorld, dashboard_world


@pytest.fixture
async def dash(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[DashboardWorld]:
    """A hub with the dashboard on, DVCQG's simulator, and operators of every role."""
    async with dashboard_world(tmp_path, rabbit_url, broker_prefix) as world:
        yield world
