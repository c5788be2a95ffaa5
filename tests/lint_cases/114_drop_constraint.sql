-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-constraint
ALTER TABLE customers DROP CONSTRAINT customers_email_key;
-- expect: drop-constraint
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_customer_fk;
