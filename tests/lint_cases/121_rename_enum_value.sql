-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- The live release still writes 'new': its inserts fail once the label is gone.
-- expect: rename-enum-value
ALTER TYPE order_status RENAME VALUE 'new' TO 'placed';
-- expect: rename-enum-value
DO $$
BEGIN
    ALTER TYPE order_status RENAME VALUE 'paid' TO 'settled';
END
$$;
-- expect: rename-enum-value
CREATE FUNCTION relabel() RETURNS void LANGUAGE sql AS $$ ALTER TYPE order_status RENAME VALUE 'void' TO 'voided' $$;
-- Adding a label keeps every old one.
-- expect: none
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
-- expect: none
CREATE TYPE refund_reason AS ENUM ('damaged', 'late');
-- A type created in this file has no old reader yet.
-- expect: none
ALTER TYPE refund_reason RENAME VALUE 'late' TO 'delayed';
