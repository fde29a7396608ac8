-- The twin of ../1002_procedure_quarantine_code.sql (decision 0090): a held-back catalogue
-- record's reason as a code too.
ALTER TABLE procedure_quarantine ADD COLUMN reason_code TEXT;
