-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: drop-table
CREATE FUNCTION purge_legacy() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DROP TABLE legacy_orders;
END
$$;
-- expect: rename-column
CREATE OR REPLACE FUNCTION tidy() RETURNS void LANGUAGE sql AS 'ALTER TABLE orders RENAME COLUMN note TO memo';
-- expect: none
CREATE FUNCTION order_count() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM orders; END;
-- expect: none
CREATE FUNCTION set_memo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.memo := coalesce(NEW.memo, NEW.note);
  RETURN NEW;
END
$$;
