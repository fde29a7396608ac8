"""The axis's agency directory, cached: who may send documents and who may receive them.

The list comes from the axis (`getAgencyList`) and is read again after `agencies_refresh_s`;
an agency the cache does not know makes it read the list again at once (at most once a
minute), so an agency added to the axis is not refused for an hour. Provinces merge and
agencies change: the hub never ships a list of its own. When the axis cannot be asked, the
last list read is used; before any list was read, `AgencyDirectory.known` raises the axis's
error, and the caller tries again later rather than refusing an agency it cannot check.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from connectors.vdxp.client import AxisClient
from hub.errors import HubError

log = structlog.get_logger(__name__)

MIN_REREAD_S = 60.0


class AgencyDirectory:
    def __init__(
        self, client: AxisClient, refresh_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.refresh_s = refresh_s
        self.clock = clock
        self._names: dict[str, str] | None = None
        self._read_at = 0.0

    async def known(self, organ_id: str) -> bool:
        now = self.clock()
        age = now - self._read_at
        stale = self._names is None or age > self.refresh_s
        if stale or (organ_id not in (self._names or {}) and age > MIN_REREAD_S):
            await self._read()
        assert self._names is not None
        return organ_id in self._names

    async def refresh(self) -> None:
        """Read the list if it is stale (each poll round starts with this, so the list is
        at hand when the axis is down later)."""
        if self._names is None or self.clock() - self._read_at > self.refresh_s:
            await self._read()

    def name(self, organ_id: str) -> str | None:
        return (self._names or {}).get(organ_id) or None

    @property
    def size(self) -> int:
        return len(self._names or {})

    async def _read(self) -> None:
        try:
            names = await self.client.agencies()
        except HubError as exc:
            if self._names is None:
                raise
            log.warning("vdxp_agencies_stale", error=exc.message, agencies=len(self._names))
            return
        self._names = names
        self._read_at = self.clock()
        log.info("vdxp_agencies_read", agencies=len(names))
