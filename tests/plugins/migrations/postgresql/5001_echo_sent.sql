-- The echo connector's own table on PostgreSQL: the twin of ../5001_echo_sent.sql, which a
-- plug-in ships beside each migration to run on a PostgreSQL store.
CREATE TABLE echo_sent (
    code TEXT NOT NULL PRIMARY KEY,
    at TEXT NOT NULL
);
