-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- The old type is not known from this file alone, so nothing proves the change is a widening.
-- expect: change-column-type, table-rewrite
ALTER TABLE orders ALTER COLUMN quantity TYPE bigint;
-- expect: change-column-type, table-rewrite
ALTER TABLE orders ALTER COLUMN note SET DATA TYPE text USING note::text;
-- expect: none
CREATE TABLE scratch (n int);
-- expect: none
ALTER TABLE scratch ALTER COLUMN n TYPE bigint;
