-- Procedure master data: the national catalogue as the hub last read it, versioned.

-- The current state of each procedure.
CREATE TABLE procedures (
    code            TEXT PRIMARY KEY,     -- national code, e.g. 1.000494
    version         INTEGER NOT NULL,     -- current version (a substantive change adds one)
    revision        INTEGER NOT NULL,     -- editorial revisions of the current version
    state           TEXT NOT NULL,        -- active | locked
    content_hash    TEXT NOT NULL,
    substance_hash  TEXT NOT NULL,
    record_json     TEXT NOT NULL,        -- canonical Procedure of the current version
    change_seq      INTEGER NOT NULL,     -- id of its newest procedure_changes row
    changed_at      TEXT NOT NULL,
    first_seen_at   TEXT NOT NULL
);
CREATE INDEX procedures_by_change ON procedures (change_seq);

-- Every version, kept after it is locked.
CREATE TABLE procedure_versions (
    code            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    revision        INTEGER NOT NULL,
    content_hash    TEXT NOT NULL,
    record_json     TEXT NOT NULL,        -- the newest wording of this version
    created_at      TEXT NOT NULL,
    locked_at       TEXT,
    lock_reason     TEXT,                 -- superseded | removed | unpublished
    PRIMARY KEY (code, version)
);

-- Every change the hub saw and announced: the queryable history, with field-level diffs.
CREATE TABLE procedure_changes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    code            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    revision        INTEGER NOT NULL,
    type            TEXT NOT NULL,        -- procedure.created | procedure.updated | procedure.locked
    change          TEXT NOT NULL,        -- created | editorial | substantive | reinstated | removed | unpublished
    diff_json       TEXT NOT NULL,
    at              TEXT NOT NULL,
    run_id          INTEGER
);
CREATE INDEX procedure_changes_by_code ON procedure_changes (code, id);

-- Records refused by validation: never propagated, visible until a later sync reads them well.
CREATE TABLE procedure_quarantine (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    code            TEXT NOT NULL,        -- MATTHC, or the list position when there is none
    run_id          INTEGER,
    field           TEXT,
    reason          TEXT NOT NULL,
    excerpt         TEXT,                 -- the start of the offending record or reply
    at              TEXT NOT NULL,
    resolved_at     TEXT
);
CREATE INDEX procedure_quarantine_open ON procedure_quarantine (code) WHERE resolved_at IS NULL;

-- Sync runs and their items: what makes a sync resumable after a crash.
CREATE TABLE procedure_sync_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,        -- full | codes
    requested       TEXT NOT NULL,        -- JSON list of codes for kind = codes
    trigger         TEXT NOT NULL,        -- schedule | cli | api | startup
    state           TEXT NOT NULL,        -- listing | fetching | done | partial | failed
    owner           TEXT NOT NULL,
    heartbeat_at    REAL NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    detail          TEXT,
    counts          TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE procedure_sync_items (
    run_id          INTEGER NOT NULL,
    code            TEXT NOT NULL,
    state           TEXT NOT NULL,        -- pending | done | quarantined | failed
    outcome         TEXT,                 -- the change kind, or the failure
    PRIMARY KEY (run_id, code)
);
CREATE INDEX procedure_sync_pending ON procedure_sync_items (run_id) WHERE state = 'pending';

-- Reference lists of the catalogue: fields (lĩnh vực) and agencies.
CREATE TABLE catalogue_lists (
    kind            TEXT NOT NULL,        -- field | agency
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    extra           TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (kind, code)
);

-- Which event each subscriber has confirmed: a redelivered or replayed event is not sent again.
CREATE TABLE subscriber_deliveries (
    subscriber      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    delivered_at    TEXT NOT NULL,
    PRIMARY KEY (subscriber, event_id)
);
