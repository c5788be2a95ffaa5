-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: none
CREATE INDEX CONCURRENTLY orders_placed_at_new_idx ON orders (placed_at);
-- Created in this file, but on an old, busy table: the drop locks orders.
-- expect: drop-index-non-concurrently
DROP INDEX orders_placed_at_new_idx;
-- expect: none
CREATE TABLE refunds (id bigint, order_id bigint);
-- expect: none
CREATE INDEX refunds_order_idx ON refunds (order_id);
-- On a table this file created: nothing to block.
-- expect: none
DROP INDEX refunds_order_idx;
