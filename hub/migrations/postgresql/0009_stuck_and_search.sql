-- What the operators' console finds dossiers by, and what each destination has refused or
-- is retrying: the stuck-dossier page and the dossier search (decisions 0063, 0064).

-- The procedure a dossier's newest record names, for the search and the stuck page's filter.
ALTER TABLE dossiers ADD COLUMN procedure_code TEXT;
-- The owner's name as a search key (`hub.masking.name_key`), never the name itself; '' when
-- the record names nobody; NULL until the hub has computed it.
ALTER TABLE dossiers ADD COLUMN owner_key TEXT;
CREATE INDEX dossiers_by_procedure ON dossiers (procedure_code) WHERE procedure_code IS NOT NULL;
CREATE INDEX dossiers_by_owner ON dossiers (owner_key) WHERE owner_key <> '';
CREATE INDEX dossiers_owner_unknown ON dossiers (code) WHERE owner_key IS NULL;

-- Per dossier and destination, the trouble its newest journal line tells of, while it lasts,
-- kept by the trigger below from the delivery journal, whoever writes it.
CREATE TABLE delivery_trouble (
    dossier_code  TEXT NOT NULL,
    destination   TEXT NOT NULL,   -- the journal's connector: national_portal, ministry.<x>, ...
    outcome       TEXT NOT NULL,   -- refused | failed | retry | parked | replayed
    reason        TEXT,            -- the journal line's detail (masked when shown)
    since         TEXT NOT NULL,   -- the first line of this run of trouble
    at            TEXT NOT NULL,   -- the newest line
    PRIMARY KEY (dossier_code, destination)
);
CREATE INDEX delivery_trouble_by_destination ON delivery_trouble (destination, since);

CREATE FUNCTION deliveries_trouble() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.outcome IN ('refused', 'failed', 'retry', 'parked', 'replayed') THEN
        INSERT INTO delivery_trouble (dossier_code, destination, outcome, reason, since, at)
        VALUES (NEW.dossier_code, NEW.connector, NEW.outcome, NEW.detail, NEW.at, NEW.at)
        ON CONFLICT (dossier_code, destination) DO UPDATE SET
            outcome = excluded.outcome,
            reason = CASE WHEN excluded.outcome = 'replayed' THEN delivery_trouble.reason
                          ELSE excluded.reason END,
            at = excluded.at;
    ELSIF NEW.outcome IN ('delivered', 'discarded') THEN
        DELETE FROM delivery_trouble
        WHERE dossier_code = NEW.dossier_code AND destination = NEW.connector;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER deliveries_trouble AFTER INSERT ON deliveries
FOR EACH ROW EXECUTE FUNCTION deliveries_trouble();
