-- bluegreen: expand
-- bluegreen-run: no-transaction
-- Fill total for rows written before 002, 1,000 rows per committed batch, so no
-- long transaction holds row locks that the live release waits on. Runs outside a
-- transaction block (COMMIT inside DO needs that) and is safe to run again.
DO $$
DECLARE
    updated integer;
BEGIN
    LOOP
        UPDATE orders SET total = total_cents / 100.0
        WHERE id IN (
            SELECT id FROM orders
            WHERE total IS NULL AND total_cents IS NOT NULL
            LIMIT 1000
            FOR UPDATE SKIP LOCKED
        );
        GET DIAGNOSTICS updated = ROW_COUNT;
        COMMIT;
        EXIT WHEN updated = 0;
    END LOOP;
END;
$$;
