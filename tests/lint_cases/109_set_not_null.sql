-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: set-not-null, set-not-null-scan
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
-- Dropping NOT NULL relaxes a rule: old writes keep working.
-- expect: none
ALTER TABLE orders ALTER COLUMN memo DROP NOT NULL;
