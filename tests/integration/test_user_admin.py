"""Unlocking a user and ending a user's sessions: `hub users unlock|revoke-sessions` against
the store of a running hub, and the dashboard's admin action, each over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import yaml

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.integration.dashboard_world import (
    PASSWORDS,
    USERS,
    DashboardWorld,
    Session,
    dashboard_overrides,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, hub_cli, hub_overrides

LOGIN = "/api/v1/admin/session"


@pytest.fixture
async def running(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[tuple[DashboardWorld, Path]]:
    """A hub started from a configuration file, and the file, for the CLI to use."""
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        overrides["dashboard"] = dashboard_overrides()
        path = tmp_path / "hub.yaml"
        path.write_text(yaml.safe_dump(overrides, allow_unicode=True), encoding="utf-8")
        hub = await stack.enter_async_context(Hub(load_config(path)))
        yield DashboardWorld(hub, sim, f"http://127.0.0.1:{hub.port}", stack), path


async def _log_in(session: Session, role: str, password: str | None = None) -> int:
    body = {"username": USERS[role], "password": password or PASSWORDS[role]}
    status, reply = await session.call("POST", LOGIN, body)
    if status == 200:
        session.csrf = reply["csrf_token"]
    return status


async def test_the_cli_unlocks_a_locked_out_user_and_ends_their_sessions_while_the_hub_runs(
    running: tuple[DashboardWorld, Path],
) -> None:
    dash, config = running
    name = USERS["operator"]
    first = await dash.client()
    assert await _log_in(first, "operator") == 200  # a session from before the lock-out
    locked = await dash.client()
    for _ in range(3):  # dashboard.max_failed_logins
        await _log_in(locked, "operator", "wrong-password")
    assert await _log_in(locked, "operator") == 429

    code, out, err = await hub_cli("users", "list", "-c", str(config))
    assert code == 0, err
    assert f"{name}\toperator\tyes\t" in out

    code, out, err = await hub_cli("users", "unlock", name, "-c", str(config), "--actor", "ops")
    assert code == 0, err
    assert out.strip() == (
        f"unlocked {name}: failed log-ins from 1 client address(es) forgotten (audited as ops)"
    )
    assert await _log_in(locked, "operator") == 200  # the right password works again

    for session in (first, locked):
        assert (await session.call("GET", "/api/v1/admin/overview"))[0] == 200
    code, out, err = await hub_cli("users", "revoke-sessions", name, "-c", str(config))
    assert code == 0, err
    assert out.startswith(f"ended 2 session(s) of {name} (audited as ")
    for session in (first, locked):  # both cookies stop working at once
        assert (await session.call("GET", "/api/v1/admin/overview"))[0] == 401
    assert await _log_in(locked, "operator") == 200  # a new log-in is welcome

    admin = await dash.operator("admin")
    status, audit = await admin.call("GET", "/api/v1/admin/audit")
    assert status == 200
    acts = [(e["actor"], e["action"], e["target"]) for e in audit["items"]]
    assert ("ops", "user.unlock", name) in acts
    assert any(a == "user.sessions_revoked" and t == name for _, a, t in acts)

    # An unknown name is refused on one line that says why, and nothing is written.
    for command in ("unlock", "revoke-sessions"):
        code, out, err = await hub_cli("users", command, "ghost", "-c", str(config))
        assert code == 1, (command, out, err)
        assert "error: no dashboard user 'ghost' under dashboard.users" in err
        assert out == ""


async def test_an_admin_ends_every_session_of_a_user_from_the_dashboard(
    dash: DashboardWorld,
) -> None:
    viewer_here, viewer_there = await dash.operator("viewer"), await dash.operator("viewer")
    admin, operator = await dash.operator("admin"), await dash.operator("operator")
    path = f"/api/v1/admin/users/{USERS['viewer']}/revoke-sessions"

    assert (await admin.call("POST", path, csrf=""))[1]["error"] == "csrf"
    assert (await operator.call("POST", path))[1]["error"] == "forbidden"
    assert (await admin.call("POST", "/api/v1/admin/users/ghost/revoke-sessions"))[0] == 404
    for session in (viewer_here, viewer_there):  # nothing was done by the refusals
        assert (await session.call("GET", "/api/v1/admin/overview"))[0] == 200

    status, reply = await admin.call("POST", path)
    assert (status, reply) == (200, {"user": USERS["viewer"], "sessions_ended": 2})
    for session in (viewer_here, viewer_there):
        status, reply = await session.call("GET", "/api/v1/admin/overview")
        assert (status, reply["error"]) == (401, "unauthenticated")
    assert (await admin.call("GET", "/api/v1/admin/overview"))[0] == 200  # others keep theirs

    # The HTML page's button does the same, with the form's CSRF token.
    again = await dash.operator("viewer")
    async with admin.http.post(
        f"{dash.base}/dashboard/users/{USERS['viewer']}/revoke-sessions",
        data={"csrf_token": admin.csrf},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
    assert (await again.call("GET", "/api/v1/admin/overview"))[0] == 401
    async with admin.http.get(f"{dash.base}/dashboard/users") as page:
        html = await page.text()
    assert "revoke-sessions" in html
    assert "1 session(s)" in html or "1 phiên" in html
