"""The SOAP client reads and checks its WSDL once: from a file or a URL, now or at first call."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connectors.ministry.config import MinistryConfig
from connectors.ministry.soap import SoapClient, wsdl_problems
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import ConfigError, DestinationRejected, DestinationUnavailable
from hub.resilience import Guard
from sims.ministry import examples
from sims.ministry.soap_simulator import BusinessRegistrationSimulator
from tests.support.serving import serve

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def _config(address: str, **soap: Any) -> MinistryConfig:
    # A generous timeout: the servers here are on loopback, but the machine may be busy (a
    # 1 s connect timeout failed once with two full suites running on two cores).
    section = examples.business_registration(address, "u", "p", timeout_s=30)
    section["soap"] |= soap
    return MinistryConfig.model_validate(section)


def _client(config: MinistryConfig) -> SoapClient:
    guard = Guard("ministry.t", RetryConfig(attempts=1), BreakerConfig(), 100.0)
    return SoapClient("t", config, guard, MAPPINGS)


def _wrong_operation(config: MinistryConfig) -> MinistryConfig:
    assert config.submit is not None
    submit = config.submit.model_copy(update={"operation": "NopHoSoX"})
    return config.model_copy(update={"submit": submit})


async def test_a_wsdl_file_lacking_an_operation_stops_the_start_and_check_config() -> None:
    config = _wrong_operation(_config("http://127.0.0.1:9/ws"))
    (problem,) = wsdl_problems("t", config, MAPPINGS)
    assert "'NopHoSoX' is not an operation" in problem
    client = _client(config)
    with pytest.raises(ConfigError) as caught:
        await client.load()
    assert caught.value.problems == [problem]
    await client.close()


async def test_a_wsdl_url_is_read_at_start_and_checked_too() -> None:
    async with BusinessRegistrationSimulator(username="u", password="p") as sim:
        good = _client(_config(sim.url, wsdl=sim.wsdl_url))
        await good.load()
        reply = await good.submit({"MaHoSo": "H-1", "MaTTHC": examples.BUSINESS_PROCEDURE})
        assert reply["MaLoi"] == "00"
        await good.close()
        bad = _client(_wrong_operation(_config(sim.url, wsdl=sim.wsdl_url)))
        with pytest.raises(ConfigError):
            await bad.load()
        await bad.close()


async def test_a_wsdl_url_that_does_not_answer_is_read_at_the_first_call() -> None:
    async with BusinessRegistrationSimulator(username="u", password="p") as sim:
        wsdl_url = sim.wsdl_url
    # The simulator has stopped: the start goes on, the first call finds the system down.
    client = _client(_wrong_operation(_config("http://127.0.0.1:9/ws", wsdl=wsdl_url)))
    await client.load()
    with pytest.raises(DestinationUnavailable):
        await client.submit({"MaHoSo": "H-1"})
    await client.close()
    async with BusinessRegistrationSimulator(username="u", password="p") as sim:
        late = _client(_wrong_operation(_config(sim.url, wsdl=sim.wsdl_url)))
        sim.faults.mode = "http_503"  # the WSDL is never faulted, only POSTs
        with pytest.raises(DestinationRejected) as caught:
            await late.submit({"MaHoSo": "H-1"})  # read now: it lacks NopHoSoX
        assert "NopHoSoX" in caught.value.message
        await late.close()


async def test_a_wsdl_url_past_the_reply_cap_is_refused_as_it_streams_in() -> None:
    """A WSDL server that never stops sending: the read stops at `max_reply_bytes` and the
    WSDL is not usable (a configuration problem, named), instead of filling memory."""
    endless, sent = 64 * 2**20, [0]

    async def wsdl(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "text/xml"})
        await reply.prepare(request)
        chunk = b"<!-- padding -->" * 4096
        with contextlib.suppress(ConnectionError):
            while sent[0] < endless:
                await reply.write(chunk)
                sent[0] += len(chunk)
        return reply

    app = web.Application()
    app.router.add_get("/big.wsdl", wsdl)
    async with serve(app) as base:
        config = _config("http://127.0.0.1:9/ws", wsdl=f"{base}/big.wsdl")
        client = _client(config.model_copy(update={"max_reply_bytes": 100_000}))
        with pytest.raises(ConfigError) as caught:
            await client.load()
        await client.close()
    assert "larger than 100000 bytes" in " ".join(caught.value.problems)
    assert sent[0] < endless / 4, sent


SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
GATEWAY_XML = b'<?xml version="1.0"?><error><code>502</code><text>Bad Gateway</text></error>'
CLIENT_FAULT = (
    f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
    "<faultstring>MaHoSo sai</faultstring></s:Fault></s:Body></s:Envelope>"
).encode()


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (502, GATEWAY_XML, DestinationUnavailable),  # a gateway's XML error page: away
        (503, b"<html><body>down for maintenance</body></html>", DestinationUnavailable),
        (429, GATEWAY_XML, DestinationUnavailable),
        (500, CLIENT_FAULT, DestinationRejected),  # SOAP 1.1 sends its faults with a 500
    ],
    ids=["502-xml", "503-html", "429-xml", "500-client-fault"],
)
async def test_an_http_error_without_a_soap_fault_is_an_outage_never_a_refusal(
    status: int, body: bytes, outcome: type[Exception]
) -> None:
    async def endpoint(_: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/ws", endpoint)
    async with serve(app) as base:
        client = _client(_config(f"{base}/ws"))
        with pytest.raises(outcome):
            await client.submit({"MaHoSo": "H-1", "MaTTHC": examples.BUSINESS_PROCEDURE})
        await client.close()
