"""The payment flow's test configuration: the platform's partner code and key, the subscriber,
dossier codes. Shared by the payment tests in process and the payment crash test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import UNIT, hub_overrides

PARTNER = "000.00.00.H41"
SECRET = "khoa-doi-tac-thu-nghiem"
SUB_TOKEN = "sub-token"
FEE = 150_000


def code(n: int, day: str = "261120") -> str:
    return f"{UNIT}-{day}-{n:04d}"


def payment_overrides(
    tmp_path: Path,
    rabbit_url: str,
    prefix: str,
    portal_url: str,
    platform_url: str,
    receiver_url: str,
) -> dict[str, Any]:
    """The hub's settings for a payment test, with DVCQG, the payment platform and the
    one-stop system (a subscriber) at these URLs: simulators or hand-written doubles."""
    overrides = hub_overrides(tmp_path, rabbit_url, prefix, portal_url)
    overrides["subscribers"] = {
        "one_stop": {
            "url": receiver_url,
            "token": SUB_TOKEN,
            "events": ["procedure.#", "payment.#"],
            "delay_tiers_s": [0.2, 0.4],
            "retry": {"attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
            "breaker": {"failure_threshold": 50, "recovery_s": 1},
            "linger_ms": 10,
        }
    }
    overrides["connectors"]["payment_platform"] = {
        "enabled": True,
        "partner_code": PARTNER,
        "secret_key": SECRET,
        "base_url": platform_url,
        "timeout_s": 2,
        # The tests send every kind of refused callback from one address within a minute and
        # read each back from the callback log (test_rate_limits checks the budget itself).
        "callback_limits": {"refusals_per_address_per_min": 1000},
        "retry": {"attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
        # The tests run rounds themselves (POST /api/v1/payments/status-checks).
        "status_check": {"enabled": False},
        "reconciliation": {
            "enabled": False,
            "output_dir": str(tmp_path / "reconciliation"),
            "pending_too_long_s": 3600,
        },
    }
    return overrides
