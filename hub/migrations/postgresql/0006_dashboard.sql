-- The operators' dashboard: connector samples for charts, operator log-in failures. (SQLite's
-- 0006 also made DVCQG's sync-lag table and columns; on PostgreSQL the per-destination
-- sync lag of 0008 is made there directly.)

-- One row per connector per sample interval: what the charts draw.
CREATE TABLE connector_samples (
    at            DOUBLE PRECISION NOT NULL,
    connector     TEXT NOT NULL,
    done          BIGINT NOT NULL,
    retried       BIGINT NOT NULL,
    parked        BIGINT NOT NULL,
    queue_depth   BIGINT,
    dead_letters  BIGINT,
    last_success  DOUBLE PRECISION,
    PRIMARY KEY (connector, at)
);
CREATE INDEX connector_samples_by_time ON connector_samples (at);

-- Failed dashboard log-ins per user, for the lock-out.
CREATE TABLE operator_logins (
    username      TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    last_failure  DOUBLE PRECISION NOT NULL,
    locked_until  DOUBLE PRECISION NOT NULL DEFAULT 0
);
