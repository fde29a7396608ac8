"""API tokens stored salted (decision 0054): a hash `hub hash-secret --token` prints opens the
REST API and a ministry's push door of a running hub; the older bare SHA-256 still does, and
`hub check-config` warns about it; a wrong token does not."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp
import yaml
from click.testing import CliRunner

from hub.auth import sha256_hex
from hub.cli import main
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import (
    CIVIL_PROCEDURE,
    SUB_TOKEN,
    World,
    base_overrides,
    civil_section,
    code,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER

FEED = "/api/v1/portal/dossier-changes"


def hash_secret(token: str) -> str:
    """What `hub hash-secret --token` prints for `token` (read from standard input)."""
    result = CliRunner().invoke(main, ["hash-secret", "--token"], input=token + "\n")
    assert result.exit_code == 0, result.output
    return result.output.strip()


async def test_salted_and_older_token_hashes_open_the_api_and_the_push_door(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    fresh, old, push = (secrets.token_urlsafe(32) for _ in range(3))
    fresh_hash = hash_secret(fresh)
    assert fresh_hash.startswith("hmac-sha256$")
    assert fresh not in fresh_hash
    assert hash_secret(fresh) != fresh_hash  # salted: the same token never hashes alike
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as one_stop,
    ):
        overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
        overrides["sources"] |= {
            "fresh": {"api_token_sha256": fresh_hash, "permissions": ["portal.feed"]},
            "old": {"api_token_sha256": sha256_hex(old), "permissions": ["portal.feed"]},
        }
        overrides["ministries"] = {
            "civil_status": civil_section(
                portal.url,  # never called: the test only pushes
                {"kind": "bearer"},
                push={"token_sha256": hash_secret(push)},
            )
        }
        path = tmp_path / "hub.yaml"
        path.write_text(yaml.safe_dump(overrides, allow_unicode=True), encoding="utf-8")
        checked = CliRunner().invoke(main, ["check-config", "-c", str(path)])
        assert checked.exit_code == 0, checked.output
        warned = [line for line in checked.output.splitlines() if "warning:" in line]
        assert [w for w in warned if "older version" in w] == [
            "  warning: sources.old.api_token_sha256: an unsalted SHA-256 of an older version; "
            "still accepted, but hash the token again with `hub hash-secret --token` (the "
            "token itself stays the same)",
            # the shared test settings keep one source in the older form on purpose
            "  warning: sources.reader.api_token_sha256: an unsalted SHA-256 of an older "
            "version; still accepted, but hash the token again with `hub hash-secret --token` "
            "(the token itself stays the same)",
        ]
        async with Hub(load_config(path)) as hub, aiohttp.ClientSession() as http:
            world = World(hub, portal, one_stop, http)
            for token, expected in ((fresh, 200), (old, 200), (fresh[:-1], 401), ("", 401)):
                status, _ = await world.call("GET", FEED, token=token)
                assert status == expected, (token == fresh, token == old, status)
            await world.dossiers([code(1)], CIVIL_PROCEDURE)
            body = {
                "ketQua": [
                    {
                        "id": "KQ-1",
                        "maHoSo": code(1),
                        "trangThai": "DA_DANG_KY",
                        "thoiDiem": "2026-11-23T10:00:00+07:00",
                    }
                ]
            }
            results = "/api/v1/ministries/civil_status/results"
            status, reply = await world.call("POST", results, body, token=push)
            assert (status, reply["accepted"]) == (200, 1), reply
            status, reply = await world.call("POST", results, body, token=fresh)
            assert (status, reply["error"]) == (401, "unauthenticated")


def test_a_hash_that_is_neither_form_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(
        "sources:\n  s:\n    api_token_sha256: 'sha256:abc'\n    permissions: [portal.feed]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)])
    assert result.exit_code == 1
    assert "sources.s.api_token_sha256" in result.output
    assert "hub hash-secret --token" in result.output
    assert "sha256:abc" not in result.output  # a secret's value is never echoed
