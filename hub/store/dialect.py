"""The store's SQL, as PostgreSQL reads it.

The store's queries are written once, for SQLite, in the large subset of SQL both engines
share (`ON CONFLICT ... DO UPDATE`, `RETURNING`, `COALESCE`, `CASE`, window-less aggregates),
and `postgresql()` rewrites the few SQLite spellings left, once per distinct statement:

- parameters: `?` → `$1, $2, ...` in order, `?NNN` → `$NNN`;
- `INSERT OR IGNORE INTO t ...` → `INSERT INTO t ... ON CONFLICT DO NOTHING`;
- the scalar (two or more arguments) `MAX(a, b)` / `MIN(a, b)` → `GREATEST` / `LEAST`.

`json_extract(text, '$.a.b')` and `instr(text, text)` need no rewriting: the PostgreSQL
migrations define them (`hub/migrations/postgresql/0001_initial.sql`). What cannot be rewritten
without knowing the schema is refused here, so that it is written portably instead:
`INSERT OR REPLACE` (write `ON CONFLICT (key) DO UPDATE`), and a bare column on the right of a
`DO UPDATE SET`, which PostgreSQL finds ambiguous between the table's row and the refused one
(`excluded`): write `t.seen + 1` or `excluded.seen`, which SQLite reads alike. See decision
0083. `tests/unit/test_store_dialect.py` runs every such statement of the product through
here, so a bare column fails without a PostgreSQL server.

Only what lies outside string literals and quoted names is rewritten. This module must never
see a value: statements are constants; values travel as parameters.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TOKENS = re.compile(
    r"""
    (?P<literal>'(?:[^']|'')*')          # 'a string', with '' inside
  | (?P<name>"(?:[^"]|"")*")             # "a quoted name"
  | (?P<comment>--[^\n]*)                # a line comment
  | (?P<numbered>\?\d+)                  # ?1
  | (?P<param>\?)                        # ?
  | (?P<ignore>\bINSERT\s+OR\s+IGNORE\b)
  | (?P<replace>\bINSERT\s+OR\s+REPLACE\b)
  | (?P<extreme>\b(?:MAX|MIN)\s*\()      # MAX( or MIN(: scalar if it has two arguments
    """,
    re.IGNORECASE | re.VERBOSE,
)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_DO_UPDATE = re.compile(r"\bDO\s+UPDATE\s+SET\b", re.IGNORECASE)
_SET_ENDS = re.compile(r"\b(?:WHERE|RETURNING)\b", re.IGNORECASE)
_UNQUOTED = re.compile(r"'(?:[^']|'')*'|--[^\n]*")  # literals and comments, blanked out
# A name neither qualified (`t.x`), nor a qualifier (`t.` / `excluded.`), nor a function.
_BARE = re.compile(r"(?<![\w.$?])[A-Za-z_]\w*(?![\w.])(?!\s*\()")
_SQL_WORDS = frozenset(
    {"AND", "AS", "BETWEEN", "BIGINT", "CASE", "DISTINCT", "ELSE", "END", "FALSE", "IN"}
    | {"INTEGER", "IS", "LIKE", "NOT", "NULL", "OR", "REAL", "TEXT", "THEN", "TRUE", "WHEN"}
)


class DialectError(ValueError):
    """A statement the rewriting cannot carry over: write it portably."""


@lru_cache(maxsize=2048)
def postgresql(sql: str) -> str:
    """`sql` (SQLite's spelling) as PostgreSQL reads it. Raises `DialectError`."""
    out: list[str] = []
    numbered = bare = 0
    ignore = False
    pos = 0
    for match in _TOKENS.finditer(sql):
        out.append(sql[pos : match.start()])
        pos = match.end()
        kind, text = match.lastgroup, match.group()
        if kind in ("literal", "name", "comment"):
            out.append(text)
        elif kind == "numbered":
            numbered += 1
            out.append("$" + text[1:])
        elif kind == "param":
            bare += 1
            out.append(f"${bare}")
        elif kind == "ignore":
            ignore = True
            out.append("INSERT")
        elif kind == "replace":
            raise DialectError(f"INSERT OR REPLACE has no portable meaning: {sql[:120]!r}")
        else:  # MAX( / MIN(
            scalar = _arguments(sql, match.end()) > 1
            name = text.rstrip("( \t\n").upper()
            out.append(({"MAX": "GREATEST", "MIN": "LEAST"}[name] if scalar else name) + "(")
    out.append(sql[pos:])
    if numbered and bare:
        raise DialectError(f"a statement mixes ? and ?NNN: {sql[:120]!r}")
    unqualified = _bare_in_do_update(sql)
    if unqualified:
        raise DialectError(
            f"DO UPDATE SET reads {', '.join(unqualified)} unqualified, which PostgreSQL finds "
            f"ambiguous: name its table (or excluded.): {sql[:120]!r}"
        )
    result = "".join(out)
    if ignore:
        result = _do_nothing(result)
    return result


def _arguments(sql: str, start: int) -> int:
    """How many top-level arguments the call whose '(' ends just before `start` has."""
    depth, count, quote = 0, 1, ""
    for ch in sql[start:]:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return count
            depth -= 1
        elif ch == "," and depth == 0:
            count += 1
    raise DialectError(f"unbalanced parentheses: {sql[:120]!r}")


def _do_nothing(sql: str) -> str:
    """`ON CONFLICT DO NOTHING` where PostgreSQL wants it: before `RETURNING`, else last."""
    body = sql.rstrip().rstrip(";")
    found = list(_RETURNING.finditer(body))
    if found:
        cut = found[-1].start()
        return f"{body[:cut].rstrip()} ON CONFLICT DO NOTHING {body[cut:]}"
    return f"{body} ON CONFLICT DO NOTHING"


def _bare_in_do_update(sql: str) -> list[str]:
    """The unqualified names on the right of each `DO UPDATE SET` assignment."""
    plain = _UNQUOTED.sub(" ", sql)
    bare: list[str] = []
    for found in _DO_UPDATE.finditer(plain):
        rest = plain[found.end() :]
        end = _SET_ENDS.search(rest)
        for assignment in _top_level(rest[: end.start() if end else len(rest)]):
            _column, _, value = assignment.partition("=")
            bare += [w for w in _BARE.findall(value) if w.upper() not in _SQL_WORDS]
    return bare


def _top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts
