-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- The validated CHECK proves no NULL exists: PostgreSQL skips the scan.
-- expect: none
ALTER TABLE orders ALTER COLUMN memo SET NOT NULL;
-- No check covers this column.
-- expect: set-not-null-scan
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
