-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: rename-column
ALTER TABLE orders RENAME COLUMN note TO memo;
-- expect: rename-column
ALTER TABLE IF EXISTS customers RENAME email TO email_address;
-- expect: none
CREATE TABLE scratch (a int);
-- expect: none
ALTER TABLE scratch RENAME COLUMN a TO b;
