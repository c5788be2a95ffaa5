-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- A view under the old name keeps the live release's reads (and simple writes) working.
-- expect: rename-with-compat-view
ALTER TABLE orders RENAME TO purchases;
-- expect: none
CREATE VIEW orders AS SELECT * FROM purchases;
-- A view under some other name does not help the live release.
-- expect: rename-object
ALTER TABLE customers RENAME TO clients;
-- expect: none
CREATE VIEW customer_list AS SELECT * FROM clients;
