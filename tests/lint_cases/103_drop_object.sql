-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-object
DROP VIEW order_totals;
-- expect: drop-object
DROP MATERIALIZED VIEW IF EXISTS daily_sales;
-- expect: drop-object
DROP FUNCTION order_total(bigint);
-- expect: drop-object
DROP TYPE order_status;
-- expect: drop-object
DROP SCHEMA reporting CASCADE;
-- expect: drop-object
DROP SEQUENCE invoice_numbers;
-- expect: none
CREATE VIEW tmp_view AS SELECT 1 AS one;
-- expect: none
DROP VIEW tmp_view;
-- Triggers and policies are not part of what the live release calls.
-- expect: none
DROP TRIGGER IF EXISTS audit ON orders;
