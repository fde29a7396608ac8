-- Leases of the once-only duties (decision 0091): the outbox sweep, the alert checks and the
-- connectors' schedules run on one replica at a time, the one whose lease on the duty's name
-- is live. A row is a lease; its holder renews it (`expires_at` moves on) or releases it (the
-- row goes). Times are unix seconds on the database's own clock, never on a replica's.
CREATE TABLE duty_leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    expires_at   REAL NOT NULL,
    acquired_at  REAL NOT NULL,
    renewed_at   REAL NOT NULL
);
