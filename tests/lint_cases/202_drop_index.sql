-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-index-non-concurrently
DROP INDEX orders_placed_at_idx;
-- expect: none
DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx;
