-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- NOT VALID skips existing rows only: new rows from the live release are still checked.
-- expect: constraint-breaks-old-writes
ALTER TABLE orders ADD CONSTRAINT orders_quantity_positive CHECK (quantity > 0) NOT VALID;
-- expect: constraint-breaks-old-writes
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
-- expect: constraint-breaks-old-writes
ALTER TABLE customers ADD CONSTRAINT customers_email_key UNIQUE USING INDEX customers_email_idx;
-- expect: constraint-breaks-old-writes, constraint-without-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_note_short CHECK (length(note) < 500);
-- expect: none
CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint);
-- expect: none
ALTER TABLE refunds ADD CONSTRAINT refunds_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);
