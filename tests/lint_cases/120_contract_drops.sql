-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- A contract file may remove what only old releases used; the contract gate checks the versions.
-- expect: none
ALTER TABLE orders DROP COLUMN note;
-- expect: none
DROP VIEW orders_v1;
-- expect: none
ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;
