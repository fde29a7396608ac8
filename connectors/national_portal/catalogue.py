"""Reads the national procedure catalogue from DVCQG: the list, each record, reference lists.

`CatalogueClient` wraps a `PortalClient` (its own instance, so the catalogue's rate limit and
session never eat into dossier delivery) and maps every record at once: `fetch` returns either
a canonical `Procedure` or a `Refused` saying why the record cannot be used (the sync
quarantines it). A portal that keeps failing raises the hub's transient errors after the
client's retries; those are not the record's fault and are not quarantined.

This module must never store anything or decide a lifecycle rule.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from connectors.national_portal.catalogue_mapping import (
    CatalogueCodes,
    catalogue_entries,
    procedure_from_wire,
)
from connectors.national_portal.client import PortalClient, ReplyNotJson
from connectors.national_portal.procedures.records import ListEntry, Listing, Refused
from hub.errors import ValidationFailed
from schemas.national_portal import WireAgency, WireCatalogueEntry, WireField
from schemas.procedure import Procedure

EXCERPT_CHARS = 300
log = structlog.get_logger(__name__)


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:EXCERPT_CHARS]


def _entry_code(raw: Any) -> str:
    if not isinstance(raw, dict):
        return ""
    try:
        return (WireCatalogueEntry.model_validate(raw).MATTHC or "").strip()
    except ValidationError:
        return ""


WireT = TypeVar("WireT", WireField, WireAgency)


def _entries(model: type[WireT], reply: dict[str, Any], service: str) -> list[WireT]:
    """The reply's well-formed entries; a malformed one is logged and skipped."""
    entries: list[WireT] = []
    for i, raw in enumerate(catalogue_entries(reply.get("result"))):
        try:
            entries.append(model.model_validate(raw))
        except ValidationError as exc:
            log.warning(
                "catalogue_list_entry_skipped", service=service, index=i, error=str(exc)[:300]
            )
    return entries


class CatalogueClient:
    def __init__(self, client: PortalClient, codes: CatalogueCodes, agency_code: str) -> None:
        self.client = client
        self.codes = codes
        self.agency_code = agency_code

    async def list_procedures(self) -> Listing:
        reply = await self.client.call("LayDanhSachTTHC", {})
        codes: list[str] = []
        seen: set[str] = set()
        refused: list[Refused] = []
        for i, raw in enumerate(catalogue_entries(reply.get("result"))):
            code = _entry_code(raw)
            if not code:
                refused.append(
                    Refused(f"#{i}", "list entry has no MATTHC", "MATTHC", _excerpt(raw), "missing")
                )
            elif code not in seen:
                seen.add(code)
                codes.append(code)
        return Listing(codes, refused)

    async def fields(self) -> list[ListEntry]:
        reply = await self.client.call("LayDanhMucLinhVuc", {})
        return [
            ListEntry(item.MALINHVUC, item.TENLINHVUC or "")
            for item in _entries(WireField, reply, "LayDanhMucLinhVuc")
            if item.MALINHVUC
        ]

    async def agencies(self) -> list[ListEntry]:
        reply = await self.client.call("LayDanhMucCoQuan", {})
        return [
            ListEntry(item.MADONVI, item.TENDONVI or "", item.CAPDONVI)
            for item in _entries(WireAgency, reply, "LayDanhMucCoQuan")
            if item.MADONVI
        ]

    async def fetch(self, code: str) -> Procedure | Refused:
        try:
            reply = await self.client.call(
                "LayThuTuc", {"maTTHC": code}, allow={self.codes.not_found}
            )
        except ReplyNotJson as exc:
            return Refused(code, "the portal's reply is not JSON", None, exc.excerpt, "not_json")
        if str(reply.get("error_code")) == self.codes.not_found:
            message = str(reply.get("message", ""))[:EXCERPT_CHARS]
            return Refused(code, f"LayThuTuc: not found ({message})", None, None, "not_found")
        raw = reply.get("result")
        try:
            procedure = procedure_from_wire(raw, self.codes, self.agency_code)
        except ValidationFailed as exc:
            return Refused(code, exc.message, exc.field, _excerpt(raw), exc.code)
        if procedure.code != code:
            reason = f"asked for {code}, the portal answered with {procedure.code}"
            return Refused(code, reason, "MATTHC", _excerpt(raw), "code_mismatch")
        return procedure
