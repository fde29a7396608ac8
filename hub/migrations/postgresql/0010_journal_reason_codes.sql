-- The twin of ../0010_journal_reason_codes.sql (decision 0090): the delivery journal keeps a
-- line's reason as a code and its values too; the trouble trigger carries them, and a replay
-- keeps the code of the trouble it replays.
ALTER TABLE deliveries ADD COLUMN reason_code TEXT;
ALTER TABLE deliveries ADD COLUMN reason_args TEXT;
ALTER TABLE delivery_trouble ADD COLUMN reason_code TEXT;
ALTER TABLE delivery_trouble ADD COLUMN reason_args TEXT;

CREATE OR REPLACE FUNCTION deliveries_trouble() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.outcome IN ('refused', 'failed', 'retry', 'parked', 'replayed') THEN
        INSERT INTO delivery_trouble (dossier_code, destination, outcome, reason, reason_code,
                                      reason_args, since, at)
        VALUES (NEW.dossier_code, NEW.connector, NEW.outcome, NEW.detail, NEW.reason_code,
                NEW.reason_args, NEW.at, NEW.at)
        ON CONFLICT (dossier_code, destination) DO UPDATE SET
            outcome = excluded.outcome,
            reason = CASE WHEN excluded.outcome = 'replayed' THEN delivery_trouble.reason
                          ELSE excluded.reason END,
            reason_code = CASE WHEN excluded.outcome = 'replayed'
                               THEN delivery_trouble.reason_code
                               ELSE excluded.reason_code END,
            reason_args = CASE WHEN excluded.outcome = 'replayed'
                               THEN delivery_trouble.reason_args
                               ELSE excluded.reason_args END,
            at = excluded.at;
    ELSIF NEW.outcome IN ('delivered', 'discarded') THEN
        DELETE FROM delivery_trouble
        WHERE dossier_code = NEW.dossier_code AND destination = NEW.connector;
    END IF;
    RETURN NULL;
END;
$$;
