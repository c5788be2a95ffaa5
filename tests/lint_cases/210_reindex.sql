-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: reindex-non-concurrently
REINDEX TABLE orders;
-- expect: reindex-non-concurrently
REINDEX INDEX orders_placed_at_idx;
-- expect: reindex-non-concurrently
REINDEX SCHEMA public;
-- expect: none
REINDEX INDEX CONCURRENTLY orders_customer_idx;
-- expect: none
REINDEX (VERBOSE, CONCURRENTLY) TABLE customers;
-- expect: none
CREATE TABLE refunds (id bigint, order_id bigint);
-- A table created in this file has no traffic yet.
-- expect: none
REINDEX TABLE refunds;
