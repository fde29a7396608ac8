-- The echo connector's own table (a plug-in numbers its migrations from 5000).
CREATE TABLE echo_sent (
    code TEXT NOT NULL PRIMARY KEY,
    at TEXT NOT NULL
);
