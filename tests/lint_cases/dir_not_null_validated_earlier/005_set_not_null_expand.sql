-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- Even in an expand file: the validated check already rejects NULL writes, so nothing new breaks.
-- expect: none
ALTER TABLE orders ALTER COLUMN memo SET NOT NULL;
