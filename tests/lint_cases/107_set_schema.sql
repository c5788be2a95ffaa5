-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: set-schema
ALTER TABLE orders SET SCHEMA archive;
-- expect: set-schema
ALTER FUNCTION order_total(bigint) SET SCHEMA billing;
-- expect: none
CREATE TABLE scratch (id int);
-- expect: none
ALTER TABLE scratch SET SCHEMA archive;
