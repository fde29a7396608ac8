-- The operators' dashboard: sync lag, connector samples for charts, operator log-in failures.

-- The status time (unix, one-stop clock) of the newest state DVCQG confirmed: a status change is
-- counted in the sync lag once, when DVCQG first confirms a state carrying it.
ALTER TABLE dossiers ADD COLUMN portal_status_at REAL;

-- Dossiers whose newest state DVCQG has not confirmed: sync completeness counts these.
CREATE INDEX dossiers_unconfirmed ON dossiers (updated_at) WHERE portal_version < version;

-- Sync lag as a histogram per minute: log-spaced buckets (ratio 1.04) of milliseconds.
CREATE TABLE sync_lag (
    minute  INTEGER NOT NULL,     -- unix time // 60 of the confirmation
    bucket  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (minute, bucket)
) WITHOUT ROWID;

-- One row per connector per sample interval: what the charts draw.
CREATE TABLE connector_samples (
    at            REAL NOT NULL,
    connector     TEXT NOT NULL,
    done          INTEGER NOT NULL,
    retried       INTEGER NOT NULL,
    parked        INTEGER NOT NULL,
    queue_depth   INTEGER,
    dead_letters  INTEGER,
    last_success  REAL,
    PRIMARY KEY (connector, at)
) WITHOUT ROWID;
CREATE INDEX connector_samples_by_time ON connector_samples (at);

-- Failed dashboard log-ins per user, for the lock-out.
CREATE TABLE operator_logins (
    username      TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    last_failure  REAL NOT NULL,
    locked_until  REAL NOT NULL DEFAULT 0
);
