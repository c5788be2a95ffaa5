-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- expect: none
ALTER TABLE orders VALIDATE CONSTRAINT orders_memo_not_null;
