-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- expect: constraint-without-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_quantity_positive CHECK (quantity > 0);
-- expect: constraint-without-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
-- expect: none
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;
