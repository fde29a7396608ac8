-- PostgreSQL's twin of ../0005_vdxp.sql: the same tables and columns (BIGINT for INTEGER,
-- DOUBLE PRECISION for REAL, identities for AUTOINCREMENT). Decision 0083.
-- Documents on the axis, sent (out) and received (in), once per edXML DocumentId.
CREATE TABLE vdxp_documents (
    document_id     TEXT PRIMARY KEY,     -- edXML DocumentId: intake de-duplicates on it
    direction       TEXT NOT NULL,        -- in | out
    transfer_id     TEXT UNIQUE,          -- out: the one-stop system's id of the transfer
    dossier_code    TEXT,                 -- the dossier it is linked to, if any
    from_organ      TEXT NOT NULL,
    to_organs       TEXT NOT NULL,        -- JSON list of agency codes
    code            TEXT NOT NULL,        -- number/notation, e.g. 123/UBND-VP
    subject         TEXT NOT NULL,
    business_type   BIGINT NOT NULL,     -- 0 new, 1 revoke, 2 update, 3 replace
    attachments     TEXT NOT NULL,        -- JSON list: id, name, content_type, size_bytes, file
    folder          TEXT NOT NULL,        -- its files, relative to the spool directory
    state           TEXT NOT NULL,        -- out: queued, sent or refused. in: received
    axis_id         TEXT,                 -- the axis's transport id (out: given by sendEdoc)
    detail          TEXT,                 -- out: why the axis refused it
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX vdxp_documents_dossier ON vdxp_documents (dossier_code);
CREATE INDEX vdxp_documents_recent ON vdxp_documents (direction, created_at);

-- Status messages about documents, once per (document, agency, status, time).
CREATE TABLE vdxp_statuses (
    status_key      TEXT PRIMARY KEY,
    document_id     TEXT NOT NULL,
    dossier_code    TEXT,
    from_organ      TEXT NOT NULL,
    status_code     TEXT NOT NULL,
    description     TEXT,
    occurred_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL
);
CREATE INDEX vdxp_statuses_document ON vdxp_statuses (document_id, occurred_at);

-- Every item taken from the axis, by its transport id: what the hub decided and whether the
-- axis heard the acknowledgement. A listed item already here is acknowledged again, not
-- read again (a crash between commit and acknowledgement).
CREATE TABLE vdxp_intake (
    transport_id    TEXT PRIMARY KEY,
    messagetype     TEXT NOT NULL,        -- edoc | status
    from_organ      TEXT,
    verdict         TEXT NOT NULL,        -- accepted | duplicate | refused
    code            TEXT,                 -- why it was refused: malformed, unknown_organ, ...
    reason          TEXT,
    document_id     TEXT,
    taken_at        TEXT NOT NULL,
    acked_at        TEXT
);
CREATE INDEX vdxp_intake_recent ON vdxp_intake (taken_at);
