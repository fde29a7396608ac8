"""The operators' dashboard (`/dashboard/`) and its JSON admin API (`/api/v1/admin/`).

`access` logs operators in (roles, lock-out, session cookie, CSRF), `board` gathers what the
pages show from the consumers, the broker and the store's read-only connection, `actions` does
what operators may do (replay, discard, unlock), `api` and `pages` serve the same data as JSON
and as HTML. This package must never show personal data unmasked.
"""
