"""The overview's "Replicas" section: which hub replicas there are and which holds which
once-only duty (`hub.duties`), as the store's leases say. Pure logic over what the board read.

It lives on the overview, not on a page of its own: the overview is the dashboard's one page
about the hub's health (the connectors' states, the hub's alerts), the one an operator keeps
open, and a duty that runs nowhere (no replica polls a ministry, nobody checks the alerts) is
as much the hub's health as a connector that is down. The page shows the section under the
cards, the admin API's overview gives it as `replicas`, `/readyz` and `hub status` say the
same (decision 0098).

The replicas are those the store knows: every holder of a live lease, and always this one.
Each replica keeps a presence lease of its own (`replica:<holder>`, `hub.duties`), so a
replica standing by, holding no duty, is listed too; a replica whose presence lapsed (killed,
or cut off from the store) is not. Presence leases are not duties. The duties are those this
replica keeps (every replica of one configuration keeps the same) and
any other the store holds a lease of. A duty with no live lease runs nowhere until a replica
takes it: it is listed as held by none, with the replica whose lease lapsed, if the store
still names one. When the store cannot be read, nobody can tell who holds what: the section
says so and shows only what this replica knows it runs.

Times are unix seconds on the database's clock (the one that judges a lease, decision 0091),
given as ISO 8601 UTC like the rest of the admin API; the page writes them in UTC+7.
This module must never read or change a lease itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hub.duties import is_presence
from hub.store.base import Lease


def replicas_view(
    this: str, kept: Iterable[str], held_here: Iterable[str], leases: list[Lease] | None
) -> dict[str, Any]:
    """The section's data: `this` replica's holder id, the duties it keeps and those it runs
    now (`held_here`, from its own keepers), and every lease in the store (None when the
    store could not be read)."""
    if leases is None:
        mine = [{"name": d, "expires_at": None, "remaining_s": None} for d in sorted(held_here)]
        return {
            "this_replica": this,
            "store_read": False,
            "replicas": [{"name": this, "this": True, "duties": mine}],
            "unheld": [],
        }
    present = {lease.holder for lease in leases if lease.live and is_presence(lease.name)}
    leases = [lease for lease in leases if not is_presence(lease.name)]
    live = {lease.name: lease for lease in leases if lease.live}
    lapsed = {lease.name: lease for lease in leases if not lease.live}
    holders: dict[str, list[dict[str, Any]]] = {this: [], **{name: [] for name in present}}
    for lease in sorted(live.values(), key=lambda x: x.name):
        holders.setdefault(lease.holder, []).append(
            {
                "name": lease.name,
                "expires_at": _iso(lease.expires_at),
                "remaining_s": round(lease.remaining_s, 1),
            }
        )
    order = sorted(holders, key=lambda name: (name != this, name))
    unheld = []
    for duty in sorted((set(kept) | set(lapsed)) - set(live)):
        gone = lapsed.get(duty)
        unheld.append(
            {
                "name": duty,
                "last_holder": gone.holder if gone else None,
                "lapsed_at": _iso(gone.expires_at) if gone else None,
            }
        )
    return {
        "this_replica": this,
        "store_read": True,
        "replicas": [{"name": n, "this": n == this, "duties": holders[n]} for n in order],
        "unheld": unheld,
    }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
