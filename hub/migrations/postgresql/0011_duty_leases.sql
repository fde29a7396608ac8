-- The twin of ../0011_duty_leases.sql (decision 0091): leases of the once-only duties, their
-- times unix seconds on the database's own clock.
CREATE TABLE duty_leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    acquired_at  DOUBLE PRECISION NOT NULL,
    renewed_at   DOUBLE PRECISION NOT NULL
);

-- SQLite's julianday('now') (a Julian day number, fractional), which the store's shared SQL
-- reads the database's clock through: here the statement's own time, the same throughout one
-- statement as in SQLite. Only 'now' is given a value; any other argument is NULL.
CREATE FUNCTION julianday(moment TEXT) RETURNS DOUBLE PRECISION
    LANGUAGE SQL STABLE
    RETURN CASE WHEN moment = 'now'
                THEN EXTRACT(EPOCH FROM statement_timestamp())::DOUBLE PRECISION / 86400.0
                     + 2440587.5
           END;
