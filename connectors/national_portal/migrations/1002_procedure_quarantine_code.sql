-- A held-back catalogue record's reason as a code too (decision 0090): the flow page shows
-- words for it (missing, bad_amount, not_found …), `reason` stays the hub's own text. Records
-- held back before this migration have none and show their text.
ALTER TABLE procedure_quarantine ADD COLUMN reason_code TEXT;
