"""The axis transfer door's multipart limits hold while the parts stream in: the number of
file parts, each part's size and all parts together are refused with 413 before more is
written, and nothing refused stays in the staging folder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from schemas.interagency import MAX_TRANSFER_ATTACHMENTS
from tests.integration.vdxp_world import MINISTRY, AxisWorld, axis_world, known_dossier

KB = 1024
LIMITS = {"max_document_bytes": 600 * KB, "max_attachment_bytes": 200 * KB}


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[AxisWorld]:
    async with axis_world(tmp_path, rabbit_url, broker_prefix, **LIMITS) as w:
        yield w


def form(dossier: str, files: list[bytes], transfer: dict[str, Any] | None = None) -> Any:
    data = aiohttp.FormData()
    head = transfer or {
        "transfer_id": "lt-parts",
        "dossier_code": dossier,
        "to": [MINISTRY],
        "subject": "Hồ sơ nhiều tệp",
        "code_number": "7",
    }
    data.add_field("transfer", json.dumps(head), content_type="application/json")
    for n, content in enumerate(files):
        data.add_field("file", content, filename=f"tep-{n}.pdf", content_type="application/pdf")
    return data


async def post(world: AxisWorld, data: Any) -> tuple[int, dict[str, Any]]:
    async with world.http.post(
        world.base + "/api/v1/vdxp/transfers",
        data=data,
        headers={"Authorization": "Bearer onestop-token"},
    ) as response:
        return response.status, await response.json()


def staged(world: AxisWorld) -> list[Path]:
    folder = world.hub.config.connectors.vdxp.spool_dir / "staging"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def test_more_file_parts_than_a_transfer_carries_are_refused_with_413(
    world: AxisWorld,
) -> None:
    dossier = await known_dossier(world, 41)
    files = [b"%d" % n for n in range(MAX_TRANSFER_ATTACHMENTS + 30)]
    status, reply = await post(world, form(dossier, files))
    assert status == 413, reply
    assert f"at most {MAX_TRANSFER_ATTACHMENTS} attachments" in reply["message"]
    assert staged(world) == []
    assert (await world.call("GET", "/api/v1/vdxp/transfers/lt-parts"))[0] == 404


async def test_parts_each_within_their_limit_but_too_large_together_are_refused(
    world: AxisWorld,
) -> None:
    dossier = await known_dossier(world, 42)
    files = [bytes([n]) * (190 * KB) for n in range(4)]  # 760 KB against 600 KB
    status, reply = await post(world, form(dossier, files))
    assert status == 413, reply
    assert "together" in reply["message"]
    assert "max_document_bytes" in reply["message"]
    assert staged(world) == []
    assert (await world.call("GET", "/api/v1/vdxp/transfers/lt-parts"))[0] == 404


async def test_an_oversized_transfer_part_is_refused_unread(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 43)
    limit = world.hub.config.http.max_body_bytes
    head = {
        "transfer_id": "lt-parts",
        "dossier_code": dossier,
        "to": [MINISTRY],
        "subject": "x" * (limit + 10),
        "code_number": "7",
    }
    status, reply = await post(world, form(dossier, [b"a"], head))
    assert status == 413, reply
    assert "transfer part" in reply["message"]


async def test_parts_within_every_limit_are_accepted(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 44)
    files = [bytes([n]) * (100 * KB) for n in range(3)]  # 300 KB, each under 200 KB
    status, reply = await post(world, form(dossier, files))
    assert status == 202, reply
    assert staged(world) == []


async def test_an_oversized_json_transfer_is_refused_with_413(world: AxisWorld) -> None:
    limit = world.hub.config.http.max_body_bytes
    body = b'{"transfer_id": "lt-json", "pad": "' + b"x" * limit + b'"}'
    async with world.http.post(
        world.base + "/api/v1/vdxp/transfers",
        data=body,
        headers={"Authorization": "Bearer onestop-token", "Content-Type": "application/json"},
    ) as response:
        reply = await response.json()
        assert response.status == 413, reply
    assert "multipart/form-data" in reply["message"]


async def test_multipart_bodies_no_parser_reads_are_refused_and_nothing_stays_staged(
    world: AxisWorld,
) -> None:
    """Found by the corpus (test_corpus_transfer_door.py), each a 500 before: a part header
    holding a control character, no boundary, a transfer id no file system names (the
    staging folder was named after it); and a second part named transfer is refused, not
    taken as a file."""
    dossier = await known_dossier(world, 45)
    head = json.dumps({"transfer_id": "lt-parts", "dossier_code": dossier, "to": [MINISTRY],
                       "subject": "x", "code_number": "7"}).encode()  # fmt: skip
    part = b'--b\r\nContent-Disposition: form-data; name="transfer"\r\n\r\n' + head + b"\r\n"
    odd_id = head.replace(b"lt-parts", b"lt-\\ud800")
    bodies = [
        (part + b'--b\r\nContent-Disposition: form-data; name="f"; filename="a\x1b"\r\n\r\nx'
         b"\r\n--b--\r\n", "multipart/form-data; boundary=b", "bad_multipart"),
        (part + b"--b--\r\n", "multipart/form-data", "bad_multipart"),
        (part.replace(head, odd_id) + b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\n'
         b"x\r\n--b--\r\n", "multipart/form-data; boundary=b", "invalid"),
        (part + part + b"--b--\r\n", "multipart/form-data; boundary=b", "invalid"),
    ]  # fmt: skip
    for body, ctype, code in bodies:
        async with world.http.post(
            world.base + "/api/v1/vdxp/transfers",
            data=body,
            headers={"Authorization": "Bearer onestop-token", "Content-Type": ctype},
        ) as response:
            reply = await response.json()
            assert (response.status, reply["error"]) == (400, code), reply
    assert staged(world) == []
    assert (await world.call("GET", "/api/v1/vdxp/transfers/lt-parts"))[0] == 404
