-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: vacuum-full-or-cluster
VACUUM FULL orders;
-- expect: vacuum-full-or-cluster
VACUUM (FULL, ANALYZE) customers;
-- expect: vacuum-full-or-cluster
CLUSTER orders USING orders_pkey;
-- expect: none
VACUUM ANALYZE orders;
