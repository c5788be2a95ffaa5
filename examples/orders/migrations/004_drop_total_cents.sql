-- bluegreen: contract after=2.0.0
-- Once both colours run 2.0.0 or later nothing reads total_cents: drop it and the
-- trigger that kept it in step.
DROP TRIGGER IF EXISTS orders_sync_totals ON orders;
DROP FUNCTION IF EXISTS orders_sync_totals();
ALTER TABLE orders DROP COLUMN IF EXISTS total_cents;
