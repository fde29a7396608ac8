"""A plug-in package whose migration has no PostgreSQL twin: it runs on SQLite only, and a
PostgreSQL store refuses it by name (tests/integration/test_store_postgresql.py)."""
