-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-column
ALTER TABLE orders DROP COLUMN note;
-- expect: drop-column
ALTER TABLE orders DROP COLUMN IF EXISTS legacy_flag CASCADE;
-- expect: none
CREATE TABLE scratch (id int, tmp text);
-- A table created in the same file has no old readers yet.
-- expect: none
ALTER TABLE scratch DROP COLUMN tmp;
