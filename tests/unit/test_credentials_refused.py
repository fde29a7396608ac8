"""A system that refuses the hub's credentials is an account problem, not a refusal of the
item: the connector waits as "credentials refused" (nothing parked) until an operator
corrects them. The ministry SOAP kind (WS-Security faults) and the document axis (401/403)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import zeep.exceptions
from aiohttp import web

from connectors.ministry import soap
from connectors.vdxp.client import AxisClient
from connectors.vdxp.config import VdxpConfig
from hub.errors import CredentialsRefused, DestinationRejected, DestinationUnavailable


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("wsse:FailedAuthentication", CredentialsRefused),
        ("wsse:InvalidSecurityToken", CredentialsRefused),
        ("wsse:InvalidSecurity", CredentialsRefused),
        ("soap:Client", DestinationRejected),  # the item itself: parked with its reason
        ("soap:Server", DestinationUnavailable),  # an outage: waited out
        ("", DestinationRejected),
    ],
)
def test_a_ws_security_fault_is_refused_credentials(code: str, kind: type[Exception]) -> None:
    fault = zeep.exceptions.Fault("refused", code=code)  # type: ignore[no-untyped-call]
    found = soap._fault(fault, "land", "ministry.land")
    assert type(found) is kind


@pytest.mark.parametrize("status", [401, 403])
async def test_the_axis_refusing_the_signature_is_refused_credentials(
    status: int, tmp_path: Path
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "FAIL", "errorCode": "bad_signature", "errorDesc": "chữ ký sai"},
            status=status,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = VdxpConfig(
        enabled=True,
        base_url=f"http://127.0.0.1:{port}",
        system_id="000.00.00.H41",
        secret="khoa",
        organ_id="000.00.00.H41",
        spool_dir=tmp_path,
        retry={"attempts": 1},
    )
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(CredentialsRefused, match=f"HTTP {status}"):
                await AxisClient(config, http).list("edoc", 10)
    finally:
        await runner.cleanup()
