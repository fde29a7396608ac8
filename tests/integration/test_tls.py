"""TLS both ways, on loopback with throw-away CAs: the hub serving HTTPS with doors that want a
client certificate, and a subscriber reached over HTTPS with the hub's own client certificate.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.ministry.config import MinistryConfig
from connectors.ministry.soap import SoapClient
from hub import health
from hub.config import deep_merge, load_config
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import DestinationUnavailable
from hub.outage import State
from hub.resilience import Guard
from hub.runtime import Hub
from sims.ministry import examples
from sims.ministry.soap_simulator import BusinessRegistrationSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.support import ONESTOP_PASSWORD, ONESTOP_USER, eventually, hub_overrides
from tests.support.tls import Authority, server_context, trusting

SUB_TOKEN = "sub-token"
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@dataclass(frozen=True)
class Pki:
    """Three authorities: the hub's server CA, the CA of the clients the hub admits (which
    also signs the hub's own client certificate towards a destination), and a stranger."""

    folder: Path
    server_ca: Path
    clients_ca: Path
    hub_server: tuple[Path, Path]
    onestop: tuple[Path, Path]  # a client the hub admits
    stranger: tuple[Path, Path]  # a client certificate from an unknown CA
    destination_ca: Path
    destination: tuple[Path, Path]  # a subscriber's server certificate
    hub_client: tuple[Path, Path]  # the hub's certificate towards the subscriber


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server, clients, stranger, destination = (
        Authority(n) for n in ("Hub server CA", "Clients CA", "Stranger CA", "Destination CA")
    )
    return Pki(
        folder=folder,
        server_ca=server.write(folder / "server-ca.pem"),
        clients_ca=clients.write(folder / "clients-ca.pem"),
        hub_server=server.issue("hub", server=True).write(folder, "hub"),
        onestop=clients.issue("onestop", client=True).write(folder, "onestop"),
        stranger=stranger.issue("onestop", client=True).write(folder, "stranger"),
        destination_ca=destination.write(folder / "destination-ca.pem"),
        destination=destination.issue("subscriber", server=True).write(folder, "subscriber"),
        hub_client=clients.issue("hub-client", client=True).write(folder, "hub-client"),
    )


def _overrides(tmp_path: Path, rabbit_url: str, prefix: str, **extra: Any) -> dict[str, Any]:
    base = hub_overrides(tmp_path, rabbit_url, prefix, "http://127.0.0.1:9/api")
    return deep_merge(base, extra)


# -- the hub serving HTTPS, with a door that wants client certificates ----------------------


@pytest.fixture
async def https_hub(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, pki: Pki
) -> AsyncIterator[Hub]:
    tls = {
        "cert_file": str(pki.hub_server[0]),
        "key_file": str(pki.hub_server[1]),
        "client_ca": str(pki.clients_ca),
        "require_client_cert_for": ["/dvcqg"],
    }
    config = load_config(None, _overrides(tmp_path, rabbit_url, broker_prefix, http={"tls": tls}))
    async with Hub(config) as hub:
        yield hub


async def _call(
    url: str, context: ssl.SSLContext, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        method = "POST" if body is not None else "GET"
        async with http.request(method, url, json=body, ssl=context) as response:
            return response.status, await response.json(content_type=None)


async def test_a_door_wanting_client_certificates_admits_only_clients_with_one(
    https_hub: Hub, pki: Pki
) -> None:
    base = f"https://127.0.0.1:{https_hub.port}"
    login = {"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}
    anonymous = trusting(pki.server_ca)
    with_certificate = trusting(pki.server_ca, client=pki.onestop)

    status, body = await _call(f"{base}/dvcqg", anonymous, login)
    assert status == 403, body
    assert body["error"] == "client_certificate_required"
    assert "client_ca" in body["message"]
    # Spelt another way, the path still leads to the guarded door, and is refused.
    status, body = await _call(f"{base}/%64vcqg", anonymous, login)
    assert status == 403, body

    status, body = await _call(f"{base}/dvcqg", with_certificate, login)
    assert status == 200, body
    assert body["session"]

    # The other doors stay open to a client without a certificate.
    status, body = await _call(f"{base}/readyz", anonymous)
    assert status == 200, body
    status, _ = await _call(f"{base}/api/v1/openapi.json", anonymous)
    assert status == 200

    # A certificate from a CA the hub does not trust does not get through the handshake.
    with pytest.raises(aiohttp.ClientError):
        await _call(f"{base}/dvcqg", trusting(pki.server_ca, client=pki.stranger), login)


async def test_plain_http_is_not_served_when_tls_is_on(https_hub: Hub) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{https_hub.port}/readyz") as response:
                await response.read()


# -- a destination over HTTPS: its CA, the hub's client certificate ---------------------------


def _subscriber(url: str, tls: dict[str, str]) -> dict[str, Any]:
    return {
        "url": url,
        "token": SUB_TOKEN,
        "events": ["procedure.#"],
        "timeout_s": 5,
        "retry": {"attempts": 1, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
        "breaker": {"failure_threshold": 1, "first_probe_s": 0.2, "recovery_s": 0.5},
        "delay_tiers_s": [0.5],
        "tls": tls,
    }


async def test_a_subscriber_over_https_is_reached_only_with_its_ca_and_our_certificate(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, pki: Pki
) -> None:
    hub_cert = {"cert_file": str(pki.hub_client[0]), "key_file": str(pki.hub_client[1])}
    ca = {"ca_file": str(pki.destination_ca)}
    async with AsyncExitStack() as stack:
        receiver = WebhookReceiver(token=SUB_TOKEN)
        # The destination requires a client certificate signed by the clients' CA.
        receiver.ssl_context = server_context(pki.destination, pki.clients_ca, require=True)
        await stack.enter_async_context(receiver)
        assert receiver.url.startswith("https://")
        subscribers = {
            "trusted": _subscriber(receiver.url, {**ca, **hub_cert}),
            "no_ca": _subscriber(receiver.url, hub_cert),  # the system's CAs only
            "no_cert": _subscriber(receiver.url, ca),  # presents nothing
        }
        config = load_config(
            None, _overrides(tmp_path, rabbit_url, broker_prefix, subscribers=subscribers)
        )
        hub = await stack.enter_async_context(Hub(config))
        assert hub.broker is not None
        event_id = str(uuid.uuid4())
        event = {"event_id": event_id, "type": "procedure.updated", "code": "1.000001"}
        await hub.broker.publish_event("procedure.updated", event, event_id)

        assert await receiver.wait_for(1, 30), receiver.state()
        assert receiver.events[0]["event_id"] == event_id
        # The hub presented its client certificate (the handshake would have failed without).
        hub_client_sha = _sha256(pki.hub_client[0])
        assert receiver.peer_certificates == {hub_client_sha}

        for name in ("no_ca", "no_cert"):
            watched = hub.connector(f"subscriber.{name}")
            assert watched is not None

            def down(w: health.Watched = watched) -> bool:
                return health.condition_of(w).state is State.down

            await eventually(down, 30, f"subscriber.{name} down")
            reason = health.condition_of(watched).reason
            assert "TLS" in reason or "SSL" in reason or "reach" in reason, reason
            assert hub.probe is not None
            counts = await health.counts_of(watched, hub.probe)
            assert counts.parked == 0  # an outage, not a refusal: nothing parked
            assert counts.waiting == 1  # the event waits for the destination
        # Neither got a request through: the one delivery is the trusted subscriber's.
        assert receiver.requests == 1
        assert receiver.receipts[event_id] == 1


def _sha256(cert_file: Path) -> str:
    import hashlib

    der = ssl.PEM_cert_to_DER_cert(cert_file.read_text())
    return hashlib.sha256(der).hexdigest()


# -- a SOAP ministry system over HTTPS (zeep's httpx transport) -------------------------------


def _soap_client(address: str, wsdl: str, tls: dict[str, str]) -> SoapClient:
    section = examples.business_registration(address, "u", "p", timeout_s=5)
    section["soap"] |= {"wsdl": wsdl}
    config = MinistryConfig.model_validate({**section, "tls": tls})
    guard = Guard("ministry.t", RetryConfig(attempts=1), BreakerConfig(), 100.0)
    return SoapClient("t", config, guard, MAPPINGS)


async def test_a_soap_system_over_https_is_reached_only_with_its_ca_and_our_certificate(
    pki: Pki,
) -> None:
    hub_cert = {"cert_file": str(pki.hub_client[0]), "key_file": str(pki.hub_client[1])}
    sim = BusinessRegistrationSimulator(username="u", password="p")
    sim.ssl_context = server_context(pki.destination, pki.clients_ca, require=True)
    async with sim:
        assert sim.url.startswith("https://")
        trusted = _soap_client(
            sim.url, sim.wsdl_url, {"ca_file": str(pki.destination_ca), **hub_cert}
        )
        await trusted.load()  # the WSDL, read over HTTPS with our certificate
        reply = await trusted.submit({"MaHoSo": "H-1", "MaTTHC": examples.BUSINESS_PROCEDURE})
        assert reply["MaLoi"] == "00"
        await trusted.close()
        assert sim.peer_certificates == {_sha256(pki.hub_client[0])}

        answered = dict(sim.requests)
        untrusting = _soap_client(sim.url, sim.wsdl_url, hub_cert)  # the usual CAs only
        await untrusting.load()  # a WSDL URL that cannot be read is read at the first call
        with pytest.raises(DestinationUnavailable):
            await untrusting.submit({"MaHoSo": "H-2", "MaTTHC": examples.BUSINESS_PROCEDURE})
        await untrusting.close()
        assert dict(sim.requests) == answered  # nothing got through the handshake
