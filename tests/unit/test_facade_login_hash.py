"""The facade's log-in and the hash unknown names are checked against (pure logic: the
sessions are a dict). A log-in of a known name never makes that hash: an argon2 hash takes
tens of milliseconds and 64 MiB while it runs, and it used to be made, on the event loop, at
the first log-in of any name. An unknown name's log-in makes it once, on another thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from hub import auth
from hub.auth import Authenticator, dummy_hash, hash_password
from hub.config import SourceConfig

PASSWORD = "the-right-password"


class Sessions:
    def __init__(self) -> None:
        self.made: dict[str, tuple[str, float]] = {}

    async def create_session(self, token_sha256: str, source: str, expires_at: float) -> None:
        self.made[token_sha256] = (source, expires_at)

    async def session_source(self, token_sha256: str, now: float) -> tuple[str, float] | None:
        return self.made.get(token_sha256)


@pytest.fixture
def fresh_dummy() -> Iterator[None]:
    dummy_hash.cache_clear()
    yield
    dummy_hash.cache_clear()


def authenticator() -> Authenticator:
    source = SourceConfig(
        username="onestop",
        password_hash=SecretStr(hash_password(PASSWORD)),
        permissions=["facade.DongBoHoSoMC"],
    )
    return Authenticator({"onestop": source}, Sessions(), 3600.0)


async def test_a_known_name_never_makes_the_unknown_names_hash(fresh_dummy: None) -> None:
    outcome = await authenticator().login("onestop", PASSWORD, "10.0.0.1")

    assert outcome.token is not None
    assert dummy_hash.cache_info().currsize == 0


async def test_a_known_name_with_a_wrong_password_does_not_make_it_either(
    fresh_dummy: None,
) -> None:
    outcome = await authenticator().login("onestop", "wrong", "10.0.0.1")

    assert outcome.token is None
    assert dummy_hash.cache_info().currsize == 0


async def test_an_unknown_name_makes_it_once_off_the_event_loop(
    fresh_dummy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real = auth.hash_password

    def recording(password: str) -> str:
        threads.append(threading.get_ident())
        return real(password)

    monkeypatch.setattr(auth, "hash_password", recording)
    hub = authenticator()

    first = await hub.login("nobody", PASSWORD, "10.0.0.1")
    second = await hub.login("somebody-else", PASSWORD, "10.0.0.2")

    assert first.token is None
    assert second.token is None
    assert len(threads) == 1  # made once, then kept
    assert threads[0] != threading.get_ident()  # not on the event loop's thread
