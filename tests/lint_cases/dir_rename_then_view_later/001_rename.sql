-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- The view comes in the next file, a separate transaction: between the two the live release breaks.
-- expect: rename-object
ALTER TABLE orders RENAME TO purchases;
