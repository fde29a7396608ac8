"""The store's SQL as PostgreSQL reads it (`hub.store.dialect`): pure rewriting, no server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hub.store.dialect import DialectError, postgresql

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("sqlite", "expected"),
    [
        (
            "SELECT a FROM t WHERE b = ? AND c IN (?,?)",
            "SELECT a FROM t WHERE b = $1 AND c IN ($2,$3)",
        ),
        ("SELECT ?1, ?2 WHERE x = ?1", "SELECT $1, $2 WHERE x = $1"),
        (
            "INSERT OR IGNORE INTO s VALUES (?,?,?)",
            "INSERT INTO s VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
        ),
        (
            "INSERT OR IGNORE INTO s (a) VALUES (?) RETURNING id",
            "INSERT INTO s (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id",
        ),
        (
            "UPDATE s SET v = MAX(s.v, excluded.v), w = MIN(a, MAX(b, c))",
            "UPDATE s SET v = GREATEST(s.v, excluded.v), w = LEAST(a, GREATEST(b, c))",
        ),
        ("SELECT MAX(v), min(w) FROM s", "SELECT MAX(v), MIN(w) FROM s"),
        ("SELECT MAX(f(a, b)) FROM s", "SELECT MAX(f(a, b)) FROM s"),
        # Nothing inside literals, quoted names or comments is touched.
        (
            "SELECT '?', 'MAX(a, b)', \"x?\" FROM t -- why? MAX(a, b)\nWHERE y = ?",
            "SELECT '?', 'MAX(a, b)', \"x?\" FROM t -- why? MAX(a, b)\nWHERE y = $1",
        ),
        ("SELECT 'it''s ?' WHERE a = ?", "SELECT 'it''s ?' WHERE a = $1"),
    ],
)
def test_sqlite_spellings_become_postgresql(sqlite: str, expected: str) -> None:
    assert postgresql(sqlite) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT OR REPLACE INTO t VALUES (?)",  # needs its conflict target: write it portably
        "SELECT ?1, ?",  # two parameter styles in one statement
        "SELECT MAX(a, b FROM t",  # unbalanced
    ],
)
def test_what_cannot_be_carried_over_is_refused(sql: str) -> None:
    with pytest.raises(DialectError):
        postgresql(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO q VALUES (?) ON CONFLICT (k) DO UPDATE SET seen = seen + 1",
        "INSERT INTO q VALUES (?) ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = COALESCE(b, 0)",
        'INSERT INTO q VALUES (?) ON CONFLICT (k) DO UPDATE SET "n" = "n" + 1 RETURNING id',
    ],
)
def test_a_bare_column_on_the_right_of_do_update_is_refused(sql: str) -> None:
    with pytest.raises(DialectError, match="unqualified"):
        postgresql(sql)


def test_a_qualified_do_update_is_carried_over_as_it_is() -> None:
    sql = (
        "INSERT INTO q (k, n) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET "
        "n = q.n + excluded.n, at = CASE WHEN q.at IS NULL THEN excluded.at ELSE 'x, y' END, "
        "v = MAX(q.v, excluded.v) WHERE q.k <> ? RETURNING id"
    )
    assert postgresql(sql) == (
        "INSERT INTO q (k, n) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET "
        "n = q.n + excluded.n, at = CASE WHEN q.at IS NULL THEN excluded.at ELSE 'x, y' END, "
        "v = GREATEST(q.v, excluded.v) WHERE q.k <> $3 RETURNING id"
    )


def test_every_upsert_of_the_product_is_carried_over() -> None:
    """Each statement under hub/ and connectors/ that is an `INSERT ... DO UPDATE SET` (one
    string constant: adjacent literals are one) goes through the rewriting: a spelling
    PostgreSQL refuses fails here, on any machine, not only in the PostgreSQL run."""
    upserts = [
        (path, node.value)
        for folder in ("hub", "connectors")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.lstrip().upper().startswith("INSERT")
        and "DO UPDATE SET" in node.value.upper()
    ]
    assert len(upserts) >= 10, upserts  # the search finds them (at least those of today)
    refused = []
    for path, sql in upserts:
        try:
            postgresql(sql)
        except DialectError as exc:
            refused.append(f"{path.relative_to(ROOT)}: {exc}")
    assert not refused, "\n".join(refused)
