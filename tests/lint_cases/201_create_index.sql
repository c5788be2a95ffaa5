-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: create-index-non-concurrently
CREATE INDEX orders_placed_at_idx ON orders (placed_at);
-- expect: create-index-non-concurrently
CREATE UNIQUE INDEX IF NOT EXISTS customers_email_idx ON customers (lower(email));
-- expect: none
CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);
-- expect: none
CREATE TABLE refunds (id bigint, order_id bigint);
-- expect: none
CREATE INDEX refunds_order_idx ON refunds (order_id);
