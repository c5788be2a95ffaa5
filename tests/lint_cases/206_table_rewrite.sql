-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN shard double precision DEFAULT random() * 16;
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN seq bigserial;
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN line_no int GENERATED ALWAYS AS IDENTITY;
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN total_cents bigint GENERATED ALWAYS AS (quantity * 100) STORED;
-- Constant and stable defaults are stored once in the catalogue (PostgreSQL 11+): no rewrite.
-- expect: none
ALTER TABLE orders ADD COLUMN created_at timestamptz DEFAULT now();
-- expect: none
ALTER TABLE orders ADD COLUMN priority int DEFAULT 0;
