-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-table
DROP TABLE orders;
-- expect: drop-table
DROP TABLE IF EXISTS public.old_orders CASCADE;
-- expect: none
CREATE TABLE scratch (id int);
-- expect: none
DROP TABLE scratch;
