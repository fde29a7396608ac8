-- A plug-in's migration without a twin under postgresql/: the connector runs on SQLite only.
CREATE TABLE sqlite_only (code TEXT NOT NULL PRIMARY KEY);
