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
-- Completeness counts these, from the index alone (`behind` is in it).
CREATE INDEX destination_state_behind ON destination_state (destination, behind) WHERE behind = 1;

-- Each destination keeping state, and how many dossiers it has a row for (kept by a trigger
-- below): the dossiers it never confirmed anything of are the others, counted without a scan.
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

-- From now on each new state row counts itself, whoever writes it.
CREATE TRIGGER destination_state_counted AFTER INSERT ON destination_state
BEGIN
    INSERT INTO destinations (destination, dossiers) VALUES (NEW.destination, 1)
    ON CONFLICT (destination) DO UPDATE SET dossiers = dossiers + 1;
END;

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

-- The history's column. Its neighbour's comment holds a comma, so it is first reworded in the
-- table's stored text (a comment: nothing on disk changes; SQLite's documented way to edit a
-- schema's text), then the column goes: one pass over the rows, in place.
DROP INDEX events_pending_steps;
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, '-- 0: late, kept in history only', '-- 0: late and kept in history only')
WHERE type = 'table' AND name = 'dossier_events';
PRAGMA writable_schema = RESET;
ALTER TABLE dossier_events DROP COLUMN portal_sent_at;
-- A dossier's steps, for what a destination still lacks (the index on DVCQG's column is gone).
CREATE INDEX events_steps ON dossier_events (dossier_code) WHERE kind = 'step';
