-- Dossiers handed off to a sectoral ministry system, once per system and dossier.
CREATE TABLE ministry_handoffs (
    system          TEXT NOT NULL,
    dossier_code    TEXT NOT NULL,
    procedure_code  TEXT,
    status          INTEGER NOT NULL,     -- the dossier's status when it was handed off
    reference       TEXT,                 -- the system's receipt number, if it gave one
    submitted_at    TEXT NOT NULL,
    PRIMARY KEY (system, dossier_code)
);
CREATE INDEX ministry_handoffs_recent ON ministry_handoffs (system, submitted_at);

-- Where each polled system's results were read up to (saved with the results it covers).
CREATE TABLE ministry_cursors (
    system          TEXT PRIMARY KEY,
    cursor          TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- Results the hub could not take: unknown dossier, unreadable, invalid. Never forwarded.
CREATE TABLE ministry_quarantine (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    system          TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,        -- the result's id, or the SHA-256 of its content
    via             TEXT NOT NULL,        -- push | poll
    code            TEXT NOT NULL,        -- unknown_dossier, missing, unknown_code, ...
    reason          TEXT NOT NULL,
    dossier_code    TEXT,
    item_json       TEXT NOT NULL,        -- the result as received, personal data masked
    first_at        TEXT NOT NULL,
    last_at         TEXT NOT NULL,
    seen            INTEGER NOT NULL DEFAULT 1,
    UNIQUE (system, fingerprint)
);
CREATE INDEX ministry_quarantine_recent ON ministry_quarantine (system, id);
