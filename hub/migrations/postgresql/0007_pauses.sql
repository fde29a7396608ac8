-- Connectors an operator paused (a planned maintenance window of DVCQG, say). A row means
-- paused; resuming deletes it. It outlives a restart of the hub, and every replica reads it.
CREATE TABLE connector_pauses (
    connector  TEXT PRIMARY KEY,
    paused_by  TEXT NOT NULL,
    paused_at  DOUBLE PRECISION NOT NULL,
    reason     TEXT NOT NULL DEFAULT ''
);
