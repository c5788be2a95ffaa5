-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-column
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note') THEN
    ALTER TABLE orders DROP COLUMN note;
  END IF;
END
$$;
-- expect: drop-table
DO $$ BEGIN EXECUTE 'DROP TABLE legacy_orders'; END $$;
-- expect: dynamic-sql
DO $$ BEGIN EXECUTE format('ALTER TABLE %I ADD COLUMN x int', 'orders'); END $$;
-- A backfill in batches is the safe kind of DO block.
-- expect: none
DO $$
DECLARE moved int;
BEGIN
  LOOP
    UPDATE orders SET memo = note WHERE id IN (SELECT id FROM orders WHERE memo IS NULL LIMIT 1000);
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXIT WHEN moved = 0;
  END LOOP;
END
$$;
