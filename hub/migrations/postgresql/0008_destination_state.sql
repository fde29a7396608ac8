-- Delivery state per destination (DVCQG is `national_portal`): what each destination has
-- confirmed of each dossier. SQLite's 0008 moved DVCQG's older columns here; a PostgreSQL
-- store never had them, so this only makes the tables.

-- What a destination confirmed of a dossier: one row once it has confirmed anything of it.
CREATE TABLE destination_state (
    dossier_code  TEXT NOT NULL,
    destination   TEXT NOT NULL,
    version       BIGINT NOT NULL DEFAULT 0,  -- newest dossier version it confirmed
    holds         BIGINT NOT NULL DEFAULT 0,  -- it holds the dossier (DVCQG: isUpdating)
    status_at     DOUBLE PRECISION,           -- status time (unix) of that version: sync lag
    behind        BIGINT NOT NULL DEFAULT 1,  -- the dossier changed since: a newer version or
                                              -- a step it has not confirmed
    PRIMARY KEY (dossier_code, destination)
);
-- Completeness counts these, from the index alone.
CREATE INDEX destination_state_behind ON destination_state (destination, behind) WHERE behind = 1;

-- Each destination keeping state, and how many dossiers it has a row for (kept by a trigger
-- below): the dossiers it never confirmed anything of are the others, counted without a scan.
CREATE TABLE destinations (
    destination  TEXT PRIMARY KEY,
    dossiers     BIGINT NOT NULL
);

CREATE FUNCTION destination_state_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO destinations (destination, dossiers) VALUES (NEW.destination, 1)
    ON CONFLICT (destination) DO UPDATE SET dossiers = destinations.dossiers + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER destination_state_counted AFTER INSERT ON destination_state
FOR EACH ROW EXECUTE FUNCTION destination_state_counted();

-- The steps (history rows) each destination confirmed.
CREATE TABLE event_deliveries (
    event_id     BIGINT NOT NULL,
    destination  TEXT NOT NULL,
    sent_at      TEXT NOT NULL,
    PRIMARY KEY (event_id, destination)
);

-- The sync lag as a histogram per destination and minute: log-spaced buckets of milliseconds.
CREATE TABLE sync_lag (
    destination  TEXT NOT NULL,
    minute       BIGINT NOT NULL,     -- unix time // 60 of the confirmation
    bucket       BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (destination, minute, bucket)
);
-- Trimming old minutes goes by time across destinations.
CREATE INDEX sync_lag_by_minute ON sync_lag (minute);

-- A dossier's steps, for what a destination still lacks.
CREATE INDEX events_steps ON dossier_events (dossier_code) WHERE kind = 'step';
