-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- expect: none
ALTER TABLE orders ADD CONSTRAINT orders_memo_not_null CHECK (memo IS NOT NULL) NOT VALID;
