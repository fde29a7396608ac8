-- The alerts firing (`hub.alerts`), one row each until it resolves, so that a restart or a
-- hand-over of the alert duty to another replica continues an alert's episode instead of
-- beginning a second one: no "firing" sent twice, no episode left without its "resolved".
-- `connector` is '' for the hub's own rules. Times are unix seconds.
CREATE TABLE alerts_firing (
    rule        TEXT NOT NULL,
    connector   TEXT NOT NULL,
    episode     TEXT NOT NULL,
    since       REAL NOT NULL,
    fired_at    REAL NOT NULL,
    value       REAL,
    threshold   REAL NOT NULL,
    detail      TEXT NOT NULL,
    PRIMARY KEY (rule, connector)
);
