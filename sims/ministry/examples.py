"""The configuration sections of the two worked ministry examples, pointed at any address.

The same sections as `config/hub.example.yaml` documents (`ministries.business_registration`,
`ministries.civil_status`), built here once for `hub demo`, the bench and the tests, which
point them at the simulators. This module must never open a connection.
"""

from __future__ import annotations

from typing import Any

BUSINESS_PROCEDURE = "1.001612"  # its dossiers go to business registration
CIVIL_PROCEDURE = "1.000894"  # its dossiers go to civil status


def business_registration(
    address: str,
    username: str,
    password: str,
    poll_interval_s: float | None = 30.0,
    **extra: Any,
) -> dict[str, Any]:
    """SOAP with WS-Security: hand-off by NopHoSo; results polled unless `poll_interval_s`
    is None."""
    section: dict[str, Any] = {
        "name": "Đăng ký kinh doanh",
        "kind": "soap",
        "mapping": "ministry_business_registration",
        "procedures": [BUSINESS_PROCEDURE],
        "soap": {
            "wsdl": "ministries/business_registration.wsdl",
            "address": address,
            "wsse": {"username": username, "password": password},
        },
        "submit": {"operation": "NopHoSo"},
    }
    if poll_interval_s is not None:
        section["poll"] = {
            "operation": "LayDanhSachKetQua",
            "params": {"TuMoc": "$cursor", "SoLuong": "$limit"},
            "interval_s": poll_interval_s,
            "first_cursor": "0",
        }
    return section | extra


def civil_status(base_url: str, auth: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """REST: hand-off by POST /api/hotich/v1/ho-so; add `push` or `poll` in `extra`."""
    rest: dict[str, Any] = {"base_url": base_url}
    if auth is not None:
        rest["auth"] = auth
    return {
        "name": "Hộ tịch",
        "kind": "rest",
        "mapping": "ministry_civil_status",
        "procedures": [CIVIL_PROCEDURE],
        "rest": rest,
        "submit": {"operation": "POST /api/hotich/v1/ho-so"},
    } | extra


def oauth2(
    base_url: str, client_id: str, client_secret: str, client_auth: str = "basic"
) -> dict[str, Any]:
    """OAuth2 client credentials against `<base_url>/oauth2/token`."""
    return {
        "kind": "oauth2",
        "token_url": f"{base_url}/oauth2/token",
        "client_id": client_id,
        "client_secret": client_secret,
        "client_auth": client_auth,
    }
