"""Fixtures of the end-to-end tests: the hub as a separate process, never left running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import HubProcess


@pytest.fixture
def hub_process(tmp_path: Path) -> Iterator[HubProcess]:
    """The hub as a `hub run` process in `tmp_path` (hub.yaml, hub.log), on a port of its own;
    the test gives it `settings` and starts it; it is killed if the test left it running."""
    process = HubProcess(tmp_path)
    yield process
    if process.running:
        process.kill()
