-- Delivery state per destination, held generically: what each destination (DVCQG is
-- `national_portal`) has confirmed of each dossier, instead of DVCQG's columns in the core
-- tables. The DVCQG state kept so far moves here unchanged, then the old columns go.

-- What a destination confirmed of a dossier: one row once it has confirmed anything of it.
CREATE TABLE destination_state (
    dossier_code  TEXT NOT NULL,
    destination   TEXT NOT NULL,
    version       INTEGER NOT NULL DEFAULT 0,  -- newest dossier version it confirmed
    holds         INTEGER NOT NULL DEFAULT 0,  -- it holds the dossier (DVCQG: isUpdating)
    status_at     REAL,                        -- status time (unix) of that version: sync lag
    behind        INTEGER NOT NULL DEFAULT 1,  -- the dossier changed since: a newer version or
                                               -- a step it has not confirmed
    PRIMARY KEY (dossier_code, destination)
) WITHOUT ROWID;
-- Completeness counts these; the delivery hot path skips the step query for the others.
CREATE INDEX destination_state_behind ON destination_state (destination) WHERE behind = 1;

-- Each destination keeping state, and how many dossiers it has a row for: the dossiers it
-- never confirmed anything of are the others, counted without a scan.
CREATE TABLE destinations (
    destination  TEXT PRIMARY KEY,
    dossiers     INTEGER NOT NULL
) WITHOUT ROWID;

-- The steps (history rows) each destination confirmed.
CREATE TABLE event_deliveries (
    event_id     INTEGER NOT NULL,
    destination  TEXT NOT NULL,
    sent_at      TEXT NOT NULL,
    PRIMARY KEY (event_id, destination)
) WITHOUT ROWID;

-- What DVCQG confirmed so far, moved over.
INSERT INTO destination_state (dossier_code, destination, version, holds, status_at, behind)
SELECT d.code, 'national_portal', d.portal_version, d.portal_holds, d.portal_status_at,
       d.portal_version < d.version OR EXISTS (
           SELECT 1 FROM dossier_events e
           WHERE e.dossier_code = d.code AND e.kind = 'step' AND e.portal_sent_at IS NULL)
FROM dossiers d
WHERE d.portal_version > 0 OR d.portal_holds = 1 OR EXISTS (
    SELECT 1 FROM dossier_events e
    WHERE e.dossier_code = d.code AND e.kind = 'step' AND e.portal_sent_at IS NOT NULL);

INSERT INTO destinations (destination, dossiers)
SELECT 'national_portal', COUNT(*) FROM destination_state WHERE destination = 'national_portal';

INSERT INTO event_deliveries (event_id, destination, sent_at)
SELECT id, 'national_portal', portal_sent_at FROM dossier_events
WHERE kind = 'step' AND portal_sent_at IS NOT NULL;

-- The sync lag, per destination.
CREATE TABLE sync_lag_new (
    destination  TEXT NOT NULL,
    minute       INTEGER NOT NULL,     -- unix time // 60 of the confirmation
    bucket       INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (destination, minute, bucket)
) WITHOUT ROWID;
INSERT INTO sync_lag_new (destination, minute, bucket, n)
SELECT 'national_portal', minute, bucket, n FROM sync_lag;
DROP TABLE sync_lag;
ALTER TABLE sync_lag_new RENAME TO sync_lag;
-- Trimming old minutes goes by time across destinations.
CREATE INDEX sync_lag_by_minute ON sync_lag (minute);

-- The old columns, and the index that read them. The dossiers' go in this order: SQLite
-- cuts the last column back to the comma before it, and a comma in a comment fools it.
DROP INDEX dossiers_unconfirmed;
ALTER TABLE dossiers DROP COLUMN portal_version;
ALTER TABLE dossiers DROP COLUMN portal_holds;
ALTER TABLE dossiers DROP COLUMN portal_status_at;

-- The history is written again without its column (the comment before it has such a comma):
-- the same rows, ids and id sequence, and its indexes built again.
CREATE TABLE dossier_events_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key        TEXT NOT NULL UNIQUE,
    dossier_code    TEXT NOT NULL,
    kind            TEXT NOT NULL,        -- record or step
    status          INTEGER NOT NULL,
    occurred_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    source_system   TEXT NOT NULL,
    payload         TEXT NOT NULL,        -- canonical DossierEvent JSON
    applied         INTEGER NOT NULL      -- 0: late and kept in history only
);
INSERT INTO dossier_events_new (id, idem_key, dossier_code, kind, status, occurred_at,
                                received_at, source_system, payload, applied)
SELECT id, idem_key, dossier_code, kind, status, occurred_at, received_at, source_system,
       payload, applied
FROM dossier_events ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'dossier_events_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'dossier_events_new', seq FROM sqlite_sequence WHERE name = 'dossier_events';
DROP TABLE dossier_events;
ALTER TABLE dossier_events_new RENAME TO dossier_events;
CREATE INDEX events_by_dossier ON dossier_events (dossier_code, id);
-- A dossier's steps, for what a destination still lacks (the index on DVCQG's column is gone).
CREATE INDEX events_steps ON dossier_events (dossier_code) WHERE kind = 'step';
