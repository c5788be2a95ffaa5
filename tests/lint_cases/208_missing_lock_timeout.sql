-- bluegreen: expand
-- expect: none
CREATE TABLE refunds (id bigint);
-- A new table has no traffic to queue behind the lock.
-- expect: none
ALTER TABLE refunds ADD COLUMN note text;
-- expect: missing-lock-timeout
ALTER TABLE orders ADD COLUMN coupon text;
-- Reported once per file.
-- expect: none
ALTER TABLE customers ADD COLUMN nickname text;
