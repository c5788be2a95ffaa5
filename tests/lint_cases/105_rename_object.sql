-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: rename-object
ALTER TABLE orders RENAME TO purchases;
-- expect: rename-object
ALTER VIEW order_totals RENAME TO purchase_totals;
-- expect: rename-object
ALTER FUNCTION order_total(bigint) RENAME TO purchase_total;
-- expect: rename-object
ALTER TYPE order_status RENAME TO purchase_status;
-- expect: rename-object
ALTER SEQUENCE invoice_numbers RENAME TO invoice_ids;
-- Index and constraint names are not what the application addresses.
-- expect: none
ALTER INDEX orders_created_idx RENAME TO orders_created_at_idx;
-- expect: none
ALTER TABLE customers RENAME CONSTRAINT customers_email_key TO customers_email_unique;
