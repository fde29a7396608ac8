-- Payment transactions from the national payment platform, one row per MaGiaoDich + MaThamChieu.
CREATE TABLE payments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id  TEXT NOT NULL,        -- MaGiaoDich
    reference       TEXT NOT NULL,        -- MaThamChieu
    dossier_code    TEXT NOT NULL,
    day             TEXT NOT NULL,        -- local (Asia/Ho_Chi_Minh) date of paid_at
    paid_at         TEXT NOT NULL,        -- ISO, with offset
    outcome         TEXT NOT NULL,        -- paid | pending | failed
    amount_vnd      INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    result_json     TEXT NOT NULL,        -- canonical PaymentResult
    first_seen_at   TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    checks          INTEGER NOT NULL DEFAULT 0,
    checked_at      TEXT,
    event_id        TEXT,                 -- of the final-outcome event, once there is one
    UNIQUE (transaction_id, reference)
);
CREATE INDEX payments_by_dossier ON payments (dossier_code, id);
CREATE INDEX payments_by_day ON payments (day);
CREATE INDEX payments_pending ON payments (paid_at) WHERE outcome = 'pending';

-- Every callback the platform sent: accepted, repeated, refused; what operators look at.
CREATE TABLE payment_callbacks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    verdict         TEXT NOT NULL,        -- accepted | duplicate | refused
    code            TEXT,                 -- refusal code (bad_signature, stale_time, ...)
    reason          TEXT,
    transaction_id  TEXT,
    reference       TEXT,
    body_json       TEXT NOT NULL         -- the callback, personal data masked
);
CREATE INDEX payment_callbacks_refused ON payment_callbacks (id) WHERE verdict = 'refused';

-- Reconciliation reports, one per local day (the newest run).
CREATE TABLE reconciliation_reports (
    day             TEXT PRIMARY KEY,
    created_at      TEXT NOT NULL,
    report_json     TEXT NOT NULL
);
