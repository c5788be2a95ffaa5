-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- bluegreen: allow drop-column: no release ever read legacy_flag, it was written by a one-off import
-- expect: none
ALTER TABLE orders DROP COLUMN legacy_flag;
-- expect: none
DROP INDEX orders_unused_idx; -- bluegreen: allow drop-index-non-concurrently: the table holds twelve rows
-- A suppression must say why.
-- bluegreen: allow drop-column
-- expect: bad-suppression, drop-column
ALTER TABLE orders DROP COLUMN memo;
-- bluegreen: allow drop-colum: misspelled rule names are not silently accepted
-- expect: bad-suppression, drop-column
ALTER TABLE orders DROP COLUMN coupon;
-- A suppression covers only the rules it names.
-- bluegreen: allow drop-column: the column is unused since release 1.4.0
-- expect: set-not-null, set-not-null-scan
ALTER TABLE orders ALTER COLUMN status SET NOT NULL;
