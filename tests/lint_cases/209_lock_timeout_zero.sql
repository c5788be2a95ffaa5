-- bluegreen: expand
-- A timeout of 0 means wait forever.
-- expect: none
SET LOCAL lock_timeout TO 0;
-- expect: missing-lock-timeout
ALTER TABLE orders ADD COLUMN coupon text;
