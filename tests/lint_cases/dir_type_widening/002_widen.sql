-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- Widening varchar and numeric precision changes the catalogue only; old writes still fit.
-- expect: none
ALTER TABLE orders ALTER COLUMN note TYPE varchar(200);
-- expect: none
ALTER TABLE orders ALTER COLUMN note TYPE text;
-- expect: none
ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 2);
-- Narrowing, a scale change and int -> bigint rewrite the table and can reject old writes.
-- expect: change-column-type, table-rewrite
ALTER TABLE orders ALTER COLUMN code TYPE varchar(10);
-- expect: change-column-type, table-rewrite
ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 4);
-- expect: change-column-type, table-rewrite
ALTER TABLE orders ALTER COLUMN quantity TYPE bigint;
