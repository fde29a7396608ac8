-- What the operators' console finds dossiers by, and what each destination has refused or
-- is retrying: the stuck-dossier page and the dossier search (decisions 0063, 0064).

-- The procedure a dossier's newest record names, for the search and the stuck page's filter.
ALTER TABLE dossiers ADD COLUMN procedure_code TEXT;
-- The owner's name as a search key: a hash of the name folded (case, accents, spaces), never
-- the name itself (`hub.masking.name_key`); '' when the record names nobody; NULL until the
-- hub has computed it (rows from before this migration, filled in at the next start).
ALTER TABLE dossiers ADD COLUMN owner_key TEXT;
UPDATE dossiers SET procedure_code = json_extract(record_json, '$.procedure_code')
WHERE record_json IS NOT NULL;
UPDATE dossiers SET owner_key = '' WHERE record_json IS NULL
    OR json_extract(record_json, '$.owner_name') IS NULL;
CREATE INDEX dossiers_by_procedure ON dossiers (procedure_code) WHERE procedure_code IS NOT NULL;
CREATE INDEX dossiers_by_owner ON dossiers (owner_key) WHERE owner_key <> '';
CREATE INDEX dossiers_owner_unknown ON dossiers (code) WHERE owner_key IS NULL;

-- Per dossier and destination, the trouble its newest journal line tells of, while it lasts:
-- a refusal, a retry, a parked message or a replay not yet delivered. Kept by the trigger
-- below from the delivery journal, whoever writes it (the consumer, a sink, a replay), and
-- cleared when the destination confirms (delivered) or an operator discards the message.
CREATE TABLE delivery_trouble (
    dossier_code  TEXT NOT NULL,
    destination   TEXT NOT NULL,   -- the journal's connector: national_portal, ministry.<x>, ...
    outcome       TEXT NOT NULL,   -- refused | failed | retry | parked | replayed
    reason        TEXT,            -- the journal line's detail (masked when shown)
    since         TEXT NOT NULL,   -- the first line of this run of trouble
    at            TEXT NOT NULL,   -- the newest line
    PRIMARY KEY (dossier_code, destination)
) WITHOUT ROWID;
CREATE INDEX delivery_trouble_by_destination ON delivery_trouble (destination, since);

CREATE TRIGGER deliveries_trouble AFTER INSERT ON deliveries
WHEN NEW.outcome IN ('refused', 'failed', 'retry', 'parked', 'replayed')
BEGIN
    INSERT INTO delivery_trouble (dossier_code, destination, outcome, reason, since, at)
    VALUES (NEW.dossier_code, NEW.connector, NEW.outcome, NEW.detail, NEW.at, NEW.at)
    ON CONFLICT (dossier_code, destination) DO UPDATE SET
        outcome = excluded.outcome,
        reason = CASE WHEN excluded.outcome = 'replayed' THEN reason ELSE excluded.reason END,
        at = excluded.at;
END;

CREATE TRIGGER deliveries_trouble_over AFTER INSERT ON deliveries
WHEN NEW.outcome IN ('delivered', 'discarded')
BEGIN
    DELETE FROM delivery_trouble
    WHERE dossier_code = NEW.dossier_code AND destination = NEW.connector;
END;

-- The trouble journaled so far: each dossier's newest troubled line per destination that no
-- delivery or discard followed.
INSERT INTO delivery_trouble (dossier_code, destination, outcome, reason, since, at)
SELECT d.dossier_code, d.connector, d.outcome, d.detail, d.at, d.at
FROM deliveries d
WHERE d.outcome IN ('refused', 'failed', 'retry', 'parked', 'replayed')
  AND d.id = (SELECT MAX(x.id) FROM deliveries x
              WHERE x.dossier_code = d.dossier_code AND x.connector = d.connector
                AND x.outcome IN ('refused', 'failed', 'retry', 'parked', 'replayed', 'delivered',
                                  'discarded'));
