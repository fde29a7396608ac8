"""TLS both ways: the hub's HTTPS listener, the doors that want client certificates, and the
`ssl.SSLContext` every outbound connection (HTTP clients, zeep, AMQP) is given.

* `Serving` holds the listener's context (`http.tls`). Its certificate and key are loaded
  again *in place* on SIGHUP (`reload`): the listener stays open, connections already made
  keep their session, new handshakes get the new certificate. New files are tried on a
  scratch context first, so a bad pair leaves the running one untouched (and says why).
* The context asks every client for a certificate but does not demand one (CERT_OPTIONAL,
  trusting only `client_ca`, never the system's authorities): `door_guard` then refuses a
  request to a door listed in `require_client_cert_for` with 403 unless the handshake
  verified a client certificate. A certificate signed by another CA fails the handshake on
  every door.
* `client_context(tls)` builds one destination's context from its `tls` block (`ClientTls`):
  its CA bundle, its client certificate. Built contexts are remembered (weakly) so SIGHUP
  reloads their client certificates too. CA files are read at start only.
* `problems(config)` checks every TLS block of the configuration tree (files there, readable,
  a certificate, a key that matches it): `hub check-config` and `hub run` refuse a bad one,
  naming its key.

This module must never log a key, a password or a file's content.
"""

from __future__ import annotations

import hashlib
import ssl
import weakref
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, SecretStr

from hub.config_blocks import ClientTls, ServerTls
from hub.httputil import error_response

log = structlog.get_logger(__name__)

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_PEM_CERT = "-----BEGIN CERTIFICATE-----"
Pair = tuple[Path, Path, SecretStr | None]  # certificate, key, the key's password
# Outbound contexts with a client certificate, and its files (read again on SIGHUP).
_outbound: weakref.WeakKeyDictionary[ssl.SSLContext, Pair] = weakref.WeakKeyDictionary()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class KeyPasswordMissing(ValueError):
    """The key file is encrypted and no `key_password` is configured."""


def _password(secret: SecretStr | None) -> Callable[[], str]:
    # Always a callable: without one, OpenSSL would prompt on the terminal for an encrypted
    # key (and hang a service that has none).
    def password() -> str:
        if secret is None:
            raise KeyPasswordMissing("the key file is encrypted: give key_password")
        return secret.get_secret_value()

    return password


def _load_pair(context: ssl.SSLContext, cert: Path, key: Path, password: SecretStr | None) -> None:
    """Try the pair on a scratch context first: `load_cert_chain` on a live context that
    fails half-way would leave it with the new certificate and the old key."""
    scratch = ssl.SSLContext(context.protocol)
    scratch.load_cert_chain(cert, key, password=_password(password))
    context.load_cert_chain(cert, key, password=_password(password))


def _first_pem(cert_file: Path) -> str | None:
    text = cert_file.read_text(encoding="ascii", errors="replace")
    start = text.find(_PEM_CERT)
    end = text.find("-----END CERTIFICATE-----", start)
    return text[start : end + 25] if start >= 0 and end >= 0 else None


def pinned_context(cert_file: Path) -> ssl.SSLContext:
    """A client context trusting exactly the first certificate of `cert_file` (the hub's own,
    for `hub status`): reached as 127.0.0.1, its name is not checked, the certificate is."""
    context = ssl.create_default_context(cadata=_first_pem(cert_file) or "")
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a leaf as the only anchor
    context.check_hostname = False
    return context


def fingerprint(cert_file: Path) -> str:
    """Hex SHA-256 of the first certificate in a PEM file (what clients see), for logs."""
    pem = _first_pem(cert_file)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest() if pem else "unreadable"


# -- the listener -----------------------------------------------------------------------------


def server_context(config: ServerTls) -> ssl.SSLContext:
    """The listener's context. Built from scratch, not `create_default_context`: that one
    would trust the system's authorities for client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[config.min_version]
    _load_pair(context, config.cert_file, config.key_file, config.key_password)
    if config.client_ca is not None:
        context.load_verify_locations(cafile=config.client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class Serving:
    """The HTTPS listener's context and what it was built from."""

    def __init__(self, config: ServerTls) -> None:
        self.config = config
        self.context = server_context(config)
        log.info(
            "tls_serving",
            cert_file=str(config.cert_file),
            sha256=fingerprint(config.cert_file),
            client_certificate_doors=config.require_client_cert_for,
        )

    def reload(self) -> bool:
        """Certificate and key read again into the live context; False (logged, the old pair
        kept) if the new files cannot be used."""
        cfg = self.config
        try:
            _load_pair(self.context, cfg.cert_file, cfg.key_file, cfg.key_password)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error("tls_reload_failed", cert_file=str(cfg.cert_file), error=_why(exc))
            return False
        log.info("tls_reloaded", cert_file=str(cfg.cert_file), sha256=fingerprint(cfg.cert_file))
        return True


def reload(serving: Serving | None) -> None:
    """SIGHUP: the listener's certificate, then every outbound client certificate."""
    if serving is not None:
        serving.reload()
    for context, (cert, key, password) in list(_outbound.items()):
        try:
            _load_pair(context, cert, key, password)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error("tls_reload_failed", cert_file=str(cert), error=_why(exc))
        else:
            log.info("tls_client_certificate_reloaded", cert_file=str(cert))


def _guarded(path: str, doors: list[str]) -> bool:
    return any(d == "/" or path == d or path.startswith(d + "/") for d in doors)


def door_guard(config: ServerTls | None) -> list[Any]:
    """The middleware refusing guarded doors to clients without a verified certificate (none
    when no door is guarded). The door is judged on the path asked for and on the route that
    would answer it, so no spelling of a path reaches a guarded handler unguarded."""
    if config is None or not config.require_client_cert_for:
        return []
    doors = config.require_client_cert_for

    @web.middleware
    async def require_client_certificate(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route_path = resource.canonical if resource is not None else ""
        if not (_guarded(request.path, doors) or _guarded(route_path, doors)):
            return await handler(request)
        transport = request.transport
        tls = transport.get_extra_info("ssl_object") if transport is not None else None
        if tls is not None and tls.getpeercert():  # present only if the handshake verified it
            return await handler(request)
        log.info("client_certificate_missing", path=route_path or request.path)
        return error_response(
            403,
            "client_certificate_required",
            "this door admits only clients presenting a certificate signed by a CA the hub "
            "trusts (http.tls.client_ca); connect with your client certificate",
        )

    return [require_client_certificate]


# -- outbound ---------------------------------------------------------------------------------


def client_context(tls: ClientTls | None) -> ssl.SSLContext | bool:
    """What to pass as aiohttp's `ssl=` (or httpx's `verify=`) for one destination: True (the
    system's authorities, nothing presented) when its block asks for nothing else."""
    if tls is None or tls == ClientTls():
        return True
    if tls.ca_file is not None:
        context = ssl.create_default_context(cafile=tls.ca_file)  # these CAs only
    else:
        context = ssl.create_default_context()
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file is not None and tls.key_file is not None:
        pair = (tls.cert_file, tls.key_file, tls.key_password)
        _load_pair(context, *pair)
        _outbound[context] = pair
    return context


def broker_context(tls: ClientTls | None) -> ssl.SSLContext | None:
    """The AMQP connection's context (`amqps://` URLs), or None for aiormq's default."""
    context = client_context(tls)
    return context if isinstance(context, ssl.SSLContext) else None


# -- checks -----------------------------------------------------------------------------------

Problem = tuple[tuple[str, ...], str]


def problems(config: BaseModel) -> list[Problem]:
    """Every TLS block of the tree whose files cannot be used, with the key at fault."""
    found: list[Problem] = []
    for at, block in _blocks(config, ()):
        found += _block_problems(at, block)
    return found


def unverified(config: BaseModel) -> list[str]:
    """Where a destination's certificate is not checked (`verify: false`), for warnings."""
    return [
        ".".join(at)
        for at, block in _blocks(config, ())
        if isinstance(block, ClientTls) and not block.verify
    ]


def _blocks(model: BaseModel, at: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, value in model:
        here = (*at, name)
        if isinstance(value, ServerTls | ClientTls):
            yield here, value
        elif isinstance(value, BaseModel):
            yield from _blocks(value, here)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from _blocks(item, (*here, str(key)))


def _block_problems(at: tuple[str, ...], block: ServerTls | ClientTls) -> list[Problem]:
    ca = block.client_ca if isinstance(block, ServerTls) else block.ca_file
    ca_key = "client_ca" if isinstance(block, ServerTls) else "ca_file"
    found = [
        ((*at, key), why)
        for key, path in (
            ("cert_file", block.cert_file),
            ("key_file", block.key_file),
            (ca_key, ca),
        )
        if path is not None and (why := _unreadable(path))
    ]
    if found:
        return found
    if ca is not None:
        try:
            ssl.create_default_context(cafile=ca)
        except (ssl.SSLError, ValueError):
            found.append(((*at, ca_key), f"{ca} holds no PEM certificate"))
    if block.cert_file is not None and block.key_file is not None:
        found += _pair_problems(at, block.cert_file, block.key_file, block.key_password)
    return found


def _unreadable(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        return f"no file {path}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return None


def _pair_problems(
    at: tuple[str, ...], cert: Path, key: Path, password: SecretStr | None
) -> list[Problem]:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            cert, key, password=_password(password)
        )
    except KeyPasswordMissing:
        return [((*at, "key_password"), f"{key} is encrypted: give key_password")]
    except (ssl.SSLError, ValueError) as exc:
        return [_pair_fault(at, cert, key, password, exc)]
    return []


def _pair_fault(
    at: tuple[str, ...], cert: Path, key: Path, password: SecretStr | None, exc: Exception
) -> Problem:
    """Which key is at fault when a pair does not load (OpenSSL says little)."""
    if _PEM_CERT not in cert.read_text(encoding="ascii", errors="replace"):
        return (*at, "cert_file"), f"{cert} holds no PEM certificate"
    key_text = key.read_text(encoding="ascii", errors="replace")
    if "PRIVATE KEY-----" not in key_text:
        return (*at, "key_file"), f"{key} holds no PEM private key"
    reason = _why(exc)
    if "KEY_VALUES_MISMATCH" in reason.upper():
        return (*at, "key_file"), f"{key} is not the private key of {cert}"
    if password is not None and "ENCRYPTED" in key_text:
        return (*at, "key_password"), f"does not decrypt {key}"
    return (*at, "cert_file"), f"{cert} and {key} cannot be used: {reason}"


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return f"{reason}: {exc}" if reason else str(exc)
