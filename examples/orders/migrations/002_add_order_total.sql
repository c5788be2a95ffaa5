-- bluegreen: expand
-- Release 2.x stores a decimal total. The new column is nullable (no table rewrite),
-- total_cents stops being required (2.x never writes it), and a trigger keeps both
-- columns in step while 1.x and 2.x run side by side, so either can be live.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS total numeric(14, 2);
ALTER TABLE orders ALTER COLUMN total_cents DROP NOT NULL;

CREATE OR REPLACE FUNCTION orders_sync_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.total IS NULL AND NEW.total_cents IS NOT NULL THEN
        NEW.total := NEW.total_cents / 100.0;
    ELSIF NEW.total_cents IS NULL AND NEW.total IS NOT NULL THEN
        NEW.total_cents := round(NEW.total * 100);
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS orders_sync_totals ON orders;
CREATE TRIGGER orders_sync_totals BEFORE INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_sync_totals();
