-- Dossiers: the newest state of each dossier and what DVCQG has confirmed of it.
CREATE TABLE dossiers (
    code            TEXT PRIMARY KEY,
    status          INTEGER,
    status_key      TEXT,              -- JSON [iso time, kind rank, status code]
    record_json     TEXT,              -- canonical DossierRecord, freshest fields
    record_key      TEXT,
    version         INTEGER NOT NULL DEFAULT 0,   -- bumps when what leaves the hub changes
    feed_seq        INTEGER NOT NULL DEFAULT 0,   -- position in the change feed
    updated_at      TEXT NOT NULL,
    portal_version  INTEGER NOT NULL DEFAULT 0,   -- newest version DVCQG confirmed
    portal_holds    INTEGER NOT NULL DEFAULT 0    -- DVCQG holds the dossier (isUpdating)
);
CREATE INDEX dossiers_by_feed ON dossiers (feed_seq);

-- Every accepted event, late ones included: the dossier's history.
CREATE TABLE dossier_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key        TEXT NOT NULL UNIQUE,
    dossier_code    TEXT NOT NULL,
    kind            TEXT NOT NULL,        -- record | step
    status          INTEGER NOT NULL,
    occurred_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    source_system   TEXT NOT NULL,
    payload         TEXT NOT NULL,        -- canonical DossierEvent JSON
    applied         INTEGER NOT NULL,     -- 0: late, kept in history only
    portal_sent_at  TEXT                  -- steps: when DVCQG confirmed the step
);
CREATE INDEX events_by_dossier ON dossier_events (dossier_code, id);
CREATE INDEX events_pending_steps ON dossier_events (dossier_code)
    WHERE kind = 'step' AND portal_sent_at IS NULL;

CREATE TABLE feed_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
INSERT INTO feed_sequence (id, seq) VALUES (1, 0);

-- Transactional outbox: written with the events, published with confirms, then deleted.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    routing_key TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  REAL NOT NULL
);

-- Facade sessions (hashed tokens), so a hub restart does not log every one-stop out.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    expires_at   REAL NOT NULL
);

-- Delivery attempts per dossier and connector: the dossier's outbound timeline.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    dossier_code TEXT NOT NULL,
    connector    TEXT NOT NULL,
    outcome      TEXT NOT NULL,       -- delivered | retry | parked
    detail       TEXT,
    at           TEXT NOT NULL
);
CREATE INDEX deliveries_by_dossier ON deliveries (dossier_code, id);

-- Every operator action.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT
);
