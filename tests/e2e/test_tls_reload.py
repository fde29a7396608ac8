"""`hub run` serving HTTPS: a renewed certificate is taken on SIGHUP without a restart, and a
bad one is refused while the old one keeps serving."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import ssl
from pathlib import Path

import aiohttp
import pytest

from hub.config import deep_merge
from tests.support import HubProcess, eventually, hub_cli, hub_overrides
from tests.support.tls import Authority, trusting

pytestmark = pytest.mark.slow


async def _served_sha256(port: int, context: ssl.SSLContext) -> str:
    """The certificate a new connection is shown (a fresh handshake, no pooled connection)."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True)
        assert der, "the hub showed no certificate"
        return hashlib.sha256(der).hexdigest()
    finally:
        writer.close()
        await writer.wait_closed()


async def _ready(url: str, context: ssl.SSLContext) -> int:
    async with aiohttp.ClientSession() as http, http.get(url, ssl=context) as response:
        return response.status


async def test_sighup_reloads_the_certificate_without_dropping_the_listener(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    ca = Authority("Hub CA")
    first, renewed = ca.issue("hub", server=True), ca.issue("hub", server=True)
    tls_dir = tmp_path / "tls"
    cert_file, key_file = first.write(tls_dir, "hub")
    client = trusting(ca.write(tls_dir / "ca.pem"))
    settings = deep_merge(
        hub_overrides(tmp_path, rabbit_url, broker_prefix, "http://127.0.0.1:9/api"),
        {"http": {"tls": {"cert_file": str(cert_file), "key_file": str(key_file)}}},
    )
    hub = HubProcess(tmp_path, settings, client_ssl=client)
    assert hub.base_url.startswith("https://")
    try:
        await hub.start_ready()  # /readyz answered 200 over HTTPS, trusting the test CA
        assert await _served_sha256(hub.port, client) == first.sha256
        pid = hub.pid
        # `hub status` finds the hub over HTTPS from the same file, trusting its certificate.
        code, out, err = await hub_cli("status", "-c", str(hub.config_path))
        assert code == 0, err
        assert f"hub at {hub.base_url}: READY" in out

        renewed.write(tls_dir, "hub")
        os.kill(pid, signal.SIGHUP)

        async def renewed_served() -> bool:
            hub.check_alive()
            return await _served_sha256(hub.port, client) == renewed.sha256

        await eventually(renewed_served, 30, "the renewed certificate served")
        assert hub.pid == pid  # the same process, the same listener
        assert await _ready(hub.base_url + "/readyz", client) == 200
        assert "tls_reloaded" in hub.log_tail(0)

        # A key that does not match is refused; the renewed pair keeps serving.
        ca.issue("other", server=True).write(tls_dir, "other")
        key_file.write_bytes((tls_dir / "other.key").read_bytes())
        os.kill(pid, signal.SIGHUP)
        await eventually(lambda: "tls_reload_failed" in hub.log_tail(0), 30, "reload refused")
        hub.check_alive()
        assert await _served_sha256(hub.port, client) == renewed.sha256
        assert await _ready(hub.base_url + "/readyz", client) == 200
        assert hub.running
    finally:
        if hub.running:
            await hub.shut_down()
