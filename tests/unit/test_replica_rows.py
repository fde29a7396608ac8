"""The overview's replicas section from the leases (`hub.dashboard.replicas`): pure logic."""

from __future__ import annotations

from hub.dashboard.replicas import replicas_view
from hub.store.base import Lease

NOW = 1_800_000_000.0  # the database's clock as it answered


def lease(name: str, holder: str, left_s: float) -> Lease:
    return Lease(name, holder, NOW - 60, NOW - 1, NOW + left_s, NOW)


def test_this_replica_comes_first_and_others_by_name_with_their_live_leases() -> None:
    leases = [
        lease("outbox-sweep", "hub-b", 20.04),
        lease("alerts", "hub-c", 5),
        lease("vdxp-poll", "hub-b", 12),
    ]
    view = replicas_view("hub-z", ["alerts", "outbox-sweep", "vdxp-poll"], [], leases)
    assert view["this_replica"] == "hub-z"
    assert view["store_read"] is True
    assert [(r["name"], r["this"]) for r in view["replicas"]] == [
        ("hub-z", True),
        ("hub-b", False),
        ("hub-c", False),
    ]
    assert view["replicas"][0]["duties"] == []  # standing by
    assert view["replicas"][1]["duties"] == [
        {"name": "outbox-sweep", "expires_at": "2027-01-15T08:00:20+00:00", "remaining_s": 20.0},
        {"name": "vdxp-poll", "expires_at": "2027-01-15T08:00:12+00:00", "remaining_s": 12.0},
    ]
    assert view["unheld"] == []


def test_a_duty_with_no_live_lease_is_held_by_none_and_its_lapsed_holder_is_no_replica() -> None:
    leases = [lease("alerts", "hub-a", 10), lease("outbox-sweep", "hub-dead", -3)]
    # "ministry-poll-x" is kept here but has no lease at all; "axis-poll" only the store knows.
    leases.append(lease("axis-poll", "hub-dead", -0.5))
    kept = ["alerts", "ministry-poll-x", "outbox-sweep"]
    view = replicas_view("hub-a", kept, ["alerts"], leases)
    assert [r["name"] for r in view["replicas"]] == ["hub-a"]
    assert view["unheld"] == [
        {"name": "axis-poll", "last_holder": "hub-dead", "lapsed_at": "2027-01-15T07:59:59+00:00"},
        {"name": "ministry-poll-x", "last_holder": None, "lapsed_at": None},
        {
            "name": "outbox-sweep",
            "last_holder": "hub-dead",
            "lapsed_at": "2027-01-15T07:59:57+00:00",
        },
    ]


def test_an_unread_store_shows_only_what_this_replica_runs_and_says_so() -> None:
    view = replicas_view("hub-a", ["alerts", "outbox-sweep"], ["outbox-sweep"], None)
    assert view == {
        "this_replica": "hub-a",
        "store_read": False,
        "replicas": [
            {
                "name": "hub-a",
                "this": True,
                "duties": [{"name": "outbox-sweep", "expires_at": None, "remaining_s": None}],
            }
        ],
        "unheld": [],
    }


def test_a_replica_present_but_holding_no_duty_is_listed_and_presence_is_no_duty() -> None:
    """Each replica renews a presence lease of its own (`replica:<holder>`): a standby holding
    no duty is listed, one whose presence lapsed (killed) is not, and no presence lease is
    shown as a duty, held or not."""
    leases = [
        lease("alerts", "hub-a", 10),
        lease("replica:hub-a", "hub-a", 10),
        lease("replica:hub-standby", "hub-standby", 8),
        lease("replica:hub-killed", "hub-killed", -40),
    ]
    view = replicas_view("hub-a", ["alerts"], ["alerts"], leases)
    assert [(r["name"], [d["name"] for d in r["duties"]]) for r in view["replicas"]] == [
        ("hub-a", ["alerts"]),
        ("hub-standby", []),
    ]
    assert view["unheld"] == []
