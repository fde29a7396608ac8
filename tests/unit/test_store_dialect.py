"""The store's SQL as PostgreSQL reads it (`hub.store.dialect`): pure rewriting, no server."""

from __future__ import annotations

import pytest

from hub.store.dialect import DialectError, postgresql


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
