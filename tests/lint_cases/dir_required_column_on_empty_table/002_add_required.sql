-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- Succeeds on the empty table, but every insert of the live release (which omits the column) fails.
-- expect: add-required-column
ALTER TABLE invoices ADD COLUMN currency text NOT NULL;
