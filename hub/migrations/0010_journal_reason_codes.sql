-- The delivery journal keeps a line's reason as a code too, where the hub knows one, so the
-- console words it in the page's language (decision 0090): the destination's own refusal
-- code (DVCQG's 07), or the hub's (retry_budget, unknown_dossier …), and the values its words
-- name (a JSON object, e.g. who replayed it). `detail` stays the hub's own text; lines written
-- before this migration have no code and show their text as it is.
ALTER TABLE deliveries ADD COLUMN reason_code TEXT;
ALTER TABLE deliveries ADD COLUMN reason_args TEXT;
ALTER TABLE delivery_trouble ADD COLUMN reason_code TEXT;
ALTER TABLE delivery_trouble ADD COLUMN reason_args TEXT;

-- As in 0009, with the code and its values kept beside the reason: a replay keeps the reason
-- (and its code) of the trouble it replays.
DROP TRIGGER deliveries_trouble;
CREATE TRIGGER deliveries_trouble AFTER INSERT ON deliveries
WHEN NEW.outcome IN ('refused', 'failed', 'retry', 'parked', 'replayed')
BEGIN
    INSERT INTO delivery_trouble (dossier_code, destination, outcome, reason, reason_code,
                                  reason_args, since, at)
    VALUES (NEW.dossier_code, NEW.connector, NEW.outcome, NEW.detail, NEW.reason_code,
            NEW.reason_args, NEW.at, NEW.at)
    ON CONFLICT (dossier_code, destination) DO UPDATE SET
        outcome = excluded.outcome,
        reason = CASE WHEN excluded.outcome = 'replayed' THEN reason ELSE excluded.reason END,
        reason_code = CASE WHEN excluded.outcome = 'replayed' THEN reason_code
                           ELSE excluded.reason_code END,
        reason_args = CASE WHEN excluded.outcome = 'replayed' THEN reason_args
                           ELSE excluded.reason_args END,
        at = excluded.at;
END;
