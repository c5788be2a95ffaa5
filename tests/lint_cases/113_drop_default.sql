-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-default
ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;
-- expect: none
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';
