-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- In a contract file breaking the old release is the point, but the scan still locks the table.
-- expect: set-not-null-scan
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
