-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- expect: none
ALTER TABLE orders ADD CONSTRAINT orders_quantity_positive CHECK (quantity > 0) NOT VALID;
-- expect: validate-in-same-transaction
ALTER TABLE orders VALIDATE CONSTRAINT orders_quantity_positive;
-- A constraint added by an earlier file is validated with a weak lock.
-- expect: none
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
-- expect: none
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;
-- expect: none
COMMIT;
-- expect: none
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;
