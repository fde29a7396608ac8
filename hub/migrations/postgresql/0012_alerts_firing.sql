-- The twin of ../0012_alerts_firing.sql: the alerts firing, one row each until it resolves.
CREATE TABLE alerts_firing (
    rule        TEXT NOT NULL,
    connector   TEXT NOT NULL,
    episode     TEXT NOT NULL,
    since       DOUBLE PRECISION NOT NULL,
    fired_at    DOUBLE PRECISION NOT NULL,
    value       DOUBLE PRECISION,
    threshold   DOUBLE PRECISION NOT NULL,
    detail      TEXT NOT NULL,
    PRIMARY KEY (rule, connector)
);
